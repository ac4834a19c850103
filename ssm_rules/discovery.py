"""Command-line paths -> the plan files to read, in a stable order."""

from __future__ import annotations

import os
import sys
from pathlib import Path

from ssm_rules.errors import UsageError

PLAN_SUFFIXES = (".yaml", ".yml", ".json")  # compared case-insensitively: `PLAN.YAML` is a plan


def plan_files(paths: list[str]) -> list[str]:
    """Files named on the command line, and plan files found under directories (recursively).

    Hidden directories (`.git`, `.venv`, ...) are skipped. A path that does not exist, or a
    directory without any plan file, is a usage error (exit 2): a typo in CI must not turn into
    a green build that checked nothing. A directory below that cannot be read is listed like a
    file: reading it fails, and the run reports it as a plan that could not be checked.
    """
    files: list[str] = []
    seen: set[str] = set()
    for given in paths:
        path = Path(given)
        if path.is_dir():
            found = sorted(_walk(path))
            if not found:
                raise UsageError(f"{given}: no plan files (*.yaml, *.yml, *.json) found in this directory")
        elif path.exists():
            found = [given]
        else:
            raise UsageError(f"{given}: no such file or directory")
        for file in found:
            if file not in seen:
                seen.add(file)
                files.append(file)
    return files


def is_plan_name(name: str) -> bool:
    return name.lower().endswith(PLAN_SUFFIXES) and not name.startswith(".")


def _walk(directory: Path):
    unreadable: list[str] = []

    def note(error: OSError) -> None:
        unreadable.append(error.filename if isinstance(error.filename, str) else str(directory))

    for root, dirs, names in os.walk(directory, onerror=note):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for name in dirs:
            if os.path.islink(os.path.join(root, name)):  # never followed: it may lead anywhere, or loop
                sys.stderr.write(f"ssm: warning: {display_name(os.path.join(root, name))} is a symbolic link to "
                                 f"a directory; its plans are not checked unless it is given as a path\n")
        for name in names:
            if is_plan_name(name):
                yield os.path.join(root, name)
    yield from unreadable


def display_name(path: str) -> str:
    """`path` as reports show it: valid Unicode on one line. A file name that is not UTF-8
    reaches Python with its bytes as lone surrogates (PEP 383), which no report, database or
    JSON file can hold; its undecodable bytes are shown as `\\xff` instead, and a line break
    (a file may be named `a\\n::error::x.yaml`) as `\\n`."""
    from ssm_rules.errors import one_line

    try:
        path.encode("utf-8")
    except UnicodeEncodeError:
        path = path.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
    return one_line(path)

