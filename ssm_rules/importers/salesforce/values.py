"""A CRM cell's text -> the value a plan holds: one-line text, a date, an amount. Anything that
is not plainly one of them is refused (ValueError), never read as something else."""

from __future__ import annotations

import math
import re
from datetime import date

from ssm_rules.plan_format import MAX_WHOLE

_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def clean_text(text: str) -> str:
    """One-line text: a CRM field with line breaks or runs of spaces becomes single-spaced, and
    control characters (NUL, ESC: a terminal escape in a name would reach every report) go."""
    return _CONTROL.sub("", " ".join(text.split()))


# A Date field (`2027-03-31`) or a DateTime one (`2026-10-14T09:30:00.000Z`: exports write UTC),
# whose date is the one written. Anything else (`31/03/2027` from a spreadsheet) is refused.
_DATE = re.compile(r"(\d{4})-(\d{2})-(\d{2})(?:[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?(?:Z|[+-]\d{2}:?\d{2})?)?")


def parse_date(text: str) -> date:
    match = _DATE.fullmatch(text)
    if not match:
        raise ValueError(text)
    return date(*(int(part) for part in match.groups()))  # ValueError for 2027-02-30 too


# An amount as exports and spreadsheets write it: `1250000`, `640000.50`, `1,250,000.00`,
# `1.25E+06`. Anything else (`1.234,50` from a European spreadsheet, `$1,000`, `1_000`, `NaN`)
# is refused rather than read as another number.
_AMOUNT = re.compile(r"[-+]?(?:\d{1,3}(?:[, ]\d{3})+|\d+)(?:\.\d*)?(?:[eE][-+]?\d+)?|[-+]?\.\d+(?:[eE][-+]?\d+)?")


class Amount(float):
    """A fractional or very large amount: written so that YAML 1.1 reads it as a number too
    (`1.0e-07`, never `1e-07`, which the plan loader would read as text; see round_trip_yaml)."""


class AmountOutOfRange(ValueError):
    """A number, but beyond what a plan's `value` may be (0 to MAX_WHOLE)."""


def parse_amount(text: str) -> int | float:
    if not _AMOUNT.fullmatch(text):
        raise ValueError(text)
    number = float(text.replace(",", "").replace(" ", ""))
    if not math.isfinite(number):
        raise ValueError(text)
    if number < 0 or number > MAX_WHOLE:
        raise AmountOutOfRange(text)
    if number.is_integer() and abs(number) < 2 ** 53:  # whole amounts as integers, while exact
        return int(number)
    return Amount(number)

