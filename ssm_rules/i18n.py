"""The language people read: which one a run speaks, and the gettext catalogs that speak it.

ssm speaks English, Traditional Chinese (`zh_Hant`) and Simplified Chinese (`zh_Hans`). The
language is, in order: `--lang` (every command has it), `SSM_LANG`, the configuration's `lang`
key, the locale (`LC_ALL`, then `LC_MESSAGES`, then `LANG`), else English. A language ssm does
not speak is an error when asked for by name (`--lang`, `SSM_LANG`, `lang`: exit 2 naming the
languages it has); a locale ssm does not speak (fr_FR.UTF-8) is English, silently: a desktop's
locale is not a request made to ssm.

Two kinds of catalog, both gettext (`.po` written by translators, `.mo` read at run time):

    ssm_rules/locale/LANG/LC_MESSAGES/ssm.mo     the program's own text (summaries, errors, labels)
    PACK/locale/LANG/LC_MESSAGES/rules.mo        a rule pack's text, beside its pack.yaml

A pack's entries have the rule's ID as context (`msgctxt "SSM-BDU-001"`) and its English text as
the message ID, so a rule whose English text changes falls back to English until its translation
is updated, and two rules saying the same thing in English may say it differently in Chinese.
A pack without a `.mo` is read from its `.po` (Babel parses it): a team's pack can ship `.po`
files alone. The built-in catalogs carry committed `.mo` files that tools/generate.py compiles
from the `.po` and checks: a clone installs (`pip install .`, `-e`) without Babel, and the wheel
carries them as package data.

Only human text is translated: rule IDs, severities, JSON keys, SARIF/JUnit structure and the
baseline's fingerprints never change with the language. An English run reads no catalog and
imports neither gettext nor Babel: `_()` returns its argument.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

ENGLISH = "en"
LANGUAGES = (ENGLISH, "zh_Hant", "zh_Hans")
# The page language an HTML report declares (BCP 47).
HTML_LANG = {ENGLISH: "en", "zh_Hant": "zh-Hant", "zh_Hans": "zh-Hans"}
PROGRAM_DOMAIN = "ssm"
PACK_DOMAIN = "rules"
LOCALE_DIR = "locale"
PROGRAM_LOCALE = Path(__file__).resolve().parent / LOCALE_DIR
# A catalog of every text of a large pack in one language is a few hundred kilobytes.
MAX_CATALOG_BYTES = 16 * 1024 * 1024

# Region and script tags -> the language ssm speaks for them.
_ALIASES = {
    "en": ENGLISH, "c": ENGLISH, "posix": ENGLISH,
    "zh_hant": "zh_Hant", "zh_tw": "zh_Hant", "zh_hk": "zh_Hant", "zh_mo": "zh_Hant",
    "zh_hans": "zh_Hans", "zh_cn": "zh_Hans", "zh_sg": "zh_Hans", "zh_my": "zh_Hans", "zh": "zh_Hans",
}

_UNSET = object()
_requested: str | None = None  # --lang
_configured: Any = _UNSET  # the configuration's `lang` (None: a configuration without one)
_program: Any = None  # the program's catalog, once loaded (a _Catalog)
_pack_dirs: dict[str, str] = {}  # pack name -> its directory
_pack_catalogs: dict[tuple[str, str], Any] = {}  # (directory, language) -> _Catalog


def normalize(tag: str) -> str | None:
    """The language ssm speaks for a tag (`zh-TW`, `zh_Hant`, `zh_CN.UTF-8`, `en_US`), or None."""
    tag = tag.strip().split(".")[0].split("@")[0].replace("-", "_").lower()
    if not tag:
        return None
    if tag in _ALIASES:
        return _ALIASES[tag]
    if tag.startswith("en_"):
        return ENGLISH
    if tag.startswith(("zh_hant_", "zh_hans_")):
        return _ALIASES[tag[:7]]
    return None


def unknown_language(tag: str, where: str) -> str:
    return f"{where}: ssm does not speak {tag!r}; use one of {', '.join(LANGUAGES)}"


def request(tag: str | None) -> None:
    """Record `--lang` (None when not given), and check SSM_LANG while the command starts, so
    that a wrong value stops the run before any work (exit 2)."""
    from ssm_rules.errors import UsageError

    global _requested, _configured
    _requested, _configured = None, _UNSET  # a new command: its configuration is yet to be read
    if tag is not None:
        _requested = normalize(tag)
        if _requested is None:
            raise UsageError(unknown_language(tag, "--lang"))
    environment = os.environ.get("SSM_LANG")
    if environment and normalize(environment) is None:
        raise UsageError(unknown_language(environment, "SSM_LANG"))


def configure(tag: str | None) -> None:
    """The configuration's `lang` (already checked by ssm_rules.config), or None."""
    global _configured
    _configured = tag


