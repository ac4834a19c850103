"""The plan model: the only place that knows what a valid plan file is (docs/plan-format.md, version 1).

`validate(document)` turns a loaded `Document` into a `Plan` or raises `PlanError` with every
problem located at the key or item a person must fix.
"""

from __future__ import annotations

import json
from datetime import date
from types import UnionType
from typing import Annotated, Any, Literal, Union, get_args, get_origin

import annotated_types
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, Strict, StringConstraints, ValidationError
from pydantic.fields import FieldInfo
from pydantic_core import PydanticCustomError

from ssm_rules.errors import PlanError, PlanProblem
from ssm_rules.plan_format import (ALL_STAGES, FORMAT, MAX_WHOLE, Record, check_format, check_identity_and_references,
                                   with_reference_problems)
from ssm_rules.suggestions import closest

Slug = Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9._-]*$")]
Text = str
Attitude = Literal["supporter", "neutral", "unsupportive", "opposed"]
Influence = Literal["high", "medium", "low"]
ActivityStatus = Literal["not_started", "in_progress", "done"]
SourceKind = Literal["client", "internal", "partner"]
Component = Literal["strategy_design", "applications", "middleware", "platform", "infrastructure", "deployment"]
Stage = Literal[ALL_STAGES]
# A field named `date` (an outcome's) would shadow the type inside its class body.
Date = date


def _written_as_a_number(value: Any) -> Any:
    # pydantic's lax mode reads `value: "12"` as 12 and `value: true` as 1: a quoted number is
    # usually a pasted spreadsheet cell, a boolean a slip; neither is what the plan says.
    if isinstance(value, (str, bool)):
        raise PydanticCustomError("number_written_as_text" if isinstance(value, str) else "number_type",
                                  "a number is required")
    return value


_NUMBER = BeforeValidator(_written_as_a_number)
WholeNumber = Annotated[int, Field(ge=-MAX_WHOLE, le=MAX_WHOLE), _NUMBER]
# Not capped at 100: a share of 115 is a mistake the route rules report, with the others.
Percent = Annotated[float, Field(ge=0), _NUMBER]
# Money is added up (the pipeline review's totals): bounded like whole numbers (MAX_WHOLE), and
# never negative: a deal, a spend or a target below zero would silently lower every total.
Money = Annotated[float, Field(ge=0, le=MAX_WHOLE), _NUMBER]
# true or false as YAML writes them: not "yes", "true" in quotes, 1 or 0.
Boolean = Annotated[bool, Strict()]


class Model(BaseModel):
    # Numbers are finite: an infinite or NaN value makes every comparison a rule does false,
    # and the engine's C core silently drops every fact asserted after it.
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


class Account(Model):
    id: Slug = Field(description="Unique across a portfolio.")
    name: Text
    industry: Text | None = None
    owner: Text = Field(description="The team member who owns the account (relationship owner).")


class Partner(Model):
    name: Text
    participated: Boolean | None = Field(None, description="Took part in developing the plan (G03).")


class Activities(Model):
    align: ActivityStatus | None = None
    plan: ActivityStatus | None = None
    articulate_value: ActivityStatus | None = None
    thought_leadership: ActivityStatus | None = None


class PlanSection(Model):
    last_reviewed: date | None = Field(None, description="Last full review; absent = never reviewed (G01).")
    approved_by_client: date | None = Field(None, description="The client reviewed and approved the plan (G80).")
    sources: list[SourceKind] | None = Field(None, description="Kinds of source used to validate the plan (G02).")
    partners: list[Partner] | None = None
    activities: Activities | None = None
    phase_complete: Boolean | None = Field(None, description="The team claims Phase 1's verifiable outcome is reached.")


class Issue(Model):
    text: Text
    priority: WholeNumber | None = None
    confirmed_with_client: Boolean | None = None


class Research(Model):
    industry: Text | None = None
    competitors: list[Text] | None = None
    business_direction: Text | None = None


class Preferences(Model):
    technology: Text | None = None
    finance: Text | None = None
    procurement: Text | None = None
    vendor: Text | None = None


