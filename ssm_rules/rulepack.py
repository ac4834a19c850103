"""Rule packs: directories of YAML files -> validated `Pack` and `Rule` models.

The only place that reads rule files. A pack is a directory with a `pack.yaml`, optionally a
`guidance.yaml` beside it (the catalogue of guidance items its rules cite), and one rule a
file in every other `*.yaml` below it (sorted by path). Every mistake an author can make is
reported as `FILE:LINE: what is wrong (how to fix it)`, all of them at once, in one
`RulePackError` (a `UsageError`: the tool cannot run with a broken pack). A typo must never
switch a check off, so unknown keys, kinds, fields, names and settings are all errors.

YAML is read with the safe loader only, composed to nodes first so that every error can
point at the line of the offending key.
"""

from __future__ import annotations

import dataclasses
import errno
import math
import os
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Any, Literal

import yaml

from ssm_rules import templates
from ssm_rules.errors import UsageError
from ssm_rules.severity import SEVERITIES
from ssm_rules.suggestions import did_you_mean

SUBJECT_KINDS = ("plan", "contact", "opportunity", "initiative", "route", "partner", "issue",
                 "thought_leadership")
OPERATORS = ("eq", "ne", "lt", "lte", "gt", "gte", "in", "not_in", "exists")
ORDERING_OPERATORS = ("lt", "lte", "gt", "gte")
PACK_KEYS = ("name", "title", "description", "url", "settings", "outcome")
PACK_FILE = "pack.yaml"
GUIDANCE_FILE = "guidance.yaml"
CATALOGUE_KEYS = ("title", "sections")
SECTION_KEYS = ("title", "items")
GUIDANCE_KEYS = ("id", "title", "looks_for", "severity", "label", "no_rule")
RULE_KEYS = ("id", "title", "severity", "guidance", "when", "subject", "location", "message",
             "next_action", "owner", "once_per_subject", "derive", "description", "examples")
FINDING_KEYS = ("severity", "message", "next_action")
ACCOUNT_OWNER = "account"
# Kinds whose facts have an `owner` a next action can go to (`owner: NAME`).
OWNER_KINDS = ("contact", "opportunity")
# Names a rule may not bind: `settings` is taken by templates, `account` by `owner`.
RESERVED_NAMES = ("settings", ACCOUNT_OWNER)
# Field names a derived fact may not declare: the engine and the facts module use them.
RESERVED_FIELDS = ("kind", "id", "sid", "path")
# The engine keeps at most 16 facts in one match (the compiler adds a gate fact).
MAX_PATTERNS = 12
MAX_RULE_FILE_BYTES = 256 * 1024
MAX_NESTING = 64  # levels of mappings and lists in a rule file (an example plan included)
MAX_DERIVATION_DEPTH = 64  # derived kinds built on derived kinds: each level is one more engine batch a plan

_NAME = re.compile(r"[a-z][a-z0-9_]*\Z")
_KIND = re.compile(r"[a-z][a-z0-9_]*\Z")
_FIELD = re.compile(r"[a-z_][a-z0-9_]*\Z")
_RULE_ID = re.compile(r"[A-Za-z][A-Za-z0-9]*(?:[-_.][A-Za-z0-9]+)*\Z")
_PACK_NAME = re.compile(r"[a-z0-9][a-z0-9._-]*\Z")
_REFERENCE = re.compile(r"\$([A-Za-z_][A-Za-z0-9_]*)\.([A-Za-z_][A-Za-z0-9_]*)\Z")
_ISO_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}(?:[T ][0-9:.+-]+Z?)?\Z")


class RulePackError(UsageError):
    """One or more mistakes in rule packs; `problems` holds one `FILE:LINE: ...` line each."""

    def __init__(self, problems: list[str]):
        super().__init__("\n".join(problems))
        self.problems = problems


# ---- the model ------------------------------------------------------------------------------


# Plain frozen dataclasses, not pydantic models: the reader below validates every value (with
# the line to fix), and a cached pack is unpickled on every `ssm check`, which must not have to
# import pydantic to do so (start-up time: bench/README.md).
_model = dataclass(frozen=True, kw_only=True)


@_model
class Const:
    """A literal value in a test or a derived field."""

    value: str | int | float | bool


@_model
class FieldRef:
    """`$NAME.FIELD`: a field of the fact bound to NAME by an earlier pattern."""

    name: str
    field: str


@_model
class SettingRef:
    """`$settings.NAME`: a pack setting, fixed when the rules are compiled."""

    setting: str


Operand = Const | FieldRef | SettingRef


@_model
class Test:
    """One test on one field. `value` is an operand, a list of them (in, not_in) or a bool (exists)."""

    field: str
    op: Literal["eq", "ne", "lt", "lte", "gt", "gte", "in", "not_in", "exists"]
    value: Operand | tuple[Operand, ...] | bool
    line: int = 0

    @property
    def operands(self) -> tuple[Operand, ...]:
        if isinstance(self.value, bool):
            return ()
        return self.value if isinstance(self.value, tuple) else (self.value,)


@_model
class Pattern:
    """`KIND: NAME` (a fact that must exist) or `not: KIND` (no such fact), with its tests.

    The pattern holds when every `where` test holds and, if `any` is given, every test of at
    least one of its branches.
    """

    kind: str
    name: str | None = None
    negated: bool = False
    where: tuple[Test, ...] = ()
    any: tuple[tuple[Test, ...], ...] = ()
    line: int = 0

    def tests(self) -> Iterable[Test]:
        yield from self.where
        for branch in self.any:
            yield from branch


@_model
class Derive:
    kind: str
    fields: dict[str, Operand]
    line: int = 0


@_model
class Description:
    what: str | None = None
    why: str | None = None
    example: str | None = None


@_model
class Example:
    plan: dict[str, Any]
    subjects: tuple[str | int, ...] | None = None


@_model
class Examples:
    fail: tuple[Example, ...] = ()
    pass_: tuple[Example, ...] = ()


@_model
class Rule:
    id: str
    title: str
    severity: Literal["error", "warning", "info"] | None = None
    guidance: tuple[str, ...] = ()
    when: tuple[Pattern, ...]
    subject: str | None = None  # resolved: the first bound name when the file gives none
    location: str | None = None
    message: str | None = None
    next_action: str | None = None
    owner: str | None = None  # "account", a bound name of kind contact or opportunity, or None (the default)
    once_per_subject: bool = False  # one finding per subject, at the location of the first match
    derive: Derive | None = None
    description: Description | None = None
    examples: Examples | None = None
    pack: str
    file: str
    lines: dict[str, int] = field(default_factory=dict)  # top-level key -> line, for later messages (the compiler's)
    url: str | None = None  # its documentation page, from the pack's `url:`; None when the pack gives none

    @property
    def has_finding(self) -> bool:
        return self.message is not None

    @property
    def names(self) -> dict[str, str]:
        """Bound name -> kind, in pattern order."""
        return {p.name: p.kind for p in self.when if not p.negated and p.name}

    @property
    def kinds_used(self) -> set[str]:
        return {p.kind for p in self.when}

    def source(self, key: str = "id") -> str:
        """`FILE:LINE` of a top-level key, for messages about this rule."""
        return f"{self.file}:{self.lines.get(key, 1)}"


@_model
class GuidanceItem:
    """One item of a guidance catalogue: what the method asks, and how the rules check it."""

    id: str
    title: str
    section: str
    looks_for: str | None = None
    severity: tuple[str, ...] = ()  # the default severity of the rules that enforce it
    label: str | None = None  # a short name, for charts
    no_rule: str | None = None  # why no rule enforces the item (it is reported another way)
    pack: str
    file: str
    line: int = 0


@_model
class Catalogue:
    """A pack's `guidance.yaml`: its guidance items, in the order of the method."""

    title: str
    items: tuple[GuidanceItem, ...]
    file: str


@_model
class Setting:
    # A mapping setting (`stage_weights`) maps names to plain values; commands read it, rules
    # cannot compare with it.
    default: str | int | float | bool | dict[str, str | int | float | bool]
    description: str | None = None
    # Bounds of a number setting (of each value of a mapping): a configuration outside them is
    # an error, not a rule that quietly fires on everything (`stalled_days = -1`).
    minimum: int | float | None = None
    maximum: int | float | None = None

    @property
    def is_mapping(self) -> bool:
        return isinstance(self.default, dict)


@_model
class Outcome:
    """The derived facts that make up the verifiable outcome: items with a `kind` fact whose
    `field` equals the item are met, the others missing."""

    kind: str
    field: str
    items: tuple[str, ...]


