"""Salesforce export -> account plans, merged into the plans a team already keeps.

Reads the CSV files that Salesforce's data export and Data Loader write (API field names;
header case does not matter; UTF-8 with or without a BOM), builds one record per account with
its contacts, opportunities and contact roles, and turns each into a plan (plan-format.md).

Re-import merges with ruamel.yaml's round-trip mode: only the fields the CRM owns are touched
(see `CRM_FIELDS`), everything a person wrote keeps its words, comments and key order, and the
file is re-emitted by patching only the lines that changed (`_three_way`).

Identity: every item that came from Salesforce carries its record ID in an end-of-line comment
on its `id:` line (`- id: li-wei  # sf:0035g00000AbCdEAAX`). The plan format forbids unknown
keys, so the link lives in a comment, which validation ignores and ruamel keeps. Re-import
matches by that tag first, then (for items a person wrote before the first import) by name.

No click here: the `ssm import salesforce` command (ssm_rules.commands.import_) wires it.
ruamel.yaml is imported only inside the functions that need it (cold start of other commands).
"""

from __future__ import annotations

import codecs
import csv
import difflib
import errno
import io
import math
import os
import re
import tomllib
import unicodedata
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

from ssm_rules.errors import UsageError

# --------------------------------------------------------------------------------------------
# Problems


@dataclass(frozen=True)
class Problem:
    """Something wrong with one export file, row or plan; always says where to look."""

    file: str
    message: str
    row: int | None = None  # spreadsheet row: the header is row 1
    line: int | None = None  # physical line where the row starts (differs after multi-line fields)
    column: str | None = None  # the column's header as written in the file

    def __str__(self) -> str:
        where = self.file
        if self.row is not None:
            where += f", row {self.row}"
            if self.line is not None and self.line != self.row:
                where += f" (line {self.line})"
        if self.column:
            where += f", column {self.column}"
        return f"{where}: {self.message}"


class ExportError(UsageError):
    """The export cannot be imported at all (unreadable, undecodable, a required column is
    missing, malformed CSV): nothing is written, exit 2. Carries every such problem found."""

    def __init__(self, problems: list[Problem]):
        self.problems = problems
        lines = "\n".join(f"  {problem}" for problem in problems)
        super().__init__(f"cannot import the Salesforce export; nothing was written:\n{lines}")


class MappingError(UsageError):
    """A role or stage mapping override is invalid (exit 2)."""


# --------------------------------------------------------------------------------------------
# Mappings

PLAN_ROLES = ("key_decision_leader", "sponsor", "benefit_owner", "evaluator", "approver", "influencer")
PLAN_STAGES = ("identified", "validated", "qualified", "proposed", "won", "completed", "lost")

DEFAULT_ROLES: dict[str, str | None] = {
    "Decision Maker": "key_decision_leader",
    "Economic Decision Maker": "key_decision_leader",
    "Economic Buyer": "approver",
    "Executive Sponsor": "sponsor",
    "Evaluator": "evaluator",
    "Technical Buyer": "evaluator",
    "Influencer": "influencer",
    "Business User": "benefit_owner",
    "Other": None,
}

DEFAULT_STAGES: dict[str, str | None] = {
    "Prospecting": "identified",
    "Qualification": "validated",
    "Needs Analysis": "validated",
    "Value Proposition": "qualified",
    "Id. Decision Makers": "qualified",
    "Perception Analysis": "qualified",
    "Proposal/Price Quote": "proposed",
    "Negotiation/Review": "proposed",
    "Closed Won": "won",
    "Closed Lost": "lost",
}


def _norm(value: str) -> str:
    """Picklist values match case-insensitively, with runs of white space as one space."""
    return " ".join(value.split()).casefold()


@dataclass(frozen=True)
class SalesforceMapping:
    """Salesforce picklist value -> plan value; None means "deliberately none" (no role / skip)."""

    roles: Mapping[str, str | None] = field(default_factory=lambda: dict(DEFAULT_ROLES))
    stages: Mapping[str, str | None] = field(default_factory=lambda: dict(DEFAULT_STAGES))

    def role(self, value: str) -> tuple[bool, str | None]:
        """(known, plan role or None)."""
        return _lookup(self.roles, value)

    def stage(self, value: str) -> tuple[bool, str | None]:
        """(known, plan stage or None)."""
        return _lookup(self.stages, value)


def _lookup(table: Mapping[str, str | None], value: str) -> tuple[bool, str | None]:
    wanted = _norm(value)
    for label, target in table.items():
        if _norm(label) == wanted:
            return True, target
    return False, None


def parse_mapping_overrides(section: Mapping[str, Any], source: str = "[salesforce]") -> SalesforceMapping:
    """Validate `{"roles": {...}, "stages": {...}}` and merge it over the default mappings.

    A target of "" means: a role that puts the contact in no buying-unit role (like `Other`), a
    stage whose opportunities are not imported. Raises MappingError naming the offending key.
    """
    if not isinstance(section, Mapping):
        raise MappingError(f"{source} must be a table with `roles` and/or `stages`")
    known_keys = ("roles", "stages")
    for key in section:
        if key not in known_keys:
            close = difflib.get_close_matches(str(key), known_keys, n=1, cutoff=0.6)
            hint = f": did you mean `{close[0]}`?" if close else f"; known keys: {', '.join(known_keys)}"
            raise MappingError(f"unknown key `{key}` in {source}{hint}")
    roles = _merge_table(DEFAULT_ROLES, section.get("roles"), PLAN_ROLES, f"{source[:-1]}.roles]", "role")
    stages = _merge_table(DEFAULT_STAGES, section.get("stages"), PLAN_STAGES, f"{source[:-1]}.stages]", "stage")
    return SalesforceMapping(roles=roles, stages=stages)


def _merge_table(defaults: Mapping[str, str | None], overrides: Any, targets: tuple[str, ...],
                 where: str, what: str) -> dict[str, str | None]:
    merged = dict(defaults)
    if overrides is None:
        return merged
    if not isinstance(overrides, Mapping):
        raise MappingError(f"{where} must be a table of Salesforce {what} = plan {what}")
    for label, target in overrides.items():
        if not isinstance(label, str) or not label.strip():
            raise MappingError(f"{where}: an empty Salesforce {what} name cannot be mapped")
        if not isinstance(target, str):
            raise MappingError(f"{where} {label!r} must be text: a plan {what} or \"\" (got {target!r})")
        target = target.strip()
        if target and target not in targets:
            close = difflib.get_close_matches(target, targets, n=1, cutoff=0.6)
            hint = f"did you mean `{close[0]}`? " if close else ""
            nothing = "no role" if what == "role" else "do not import"
            raise MappingError(f"{where} {label!r} = {target!r}: unknown plan {what}; {hint}"
                               f"use one of {', '.join(targets)}, or \"\" for {nothing}")
        for existing in list(merged):  # an override replaces the default whatever its case
            if _norm(existing) == _norm(label):
                del merged[existing]
        merged[label.strip()] = target or None
    return merged


def load_mapping_file(path: str | os.PathLike) -> SalesforceMapping:
    """Read overrides from a TOML file: a `[salesforce]` table, or `[tool.ssm.salesforce]`."""
    name = os.fspath(path)
    try:
        with open(path, "rb") as handle:
            data = tomllib.load(handle)
    except OSError as error:
        raise MappingError(f"cannot read the mapping file {name}: {error.strerror or error}") from None
    except tomllib.TOMLDecodeError as error:
        raise MappingError(f"{name}: not valid TOML: {error}") from None
    except UnicodeDecodeError:
        raise MappingError(f"{name}: not UTF-8 text; save the mapping file as UTF-8") from None
    except RecursionError:
        raise MappingError(f"{name}: not valid TOML: nested too deeply") from None
    if "salesforce" in data:
        return parse_mapping_overrides(data["salesforce"], f"{name}: [salesforce]")
    tool = data.get("tool", {}).get("ssm", {}) if isinstance(data.get("tool"), dict) else {}
    if isinstance(tool, dict) and "salesforce" in tool:
        return parse_mapping_overrides(tool["salesforce"], f"{name}: [tool.ssm.salesforce]")
    raise MappingError(f"{name}: no [salesforce] table (with `roles` and/or `stages`) in the mapping file")


# --------------------------------------------------------------------------------------------
# Slugs and Salesforce IDs

_TRANSLITERATE = str.maketrans({
    "ø": "o", "Ø": "O", "æ": "ae", "Æ": "AE", "œ": "oe", "Œ": "OE", "ß": "ss", "đ": "d", "Đ": "D",
    "ð": "d", "Ð": "D", "ł": "l", "Ł": "L", "þ": "th", "Þ": "TH", "ı": "i", "ħ": "h", "Ħ": "H",
})
_SF_ID = re.compile(r"^[A-Za-z0-9]{15}(?:[A-Za-z0-9]{3})?$")
_SF_TAG = re.compile(r"\bsf:([A-Za-z0-9]{15}(?:[A-Za-z0-9]{3})?)\b")


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


# --------------------------------------------------------------------------------------------
# Reading CSV files


@dataclass(frozen=True, slots=True)
class Row:
    file: str
    number: int  # spreadsheet row (header = 1)
    line: int  # physical line where the record starts
    cells: tuple[str, ...]  # the raw cells of the columns kept, in the order of `columns`
    columns: dict[str, int]  # normalized header -> position in `cells`: one dict per file, shared

    def get(self, column: str) -> str:
        position = self.columns.get(column.lower())
        return self.cells[position].strip() if position is not None and position < len(self.cells) else ""

    @property
    def values(self) -> dict[str, str]:
        """Normalized header -> raw cell, of the columns kept."""
        return {key: self.cells[position] for key, position in self.columns.items() if position < len(self.cells)}


@dataclass
class Table:
    file: str  # as the user named it
    headers: dict[str, str]  # normalized header -> header as written
    rows: list[Row]

    def has(self, column: str) -> bool:
        return column.lower() in self.headers

    def label(self, column: str) -> str:
        return self.headers.get(column.lower(), column)

    def problem(self, row: Row, column: str | None, message: str) -> Problem:
        return Problem(self.file, message, row.number, row.line, self.label(column) if column else None)