class Position(Model):
    current: Text | None = None
    desired: Text | None = None


class Organization(Model):
    formal: Text | None = None
    informal: list[Text] | None = None


class Insight(Model):
    strategic_priorities: list[Text] | None = None
    issues: list[Issue] | None = None
    research: Research | None = None
    it_environment: Text | None = None
    preferences: Preferences | None = None
    position: Position | None = Field(None, description="Business Position Model (G12).")
    organization: Organization | None = None


class Initiative(Model):
    id: Slug
    goal: Text | None = Field(None, description="The strategic goal the initiative pursues.")
    actions: list[Text] | None = None
    projects: list[Text] | None = None


class Contact(Model):
    id: Slug
    name: Text | None = None
    title: Text | None = None
    attitude: Attitude | None = None
    influence: Influence | None = None
    owner: Text | None = Field(None, description="Our team member who owns the relationship (G40).")
    goal: Text | None = Field(None, description="Goal to strengthen the relationship (G41).")
    last_contact: date | None = None
    next_meeting: date | None = None
    benefit: Text | None = Field(None, description="What this person gains (G66).")
    plan: Text | None = Field(None, description="Conversion plan (neutral/unsupportive) or containment plan (opposed).")
    external: Boolean | None = Field(None, description="Consultant, analyst, supplier, shareholder.")


class BuyingUnit(Model):
    key_decision_leader: list[Slug] | None = None
    sponsor: list[Slug] | None = None
    benefit_owner: list[Slug] | None = None
    evaluator: list[Slug] | None = None
    approver: list[Slug] | None = None
    influencer: list[Slug] | None = None


class VerifiableOutcome(Model):
    """What the client did that proves a milestone (the stages guide's verifiable outcome)."""

    date: Date = Field(description="When the client did it; a date after the as-of date proves nothing yet (S04).")
    by: list[Slug] | None = Field(None, description="IDs of the contacts who gave it (S03).")
    evidence: Text | None = Field(None, description="What the evidence is and where it is kept (S06).")


class Outcomes(Model):
    """One verifiable outcome per milestone, in the order of the buying process."""

    interest: VerifiableOutcome | None = Field(
        None, description="`identified`: the client has shown interest in working with the team on this need.")
    need_confirmed: VerifiableOutcome | None = Field(
        None, description="`validated`: the client stated the business need and a buying vision, and agreed "
                          "to help the team reach the power sponsor.")
    go_forward: VerifiableOutcome | None = Field(
        None, description="`qualified`: the power sponsor (a key decision leader) and the team agree to go "
                          "forward with a preliminary solution.")
    conditional_approval: VerifiableOutcome | None = Field(
        None, description="`proposed`: the power sponsor's conditional approval of the proposed solution.")
    contract_signed: VerifiableOutcome | None = Field(
        None, description="`won`: client and team sign a contract.")
    value_acknowledged: VerifiableOutcome | None = Field(
        None, description="`completed`: the client acknowledges the value of the delivered solution.")


class NextStep(Model):
    action: Text = Field(description="The one next step of an open opportunity.")
    due: Date | None = Field(None, description="When it is due (S10).")
    owner: Text | None = Field(None, description="The team member who does it; default: the opportunity's owner.")


class Opportunity(Model):
    id: Slug
    name: Text | None = None
    owner: Text | None = Field(None, description="The seller who owns the opportunity; default: the account owner.")
    initiative: Slug | None = Field(None, description="The client initiative it serves (G22).")
    priority: WholeNumber | None = Field(None, description="Rank, 1 = highest, unique (G20).")
    must_win: Boolean | None = None
    value: Money | None = Field(None, description="What the opportunity is worth, in the account's currency.")
    stage: Stage = "identified"
    stage_since: Date | None = Field(None, description="The date the opportunity reached its current stage (S13).")
    close_date: Date | None = Field(None, description="Expected close; the actual close once won or lost (S11).")
    components: list[Component] | None = None
    buying_unit: BuyingUnit | None = None
    outcomes: Outcomes | None = Field(None, description="Verifiable outcomes, one per milestone (S01).")
    next_step: NextStep | None = Field(None, description="The one dated next step of an open opportunity (S10).")
    lost_reason: Text | None = Field(None, description="Why it was lost (only for stage: lost; S30).")