def reset() -> None:
    """Back to the state of a new process (tests run many commands in one)."""
    global _requested, _configured, _program
    _requested, _configured, _program = None, _UNSET, None
    _pack_dirs.clear()
    _pack_catalogs.clear()


def language() -> str:
    """The language of this run: --lang, SSM_LANG, the configuration, the locale, English."""
    if _requested is not None:
        return _requested
    environment = os.environ.get("SSM_LANG")
    if environment:
        return normalize(environment) or ENGLISH
    configured = _configured if _configured is not _UNSET else _discovered_configuration()
    if configured:
        return configured
    for variable in ("LC_ALL", "LC_MESSAGES", "LANG"):
        value = os.environ.get(variable)
        if value:  # the first one set decides, as for every POSIX program
            return normalize(value) or ENGLISH
    return ENGLISH


def _discovered_configuration() -> str | None:
    """A command that reads no configuration of its own (ssm rules, explain, validate) still
    follows `lang` in the configuration found from the current directory. A broken one is
    left to the commands that read it to report."""
    from ssm_rules import config
    from ssm_rules.errors import UsageError

    try:
        config.load()  # sets _configured
    except (UsageError, OSError):
        configure(None)
    return _configured if _configured is not _UNSET else None


def is_english() -> bool:
    return language() == ENGLISH


def html_lang() -> str:
    return HTML_LANG[language()]


# ---- the program's own text -------------------------------------------------------------------


def _(text: str) -> str:
    """`text` in the run's language (the English text itself when there is no translation)."""
    catalog = _program_catalog()
    return text if catalog is None else catalog.get("", text)


def pgettext(context: str, text: str) -> str:
    """`text` of the program's catalog entry with `context` (a plan's vocabulary word under
    "plan value") in the run's language, else `text` itself."""
    catalog = _program_catalog()
    return text if catalog is None else catalog.get(context, text)


def N_(text: str) -> str:
    """Marks `text` for the catalog where it is defined (a column header); `_()` translates it
    where it is shown."""
    return text


def ngettext(singular: str, plural: str, count: int) -> str:
    """The singular or plural form for `count` in the run's language (Chinese has one form)."""
    catalog = _program_catalog()
    if catalog is None:
        return singular if count == 1 else plural
    return catalog.plural(singular, plural, count)


def _program_catalog():
    global _program
    name = language()
    if name == ENGLISH:
        return None
    if _program is None or _program.language != name:
        _program = _Catalog.load(PROGRAM_LOCALE, name, PROGRAM_DOMAIN)
    return _program


# ---- rule packs' text ---------------------------------------------------------------------------


def use_packs(packs: Iterable[Any]) -> None:
    """Remember where the loaded packs are: their catalogs are beside them."""
    for pack in packs:
        _pack_dirs[pack.name] = pack.directory


def pack_text(pack: str | None, context: str, text: str | None) -> str | None:
    """A pack's `text` (of the rule or guidance item `context`) in the run's language."""
    if not text or pack is None:
        return text
    name = language()
    if name == ENGLISH:
        return text
    directory = _pack_dirs.get(pack)
    if directory is None:
        return text
    key = (directory, name)
    catalog = _pack_catalogs.get(key, _UNSET)
    if catalog is _UNSET:
        catalog = _pack_catalogs[key] = _Catalog.load(Path(directory) / LOCALE_DIR, name, PACK_DOMAIN)
    return text if catalog is None else catalog.get(context, text)


def rule_text(rule: Any, text: str | None) -> str | None:
    """One of a rule's texts (title, message, next action, what, why) in the run's language."""
    return pack_text(rule.pack, rule.id, text)


# ---- catalogs -----------------------------------------------------------------------------------


