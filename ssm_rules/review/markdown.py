"""`ssm pipeline --format markdown`: the review for meeting notes (a wiki page, a shared doc).

A headline, one table per owner (one table when the review is one seller's), the totals by
stage. Values are written in full (`1,250,000`). Plan text is escaped as in `ssm check
--format markdown`: a name cannot become a link, HTML or a table cell of its own.
"""

from __future__ import annotations

from ssm_rules.display import safe
from ssm_rules.formats._common import plural
from ssm_rules.formats.markdown import markdown_text
from ssm_rules.review import headline
from ssm_rules.review.deals import NO_SUPPORT, STAGES, Deal, Review, by_owner

NOTHING = "–"
HEADERS = ("Account", "Opportunity", "Value", "Close", "Claimed → supported", "Missing outcomes", "Days in stage",
           "Next step", "Worst finding")


def full(value: float | None) -> str:
    """Money in full: 1,250,000; 1,250.5 keeps its cents."""
    if value is None:
        return NOTHING
    return f"{value:,.0f}" if float(value).is_integer() else f"{value:,.2f}"


def _cell(text: str) -> str:
    return markdown_text(text, table=True) if text else NOTHING


def _code(text: str) -> str:
    # Inside a code span nothing is markup; only a backtick would end it.
    return safe(text).replace("`", "'")


def _row(deal: Deal) -> str:
    stage = deal.claimed_stage
    if deal.unsupported:
        stage = f"**{stage} → {deal.supported_stage or NO_SUPPORT}**"
    step = deal.next_step
    next_step = NOTHING
    if step is not None:
        next_step = (f"{step.due}: " if step.due else "") + markdown_text(step.action, table=True)
        if step.owner and step.owner != deal.owner:
            next_step += f" ({markdown_text(step.owner, table=True)})"
    worst = NOTHING
    if deal.worst:
        worst = f"{deal.worst.severity} `{deal.worst.rule}`: {markdown_text(deal.worst.message, table=True)}"
    opportunity = _cell(deal.title) + (" (must-win)" if deal.must_win else "")
    cells = [_cell(deal.account_name), opportunity, full(deal.value), deal.close_date or NOTHING, stage,
             ", ".join(f"`{key}`" for key in deal.missing_outcomes) or NOTHING,
             NOTHING if deal.days_in_stage is None else str(deal.days_in_stage), next_step, worst]
    return "| " + " | ".join(cells) + " |"


def render(review: Review, **_options) -> str:
    what = markdown_text(headline(review))
    lines = [f"## Pipeline review as of {review.as_of.isoformat()}", "", what[:1].upper() + what[1:] + "."]
    if not review.deals:
        lines += ["", "Nothing to show."]
    groups = by_owner(review.deals)
    for owner, deals in groups:
        if review.selection.owner is None or len(groups) > 1:
            lines += ["", f"### {markdown_text(owner) if owner else '(no owner)'}"]
        lines += ["", "| " + " | ".join(HEADERS) + " |", "|" + "---|" * 2 + "--:|" + "---|" * 3 + "--:|" + "---|" * 2]
        lines += [_row(deal) for deal in deals]
    lines += _totals(review)
    if review.invalid:
        lines += ["", f"Not shown: {plural(len(review.invalid), 'invalid plan')}: "
                      + ", ".join(f"`{_code(result.file)}`" for result in review.invalid)
                      + " (`ssm validate` names the problems)."]
    return "\n".join(lines) + "\n"


def _totals(review: Review) -> list[str]:
    totals = review.totals
    if not totals.count:
        return []
    share = f" ({round(100 * totals.unsupported_value / totals.value)}% of the value)" if totals.value else ""
    lines = ["", "### Totals", "",
             f"- Open opportunities: {totals.count}, value {full(totals.value)}",
             f"- Claimed past their evidence: {totals.unsupported_count}, value **{full(totals.unsupported_value)}**"
             f"{share}" if totals.unsupported_count else "- Claimed past their evidence: none",
             f"- Weighted forecast: {full(totals.forecast_claimed)} on the claimed stages, "
             f"{full(totals.forecast_supported)} on the supported stages"]
    stages = [stage for stage in (NO_SUPPORT, *STAGES) if totals.claimed.get(stage) or totals.supported.get(stage)]
    if stages:
        lines += ["", "| Value by stage | " + " | ".join(stages) + " |", "|---|" + "--:|" * len(stages)]
        for name, values in (("claimed", totals.claimed), ("supported", totals.supported)):
            lines.append(f"| {name} | " + " | ".join(full(values[stage]) if values.get(stage) else NOTHING
                                                    for stage in stages) + " |")
    return lines
