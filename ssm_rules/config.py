"""Configuration: `[tool.ssm]` in pyproject.toml, or the same keys at the top of `.ssm.toml`.

Discovery (like ruff): from the current directory upward, the first directory that has a
`.ssm.toml`, or a `pyproject.toml` with a `[tool.ssm]` table, gives the configuration (in
one directory `.ssm.toml` wins); nothing is merged. `--config FILE` names the file instead;
`--isolated` ignores every configuration file. Paths in the file (`packs`,
`per-file-ignores`) are relative to the file's directory.

    [tool.ssm]
    select = ["ALL"]                       # rule IDs, ID prefixes ("SSM-BDU"), guidance IDs ("G60"), or ALL
    ignore = ["SSM-PLAN-012", "G85"]
    fail-on = "warning"                    # error | warning | info | never
    packs = ["rules/our-team"]             # extra rule packs
    builtin = true                         # false: no built-in pack (focus, stages), only those named here
                                           # or with --rules; ignore = ["stages"] leaves out one
    lang = "zh_Hant"                       # en | zh_Hant | zh_Hans: the language of reports
                                           # (--lang and SSM_LANG win; default: the locale's)

    [tool.ssm.severity]                    # severity overrides, by selector
    "SSM-REL" = "error"

    [tool.ssm.settings]                    # thresholds the packs declare in pack.yaml
    review_days = 60                       # every pack declaring it; "focus.review_days": one pack

    [tool.ssm.per-file-ignores]            # globs, relative to this file's directory
    "accounts/archive/**" = ["ALL"]
    "accounts/new-*.yaml" = ["SSM-PLAN-001"]

    [tool.ssm.salesforce.roles]            # read by `ssm import salesforce`
    Champion = "sponsor"

Selectors: `ALL`; a rule ID (`SSM-BDU-001`); an ID prefix (`SSM-BDU`, `SSM-B`); a guidance
ID (`G60`, `S01`: every rule enforcing it); a pack's name (`focus`, `stages`: every rule of
the pack). When a rule matches both `select` and `ignore` (or two severity keys), the more
specific selector wins: a rule ID over a prefix, a longer prefix over a shorter one, a prefix
over a guidance ID, a guidance ID over a pack, anything over `ALL`; between equals, `ignore`
wins. A selector that matches no rule is an error (exit 2): a typo must never
silently switch a check on or off. So are an unknown key, a value of the wrong type, and a
setting that no loaded pack declares, each reported with the file and the key.
"""

from __future__ import annotations

import math
import os
import re
from dataclasses import dataclass, field, replace
from pathlib import Path, PurePosixPath
from types import MappingProxyType
from typing import Any, Iterable, Mapping

from ssm_rules.errors import UsageError
from ssm_rules.severity import FAIL_ON, SEVERITIES, failing_severities
from ssm_rules.suggestions import did_you_mean

CONFIG_NAMES = (".ssm.toml", "pyproject.toml")
KEYS = ("select", "ignore", "severity", "settings", "packs", "builtin", "per-file-ignores", "fail-on", "salesforce",
        "lang")
ALL = "ALL"
_GUIDANCE = re.compile(r"^[A-Z]\d+$")  # G60 (Focus), S01 (stages), a team pack's own
# A pyproject.toml is a few kilobytes; the configuration is read before anything else.
_MAX_CONFIG_BYTES = 4 * 1024 * 1024


def _empty() -> Mapping[str, Any]:
    return MappingProxyType({})


