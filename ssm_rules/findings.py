"""Engine matches -> findings: deduplicated, rendered, owned, located, in a stable order.

The only place that turns a match into what a person reads. One finding per rule, subject
and location (per rule and subject for a rule with `once_per_subject`): when several matches
give the same one (an `any:` that holds twice, a contact in two roles), the match whose facts
come first in the plan is kept, so the message never depends on the order the engine fired in.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ssm_rules import templates
from ssm_rules.i18n import is_english, pack_text, pgettext, rule_text
from ssm_rules.compiler import CompiledRules
from ssm_rules.engine import EngineResult, Match
from ssm_rules.rulepack import ACCOUNT_OWNER, OWNER_KINDS, Pack

# Kinds of list items without an ID: their subject ID is the item's index.
INDEXED_KINDS = ("issue", "route", "partner", "thought_leadership")

Locate = Callable[[str], tuple[int, int]]


@dataclass(frozen=True)
class Finding:
    rule: str
    severity: str
    guidance: tuple[str, ...]
    message: str
    subject_kind: str
    subject_id: str | int | None
    file: str
    line: int
    column: int
    path: str
    next_action: str
    owner: str | None
    pack: str | None = None  # the rule's pack (configuration selects whole packs by name)

    def to_json(self) -> dict[str, Any]:
        """The finding as docs/output-contract.md defines it."""
        return {
            "rule": self.rule,
            "severity": self.severity,
            "guidance": list(self.guidance),
            "message": self.message,
            "subject": {"kind": self.subject_kind, "id": self.subject_id},
            "location": {"file": self.file, "line": self.line, "column": self.column, "path": self.path},
            "next_action": {"text": self.next_action, "owner": self.owner},
        }

    def sort_key(self) -> tuple:
        return (self.line, self.column, self.rule, self.path, str(self.subject_id), self.message)


def build_findings(compiled: CompiledRules, facts: Sequence[Mapping[str, Any]], result: EngineResult,
                   locate: Locate, file: str) -> list[Finding]:
    """The findings of one plan. `facts` are the plan's facts in plan order (as given to the
    engine); `locate(path)` gives the (line, column) of a plan path or its nearest ancestor."""
    order = _PlanOrder(facts, result.derived)
    account_owner = next((f.get("owner") for f in facts if f.get("kind") == "plan"), None)
    chosen: dict[tuple, tuple[tuple, Match]] = {}
    for match in result.matches:
        compiled_rule = compiled.rules.get(match.rule_id)
        if compiled_rule is None or not compiled_rule.report:
            continue
        rule = compiled_rule.rule
        subject = match.bindings[rule.subject]
        path = _join_path(subject.get("path") or "",
                          templates.render(rule.location, match.bindings, compiled_rule.settings)
                          if rule.location else "")
        key = (rule.id, subject.get("kind"), _subject_id(subject), None if rule.once_per_subject else path)
        rank = order.rank(match, rule.when)
        if key not in chosen or rank < chosen[key][0]:
            chosen[key] = (rank, match, path)
    findings = []
    translate = value_translator(compiled)
    for (rule_id, subject_kind, subject_id, _), (_, match, path) in chosen.items():
        compiled_rule = compiled.rules[rule_id]
        rule = compiled_rule.rule
        line, column = locate(path)
        findings.append(Finding(
            rule=rule.id, severity=compiled_rule.severity, guidance=rule.guidance,
            message=_one_line(templates.render(rule_text(rule, rule.message), match.bindings, compiled_rule.settings,
                                               translate)),
            subject_kind=subject_kind, subject_id=subject_id, file=file, line=line, column=column,
            path=path,
            next_action=_one_line(templates.render(rule_text(rule, rule.next_action), match.bindings,
                                                   compiled_rule.settings, translate)),
            owner=_one_line_or_none(_owner(rule.owner, rule.subject, match.bindings, account_owner)),
            pack=rule.pack))
    return sorted(findings, key=Finding.sort_key)


# Fields whose values are words of the plan format's vocabulary (a stage, a role, an attitude,
# an outcome key...), never a plan's own free text: a non-English run shows them translated
# (the program's catalog, context "plan value").
VOCABULARY_FIELDS = frozenset({
    "stage", "next_stage", "milestone", "role", "attitude", "influence", "status", "outcome",
    "next_outcome", "missing", "claimed_outcomes", "outcomes_after"})
VALUE_CONTEXT = "value"  # a pack catalog's context for the constant text of its `derive:` blocks
PLAN_VALUE_CONTEXT = "plan value"

_constants: list = [None, {}]  # [the CompiledRules, its derive constants] of the last run


def value_translator(compiled: CompiledRules) -> templates.Translate | None:
    """How a fact's value reads in the run's language (None for English: values as they are).

    Only two kinds of value are translated, chosen by where they come from, never by what
    they say: the constant text of a rule's `derive:` block (its pack's catalog, context
    "value"), and a vocabulary word in one of VOCABULARY_FIELDS. Names, goals and every other
    text a plan holds are shown as written."""
    if is_english():
        return None
    if _constants[0] is not compiled:
        _constants[:] = [compiled, _derive_constants(compiled)]
    constants, copies = _constants[1]
    words = vocabulary()

    def translate(fact: Mapping[str, Any], field: str, value: Any) -> Any:
        if isinstance(value, (list, tuple)):
            return [translate(fact, field, item) for item in value]
        if not isinstance(value, str):
            return value
        if field in VOCABULARY_FIELDS and value in words:
            return pgettext(PLAN_VALUE_CONTEXT, value)
        for source in (field, *copies.get((fact.get("kind"), field), ())):
            phrase = _role_phrase(source, value)
            if phrase is not None:
                return phrase
        pack = constants.get((fact.get("kind"), field, value))
        if pack is not None:
            return pack_text(pack, VALUE_CONTEXT, value)
        return value

    return translate


def _derive_constants(compiled: CompiledRules) -> tuple[dict[tuple[str, str, str], str], dict[tuple[str, str], set[str]]]:
    """(derived kind, field, constant text) -> the pack of the rule whose `derive:` writes it."""
    from ssm_rules.rulepack.model import Const, FieldRef

    constants: dict[tuple[str, str, str], str] = {}
    copies: dict[tuple[str, str], set[str]] = {}  # (derived kind, field) -> the fields it copies
    for compiled_rule in compiled.rules.values():
        derive = compiled_rule.rule.derive
        if derive is None:
            continue
        for name, operand in derive.fields.items():
            if isinstance(operand, Const) and isinstance(operand.value, str):
                constants.setdefault((derive.kind, name, operand.value), compiled_rule.rule.pack)
            elif isinstance(operand, FieldRef):
                copies.setdefault((derive.kind, name), set()).add(operand.field)
    return constants, copies


def _role_phrase(field: str, value: str) -> str | None:
    """facts.py's role words ("key decision leader" of `role_name`, "sponsor Ivana Marić" of
    `named_sponsor`) with the role translated, the name as the plan writes it; None otherwise."""
    from ssm_rules.plan_format import ROLES

    if field == "role_name":
        role = value.replace(" ", "_")
        return pgettext(PLAN_VALUE_CONTEXT, role) if role in ROLES else None
    role = field.removeprefix("named_")
    if role == field or role not in ROLES:
        return None
    words = role.replace("_", " ") + " "
    if not value.startswith(words):
        return None
    return f"{pgettext(PLAN_VALUE_CONTEXT, role)} {value[len(words):]}"


@functools.cache
def vocabulary() -> frozenset[str]:
    """Every word of the plan format's closed vocabularies."""
    from typing import get_args

    from ssm_rules import model, plan_format

    words = {*plan_format.ROLES, *plan_format.ACTIVITIES, *plan_format.ALL_STAGES,
             *(key for _stage, key in plan_format.MILESTONES)}
    for literal in (model.Attitude, model.Influence, model.ActivityStatus, model.SourceKind, model.Component):
        words.update(get_args(literal))
    return frozenset(words)


