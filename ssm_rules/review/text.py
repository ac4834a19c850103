"""`ssm pipeline` as a table for the terminal, like `gh pr list`: one line a deal, never wrapped.

    Pipeline as of 2026-11-27: 5 open opportunities of 2 owners
    ACCOUNT        OPPORTUNITY          VALUE  CLOSE       CLAIMED → SUPPORTED  MISSING      DAYS  NEXT STEP       WORST
    giulia.ferraro  3 open · 2.4M · 1.1M unsupported
    Banca Valdad…  Open banking API p…   1.2M  2027-03-31  qualified → none     interest +2    45  2026-12-10 Pi…  SSM-STG-001

Grouped by owner when more than one owner shows; the totals below. The table fits the width
it is given (the terminal's, else 120 columns): names are truncated first, and on a narrow
terminal the columns that matter least go (days in stage, then the close date, the next
step and the missing outcomes), so a row never wraps. Widths are display widths (CJK
characters take two columns: ssm_rules.display). Colour only when asked (a terminal).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import click

from ssm_rules import display
from ssm_rules.i18n import N_, _, ngettext
from ssm_rules.review import headline
from ssm_rules.review.deals import NO_SUPPORT, STAGES, Deal, Review, by_owner, totals_of
from ssm_rules.severity import SEVERITY_COLOURS

DEFAULT_WIDTH = 120
GAP = "  "
NOTHING = "–"


@dataclass(frozen=True)
class Column:
    header: str
    cell: Callable[[Deal], str]
    keep: int  # a narrow terminal drops the column with the highest number first
    flexible: bool = False  # takes what room is left, truncated; otherwise as wide as its widest cell
    minimum: int = 0  # a flexible column's least width
    share: int = 0  # a flexible column's share of the room left
    right: bool = False
    shorten: Callable[[Deal, int], str] | None = None  # how a cell is cut to a width (default: truncated)

    def text(self, deal: Deal, width: int) -> str:
        cell = self.cell(deal)
        if display.width(cell) > width and self.shorten is not None:
            cell = self.shorten(deal, width)
        return display.fit(cell, width, right=self.right)


def compact(value: float | None) -> str:
    """Money in at most about five columns: 950, 12.5k, 1.25M, 3.4B (three significant digits)."""
    if value is None:
        return NOTHING
    sign = "-" if value < 0 else ""
    amount = abs(value)
    if amount < 1000:
        return sign + (f"{amount:,.0f}" if amount >= 10 or amount == int(amount) else f"{amount:.2g}")
    for suffix in ("k", "M", "B", "T", "P"):
        amount /= 1000
        shown = f"{amount:.3g}"
        if float(shown) < 1000:
            return sign + shown + suffix
    return sign + f"{abs(value):.2e}"


def _missing(deal: Deal) -> str:
    if not deal.missing_outcomes:
        return ""
    first, *rest = deal.missing_outcomes
    return first + (f" +{len(rest)}" if rest else "")


def _shorter_missing(deal: Deal, width: int) -> str:
    """The first missing outcome cut short, never the count of the others: `need_confi… +1`."""
    first, *rest = deal.missing_outcomes
    more = f" +{len(rest)}" if rest else ""
    return display.truncate(first, max(width - len(more), 1)) + more


def _stage(deal: Deal) -> str:
    if deal.unsupported:
        return f"{deal.claimed_stage} → {deal.supported_stage or NO_SUPPORT}"
    return deal.claimed_stage


def _due(step) -> str:
    """When a next step is due, from the as-of date: `in 6d`, `today`, `3d late` (the date
    itself is in the other formats)."""
    days = step.days_since_due
    if days is None:
        return step.due or ""
    if days == 0:
        return _("today")
    return _("{days}d late").format(days=days) if days > 0 else _("in {days}d").format(days=-days)


def _next_step(deal: Deal) -> str:
    step = deal.next_step
    if step is None:
        return NOTHING
    due = _due(step)
    return f"{due}: {display.safe(step.action)}" if due else display.safe(step.action)


def _shorter_next_step(deal: Deal, width: int) -> str:
    """When it is due, whole, and as much of the action as fits."""
    step = deal.next_step
    due = _due(step)
    if not due:
        return display.truncate(display.safe(step.action), width)
    if width < display.width(due) + 4:
        return display.truncate(due, width)
    return f"{due}: " + display.truncate(display.safe(step.action), width - display.width(due) - 2)


COLUMNS = (
    Column(N_("ACCOUNT"), lambda d: display.safe(d.account_name), keep=2, flexible=True, minimum=8, share=2),
    Column(N_("OPPORTUNITY"), lambda d: ("* " if d.must_win else "") + display.safe(d.title), keep=0, flexible=True,
           minimum=10, share=3),
    Column(N_("VALUE"), lambda d: compact(d.value), keep=0, right=True),
    Column(N_("CLOSE"), lambda d: d.close_date or NOTHING, keep=5),
    Column(N_("CLAIMED → SUPPORTED"), _stage, keep=0),
    Column(N_("MISSING"), _missing, keep=4, flexible=True, minimum=13, share=2, shorten=_shorter_missing),
    Column(N_("DAYS"), lambda d: NOTHING if d.days_in_stage is None else str(d.days_in_stage), keep=6, right=True),
    Column(N_("NEXT STEP"), _next_step, keep=3, flexible=True, minimum=12, share=2, shorten=_shorter_next_step),
    Column(N_("WORST"), lambda d: d.worst.rule if d.worst else NOTHING, keep=1),
)


def layout(deals: list[Deal], columns_available: int) -> list[tuple[Column, int]]:
    """The columns shown and their widths, fitting `columns_available` (at least the columns
    that are never dropped, however narrow)."""
    cells = {column.header: [column.cell(deal) for deal in deals] for column in COLUMNS}
    natural = {column.header: max([display.width(_(column.header)), *map(display.width, cells[column.header])])
               for column in COLUMNS}

    def least(column: Column) -> int:
        return min(column.minimum, natural[column.header]) if column.flexible else natural[column.header]

    shown = list(COLUMNS)
    while len(shown) > 1:
        needed = sum(least(column) for column in shown) + len(GAP) * (len(shown) - 1)
        droppable = [column for column in shown if column.keep > 0]
        if needed <= columns_available or not droppable:
            break
        shown.remove(max(droppable, key=lambda column: column.keep))
    widths = {column.header: least(column) for column in shown}
    room = columns_available - sum(widths.values()) - len(GAP) * (len(shown) - 1)
    growing = [column for column in shown if column.flexible]
    while room > 0:  # what is left goes, a column at a time, to the truncated column furthest below its share
        hungry = [column for column in growing if widths[column.header] < natural[column.header]]
        if not hungry:
            break
        neediest = min(hungry, key=lambda column: (widths[column.header] / column.share, -column.share))
        widths[neediest.header] += 1
        room -= 1
    return [(column, widths[column.header]) for column in shown]


def render(review: Review, *, color: bool = False, width: int = DEFAULT_WIDTH, **_options) -> str:
    def style(text: str, **kwargs) -> str:
        return click.style(text, **kwargs) if color and kwargs else text

    width = max(width, 40)
    owners = len(review.owners)
    lines = [style(display.truncate(_("Pipeline as of {date}: {what}").format(date=review.as_of.isoformat(),
                                                                              what=headline(review))
                                    + (ngettext(" of {count} owner", " of {count} owners", owners).format(count=owners)
                                       if review.selection.owner is None and owners > 1 else ""),
                                    width), bold=True)]
    if review.deals:
        columns = layout(review.deals, width)
        lines.append(style(GAP.join(display.fit(_(column.header), size, right=column.right)
                                    for column, size in columns).rstrip(), dim=True))
        groups = by_owner(review.deals)
        for number, (owner, deals) in enumerate(groups):
            if len(groups) > 1 or review.selection.owner is None:
                if number:
                    lines.append("")
                lines.append(style(display.truncate(_group_line(owner, deals, review), width), bold=True))
            for deal in deals:
                lines.append(GAP.join(style(column.text(deal, size), **_cell_style(column, deal, review))
                                      for column, size in columns).rstrip())
        lines.append("")
        lines += [display.truncate(line, width) for line in _totals_lines(review)]
        if any(deal.must_win for deal in review.deals):
            lines.append(style(_("* must-win"), dim=True))
    else:
        lines.append(_("Nothing to show."))
    if review.invalid:
        names = ", ".join(display.safe(result.file) for result in review.invalid)
        lines.append(style(display.truncate(
            ngettext("Not shown: {count} invalid plan ({names}); the errors are on standard error.",
                     "Not shown: {count} invalid plans ({names}); the errors are on standard error.",
                     len(review.invalid)).format(count=len(review.invalid), names=names), width), fg="red"))
    return "\n".join(lines) + "\n"


def _group_line(owner: str | None, deals: list[Deal], review: Review) -> str:
    open_deals = [deal for deal in deals if deal.is_open]
    totals = totals_of(open_deals, {})
    # `_()` stays out of f-strings: Python 3.12+ tokenizes f-strings into parts, and Babel then
    # extracts calls inside them that it cannot see on 3.11 (the .pot differed by version).
    name = display.safe(owner) if owner else _("(no owner)")
    text = f"{name}  " + ngettext(
        "{count} opportunity", "{count} opportunities", len(deals)).format(count=len(deals))
    if open_deals:
        text += " · " + _("{value} open").format(value=compact(totals.value))
        if totals.unsupported_count:
            text += " · " + _("{value} unsupported").format(value=compact(totals.unsupported_value))
    return text


def _cell_style(column: Column, deal: Deal, review: Review) -> dict:
    if column.header == "WORST" and deal.worst:
        return {"fg": SEVERITY_COLOURS.get(deal.worst.severity)}
    if column.header == "CLAIMED → SUPPORTED" and deal.unsupported:
        return {"fg": "yellow"}
    if column.header == "CLOSE" and deal.is_open and deal.close_date and deal.close_date < review.as_of.isoformat():
        return {"fg": "red"}
    if column.header == "NEXT STEP" and deal.is_open:
        step = deal.next_step
        if step is None or (step.days_since_due or 0) > 0:
            return {"fg": "red"}
    return {}


def _totals_lines(review: Review) -> list[str]:
    totals = review.totals
    if not totals.count:
        return [_("No open opportunity among those shown: no totals.")]
    share = (_(" ({percent}% of the value)").format(percent=round(100 * totals.unsupported_value / totals.value))
             if totals.value else "")
    lines = [
        ngettext("Total: {count} open opportunity, {value}", "Total: {count} open opportunities, {value}",
                 totals.count).format(count=totals.count, value=compact(totals.value)),
        _("Claimed past their evidence: {count}, {value}").format(
            count=totals.unsupported_count, value=compact(totals.unsupported_value)) + share
        if totals.unsupported_count else _("Claimed past their evidence: none"),
        _("Weighted forecast: {claimed} on the claimed stages, {supported} on the supported").format(
            claimed=compact(totals.forecast_claimed), supported=compact(totals.forecast_supported)),
    ]
    stages = [stage for stage in (NO_SUPPORT, *STAGES)
              if totals.claimed.get(stage) or totals.supported.get(stage)]
    if stages:
        size = max(len(stage) for stage in stages) + 2
        names = (_("claimed"), _("supported"))
        label = max(display.width(name) for name in names) + 1
        lines.append(" " * label + "".join(display.pad(stage, size, right=True) for stage in stages))
        for name, values in zip(names, (totals.claimed, totals.supported)):
            lines.append(display.pad(name, label) + "".join(
                display.pad(compact(values[stage]) if values.get(stage) else NOTHING, size, right=True)
                for stage in stages))
    return lines
