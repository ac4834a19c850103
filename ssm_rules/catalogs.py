"""Translation catalogs for authors: extract the `.pot`, check `.po` files, compile `.mo` files.

`ssm rules --extract-messages` and `--check-translations` (for a pack's author), and
tools/generate.py (for ssm's own catalogs) use this module; a run that only reads catalogs uses
ssm_rules.i18n, which needs neither Babel nor this module.

A pack's messages: each rule's title, message, next action and the `what`/`why` of its
description (msgctxt: the rule ID), each guidance item's title (msgctxt: its ID) and the pack's
title (msgctxt: `pack`). Placeholders must survive translation: a `.po` entry whose `{...}`
placeholders differ from its English text's is an error, as is a `.mo` that no longer matches
its `.po`.
"""

from __future__ import annotations

import io
import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from ssm_rules import i18n

# A fixed date in every template's header: regenerating the same messages gives the same bytes.
_TEMPLATE_DATE = datetime(2026, 1, 1, tzinfo=timezone.utc)
# `{...}` not doubled: a rule template's placeholder, or a str.format field of the program's text.
_PLACEHOLDER = re.compile(r"(?<!\{)\{(?!\{)([^{}]*)\}")
PACK_CONTEXT = "pack"


@dataclass(frozen=True)
class Message:
    context: str
    text: str
    comment: str  # for the translator: which text of which rule


def pack_messages(pack) -> list[Message]:
    """Every translatable text of a pack, in the pack's order."""
    messages = [Message(PACK_CONTEXT, pack.title, f"the title of pack {pack.name}")]
    if pack.catalogue is not None:
        messages += [Message(item.id, item.title, f"guidance {item.id}: title") for item in pack.catalogue.items]
    for rule in sorted(pack.rules, key=lambda r: r.id):
        texts = [("title", rule.title), ("message", rule.message), ("next action", rule.next_action)]
        if rule.description is not None:
            texts += [("what", rule.description.what), ("why", rule.description.why)]
        messages += [Message(rule.id, text, f"{rule.id}: {field}") for field, text in texts if text]
    messages += _derived_texts(pack)
    return messages


def _derived_texts(pack) -> list[Message]:
    """The constant text of the pack's `derive:` blocks that findings show (context "value"):
    not the plan format's vocabulary words (the program's catalog has them) nor guidance IDs."""
    from ssm_rules.findings import VALUE_CONTEXT, vocabulary
    from ssm_rules.rulepack.model import Const

    skip = vocabulary() | ({item.id for item in pack.catalogue.items} if pack.catalogue is not None else set())
    seen: set[str] = set()
    messages = []
    for rule in sorted(pack.rules, key=lambda r: r.id):
        for name, operand in (rule.derive.fields.items() if rule.derive is not None else ()):
            if isinstance(operand, Const) and isinstance(operand.value, str) and operand.value not in skip \
                    and operand.value not in seen:
                seen.add(operand.value)
                messages.append(Message(VALUE_CONTEXT, operand.value, f"{rule.id}: derived {name}"))
    return messages


def template(messages: Iterable[Message], project: str) -> bytes:
    """The `.pot` a translator starts from (`msginit`, `pybabel init`, Poedit, Weblate)."""
    from babel.messages.catalog import Catalog
    from babel.messages.pofile import write_po

    catalog = Catalog(project=project, version=None, creation_date=_TEMPLATE_DATE, revision_date=_TEMPLATE_DATE,
                      charset="utf-8", fuzzy=False)
    for message in messages:
        existing = catalog.get(message.text, context=message.context or None)
        if existing is not None:
            existing.auto_comments.append(message.comment)
        else:
            catalog.add(message.text, context=message.context or None, auto_comments=[message.comment])
    stream = io.BytesIO()
    write_po(stream, catalog, width=100, omit_header=False, sort_output=False)
    return _without_generator(stream.getvalue())