@_model
class Pack:
    name: str
    title: str
    description: str | None = None
    url: str | None = None  # where its rules are documented: `{rule}` and `{anchor}` are filled in per rule
    settings: dict[str, Setting] = field(default_factory=dict)
    outcome: Outcome | None = None
    catalogue: Catalogue | None = None
    rules: tuple[Rule, ...] = ()
    directory: str
    file: str

    def setting_defaults(self) -> dict[str, Any]:
        return {name: setting.default for name, setting in self.settings.items()}


# Every pack has these settings (a pack.yaml may declare a larger default): they bound the work
# the rules may do on one plan, so that no plan (hostile or not) can keep a run busy for hours
# or take gigabytes. A run uses the largest value any loaded pack has; `[tool.ssm.settings]`
# sets them like any setting. The engine (ssm_rules.engine) enforces them.
BUDGET_SETTINGS = {
    "max_facts": Setting(default=10_000, description=(
        "Facts one plan may give the rules (a contact, an opportunity, a buying-unit role ... each "
        "is one); a plan with more is an error of that plan. Real plans have a few hundred.")),
    "max_derived_facts": Setting(default=10_000, description=(
        "Facts the rules may derive from one plan; past it the plan is an error naming the rule.")),
    "max_matches": Setting(default=100_000, description=(
        "Combinations of facts the rules may match in one plan, bounded from the plan's facts before "
        "the engine builds them (a rule pairing every contact with every other of 2,000 would make "
        "4,000,000); past it the plan is an error naming the rule.")),
    "max_seconds": Setting(default=30.0, description=(
        "Seconds the rules may take on one plan (they take milliseconds); past it the plan is an "
        "error naming the rule that was running.")),
}


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _setting_bounds(name: str, spec: dict, default: Any, path: tuple, source: Any,
                    problems: Any) -> tuple[Any, Any] | None:
    """(minimum, maximum) of a setting (None where not given), or None after adding a problem:
    bounds are numbers, of a number setting (or a mapping of numbers), its default within them."""
    minimum, maximum = spec.get("minimum"), spec.get("maximum")
    if minimum is None and maximum is None:
        return None, None
    values = list(default.values()) if isinstance(default, dict) else [default]
    for key, bound in (("minimum", minimum), ("maximum", maximum)):
        if bound is not None and not _is_number(bound):
            problems.add(source.file, source.line(path + (key,)), f"`{key}` of setting `{name}` must be a number")
            return None
    if not all(_is_number(value) for value in values):
        problems.add(source.file, source.line(path + ("minimum" if minimum is not None else "maximum",)),
                     f"setting `{name}` has bounds, so its default must be a number (or a mapping of numbers)")
        return None
    if minimum is not None and maximum is not None and minimum > maximum:
        problems.add(source.file, source.line(path + ("maximum",)),
                     f"setting `{name}`: `maximum` {maximum} is less than `minimum` {minimum}")
        return None
    for value in values:
        if (minimum is not None and value < minimum) or (maximum is not None and value > maximum):
            problems.add(source.file, source.line(path + ("default",)),
                         f"the default {value} of setting `{name}` lies outside its bounds "
                         f"({_bounds_text(minimum, maximum)})")
            return None
    return minimum, maximum


def _bounds_text(minimum: Any, maximum: Any) -> str:
    if minimum is not None and maximum is not None:
        return f"from {minimum} to {maximum}"
    return f"at least {minimum}" if minimum is not None else f"at most {maximum}"


def _is_budget(value: Any, default: int | float) -> bool:
    """A positive finite number, whole when the built-in default is."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return False
    if isinstance(default, int) and not isinstance(value, int):
        return False
    return math.isfinite(value) and value > 0


# ---- public API -----------------------------------------------------------------------------


# The built-in packs, in the order they load: SSM Phase 1 (Focus), then the opportunity stages.
BUILTIN_PACKS = ("focus", "stages")


def builtin_rules_dir() -> Path:
    """The directory of the built-in packs: inside an installed wheel, or `rules/` of a source
    checkout (an editable install, or running from the tree)."""
    package = Path(__file__).resolve().parent
    installed = package / "builtin_rules"
    checkout = package.parent / "rules"
    for candidate in (installed, checkout):
        if all((candidate / name).is_dir() for name in BUILTIN_PACKS):
            return candidate
    raise UsageError(f"the built-in rule packs are missing (looked in {installed} and {checkout}); "
                     f"reinstall ssm-rules")


def builtin_pack_dirs() -> list[Path]:
    return [builtin_rules_dir() / name for name in BUILTIN_PACKS]


def builtin_pack_dir(name: str = "focus") -> Path:
    """One built-in pack's directory."""
    return builtin_rules_dir() / name


def load_packs(dirs: Sequence[str | os.PathLike], include_builtin: bool = True, *,
               fact_fields: Mapping[str, Mapping[str, tuple[str, str]]] | None = None) -> list[Pack]:
    """Load and check rule packs (the built-in ones first); raise RulePackError on any mistake.

    `fact_fields` (kind -> field -> (type, description)) is the catalogue of base facts; by
    default `ssm_rules.facts.FACT_FIELDS`.
    """
    if fact_fields is None:
        from ssm_rules.facts import FACT_FIELDS

        fact_fields = FACT_FIELDS
    directories: list[str] = [str(d) for d in builtin_pack_dirs()] if include_builtin else []
    directories += [os.fspath(d) for d in dirs]
    problems = _Problems()
    base = {kind: {name: spec[0] for name, spec in fields.items()} for kind, fields in fact_fields.items()}
    packs = [pack for directory in directories if (pack := _load_pack(directory, problems, base))]
    if not problems:
        _check_across_packs(packs, base, problems)
    if problems:
        raise RulePackError(problems.in_order())
    return packs


def all_rules(packs: Iterable[Pack]) -> list[Rule]:
    return [rule for pack in packs for rule in pack.rules]


def guidance_items(packs: Iterable[Pack]) -> dict[str, GuidanceItem]:
    """Every guidance item of the packs' catalogues, by upper-case ID, in catalogue order."""
    return {item.id.upper(): item for pack in packs if pack.catalogue for item in pack.catalogue.items}


def load_catalogue(path: str | os.PathLike, pack: str) -> Catalogue:
    """Read and check one `guidance.yaml` on its own; raise RulePackError on any mistake."""
    problems = _Problems()
    source = _read_yaml(_display(os.fspath(path)), problems)
    catalogue = _parse_catalogue(source, pack, problems) if source else None
    if problems or catalogue is None:
        raise RulePackError(problems.lines or [f"{path}:1: cannot read the guidance catalogue"])
    return catalogue


def derived_fields(rules: Iterable[Rule]) -> dict[str, set[str]]:
    """Derived kind -> the fields its derive blocks list."""
    kinds: dict[str, set[str]] = {}
    for rule in rules:
        if rule.derive:
            kinds.setdefault(rule.derive.kind, set()).update(rule.derive.fields)
    return kinds


def rule_strata(rules: Sequence[Rule]) -> dict[str, int]:
    """Rule ID -> stratum: a rule runs after every rule that derives a kind it uses.

    Base kinds are stratum 0; a derived kind is one above the highest rule deriving it; a rule
    sits at the highest stratum of the kinds it uses (matched or negated). A rule may match
    (never negate) the kind it derives itself: one level of a chain from the level below, as
    the supported stage is derived milestone by milestone. Such a rule runs in the stratum of
    its other kinds, and the engine asserts what it derives at once, until nothing new comes,
    before the next stratum. Any other cycle (a derived kind that depends on itself through
    other rules or through a negation) raises RulePackError.
    """
    derivers: dict[str, list[Rule]] = {}
    for rule in rules:
        if rule.derive:
            derivers.setdefault(rule.derive.kind, []).append(rule)
    rule_stratum: dict[str, int] = {}
    kind_stratum: dict[str, int] = {}
    path: list[tuple[str, Rule]] = []  # (kind, rule deriving it) being worked out

    def of_kind(kind: str) -> int:
        if kind not in derivers:
            return 0
        if kind not in kind_stratum:
            # Set only when every deriver is known: with a partial value, a cycle through the
            # second deriver of a kind would go unnoticed (and give wrong strata).
            if any(k == kind for k, _ in path):
                raise RulePackError([_cycle_message(path, kind)])
            stratum = 0
            for rule in derivers[kind]:
                if len(path) >= MAX_DERIVATION_DEPTH:  # each level is a stratum, and two Python calls here
                    raise RulePackError([f"{rule.source('when')}: derived kinds build on each other more than "
                                         f"{MAX_DERIVATION_DEPTH} levels deep (from `{path[0][0]}`, derived by "
                                         f"{path[0][1].id}, down to `{kind}`); derive in fewer steps"])
                path.append((kind, rule))
                stratum = max(stratum, 1 + of_rule(rule))
                path.pop()
            kind_stratum[kind] = stratum
        return kind_stratum[kind]

    def of_rule(rule: Rule) -> int:
        if rule.id not in rule_stratum:
            rule_stratum[rule.id] = max((of_kind(k) for k in sorted(rule.kinds_used - _self_matched(rule))),
                                        default=0)
        return rule_stratum[rule.id]

    for rule in rules:
        of_rule(rule)
    return rule_stratum


