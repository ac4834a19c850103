"""The pipeline review (`ssm pipeline`): which deals are claimed past their evidence, how much
pipeline value that is, and what each seller does next.

    deals          PlanResults -> Deals, the selection, the orders, the totals (`Review`)
    text           a table for the terminal, grouped by owner, fitted to its width
    markdown       the same for meeting notes
    spreadsheet    CSV (RFC 4180) for spreadsheets, formula-safe
    json_document  the output contract's document

Each format is a module with `render(review, **options) -> str`, imported when used.
"""

from __future__ import annotations

import importlib

FORMATS: dict[str, str] = {
    "text": "ssm_rules.review.text",
    "json": "ssm_rules.review.json_document",
    "markdown": "ssm_rules.review.markdown",
    "csv": "ssm_rules.review.spreadsheet",
}


def render(review, output_format: str, **options) -> str:
    return importlib.import_module(FORMATS[output_format]).render(review, **options)


def headline(review) -> str:
    """What the review shows, in words: `4 open opportunities of raj.patel, must-win only`."""
    from ssm_rules.formats._common import plural

    selection = review.selection
    count = len(review.deals)
    if selection.stages:
        what, which = plural(count, "opportunity", "opportunities"), f" at {', '.join(selection.stages)}"
    elif selection.everything:
        what, which = plural(count, "opportunity", "opportunities"), " (open, won, completed and lost)"
    else:
        what, which = plural(count, "open opportunity", "open opportunities"), ""
    if selection.must_win:
        what = what.replace("opportunit", "must-win opportunit", 1)
    if selection.owner is not None:
        what += f" of {selection.owner}"
    return what + which
