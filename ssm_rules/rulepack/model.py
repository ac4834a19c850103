"""A rule pack as data: the frozen dataclasses `Pack`, `Rule`, `Catalogue` and their parts, the
names of the rule language (keys, operators, kinds), the budget settings every pack has, and
`RulePackError`. Built only by the reader (`reader.py`); read by the compiler, the engine and
the commands."""

from __future__ import annotations

import math
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Literal

from ssm_rules.errors import UsageError


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

NAME_PATTERN = re.compile(r"[a-z][a-z0-9_]*\Z")
KIND_PATTERN = re.compile(r"[a-z][a-z0-9_]*\Z")
FIELD_PATTERN = re.compile(r"[a-z_][a-z0-9_]*\Z")
RULE_ID_PATTERN = re.compile(r"[A-Za-z][A-Za-z0-9]*(?:[-_.][A-Za-z0-9]+)*\Z")
PACK_NAME_PATTERN = re.compile(r"[a-z0-9][a-z0-9._-]*\Z")
REFERENCE_PATTERN = re.compile(r"\$([A-Za-z_][A-Za-z0-9_]*)\.([A-Za-z_][A-Za-z0-9_]*)\Z")
ISO_DATE_PATTERN = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}(?:[T ][0-9:.+-]+Z?)?\Z")


class RulePackError(UsageError):
    """One or more mistakes in rule packs; `problems` holds one `FILE:LINE: ...` line each."""

    def __init__(self, problems: list[str]):
        super().__init__("\n".join(problems))
        self.problems = problems


# Plain frozen dataclasses, not pydantic models: the reader (reader.py) validates every value
# (with the line to fix), and a cached pack is unpickled on every `ssm check`, which must not have to
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


def is_budget(value: Any, default: int | float) -> bool:
    """A positive finite number, whole when the built-in default is."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return False
    if isinstance(default, int) and not isinstance(value, int):
        return False
    return math.isfinite(value) and value > 0


def all_rules(packs: Iterable[Pack]) -> list[Rule]:
    return [rule for pack in packs for rule in pack.rules]


def guidance_items(packs: Iterable[Pack]) -> dict[str, GuidanceItem]:
    """Every guidance item of the packs' catalogues, by upper-case ID, in catalogue order."""
    return {item.id.upper(): item for pack in packs if pack.catalogue for item in pack.catalogue.items}