def _self_matched(rule: Rule) -> set[str]:
    """The kind a rule derives, when it only matches it (never negates it): its own chain."""
    if rule.derive is None:
        return set()
    kind = rule.derive.kind
    uses = [p for p in rule.when if p.kind == kind]
    return {kind} if uses and not any(p.negated for p in uses) else set()


def recursive_kinds(rules: Iterable[Rule], strata: Mapping[str, int]) -> dict[str, int]:
    """Derived kind -> the first stratum with a rule that matches it while deriving it: from
    that stratum on, its facts are asserted as soon as they are derived (a chain)."""
    first: dict[str, int] = {}
    for rule in rules:
        for kind in _self_matched(rule):
            first[kind] = min(first.get(kind, strata[rule.id]), strata[rule.id])
    return first


def _cycle_message(path: list[tuple[str, Rule]], kind: str) -> str:
    start = next(i for i, (k, _) in enumerate(path) if k == kind)
    steps = ", which uses ".join(f"`{k}`, derived by {rule.id} ({rule.source('when')})" for k, rule in path[start:])
    return (f"{path[start][1].source('when')}: the derived kind `{kind}` depends on itself: {steps}, "
            f"which uses `{kind}`; a rule cannot use, even through other rules, a kind it derives")


# ---- reading YAML with positions ------------------------------------------------------------


class _Problems:
    def __init__(self) -> None:
        self.lines: list[str] = []
        self._order: list[tuple[int, int, int]] = []  # (file's first appearance, line, index in lines)
        self._files: dict[str, int] = {}

    def add(self, file: str, line: int, message: str, column: int | None = None) -> None:
        where = f"{line}:{column}" if column else f"{line}"
        self._order.append((self._files.setdefault(file, len(self._files)), line, len(self.lines)))
        self.lines.append(f"{file}:{where}: {message}")

    def in_order(self) -> list[str]:
        """The problems file by file (in the order the files were read), each file's by line;
        lines added as text (`lines.extend`) come last."""
        placed = sorted(self._order)
        ranked = {index for _, _, index in placed}
        return [self.lines[index] for _, _, index in placed] + \
            [line for index, line in enumerate(self.lines) if index not in ranked]

    def __bool__(self) -> bool:
        return bool(self.lines)

    def __len__(self) -> int:
        return len(self.lines)


class _YamlProblem(Exception):
    def __init__(self, line: int, message: str):
        super().__init__(message)
        self.line = line


@dataclass
class _Source:
    """A parsed file: its data, and the line of every key and value by path."""

    file: str
    data: Any = None
    key_lines: dict[tuple, int] = field(default_factory=dict)
    value_lines: dict[tuple, int] = field(default_factory=dict)

    def line(self, path: tuple, *, key: bool = True) -> int:
        """Line of the key at `path` (or of its value), else of its nearest ancestor."""
        while path:
            found = (self.key_lines if key else self.value_lines).get(path) or \
                self.key_lines.get(path) or self.value_lines.get(path)
            if found:
                return found
            path = path[:-1]
        return self.value_lines.get((), 1)


class _RuleLoader(getattr(yaml, "CSafeLoader", yaml.SafeLoader)):
    """The safe loader, reading every number a person writes as a number: YAML 1.1 reads `1e6`
    and `1.5e6` (an exponent without a sign) as text, which a rule would then compare with
    numbers as text."""


_RuleLoader.add_implicit_resolver(
    "tag:yaml.org,2002:float", re.compile(r"^[-+]?(?:[0-9][0-9_]*(?:\.[0-9_]*)?|\.[0-9_]+)[eE][-+]?[0-9]+$"),
    list("-+.0123456789"))
_SAFE_LOADER = _RuleLoader
_MERGE_TAG = "tag:yaml.org,2002:merge"
_PLAIN_TAGS = ("tag:yaml.org,2002:map", "tag:yaml.org,2002:seq")


def _read_yaml(path: str, problems: _Problems) -> _Source | None:
    from ssm_rules.atomic import read_regular_file

    source = _Source(path)
    try:
        raw = read_regular_file(path, MAX_RULE_FILE_BYTES)  # a FIFO is refused, not waited on
    except OSError as exc:
        if exc.errno == errno.EFBIG:
            expected = "a guidance catalogue" if os.path.basename(path) == GUIDANCE_FILE else "a rule file holds one rule"
            problems.add(path, 1, f"the file is larger than {MAX_RULE_FILE_BYTES // 1024} KiB; {expected}")
        else:
            problems.add(path, 1, f"cannot read the file: {exc.strerror or exc}")
        return None
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw[:exc.start].count(b"\n") + 1
        problems.add(path, line, "the file is not UTF-8 text")
        return None
    try:
        node = yaml.compose(text, Loader=_SAFE_LOADER)
    except yaml.YAMLError as exc:
        # The plan loader's wording: a tab, an unclosed quote, a stray control character are
        # named, with line and column, the same way in rule files as in plans.
        from ssm_rules.loader import _stream_problem, _syntax_problem

        found = (_syntax_problem(exc, text, MAX_NESTING) if isinstance(exc, yaml.MarkedYAMLError)
                 else _stream_problem(exc, text))
        message = found.message.replace("the plan is", "the file is", 1)
        problems.add(path, found.line or 1, f"YAML syntax error: {message}", found.column)
        return None
    if node is None:
        problems.add(path, 1, "the file is empty")
        return None
    try:
        source.data = _to_python(node, (), source, set())
    except _YamlProblem as problem:
        problems.add(path, problem.line, str(problem))
        return None
    return source


def _to_python(node: yaml.Node, path: tuple, source: _Source, seen: set[int]) -> Any:
    line = node.start_mark.line + 1
    if len(path) > MAX_NESTING:  # each level is a Python call: stop long before the recursion limit
        raise _YamlProblem(line, f"nested more than {MAX_NESTING} levels deep; a rule is far flatter")
    if id(node) in seen:  # an alias: point at the key that uses it
        raise _YamlProblem(source.key_lines.get(path, line),
                           "anchors and aliases (`&name`, `*name`) are not supported in rule files")
    seen.add(id(node))
    if isinstance(node, (yaml.MappingNode, yaml.SequenceNode)) and node.tag not in _PLAIN_TAGS:
        raise _YamlProblem(line, f"cannot read the tag `{node.tag}`: rule files hold plain data")
    source.value_lines[path] = line
    if isinstance(node, yaml.MappingNode):
        result: dict[str, Any] = {}
        for key_node, value_node in node.value:
            key_line = key_node.start_mark.line + 1
            if key_node.tag == _MERGE_TAG:
                raise _YamlProblem(key_line, "merge keys (`<<`) are not supported in rule files")
            if not isinstance(key_node, yaml.ScalarNode):
                raise _YamlProblem(key_line, "a key must be plain text")
            key = _scalar(key_node)
            if not isinstance(key, str):
                key = key_node.value  # `1:` or `true:` as a key: keep the text as written
            if key in result:
                raise _YamlProblem(key_line, f"duplicate key `{key}` (already given on line "
                                             f"{source.key_lines[path + (key,)]})")
            source.key_lines[path + (key,)] = key_line
            result[key] = _to_python(value_node, path + (key,), source, seen)
        return result
    if isinstance(node, yaml.SequenceNode):
        items = []
        for index, item in enumerate(node.value):
            source.key_lines[path + (index,)] = item.start_mark.line + 1
            items.append(_to_python(item, path + (index,), source, seen))
        return items
    return _scalar(node)


def _scalar(node: yaml.ScalarNode) -> Any:
    try:
        return _CONSTRUCTOR.construct_object(node)
    except yaml.YAMLError as exc:
        raise _YamlProblem(node.start_mark.line + 1,
                           f"cannot read `{node.value}` ({getattr(exc, 'problem', None) or exc})") from None


_CONSTRUCTOR = yaml.constructor.SafeConstructor()


# ---- loading one pack -----------------------------------------------------------------------


def _display(path: str) -> str:
    """A path as the user will recognise it: relative to the working directory when inside it."""
    try:
        relative = os.path.relpath(path)
    except ValueError:  # another drive (Windows)
        return path
    return path if relative.startswith("..") else relative