# Required columns per file; a tuple of alternatives is satisfied by any one of them.
REQUIRED_COLUMNS: dict[str, list[str | tuple[str, ...]]] = {
    "accounts": ["Id", "Name"],
    "contacts": ["Id", "AccountId", ("LastName", "Name")],
    "opportunities": ["Id", "AccountId", "Name", "StageName"],
    "contact_roles": ["OpportunityId", "ContactId", "Role"],
    "users": ["Id", "Email"],
}

EXPORT_FILE_NAMES = {
    "accounts": "Account.csv",
    "contacts": "Contact.csv",
    "opportunities": "Opportunity.csv",
    "contact_roles": "OpportunityContactRole.csv",
    "users": "User.csv",
}


# The columns the import reads, per file. A full export has dozens more (a Contact.csv 50 or
# so); they are dropped as each row is read, so memory follows what is imported, not the export.
COLUMNS: dict[str, tuple[str, ...]] = {
    "accounts": ("Id", "Name", "Industry", "OwnerId", "IsDeleted"),
    "contacts": ("Id", "AccountId", "FirstName", "LastName", "Name", "Title", "OwnerId", "IsDeleted"),
    "opportunities": ("Id", "AccountId", "Name", "StageName", "Amount", "OwnerId", "CloseDate", "NextStep",
                      "LastStageChangeDate", "IsDeleted"),
    "contact_roles": ("Id", "OpportunityId", "ContactId", "Role", "IsDeleted"),
    "users": ("Id", "Email", "IsDeleted"),
}

# A byte-order mark names the encoding whatever --encoding says: Excel writes UTF-8 with one
# ("CSV UTF-8") and UTF-16 with one ("Unicode Text"). The longer marks are tested first.
_BOMS = ((codecs.BOM_UTF32_LE, "utf-32-le"), (codecs.BOM_UTF32_BE, "utf-32-be"), (codecs.BOM_UTF8, "utf-8"),
         (codecs.BOM_UTF16_LE, "utf-16-le"), (codecs.BOM_UTF16_BE, "utf-16-be"))
# Columns whose values repeat from row to row (references to other records, picklists): each
# distinct value is kept once per file. An organisation's Contact.csv names the same few
# owners and accounts hundreds of thousands of times.
_REPEATED = frozenset({"accountid", "ownerid", "isdeleted", "stagename", "opportunityid", "contactid", "role",
                       "industry", "title"})
_CHUNK = 1 << 20  # bytes decoded at a time
MAX_LINE = 16 << 20  # characters in one physical line: far beyond any export, short of /dev/zero
_LINE_END = re.compile(r"\r\n|\r|\n")


def read_table(path: str | os.PathLike, kind: str, encoding: str = "utf-8",
               columns: Iterable[str] | None = None) -> Table:
    """Read one export file, keeping `columns` (default: those the import uses, COLUMNS[kind]);
    raises ExportError (file-level: unreadable, undecodable, malformed CSV, required column
    missing) with the file, row and column. The file is decoded and parsed as it is read."""
    name = os.fspath(path)
    keep = {column.lower() for column in (COLUMNS[kind] if columns is None else columns)}
    try:
        with open(path, "rb") as stream:
            return _parse_csv(_Source(stream, name, encoding), kind, keep)
    except OSError as error:
        raise ExportError([Problem(name, f"cannot read it: {error.strerror or error}")]) from None


def _parse_csv(source: _Source, kind: str, keep: set[str]) -> Table:
    name = source.name
    reader = csv.reader(source, strict=True)
    header: list[str] | None = None
    keys: list[tuple[int, str]] = []  # (cell index, normalized header) of the columns kept
    columns: dict[str, int] = {}  # normalized header -> position in each Row's cells
    pool: dict[str, str] = {}  # one copy of each value of the _REPEATED columns
    headers: dict[str, str] = {}
    rows: list[Row] = []
    number = 0
    while True:
        start_line = reader.line_num + 1
        try:
            cells = next(reader)
        except StopIteration:
            break
        except csv.Error as error:
            raise ExportError([Problem(name, f"malformed CSV: {error} (a quote not closed or not "
                                       f"followed by a comma?)", number + 1, start_line)]) from None
        except _BadByte as bad:
            raise ExportError([bad.problem(source, header, number)]) from None
        source.record.clear()
        number += 1
        if header is None:
            header = cells
            if not any(cell.strip() for cell in cells):
                wanted = ", ".join(_column_names(REQUIRED_COLUMNS[kind]))
                raise ExportError([Problem(name, f"the file is empty: expected a header row with {wanted}", 1, 1)])
            for index, cell in enumerate(cells):
                key = cell.strip().lower()
                if key not in headers:
                    headers[key] = cell.strip()
                    if key in keep:
                        keys.append((index, key))
            _check_required(name, kind, headers)
            columns = {key: position for position, (_, key) in enumerate(keys)}
            continue
        if not any(cell.strip() for cell in cells):
            continue  # blank line
        # A tuple per row, not a dict: a third less memory on an export of millions of rows.
        kept = tuple(pool.setdefault(cells[index], cells[index]) if key in _REPEATED else cells[index]
                     for index, key in keys if index < len(cells))
        rows.append(Row(name, number, start_line, kept, columns))
    if header is None:
        wanted = ", ".join(_column_names(REQUIRED_COLUMNS[kind]))
        raise ExportError([Problem(name, f"the file is empty: expected a header row with {wanted}", 1, 1)])
    return Table(name, headers, rows)


def _check_required(name: str, kind: str, headers: dict[str, str]) -> None:
    missing = [requirement for requirement in REQUIRED_COLUMNS[kind]
               if not any(column.lower() in headers for column in _alternatives(requirement))]
    if not missing:
        return
    found = ", ".join(header for header in headers.values() if header) or "none"
    hint = ""
    if len(headers) == 1:
        separator = next((char for char in ";\t|" if char in found), None)
        if separator is not None:
            label = {";": "semicolons", "\t": "tabs", "|": "bars"}[separator]
            hint = (f"; the header is one cell separated by {label}: save the file as CSV separated by commas "
                    f"(Salesforce exports are)")
    raise ExportError([
        Problem(name, f"required column {_column_names([requirement])[0]} is missing "
                      f"(the {EXPORT_FILE_NAMES[kind].removesuffix('.csv')} export needs "
                      f"{', '.join(_column_names(REQUIRED_COLUMNS[kind]))}; found: {found}){hint}",
                1, 1, _alternatives(requirement)[0])
        for requirement in missing])


def _alternatives(requirement: str | tuple[str, ...]) -> tuple[str, ...]:
    return requirement if isinstance(requirement, tuple) else (requirement,)


def _column_names(requirements: list[str | tuple[str, ...]]) -> list[str]:
    return [" or ".join(_alternatives(requirement)) for requirement in requirements]


class _Source:
    """The lines of an export file for csv.reader, decoded a chunk at a time. Lines end at
    "\\r\\n", "\\r" or "\\n" (as `open(newline="")` splits them). Keeps what an error message
    needs: the bytes decoded so far, the lines handed out, the lines of the current record."""

    def __init__(self, stream, name: str, encoding: str):
        self.stream = stream
        self.name = name
        head = stream.read(4)
        bom, codec = next(((bom, codec) for bom, codec in _BOMS if head.startswith(bom)), (b"", None))
        self.codec = codec or codecs.lookup(encoding).name
        self.label = encoding if codec is None else f"{codec} (as its byte-order mark says)"
        self.head = head[len(bom):]
        self.consumed = len(bom)  # bytes decoded so far
        self.decoder = codecs.getincrementaldecoder(self.codec)("strict")
        self.lines = 0  # lines handed to the reader
        self.record: list[str] = []  # the lines of the record the reader is in

    def __iter__(self):
        carry = ""
        data = self.head + self.stream.read(_CHUNK)
        while True:
            final = not data
            buffered = self.decoder.getstate()[0]  # bytes of a character split across chunks
            bad = None
            try:
                text = carry + self.decoder.decode(data, final)
            except UnicodeDecodeError as error:
                # Hand out the lines before the bad byte first: the reader then knows its row.
                seen = buffered + data  # what the decoder looked at; error.start counts in it
                text = carry + seen[:error.start].decode(self.codec, "replace")
                bad = _BadByte(f"not valid {self.label} text (byte 0x{seen[error.start]:02x} at offset "
                               f"{self.consumed - len(buffered) + error.start})")
            self.consumed += len(data)
            held = ""
            if not final and bad is None and text.endswith("\r"):
                text, held = text[:-1], "\r"  # maybe the first half of "\r\n"
            start = 0
            for match in _LINE_END.finditer(text):
                line = text[start:match.end()]
                start = match.end()
                self.lines += 1
                self.record.append(line)
                yield line
            carry = text[start:] + held
            if bad is not None:
                bad.before = carry
                raise bad
            if len(carry) > MAX_LINE:
                raise _BadByte(f"a line longer than {MAX_LINE >> 20} million characters: this is not a CSV "
                               f"export", advice=False, cell=False)
            if final:
                if carry:
                    self.lines += 1
                    self.record.append(carry)
                    yield carry
                return
            data = self.stream.read(_CHUNK)


class _BadByte(Exception):
    """Text that cannot be read (a byte not in the file's encoding, a line that never ends),
    met while csv.reader pulls lines: `problem` finds the row and column it is in."""

    ADVICE = ("save the export as UTF-8 (Excel: 'CSV UTF-8'; Data Loader: Settings > 'Write all CSVs "
              "with UTF-8 encoding'), or name its encoding, e.g. --encoding cp1252")

    def __init__(self, message: str, advice: bool = True, cell: bool = True):
        self.before = ""  # the text from the end of the last line handed out to the bad byte
        self.message = f"{message}: {self.ADVICE}" if advice else message
        self.cell = cell  # whether the column is worth naming

    def problem(self, source: _Source, header: list[str] | None, records: int) -> Problem:
        # Parse the current record up to the bad byte, plus a marker, to find its row and cell.
        current = "".join(source.record) + self.before
        partial = list(csv.reader(io.StringIO(current + "\uffff", newline="")))
        row = records + max(len(partial), 1)
        line = source.lines - len(source.record) + current.count("\n") + 1
        column = None
        if header is not None and partial and self.cell:
            index = len(partial[-1]) - 1
            column = header[index].strip() if index < len(header) else f"#{index + 1}"
        return Problem(source.name, self.message, row, line, column)