@dataclass(frozen=True)
class Config:
    """A validated configuration. The defaults are what `--isolated` runs with."""

    path: str | None = None  # the file it was read from
    root: str = "."  # the directory relative paths and per-file-ignores globs start from
    select: tuple[str, ...] = (ALL,)
    ignore: tuple[str, ...] = ()
    severity: Mapping[str, str] = field(default_factory=_empty)  # selector -> severity
    settings: Mapping[str, Any] = field(default_factory=_empty)  # setting name -> value
    packs: tuple[str, ...] = ()  # extra rule pack directories (resolved against root)
    builtin: bool = True
    per_file_ignores: tuple[tuple[str, tuple[str, ...]], ...] = ()  # (glob, selectors)
    fail_on: str = "error"
    salesforce: Mapping[str, Any] = field(default_factory=_empty)
    lang: str | None = None  # the language reports speak (ssm_rules.i18n); None: the locale's
    prefix: str = ""  # "tool.ssm." for pyproject.toml, for error messages

    # ---- validation against the loaded rule packs ----------------------------------------

    def check_against(self, rules: Mapping[str, Iterable[str]], settings: Mapping[str, Any],
                      rule_packs: Mapping[str, str] | None = None,
                      bounds: Mapping[str, tuple[Any, Any]] | None = None) -> dict[str, Any]:
        """Raise UsageError for a selector that matches no rule or a setting no pack declares;
        return the settings for the rule compiler (`NAME` or `PACK.NAME` -> value; a mapping
        setting's value is a mapping of the names it changes).

        `rules` maps every known rule ID (the packs' and the tool's meta rules) to its
        guidance IDs; `settings` maps each setting the loaded packs declare (`NAME` and
        `PACK.NAME`) to its default; `rule_packs` maps rule IDs to their pack's name; `bounds`
        maps a setting name to its (minimum, maximum), either None when not bounded.
        """
        known = {rule_id: tuple(guidance) for rule_id, guidance in rules.items()}
        packs_of = dict(rule_packs or {})
        guidance_ids = {g for values in known.values() for g in values}
        checks = [("select", s) for s in self.select] + [("ignore", s) for s in self.ignore]
        checks += [(f"severity.{_quote_key(s)}", s) for s in self.severity]
        checks += [(f"per-file-ignores.{_quote_key(glob)}", s) for glob, selectors in self.per_file_ignores
                   for s in selectors]
        for key, selector in checks:
            if not any(_specificity(selector, rule_id, guidance, packs_of.get(rule_id)) is not None
                       for rule_id, guidance in known.items()):
                hint = did_you_mean(selector, [*known, *sorted(guidance_ids), *sorted({p.upper() for p in packs_of.values()})])
                raise self.error(key, f"`{selector}` matches no rule{hint} (see `ssm rules`)")
        resolved: dict[str, Any] = {}
        for name, value in self.settings.items():
            target, item = name, None
            if name not in settings:
                # `stage_weights.proposed`: one name of a mapping setting (`[settings.stage_weights]`)
                head, _, last = name.rpartition(".")
                if head in settings and isinstance(settings[head], dict):
                    target, item = head, last
                else:
                    hint = did_you_mean(name, list(settings))
                    declared = ", ".join(sorted(settings)) or "none"
                    raise self.error(f"settings.{name}", f"no loaded rule pack declares this setting{hint} "
                                     f"(declared: {declared})")
            default = settings[target]
            if isinstance(default, dict):
                if item is None:
                    raise self.error(f"settings.{name}", f"expected a table of {', '.join(default)}, "
                                                         f"got {value!r}")
                if item not in default:
                    raise self.error(f"settings.{name}", f"`{target}` has no `{item}`"
                                     f"{did_you_mean(item, list(default))}; its names: {', '.join(default)}")
                default = default[item]
            if default is not None and not _same_type(value, default):
                raise self.error(f"settings.{name}", f"expected {_type_name(default)} like the pack's default "
                                 f"{default!r}, got {value!r}")
            minimum, maximum = (bounds or {}).get(target, (None, None))
            if (minimum is not None and value < minimum) or (maximum is not None and value > maximum):
                within = f"from {minimum} to {maximum}" if minimum is not None and maximum is not None else \
                    f"at least {minimum}" if minimum is not None else f"at most {maximum}"
                raise self.error(f"settings.{name}", f"must be {within}, got {value!r}")
            if item is None:
                resolved[target] = value
            else:
                resolved.setdefault(target, {})[item] = value
        return resolved

    def error(self, key: str, message: str) -> UsageError:
        return UsageError(f"{self.path or 'configuration'}: key `{self.prefix}{key}`: {message}")

    # ---- what the configuration does to findings -----------------------------------------

    def is_enabled(self, rule_id: str, guidance: Iterable[str] = (), pack: str | None = None) -> bool:
        guidance = tuple(guidance)
        selected = _best(self.select, rule_id, guidance, pack)
        if selected is None:
            return False
        ignored = _best(self.ignore, rule_id, guidance, pack)
        return ignored is None or ignored < selected

    def severity_of(self, rule_id: str, guidance: Iterable[str], default: str, pack: str | None = None) -> str:
        guidance = tuple(guidance)
        best: tuple[tuple[int, int], str] | None = None
        for selector, severity in self.severity.items():
            rank = _specificity(selector, rule_id, guidance, pack)
            if rank is not None and (best is None or rank >= best[0]):
                best = (rank, severity)
        return default if best is None else best[1]

    def is_ignored_in(self, file: str, rule_id: str, guidance: Iterable[str] = (), pack: str | None = None) -> bool:
        if not self.per_file_ignores:
            return False
        return self._is_ignored_at(self.relative(file), rule_id, tuple(guidance), pack)

    def _is_ignored_at(self, relative: str, rule_id: str, guidance: tuple[str, ...], pack: str | None) -> bool:
        for glob, selectors in self.per_file_ignores:
            if _glob_matches(glob, relative) and _best(selectors, rule_id, guidance, pack) is not None:
                return True
        return False

    def relative(self, file: str) -> str:
        """`file` relative to the configuration's directory (forward slashes), when under it."""
        path = Path(os.path.abspath(file))
        try:
            return PurePosixPath(*path.relative_to(os.path.abspath(self.root)).parts).as_posix()
        except ValueError:
            return Path(file).as_posix()

    def apply_to_result(self, result):
        """A PlanResult without the findings the configuration turns off, with overridden severities."""
        if not result.valid or not result.findings:
            return result
        findings = []
        # A plan's findings name its file: its relative path (abspath, relative_to) is worked out
        # once per file, not once per finding, and not at all without per-file-ignores.
        relatives: dict[str, str] = {}
        for finding in result.findings:
            data = finding.to_json()
            rule_id, guidance = str(data["rule"]), tuple(data.get("guidance") or ())
            pack = getattr(finding, "pack", None)
            if not self.is_enabled(rule_id, guidance, pack):
                continue
            if self.per_file_ignores:
                file = (data.get("location") or {}).get("file") or result.file
                if file not in relatives:
                    relatives[file] = self.relative(file)
                if self._is_ignored_at(relatives[file], rule_id, guidance, pack):
                    continue
            severity = self.severity_of(rule_id, guidance, data["severity"], pack)
            findings.append(finding if severity == data["severity"] else with_severity(finding, severity))
        return replace(result, findings=findings)