def _load_pack(directory: str, problems: _Problems, base: dict[str, dict[str, str]]) -> Pack | None:
    shown = _display(directory)
    if not os.path.isdir(directory):
        what = "does not exist" if not os.path.exists(directory) else "is not a directory"
        problems.add(shown, 1, f"rule pack directory {what}")
        return None
    pack_file = os.path.join(shown, PACK_FILE)
    if not os.path.isfile(pack_file):
        problems.add(shown, 1, "not a rule pack: it has no `pack.yaml` (see docs/rule-language.md)")
        return None
    source = _read_yaml(pack_file, problems)
    header = _parse_pack_file(source, problems) if source else None
    name = header["name"] if header else None
    settings = header["settings"] if header else None
    catalogue = None
    guidance_file = os.path.join(shown, GUIDANCE_FILE)
    if os.path.exists(guidance_file):
        guidance_source = _read_yaml(guidance_file, problems)
        if guidance_source is not None:
            catalogue = _parse_catalogue(guidance_source, name or "?", problems)
    rules = []
    for rule_file in _rule_files(shown, problems):
        rule_source = _read_yaml(rule_file, problems)
        if rule_source is not None:
            rule = _RuleReader(rule_source, name or "?", settings, problems, base).read()
            if rule is not None:
                rules.append(rule)
    if header is None:
        return None
    if header["url"]:
        rules = [dataclasses.replace(rule, url=rule_url(header["url"], rule.id)) for rule in rules]
    return Pack(rules=tuple(rules), catalogue=catalogue, directory=shown, file=pack_file, **header)


def rule_url(template: str, rule_id: str) -> str:
    """A pack's `url:` for one rule: `{rule}` is its ID, `{anchor}` the ID in lower case (the
    anchor `ssm rules --format markdown` gives each rule)."""
    return template.replace("{rule}", rule_id).replace("{anchor}", rule_id.lower())


def _rule_files(directory: str, problems: _Problems) -> list[str]:
    found: list[str] = []
    for root, dirs, files in os.walk(directory):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        relative_root = os.path.relpath(root, directory)
        for name in sorted(files):
            if name.startswith("."):
                continue
            path = os.path.join(root, name)
            if relative_root != "." and name == PACK_FILE:
                problems.add(path, 1, "a pack cannot contain another pack; give the inner "
                                      "directory to --rules on its own")
            elif relative_root != "." and name == GUIDANCE_FILE:
                problems.add(path, 1, f"a guidance catalogue belongs beside {PACK_FILE}, in the "
                                      f"pack's own directory; move it there")
            elif name.endswith(".yml"):
                problems.add(path, 1, "rule files end in `.yaml`; rename it, or it would be ignored")
            elif name.endswith(".yaml") and not (relative_root == "." and name in (PACK_FILE, GUIDANCE_FILE)):
                found.append(path)
    return sorted(found, key=lambda p: Path(os.path.relpath(p, directory)).as_posix())


def _parse_pack_file(source: _Source, problems: _Problems) -> dict | None:
    file, data = source.file, source.data
    count = len(problems)
    if not isinstance(data, dict):
        problems.add(file, 1, "pack.yaml must be a mapping with `name`, `title` and optional "
                              "`settings`, `outcome`")
        return None
    _check_keys(data, PACK_KEYS, (), source, problems, "pack.yaml")
    name = _required_text(data, "name", (), source, problems)
    if name is not None and not _PACK_NAME.match(name):
        problems.add(file, source.line(("name",)), f"pack name `{name}` must be a slug "
                                                   f"(lower-case letters, digits, `.`, `_`, `-`)")
    title = _required_text(data, "title", (), source, problems)
    description = _optional_text(data, "description", (), source, problems)
    url = _optional_text(data, "url", (), source, problems)
    if url is not None and not _valid_url(url):
        problems.add(file, source.line(("url",)), f"`url` must be an http(s) address of the rules' documentation; "
                                                 f"`{{rule}}` and `{{anchor}}` stand for the rule's ID and its "
                                                 f"lower-case anchor (e.g. https://example.com/rules.html#{{anchor}})")
    settings: dict[str, Setting] = {}
    raw_settings = data.get("settings")
    if raw_settings is not None and not isinstance(raw_settings, dict):
        problems.add(file, source.line(("settings",)), "`settings` maps each setting name to "
                                                       "{default: VALUE, description: TEXT}")
    for setting_name, spec in (raw_settings or {}).items() if isinstance(raw_settings, dict) else ():
        path = ("settings", setting_name)
        if not _FIELD.match(setting_name):
            problems.add(file, source.line(path), f"setting name `{setting_name}` must be "
                                                  f"lower_case_with_underscores")
            continue
        if not isinstance(spec, dict):
            problems.add(file, source.line(path), f"setting `{setting_name}` needs "
                                                  f"{{default: VALUE, description: TEXT}}")
            continue
        _check_keys(spec, ("default", "description", "minimum", "maximum"), path, source, problems, "a setting")
        default = spec.get("default")
        if isinstance(default, dict) and default and all(
                isinstance(k, str) and _FIELD.match(k) and _is_plain_value(v) for k, v in default.items()):
            value: Any = {k: _plain_value(v) for k, v in default.items()}
        elif "default" in spec and _is_plain_value(default):
            value = _plain_value(default)
        else:
            problems.add(file, source.line(path + ("default",)),
                         f"setting `{setting_name}` needs a `default`: text, a number, true/false, or a "
                         f"mapping of lower_case names to such values")
            continue
        bounds = _setting_bounds(setting_name, spec, value, path, source, problems)
        if bounds is None:
            continue
        settings[setting_name] = Setting(default=value,
                                         description=_optional_text(spec, "description", path, source, problems),
                                         minimum=bounds[0], maximum=bounds[1])
    for budget_name, budget in BUDGET_SETTINGS.items():
        declared = settings.get(budget_name)
        if declared is None:
            settings[budget_name] = budget
        elif not _is_budget(declared.default, budget.default):
            problems.add(file, source.line(("settings", budget_name, "default")),
                         f"setting `{budget_name}` is a budget of every pack: its default must be a positive "
                         f"{'whole number' if isinstance(budget.default, int) else 'number'} (the built-in "
                         f"default is {budget.default:,})")
    outcome = None
    raw_outcome = data.get("outcome")
    if raw_outcome is not None:
        outcome = _parse_outcome(raw_outcome, source, problems)
    if len(problems) > count or name is None or title is None:
        return None
    return {"name": name, "title": title, "description": description, "url": url, "settings": settings,
            "outcome": outcome}


def _valid_url(url: str) -> bool:
    """An http(s) address whose only braces are the `{rule}` and `{anchor}` placeholders."""
    rest = url.replace("{rule}", "").replace("{anchor}", "")
    return bool(re.match(r"https?://[^\s/{}]+\S*\Z", url)) and "{" not in rest and "}" not in rest


def _parse_outcome(raw: Any, source: _Source, problems: _Problems) -> Outcome | None:
    path = ("outcome",)
    if not isinstance(raw, dict):
        problems.add(source.file, source.line(path), "`outcome` needs {kind: KIND, field: FIELD, items: [...]}")
        return None
    before = len(problems)
    _check_keys(raw, ("kind", "field", "items"), path, source, problems, "outcome")
    kind = _required_text(raw, "kind", path, source, problems)
    field_name = _required_text(raw, "field", path, source, problems)
    items = raw.get("items")
    if not isinstance(items, list) or not items or not all(isinstance(i, str) and i for i in items):
        problems.add(source.file, source.line(path + ("items",)), "`outcome.items` is a non-empty list of item names")
    elif len(set(items)) != len(items):
        problems.add(source.file, source.line(path + ("items",)), "`outcome.items` lists an item twice")
    if len(problems) > before:
        return None
    return Outcome(kind=kind, field=field_name, items=tuple(items))


# ---- reading a guidance catalogue -----------------------------------------------------------