# --------------------------------------------------------------------------------------------
# The export as account records


@dataclass
class SfContact:
    sf_id: str
    key: str
    name: str
    title: str | None
    owner: str | None


@dataclass
class SfOpportunity:
    sf_id: str
    key: str
    name: str
    value: int | float | None
    stage: str
    owner: str | None = None
    close_date: date | None = None
    stage_since: date | None = None
    next_step: str | None = None  # the action of the plan's next_step
    roles: dict[str, list[str]] = field(default_factory=dict)  # plan role -> contact keys
    uncertain: set[str] = field(default_factory=set)  # contact keys whose role row was left out


@dataclass
class SfAccount:
    sf_id: str
    key: str
    name: str
    industry: str | None
    owner: str | None
    row: Row
    contacts: list[SfContact] = field(default_factory=list)
    opportunities: list[SfOpportunity] = field(default_factory=list)
    # Every record the export has under this account, imported or left out: the plan's items
    # tagged with any other ID have vanished from the CRM (or moved to another account).
    seen_contacts: set[str] = field(default_factory=set)
    seen_opportunities: set[str] = field(default_factory=set)


@dataclass
class Export:
    accounts: list[SfAccount]
    problems: list[Problem]  # rows left out, values not understood: warnings (exit 1)
    notes: list[str]  # what was skipped by design (deleted rows, private contacts): no warning
    fields: frozenset[str]  # optional CRM-owned columns the export carries ("contact.title", ...)


@dataclass(frozen=True)
class ExportFiles:
    accounts: str | os.PathLike
    contacts: str | os.PathLike
    opportunities: str | os.PathLike
    contact_roles: str | os.PathLike
    users: str | os.PathLike | None = None


def read_export(files: ExportFiles, mapping: SalesforceMapping | None = None, encoding: str = "utf-8",
                select: Iterable[str] = ()) -> Export:
    """Read and join the export files. File-level problems raise ExportError (all of them,
    across files); row-level problems leave the row out and are listed in `Export.problems`.

    `select` limits the import to the accounts given by Salesforce ID, name or slug; rows of
    other accounts are then skipped without a word. A selector that matches nothing raises.
    """
    mapping = mapping or SalesforceMapping()
    tables: dict[str, Table] = {}
    fatal: list[Problem] = []
    for kind in ("accounts", "contacts", "opportunities", "contact_roles", "users"):
        path = getattr(files, kind)
        if path is None:
            continue
        try:
            tables[kind] = read_table(path, kind, encoding)
        except ExportError as error:
            fatal.extend(error.problems)
    if fatal:
        raise ExportError(fatal)
    return _Joiner(tables, mapping, list(select)).run()


def _deleted(row: Row) -> bool:
    return row.get("IsDeleted").lower() in {"true", "1"}


_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def _clean(text: str) -> str:
    """One-line text: a CRM field with line breaks or runs of spaces becomes single-spaced, and
    control characters (NUL, ESC: a terminal escape in a name would reach every report) go."""
    return _CONTROL.sub("", " ".join(text.split()))


# A Date field (`2027-03-31`) or a DateTime one (`2026-10-14T09:30:00.000Z`: exports write UTC),
# whose date is the one written. Anything else (`31/03/2027` from a spreadsheet) is refused.
_DATE = re.compile(r"(\d{4})-(\d{2})-(\d{2})(?:[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?(?:Z|[+-]\d{2}:?\d{2})?)?")


def _date(text: str) -> date:
    match = _DATE.fullmatch(text)
    if not match:
        raise ValueError(text)
    return date(*(int(part) for part in match.groups()))  # ValueError for 2027-02-30 too


# An amount as exports and spreadsheets write it: `1250000`, `640000.50`, `1,250,000.00`,
# `1.25E+06`. Anything else (`1.234,50` from a European spreadsheet, `$1,000`, `1_000`, `NaN`)
# is refused rather than read as another number.
_AMOUNT = re.compile(r"[-+]?(?:\d{1,3}(?:[, ]\d{3})+|\d+)(?:\.\d*)?(?:[eE][-+]?\d+)?|[-+]?\.\d+(?:[eE][-+]?\d+)?")


class _Amount(float):
    """A fractional or very large amount: written so that YAML 1.1 reads it as a number too
    (`1.0e-07`, never `1e-07`, which the plan loader would read as text; see _yaml)."""


def _amount(text: str) -> int | float:
    if not _AMOUNT.fullmatch(text):
        raise ValueError(text)
    number = float(text.replace(",", "").replace(" ", ""))
    if not math.isfinite(number):
        raise ValueError(text)
    if number.is_integer() and abs(number) < 2 ** 53:  # whole amounts as integers, while exact
        return int(number)
    return _Amount(number)


