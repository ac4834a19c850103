"""The pipeline review's data: one `Deal` per opportunity, which ones are shown, their order and
the totals a sales manager reads (the stages guide, "The pipeline review").

Nothing here judges a plan. The supported stage, the missing verifiable outcomes and the days
in stage come from the check (`PlanResult.opportunities`: the opportunity facts and the highest
`supported` fact the engine derived), the findings from the rules; this module selects, orders
and adds up.

Totals are over the *open* opportunities shown (claimed `identified` to `proposed`): their
value by claimed and by supported stage, the **unsupported value** (the value of those whose
claimed rank is above their supported rank), and a weighted forecast on both stages with the
pack's `stage_weights` (percent; no support weighs 0, a stage without a weight weighs as the
nearest weighted stage below it, so `completed` weighs as `won`).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from ssm_rules.plan_format import ALL_STAGES, OPEN_STAGES, STAGE_RANKS, STAGES  # noqa: F401 - the review's stages
from ssm_rules.severity import SEVERITY_RANK

NO_SUPPORT = "none"  # the supported stage of rank 0, as a key of the totals
SORTS = ("value", "close", "stage", "risk")
# Phase 1's verifiable outcome (the Focus pack's G86): an opportunity past `identified` claims
# Phase 1 done, so the plan's G86 findings are shown on each such opportunity (stages guide, S22).
PHASE_ONE_GUIDANCE = "G86"

Number = int | float


def claimed_past_evidence(claimed_stage: str, supported_stage: str | None) -> bool:
    """The claimed rank is above the supported rank (`lost` is no milestone: never)."""
    claimed = STAGE_RANKS.get(claimed_stage)
    return claimed is not None and claimed > STAGE_RANKS.get(supported_stage or "", 0)


@dataclass(frozen=True)
class NextStep:
    action: str
    due: str | None  # ISO date
    owner: str | None
    days_since_due: int | None = None  # negative: not due yet (the facts' days_since_next_step_due)

    def to_json(self) -> dict[str, Any]:
        return {"action": self.action, "due": self.due, "owner": self.owner}


@dataclass(frozen=True)
class Worst:
    """The most severe finding on an opportunity (the first in the plan among equals)."""

    rule: str
    severity: str
    message: str

    def to_json(self) -> dict[str, Any]:
        return {"rule": self.rule, "severity": self.severity, "message": self.message}


@dataclass(frozen=True)
class Deal:
    """One opportunity as the review shows it."""

    account: str | None  # the account ID
    account_name: str
    file: str
    opportunity: str  # the opportunity ID
    name: str | None
    owner: str | None
    must_win: bool
    value: Number | None
    close_date: str | None  # ISO date
    claimed_stage: str
    supported_stage: str | None  # None: no outcome supports any milestone
    missing_outcomes: tuple[str, ...]  # outcome keys the claimed stage lacks, in milestone order
    days_in_stage: int | None
    next_step: NextStep | None
    findings: tuple[str, ...] = ()  # rule IDs, in the plan's order
    worst: Worst | None = None

    @property
    def claimed_rank(self) -> int | None:
        """1 (identified) to 6 (completed); None for `lost`, which is no milestone."""
        return STAGE_RANKS.get(self.claimed_stage)

    @property
    def supported_rank(self) -> int:
        return STAGE_RANKS.get(self.supported_stage or "", 0)

    @property
    def is_open(self) -> bool:
        return self.claimed_stage in OPEN_STAGES

    @property
    def unsupported(self) -> bool:
        """Claimed past its evidence: the claimed rank is above the supported rank."""
        return claimed_past_evidence(self.claimed_stage, self.supported_stage)

    @property
    def title(self) -> str:
        return self.name if self.name and self.name.strip() else self.opportunity

    def to_json(self) -> dict[str, Any]:
        """One opportunity of `ssm pipeline --format json` (docs/output-contract.md)."""
        return {
            "account": self.account,
            "file": self.file,
            "opportunity": self.opportunity,
            "name": self.name,
            "owner": self.owner,
            "must_win": self.must_win,
            "value": self.value,
            "close_date": self.close_date,
            "claimed_stage": self.claimed_stage,
            "supported_stage": self.supported_stage,
            "missing_outcomes": list(self.missing_outcomes),
            "days_in_stage": self.days_in_stage,
            "next_step": self.next_step.to_json() if self.next_step else None,
            "findings": list(self.findings),
            "worst": self.worst.to_json() if self.worst else None,
        }


# ---- from a check's results ------------------------------------------------------------------


def deals_of(result) -> list[Deal]:
    """The opportunities of one valid PlanResult, in plan order, with their findings.

    An opportunity's findings are those whose subject it is, and, once it is past
    `identified` (and not lost), the plan's Phase 1 findings (G86): it claims Phase 1 done.
    """
    if not result.valid:
        return []
    # Findings by subject, once: a plan's findings are looked at once each, not once per
    # opportunity (10,000 opportunities and their findings took minutes).
    by_subject: dict[tuple[str | None, str | None], list[dict]] = {}
    for finding in result.findings:
        finding = finding.to_json()  # the contract's shape
        by_subject.setdefault(_subject(finding), []).append(finding)
    plan_findings = [finding for finding in by_subject.get(("plan", None), ())
                     if PHASE_ONE_GUIDANCE in (finding.get("guidance") or ())]
    deals = []
    for opportunity in getattr(result, "opportunities", None) or ():
        key = opportunity["id"]
        own = list(by_subject.get(("opportunity", str(key)), ()))
        if (STAGE_RANKS.get(opportunity["stage"]) or 0) > STAGE_RANKS["identified"]:
            own += plan_findings
        deals.append(_deal(result, opportunity, own))
    return deals


def _subject(finding: Mapping[str, Any]) -> tuple[str | None, str | None]:
    subject = finding.get("subject") or {}
    kind = subject.get("kind")
    return kind, None if kind == "plan" or subject.get("id") is None else str(subject.get("id"))


def _deal(result, opportunity: Mapping[str, Any], findings: list[dict]) -> Deal:
    step = opportunity.get("next_step")
    worst = min(((SEVERITY_RANK.get(f.get("severity"), 3), index, f) for index, f in enumerate(findings)),
                default=None, key=lambda item: item[:2])
    return Deal(
        account=result.account, account_name=result.account_name or result.account or result.file,
        file=result.file, opportunity=opportunity["id"], name=opportunity.get("name"),
        owner=opportunity.get("owner"), must_win=bool(opportunity.get("must_win")),
        value=opportunity.get("value"), close_date=opportunity.get("close_date"),
        claimed_stage=opportunity["stage"], supported_stage=opportunity.get("supported_stage"),
        missing_outcomes=tuple(opportunity.get("missing_outcomes") or ()),
        days_in_stage=opportunity.get("days_in_stage"),
        next_step=NextStep(step["action"], step.get("due"), step.get("owner"), step.get("days_since_due"))
        if step else None,
        findings=tuple(dict.fromkeys(str(f.get("rule")) for f in findings)),
        worst=Worst(str(worst[2].get("rule")), str(worst[2].get("severity")), str(worst[2].get("message") or ""))
        if worst else None)


# ---- which, in what order --------------------------------------------------------------------


@dataclass(frozen=True)
class Selection:
    """What `ssm pipeline` shows: by default the open opportunities of every owner."""

    owner: str | None = None  # only the opportunities this team member owns (owners.same_person)
    must_win: bool = False
    stages: tuple[str, ...] = ()  # only these claimed stages (whatever `everything` says)
    everything: bool = False  # also won, completed and lost

    def keeps(self, deal: Deal) -> bool:
        from ssm_rules.owners import same_person

        if self.stages:
            if deal.claimed_stage not in self.stages:
                return False
        elif not (self.everything or deal.is_open):
            return False
        if self.must_win and not deal.must_win:
            return False
        return self.owner is None or same_person(deal.owner, self.owner)


def _value_first(deal: Deal) -> tuple:
    return (deal.value is None, -(deal.value or 0))


def _tie(deal: Deal) -> tuple:
    return (deal.account_name.casefold(), deal.file, deal.opportunity)


def _rank_first(deal: Deal) -> int:
    return -(deal.claimed_rank if deal.claimed_rank is not None else -1)  # lost last


SORT_KEYS = {
    # The default: what the review is for first (claimed past the evidence), then by value.
    None: lambda d: (not d.unsupported, *_value_first(d), *_tie(d)),
    "value": lambda d: (*_value_first(d), *_tie(d)),
    "close": lambda d: (d.close_date is None, d.close_date or "", *_value_first(d), *_tie(d)),
    "stage": lambda d: (_rank_first(d), *_value_first(d), *_tie(d)),
    # The worst finding first, then the widest gap between claim and evidence, then value.
    "risk": lambda d: (SEVERITY_RANK.get(d.worst.severity, 3) if d.worst else 4,
                       -((d.claimed_rank or 0) - d.supported_rank), *_value_first(d), *_tie(d)),
}


def ordered(deals: Iterable[Deal], sort: str | None = None) -> list[Deal]:
    return sorted(deals, key=SORT_KEYS[sort])


def by_owner(deals: Sequence[Deal]) -> list[tuple[str | None, list[Deal]]]:
    """(owner, their deals in the given order), owners by name; one group when one owner shows."""
    from ssm_rules.owners import person_key

    groups: dict[str, tuple[str | None, list[Deal]]] = {}
    for deal in deals:
        groups.setdefault(person_key(deal.owner), (deal.owner, []))[1].append(deal)
    return [groups[key] for key in sorted(groups, key=lambda key: (key == "", key))]


# ---- totals ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Totals:
    """The totals of the review over the open opportunities shown (the stages guide)."""

    count: int
    value: Number
    claimed: dict[str, Number]  # open stage -> value, every open stage
    supported: dict[str, Number]  # `none` and every milestone -> value
    unsupported_value: Number
    unsupported_count: int
    forecast_claimed: Number
    forecast_supported: Number

    def to_json(self) -> dict[str, Any]:
        """`totals` of `ssm pipeline --format json` and `pipeline.totals` of audit.json."""
        return {"count": self.count, "value": self.value, "claimed": dict(self.claimed),
                "supported": dict(self.supported), "unsupported_value": self.unsupported_value,
                "forecast": {"claimed": self.forecast_claimed, "supported": self.forecast_supported}}


class TotalsBuilder:
    """Adds deals up one at a time (the audit streams them from its spool), exactly: each total
    is what `math.fsum` gives of its values, so the order deals come in never changes a total."""

    def __init__(self, weights: Mapping[str, Number]):
        self.weights = stage_weights(weights)
        self.count = self.unsupported_count = 0
        self.values = ExactSum()
        self.claimed: dict[str, ExactSum] = {stage: ExactSum() for stage in OPEN_STAGES}
        self.supported: dict[str, ExactSum] = {stage: ExactSum() for stage in (NO_SUPPORT, *STAGES)}
        self.unsupported = ExactSum()
        self.forecast_claimed = ExactSum()
        self.forecast_supported = ExactSum()

    def add(self, claimed_stage: str, supported_stage: str | None, value: Number | None) -> None:
        """Count one deal; anything but an open one is left out."""
        if claimed_stage not in OPEN_STAGES:
            return
        self.count += 1
        supported = supported_stage or NO_SUPPORT
        if claimed_past_evidence(claimed_stage, supported_stage):
            self.unsupported_count += 1
            self.unsupported.add(value or 0)
        if value is None:
            return
        self.values.add(value)
        self.claimed[claimed_stage].add(value)
        self.supported[supported].add(value)
        self.forecast_claimed.add(value * self.weights[claimed_stage] / 100)
        self.forecast_supported.add(value * self.weights.get(supported, 0) / 100)

    def totals(self) -> Totals:
        return Totals(
            count=self.count, value=money(self.values),
            claimed={stage: money(values) for stage, values in self.claimed.items()},
            supported={stage: money(values) for stage, values in self.supported.items()},
            unsupported_value=money(self.unsupported), unsupported_count=self.unsupported_count,
            forecast_claimed=money(self.forecast_claimed), forecast_supported=money(self.forecast_supported))


class ExactSum:
    """Values added one at a time, whose `math.fsum` is that of every value added, to the last
    bit, without keeping them all: they are folded, a few hundred at a time, into a handful of
    floats whose exact sum is theirs (fsum rounds an exact sum correctly, so equal exact sums
    give equal totals, however they are split).

    The audit's totals used to keep every value in lists: 65,000 open opportunities of 10,000
    large plans, six totals, about 6 MB held while they were added up."""

    __slots__ = ("exact", "pending", "special")
    FOLD_AT = 256

    def __init__(self):
        self.exact: list[float] = []  # floats whose exact sum is that of every value folded
        self.pending: list[Number] = []
        self.special: list[float] = []  # infinities and NaN: fsum judges them apart from the rest

    def add(self, value: Number) -> None:
        self.pending.append(value)
        if len(self.pending) >= self.FOLD_AT:
            self._fold()

    def _fold(self) -> None:
        rest = self.exact + self.pending
        self.pending = []
        try:
            total = math.fsum(rest)
        except ValueError:  # -inf + inf: left for the final fsum to say
            total = math.nan
        if not math.isfinite(total):  # (finite values that overflow raise OverflowError instead)
            self.special += [value for value in rest if not math.isfinite(value)]
            rest = [value for value in rest if math.isfinite(value)]
            total = math.fsum(rest)
        # The exact sum as total + remainder + ...: each term the correctly rounded rest of what the
        # earlier ones leave; a rest rounds to 0.0 only when it is exactly zero (every sum of
        # floats is a whole multiple of the smallest one).
        exact: list[float] = []
        while total:
            exact.append(total)
            rest.append(-total)
            total = math.fsum(rest)
        self.exact = exact

    def __iter__(self):
        return iter(self.exact + self.pending + self.special)


def totals_of(deals: Iterable[Deal], weights: Mapping[str, Number]) -> Totals:
    builder = TotalsBuilder(weights)
    for deal in deals:
        builder.add(deal.claimed_stage, deal.supported_stage, deal.value)
    return builder.totals()


def stage_weights(weights: Mapping[str, Number]) -> dict[str, float]:
    """Percent by stage for every milestone: a stage the setting leaves out weighs as the
    nearest weighted stage below it (`completed` as `won`); no support weighs 0."""
    full: dict[str, float] = {NO_SUPPORT: 0}
    below = 0.0
    for stage in STAGES:
        below = float(weights[stage]) if weights.get(stage) is not None else below
        full[stage] = below
    return full


# Money is added in binary and written in decimal: 0.1 + 0.2 is 0.30000000000000004. Totals are
# rounded to cents, which no plan's value needs more precisely.
_CENTS = 2


def money(values: Iterable[float]) -> Number:
    """The sum of `values`, rounded to cents; a whole sum as an int (1200000, not 1200000.0)."""
    total = round(math.fsum(values), _CENTS)
    return int(total) if total.is_integer() and abs(total) < 2**53 else total


@dataclass
class Review:
    """What every pipeline format renders."""

    as_of: date
    deals: list[Deal]  # selected and sorted
    totals: Totals
    selection: Selection = field(default_factory=Selection)
    sort: str | None = None
    invalid: list = field(default_factory=list)  # PlanResults of the plans that could not be read
    plans: int = 0  # plan files read

    def to_json(self) -> dict[str, Any]:
        """`ssm pipeline --format json` (docs/output-contract.md)."""
        return {"version": 1, "as_of": self.as_of.isoformat(),
                "opportunities": [deal.to_json() for deal in self.deals], "totals": self.totals.to_json()}

    @property
    def owners(self) -> list[str | None]:
        return [owner for owner, _ in by_owner(self.deals)]


def review(results: Iterable, as_of: date, weights: Mapping[str, Number], selection: Selection = Selection(),
           sort: str | None = None) -> Review:
    """The review of checked plans: every valid plan's deals that `selection` keeps, in `sort`
    order, with their totals; invalid plans are kept apart, to be reported."""
    results = list(results)
    deals = [deal for result in results for deal in deals_of(result) if selection.keeps(deal)]
    deals = ordered(deals, sort)
    return Review(as_of=as_of, deals=deals, totals=totals_of(deals, weights), selection=selection, sort=sort,
                  invalid=[result for result in results if not result.valid], plans=len(results))