class _Catalog:
    """One language's messages of one domain: (context, English) -> translation."""

    def __init__(self, language: str, messages: dict[tuple[str, str], str | tuple[str, ...]]):
        self.language = language
        self.messages = messages

    @classmethod
    def load(cls, locale_dir: Path, language: str, domain: str) -> _Catalog | None:
        from ssm_rules.atomic import read_regular_file

        folder = locale_dir / language / "LC_MESSAGES"
        mo, po = folder / f"{domain}.mo", folder / f"{domain}.po"
        try:
            if mo.exists():  # read through read_regular_file: a FIFO or a huge file is refused, not read
                return cls(language, read_mo(read_regular_file(mo, MAX_CATALOG_BYTES)))
            if po.exists():
                read_regular_file(po, MAX_CATALOG_BYTES)
                return cls(language, read_po_messages(po))
        except (OSError, ValueError) as error:
            _warn(f"{folder}: cannot read the {language} catalog ({error}); English text is shown instead")
        return None

    def get(self, context: str, text: str) -> str:
        translated = self.messages.get((context, text))
        if isinstance(translated, tuple):
            translated = translated[0]
        return translated or text

    def plural(self, singular: str, plural: str, count: int) -> str:
        forms = self.messages.get(("", singular))
        if isinstance(forms, tuple) and forms and all(forms):
            # Chinese has a single form; a catalog with more picks the English way.
            return forms[0] if len(forms) == 1 or count == 1 else forms[1]
        return singular if count == 1 else plural


def _warn(message: str) -> None:
    import sys

    print(f"ssm: warning: {message}", file=sys.stderr)


def read_mo(data: bytes) -> dict[tuple[str, str], str | tuple[str, ...]]:
    """The messages of a GNU `.mo` file: (context, msgid) -> msgstr (a tuple for plural forms).

    Read here rather than through `gettext.GNUTranslations`, whose catalog has no public way
    to ask whether an entry exists, and which folds contexts into its keys.
    """
    import struct

    try:
        return _read_mo(data)
    except struct.error:  # a table or a string beyond the end of the file
        raise ValueError("a damaged .mo file (an entry points past its end)") from None


def _read_mo(data: bytes) -> dict[tuple[str, str], str | tuple[str, ...]]:
    import struct

    if len(data) < 28:
        raise ValueError("too short to be a .mo file")
    magic = struct.unpack("<I", data[:4])[0]
    order = "<" if magic == 0x950412DE else ">" if magic == 0xDE120495 else None
    if order is None:
        raise ValueError("not a .mo file")
    _revision, count, originals, translations = struct.unpack(order + "4I", data[4:20])
    messages: dict[tuple[str, str], str | tuple[str, ...]] = {}
    for index in range(count):
        length, offset = struct.unpack(order + "2I", data[originals + 8 * index:originals + 8 * index + 8])
        original = data[offset:offset + length].decode("utf-8")
        length, offset = struct.unpack(order + "2I", data[translations + 8 * index:translations + 8 * index + 8])
        translation = data[offset:offset + length].decode("utf-8")
        if not original:
            continue  # the header
        context, _separator, msgid = original.rpartition("\x04")
        msgid = msgid.split("\x00")[0]
        forms = translation.split("\x00")
        messages[(context, msgid)] = tuple(forms) if "\x00" in original else translation
    return messages


def read_po_messages(path: Path) -> dict[tuple[str, str], str | tuple[str, ...]]:
    """The translated, non-fuzzy messages of a `.po` file (through Babel)."""
    catalog = read_po(path)
    messages: dict[tuple[str, str], str | tuple[str, ...]] = {}
    for message in catalog:
        if not message.id or message.fuzzy:
            continue
        if isinstance(message.id, tuple):
            messages[(message.context or "", message.id[0])] = tuple(message.string)
        elif message.string:
            messages[(message.context or "", message.id)] = message.string
    return messages


def read_po(path: Path):
    """A Babel Catalog of a `.po` file; ValueError with the file's line when it is malformed."""
    try:
        from babel.messages.pofile import PoFileError, read_po as babel_read_po
    except ImportError:  # pragma: no cover - Babel is a dependency
        raise ValueError("reading a .po file needs Babel (pip install babel)") from None
    try:
        with open(path, "rb") as stream:
            return babel_read_po(stream, abort_invalid=True)
    except PoFileError as error:
        raise ValueError(str(error)) from None
    except UnicodeDecodeError as error:
        raise ValueError(f"not UTF-8 text ({error.reason} at byte {error.start})") from None