class _Joiner:
    def __init__(self, tables: dict[str, Table], mapping: SalesforceMapping, select: list[str]):
        self.tables = tables
        self.mapping = mapping
        self.select = select
        self.problems: list[Problem] = []
        self.deleted = 0
        self.private_contacts = 0
        self.cascaded = {"contacts": 0, "opportunities": 0}
        self.skipped_stages: dict[str, int] = {}
        self.users: dict[str, str] | None = None
        self.unknown_users: set[str] = set()
        self.accounts: dict[str, SfAccount] = {}
        self.left_out_accounts: set[str] = set()  # reported, or not selected: dependents skipped
        self.contacts: dict[str, tuple[str, SfContact | None]] = {}  # key -> (account key, record or None)
        self.opportunities: dict[str, tuple[str, SfOpportunity | None]] = {}

    def warn(self, table: Table, row: Row, column: str | None, message: str) -> None:
        self.problems.append(table.problem(row, column, message))

    def run(self) -> Export:
        if "users" in self.tables:
            self.read_users(self.tables["users"])
        self.read_accounts(self.tables["accounts"])
        self.read_contacts(self.tables["contacts"])
        self.read_opportunities(self.tables["opportunities"])
        self.read_contact_roles(self.tables["contact_roles"])
        return Export(list(self.accounts.values()), self.problems, self.notes(), self.fields())

    def fields(self) -> frozenset[str]:
        present = set()
        for kind, column, name in (("accounts", "Industry", "account.industry"),
                                   ("accounts", "OwnerId", "account.owner"),
                                   ("contacts", "Title", "contact.title"),
                                   ("contacts", "OwnerId", "contact.owner"),
                                   ("opportunities", "Amount", "opportunity.value"),
                                   ("opportunities", "OwnerId", "opportunity.owner"),
                                   ("opportunities", "CloseDate", "opportunity.close_date"),
                                   ("opportunities", "LastStageChangeDate", "opportunity.stage_since"),
                                   ("opportunities", "NextStep", "opportunity.next_step")):
            if self.tables[kind].has(column):
                present.add(name)
        return frozenset(present)

    def notes(self) -> list[str]:
        notes = []
        if self.deleted:
            notes.append(f"{self.deleted} deleted row(s) (IsDeleted = true) skipped")
        if self.private_contacts:
            notes.append(f"{self.private_contacts} contact(s) without an account (AccountId empty) skipped")
        if any(self.cascaded.values()):
            notes.append(f"{self.cascaded['contacts']} contact(s) and {self.cascaded['opportunities']} "
                         f"opportunity(ies) of left-out accounts skipped with them")
        for stage, count in sorted(self.skipped_stages.items()):
            notes.append(f"{count} opportunity(ies) in stage {stage!r} skipped: the mapping imports none")
        return notes

    # -- a record's Id, duplicates ------------------------------------------------------------

    def record_id(self, table: Table, row: Row, column: str, seen: dict[str, Row] | None) -> str | None:
        value = row.get(column)
        if not value:
            self.warn(table, row, column, f"empty {column}: row left out")
            return None
        if not _SF_ID.match(value):
            self.warn(table, row, column, f"{value!r} is not a Salesforce ID (15 or 18 letters and "
                                          f"digits): row left out")
            return None
        if seen is not None:
            key = sf_key(value)
            if key in seen:
                self.warn(table, row, column, f"duplicate Id {value} (first at row {seen[key].number}): "
                                              f"row left out")
                return None
            seen[key] = row
        return value

    def live_records(self, table: Table):
        """(row, Salesforce Id) of every row that is not deleted and has a usable, new `Id`
        (deleted rows are counted; a missing or duplicate Id is reported by `record_id`)."""
        seen: dict[str, Row] = {}
        for row in table.rows:
            if _deleted(row):
                self.deleted += 1
                continue
            sf_id = self.record_id(table, row, "Id", seen)
            if sf_id is not None:
                yield row, sf_id

    # -- users ----------------------------------------------------------------------------------

    def read_users(self, table: Table) -> None:
        self.users = {}
        for row, sf_id in self.live_records(table):
            email = row.get("Email")
            local = _clean(email.rpartition("@")[0]).lower()
            if not local:
                self.warn(table, row, "Email", f"user {sf_id} has no usable e-mail address ({email!r}): "
                                               f"owners of their records are written as the user ID")
                continue
            self.users[sf_key(sf_id)] = local

    def owner(self, table: Table, row: Row) -> str | None:
        """The owner of a record: the user's e-mail local part when User.csv is given, else the
        user ID. None when the record has no OwnerId (or the column is absent)."""
        user_id = row.get("OwnerId")
        if not user_id:
            return None
        if not _SF_ID.match(user_id):
            if user_id not in self.unknown_users:
                self.unknown_users.add(user_id)
                self.warn(table, row, "OwnerId", f"{user_id!r} is not a Salesforce user ID: no owner taken "
                                                 f"from it (reported once per value)")
            return None
        if self.users is None:
            return user_id
        name = self.users.get(sf_key(user_id))
        if name is None:
            if sf_key(user_id) not in self.unknown_users:
                self.unknown_users.add(sf_key(user_id))
                self.warn(table, row, "OwnerId", f"owner {user_id} is not in the users file: written as "
                                                 f"the user ID (reported once per user)")
            return user_id
        return name

    # -- accounts -------------------------------------------------------------------------------

    def read_accounts(self, table: Table) -> None:
        wanted = {value: False for value in self.select}
        for row, sf_id in self.live_records(table):
            key = sf_key(sf_id)
            name = _clean(row.get("Name"))
            if self.select:
                hits = [value for value in wanted if _selects(value, sf_id, name)]
                for value in hits:
                    wanted[value] = True
                if not hits:
                    self.left_out_accounts.add(key)
                    continue
            if not name:
                self.warn(table, row, "Name", f"account {sf_id} has no name: left out with its contacts "
                                              f"and opportunities")
                self.left_out_accounts.add(key)
                continue
            industry = _clean(row.get("Industry")) or None
            owner = self.owner(table, row)
            self.accounts[key] = SfAccount(sf_id, key, name, industry, owner, row)
        unmatched = [value for value, hit in wanted.items() if not hit]
        if unmatched:
            raise UsageError(f"--account {', '.join(repr(value) for value in unmatched)}: no such account "
                             f"in {table.file} (give a Salesforce Account Id, the exact name or its slug)")

    def account_of(self, table: Table, row: Row, kind: str) -> SfAccount | None:
        """The account a contact/opportunity row belongs to; None (reported or skipped) if none."""
        value = row.get("AccountId")
        if not value:
            return None
        if not _SF_ID.match(value):
            self.warn(table, row, "AccountId", f"{value!r} is not a Salesforce ID: row left out")
            return None
        key = sf_key(value)
        if key in self.left_out_accounts:
            if not self.select:
                self.cascaded[kind] += 1
            return None
        account = self.accounts.get(key)
        if account is None:
            self.warn(table, row, "AccountId", f"unknown account {value}: it is not in "
                                               f"{self.tables['accounts'].file}; row left out")
        return account

    # -- contacts -------------------------------------------------------------------------------

    def read_contacts(self, table: Table) -> None:
        for row, sf_id in self.live_records(table):
            key = sf_key(sf_id)
            if not row.get("AccountId"):
                self.private_contacts += 1
                self.contacts[key] = ("", None)
                continue
            account = self.account_of(table, row, "contacts")
            if account is None:
                self.contacts[key] = ("", None)
                continue
            account.seen_contacts.add(key)
            name = _clean(" ".join(part for part in (row.get("FirstName"), row.get("LastName")) if part))
            name = name or _clean(row.get("Name"))
            if not name:
                column = "LastName" if table.has("LastName") else "Name"
                self.warn(table, row, column, f"contact {sf_id} has no name: left out")
                self.contacts[key] = (account.key, None)
                continue
            contact = SfContact(sf_id, key, name, _clean(row.get("Title")) or None, self.owner(table, row))
            account.contacts.append(contact)
            self.contacts[key] = (account.key, contact)

    # -- opportunities --------------------------------------------------------------------------

    def read_opportunities(self, table: Table) -> None:
        known_stages = ", ".join(label for label, target in self.mapping.stages.items())
        for row, sf_id in self.live_records(table):
            key = sf_key(sf_id)
            account = self.account_of(table, row, "opportunities")
            if account is None:
                if not row.get("AccountId") and not self.select:
                    self.warn(table, row, "AccountId", f"opportunity {sf_id} has no account: left out")
                self.opportunities[key] = ("", None)
                continue
            account.seen_opportunities.add(key)
            self.opportunities[key] = (account.key, None)
            name = _clean(row.get("Name"))
            if not name:
                self.warn(table, row, "Name", f"opportunity {sf_id} has no name: left out")
                continue
            stage_name = _clean(row.get("StageName"))
            known, stage = self.mapping.stage(stage_name)
            if not stage_name:
                self.warn(table, row, "StageName", f"opportunity {name!r} has no stage: left out")
                continue
            if not known:
                self.warn(table, row, "StageName",
                          f"unknown stage {stage_name!r} of opportunity {name!r}: left out, not guessed; "
                          f"map it under [salesforce.stages] in a --mapping file (known: {known_stages})")
                continue
            if stage is None:
                self.skipped_stages[stage_name] = self.skipped_stages.get(stage_name, 0) + 1
                continue
            value = None
            amount = row.get("Amount")
            if amount:
                try:
                    value = _amount(amount)
                except ValueError:
                    self.warn(table, row, "Amount", f"{amount!r} is not a number: the value of "
                                                    f"opportunity {name!r} is left out")
            opportunity = SfOpportunity(sf_id, key, name, value, stage, owner=self.owner(table, row),
                                        next_step=_clean(row.get("NextStep")) or None)
            for column, attribute, label in (("CloseDate", "close_date", "close date"),
                                             ("LastStageChangeDate", "stage_since", "stage date")):
                text = row.get(column)
                if text:
                    try:
                        setattr(opportunity, attribute, _date(text))
                    except ValueError:
                        self.warn(table, row, column, f"{text!r} is not a date (YYYY-MM-DD): the {label} of "
                                                      f"opportunity {name!r} is left out")
            account.opportunities.append(opportunity)
            self.opportunities[key] = (account.key, opportunity)

    # -- contact roles --------------------------------------------------------------------------

    def read_contact_roles(self, table: Table) -> None:
        seen: dict[str, Row] | None = {} if table.has("Id") else None
        for row in table.rows:
            if _deleted(row):
                self.deleted += 1
                continue
            if seen is not None and row.get("Id") and self.record_id(table, row, "Id", seen) is None:
                continue
            opportunity_id = self.record_id(table, row, "OpportunityId", None)
            contact_id = self.record_id(table, row, "ContactId", None)
            if opportunity_id is None or contact_id is None:
                continue
            if sf_key(opportunity_id) not in self.opportunities:
                self.warn(table, row, "OpportunityId", f"unknown opportunity {opportunity_id}: it is not in "
                                                       f"{self.tables['opportunities'].file}; row left out")
                continue
            opportunity_account, opportunity = self.opportunities[sf_key(opportunity_id)]
            if opportunity is None:
                continue  # the opportunity itself was left out (and reported) or skipped
            if sf_key(contact_id) not in self.contacts:
                self.warn(table, row, "ContactId", f"unknown contact {contact_id}: it is not in "
                                                   f"{self.tables['contacts'].file}; row left out")
                continue
            contact_account, contact = self.contacts[sf_key(contact_id)]
            if contact is None:
                opportunity.uncertain.add(sf_key(contact_id))
                continue  # the contact was left out (and reported) or skipped
            if contact_account != opportunity_account:
                other = self.accounts.get(contact_account)
                self.warn(table, row, "ContactId",
                          f"contact {contact.name!r} belongs to account {other.name if other else contact_account!r}, "
                          f"not to the account of opportunity {opportunity.name!r}: row left out")
                continue
            role_name = _clean(row.get("Role"))
            if not role_name:
                continue  # a contact role without a role puts the contact in no buying-unit role
            known, role = self.mapping.role(role_name)
            if not known:
                opportunity.uncertain.add(contact.key)
                self.warn(table, row, "Role",
                          f"unknown role {role_name!r} of {contact.name!r} on {opportunity.name!r}: left out, "
                          f"not guessed; map it under [salesforce.roles] in a --mapping file")
                continue
            if role is None:
                continue
            members = opportunity.roles.setdefault(role, [])
            if contact.key not in members:
                members.append(contact.key)


def _selects(value: str, sf_id: str, name: str) -> bool:
    if _SF_ID.match(value) and sf_key(value) == sf_key(sf_id):
        return True
    return _norm(value) == _norm(name) or (bool(slugify(value)) and value == slugify(name))


# --------------------------------------------------------------------------------------------
# Plans: create, merge, render

CRM_FIELDS = {
    "account": ("name", "industry", "owner"),
    "contact": ("name", "title", "owner"),
    "opportunity": ("name", "owner", "value", "stage", "stage_since", "close_date", "buying_unit",
                    "next_step.action"),
}
UNASSIGNED = "unassigned"
HEADER = """\
Imported from Salesforce by `ssm import salesforce`. On re-import, Salesforce refreshes the
account's name, industry and owner, contacts' name, title and owner, and opportunities' name,
owner, value, stage, stage_since, close_date, buying unit and next_step action; everything
else you write here (outcomes, next_step due, lost_reason, ...) is kept, comments included.
The `# sf:` comments link items to Salesforce records: keep them on the `id:` lines.
Next: run `ssm check` on this file to see what to fill in first.
"""


@dataclass
class PlanOutput:
    """What the import makes of one account: the file, its old and new text, what changed."""

    account: SfAccount
    path: Path
    status: str  # new | updated | unchanged
    old_text: str | None
    new_text: str
    changes: list[str] = field(default_factory=list)
    vanished: list[str] = field(default_factory=list)

    def diff(self) -> str:
        old = (self.old_text or "").splitlines(keepends=True)
        new = self.new_text.splitlines(keepends=True)
        before = str(self.path) if self.old_text is not None else "/dev/null"
        return "".join(difflib.unified_diff(old, new, before, str(self.path)))


@dataclass
class ImportResult:
    outputs: list[PlanOutput]
    problems: list[Problem]  # export rows and plans left out or not understood (exit 1)
    notes: list[str]


@dataclass
class _Existing:
    """A `.yaml`/`.yml` entry of the output directory and what it turned out to be.

    kind: "plan" (an `ssm-plan/1` plan the merge can update), "broken" (evidently a plan, but
    unreadable, refused by the loader or of another format version: reported, never written),
    "other" (a regular file that is not a plan: an application's `config.yaml`), "link" (a
    symbolic link: never followed, never replaced) or "special" (a directory, FIFO, device...).
    Only a "plan" is ever merged; every other entry is left exactly as it is.
    """

    path: Path
    kind: str = "plan"
    original: str | None = None  # the text as it is on disk
    text: str | None = None  # normalized: no BOM, "\n" line ends
    bom: bool = False
    crlf: bool = False
    doc: Any = None
    loaded: Any = None  # the data as the plan loader reads it
    misread: Counter | None = None  # text values the plan loader reads as another type (see _misread)
    error: str | None = None
    account_key: str | None = None  # from the `# sf:` tag on `account.id` (plans only)
    account_id: str | None = None
    account_name: str | None = None
    mentions: frozenset[str] = frozenset()  # `sf:` keys written anywhere in a file that is no plan