def _parse_catalogue(source: _Source, pack: str, problems: _Problems) -> Catalogue | None:
    file, data = source.file, source.data
    before = len(problems)
    shape = "{title: TEXT, sections: [{title: TEXT, items: [{id: ID, title: TEXT, ...}]}]}"
    if not isinstance(data, dict):
        problems.add(file, 1, f"{GUIDANCE_FILE} must be a mapping: {shape}")
        return None
    _check_keys(data, CATALOGUE_KEYS, (), source, problems, GUIDANCE_FILE)
    title = _required_text(data, "title", (), source, problems)
    sections = data.get("sections")
    if not isinstance(sections, list) or not sections:
        problems.add(file, source.line(("sections",)), f"`sections` is a non-empty list: {shape}")
        return None
    items: list[GuidanceItem] = []
    first_line: dict[str, int] = {}
    for number, section in enumerate(sections):
        path = ("sections", number)
        if not isinstance(section, dict):
            problems.add(file, source.line(path), "a section is a mapping {title: TEXT, items: [...]}")
            continue
        _check_keys(section, SECTION_KEYS, path, source, problems, "a section")
        section_title = _required_text(section, "title", path, source, problems)
        entries = section.get("items")
        if not isinstance(entries, list) or not entries:
            problems.add(file, source.line(path + ("items",)), "`items` is a non-empty list of guidance items")
            continue
        for index, entry in enumerate(entries):
            item = _guidance_item(entry, path + ("items", index), section_title or "?", pack, source, problems)
            if item is None:
                continue
            key = item.id.upper()
            if key in first_line:
                problems.add(file, item.line, f"guidance ID `{item.id}` is already used on line "
                                              f"{first_line[key]}; guidance IDs are unique")
            first_line.setdefault(key, item.line)
            items.append(item)
    if len(problems) > before or title is None:
        return None
    return Catalogue(title=title, items=tuple(items), file=file)


def _guidance_item(entry: Any, path: tuple, section: str, pack: str, source: _Source,
                   problems: _Problems) -> GuidanceItem | None:
    file = source.file
    if not isinstance(entry, dict):
        problems.add(file, source.line(path), "a guidance item is a mapping {id: ID, title: TEXT, "
                                              "looks_for: TEXT, severity: SEVERITY}")
        return None
    before = len(problems)
    _check_keys(entry, GUIDANCE_KEYS, path, source, problems, "a guidance item")
    guidance_id = _required_text(entry, "id", path, source, problems)
    if guidance_id is not None and not _RULE_ID.match(guidance_id):
        problems.add(file, source.line(path + ("id",)), f"guidance ID `{guidance_id}` may only hold letters, "
                                                        f"digits and single `-`, `_` or `.` between them (e.g. G60)")
    title = _required_text(entry, "title", path, source, problems)
    texts = {key: _optional_text(entry, key, path, source, problems) for key in ("looks_for", "label", "no_rule")}
    raw_severity = entry.get("severity", [])
    severity = tuple(raw_severity) if isinstance(raw_severity, list) else (raw_severity,)
    for value in severity:
        if value not in SEVERITIES:
            problems.add(file, source.line(path + ("severity",)),
                         f"severity must be one of {', '.join(SEVERITIES)} (or a list of them), not "
                         f"`{value}`{did_you_mean(str(value), SEVERITIES)}")
    if severity and texts["no_rule"]:
        problems.add(file, source.line(path + ("severity",)), "an item with `no_rule` has no rules, so no "
                                                              "default severity; remove one of the two")
    if len(problems) > before:
        return None
    return GuidanceItem(id=guidance_id, title=title, section=section, severity=severity, pack=pack, file=file,
                        line=source.line(path), **texts)


# ---- reading one rule -----------------------------------------------------------------------


