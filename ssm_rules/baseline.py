"""Baselines: adopt the checker on a portfolio that already has hundreds of findings.

`ssm check --write-baseline FILE` records today's findings; `ssm check --baseline FILE` then
reports (and fails on) only the findings that are not in it. A finding is matched by its
fingerprint, the SHA-256 of

    account ID, rule ID, subject kind, subject ID, location path

(NUL-separated), never its line or file name, and with the subject's list index in the path
replaced by its ID (`opportunities[omni-platform].buying_unit`): adding a contact above an
opportunity, moving opportunities around, or renaming the plan file does not turn old findings
into new ones; editing the finding's own subject (another opportunity ID) does. Matching counts: if the baseline holds a fingerprint
twice and the run finds it three times, one finding is new.

The file is JSON, sorted, one entry per finding, so that it diffs well in review:

    {
      "version": 1,
      "tool": "ssm",
      "as_of": "2026-11-27",
      "entries": [
        {"fingerprint": "3f1c...", "rule": "SSM-BDU-001", "account": "northwind-retail",
         "subject": {"kind": "opportunity", "id": "omni-platform"},
         "file": "facts/northwind-retail.yaml", "message": "Opportunity ... has no key decision leader."}
      ]
    }

Only `fingerprint` is used for matching; the other fields are for the people reading the diff.
Invalid plans are never baselined: a plan the tool cannot read must be fixed.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections import Counter
from dataclasses import dataclass, replace
from typing import Any

from ssm_rules.atomic import read_regular_file, write_text_atomic
from ssm_rules.errors import UsageError

VERSION = 1
MAX_BYTES = 256 * 1024 * 1024  # about 800,000 findings; a baseline is read whole


# Subjects with an ID: their position in the list is not part of who they are.
_LISTS_BY_KIND = {"contact": "contacts", "opportunity": "opportunities", "initiative": "initiatives"}


def fingerprint(account: str | None, rule: str, subject_kind: str | None, subject_id: Any,
                path: str | None) -> str:
    parts = [account or "", rule, subject_kind or "", "" if subject_id is None else str(subject_id),
             _position_free(subject_kind, subject_id, path or "")]
    return hashlib.sha256("\0".join(parts).encode("utf-8")).hexdigest()


def _position_free(subject_kind: str | None, subject_id: Any, path: str) -> str:
    list_name = _LISTS_BY_KIND.get(subject_kind or "")
    if list_name and subject_id is not None:
        return re.sub(rf"^{list_name}\[\d+\]", f"{list_name}[{subject_id}]", path)
    return path


def finding_fingerprint(account: str | None, finding) -> str:
    """The fingerprint of a finding (anything with the contract's `to_json()`)."""
    data = finding.to_json()
    subject = data.get("subject") or {}
    location = data.get("location") or {}
    return fingerprint(account, data["rule"], subject.get("kind"), subject.get("id"), location.get("path"))


def item_fingerprint(item) -> str:
    """The fingerprint of a `formats._common.Item` (a finding or an invalid plan's problem)."""
    account = item.account if item.account is not None else item.file
    return fingerprint(account, item.rule, item.subject_kind, item.subject_id,
                       item.path if not item.invalid else f"{item.path}\0{item.message}")


@dataclass(frozen=True)
class Baseline:
    path: str
    as_of: str | None
    counts: Counter  # fingerprint -> how many findings the baseline holds

    @property
    def size(self) -> int:
        return sum(self.counts.values())


@dataclass(frozen=True)
class BaselineOutcome:
    """What applying a baseline did: `known` findings hidden, `new` left, `fixed` gone since."""

    known: int
    new: int
    fixed: int


def entries(report) -> list[dict[str, Any]]:
    """One entry per finding of the report's valid plans, sorted for stable diffs."""
    rows = []
    for result in report.results:
        if not result.valid:
            continue
        for finding in result.findings:
            data = finding.to_json()
            location = data.get("location") or {}
            rows.append({
                "fingerprint": finding_fingerprint(result.account, finding),
                "rule": data["rule"],
                "account": result.account,
                "subject": data.get("subject"),
                "file": location.get("file") or result.file,
                "message": data.get("message"),
            })
    rows.sort(key=lambda row: (str(row["account"]), row["rule"], json.dumps(row["subject"], sort_keys=True),
                               row["fingerprint"], str(row["file"]), str(row["message"])))
    return rows


def dumps(report) -> str:
    document = {"version": VERSION, "tool": "ssm", "as_of": report.as_of.isoformat(), "entries": entries(report)}
    return json.dumps(document, indent=2, ensure_ascii=False) + "\n"


def write(path: str, report, inputs=()) -> int:
    """Record the report's findings in `path` (atomically; never over one of `inputs`); returns how many."""
    text = dumps(report)
    try:
        write_text_atomic(path, text, inputs=inputs)
    except OSError as error:
        raise UsageError(f"{path}: cannot write the baseline: {error.strerror or error}") from error
    return len(json.loads(text)["entries"])


def load(path: str) -> Baseline:
    try:
        raw = read_regular_file(path, MAX_BYTES)
    except FileNotFoundError:
        raise UsageError(f"{path}: no such baseline file (create one with --write-baseline {path})") from None
    except OSError as error:
        raise UsageError(f"{path}: cannot read the baseline: {error.strerror or error}") from None
    try:
        document = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise UsageError(f"{path}: not a baseline file: {error}") from None
    except RecursionError:
        raise UsageError(f"{path}: not a baseline file: nested too deeply") from None
    if not isinstance(document, dict) or "entries" not in document:
        raise UsageError(f"{path}: not a baseline file: expected an object with `version` and `entries`")
    if document.get("version") != VERSION:
        raise UsageError(f"{path}: baseline version {document.get('version')!r} is not supported "
                         f"(this ssm writes version {VERSION}; rewrite it with --write-baseline)")
    rows = document["entries"]
    if not isinstance(rows, list):
        raise UsageError(f"{path}: `entries` must be a list")
    counts: Counter = Counter()
    for number, row in enumerate(rows):
        value = row.get("fingerprint") if isinstance(row, dict) else None
        if not isinstance(value, str) or not value:
            raise UsageError(f"{path}: entries[{number}]: missing `fingerprint`")
        counts[value] += 1
    as_of = document.get("as_of")
    return Baseline(path=path, as_of=as_of if isinstance(as_of, str) else None, counts=counts)


def apply(report, baseline: Baseline):
    """A copy of `report` without the findings the baseline knows; and what was hidden.

    Findings are taken in report order, so when a fingerprint occurs more often than the
    baseline holds it, the later ones are the new ones.
    """
    remaining = Counter(baseline.counts)
    known = new = 0
    results = []
    for result in report.results:
        if not result.valid:
            results.append(result)
            continue
        kept = []
        for finding in result.findings:
            key = finding_fingerprint(result.account, finding)
            if remaining[key] > 0:
                remaining[key] -= 1
                known += 1
            else:
                kept.append(finding)
                new += 1
        results.append(replace(result, findings=kept))
    fixed = sum(count for count in remaining.values() if count > 0)
    return replace(report, results=results), BaselineOutcome(known=known, new=new, fixed=fixed)