def build_plans(export: Export, out_dir: str | os.PathLike) -> ImportResult:
    """Match every account to its plan in `out_dir` (by `# sf:` tag, then by name, ID or file
    name), merge or create, and render. Reads `out_dir`; writes nothing."""
    out = Path(out_dir)
    existing = _scan(out)
    # A plan can concern the import only by one of its accounts' tags, names or slugs: only
    # those are parsed for the merge (an import of a few accounts into a directory of
    # thousands of plans does not read them all with ruamel).
    keys = {account.key for account in export.accounts}
    names = {_norm(account.name) for account in export.accounts}
    slugs = {slugify(account.name) for account in export.accounts} - {""}
    for plan in existing:
        if plan.kind == "plan" and (plan.mentions & keys or plan.path.stem.lower() in slugs
                                    or plan.account_id in slugs
                                    or (plan.account_name is not None and _norm(plan.account_name) in names)):
            _parse_plan(plan)
    problems: list[Problem] = list(export.problems)
    notes = list(export.notes)
    outputs: list[PlanOutput] = []
    matched, skipped = _match_plans(existing, export.accounts, problems)
    # A new plan never takes the name of anything already in the directory (whatever its case:
    # macOS and Windows file systems ignore it) nor the ID of another plan.
    taken = {plan.path.stem.lower() for plan in existing}
    taken |= {plan.account_id.lower() for plan in existing if plan.account_id}
    by_stem = {plan.path.stem.lower(): plan for plan in existing}
    for account in export.accounts:
        if account.key in skipped:
            continue
        plan = matched.get(account.key)
        if plan is None:
            slug = slugify(account.name) or f"account-{account.sf_id.lower()}"
            account_id = unique_slug(slug, taken)
            path = out / f"{account_id}.yaml"
            blocker = by_stem.get(slug) if account_id != slug else None
            doc = _new_document(account_id, account.sf_id)
            merge = _Merge(doc, account, export.fields)
            merge.run()
            layout_new(doc)
            text = _emit(_yaml(2, 4, 2), doc)
            try:
                _check_reads_back(text, doc, None)
            except _MergeError as error:
                problems.append(Problem(str(path), f"cannot write the plan of account {account.name!r}: {error}"))
                continue
            if blocker is not None and blocker.kind in {"other", "special"}:
                notes.append(f"{blocker.path} {_not_a_plan(blocker)}: left as it is; the plan of account "
                             f"{account.name!r} is {path}")
            outputs.append(PlanOutput(account, path, "new", None, text,
                                      [f"{len(account.contacts)} contact(s), "
                                       f"{len(account.opportunities)} opportunity(ies)", *merge.notes]))
            continue
        try:
            output = _update(plan, account, export.fields)
        except _MergeError as error:
            problems.append(Problem(str(plan.path), f"cannot update this plan of account {account.name!r}: "
                                                    f"{error}; fix it, then import again"))
            continue
        outputs.append(output)
    return ImportResult(outputs, problems, notes)


def _not_a_plan(entry: _Existing) -> str:
    if entry.kind == "special":
        return "is not a regular file"
    return "is not a plan (it has no `format: ssm-plan/1`)"


def _match_plans(existing: list[_Existing], accounts: list[SfAccount],
                 problems: list[Problem]) -> tuple[dict[str, _Existing], set[str]]:
    """Account key -> the plan to merge it into, and the accounts left out (reported).

    A plan is found by the `# sf:` tag on its `account.id` line; one not yet linked to
    Salesforce by its account name, then its account ID, then its file name (each pass over all
    accounts, so that "Acme Corp" finds the plan named so before "ACME Corp." finds it by slug).
    Only plans are merged: a file the tag or name points at that cannot be merged (broken, no
    plan, a symbolic link) leaves its account out with a problem, rather than a second plan
    for the same account appearing beside it.
    """
    matched: dict[str, _Existing] = {}
    skipped: set[str] = set()
    claimed: set[Path] = set()

    def leave_out(account: SfAccount, entry: _Existing, how: str) -> None:
        if entry.kind == "broken":
            message = f"cannot update this plan of account {account.name!r}: {entry.error}; fix it, then import again"
        elif entry.kind == "link":
            message = (f"account {account.name!r} not imported: this file {how}, but is a symbolic link, which "
                       f"the import neither follows nor replaces; put the plan itself here")
        else:
            message = (f"account {account.name!r} not imported: this file {how}, but {_not_a_plan(entry)}; "
                       f"if it is the plan, add `format: ssm-plan/1` as its first line and import again")
        problems.append(Problem(str(entry.path), message))
        skipped.add(account.key)
        claimed.add(entry.path)

    for account in accounts:
        tagged = [plan for plan in existing if plan.kind == "plan" and plan.account_key == account.key]
        if len(tagged) > 1:
            names = " and ".join(str(plan.path) for plan in tagged)
            problems.append(Problem(account.row.file, f"account {account.name!r} ({account.sf_id}) is "
                                    f"linked from both {names}: left out; remove the `# sf:` tag from one",
                                    account.row.number, account.row.line))
            skipped.add(account.key)
            claimed.update(plan.path for plan in tagged)
        elif tagged:
            matched[account.key] = tagged[0]
            claimed.add(tagged[0].path)
        else:
            for entry in existing:
                if account.key in entry.mentions:
                    leave_out(account, entry, "carries its `# sf:` tag")
                    break
    for name, test in (
        ("name", lambda plan, account, slug: plan.kind == "plan" and plan.account_name is not None
         and _norm(plan.account_name) == _norm(account.name)),
        ("id", lambda plan, account, slug: plan.kind == "plan" and bool(slug) and plan.account_id == slug),
        ("file name", lambda plan, account, slug: plan.kind in {"plan", "broken", "link"} and bool(slug)
         and plan.path.stem.lower() == slug),
    ):
        wanted: dict[Path, list[SfAccount]] = {}
        for account in accounts:
            if account.key in matched or account.key in skipped:
                continue
            slug = slugify(account.name)
            for plan in existing:
                if plan.account_key is None and plan.path not in claimed and test(plan, account, slug):
                    wanted.setdefault(plan.path, []).append(account)
                    break
        for plan in existing:
            suitors = wanted.get(plan.path, [])
            if len(suitors) > 1:
                names = ", ".join(f"{account.name!r} ({account.sf_id})" for account in suitors)
                for account in suitors:
                    problems.append(Problem(str(plan.path), f"account {account.name!r} not imported: this plan "
                                            f"matches the {name} of {names}; put `# sf:<Id>` at the end of "
                                            f"its `account.id` line to say which"))
                    skipped.add(account.key)
                claimed.add(plan.path)
            elif suitors:
                (account,) = suitors
                if plan.kind == "plan":
                    matched[account.key] = plan
                    claimed.add(plan.path)
                else:
                    leave_out(account, plan, "has the name of its plan")
    return matched, skipped


# `format: ssm-plan/...` at the start of a line: how a file the loader cannot read still shows
# it is meant to be a plan (it is then reported, never taken for "not a plan" and duplicated).
_FORMAT_LINE = re.compile(rb"^format:[ \t]*[\"']?ssm-plan/", re.MULTILINE)


def _scan(out: Path) -> list[_Existing]:
    """Every `.yaml`/`.yml` entry of `out` (any case; not dotfiles), classified. Symbolic links
    and special files are never opened; a regular file is read at most up to the size limit of
    a plan, and is a plan only if the plan loader reads it and it says `format: ssm-plan/1`."""
    from ssm_rules import loader

    try:
        entries = sorted(os.scandir(out), key=lambda entry: entry.name)
    except FileNotFoundError:
        return []
    except NotADirectoryError:
        raise UsageError(f"--out {out}: a part of this path is a file, not a directory") from None
    except OSError as error:
        raise UsageError(f"--out {out}: cannot read the directory: {error.strerror or error}") from None
    existing = []
    for entry in entries:
        path = Path(entry.path)
        if path.suffix.lower() not in {".yaml", ".yml"} or entry.name.startswith("."):
            continue
        plan = _Existing(path)
        existing.append(plan)
        if entry.is_symlink():
            plan.kind = "link"
            continue
        raw = _read_regular(path, loader.DEFAULT_MAX_BYTES)
        if raw == "special":
            plan.kind = "special"
            continue
        if isinstance(raw, str):
            plan.kind, plan.error = "broken", raw
            continue
        # Every `sf:` key in the file: for a plan, whether it may concern this import; for a file
        # that cannot be merged, whether it is an account's plan gone wrong (reported), which is
        # no reason to start a second one.
        plan.mentions = frozenset(sf_key(key) for key in _SF_TAG.findall(raw.decode("utf-8", "replace")))
        _classify(plan, raw)
    return existing


def _classify(plan: _Existing, raw: bytes) -> None:
    """Read a regular file with the plan loader: set its kind ("plan", "broken" or "other") and,
    for a plan, its text and its account's ID and name (as the loader reads them)."""
    from ssm_rules import loader
    from ssm_rules.errors import PlanError

    try:
        loaded = loader.load_bytes(raw, str(plan.path))
    except PlanError as error:
        first = error.problems[0]
        where = f"line {first.line}: " if first.line else ""
        plan.kind = "broken" if _FORMAT_LINE.search(raw[:65536]) else "other"
        plan.error = f"{where}{first.message}"
        return
    version = loaded.data.get("format")
    if version != "ssm-plan/1":
        if isinstance(version, str) and version.startswith("ssm-plan/"):
            plan.kind, plan.error = "broken", f"its format is {version}; this version of ssm updates ssm-plan/1"
        else:
            plan.kind = "other"
        return
    text = raw.decode("utf-8")  # the loader has checked it is UTF-8
    plan.bom = text.startswith("\ufeff")
    plan.crlf = "\r\n" in text
    plan.text = text.removeprefix("\ufeff").replace("\r\n", "\n")
    plan.original = text
    plan.loaded = loaded.data
    account = loaded.data.get("account")
    if isinstance(account, dict):
        plan.account_id = account.get("id") if isinstance(account.get("id"), str) else None
        plan.account_name = account.get("name") if isinstance(account.get("name"), str) else None


