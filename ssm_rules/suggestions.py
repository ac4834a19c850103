"""Did-you-mean: the closest known names to a mistyped one, for every error message that offers one."""

from __future__ import annotations

import difflib
from collections.abc import Iterable

CUTOFF = 0.6  # difflib's similarity ratio: below it a name is not offered


def closest(word: object, known: Iterable[object], n: int = 1) -> list[str]:
    """Up to `n` of `known` (as text) that are close to `word`, the closest first."""
    return difflib.get_close_matches(str(word), [str(name) for name in known], n=n, cutoff=CUTOFF)


def did_you_mean(word: object, known: Iterable[object]) -> str:
    """` (did you mean `NAME`?)` for the closest known name, or "" when none is close."""
    close = closest(word, known)
    return f" (did you mean `{close[0]}`?)" if close else ""