class _RuleReader:
    """Checks one rule file on its own (the catalogue of kinds is checked across packs)."""

    def __init__(self, source: _Source, pack: str, settings: dict[str, Setting] | None,
                 problems: _Problems, base: dict[str, dict[str, str]] | None = None):
        self.source = source
        self.base = base or {}  # kind -> field -> type of the base facts: their typos are found here
        self.file = source.file
        self.pack = pack
        self.settings = settings  # None when pack.yaml is broken: skip checks of $settings
        self.problems = problems
        self._first_problem = len(problems)

    @property
    def errors(self) -> int:
        """Problems found in this file so far."""
        return len(self.problems) - self._first_problem

    def error(self, path: tuple, message: str, *, key: bool = True) -> None:
        self.problems.add(self.file, self.source.line(path, key=key), message)

    def read(self) -> Rule | None:
        data = self.source.data
        if not isinstance(data, dict):
            what = "a list" if isinstance(data, list) else "not a mapping"
            self.error((), f"a rule file holds one rule, a mapping with `id`, `title`, `when`, ...; "
                           f"this is {what}")
            return None
        _check_keys(data, RULE_KEYS, (), self.source, self.problems, "a rule")
        rule_id = _required_text(data, "id", (), self.source, self.problems)
        if rule_id is not None and not _RULE_ID.match(rule_id):
            self.error(("id",), f"rule ID `{rule_id}` may only hold letters, digits and single "
                                f"`-`, `_` or `.` between them (e.g. SSM-BDU-001)")
        title = _required_text(data, "title", (), self.source, self.problems)
        severity = self._severity(data)
        guidance = self._guidance(data)
        patterns = self._patterns(data)
        texts = {key: _optional_text(data, key, (), self.source, self.problems)
                 for key in ("subject", "location", "message", "next_action", "owner")}
        derive = self._derive(data, patterns)
        once_per_subject = self._flag(data, "once_per_subject")
        description = self._description(data)
        examples = self._examples(data)
        self._check_outputs(data, derive)
        if patterns is None:
            return None
        # Whatever else is wrong, the patterns are known: check the names and fields they use now,
        # so that every mistake of the file shows in one run.
        names = {p.name: p.kind for p in patterns if not p.negated}
        subject = texts["subject"]
        if texts["message"] is not None:
            subject = self._subject(subject, names, patterns)
            self._owner(texts["owner"], names)
            for key in ("message", "next_action", "location"):
                if texts[key] is not None:
                    self._template(key, texts[key], names)
        lines = {key: self.source.line((key,)) for key in data}
        rule = Rule(id=rule_id, title=title, severity=severity, guidance=guidance, when=tuple(patterns),
                    subject=subject, location=texts["location"], message=texts["message"],
                    next_action=texts["next_action"], owner=texts["owner"],
                    once_per_subject=once_per_subject, derive=derive,
                    description=description, examples=examples, pack=self.pack, file=self.file,
                    lines=lines)
        _check_kinds_and_fields(rule, self.base, self.problems, self.settings or {}, base_only=True)
        return None if self.errors else rule

    # -- simple keys --

    def _severity(self, data: dict) -> str | None:
        if "severity" not in data:
            return None
        value = data["severity"]
        if value not in SEVERITIES:
            self.error(("severity",), f"severity must be one of {', '.join(SEVERITIES)}, not "
                                      f"`{value}`{did_you_mean(str(value), SEVERITIES)}")
            return None
        return value

    def _flag(self, data: dict, key: str) -> bool:
        value = data.get(key, False)
        if not isinstance(value, bool):
            self.error((key,), f"`{key}` is true or false")
            return False
        return value

    def _guidance(self, data: dict) -> tuple[str, ...]:
        value = data.get("guidance")
        if value is None:
            return ()
        if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
            self.error(("guidance",), "`guidance` is a list of guidance IDs, e.g. [G60, G64]")
            return ()
        return tuple(value)

    def _check_outputs(self, data: dict, derive: Derive | None) -> None:
        given = [key for key in FINDING_KEYS if key in data]
        if given and len(given) < len(FINDING_KEYS):
            missing = [key for key in FINDING_KEYS if key not in data]
            self.error((given[0],), f"a rule with a finding needs {', '.join(FINDING_KEYS)}; "
                                    f"add {', '.join(f'`{m}`' for m in missing)}")
        if not given and "derive" not in data:
            self.error((), "the rule produces nothing: give it a finding (`severity`, `message`, "
                           "`next_action`) or a derived fact (`derive`)")
        if not given:
            for key in ("subject", "location", "owner", "once_per_subject"):
                if key in data:
                    self.error((key,), f"`{key}` only applies to a rule with a finding "
                                       f"(`severity`, `message`, `next_action`)")

    def _description(self, data: dict) -> Description | None:
        value = data.get("description")
        if value is None:
            return None
        if not isinstance(value, dict):
            self.error(("description",), "`description` needs `what`, `why` and `example` texts")
            return None
        _check_keys(value, ("what", "why", "example"), ("description",), self.source, self.problems,
                    "description")
        return Description(**{k: _optional_text(value, k, ("description",), self.source, self.problems)
                              for k in ("what", "why", "example")})

    def _examples(self, data: dict) -> Examples | None:
        value = data.get("examples")
        if value is None:
            return None
        if not isinstance(value, dict):
            self.error(("examples",), "`examples` needs `fail:` and/or `pass:` lists of {plan: {...}}")
            return None
        _check_keys(value, ("fail", "pass"), ("examples",), self.source, self.problems, "examples")
        parsed: dict[str, tuple[Example, ...]] = {}
        for which in ("fail", "pass"):
            items = value.get(which)
            path = ("examples", which)
            if items is None:
                continue
            if not isinstance(items, list):
                self.error(path, f"`examples.{which}` is a list of {{plan: {{...}}}}")
                continue
            examples = []
            for index, item in enumerate(items):
                item_path = path + (index,)
                allowed = ("plan", "subjects") if which == "fail" else ("plan",)
                if not isinstance(item, dict) or not isinstance(item.get("plan"), dict):
                    self.error(item_path, f"each example is {{plan: {{...}}}} with the plan's top-level keys")
                    continue
                _check_keys(item, allowed, item_path, self.source, self.problems, "an example")
                subjects = item.get("subjects")
                if subjects is not None and (not isinstance(subjects, list) or not all(
                        isinstance(s, (str, int)) and not isinstance(s, bool) for s in subjects)):
                    self.error(item_path + ("subjects",), "`subjects` is a list of subject IDs (or indexes)")
                    continue
                examples.append(Example(plan=item["plan"], subjects=tuple(subjects) if subjects is not None else None))
            parsed[which] = tuple(examples)
        return Examples(fail=parsed.get("fail", ()), pass_=parsed.get("pass", ()))

    # -- when --

    def _patterns(self, data: dict) -> list[Pattern] | None:
        when = data.get("when")
        if when is None:
            if "when" not in data:
                self.error((), "missing required key `when` (the list of patterns the rule matches)")
            else:
                self.error(("when",), "`when` is empty: list the patterns the rule matches")
            return None
        if not isinstance(when, list) or not when:
            self.error(("when",), "`when` is a list of patterns, e.g. `- opportunity: o`")
            return None
        if len(when) > MAX_PATTERNS:
            self.error(("when",), f"a rule may have at most {MAX_PATTERNS} patterns; split the check "
                                  f"with a derived fact")
        patterns: list[Pattern] = []
        bound: dict[str, int] = {}  # name -> index of the pattern that binds it
        complete = True  # every pattern could be read: the names it binds are all known
        for index, raw in enumerate(when):
            pattern = self._pattern(raw, ("when", index))
            if pattern is None:
                complete = False
                continue
            if pattern.name:
                if pattern.name in bound:
                    self.error(("when", index, pattern.kind), f"the name `{pattern.name}` is already "
                                                              f"bound by pattern {bound[pattern.name] + 1}")
                bound.setdefault(pattern.name, index)
            patterns.append(pattern)
        if not complete:
            return None
        all_names = {p.name: i for i, p in enumerate(patterns) if p.name}
        for index, pattern in enumerate(patterns):
            self._check_references(pattern, index, all_names)
        return patterns

    def _pattern(self, raw: Any, path: tuple) -> Pattern | None:
        if not isinstance(raw, dict) or not raw:
            self.error(path, "a pattern is `KIND: NAME` or `not: KIND`, with optional `where:` or `any:`")
            return None
        heads = [key for key in raw if key not in ("where", "any")]
        if not heads:
            self.error(path, "the pattern has no `KIND: NAME` or `not: KIND`")
            return None
        if len(heads) > 1:
            self.error(path + (heads[1],), f"one pattern per list item: `{heads[0]}` and `{heads[1]}` "
                                           f"are in the same item; start `{heads[1]}` with its own `- `")
            return None
        head = heads[0]
        line = self.source.line(path + (head,))
        value = raw[head]
        if head == "not":
            if not isinstance(value, str) or not _KIND.match(value):
                self.error(path + (head,), "`not:` takes a kind, e.g. `not: role`")
                return None
            kind, name, negated = value, None, True
        else:
            if not _KIND.match(head):
                self.error(path + (head,), f"`{head}` is not a kind (kinds are lower_case)")
                return None
            if not isinstance(value, str):
                self.error(path + (head,), f"name the fact: `{head}: NAME` (e.g. `{head}: {head[0]}`)")
                return None
            if not _NAME.match(value) or value in RESERVED_NAMES:
                reason = "is reserved" if value in RESERVED_NAMES else "must be lower_case (letters, digits, _)"
                self.error(path + (head,), f"the name `{value}` {reason}; pick another name")
                return None
            kind, name, negated = head, value, False
        where = ()
        if "where" in raw:
            if not isinstance(raw["where"], dict) or not raw["where"]:
                self.error(path + ("where",), "`where:` maps fields to tests, e.g. `where: {role: sponsor}`")
            else:
                where = self._tests(raw["where"], path + ("where",))
        branches: list[tuple[Test, ...]] = []
        if "any" in raw:
            value = raw["any"]
            if not isinstance(value, list) or not value:
                self.error(path + ("any",), "`any:` is a list of `where` maps, one of which must hold")
            else:
                for index, branch in enumerate(value):
                    if not isinstance(branch, dict) or not branch:
                        self.error(path + ("any", index), "each `any:` branch maps fields to tests")
                    else:
                        branches.append(self._tests(branch, path + ("any", index)))
        return Pattern(kind=kind, name=name, negated=negated, where=where, any=tuple(branches), line=line)

    def _tests(self, mapping: dict, path: tuple) -> tuple[Test, ...]:
        tests: list[Test] = []
        for field_name, spec in mapping.items():
            field_path = path + (field_name,)
            line = self.source.line(field_path)
            if not _FIELD.match(str(field_name)):
                self.error(field_path, f"`{field_name}` is not a field name")
                continue
            if field_name == "any" and isinstance(spec, list) or field_name == "where" and isinstance(spec, dict):
                self.error(field_path, f"`{field_name}:` belongs beside `where:` in the pattern, not inside "
                                       f"{'an `any:` branch' if isinstance(path[-1], int) else '`where:`'}: "
                                       f"write `where: {{...}}` and `any: [{{...}}, {{...}}]` at the same indentation")
                continue
            if isinstance(spec, dict):
                if not spec:
                    self.error(field_path, f"no test for `{field_name}`: give a value or "
                                           f"{{eq|ne|lt|lte|gt|gte|in|not_in|exists: ...}}")
                for op, operand in spec.items():
                    test = self._test(field_name, op, operand, field_path + (op,), line)
                    if test is not None:
                        tests.append(test)
            elif isinstance(spec, list):
                self.error(field_path, f"a list is not a test: to allow several values write "
                                       f"`{field_name}: {{in: [...]}}`")
            elif spec is None:
                self.error(field_path, f"`{field_name}` has no value: to test that it is missing write "
                                       f"`{field_name}: {{exists: false}}`")
            else:
                operand = self._operand(spec, field_path, key=False)
                if operand is not None:
                    tests.append(Test(field=field_name, op="eq", value=operand, line=line))
        return tuple(tests)

    def _test(self, field_name: str, op: Any, raw: Any, path: tuple, line: int) -> Test | None:
        if op not in OPERATORS:
            self.error(path, f"unknown test `{op}`{did_you_mean(str(op), OPERATORS)}; tests are "
                             f"{', '.join(OPERATORS)}")
            return None
        if op == "exists":
            if not isinstance(raw, bool):
                self.error(path, "`exists` takes true or false")
                return None
            return Test(field=field_name, op=op, value=raw, line=line)
        if op in ("in", "not_in"):
            if not isinstance(raw, list) or not raw:
                self.error(path, f"`{op}` takes a non-empty list, e.g. `{op}: [a, b]`")
                return None
            operands = [self._operand(item, path + (i,), key=False) for i, item in enumerate(raw)]
            if any(o is None for o in operands):
                return None
            return Test(field=field_name, op=op, value=tuple(operands), line=line)
        operand = self._operand(raw, path, key=False)
        if operand is None:
            return None
        if op in ORDERING_OPERATORS and isinstance(operand, Const) and isinstance(operand.value, bool):
            self.error(path, f"`{op}` orders numbers, dates and text; true/false have no order")
            return None
        return Test(field=field_name, op=op, value=operand, line=line)

    def _operand(self, value: Any, path: tuple, *, key: bool = True) -> Operand | None:
        if _is_plain_value(value):
            value = _plain_value(value)
            if isinstance(value, str) and value.startswith("$"):
                if value.startswith("$$"):
                    return Const(value=value[1:])
                match = _REFERENCE.match(value)
                if not match:
                    self.error(path, f"`{value}` is not a reference: write `$NAME.FIELD` or "
                                     f"`$settings.NAME` (start literal text with `$$`)", key=key)
                    return None
                if match.group(1) == templates.SETTINGS:
                    return self._setting(match.group(2), path, key=key)
                return FieldRef(name=match.group(1), field=match.group(2))
            return Const(value=value)
        if isinstance(value, float):
            self.error(path, "numbers must be finite", key=key)
        elif value is None:
            self.error(path, "a value is missing here (to test that a field is missing use "
                             "`{exists: false}`)", key=key)
        else:
            self.error(path, "a value must be text, a number, a date, true/false or a reference "
                             "(`$NAME.FIELD`, `$settings.NAME`)", key=key)
        return None

    def _setting(self, name: str, path: tuple, *, key: bool = True) -> SettingRef | None:
        if self.settings is not None and name not in self.settings:
            known = ", ".join(sorted(self.settings)) or "none"
            self.error(path, f"unknown setting `$settings.{name}`{did_you_mean(name, self.settings)}; "
                             f"this pack's settings: {known} (declare it in pack.yaml)", key=key)
            return None
        if self.settings is not None and self.settings[name].is_mapping:
            self.error(path, f"`{name}` is a mapping setting: commands read it, a rule cannot compare "
                             f"with it or print it", key=key)
            return None
        return SettingRef(setting=name)

    def _check_references(self, pattern: Pattern, index: int, names: dict[str, int]) -> None:
        """A pattern may only use names bound by earlier (positive) patterns."""
        path = ("when", index)
        for test in pattern.tests():
            for operand in test.operands:
                if not isinstance(operand, FieldRef):
                    continue
                ref = f"${operand.name}.{operand.field}"
                bound_at = names.get(operand.name)
                if bound_at is None:
                    self.error(path, f"`{ref}`: no pattern binds the name `{operand.name}`"
                                     f"{did_you_mean(operand.name, names)}")
                elif bound_at == index:
                    self.error(path, f"`{ref}` refers to this pattern's own fact; compare with a "
                                     f"fact bound before it")
                elif bound_at > index:
                    what = "`not:`" if pattern.negated else "a pattern"
                    self.error(path, f"`{ref}` refers to `{operand.name}`, bound later (pattern "
                                     f"{bound_at + 1}); {what} may only use names bound before it: "
                                     f"move it after pattern {bound_at + 1}")

    # -- what the rule produces --

    def _derive(self, data: dict, patterns: list[Pattern] | None) -> Derive | None:
        if "derive" not in data:
            return None
        raw, path = data["derive"], ("derive",)
        if not isinstance(raw, dict):
            self.error(path, "`derive` needs {kind: NEW_KIND, fields: {FIELD: $NAME.FIELD, ...}}")
            return None
        _check_keys(raw, ("kind", "fields"), path, self.source, self.problems, "derive")
        kind = _required_text(raw, "kind", path, self.source, self.problems)
        if kind is not None and (not _KIND.match(kind) or kind.startswith("ssm_")):
            self.error(path + ("kind",), f"derived kind `{kind}` must be lower_case and not start with `ssm_`")
            kind = None
        fields = raw.get("fields")
        if not isinstance(fields, dict) or not fields:
            self.error(path + ("fields",), "`derive.fields` maps each field of the new fact to a value "
                                           "(`$NAME.FIELD`, `$settings.NAME` or a literal)")
            return None
        names = {p.name for p in patterns or () if p.name}
        parsed: dict[str, Operand] = {}
        for name, value in fields.items():
            field_path = path + ("fields", name)
            if not _FIELD.match(str(name)) or name in RESERVED_FIELDS:
                self.error(field_path, f"`{name}` cannot be a field of a derived fact")
                continue
            operand = self._operand(value, field_path, key=False)
            if isinstance(operand, FieldRef) and patterns is not None and operand.name not in names:
                self.error(field_path, f"`${operand.name}.{operand.field}`: no pattern binds the name "
                                       f"`{operand.name}`{did_you_mean(operand.name, names)}")
                continue
            if operand is not None:
                parsed[name] = operand
        if kind is None or len(parsed) != len(fields):
            return None
        return Derive(kind=kind, fields=parsed, line=self.source.line(path))

    def _subject(self, subject: str | None, names: dict[str, str], patterns: list[Pattern]) -> str | None:
        if subject is None:
            first = next((p for p in patterns if not p.negated), None)
            if first is None:
                self.error(("when",), "the finding needs a subject, but every pattern is `not:`; "
                                      "bind the plan (`- plan: p`) to report on the account")
                return None
            return first.name
        if subject not in names:
            self.error(("subject",), f"subject `{subject}` is not a name bound by a pattern"
                                     f"{did_you_mean(subject, names)}")
            return None
        return subject

    def _owner(self, owner: str | None, names: dict[str, str]) -> None:
        if owner is None or owner == ACCOUNT_OWNER:
            return
        if owner not in names:
            self.error(("owner",), f"owner must be `{ACCOUNT_OWNER}` or a name bound to a contact or an "
                                   f"opportunity; `{owner}` is neither{did_you_mean(owner, names)}")

    def _template(self, key: str, text: str, names: dict[str, str]) -> None:
        try:
            template = templates.parse(text)
        except templates.TemplateError as exc:
            self.error((key,), f"`{key}`: {exc}")
            return
        for ref in template.references():
            if ref.name == templates.SETTINGS:
                self._setting(ref.field, (key,))
            elif ref.name not in names:
                self.error((key,), f"`{key}` uses `{{{ref.name}.{ref.field}}}`, but no pattern binds "
                                   f"`{ref.name}`{did_you_mean(ref.name, names)}")


