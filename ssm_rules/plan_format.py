"""The plan format's vocabulary and the checks both validation paths share: a leaf module.

The format's names (`FORMAT`, `ROLES`, `ACTIVITIES`, the stages and their `MILESTONES`), the
bounds of its numbers, `Record` (a validated mapping), the `format:` check and the identity and
reference checks. `plan_shape` (the plain path) and `model` (pydantic) both import it, and
neither imports the other at load time: the plain path reaches pydantic only for a plan that is
not plain.
"""

from __future__ import annotations

from typing import Any

from ssm_rules.errors import PlanError, PlanProblem
from ssm_rules.suggestions import closest

FORMAT = "ssm-plan/1"
ROLES = ("key_decision_leader", "sponsor", "benefit_owner", "evaluator", "approver", "influencer")
ACTIVITIES = ("align", "plan", "articulate_value", "thought_leadership")  # in the order SSM sets (G07)
# The pipeline milestones in order, each with the key under `outcomes` of the verifiable outcome
# that proves it (the stages guide's table). `lost` is no milestone.
MILESTONES = (("identified", "interest"), ("validated", "need_confirmed"), ("qualified", "go_forward"),
              ("proposed", "conditional_approval"), ("won", "contract_signed"), ("completed", "value_acknowledged"))
STAGES = tuple(stage for stage, _ in MILESTONES)  # identified ... completed, by rank
ALL_STAGES = (*STAGES, "lost")  # every stage an opportunity may claim
OPEN_STAGES = STAGES[:4]  # identified, validated, qualified, proposed
# Stage ranks, for comparing stages (the stages guide: no support 0, identified 1, ...). `lost`
# has none: it is no milestone.
STAGE_RANKS = {stage: rank for rank, stage in enumerate(STAGES, start=1)}
# Whole numbers and money stay within ±(2**53 - 1): beyond it a float no longer holds every whole
# number (the engine's C core compares two such priorities as equal), and two amounts near the
# largest float add up to infinity.
MAX_WHOLE = 2**53 - 1


class Record:
    """One validated mapping of a plan: an attribute for each key its model declares.

    Keys the plan leaves out hold the model's default (None for optional sections). Read-only,
    like the frozen pydantic models it stands for; picklable, so the plan cache can keep it.
    """

    def __init__(self, fields: dict[str, Any]):
        self.__dict__.update(fields)

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError(f"a validated plan is read-only (setting {name!r})")

    def __eq__(self, other: object) -> bool:
        return type(other) is Record and self.__dict__ == other.__dict__

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return "Record(" + ", ".join(f"{name}={value!r}" for name, value in self.__dict__.items()) + ")"


def check_format(data: dict, document: Any) -> PlanProblem | None:
    """The `format:` line first: a plan of another format gets one clear message, not fifty."""
    if "format" not in data:
        return PlanProblem(f"missing `format: {FORMAT}`: add it as the first line of the plan", 1, 1, "")
    if data["format"] != FORMAT:
        line, column = document.locate("format")
        return PlanProblem(
            f"unsupported format {data['format']!r}: this version of ssm reads `format: {FORMAT}`",
            line, column, "format",
        )
    return None


