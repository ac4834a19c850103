"""Reading packs: `pack.yaml` (`load_pack`), `guidance.yaml` (`parse_catalogue`) and one rule a
file (`_RuleReader`), each value validated where it is written, with the line to fix."""

from __future__ import annotations

import dataclasses
import os
import re
from pathlib import Path
from typing import Any

from ssm_rules import templates
from ssm_rules.rulepack.checks import check_kinds_and_fields
from ssm_rules.rulepack.model import (ACCOUNT_OWNER, BUDGET_SETTINGS, CATALOGUE_KEYS, FIELD_PATTERN, FINDING_KEYS,
                                      GUIDANCE_FILE, GUIDANCE_KEYS, KIND_PATTERN, MAX_PATTERNS, NAME_PATTERN, OPERATORS,
                                      ORDERING_OPERATORS, PACK_FILE, PACK_KEYS, PACK_NAME_PATTERN, REFERENCE_PATTERN,
                                      RESERVED_FIELDS, RESERVED_NAMES, RULE_ID_PATTERN, RULE_KEYS, SECTION_KEYS,
                                      Catalogue, Const, Derive, Description, Example, Examples, FieldRef, GuidanceItem,
                                      Operand, Outcome, Pack, Pattern, Rule, Setting, SettingRef, Test, _setting_bounds,
                                      is_budget)
from ssm_rules.rulepack.source import (Problems, Source, check_keys, is_plain_value, optional_text, plain_value,
                                       read_yaml, required_text)
from ssm_rules.severity import SEVERITIES
from ssm_rules.suggestions import did_you_mean


def display_path(path: str) -> str:
    """A path as the user will recognise it: relative to the working directory when inside it."""
    try:
        relative = os.path.relpath(path)
    except ValueError:  # another drive (Windows)
        return path
    return path if relative.startswith("..") else relative


def load_pack(directory: str, problems: Problems, base: dict[str, dict[str, str]]) -> Pack | None:
    shown = display_path(directory)
    if not os.path.isdir(directory):
        what = "does not exist" if not os.path.exists(directory) else "is not a directory"
        problems.add(shown, 1, f"rule pack directory {what}")
        return None
    pack_file = os.path.join(shown, PACK_FILE)
    if not os.path.isfile(pack_file):
        problems.add(shown, 1, "not a rule pack: it has no `pack.yaml` (see docs/rule-language.md)")
        return None
    source = read_yaml(pack_file, problems)
    header = _parse_pack_file(source, problems) if source else None
    name = header["name"] if header else None
    settings = header["settings"] if header else None
    catalogue = None
    guidance_file = os.path.join(shown, GUIDANCE_FILE)
    if os.path.exists(guidance_file):
        guidance_source = read_yaml(guidance_file, problems)
        if guidance_source is not None:
            catalogue = parse_catalogue(guidance_source, name or "?", problems)
    rules = []
    for rule_file in _rule_files(shown, problems):
        rule_source = read_yaml(rule_file, problems)
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


def _rule_files(directory: str, problems: Problems) -> list[str]:
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


def _parse_pack_file(source: Source, problems: Problems) -> dict | None:
    file, data = source.file, source.data
    count = len(problems)
    if not isinstance(data, dict):
        problems.add(file, 1, "pack.yaml must be a mapping with `name`, `title` and optional "
                              "`settings`, `outcome`")
        return None
    check_keys(data, PACK_KEYS, (), source, problems, "pack.yaml")
    name = required_text(data, "name", (), source, problems)
    if name is not None and not PACK_NAME_PATTERN.match(name):
        problems.add(file, source.line(("name",)), f"pack name `{name}` must be a slug "
                                                   f"(lower-case letters, digits, `.`, `_`, `-`)")
    title = required_text(data, "title", (), source, problems)
    description = optional_text(data, "description", (), source, problems)
    url = optional_text(data, "url", (), source, problems)
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
        if not FIELD_PATTERN.match(setting_name):
            problems.add(file, source.line(path), f"setting name `{setting_name}` must be "
                                                  f"lower_case_with_underscores")
            continue
        if not isinstance(spec, dict):
            problems.add(file, source.line(path), f"setting `{setting_name}` needs "
                                                  f"{{default: VALUE, description: TEXT}}")
            continue
        check_keys(spec, ("default", "description", "minimum", "maximum"), path, source, problems, "a setting")
        default = spec.get("default")
        if isinstance(default, dict) and default and all(
                isinstance(k, str) and FIELD_PATTERN.match(k) and is_plain_value(v) for k, v in default.items()):
            value: Any = {k: plain_value(v) for k, v in default.items()}
        elif "default" in spec and is_plain_value(default):
            value = plain_value(default)
        else:
            problems.add(file, source.line(path + ("default",)),
                         f"setting `{setting_name}` needs a `default`: text, a number, true/false, or a "
                         f"mapping of lower_case names to such values")
            continue
        bounds = _setting_bounds(setting_name, spec, value, path, source, problems)
        if bounds is None:
            continue
        settings[setting_name] = Setting(default=value,
                                         description=optional_text(spec, "description", path, source, problems),
                                         minimum=bounds[0], maximum=bounds[1])
    for budget_name, budget in BUDGET_SETTINGS.items():
        declared = settings.get(budget_name)
        if declared is None:
            settings[budget_name] = budget
        elif not is_budget(declared.default, budget.default):
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


