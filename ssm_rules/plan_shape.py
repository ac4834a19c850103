"""Validated plans as plain records, checked without importing pydantic when the plan is plain.

`validate(document)` is what the pipeline calls: it returns the plan as `Record`s (one per
mapping, an attribute for every key the model declares) or raises `PlanError`.

The plan model in `ssm_rules.model` (pydantic) is the one source of truth for the format. Its
shape, as plain data, is generated into `plan_shape.json` (`python -m ssm_rules.model
--shape`; a test keeps the file current). Most plans are plain: every value already has the
type its field wants (YAML gives dates, numbers and booleans typed). For those, walking the
shape here gives exactly what pydantic would give, a few times faster to start: importing
pydantic and building the models costs more than a whole yamllint run, and `ssm check` in a
pre-commit hook pays start-up on every commit. Anything else (a date written as a quoted
string, a number where text is expected, an unknown key, a missing one) goes to pydantic,
which accepts what it can coerce and words the errors. So the fast path only ever accepts a
plan pydantic accepts, with the same values (tests compare both on every sample, benchmark
and rule-example plan), and every error message still comes from one place.
"""

from __future__ import annotations

import difflib
import json
import math
import re
from datetime import date
from functools import lru_cache
from pathlib import Path
from typing import Any, Callable

from ssm_rules.errors import PlanError, PlanProblem

FORMAT = "ssm-plan/1"
ROLES = ("key_decision_leader", "sponsor", "benefit_owner", "evaluator", "approver", "influencer")
ACTIVITIES = ("align", "plan", "articulate_value", "thought_leadership")  # in the order SSM sets (G07)
# The pipeline milestones in order, each with the key under `outcomes` of the verifiable outcome
# that proves it (the stages guide's table). `lost` is no milestone.
MILESTONES = (("identified", "interest"), ("validated", "need_confirmed"), ("qualified", "go_forward"),
              ("proposed", "conditional_approval"), ("won", "contract_signed"), ("completed", "value_acknowledged"))
# Whole numbers and money stay within ±(2**53 - 1): beyond it a float no longer holds every whole
# number (the engine's C core compares two such priorities as equal), and two amounts near the
# largest float add up to infinity.
MAX_WHOLE = 2**53 - 1
SHAPE_FILE = Path(__file__).with_name("plan_shape.json")


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


def validate(document: Any) -> Record:
    """A loaded `ssm_rules.loader.Document` -> the plan as Records, or PlanError with every problem."""
    data = document.data
    problem = check_format(data, document)
    if problem:
        raise PlanError([problem])
    plan = plain_plan(data)
    if plan is None:
        from ssm_rules import model  # pydantic: coerces what it can, and words every error

        try:
            plan = model.to_record(model.validate_fields(data, document))
        except PlanError as error:
            raise with_reference_problems(error, data, document) from None
    problems = check_identity_and_references(plan, document)
    if problems:
        raise PlanError(problems)
    return plan


def plain_plan(data: Any) -> Record | None:
    """The plan as Records when every value has its field's own type; None for anything else."""
    try:
        return _validators()[0](data)
    except _NotPlain:
        return None


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
    close = [named] if named else difflib.get_close_matches(ref, known, n=1, cutoff=0.6)
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


# --- the plain-plan validator, built from plan_shape.json ----------------------------------------

class _NotPlain(Exception):
    """A value the plain path does not take: pydantic decides."""


_ISO_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")


def _text(value: Any) -> str:
    if type(value) is str:
        return value
    raise _NotPlain


def _boolean(value: Any) -> bool:
    if type(value) is bool:
        return value
    raise _NotPlain


def _integer(value: Any) -> int:
    if type(value) is int:
        return value
    raise _NotPlain


def _number(value: Any) -> float:
    kind = type(value)
    if kind is float:
        if value - value == 0.0:  # finite: inf - inf and nan - nan are nan; pydantic words the error
            return value
        raise _NotPlain
    if kind is int:
        try:
            return float(value)  # what pydantic gives a float field for 70
        except OverflowError:  # a whole number past the largest float: pydantic words it
            raise _NotPlain from None
    raise _NotPlain


def _date(value: Any) -> date:
    if type(value) is date:
        return value
    # A quoted date (or any date in a JSON plan): the one spelling pydantic reads the same way.
    if type(value) is str and _ISO_DATE.fullmatch(value):
        try:
            return date.fromisoformat(value)
        except ValueError:
            pass
    raise _NotPlain


_SCALARS: dict[str, Callable[[Any], Any]] = {"str": _text, "bool": _boolean, "int": _integer, "float": _number,
                                             "date": _date}


@lru_cache(maxsize=None)
def _validators() -> tuple[Callable[[Any], Record], dict]:
    """(validator of the root model, the shape it was built from), built once per process."""
    shape = json.loads(SHAPE_FILE.read_text(encoding="utf-8"))
    built: dict[str, Callable[[Any], Record]] = {}

    def model(name: str) -> Callable[[Any], Record]:
        if name not in built:
            built[name] = lambda value: built_model(value)  # a forward reference while building
            built_model = _model_validator(shape["models"][name], field_validator)
            built[name] = built_model
        return built[name]

    def field_validator(spec: dict) -> Callable[[Any], Any]:
        kind = spec["type"]
        if kind == "model":
            check = model(spec["model"])
        elif kind == "list":
            item = field_validator(spec["items"])

            def check(value: Any) -> list:
                if type(value) is not list:
                    raise _NotPlain
                return [item(element) for element in value]
        elif kind == "choice":
            choices = frozenset(spec["choices"])

            def check(value: Any) -> str:
                if type(value) is str and value in choices:
                    return value
                raise _NotPlain
        elif kind == "str" and spec.get("pattern"):
            pattern = re.compile(spec["pattern"])

            def check(value: Any) -> str:
                if type(value) is str and pattern.fullmatch(value):
                    return value
                raise _NotPlain
        else:
            check = _SCALARS[kind]
        if "minimum" in spec or "maximum" in spec or spec.get("finite"):
            check = _bounded(check, spec.get("minimum"), spec.get("maximum"), bool(spec.get("finite")))
        if spec.get("nullable"):
            inner = check

            def check(value: Any) -> Any:
                return None if value is None else inner(value)
        return check

    return model(shape["root"]), shape


def _bounded(check: Callable[[Any], Any], minimum: Any, maximum: Any, finite: bool) -> Callable[[Any], Any]:
    """A number check that also holds the field's bounds (out of bounds: pydantic words it)."""
    def bounded(value: Any) -> Any:
        number = check(value)
        if (finite and not math.isfinite(number)) or (minimum is not None and number < minimum) \
                or (maximum is not None and number > maximum):
            raise _NotPlain
        return number

    return bounded


def _model_validator(fields: dict[str, dict], field_validator) -> Callable[[Any], Record]:
    known = frozenset(fields)
    plan = [(name, field_validator(spec), spec["required"], spec.get("default")) for name, spec in fields.items()]

    def check(value: Any) -> Record:
        if type(value) is not dict or not known.issuperset(value):
            raise _NotPlain
        out = {}
        for name, check_field, required, default in plan:
            if name in value:
                out[name] = check_field(value[name])
            elif required:
                raise _NotPlain
            else:
                out[name] = default
        return Record(out)

    return check