def check_identity_and_references(plan: Any, document: Any) -> list[PlanProblem]:
    """Unique IDs in each list, and references to initiatives and contacts (buying units, the
    givers of verifiable outcomes) that exist.

    `plan` is a Record tree or the pydantic Plan: both answer the same attribute names.
    """
    problems: list[PlanProblem] = []

    def problem(message: str, path: str) -> None:
        line, column = document.locate(path)
        problems.append(PlanProblem(message, line, column, path))

    for list_name in ("initiatives", "contacts", "opportunities"):
        first_index: dict[str, int] = {}
        for index, item in enumerate(_listed(getattr(plan, list_name))):
            if not isinstance(item.id, str):  # an ID that could not be read: the format problems say so
                continue
            if item.id in first_index:
                line, _ = document.locate(f"{list_name}[{first_index[item.id]}]")
                problem(f"duplicate ID `{item.id}` in {list_name} (first used at line {line}): IDs must be unique",
                        f"{list_name}[{index}].id")
            else:
                first_index[item.id] = index

    contact_ids = [contact.id for contact in _listed(plan.contacts) if isinstance(contact.id, str)]
    contact_names = {" ".join(contact.name.split()).lower(): contact.id for contact in _listed(plan.contacts)
                     if isinstance(contact.id, str) and isinstance(contact.name, str)}
    initiative_ids = [initiative.id for initiative in _listed(plan.initiatives) if isinstance(initiative.id, str)]
    known_contacts, known_initiatives = set(contact_ids), set(initiative_ids)
    unknown: list[tuple[str, tuple]] = []  # (path, the arguments of _unknown_reference)
    for index, opportunity in enumerate(_listed(plan.opportunities)):
        if isinstance(opportunity.initiative, str) and opportunity.initiative not in known_initiatives:
            unknown.append((f"opportunities[{index}].initiative",
                            ("initiative", opportunity.initiative, initiative_ids, "initiatives")))
        for role in ROLES:
            for position, contact_id in enumerate(_listed(getattr(opportunity.buying_unit, role, None))):
                if isinstance(contact_id, str) and contact_id not in known_contacts:
                    unknown.append((f"opportunities[{index}].buying_unit.{role}[{position}]",
                                    ("contact", contact_id, contact_ids, "contacts", contact_names)))
        for _, outcome_key in MILESTONES:
            outcome = getattr(opportunity.outcomes, outcome_key, None)
            for position, contact_id in enumerate(_listed(outcome.by if outcome else None)):
                if isinstance(contact_id, str) and contact_id not in known_contacts:
                    unknown.append((f"opportunities[{index}].outcomes.{outcome_key}.by[{position}]",
                                    ("contact", contact_id, contact_ids, "contacts", contact_names)))
    for path, arguments in unknown[:MAX_REFERENCE_PROBLEMS]:
        problem(_unknown_reference(*arguments), path)
    if len(unknown) > MAX_REFERENCE_PROBLEMS:
        rest = len(unknown) - MAX_REFERENCE_PROBLEMS
        problem(f"{rest} more unknown references from here on (the first {MAX_REFERENCE_PROBLEMS} are listed): "
                f"fix those, then validate again", unknown[MAX_REFERENCE_PROBLEMS][0])
    return problems


# A plan generated wrong can hold thousands of dangling references: reporting each with a
# suggestion and the known IDs would take minutes and bury the first ones.
MAX_REFERENCE_PROBLEMS = 50
MAX_LISTED_IDS = 30


def _listed(value: Any) -> list:
    """A list as it is; anything else (None, or text where a list belongs in an invalid plan) as []."""
    return value if isinstance(value, list) else []


def with_reference_problems(error: PlanError, data: dict, document: Any) -> PlanError:
    """The format problems of a plan together with its identity and reference problems, so that
    one run reports everything wrong with a file that parses (not the references only once the
    format is fixed). Read from the raw data: an item whose ID cannot be read is left out."""
    problems = list(error.problems)
    known = {(p.path, p.message) for p in problems}
    for problem in check_identity_and_references(_readable_references(data), document):
        if (problem.path, problem.message) not in known:
            problems.append(problem)
    problems.sort(key=lambda p: (p.line or 0, p.column or 0))
    return PlanError(problems)


class _Readable:
    """A plan that is not (yet) valid, as `check_identity_and_references` reads it: any key
    answers, with its text, mapping (another _Readable) or list, or None for anything else
    (absent, a number where an ID belongs, ...); the checks only use what is text."""

    def __init__(self, data: dict):
        self._data = data

    def __getattr__(self, name: str) -> Any:
        return _readable(self._data.get(name)) if not name.startswith("_") else None


def _readable(value: Any) -> Any:
    if type(value) is str:
        return value
    if type(value) is dict:
        return _Readable(value)
    if type(value) is list:  # an item that is neither text nor a mapping reads as an empty mapping
        return [item if type(item) is str else _Readable(item if type(item) is dict else {}) for item in value]
    return None


def _readable_references(data: dict) -> _Readable:
    return _Readable(data)


def _unknown_reference(what: str, ref: str, known: list[str], list_name: str,
                       names: dict[str, str] | None = None) -> str:
    """`names`: ID by lower-case name, for a reference written as the person's name."""
    named = (names or {}).get(" ".join(ref.split()).lower())
    close = [named] if named else closest(ref, known)
    hint = f"did you mean `{close[0]}`? " if close else ""
    if named:
        hint = f"`{ref}` is the name of {what} `{named}`: write its ID; "
    if not known:
        listing = f"none: the plan has no {list_name}"
    elif len(known) > MAX_LISTED_IDS:
        listing = ", ".join(known[:MAX_LISTED_IDS]) + f", ... ({len(known)} in all)"
    else:
        listing = ", ".join(known)
    return f"unknown {what} `{ref}`: {hint}known {list_name}: {listing}"
