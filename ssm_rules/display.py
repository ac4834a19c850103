"""Text in terminal columns: display width, truncation and padding that CJK text survives.

A terminal gives a CJK ideograph (or a full-width form) two columns and a combining mark none,
so `len()` misaligns any table holding Chinese, Japanese or Korean names (a later release
speaks Chinese). Widths follow `unicodedata.east_asian_width`: W and F are two columns,
ambiguous characters one (what wcwidth and most terminals outside CJK locales do), combining
marks and zero-width format characters none.

Plan text is also made safe to print: control characters (an escape sequence in a plan could
clear the screen, retitle the terminal or, in some terminals, write the clipboard) and the
bidirectional overrides that reorder what a reader sees (U+202E) are shown as their escapes
(`\x1b`, `\u202e`), never sent to the terminal.
"""

from __future__ import annotations

import unicodedata
from functools import lru_cache

ELLIPSIS = "…"
# Bidirectional embeddings, overrides and isolates: they reorder the text around them.
_BIDI_CONTROLS = frozenset({*range(0x202A, 0x202F), *range(0x2066, 0x206A)})
# Zero-width (non-)joiners are not printable to Python but are part of emoji and of Indic and
# Arabic words: kept.
_JOINERS = frozenset({0x200C, 0x200D})


@lru_cache(maxsize=4096)
def _char_width(char: str) -> int:
    code = ord(char)
    if code < 0x7F and code >= 0x20:
        return 1
    category = unicodedata.category(char)
    if category in ("Mn", "Me") or char == "\u200b" or category == "Cf":
        return 0
    return 2 if unicodedata.east_asian_width(char) in ("W", "F") else 1


def safe(text: str) -> str:
    """`text` on one line with nothing a terminal would act on: runs of white space (line
    breaks included) become one space; control characters, bidi overrides and other invisible
    format characters are written as escapes (`\x1b`, `\u202e`)."""
    text = " ".join(str(text).split())
    if text.isascii() and text.isprintable():
        return text
    return "".join(char if _shown(char) else _escape(char) for char in text)


def _shown(char: str) -> bool:
    code = ord(char)
    return code in _JOINERS or (char.isprintable() and code not in _BIDI_CONTROLS)


def _escape(char: str) -> str:
    code = ord(char)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}"


def width(text: str) -> int:
    """Columns `text` takes in a terminal."""
    if text.isascii():
        return len(text)
    return sum(_char_width(char) for char in text)


def truncate(text: str, columns: int) -> str:
    """`text` cut to at most `columns` columns, ending in `…` when it was cut; a wide character
    that would straddle the limit is left out whole."""
    if width(text) <= columns:
        return text
    if columns <= 0:
        return ""
    room = columns - 1  # the ellipsis takes one column
    kept, used = [], 0
    for char in text:
        step = _char_width(char)
        if used + step > room:
            break
        kept.append(char)
        used += step
    return "".join(kept).rstrip() + ELLIPSIS


def pad(text: str, columns: int, *, right: bool = False) -> str:
    """`text` filled with spaces to `columns` columns (left-aligned, or right-aligned)."""
    fill = " " * max(columns - width(text), 0)
    return fill + text if right else text + fill


def fit(text: str, columns: int, *, right: bool = False) -> str:
    """`text` truncated to `columns` columns and padded to exactly that many."""
    return pad(truncate(text, columns), columns, right=right)


def wrap(text: str, columns: int, *, indent: str = "") -> list[str]:
    """`text` in lines of at most `columns` columns: broken at spaces, and between any two wide
    (CJK) characters, which need no space between them; never before closing punctuation."""
    lines: list[str] = []
    line, used = indent, width(indent)
    for token in _tokens(text):
        size = width(token)
        if token == " ":
            if used > width(indent):
                line, used = line + " ", used + 1
            continue
        if used + size > columns and line.strip():
            lines.append(line.rstrip())
            line, used = indent, width(indent)
        line, used = line + token, used + size
    if line.strip():
        lines.append(line.rstrip())
    return lines


# Closing punctuation stays with the character before it (a line never starts with 。or ,).
_NO_BREAK_BEFORE = frozenset("、。,.:;!?)]}」』》〉’”%)")


def _tokens(text: str) -> list[str]:
    """Words (runs of narrow characters), single wide characters with the closing punctuation
    that follows them, and single spaces."""
    tokens: list[str] = []
    word = ""
    for char in text:
        if char == " ":
            if word:
                tokens.append(word)
                word = ""
            tokens.append(" ")
        elif _char_width(char) == 2 or char in _NO_BREAK_BEFORE:
            if word and char in _NO_BREAK_BEFORE:
                tokens.append(word + char)
                word = ""
            elif char in _NO_BREAK_BEFORE and tokens and tokens[-1] != " ":
                tokens[-1] += char
            else:
                if word:
                    tokens.append(word)
                    word = ""
                tokens.append(char)
        else:
            word += char
    if word:
        tokens.append(word)
    return tokens
