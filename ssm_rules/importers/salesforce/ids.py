"""Salesforce record IDs, the `# sf:ID` tags that link plan items to them, and the slugs that
name new plans and items."""

from __future__ import annotations

import re
import unicodedata


_TRANSLITERATE = str.maketrans({
    "ø": "o", "Ø": "O", "æ": "ae", "Æ": "AE", "œ": "oe", "Œ": "OE", "ß": "ss", "đ": "d", "Đ": "D",
    "ð": "d", "Ð": "D", "ł": "l", "Ł": "L", "þ": "th", "Þ": "TH", "ı": "i", "ħ": "h", "Ħ": "H",
})


SF_ID = re.compile(r"^[A-Za-z0-9]{15}(?:[A-Za-z0-9]{3})?$")


SF_TAG = re.compile(r"\bsf:([A-Za-z0-9]{15}(?:[A-Za-z0-9]{3})?)\b")


def slugify(text: str) -> str:
    """Lowercase ASCII; runs of any other characters become `-` ("Granite Insurance, Ltd." ->
    "granite-insurance-ltd"; "Bjørn Ødegård" -> "bjorn-odegard"). May return ""."""
    text = unicodedata.normalize("NFKD", text.translate(_TRANSLITERATE))
    text = "".join(char for char in text if not unicodedata.combining(char)).lower()
    return re.sub(r"[^a-z0-9]+", "-", text).strip("-")


def unique_slug(base: str, taken: set[str]) -> str:
    """`base`, else `base-2`, `base-3`, ... whichever is not taken yet (and take it)."""
    candidate, number = base, 1
    while candidate in taken:
        number += 1
        candidate = f"{base}-{number}"
    taken.add(candidate)
    return candidate


def sf_key(sf_id: str) -> str:
    """The case-sensitive 15-character form: an 18-character ID is the 15 plus a checksum."""
    return sf_id[:15]


def sf_tags(text: str) -> list[str]:
    return SF_TAG.findall(text)

