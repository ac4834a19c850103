"""One export CSV file -> a `Table` of rows, streamed: decoded a chunk at a time (a byte-order
mark names the encoding), only the columns the import uses kept, every file-level problem
(undecodable byte, malformed CSV, missing column) raised with its file, row and column."""

from __future__ import annotations

import codecs
import csv
import io
import os
import re
from collections.abc import Iterable
from dataclasses import dataclass

from ssm_rules.importers.salesforce.problems import ExportError, Problem


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