class Route(Model):
    route: Slug
    share: Percent | None = Field(None, description="Percent of opportunities through this route (not negative).")


class RoutesToMarket(Model):
    agreed_with_client: Boolean | None = Field(None, description="Routes and service approach agreed (G84).")
    routes: list[Route] | None = None


class Team(Model):
    client_spend: Money | None = None
    target: Money | None = None
    plan: Text | None = None
    strategies: list[Text] | None = None


class ThoughtLeadership(Model):
    topic: Text
    confirmed: Boolean | None = Field(None, description="Confirmed with the client and partners (G85).")


class Outcome(Model):
    assessment_satisfied: Boolean | None = Field(None, description="Client satisfied with the assessment plan (G81).")


class Plan(Model):
    """One client account plan (docs/plan-format.md, version 1)."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False, title="SSM account plan (ssm-plan/1)")

    format: Literal[FORMAT]
    account: Account
    plan: PlanSection | None = None
    insight: Insight | None = None
    initiatives: list[Initiative] | None = None
    contacts: list[Contact] | None = None
    opportunities: list[Opportunity] | None = None
    routes_to_market: RoutesToMarket | None = None
    team: Team | None = None
    thought_leadership: list[ThoughtLeadership] | None = None
    outcome: Outcome | None = None


def validate(document: Any) -> Plan:
    """Validate a loaded document (`ssm_rules.loader.Document`) into a Plan, or raise PlanError.

    The pipeline calls `ssm_rules.plan_shape.validate`, which comes here only for plans that
    are not plain; the checks and the messages are the same.
    """
    format_problem = check_format(document.data, document)
    if format_problem:
        raise PlanError([format_problem])
    try:
        plan = validate_fields(document.data, document)
    except PlanError as error:
        raise with_reference_problems(error, document.data, document) from None
    problems = check_identity_and_references(plan, document)
    if problems:
        raise PlanError(problems)
    return plan


def validate_fields(data: dict, document: Any) -> Plan:
    """Every key and value against the models (not IDs and references); PlanError if any is wrong."""
    try:
        return Plan.model_validate(data)
    except ValidationError as error:
        raise PlanError(_problems_from(error, document)) from None


def to_record(value: Any) -> Any:
    """A validated Plan (or a part of it) as the `Record`s `ssm_rules.plan_shape` returns."""
    if isinstance(value, BaseModel):
        return Record({name: to_record(getattr(value, name)) for name in type(value).model_fields})
    if isinstance(value, list):
        return [to_record(item) for item in value]
    return value


def _path(loc: tuple) -> str:
    text = ""
    for part in loc:
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            text += f".{part}" if text else str(part)
    return text


def _model_at(loc: tuple) -> type[BaseModel] | None:
    """The model class that holds the value at `loc` (to name known keys for an unknown one)."""
    current: Any = Plan
    for part in loc:
        if isinstance(part, int):
            continue
        if not (isinstance(current, type) and issubclass(current, BaseModel)):
            return None
        field: FieldInfo | None = current.model_fields.get(part)
        if field is None:
            return None
        current = _innermost_model(field.annotation)
    return current if isinstance(current, type) and issubclass(current, BaseModel) else None


def _innermost_model(annotation: Any) -> Any:
    """Strip Optional[...] and list[...] down to the model class inside, if any."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in get_args(annotation):
        found = _innermost_model(arg)
        if found is not None:
            return found
    return None


def _problems_from(error: ValidationError, document: Any) -> list[PlanProblem]:
    problems: list[PlanProblem] = []
    seen: set[tuple[str, str]] = set()
    for item in error.errors(include_url=False):
        loc = tuple(item["loc"])
        path = _path(loc)
        message = _describe(item, loc)
        if (path, message) in seen:
            continue
        seen.add((path, message))
        line, column = document.locate(path)
        problems.append(PlanProblem(message, line, column, path))
    problems.sort(key=lambda p: (p.line or 0, p.column or 0))
    return problems


