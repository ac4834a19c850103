"""What can be wrong with an export or a plan, said with where to look."""

from __future__ import annotations

from dataclasses import dataclass

from ssm_rules.errors import UsageError


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