def with_severity(finding, severity: str):
    """A copy of a finding with another severity (findings are dataclasses or plain objects)."""
    import copy
    import dataclasses

    if dataclasses.is_dataclass(finding) and any(f.name == "severity" for f in dataclasses.fields(finding)):
        return dataclasses.replace(finding, severity=severity)
    clone = copy.copy(finding)
    object.__setattr__(clone, "severity", severity)
    return clone


# ---- loading ---------------------------------------------------------------------------


def load(config_file: str | None = None, *, isolated: bool = False, cwd: str | None = None) -> Config:
    """The configuration for a run: `--config FILE`, `--isolated`, or the one discovered. Its
    `lang` becomes the run's language unless --lang or SSM_LANG says otherwise."""
    from ssm_rules import i18n

    configuration = _load(config_file, isolated=isolated, cwd=cwd)
    i18n.configure(configuration.lang)
    return configuration


def _load(config_file: str | None, *, isolated: bool, cwd: str | None) -> Config:
    start = Path(cwd or os.getcwd())
    if isolated:
        if config_file:
            raise UsageError("--config and --isolated cannot be used together")
        return Config(root=str(start))
    if config_file:
        path = Path(config_file)
        if not path.is_file():
            raise UsageError(f"{config_file}: no such configuration file")
        return read(path, explicit=True)
    found = discover(start)
    return read(found) if found else Config(root=str(start))


def discover(start: Path) -> Path | None:
    """The nearest `.ssm.toml`, or `pyproject.toml` with `[tool.ssm]`, from `start` upward."""
    start = Path(os.path.abspath(start))
    for directory in (start, *start.parents):
        for name in CONFIG_NAMES:
            candidate = directory / name
            if not candidate.is_file():
                continue
            if name == "pyproject.toml" and "ssm" not in (_parse_toml(candidate).get("tool") or {}):
                continue
            return candidate
    return None


def read(path: Path, *, explicit: bool = False) -> Config:
    """Read and validate one configuration file (pyproject.toml: its `[tool.ssm]` table)."""
    document = _parse_toml(path)
    if path.name == "pyproject.toml":
        tool = document.get("tool")
        table = tool.get("ssm") if isinstance(tool, dict) else None
        if table is None:
            if explicit:
                raise UsageError(f"{path}: has no [tool.ssm] table")
            table = {}
        if not isinstance(table, dict):
            raise UsageError(f"{path}: key `tool.ssm`: expected a table")
        return parse(table, path=str(path), prefix="tool.ssm.")
    return parse(document, path=str(path), prefix="")