def program_template() -> bytes:
    """The `.pot` of ssm's own text: every `_()` and `ngettext()` in ssm_rules and its templates."""
    from babel.messages.catalog import Catalog
    from babel.messages.extract import extract_from_dir
    from babel.messages.pofile import write_po

    root = Path(i18n.__file__).resolve().parent
    method_map = [("**/_durable/**", "ignore"), ("**.py", "python"), ("**/templates/**.j2", "jinja2.ext:babel_extract")]
    found = sorted(extract_from_dir(str(root), method_map=method_map, keywords={"_": None, "N_": None, "ngettext": (1, 2)}),
                   key=lambda entry: (Path(entry[0]).as_posix(), entry[1]))
    catalog = Catalog(project="ssm", version=None, creation_date=_TEMPLATE_DATE, revision_date=_TEMPLATE_DATE,
                      charset="utf-8", fuzzy=False)
    for filename, line, text, _comments, context in found:
        location = (Path(filename).as_posix(), line)
        existing = catalog.get(text, context=context)
        if existing is not None:
            existing.locations.append(location)
        else:
            catalog.add(text, context=context, locations=[location])
    from ssm_rules.findings import PLAN_VALUE_CONTEXT, vocabulary

    for word in sorted(vocabulary()):  # a plan's vocabulary word, shown inside a finding
        catalog.add(word, context=PLAN_VALUE_CONTEXT, auto_comments=["a plan value (findings.VOCABULARY_FIELDS)"])
    stream = io.BytesIO()
    write_po(stream, catalog, width=100, omit_header=False, sort_output=False)
    return _without_generator(stream.getvalue())


def _without_generator(pot: bytes) -> bytes:
    # The Babel version in the header would make the file change with the Babel installed.
    return re.sub(rb'"Generated-By: [^"]*"\n', b"", pot)


def compile_mo(po_path: Path) -> bytes:
    """The `.mo` of a `.po` file: its translated, non-fuzzy entries (as msgfmt leaves out the
    rest), and a header of its charset and plural forms only, so the bytes depend on the
    `.po` alone (not on the Babel that wrote them)."""
    catalog = i18n.read_po(po_path)
    entries: dict[bytes, bytes] = {
        b"": f"Content-Type: text/plain; charset=UTF-8\nPlural-Forms: {catalog.plural_forms}\n".encode()}
    for message in catalog:
        if not message.id or message.fuzzy:
            continue
        ids = message.id if isinstance(message.id, tuple) else (message.id,)
        strings = message.string if isinstance(message.string, tuple) else (message.string,)
        if not all(strings):
            continue
        key = "\x00".join(ids)
        if message.context:
            key = f"{message.context}\x04{key}"
        entries[key.encode()] = "\x00".join(strings).encode()
    return _mo_bytes(entries)


def _mo_bytes(entries: dict[bytes, bytes]) -> bytes:
    """A GNU .mo file (little-endian, no hash table) of msgid -> msgstr, sorted as msgfmt does."""
    import struct

    keys = sorted(entries)
    header_size = 7 * 4
    originals_at = header_size
    translations_at = originals_at + 8 * len(keys)
    data_at = translations_at + 8 * len(keys)
    originals, translations, data = [], [], bytearray()
    for key in keys:
        originals.append((len(key), data_at + len(data)))
        data += key + b"\x00"
    for key in keys:
        value = entries[key]
        translations.append((len(value), data_at + len(data)))
        data += value + b"\x00"
    out = struct.pack("<7I", 0x950412DE, 0, len(keys), originals_at, translations_at, 0, data_at)
    out += b"".join(struct.pack("<2I", *pair) for pair in originals)
    out += b"".join(struct.pack("<2I", *pair) for pair in translations)
    return out + bytes(data)


_QUOTED = re.compile(r'"[^"{}]*"')


def placeholders(text: str) -> list[str]:
    """The `{...}` placeholders of a text, each without its inner spaces, sorted. A quoted text
    alternative (`{c.owner|"the account team"}`) is words to translate: only its place counts."""
    return sorted(_QUOTED.sub('"…"', "".join(body.split())) for body in _PLACEHOLDER.findall(text))