# ---- checks across packs --------------------------------------------------------------------


def _check_across_packs(packs: list[Pack], base: dict[str, dict[str, str]], problems: _Problems) -> None:
    """`base`: kind -> field -> type (ssm_rules.facts.FIELD_TYPES) of the facts every plan has."""
    seen_packs: dict[str, Pack] = {}
    for pack in packs:
        if pack.name in seen_packs:
            problems.add(pack.file, 1, f"pack name `{pack.name}` is already used by "
                                       f"{seen_packs[pack.name].file}; pack names are unique")
        seen_packs.setdefault(pack.name, pack)
    rules = all_rules(packs)
    seen_ids: dict[str, Rule] = {}
    for rule in rules:
        if rule.id in seen_ids:
            problems.add(rule.file, rule.lines.get("id", 1),
                         f"rule ID `{rule.id}` is already used by {seen_ids[rule.id].source()}; "
                         f"rule IDs are unique across packs and never reused")
        seen_ids.setdefault(rule.id, rule)
    _check_guidance(packs, problems)

    catalogue: dict[str, dict[str, str | None]] = {kind: dict(fields) for kind, fields in base.items()}
    for rule in rules:
        if rule.derive and rule.derive.kind in base:
            problems.add(rule.file, rule.derive.line, f"`{rule.derive.kind}` is a base kind; a derived "
                                                      f"fact needs a new kind")
    settings = {pack.name: pack.settings for pack in packs}
    catalogue.update(_derived_catalogue(rules, catalogue, settings))
    for rule in rules:
        _check_kinds_and_fields(rule, catalogue, problems, settings.get(rule.pack, {}))
    for pack in packs:
        if pack.outcome:
            _check_outcome(pack, catalogue, set(base), problems)
    if not problems:
        try:
            rule_strata(rules)
        except RulePackError as exc:
            problems.lines.extend(exc.problems)


def _check_guidance(packs: list[Pack], problems: _Problems) -> None:
    """Guidance IDs are unique across catalogues; the rules of a pack that ships a catalogue
    cite only items of the loaded catalogues (a typo would escape `select = ["G60"]`)."""
    known: dict[str, GuidanceItem] = {}
    for pack in packs:
        for item in pack.catalogue.items if pack.catalogue else ():
            first = known.setdefault(item.id.upper(), item)
            if first is not item:
                problems.add(item.file, item.line, f"guidance ID `{item.id}` is already used by "
                                                   f"{first.file}:{first.line}; guidance IDs are unique across packs")
    for pack in packs:
        if pack.catalogue is None:
            continue  # a pack without a catalogue may cite any IDs (or the built-in ones)
        for rule in pack.rules:
            for guidance_id in rule.guidance:
                if guidance_id.upper() not in known:
                    problems.add(rule.file, rule.lines.get("guidance", 1),
                                 f"guidance `{guidance_id}` is in no loaded guidance catalogue"
                                 f"{did_you_mean(guidance_id, [item.id for item in known.values()])}; "
                                 f"add it to {pack.catalogue.file} or correct the ID")


def _derived_catalogue(rules: Sequence[Rule], base: dict[str, dict[str, str | None]],
                       settings: Mapping[str, Mapping[str, Setting]]) -> dict[str, dict[str, str | None]]:
    """Derived kind -> field -> type: the type of the values its derive blocks give it (None when
    they disagree, or come from a field whose type is not known)."""
    derived: dict[str, dict[str, str | None]] = {}
    deriving = [rule for rule in rules if rule.derive and rule.derive.kind not in base]
    for rule in deriving:
        derived.setdefault(rule.derive.kind, {}).update(dict.fromkeys(rule.derive.fields))
    # A derived field may copy another derived kind's field: settle the types in a few rounds.
    for _ in range(len(deriving) + 1):
        catalogue = {**derived, **base}
        found: dict[str, dict[str, set[str | None]]] = {}
        for rule in deriving:
            kinds = rule.names
            for name, operand in rule.derive.fields.items():
                found.setdefault(rule.derive.kind, {}).setdefault(name, set()).add(
                    _operand_type(operand, kinds, catalogue, settings.get(rule.pack, {})))
        settled = {kind: {name: next(iter(types)) if len(types) == 1 else None for name, types in fields.items()}
                   for kind, fields in found.items()}
        if settled == derived:
            break
        derived = settled
    return derived


