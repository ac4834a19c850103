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
    from ssm_rules.i18n import _, ngettext

    selection = review.selection
    count = len(review.deals)
    if selection.stages:
        which = _(" at {stages}").format(stages=", ".join(selection.stages))
    elif selection.everything:
        which = _(" (open, won, completed and lost)")
    else:
        which = ""
    if selection.stages or selection.everything:
        if selection.must_win:
            what = ngettext("{count} must-win opportunity", "{count} must-win opportunities", count)
        else:
            what = ngettext("{count} opportunity", "{count} opportunities", count)
    elif selection.must_win:
        what = ngettext("{count} open must-win opportunity", "{count} open must-win opportunities", count)
    else:
        what = ngettext("{count} open opportunity", "{count} open opportunities", count)
    what = what.format(count=count)
    if selection.owner is not None:
        what += _(" of {owner}").format(owner=selection.owner)
    return what + which