def outcome(packs: Pack | Iterable[Pack], derived: Iterable[Mapping[str, Any]]) -> dict[str, list[str]]:
    """The verifiable outcome: items (in the packs' order) with a derived fact are met."""
    if isinstance(packs, Pack):
        packs = [packs]
    derived = list(derived)
    met: list[str] = []
    missing: list[str] = []
    for pack in packs:
        spec = pack.outcome
        if spec is None:
            continue
        present = {fact.get(spec.field) for fact in derived if fact.get("kind") == spec.kind}
        for item in spec.items:
            (met if item in present else missing).append(item)
    return {"met": met, "missing": missing}


class _PlanOrder:
    """Where a fact comes in the plan: its index among the facts, derived facts after them."""

    def __init__(self, facts: Sequence[Mapping[str, Any]], derived: Sequence[Mapping[str, Any]]):
        self.positions = {id(fact): index for index, fact in enumerate(facts)}
        self._derived = derived
        self._ordered = False  # derived facts get positions when a match first binds one

    def rank(self, match: Match, patterns) -> tuple[int, ...]:
        positions = self.positions
        ids = [id(match.bindings[p.name]) for p in patterns if not p.negated]
        if not self._ordered and any(i not in positions for i in ids):
            # Derived facts after the plan's, in a content order: the engine's firing order
            # must not matter. (Most plans' findings bind none: the sort is skipped.)
            after = len(positions)
            for index, fact in enumerate(sorted(self._derived, key=lambda f: repr(sorted(f.items(), key=str)))):
                positions.setdefault(id(fact), after + index)
            self._ordered = True
        unknown = len(positions)
        return tuple(positions.get(i, unknown) for i in ids)


def _subject_id(subject: Mapping[str, Any]) -> str | int | None:
    key = subject.get("key")
    if subject.get("kind") in INDEXED_KINDS and isinstance(key, str) and key.isdigit():
        return int(key)
    return key


def _join_path(base: str, location: str) -> str:
    if not location:
        return base
    if not base:
        return location
    return base + location if location.startswith("[") else f"{base}.{location}"


def _owner(owner: str | None, subject: str, bindings: Mapping[str, Mapping[str, Any]],
           account_owner: str | None) -> str | None:
    if owner == ACCOUNT_OWNER:
        return account_owner
    if owner is None:  # the default: the subject's owner when the subject is a contact or an opportunity
        person = bindings.get(subject)
        if person is None or person.get("kind") not in OWNER_KINDS:
            return account_owner
    else:
        person = bindings.get(owner)
    return (person or {}).get("owner") or account_owner  # a contact without one: the account's


def _one_line(text: str) -> str:
    """Messages are single lines: plan values may hold line breaks."""
    return " ".join(text.split())


def _one_line_or_none(text: str | None) -> str | None:
    # An owner is plan text too: a line break in it would start a new line of the report, which
    # a CI log may read as a command (`::error ...` in GitHub Actions).
    return None if text is None else _one_line(text) or None