def _parse_plan(plan: _Existing) -> None:
    """Read a plan with ruamel's round-trip parser (comments, tags, layout), which the merge
    works on. It costs some 50 times what the plan loader does, so it is done only for plans
    that may concern the import (see build_plans)."""
    try:
        plan.doc = _yaml(2, 4, 2).load(plan.text)
    except Exception as error:  # ruamel raises many kinds; any of them means "cannot merge"
        plan.kind, plan.error = "broken", f"not readable YAML ({' '.join(str(error).split())})"
        return
    plan.misread = _misread(plan.doc, plan.loaded)
    account = plan.doc.get("account") if hasattr(plan.doc, "get") else None
    if hasattr(account, "get"):
        plan.account_key = _tag_of(account, "id")
        plan.account_id = account.get("id") if isinstance(account.get("id"), str) else None
        plan.account_name = account.get("name") if isinstance(account.get("name"), str) else None


def _read_regular(path: Path, limit: int) -> bytes | str:
    """The bytes of a regular file (never blocking on a FIFO), or why not: "special" for anything
    that is not a regular file, else a reason to report."""
    from ssm_rules.atomic import read_regular_file

    try:
        return read_regular_file(path, limit)
    except OSError as error:
        if error.errno in {errno.EISDIR, errno.EINVAL, errno.ENXIO, errno.ELOOP}:
            return "special"
        if error.errno == errno.EFBIG:
            return f"it is larger than the {limit // (1024 * 1024)} MB a plan may be"
        return f"cannot read it ({error.strerror or error})"


class _MergeError(Exception):
    """The plan's structure is not what the merge can work on (e.g. `contacts` not a list)."""


def _update(plan: _Existing, account: SfAccount, fields: frozenset[str]) -> PlanOutput:
    doc = plan.doc
    if not hasattr(doc, "get") or not hasattr(doc, "insert"):
        raise _MergeError("the file is not a mapping of keys to values")
    merge = _Merge(doc, account, fields)
    merge.run()
    old = plan.original
    if not merge.changes:  # every modification is recorded: nothing to emit
        return PlanOutput(account, plan.path, "unchanged", old, old, [], merge.vanished)
    yaml, base = _best_indent(_yaml(2, 4, 2).load(plan.text), plan.text)
    new = _emit(yaml, doc)
    text = _three_way(plan.text, base, new)
    if plan.crlf:
        text = text.replace("\n", "\r\n")
    if plan.bom:
        text = "\ufeff" + text
    _check_reads_back(text, doc, plan.misread)
    status = "unchanged" if text == old else "updated"
    return PlanOutput(account, plan.path, status, old, text, merge.changes, merge.vanished)


def _check_reads_back(text: str, doc, misread_before: Counter | None) -> None:
    """Never write a plan that `ssm validate` would not read as exactly the merged data: the
    text is read back with the plan loader itself. ruamel writes YAML 1.2 and the loader reads
    YAML 1.1, so a text value that the loader would read as another type (`no`, `12:30`) is
    tolerated only where the plan already had it (`misread_before`): a person's own line."""
    from ssm_rules import loader
    from ssm_rules.errors import PlanError

    try:
        loaded = loader.load_bytes(text.encode("utf-8"), "plan.yaml")
    except PlanError as error:
        raise _MergeError(f"the updated plan would not be readable YAML ({error.problems[0].message}); "
                          f"left as it is, please report this") from None
    misread: Counter = Counter()
    if not _reads_as(doc, loaded.data, misread):
        raise _MergeError("the updated plan would not read back as the merged data; left as it is, "
                          "please report this")
    misread -= misread_before or Counter()
    if misread:
        values = ", ".join(repr(value) for value in sorted(misread))
        raise _MergeError(f"`ssm validate` would not read {values} as text (please report this)")


def _reads_as(ours: Any, theirs: Any, misread: Counter) -> bool:
    """Whether the loader's data (`theirs`, YAML 1.1) is ruamel's document (`ours`, YAML 1.2),
    counting in `misread` the text values the loader reads as another type instead."""
    if isinstance(ours, dict):
        return (isinstance(theirs, dict) and len(ours) == len(theirs)
                and all(str(key) in theirs and _reads_as(value, theirs[str(key)], misread)
                        for key, value in ours.items()))
    if isinstance(ours, list):
        return (isinstance(theirs, list) and len(ours) == len(theirs)
                and all(_reads_as(mine, other, misread) for mine, other in zip(ours, theirs)))
    if isinstance(ours, str):
        if not isinstance(theirs, str):
            misread[str(ours)] += 1
            return True
        return str(ours) == theirs
    if isinstance(ours, bool) or isinstance(theirs, bool):
        return isinstance(ours, bool) and isinstance(theirs, bool) and ours == theirs
    if isinstance(ours, float) and isinstance(theirs, float) and ours != ours:
        return theirs != theirs  # NaN
    return not isinstance(theirs, str) and ours == theirs


def _misread(doc, data) -> Counter:
    """The text values of ruamel's document that the plan loader reads as another type."""
    found: Counter = Counter()
    _reads_as(doc, data, found)
    return found


def _yaml(mapping: int, sequence: int, offset: int):
    from ruamel.yaml import YAML

    yaml = YAML(typ="rt", pure=True)
    yaml.preserve_quotes = True
    yaml.width = 4096  # never re-wrap a person's long lines
    yaml.allow_unicode = True
    yaml.indent(mapping=mapping, sequence=sequence, offset=offset)
    yaml.representer.add_representer(_Amount, _represent_amount)
    return yaml


def _represent_amount(representer, value: _Amount):
    text = repr(float(value))
    mantissa, exponent_mark, exponent = text.partition("e")
    if exponent_mark and "." not in mantissa:
        text = f"{mantissa}.0e{exponent}"  # YAML 1.1 needs the dot: `1e+16` would be text
    return representer.represent_scalar("tag:yaml.org,2002:float", text)


def _emit(yaml, doc) -> str:
    stream = io.StringIO()
    yaml.dump(doc, stream)
    return stream.getvalue()


_INDENTS = ((2, 4, 2), (2, 2, 0), (4, 6, 4), (4, 4, 0), (4, 4, 2), (4, 8, 4), (3, 5, 3), (3, 3, 0))


def _best_indent(doc, text: str):
    """The indentation settings under which ruamel re-emits the file closest to how it is
    written, and that re-emission (the base of the three-way merge)."""
    best = None
    original = text.splitlines(keepends=True)
    for settings in _INDENTS:
        yaml = _yaml(*settings)
        emitted = _emit(yaml, doc)
        if emitted == text:
            return yaml, emitted
        matcher = difflib.SequenceMatcher(None, original, emitted.splitlines(keepends=True), autojunk=False)
        score = sum(block.size for block in matcher.get_matching_blocks())
        if best is None or score > best[0]:
            best = (score, yaml, emitted)
    return best[1], best[2]


def _three_way(original: str, base: str, new: str) -> str:
    """Apply the change from `base` (ruamel's re-emission of the untouched plan) to `new` (its
    emission after the merge) to the `original` text, so that every line the merge did not
    change stays byte for byte as the person wrote it (ruamel normalizes a few things, such as
    `null`). Where the person's text and the change overlap, the merged emission is used there.
    Falls back to `new` whole if the patched text does not read back as the same data."""
    if base == original:
        return new
    o_lines = original.splitlines(keepends=True)
    b_lines = base.splitlines(keepends=True)
    n_lines = new.splitlines(keepends=True)
    norm_codes = difflib.SequenceMatcher(None, b_lines, o_lines, autojunk=False).get_opcodes()
    edit_codes = difflib.SequenceMatcher(None, b_lines, n_lines, autojunk=False).get_opcodes()
    normalized = [(i1, i2, "n") for tag, i1, i2, _, _ in norm_codes if tag != "equal"]
    edits = [(i1, i2, "e") for tag, i1, i2, _, _ in edit_codes if tag != "equal"]

    def overlaps(a: tuple[int, int], b: tuple[int, int]) -> bool:
        (s1, e1), (s2, e2) = a, b
        if s1 == e1 and s2 == e2:
            return s1 == s2
        if s1 == e1:
            return s2 < s1 < e2
        if s2 == e2:
            return s1 < s2 < e1
        return max(s1, s2) < min(e1, e2)

    groups: list[list[Any]] = []  # [start, end, kinds]
    for start, end, kind in sorted(normalized + edits, key=lambda hunk: (hunk[0], hunk[1])):
        if groups and overlaps((groups[-1][0], groups[-1][1]), (start, end)):
            group = groups[-1]
            group[0], group[1] = min(group[0], start), max(group[1], end)
            group[2].add(kind)
        else:
            groups.append([start, end, {kind}])

    def mapped(codes, position: int, end: bool) -> int:
        """A line position in `base` -> the same position on the other side of `codes`; a
        position inside a changed region maps to its start (or, for an end, its end)."""
        for tag, i1, i2, j1, j2 in (reversed(codes) if end else codes):
            if end and i2 == position:
                return j2
            if not end and i1 == position:
                return j1
            if i1 < position < i2:
                return j1 + (position - i1) if tag == "equal" else (j2 if end else j1)
        return codes[-1][4] if codes else 0  # the end of the file

    out: list[str] = []
    position = 0
    for start, end, kinds in groups:
        out.extend(b_lines[position:start])
        if kinds == {"n"}:
            out.extend(o_lines[mapped(norm_codes, start, False):mapped(norm_codes, end, True)])
        else:
            out.extend(n_lines[mapped(edit_codes, start, False):mapped(edit_codes, end, True)])
        position = end
    out.extend(b_lines[position:])
    merged = "".join(out)
    from ssm_rules import loader

    try:
        if (loader.load_bytes(merged.encode("utf-8"), "plan.yaml").data
                != loader.load_bytes(new.encode("utf-8"), "plan.yaml").data or _tags(merged) != _tags(new)):
            return new
    except Exception:  # noqa: BLE001 - whatever went wrong, ruamel's own emission is right
        return new
    return merged