def _parse_outcome(raw: Any, source: Source, problems: Problems) -> Outcome | None:
    path = ("outcome",)
    if not isinstance(raw, dict):
        problems.add(source.file, source.line(path), "`outcome` needs {kind: KIND, field: FIELD, items: [...]}")
        return None
    before = len(problems)
    check_keys(raw, ("kind", "field", "items"), path, source, problems, "outcome")
    kind = required_text(raw, "kind", path, source, problems)
    field_name = required_text(raw, "field", path, source, problems)
    items = raw.get("items")
    if not isinstance(items, list) or not items or not all(isinstance(i, str) and i for i in items):
        problems.add(source.file, source.line(path + ("items",)), "`outcome.items` is a non-empty list of item names")
    elif len(set(items)) != len(items):
        problems.add(source.file, source.line(path + ("items",)), "`outcome.items` lists an item twice")
    if len(problems) > before:
        return None
    return Outcome(kind=kind, field=field_name, items=tuple(items))


def parse_catalogue(source: Source, pack: str, problems: Problems) -> Catalogue | None:
    file, data = source.file, source.data
    before = len(problems)
    shape = "{title: TEXT, sections: [{title: TEXT, items: [{id: ID, title: TEXT, ...}]}]}"
    if not isinstance(data, dict):
        problems.add(file, 1, f"{GUIDANCE_FILE} must be a mapping: {shape}")
        return None
    check_keys(data, CATALOGUE_KEYS, (), source, problems, GUIDANCE_FILE)
    title = required_text(data, "title", (), source, problems)
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
        check_keys(section, SECTION_KEYS, path, source, problems, "a section")
        section_title = required_text(section, "title", path, source, problems)
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


def _guidance_item(entry: Any, path: tuple, section: str, pack: str, source: Source,
                   problems: Problems) -> GuidanceItem | None:
    file = source.file
    if not isinstance(entry, dict):
        problems.add(file, source.line(path), "a guidance item is a mapping {id: ID, title: TEXT, "
                                              "looks_for: TEXT, severity: SEVERITY}")
        return None
    before = len(problems)
    check_keys(entry, GUIDANCE_KEYS, path, source, problems, "a guidance item")
    guidance_id = required_text(entry, "id", path, source, problems)
    if guidance_id is not None and not RULE_ID_PATTERN.match(guidance_id):
        problems.add(file, source.line(path + ("id",)), f"guidance ID `{guidance_id}` may only hold letters, "
                                                        f"digits and single `-`, `_` or `.` between them (e.g. G60)")
    title = required_text(entry, "title", path, source, problems)
    texts = {key: optional_text(entry, key, path, source, problems) for key in ("looks_for", "label", "no_rule")}
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


class _RuleReader:
    """Checks one rule file on its own (the catalogue of kinds is checked across packs)."""

    def __init__(self, source: Source, pack: str, settings: dict[str, Setting] | None,
                 problems: Problems, base: dict[str, dict[str, str]] | None = None):
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
        check_keys(data, RULE_KEYS, (), self.source, self.problems, "a rule")
        rule_id = required_text(data, "id", (), self.source, self.problems)
        if rule_id is not None and not RULE_ID_PATTERN.match(rule_id):
            self.error(("id",), f"rule ID `{rule_id}` may only hold letters, digits and single "
                                f"`-`, `_` or `.` between them (e.g. SSM-BDU-001)")
        title = required_text(data, "title", (), self.source, self.problems)
        severity = self._severity(data)
        guidance = self._guidance(data)
        patterns = self._patterns(data)
        texts = {key: optional_text(data, key, (), self.source, self.problems)
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
        check_kinds_and_fields(rule, self.base, self.problems, self.settings or {}, base_only=True)
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
        check_keys(value, ("what", "why", "example"), ("description",), self.source, self.problems,
                   "description")
        return Description(**{k: optional_text(value, k, ("description",), self.source, self.problems)
                              for k in ("what", "why", "example")})

    def _examples(self, data: dict) -> Examples | None:
        value = data.get("examples")
        if value is None:
            return None
        if not isinstance(value, dict):
            self.error(("examples",), "`examples` needs `fail:` and/or `pass:` lists of {plan: {...}}")
            return None
        check_keys(value, ("fail", "pass"), ("examples",), self.source, self.problems, "examples")
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
                check_keys(item, allowed, item_path, self.source, self.problems, "an example")
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
            if not isinstance(value, str) or not KIND_PATTERN.match(value):
                self.error(path + (head,), "`not:` takes a kind, e.g. `not: role`")
                return None
            kind, name, negated = value, None, True
        else:
            if not KIND_PATTERN.match(head):
                self.error(path + (head,), f"`{head}` is not a kind (kinds are lower_case)")
                return None
            if not isinstance(value, str):
                self.error(path + (head,), f"name the fact: `{head}: NAME` (e.g. `{head}: {head[0]}`)")
                return None
            if not NAME_PATTERN.match(value) or value in RESERVED_NAMES:
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
            if not FIELD_PATTERN.match(str(field_name)):
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
        if is_plain_value(value):
            value = plain_value(value)
            if isinstance(value, str) and value.startswith("$"):
                if value.startswith("$$"):
                    return Const(value=value[1:])
                match = REFERENCE_PATTERN.match(value)
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
        check_keys(raw, ("kind", "fields"), path, self.source, self.problems, "derive")
        kind = required_text(raw, "kind", path, self.source, self.problems)
        if kind is not None and (not KIND_PATTERN.match(kind) or kind.startswith("ssm_")):
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
            if not FIELD_PATTERN.match(str(name)) or name in RESERVED_FIELDS:
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
