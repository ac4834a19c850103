"""Path globs (`per-file-ignores`), matched in time linear in the path for any pattern.

A glob translated to a regular expression backtracks: `*a*a*a*...b` against a long file name
takes exponential time in Python's `re`. Here a glob is a list of tokens run as a
nondeterministic automaton over the path, one character at a time, keeping the set of tokens
reached: at most (tokens + 1) states per character, whatever the pattern.

    **/     zero or more directories        **   anything, `/` included
    *       anything but `/`                ?    one character but `/`
    [abc]   one of a, b, c (ranges `a-z`; `[!...]` none of them; `]` first is literal)

Anything else matches itself; a `[` without its `]` is a plain `[`. A backwards range
(`[z-a]`) is an error: it would match nothing, which is never what was meant.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

_LITERAL, _ONE, _CLASS, _STAR, _ANYTHING, _DIRECTORIES = range(6)
_LOOPS = (_STAR, _ANYTHING, _DIRECTORIES)  # tokens that may also match nothing


class GlobError(ValueError):
    """A glob that cannot be read; the message says what to fix."""


@dataclass(frozen=True)
class _Class:
    negated: bool
    chars: frozenset[str]
    ranges: tuple[tuple[str, str], ...]

    def __contains__(self, char: str) -> bool:
        found = char in self.chars or any(low <= char <= high for low, high in self.ranges)
        return found != self.negated


@dataclass(frozen=True)
class Glob:
    pattern: str
    tokens: tuple[tuple[int, object], ...]

    def matches(self, path: str) -> bool:
        tokens, end = self.tokens, len(self.tokens)
        states = self._closure({0})
        for char in path:
            following = set()
            for state in states:
                if state == end:
                    continue
                kind, value = tokens[state]
                if kind == _LITERAL:
                    if char == value:
                        following.add(state + 1)
                elif kind == _ONE:
                    if char != "/":
                        following.add(state + 1)
                elif kind == _CLASS:
                    if char != "/" and char in value:
                        following.add(state + 1)
                elif kind == _STAR:
                    if char != "/":
                        following.add(state)
                elif kind == _ANYTHING:
                    following.add(state)
                else:  # _DIRECTORIES: stay inside, or leave right after a `/`
                    following.add(state)
                    if char == "/":
                        following.add(state + 1)
            if not following:
                return False
            states = self._closure(following)
        return end in states

    def _closure(self, states: set[int]) -> set[int]:
        tokens, end = self.tokens, len(self.tokens)
        pending = list(states)
        while pending:
            state = pending.pop()
            if state < end and tokens[state][0] in _LOOPS and state + 1 not in states:
                states.add(state + 1)
                pending.append(state + 1)
        return states


@lru_cache(maxsize=256)
def compile_glob(pattern: str) -> Glob:
    """Read a glob; GlobError when it cannot be matched as written."""
    tokens: list[tuple[int, object]] = []
    index = 0
    while index < len(pattern):
        if pattern.startswith("**/", index):
            tokens.append((_DIRECTORIES, None))
            index += 3
        elif pattern.startswith("**", index):
            tokens.append((_ANYTHING, None))
            index += 2
        elif pattern[index] == "*":
            tokens.append((_STAR, None))
            index += 1
        elif pattern[index] == "?":
            tokens.append((_ONE, None))
            index += 1
        elif pattern[index] == "[" and (parsed := _class(pattern, index)) is not None:
            char_class, index = parsed
            tokens.append((_CLASS, char_class))
        else:
            tokens.append((_LITERAL, pattern[index]))
            index += 1
    # `**` then `*`, or `*` then `*` (from `***`), match what the first one alone matches.
    collapsed: list[tuple[int, object]] = []
    for token in tokens:
        if collapsed and token[0] in (_STAR, _ANYTHING) and collapsed[-1][0] in (token[0], _ANYTHING):
            continue
        collapsed.append(token)
    return Glob(pattern, tuple(collapsed))


def _class(pattern: str, start: int) -> tuple[_Class, int] | None:
    """The `[...]` at `start` and the index after it; None when it is never closed."""
    index = start + 1
    negated = index < len(pattern) and pattern[index] == "!"
    if negated:
        index += 1
    first = index
    chars: set[str] = set()
    ranges: list[tuple[str, str]] = []
    while index < len(pattern):
        char = pattern[index]
        if char == "]" and index > first:
            return _Class(negated, frozenset(chars), tuple(ranges)), index + 1
        if index + 2 < len(pattern) and pattern[index + 1] == "-" and pattern[index + 2] != "]":
            low, high = char, pattern[index + 2]
            if low > high:
                raise GlobError(f"the range `{low}-{high}` in `{pattern}` is backwards (write `{high}-{low}`)")
            ranges.append((low, high))
            index += 3
        else:
            chars.add(char)
            index += 1
    return None


@lru_cache(maxsize=8192)
def matches(pattern: str, path: str) -> bool:
    """Whether `path` (forward slashes) matches `pattern`; every finding of a plan asks again."""
    return compile_glob(pattern).matches(path)