def _tags(text: str) -> list[str]:
    return _SF_TAG.findall(text)


def _new_document(account_id: str, sf_id: str):
    from ruamel.yaml.comments import CommentedMap

    doc = CommentedMap()
    doc["format"] = "ssm-plan/1"
    account = CommentedMap()
    account["id"] = _yaml_text(account_id)
    _set_tag(account, "id", sf_id)
    doc["account"] = account
    _set_token(doc, "format", "\n" + "".join(f"# {line}\n" if line else "#\n"
                                             for line in HEADER.splitlines()) + "\n")
    return doc


# -- comments ----------------------------------------------------------------------------------


def _comment_token(value: str):
    from ruamel.yaml.error import CommentMark
    from ruamel.yaml.tokens import CommentToken

    return CommentToken(value, CommentMark(0), None)


def _get_token(container, key):
    """The comment token after `key`'s value (its end-of-line comment and any comment or blank
    lines that follow it), or None."""
    entry = container.ca.items.get(key)
    if not entry:
        return None
    slot = 2 if _is_map(container) else 0
    return entry[slot] if len(entry) > slot else None


def _set_token(container, key, value: str | None) -> None:
    slot = 2 if _is_map(container) else 0
    entry = container.ca.items.setdefault(key, [None, None, None, None])
    entry[slot] = _comment_token(value) if value else None


def _tag_of(mapping, key: str, raw: bool = False) -> str | None:
    """The Salesforce ID in the `# sf:ID` comment at the end of the `key:` line (its 15-character
    key, or the ID as written with `raw`), or None."""
    token = _get_token(mapping, key)
    if token is None or not token.value.lstrip(" ").startswith("#"):
        return None
    first = token.value.split("\n", 1)[0]
    match = _SF_TAG.search(first)
    if not match:
        return None
    return match.group(1) if raw else sf_key(match.group(1))


def _set_tag(mapping, key: str, sf_id: str) -> None:
    """Put `# sf:ID` at the end of the `key:` line, keeping any comment a person wrote there.
    A flow mapping (`{id: x, name: y}`) has no line of its own for it: it becomes a block."""
    if mapping.fa.flow_style():
        mapping.fa.set_block_style()
    token = _get_token(mapping, key)
    if token is None:
        mapping.yaml_add_eol_comment(f"sf:{sf_id}", key)
        return
    first, newline, rest = token.value.partition("\n")
    if first.lstrip(" ").startswith("#"):
        first = f"{first.rstrip()}  sf:{sf_id}"
    else:
        first = f"  # sf:{sf_id}"
    token.value = first + "\n" + rest


def _tag_item(seq, item, sf_id: str) -> None:
    if item.fa.flow_style():
        _blockify(seq, next(index for index, other in enumerate(seq) if other is item))
    _set_tag(item, "id", sf_id)


def _blockify(seq, index: int) -> None:
    """Turn the flow mapping `- {id: x, ...}  # note` into a block one whose `id:` line can
    carry a tag, moving the item's comment onto that line."""
    item = seq[index]
    item.fa.set_block_style()
    entry = seq.ca.items.get(index)
    if not entry or entry[0] is None or _get_token(item, "id") is not None:
        return
    comment, newline, rest = entry[0].value.partition("\n")
    entry[0] = None
    keys = list(item.keys())
    _set_token(item, "id", comment.strip() and f"  {comment.strip()}\n" + ("" if len(keys) > 1 else rest))
    if len(keys) > 1 and rest:
        _set_key_trailing(item, keys[-1], rest)


def _is_map(node) -> bool:
    from ruamel.yaml.comments import CommentedMap

    return isinstance(node, CommentedMap)


def _is_block(node) -> bool:
    from ruamel.yaml.comments import CommentedMap, CommentedSeq

    return isinstance(node, (CommentedMap, CommentedSeq)) and len(node) > 0 and not node.fa.flow_style()


def _last_slot(node):
    """(container, key) holding the comment token emitted after the last line of `node`."""
    while True:
        key = list(node.keys())[-1] if _is_map(node) else len(node) - 1
        value = node[key]
        if _is_block(value):
            node = value
            continue
        return node, key


def _trailing(node) -> str:
    """The comment/blank lines that follow the last line of a block node."""
    return _key_trailing(*_last_slot(node))


def _set_trailing(node, trailing: str) -> None:
    _set_key_trailing(*_last_slot(node), trailing)


def _append_block(seq, item, separated: bool) -> None:
    """Append a block item to a block sequence, keeping the layout: the lines that followed the
    old last item (a blank line, the next section's heading comment) now follow the new one,
    and with `separated` a blank line comes before it."""
    if not _is_block(item) or (len(seq) and not _is_block(seq[-1])):
        seq.append(item)
        return
    trailing = ""
    if len(seq):
        trailing = _trailing(seq[-1])
        _set_trailing(seq[-1], "")
    seq.append(item)
    _set_trailing(item, trailing)
    if separated and len(seq) > 1:
        entry = seq.ca.items.setdefault(len(seq) - 1, [None, None, None, None])
        entry[1] = [_comment_token("\n")]


def _separated(seq) -> bool | None:
    """Whether the items of a list are separated by blank lines; None if it cannot tell."""
    if not isinstance(seq, list) or len(seq) < 2:
        return None
    for index in range(1, len(seq)):
        if _is_block(seq[index - 1]) and _trailing(seq[index - 1]).startswith("\n"):
            return True
        entry = seq.ca.items.get(index)
        if entry and entry[1] and entry[1][0].value.startswith("\n"):
            return True
    return False


# -- the merge ---------------------------------------------------------------------------------


def _canonical(model_name: str) -> list[str]:
    from ssm_rules import model

    return list(getattr(model, model_name).model_fields)


def _insert_key(mapping, key: str, value, order: list[str], separate: bool = False) -> None:
    """Add `key` where the plan format puts it relative to the keys already there. The comment
    and blank lines that followed the key before it (a heading for the next key, the blank
    line that ends a list item) move down to follow the new key; with `separate`, a blank line
    that was there stays between the two as well."""
    after = order[order.index(key) + 1:] if key in order else []
    keys = list(mapping.keys())
    position = len(keys)
    for index, existing in enumerate(keys):
        if existing in after:
            position = index
            break
    if position == 0:
        mapping.insert(position, key, value)
        return
    previous = mapping[keys[position - 1]]
    holder = previous if _is_block(previous) else None
    trailing = _trailing(holder) if holder is not None else _key_trailing(mapping, keys[position - 1])
    keep = "\n" if separate and trailing.startswith("\n") else ""
    if holder is not None:
        _set_trailing(holder, keep)
    else:
        _set_key_trailing(mapping, keys[position - 1], keep)
    mapping.insert(position, key, value)
    if _is_block(value):
        _set_trailing(value, trailing)
    else:
        _set_key_trailing(mapping, key, trailing)


def _key_trailing(container, key) -> str:
    token = _get_token(container, key)
    return token.value.partition("\n")[2] if token is not None else ""


def _set_key_trailing(container, key, trailing: str) -> None:
    token = _get_token(container, key)
    first = token.value.partition("\n")[0] if token is not None else ""
    value = first + "\n" + trailing if (first or trailing) else ""
    _set_token(container, key, value if value != "\n" else None)


def _yaml_text(value: str):
    """A CRM string as a YAML value that PyYAML (the loader, YAML 1.1) also reads as text:
    `No`, `on`, `1:30` or `0123` are quoted."""
    import yaml
    from ruamel.yaml.scalarstring import SingleQuotedScalarString

    tag = yaml.resolver.Resolver().resolve(yaml.ScalarNode, value, (True, False))
    return value if tag == "tag:yaml.org,2002:str" else SingleQuotedScalarString(value)


def _show(value: Any) -> str:
    """A value in the summary: text quoted, dates as written in a plan."""
    return value.isoformat() if isinstance(value, date) else repr(value)


def _same(old: Any, new: Any) -> bool:
    if isinstance(new, date):  # a datetime is a date too: `2027-03-31T10:00` is not the date
        return type(old) is date and old == new
    if isinstance(new, (int, float)) and not isinstance(new, bool):
        # `==` compares an int and a float exactly; float() of a 400-digit int would overflow
        return isinstance(old, (int, float)) and not isinstance(old, bool) and old == new
    return isinstance(old, str) and str(old) == new and not _misquoted(old)


def _misquoted(value: Any) -> bool:
    """A plain (unquoted) string that the loader reads as another type: `title: No` written by
    hand or by an older import. ruamel gives plain scalars as `str` itself, quoted ones as
    subclasses."""
    return type(value) is str and _yaml_text(value) is not value


