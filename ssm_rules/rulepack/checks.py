"""The checks that need more than one file: IDs and names across packs, the guidance rules cite,
the kinds and fields of every pattern against the facts and the derived kinds, the packs' outcomes."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from ssm_rules import templates
from ssm_rules.rulepack.model import (ACCOUNT_OWNER, ISO_DATE_PATTERN, ORDERING_OPERATORS, OWNER_KINDS, SUBJECT_KINDS,
                                      Const, FieldRef, GuidanceItem, Operand, Pack, Rule, RulePackError, Setting,
                                      SettingRef, all_rules)
from ssm_rules.rulepack.source import Problems
from ssm_rules.rulepack.strata import rule_strata
from ssm_rules.suggestions import did_you_mean


def check_across_packs(packs: list[Pack], base: dict[str, dict[str, str]], problems: Problems) -> None:
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
        check_kinds_and_fields(rule, catalogue, problems, settings.get(rule.pack, {}))
    for pack in packs:
        if pack.outcome:
            _check_outcome(pack, catalogue, set(base), problems)
    if not problems:
        try:
            rule_strata(rules)
        except RulePackError as exc:
            problems.lines.extend(exc.problems)


def _check_guidance(packs: list[Pack], problems: Problems) -> None:
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
        return DATE if ISO_DATE_PATTERN.match(value) else TEXT
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


def check_kinds_and_fields(rule: Rule, catalogue: dict[str, dict[str, str | None]], problems: Problems,
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
    quoted = isinstance(value, str) and not ISO_DATE_PATTERN.match(value)
    return f'`"{value}"`' if quoted else f"`{_yaml_text(value)}`"


def _yaml_text(value: Any) -> str:
    return ("true" if value else "false") if isinstance(value, bool) else str(value)


def _check_outcome(pack: Pack, catalogue: dict[str, dict[str, str | None]], base: set[str],
                   problems: Problems) -> None:
    outcome = pack.outcome
    if outcome.kind not in catalogue or outcome.kind in base:
        problems.add(pack.file, 1, f"outcome kind `{outcome.kind}` is not a derived kind"
                                   f"{did_you_mean(outcome.kind, set(catalogue) - base)}; derive it with a rule")
    elif outcome.field not in catalogue[outcome.kind]:
        problems.add(pack.file, 1, f"outcome field `{outcome.field}`: the derived kind `{outcome.kind}` "
                                   f"has no such field{did_you_mean(outcome.field, catalogue[outcome.kind])}")
