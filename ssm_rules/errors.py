"""Errors shared across the pipeline.

A `PlanProblem` is one thing wrong with one plan file (a YAML syntax error, an unknown key, a
dangling reference, a hostile file); it always knows where the user must look. A `UsageError`
means the tool cannot do its job at all (exit 2).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class PlanProblem:
    message: str
    line: int | None = None  # 1-based
    column: int | None = None  # 1-based
    path: str | None = None  # plan path, e.g. "opportunities[0].buying_unit.sponsor[0]"

    def __post_init__(self) -> None:
        # Messages quote the plan (an unknown key, a duplicate one): a line break in it must not
        # start a new line of the report, which a CI log may read as a command (`::error ...`).
        object.__setattr__(self, "message", one_line(self.message))

    def to_json(self, file: str) -> dict:
        return {
            "message": self.message,
            "location": {"file": file, "line": self.line, "column": self.column, "path": self.path},
        }


class PlanError(Exception):
    """A plan could not be loaded or validated; carries every problem found."""

    def __init__(self, problems: list[PlanProblem]):
        super().__init__("; ".join(p.message for p in problems))
        self.problems = problems


class UsageError(Exception):
    """The tool cannot do its job (bad configuration, unreadable rule pack, missing path): exit 2."""


# Line breaks and other control characters, as their escapes.
_CONTROLS = {code: f"\\x{code:02x}" for code in [*range(0x20), 0x7F, *range(0x80, 0xA0)]}
_CONTROLS.update({ord("\n"): "\\n", ord("\r"): "\\r", ord("\t"): "\\t", 0x2028: "\\u2028", 0x2029: "\\u2029"})


def one_line(text: str) -> str:
    """`text` on one line: control characters (line breaks included) shown as escapes."""
    return text if text.isprintable() else text.translate(_CONTROLS)