def _describe(item: dict, loc: tuple) -> str:
    kind = item["type"]
    # Name the value as the user wrote it: `sources[0]` rather than a bare index.
    key = _path(loc[-2:]) if loc and isinstance(loc[-1], int) else (loc[-1] if loc else "")
    where = _path(loc[:-1]) or "the top level"
    if kind == "extra_forbidden":
        parent = _model_at(loc[:-1])
        known = list(parent.model_fields) if parent else []
        close = closest(key, known)
        hint = f": did you mean `{close[0]}`?" if close else (f"; known keys: {', '.join(known)}" if known else "")
        return f"unknown key `{key}` in {where}{hint}"
    if kind == "missing":
        return f"missing required key `{key}` in {where}"
    if kind == "literal_error":
        expected = item.get("ctx", {}).get("expected", "")
        choices = [choice.strip(" '") for choice in expected.replace(" or ", ", ").split(",")]
        got = item.get("input")
        close = closest(got, choices)
        hint = f": did you mean `{close[0]}`?" if close else ""
        return f"`{key}` must be one of {', '.join(choices)} (got {_shown(got)}){hint}"
    if kind == "string_pattern_mismatch":
        return (f"`{key}` must be an ID: lowercase letters, digits, '.', '_' or '-', "
                f"starting with a letter or digit (got {_shown(item.get('input'))})")
    if kind in {"model_type", "model_attributes_type", "dict_type"}:
        return f"`{key or 'the plan'}` must be a mapping of keys to values (got {_type_name(item.get('input'))})"
    if kind == "list_type":
        return f"`{key}` must be a list (got {_type_name(item.get('input'))})"
    if kind.startswith("date"):
        return f"`{key}` must be an ISO date like 2026-10-02 (got {_shown(item.get('input'))})"
    if kind in {"string_type"}:
        got = item.get("input")
        if isinstance(got, bool):  # `name: yes`, `title: off`: YAML 1.1 reads them as true/false
            return f"`{key}` must be text (got true/false: yes, no, on, off, true and false are read as one); quote it"
        return f"`{key}` must be text (got {_type_name(got)} {_shown(got)}); quote it"
    if kind.startswith("bool"):
        got = item.get("input")
        fix = f": write {str(got).strip().lower()} without quotes" if str(got).strip().lower() in ("true", "false") \
            else ""
        return f"`{key}` must be true or false (got {_shown(got)}){fix}"
    if kind == "number_written_as_text":
        got = str(item.get("input"))
        fix = f": write {got.strip()} without quotes" if _is_number_text(got) else ""
        return f"`{key}` must be a number, not text (got {_shown(got)}){fix}"
    if kind == "number_type":
        return f"`{key}` must be a number (got {_shown(item.get('input'))})"
    if kind == "finite_number" or (kind == "float_type" and isinstance(item.get("input"), int)):
        return f"`{key}` must be a finite number (got {_shown(item.get('input'))})"
    if kind in ("greater_than_equal", "less_than_equal"):
        bound = item.get("ctx", {}).get("ge" if kind == "greater_than_equal" else "le")
        bound = int(bound) if isinstance(bound, float) and bound.is_integer() else bound
        return (f"`{key}` must be {'at least' if kind == 'greater_than_equal' else 'at most'} {bound:,} "
                f"(got {_shown(item.get('input'))})")
    if kind.startswith(("int", "float")):
        return f"`{key}` must be a number (got {_shown(item.get('input'))})"
    return f"`{key}`: {item['msg']}"


def _is_number_text(text: str) -> bool:
    try:
        float(text.strip().replace("_", "x"))  # float() reads "1_000"; YAML would not unquoted
    except ValueError:
        return False
    return text.strip().lower() not in ("nan", "inf", "+inf", "-inf", "infinity", "+infinity", "-infinity")


def _shown(value: Any, limit: int = 40) -> str:
    """A value as the message quotes it, as YAML writes it (true, 2026-10-02): a hostile plan's
    400-digit number is cut short."""
    text = str(value).lower() if isinstance(value, bool) else value.isoformat() if isinstance(value, date) \
        else repr(value)
    return text if len(text) <= limit else f"{text[:limit - 12]}...{text[-8:]} ({len(text):,} characters)"