class _Merge:
    """Refresh the CRM-owned fields of one plan document in place; record what changed."""

    def __init__(self, doc, account: SfAccount, fields: frozenset[str]):
        self.doc = doc
        self.account = account
        self.fields = fields
        self.changes: list[str] = []
        self.vanished: list[str] = []
        self.contact_ids: dict[str, str] = {}  # contact key -> plan contact ID
        self.tracked_contacts: set[str] = set()  # plan contact IDs refreshed from the CRM this time
        self.separated = True  # blank lines between list items, unless the plan's lists have none
        self.notes: list[str] = []  # what a person should know about this plan

    def run(self) -> None:
        from ruamel.yaml.comments import CommentedMap

        doc = self.doc
        for key in ("contacts", "opportunities"):
            evidence = _separated(doc.get(key))
            if evidence is not None:
                self.separated = evidence
                break
        account_map = doc.get("account")
        if account_map is None:
            account_map = CommentedMap()
            _insert_key(doc, "account", account_map, _canonical("Plan"), separate=True)
        if not _is_map(account_map):
            raise _MergeError("`account` is not a mapping")
        if not isinstance(account_map.get("id"), str):
            account_id = slugify(self.account.name) or f"account-{self.account.sf_id.lower()}"
            _insert_key(account_map, "id", _yaml_text(account_id), _canonical("Account"))
            self.changes.append(f"account: id set to `{account_id}`")
        if _tag_of(account_map, "id") is None:
            _set_tag(account_map, "id", self.account.sf_id)
            self.changes.append(f"account: linked to Salesforce (sf:{self.account.sf_id})")
        self.set(account_map, "name", self.account.name, "Account", "account")
        if "account.industry" in self.fields:
            self.set(account_map, "industry", self.account.industry, "Account", "account")
        owner = self.account.owner if "account.owner" in self.fields else None
        if owner is None and not isinstance(account_map.get("owner"), str):
            owner = UNASSIGNED  # required by the format; `ssm check` routes its findings to it
            self.notes.append(f"account owner written as `{UNASSIGNED}`: Salesforce gave none; set it")
        self.set(account_map, "owner", owner, "Account", "account")
        self.merge_contacts()
        self.merge_opportunities()

    def set(self, mapping, key: str, value: Any, model_name: str, what: str, label: str | None = None) -> None:
        """Refresh one CRM-owned field. An empty CRM value never erases what the plan has."""
        if value is None:
            return
        label = label or key
        if key in mapping:
            old = mapping[key]
            if _same(old, value):
                return
            mapping[key] = _yaml_text(value) if isinstance(value, str) else value
            if isinstance(old, str) and str(old) == value:
                self.changes.append(f"{what}: {label} {value!r} quoted, to be read as text")
            else:
                self.changes.append(f"{what}: {label} {_show(old)} -> {_show(value)}")
        else:
            _insert_key(mapping, key, _yaml_text(value) if isinstance(value, str) else value,
                        _canonical(model_name))
            if what != "new":
                self.changes.append(f"{what}: {label} set to {_show(value)}")

    def section(self, key: str):
        from ruamel.yaml.comments import CommentedSeq

        items = self.doc.get(key)
        if items is None:
            items = CommentedSeq()
            if key in self.doc:
                self.doc[key] = items
            else:
                _insert_key(self.doc, key, items, _canonical("Plan"), separate=True)
        if not isinstance(items, list):
            raise _MergeError(f"`{key}` is not a list")
        return items

    def match(self, items: list, records: list, seen: set[str]) -> tuple[dict[str, Any], list[Any]]:
        """CRM key -> plan item, by `# sf:` tag first, then (untagged items) by name or ID."""
        tagged: dict[str, Any] = {}
        untagged = []
        for item in items:
            if not _is_map(item):
                continue
            key = _tag_of(item, "id")
            if key is not None and key not in tagged:
                tagged[key] = item
            elif key is None:
                untagged.append(item)
        matched: dict[str, Any] = {}
        for record in records:
            if record.key in tagged:
                matched[record.key] = tagged.pop(record.key)
        for record in records:
            if record.key in matched:
                continue
            slug = slugify(record.name)
            for item in untagged:
                name, item_id = item.get("name"), item.get("id")
                if (isinstance(name, str) and _norm(name) == _norm(record.name)) or (slug and item_id == slug):
                    matched[record.key] = item
                    untagged.remove(item)
                    break
        vanished = [item for key, item in tagged.items() if key not in seen]
        return matched, vanished

    def merge_contacts(self) -> None:
        def refresh(item, record, what: str) -> None:
            self.set(item, "name", record.name, "Contact", what)
            if "contact.title" in self.fields:
                self.set(item, "title", record.title, "Contact", what)
            if "contact.owner" in self.fields:
                self.set(item, "owner", record.owner, "Contact", what)
            self.contact_ids[record.key] = item["id"]
            self.tracked_contacts.add(item["id"])

        self.merge_items("contacts", "contact", "a contact", self.account.contacts, self.account.seen_contacts,
                         refresh)

    def merge_opportunities(self) -> None:
        def refresh(item, record, what: str) -> None:
            self.set(item, "name", record.name, "Opportunity", what)
            for name in ("owner", "value"):
                if f"opportunity.{name}" in self.fields:
                    self.set(item, name, getattr(record, name), "Opportunity", what)
            self.set(item, "stage", record.stage, "Opportunity", what)
            for name in ("stage_since", "close_date"):
                if f"opportunity.{name}" in self.fields:
                    self.set(item, name, getattr(record, name), "Opportunity", what)
            self.merge_buying_unit(item, record, what)
            if "opportunity.next_step" in self.fields:
                self.merge_next_step(item, record, what)

        self.merge_items("opportunities", "opportunity", "an opportunity", self.account.opportunities,
                         self.account.seen_opportunities, refresh)

    def merge_next_step(self, item, record: SfOpportunity, what: str) -> None:
        """Salesforce's NextStep is the action of the plan's next step; its `due` and `owner`
        are the team's and stay as they are."""
        from ruamel.yaml.comments import CommentedMap

        if record.next_step is None:
            return
        step = item.get("next_step")
        if step is None:
            step = CommentedMap()
            step["action"] = _yaml_text(record.next_step)
            if "next_step" in item:
                item["next_step"] = step
            else:
                _insert_key(item, "next_step", step, _canonical("Opportunity"))
            if what != "new":
                self.changes.append(f"{what}: next_step.action set to {record.next_step!r}")
            return
        if not _is_map(step):
            raise _MergeError(f"the next_step of {what} is not a mapping")
        self.set(step, "action", record.next_step, "NextStep", what, label="next_step.action")

    def merge_items(self, section: str, noun: str, a_noun: str, records, seen, refresh) -> None:
        """Match the CRM's records to the plan's items (by `# sf:` tag, then name or ID), add new
        ones at the end, let `refresh` update the fields the CRM owns, report vanished ones."""
        from ruamel.yaml.comments import CommentedMap

        if not records:
            items = self.doc.get(section)
            if isinstance(items, list):
                self.report_vanished(self.match(items, [], seen)[1], noun)
            return
        items = self.section(section)
        matched, vanished = self.match(items, records, seen)
        taken = {item.get("id") for item in items if _is_map(item) and isinstance(item.get("id"), str)}
        for record in records:
            item = matched.get(record.key)
            if item is None:
                item = CommentedMap()
                item["id"] = _yaml_text(unique_slug(slugify(record.name) or f"{noun}-{record.sf_id.lower()}", taken))
                _set_tag(item, "id", record.sf_id)
                what = "new"
                self.changes.append(f"{noun} `{item['id']}` added ({record.name})")
            else:
                if not isinstance(item.get("id"), str):
                    raise _MergeError(f"{a_noun} ({record.name}) has no `id`")
                what = f"{noun} `{item['id']}`"
                if _tag_of(item, "id") is None:
                    _tag_item(items, item, record.sf_id)
                    self.changes.append(f"{what}: linked to Salesforce (sf:{record.sf_id})")
            refresh(item, record, what)
            if what == "new":
                _append_block(items, item, self.separated)
        self.report_vanished(vanished, noun)

    def report_vanished(self, items: list, what: str) -> None:
        for item in items:
            self.vanished.append(f"{what} `{item.get('id')}` ({item.get('name') or 'no name'}, "
                                 f"sf:{_tag_of(item, 'id', raw=True)})")

    def merge_buying_unit(self, item, record: SfOpportunity, what: str) -> None:
        """Per role: contacts from Salesforce follow its contact roles; contacts a person added
        (not from Salesforce) and contacts whose role row was left out stay where they are."""
        from ruamel.yaml.comments import CommentedMap

        crm = {role: [self.contact_ids[key] for key in keys if key in self.contact_ids]
               for role, keys in record.roles.items()}
        keep = {self.contact_ids[key] for key in record.uncertain if key in self.contact_ids}
        unit = item.get("buying_unit")
        if unit is None:
            if not any(crm.values()):
                return
            unit = CommentedMap()
            for role in PLAN_ROLES:
                if crm.get(role):
                    unit[role] = _flow(crm[role])
                    if what != "new":
                        self.changes.append(f"{what}: buying unit {role} + {', '.join(crm[role])}")
            if "buying_unit" in item:
                item["buying_unit"] = unit
            else:
                _insert_key(item, "buying_unit", unit, _canonical("Opportunity"))
            return
        if not _is_map(unit):
            raise _MergeError(f"the buying_unit of {what} is not a mapping")
        for role in PLAN_ROLES:
            wanted = crm.get(role, [])
            members = unit.get(role)
            if members is None:
                if wanted:
                    if role in unit:
                        unit[role] = _flow(wanted)
                    else:
                        _insert_key(unit, role, _flow(wanted), list(PLAN_ROLES))
                    if what != "new":
                        self.changes.append(f"{what}: buying unit {role} + {', '.join(wanted)}")
                continue
            if not isinstance(members, list):
                raise _MergeError(f"buying_unit.{role} of {what} is not a list")
            removed = [index for index, member in enumerate(members)
                       if member in self.tracked_contacts and member not in wanted and member not in keep]
            for index in reversed(removed):
                self.changes.append(f"{what}: buying unit {role} - {members[index]} "
                                    f"(no such contact role in Salesforce)")
                del members[index]
            if not members and wanted and hasattr(members, "fa"):
                members.fa.set_flow_style()  # `[]` grows as `[a, b]`, not as a block list
            for member in wanted:
                if member not in members:
                    members.append(_yaml_text(member))
                    if what != "new":
                        self.changes.append(f"{what}: buying unit {role} + {member}")


def _flow(items: list[str]):
    from ruamel.yaml.comments import CommentedSeq

    seq = CommentedSeq(_yaml_text(item) for item in items)
    seq.fa.set_flow_style()
    return seq


def layout_new(doc) -> None:
    """A blank line between the sections of a new plan."""
    keys = list(doc.keys())
    for key in keys[1:-1]:
        if _is_block(doc[key]):
            _set_trailing(doc[key], "\n")


# --------------------------------------------------------------------------------------------
# Writing


def write_atomic(path: str | os.PathLike, text: str) -> None:
    """Write a plan atomically (temporary file in the same directory, fsync, rename): a reader
    sees the old plan or the new one, never half of one. An existing file keeps its mode."""
    from ssm_rules.atomic import write_text_atomic

    write_text_atomic(path, text)