def _parse_toml(path: Path) -> dict[str, Any]:
    import tomllib  # only when a configuration file exists: start-up time counts in hooks

    try:
        with open(path, "rb") as stream:
            raw = stream.read(_MAX_CONFIG_BYTES + 1)
    except OSError as error:
        raise UsageError(f"{path}: cannot read the configuration: {error.strerror or error}") from None
    if len(raw) > _MAX_CONFIG_BYTES:
        raise UsageError(f"{path}: the configuration is larger than {_MAX_CONFIG_BYTES // (1024 * 1024)} MiB")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as error:
        line = raw.count(b"\n", 0, error.start) + 1
        raise UsageError(f"{path}:{line}: not UTF-8 text (byte 0x{raw[error.start]:02x}); save the file "
                         f"as UTF-8") from None
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise UsageError(f"{path}: invalid TOML: {error}") from None
    except RecursionError:
        raise UsageError(f"{path}: invalid TOML: nested too deeply") from None


def parse(table: Mapping[str, Any], *, path: str | None = None, prefix: str = "") -> Config:
    """Validate a configuration table (the keys of `[tool.ssm]`) into a Config."""
    root = os.path.dirname(os.path.abspath(path)) if path else os.getcwd()
    blank = Config(path=path, root=root, prefix=prefix)

    def fail(key: str, message: str) -> UsageError:
        return blank.error(key, message)

    for key in table:
        if key not in KEYS:
            hint = did_you_mean(key.replace("_", "-"), list(KEYS))
            if key == "tool" and not prefix:
                hint = " (in .ssm.toml the keys go at the top level, without [tool.ssm])"
            raise fail(key, f"unknown key{hint}; known keys: {', '.join(KEYS)}")
    values: dict[str, Any] = {"path": path, "root": root, "prefix": prefix}
    if "select" in table:
        values["select"] = _selectors(table["select"], "select", fail)
    if "ignore" in table:
        values["ignore"] = _selectors(table["ignore"], "ignore", fail)
    if "severity" in table:
        severity = _table(table["severity"], "severity", fail)
        checked = {}
        for selector, value in severity.items():
            (name,) = _selectors([selector], f"severity.{_quote_key(selector)}", fail)
            if value not in SEVERITIES:
                raise fail(f"severity.{_quote_key(selector)}", f"expected one of {', '.join(SEVERITIES)}, got {value!r}")
            checked[name] = value
        values["severity"] = MappingProxyType(checked)
    if "settings" in table:
        flat: dict[str, Any] = {}

        def add(name: str, value: Any, depth: int) -> None:
            # Tables are flattened to dotted names: `[settings.focus] review_days = 60` is
            # "focus.review_days" (one pack's setting), `stage_weights = {proposed = 50}` is
            # "stage_weights.proposed" (one name of a mapping setting); check_against tells
            # them apart once the packs are known.
            if isinstance(value, dict) and depth < 2:
                for key, item in value.items():
                    add(f"{name}.{key}", item, depth + 1)
                return
            if isinstance(value, (dict, list)) or not isinstance(value, (int, float, str, bool)):
                raise fail(f"settings.{name}", f"expected a number, text or true/false, got {value!r}")
            if isinstance(value, float) and not math.isfinite(value):
                raise fail(f"settings.{name}", f"expected a finite number, got {value!r}")
            flat[name] = value

        for name, value in _table(table["settings"], "settings", fail).items():
            add(name, value, 0)
        values["settings"] = MappingProxyType(flat)
    if "packs" in table:
        packs = table["packs"]
        if not isinstance(packs, list) or not all(isinstance(p, str) and p for p in packs):
            raise fail("packs", "expected a list of rule pack directories")
        resolved = []
        for pack in packs:
            directory = os.path.normpath(os.path.join(root, os.path.expanduser(pack)))
            if not os.path.isdir(directory):
                raise fail("packs", f"{pack}: no such directory (relative to {root})")
            resolved.append(directory)
        values["packs"] = tuple(resolved)
    if "builtin" in table:
        if not isinstance(table["builtin"], bool):
            raise fail("builtin", f"expected true or false, got {table['builtin']!r}")
        values["builtin"] = table["builtin"]
    if "per-file-ignores" in table:
        from ssm_rules import globs

        entries = _table(table["per-file-ignores"], "per-file-ignores", fail)
        for glob in entries:
            try:
                globs.compile_glob(_normal_glob(glob))
            except globs.GlobError as error:
                raise fail(f"per-file-ignores.{_quote_key(glob)}", str(error)) from None
        values["per_file_ignores"] = tuple(
            (glob, _selectors(selectors, f"per-file-ignores.{_quote_key(glob)}", fail))
            for glob, selectors in entries.items())
    if "fail-on" in table:
        if table["fail-on"] not in FAIL_ON:
            raise fail("fail-on", f"expected one of {', '.join(FAIL_ON)}, got {table['fail-on']!r}")
        values["fail_on"] = table["fail-on"]
    if "salesforce" in table:
        values["salesforce"] = MappingProxyType(dict(_table(table["salesforce"], "salesforce", fail)))
    if "lang" in table:
        from ssm_rules import i18n

        language = i18n.normalize(table["lang"]) if isinstance(table["lang"], str) else None
        if language is None:
            raise fail("lang", f"expected one of {', '.join(i18n.LANGUAGES)}, got {table['lang']!r}")
        values["lang"] = language
    return Config(**values)


