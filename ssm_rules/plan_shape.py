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
which accepts what it can coerce (a whole number written as 2.0; never a number or a
true/false written as text, ssm_rules.model) and words the errors. So the fast path only ever accepts a
plan pydantic accepts, with the same values (tests compare both on every sample, benchmark
and rule-example plan), and every error message still comes from one place.
"""

from __future__ import annotations

import json
import math
import re
from datetime import date
from functools import lru_cache
from pathlib import Path
from typing import Any, Callable

from ssm_rules.errors import PlanError
from ssm_rules.plan_format import Record, check_format, check_identity_and_references, with_reference_problems

SHAPE_FILE = Path(__file__).with_name("plan_shape.json")


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
