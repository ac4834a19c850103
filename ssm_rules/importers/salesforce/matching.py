"""The output directory: what each entry is (a plan, a broken plan, another file, a link, a
special file) and which plan belongs to which account: by `# sf:` tag, then by name, account
ID or file name. Only a plan is ever merged; nothing else is opened for writing."""

from __future__ import annotations

import errno
import os
import re
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ssm_rules.errors import UsageError
from ssm_rules.importers.salesforce.ids import SF_TAG, sf_key, slugify
from ssm_rules.importers.salesforce.join import SfAccount
from ssm_rules.importers.salesforce.mapping import folded
from ssm_rules.importers.salesforce.problems import Problem
from ssm_rules.importers.salesforce.roundtrip import misread_values, round_trip_yaml, tag_of
from ssm_rules.plan_format import FORMAT


@dataclass
class Existing:
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
    misread: Counter | None = None  # text values the plan loader reads as another type (see misread_values)
    error: str | None = None
    account_key: str | None = None  # from the `# sf:` tag on `account.id` (plans only)
    account_id: str | None = None
    account_name: str | None = None
    mentions: frozenset[str] = frozenset()  # `sf:` keys written anywhere in a file that is no plan


def not_a_plan(entry: Existing) -> str:
    if entry.kind == "special":
        return "is not a regular file"
    return "is not a plan (it has no `format: ssm-plan/1`)"


def match_plans(existing: list[Existing], accounts: list[SfAccount],
                 problems: list[Problem]) -> tuple[dict[str, Existing], set[str]]:
    """Account key -> the plan to merge it into, and the accounts left out (reported).

    A plan is found by the `# sf:` tag on its `account.id` line; one not yet linked to
    Salesforce by its account name, then its account ID, then its file name (each pass over all
    accounts, so that "Acme Corp" finds the plan named so before "ACME Corp." finds it by slug).
    Only plans are merged: a file the tag or name points at that cannot be merged (broken, no
    plan, a symbolic link) leaves its account out with a problem, rather than a second plan
    for the same account appearing beside it.
    """
    matched: dict[str, Existing] = {}
    skipped: set[str] = set()
    claimed: set[Path] = set()

    def leave_out(account: SfAccount, entry: Existing, how: str) -> None:
        if entry.kind == "broken":
            message = f"cannot update this plan of account {account.name!r}: {entry.error}; fix it, then import again"
        elif entry.kind == "link":
            message = (f"account {account.name!r} not imported: this file {how}, but is a symbolic link, which "
                       f"the import neither follows nor replaces; put the plan itself here")
        else:
            message = (f"account {account.name!r} not imported: this file {how}, but {not_a_plan(entry)}; "
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
         and folded(plan.account_name) == folded(account.name)),
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


def scan_output_dir(out: Path) -> list[Existing]:
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
        plan = Existing(path)
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
        plan.mentions = frozenset(sf_key(key) for key in SF_TAG.findall(raw.decode("utf-8", "replace")))
        _classify(plan, raw)
    return existing


def _classify(plan: Existing, raw: bytes) -> None:
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
    if version != FORMAT:
        if isinstance(version, str) and version.startswith("ssm-plan/"):
            plan.kind, plan.error = "broken", f"its format is {version}; this version of ssm updates {FORMAT}"
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


def parse_plan(plan: Existing) -> None:
    """Read a plan with ruamel's round-trip parser (comments, tags, layout), which the merge
    works on. It costs some 50 times what the plan loader does, so it is done only for plans
    that may concern the import (see build_plans)."""
    try:
        plan.doc = round_trip_yaml(2, 4, 2).load(plan.text)
    except Exception as error:  # ruamel raises many kinds; any of them means "cannot merge"
        plan.kind, plan.error = "broken", f"not readable YAML ({' '.join(str(error).split())})"
        return
    plan.misread = misread_values(plan.doc, plan.loaded)
    account = plan.doc.get("account") if hasattr(plan.doc, "get") else None
    if hasattr(account, "get"):
        plan.account_key = tag_of(account, "id")
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