def _table(value: Any, key: str, fail) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise fail(key, f"expected a table, got {value!r}")
    return value


def _selectors(value: Any, key: str, fail) -> tuple[str, ...]:
    if isinstance(value, str):
        raise fail(key, f"expected a list of rule selectors, like [{value!r}]")
    if not isinstance(value, list):
        raise fail(key, f"expected a list of rule selectors, got {value!r}")
    selectors = []
    for item in value:
        if not isinstance(item, str) or not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]*", item.strip()):
            raise fail(key, f"{item!r} is not a rule ID, ID prefix, guidance ID or ALL")
        selectors.append(item.strip().upper())
    return tuple(selectors)


def _quote_key(key: str) -> str:
    return key if re.fullmatch(r"[A-Za-z0-9_-]+", key) else f'"{key}"'


# ---- selectors -------------------------------------------------------------------------


def _specificity(selector: str, rule_id: str, guidance: tuple[str, ...],
                 pack: str | None = None) -> tuple[int, int] | None:
    """How specifically `selector` names the rule (higher is more specific), or None."""
    rule = rule_id.upper()
    if selector == ALL:
        return (0, 0)
    if selector == rule:
        return (3, len(selector))
    if rule.startswith(selector):
        return (2, len(selector))
    if _GUIDANCE.match(selector) and selector in {g.upper() for g in guidance}:
        return (1, 0)
    if pack is not None and selector == pack.upper():
        return (0, 1)
    return None


def _best(selectors: Iterable[str], rule_id: str, guidance: tuple[str, ...],
          pack: str | None = None) -> tuple[int, int] | None:
    ranks = [rank for s in selectors if (rank := _specificity(s, rule_id, guidance, pack)) is not None]
    return max(ranks) if ranks else None


def _glob_matches(glob: str, relative: str) -> bool:
    from ssm_rules import globs

    pattern = _normal_glob(glob)
    if "/" not in pattern:
        return globs.matches(pattern, relative.rsplit("/", 1)[-1]) or globs.matches(pattern, relative)
    return globs.matches(pattern, relative)


def _normal_glob(glob: str) -> str:
    pattern = glob.replace("\\", "/")
    return pattern[2:] if pattern.startswith("./") else pattern


def _same_type(value: Any, default: Any) -> bool:
    if isinstance(default, bool) or isinstance(value, bool):
        return isinstance(value, bool) and isinstance(default, bool)
    if isinstance(default, (int, float)):
        return isinstance(value, (int, float)) and (isinstance(value, int) or not isinstance(default, int))
    return isinstance(value, type(default))


def _type_name(value: Any) -> str:
    if isinstance(value, bool):
        return "true or false"
    if isinstance(value, int):
        return "a whole number"
    if isinstance(value, float):
        return "a number"
    return "text"


def fails(report, fail_on: str) -> bool:
    """Whether a run fails (exit 1): an invalid plan, or a finding at or above `fail_on`."""
    failing = failing_severities(fail_on)
    for result in report.results:
        if not result.valid:
            return True
        if any(finding.severity in failing for finding in result.findings):
            return True
    return False