def _operand_type(operand: Operand, kinds: Mapping[str, str], catalogue: Mapping[str, Mapping[str, str | None]],
                  settings: Mapping[str, Setting]) -> str | None:
    """The type (ssm_rules.facts.FIELD_TYPES) of a test's or a derived field's value; None: unknown."""
    from ssm_rules.facts import BOOLEAN, DATE, NUMBER, TEXT

    if isinstance(operand, FieldRef):
        return catalogue.get(kinds.get(operand.name, ""), {}).get(operand.field)
    value = operand.value if isinstance(operand, Const) else getattr(settings.get(operand.setting), "default", None)
    if isinstance(value, bool):
        return BOOLEAN
    if isinstance(value, (int, float)):
        return NUMBER
    if isinstance(value, str):
        return DATE if _ISO_DATE.match(value) else TEXT
    return None


def _type_mismatch(field_type: str | None, operand_type: str | None, op: str) -> str | None:
    """Why a test of a field of `field_type` with `op` and a value of `operand_type` can never
    hold, or None when it can (or a type is unknown)."""
    from ssm_rules.facts import BOOLEAN, DATE, LIST, NUMBER, TEXT

    if field_type is None or operand_type is None or op == "exists":
        return None
    if op in ORDERING_OPERATORS and field_type in (BOOLEAN, LIST):
        return "true/false have no order" if field_type == BOOLEAN else "a list has no order (test it with eq, in or exists)"
    if field_type == operand_type or (field_type in (TEXT, LIST) and operand_type in (TEXT, DATE)):
        return None
    if field_type == DATE and operand_type == TEXT:
        return "write the date as YYYY-MM-DD"
    return {NUMBER: "write the number without quotes", BOOLEAN: "write true or false without quotes",
            DATE: "write the date as YYYY-MM-DD"}.get(field_type, "put the value in quotes to compare text")


_TYPE_WORDS = {"text": "text", "number": "a number", "date": "a date", "boolean": "true/false", "list": "a list"}


def _check_kinds_and_fields(rule: Rule, catalogue: dict[str, dict[str, str | None]], problems: _Problems,
                            settings: Mapping[str, Setting], *, base_only: bool = False) -> None:
    """Kinds, fields, types, subject and owner of one rule. `base_only`: the catalogue holds the
    base facts only (a rule file read on its own): kinds it does not know are left to the check
    across packs, which knows the derived ones."""
    kinds = {p.name: p.kind for p in rule.when if p.name}

    def check_field(kind: str, name: str, line: int, what: str) -> None:
        if kind in catalogue and name not in catalogue[kind]:
            problems.add(rule.file, line, f"{what}: kind `{kind}` has no field `{name}`"
                                          f"{did_you_mean(name, catalogue[kind])}")

    for pattern in rule.when:
        if pattern.kind not in catalogue:
            if not base_only:
                problems.add(rule.file, pattern.line, f"unknown kind `{pattern.kind}`"
                                                      f"{did_you_mean(pattern.kind, catalogue)}")
            continue
        for test in pattern.tests():
            check_field(pattern.kind, test.field, test.line, f"`{test.field}`")
            for operand in test.operands:
                if isinstance(operand, FieldRef):
                    check_field(kinds.get(operand.name, ""), operand.field, test.line,
                                f"`${operand.name}.{operand.field}`")
            field_type = catalogue[pattern.kind].get(test.field)
            for operand in test.operands:
                operand_type = _operand_type(operand, kinds, catalogue, settings)
                why = _type_mismatch(field_type, operand_type, test.op)
                if why is not None:
                    problems.add(rule.file, test.line,
                                 f"`{test.field}` of `{pattern.kind}` is {_TYPE_WORDS[field_type]}, but "
                                 f"{_show_operand(operand)} is {_TYPE_WORDS[operand_type]}: compare like with like "
                                 f"({why})")
                    break
    if rule.derive:
        for name, operand in rule.derive.fields.items():
            if isinstance(operand, FieldRef):
                check_field(kinds.get(operand.name, ""), operand.field, rule.derive.line,
                            f"derive `{name}: ${operand.name}.{operand.field}`")
    if not rule.has_finding:
        return
    def known(kind: str | None) -> bool:  # read on its own, a rule may use kinds other packs derive
        return kind in catalogue or not base_only

    subject_kind = kinds.get(rule.subject or "")
    if subject_kind is not None and subject_kind not in SUBJECT_KINDS and known(subject_kind):
        binding = next(p for p in rule.when if p.name == rule.subject)
        problems.add(rule.file, rule.lines.get("subject", binding.line),
                     f"the subject `{rule.subject}` is of kind `{subject_kind}`; a subject must be of kind "
                     f"{', '.join(SUBJECT_KINDS)} (set `subject:`)")
    if rule.owner not in (None, ACCOUNT_OWNER) and kinds.get(rule.owner) not in OWNER_KINDS \
            and known(kinds.get(rule.owner)):
        problems.add(rule.file, rule.lines.get("owner", 1),
                     f"owner `{rule.owner}` is of kind `{kinds.get(rule.owner)}`; it must name a contact or an "
                     f"opportunity "
                     f"(or be `{ACCOUNT_OWNER}`)")
    for key in ("message", "next_action", "location"):
        text = getattr(rule, key)
        if text is None:
            continue
        try:
            references = templates.parse(text).references()
        except templates.TemplateError:
            continue  # reported when the file was read
        for ref in references:
            if ref.name != templates.SETTINGS and ref.name in kinds:
                check_field(kinds[ref.name], ref.field, rule.lines.get(key, 1),
                            f"`{key}` uses `{{{ref.name}.{ref.field}}}`")


def _show_operand(operand: Operand) -> str:
    if isinstance(operand, FieldRef):
        return f"`${operand.name}.{operand.field}`"
    if isinstance(operand, SettingRef):
        return f"`$settings.{operand.setting}`"
    value = operand.value
    quoted = isinstance(value, str) and not _ISO_DATE.match(value)
    return f'`"{value}"`' if quoted else f"`{_yaml_text(value)}`"


def _yaml_text(value: Any) -> str:
    return ("true" if value else "false") if isinstance(value, bool) else str(value)


def _check_outcome(pack: Pack, catalogue: dict[str, dict[str, str | None]], base: set[str],
                   problems: _Problems) -> None:
    outcome = pack.outcome
    if outcome.kind not in catalogue or outcome.kind in base:
        problems.add(pack.file, 1, f"outcome kind `{outcome.kind}` is not a derived kind"
                                   f"{did_you_mean(outcome.kind, set(catalogue) - base)}; derive it with a rule")
    elif outcome.field not in catalogue[outcome.kind]:
        problems.add(pack.file, 1, f"outcome field `{outcome.field}`: the derived kind `{outcome.kind}` "
                                   f"has no such field{did_you_mean(outcome.field, catalogue[outcome.kind])}")


# ---- small helpers --------------------------------------------------------------------------


def _check_keys(mapping: dict, allowed: Sequence[str], path: tuple, source: _Source, problems: _Problems,
                what: str) -> None:
    for key in mapping:
        if key not in allowed:
            problems.add(source.file, source.line(path + (key,)),
                         f"unknown key `{key}` in {what}{did_you_mean(str(key), allowed)}; "
                         f"allowed: {', '.join(allowed)}")


def _required_text(mapping: dict, key: str, path: tuple, source: _Source, problems: _Problems) -> str | None:
    if key not in mapping:
        problems.add(source.file, source.line(path), f"missing required key `{key}`")
        return None
    return _optional_text(mapping, key, path, source, problems)


def _optional_text(mapping: dict, key: str, path: tuple, source: _Source, problems: _Problems) -> str | None:
    if key not in mapping:
        return None
    value = mapping[key]
    if not isinstance(value, str) or not value.strip():
        problems.add(source.file, source.line(path + (key,)), f"`{key}` must be non-empty text")
        return None
    return value.strip()


def _is_plain_value(value: Any) -> bool:
    if isinstance(value, float):
        return math.isfinite(value)
    return isinstance(value, (str, int, bool, date))


def _plain_value(value: Any) -> str | int | float | bool:
    """Dates become ISO text: facts carry dates as ISO strings."""
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, date):
        return value.isoformat()
    return value