def _type_name(value: Any) -> str:
    return {dict: "a mapping", list: "a list", str: "text", int: "a number", float: "a number",
            bool: "true/false", date: "a date", type(None): "nothing"}.get(type(value), type(value).__name__)


# --- the models' shape as plain data (plan_shape.json) ------------------------------------------

_SCALAR_TYPES = {str: "str", bool: "bool", int: "int", float: "float", date: "date"}


def shape() -> dict:
    """Every model's fields as plain data: what `ssm_rules.plan_shape` validates plain plans with.

    Written to ssm_rules/plan_shape.json by `python -m ssm_rules.model --shape` (a test fails
    when the file differs). A field type this cannot express stops the generation, so a change
    to the models can never leave the plain path checking less than pydantic does.
    """
    models: dict[str, dict] = {}

    def visit(cls: type[BaseModel]) -> None:
        if cls.__name__ in models:
            return
        fields: dict[str, dict] = {}
        models[cls.__name__] = fields
        finite = cls.model_config.get("allow_inf_nan") is False
        for name, info in cls.model_fields.items():
            spec = _type_shape(info.annotation, info.metadata, visit, finite)
            spec["required"] = info.is_required()
            if not spec["required"]:
                if info.default is not None and not isinstance(info.default, (str, int, float, bool)):
                    raise TypeError(f"{cls.__name__}.{name}: only scalar defaults can be shared by every plan")
                spec["default"] = info.default
            fields[name] = spec

    visit(Plan)
    return {"format": FORMAT, "root": Plan.__name__, "models": models}


def _type_shape(annotation: Any, metadata: list, visit, finite: bool) -> dict:
    origin, args = get_origin(annotation), get_args(annotation)
    if origin in (Union, UnionType) and type(None) in args:
        rest = [arg for arg in args if arg is not type(None)]
        if len(rest) != 1:
            raise TypeError(f"unions other than `X | None` have no plain shape: {annotation}")
        return {**_type_shape(rest[0], metadata, visit, finite), "nullable": True}
    if origin is Annotated:
        return _type_shape(args[0], [*metadata, *annotation.__metadata__], visit, finite)
    if origin is Literal:
        return {"type": "choice", "choices": list(args)}
    if origin is list:
        return {"type": "list", "items": _type_shape(args[0], [], visit, finite)}
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        visit(annotation)
        return {"type": "model", "model": annotation.__name__}
    if annotation in _SCALAR_TYPES:
        spec: dict[str, Any] = {"type": _SCALAR_TYPES[annotation]}
        if annotation is float and finite:
            spec["finite"] = True
        for constraint in _constraints(metadata):
            if isinstance(constraint, StringConstraints) and constraint.pattern and annotation is str:
                spec["pattern"] = constraint.pattern
            elif isinstance(constraint, annotated_types.Ge) and annotation in (int, float):
                spec["minimum"] = constraint.ge
            elif isinstance(constraint, annotated_types.Le) and annotation in (int, float):
                spec["maximum"] = constraint.le
            elif constraint == Strict() or constraint is _NUMBER:
                pass  # the plain path takes only the field's own type: text and booleans go to pydantic
            else:
                raise TypeError(f"a constraint with no plain shape: {constraint!r}")
        return spec
    raise TypeError(f"a field type with no plain shape: {annotation!r}")


def _constraints(metadata: list) -> list:
    """The constraints in a field's metadata, those of `Annotated[T, Field(...)]` included."""
    found = []
    for item in metadata:
        found += item.metadata if isinstance(item, FieldInfo) else [item]
    return found


def shape_json() -> str:
    return json.dumps(shape(), indent=2) + "\n"


if __name__ == "__main__":
    import sys

    if sys.argv[1:] != ["--shape"]:
        sys.exit("usage: python -m ssm_rules.model --shape > ssm_rules/plan_shape.json")
    sys.stdout.write(shape_json())