@dataclass(frozen=True)
class Problem:
    file: str
    line: int
    message: str
    error: bool = True

    def __str__(self) -> str:
        return f"{self.file}:{self.line}: {'error' if self.error else 'warning'}: {self.message}"


@dataclass
class Report:
    problems: list[Problem]
    translated: int = 0
    untranslated: int = 0


def check_catalog(po_path: Path, expected: Iterable[Message] | None) -> Report:
    """Check one `.po` file: placeholders kept, no stale `.mo`, and (given the messages it
    should translate) what is missing and what no longer exists."""
    shown = str(po_path)
    try:
        catalog = i18n.read_po(po_path)
    except (OSError, ValueError) as error:
        return Report([Problem(shown, 1, f"cannot read the catalog: {error}")])
    problems: list[Problem] = []
    translated = 0
    wanted = {(m.context, m.text) for m in expected} if expected is not None else None
    for message in catalog:
        if not message.id:
            continue
        line = message.lineno or 1
        ids = message.id if isinstance(message.id, tuple) else (message.id,)
        strings = message.string if isinstance(message.string, tuple) else (message.string,)
        if not any(strings):
            continue
        if wanted is not None and (message.context or "", ids[0]) not in wanted:
            problems.append(Problem(shown, line, f"{_name(message)} translates a text the pack no longer has "
                                                 f"(its English changed or it was removed): update or delete it",
                                    error=False))
            continue
        if message.fuzzy:
            continue
        translated += 1
        english = placeholders(ids[0])
        for form in strings:
            if form and placeholders(form) != english:
                problems.append(Problem(shown, line, f"{_name(message)}: the translation's placeholders "
                                                     f"{_listed(placeholders(form))} differ from the English "
                                                     f"{_listed(english)}; keep each one exactly"))
    mo_path = po_path.with_suffix(".mo")
    if mo_path.exists() and not any(p.error for p in problems):
        try:
            current = mo_path.read_bytes()
        except OSError as error:
            problems.append(Problem(str(mo_path), 1, f"cannot read it: {error.strerror}"))
        else:
            if current != compile_mo(po_path):
                problems.append(Problem(str(mo_path), 1, f"is older than {po_path.name}: ssm reads the .mo, so the "
                                                         f"new translations are not used; recompile it (ssm rules "
                                                         f"--compile-translations) or delete it"))
    untranslated = 0
    if wanted is not None:
        done = {(m.context or "", m.id if isinstance(m.id, str) else m.id[0]) for m in catalog
                if m.id and not m.fuzzy and (m.string if isinstance(m.string, str) else all(m.string))}
        untranslated = len(wanted - done)
    return Report(problems, translated, untranslated)


def _name(message) -> str:
    text = message.id if isinstance(message.id, str) else message.id[0]
    short = text if len(text) <= 40 else text[:39] + "…"
    return f"{message.context} {short!r}" if message.context else repr(short)


def _listed(items: list[str]) -> str:
    return "{" + ", ".join(items) + "}" if items else "(none)"


def pack_catalogs(directory: str | Path) -> list[tuple[str, Path]]:
    """(language, .po path) of every catalog beside a pack, by language."""
    found = []
    for po in sorted((Path(directory) / i18n.LOCALE_DIR).glob(f"*/LC_MESSAGES/{i18n.PACK_DOMAIN}.po")):
        found.append((po.parent.parent.name, po))
    return found


def program_catalogs() -> list[tuple[str, Path]]:
    return [(po.parent.parent.name, po)
            for po in sorted(i18n.PROGRAM_LOCALE.glob(f"*/LC_MESSAGES/{i18n.PROGRAM_DOMAIN}.po"))]


def program_messages(pot: bytes) -> list[Message]:
    from babel.messages.pofile import read_po

    catalog = read_po(io.BytesIO(pot))
    return [Message(m.context or "", m.id if isinstance(m.id, str) else m.id[0], "") for m in catalog if m.id]
