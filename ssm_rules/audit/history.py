"""The audit history: every run in SQLite, so a report can say what is new, fixed and old.

Schema (version in `PRAGMA user_version`):

    meta      which fingerprint function wrote the rows (see `fingerprint_scheme`)
    runs      one row per as-of date (a second run for the same date replaces the first):
              counts of plans and open findings, and `new`/`resolved` against the run before
    plans     one row per plan file and run: its account, owner, whether it was valid, and
              since when it has been invalid
    findings  one row per open finding and run, keyed by its fingerprint, with `first_seen`

A finding's identity across runs is its `fingerprint` (the one `ssm_rules.baseline` uses): the
account (or the file, for a plan without an account ID), the rule, the subject's kind and ID,
and the location's path, but not its line, so editing another part of the plan does not turn
an old finding into a new one.

"The run before" is the latest earlier as-of date. A finding is *new* when its plan's last
valid check before this run did not have it; it is *resolved* when its plan was checked validly
in this run and the finding is gone. A plan that is invalid tonight (or left the portfolio)
resolves nothing: its findings are unknown, not fixed, and when it is valid again its old
findings keep their `first_seen`.

Each run is recorded in one transaction: a crash mid-run leaves the previous history intact.
"""

from __future__ import annotations

import sqlite3
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date, datetime, timezone
from pathlib import Path
from typing import Iterator

from ssm_rules import baseline
from ssm_rules.errors import UsageError

SCHEMA_VERSION = 1
SEVERITIES = ("error", "warning", "info")

SCHEMA = """
CREATE TABLE runs (
    id            INTEGER PRIMARY KEY,
    as_of         TEXT NOT NULL UNIQUE,       -- ISO date
    recorded_at   TEXT NOT NULL,              -- ISO timestamp, UTC
    plans         INTEGER NOT NULL,
    invalid       INTEGER NOT NULL,
    error         INTEGER NOT NULL,           -- open findings by severity
    warning       INTEGER NOT NULL,
    info          INTEGER NOT NULL,
    new           INTEGER NOT NULL DEFAULT 0,
    resolved      INTEGER NOT NULL DEFAULT 0,
    previous_as_of TEXT                       -- the run compared against
);
CREATE TABLE plans (
    run_id        INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
    file          TEXT NOT NULL,
    plan_key      TEXT NOT NULL,              -- account ID, or the file when the plan has none
    account       TEXT,
    owner         TEXT,
    valid         INTEGER NOT NULL,
    problems      INTEGER NOT NULL DEFAULT 0, -- validation errors of an invalid plan
    invalid_since TEXT,                       -- an invalid plan: first run of its invalid streak
    outcome_met   INTEGER,
    outcome_total INTEGER,
    PRIMARY KEY (run_id, file)
);
CREATE INDEX plans_by_key ON plans (plan_key, valid);
CREATE TABLE findings (
    run_id        INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
    fingerprint   TEXT NOT NULL,
    plan_key      TEXT NOT NULL,
    rule          TEXT NOT NULL,
    severity      TEXT NOT NULL,
    subject_kind  TEXT,
    subject_id    TEXT,
    path          TEXT,
    message       TEXT NOT NULL,
    owner         TEXT,
    first_seen    TEXT NOT NULL,
    PRIMARY KEY (run_id, fingerprint)
);
CREATE INDEX findings_by_plan ON findings (run_id, plan_key);
CREATE TABLE meta (
    key           TEXT PRIMARY KEY,
    value         TEXT NOT NULL
);
"""


def fingerprint(plan, finding: dict) -> str:
    """A finding's identity across runs: `baseline.fingerprint` of account, rule, subject, path.

    `plan` is anything with `account` and `file` (a PlanResult or an AuditedPlan; a plan without
    an account ID is identified by its file, as in baselines); `finding` is the contract's
    finding shape (`Finding.to_json()`). The same fingerprint as `ssm check --baseline` uses.
    """
    subject = finding.get("subject") or {}
    location = finding.get("location") or {}
    return baseline.fingerprint(plan.account if plan.account is not None else plan.file, str(finding.get("rule")),
                                subject.get("kind"), subject.get("id"), location.get("path"))


def fingerprint_scheme() -> str:
    """Which fingerprint function is in use: the fingerprint of a fixed, made-up finding.

    Kept in the database; when `baseline.fingerprint` changes (as it did once, to ignore list
    positions), the stored fingerprints are computed again, so that a new version of ssm does
    not report every open finding as new and every old one as resolved.
    """
    return baseline.fingerprint("probe-account", "SSM-PROBE-001", "contact", "probe", "contacts[3].goal")


def plan_fingerprints(plan) -> list[str]:
    """The fingerprints of a plan's findings, in order; a repeat gets `#2`, `#3`, ... appended.

    (Two findings of one rule on the same subject and path are rare, but must not collide.)
    """
    seen: dict[str, int] = {}
    prints = []
    for finding in plan.findings:
        base = fingerprint(plan, finding)
        seen[base] = seen.get(base, 0) + 1
        prints.append(base if seen[base] == 1 else f"{base}#{seen[base]}")
    return prints


@dataclass
class RunDelta:
    """What one run changed, as recorded: the report's view of history."""

    as_of: date
    previous_run: date | None
    first_seen: dict[tuple[str, int], date]  # (file, finding index) -> date first seen
    new: list[dict] = field(default_factory=list)  # findings first seen in this run (file, index)
    resolved: list[dict] = field(default_factory=list)  # findings gone since the run before
    invalid_since: dict[str, date] = field(default_factory=dict)  # invalid plan's file -> since
    repaired: list[str] = field(default_factory=list)  # plan keys valid again after being invalid
    trend: list[dict] = field(default_factory=list)  # runs up to this one, oldest first

    def to_json(self) -> dict:
        """The `history` block of audit.json."""
        return {
            "previous_run": self.previous_run.isoformat() if self.previous_run else None,
            "new": len(self.new),
            "resolved": len(self.resolved),
            "newly_invalid": sum(1 for since in self.invalid_since.values() if since == self.as_of),
            "repaired": len(self.repaired),
            "runs": len(self.trend),
        }


class History:
    """An audit history database; created (with its schema) on first use.

    Use as a context manager; `recording()` records one run in one transaction.
    """

    def __init__(self, path: str | Path, *, create: bool = True):
        self.path = Path(path)
        if not create and not self.path.is_file():
            raise UsageError(f"{path}: no such history database")
        if create and not self.path.absolute().parent.is_dir():
            raise UsageError(f"{path}: no such directory for the history database")
        if self.path.is_dir():
            raise UsageError(f"{path}: is a directory, not a history database")
        try:
            if create:
                self.connection = sqlite3.connect(self.path, timeout=60, isolation_level=None)
            else:
                self.connection = sqlite3.connect(self.path.resolve().as_uri() + "?mode=ro", uri=True,
                                                  timeout=60, isolation_level=None)
            self.connection.row_factory = sqlite3.Row
            self.connection.execute("PRAGMA foreign_keys = ON")
            self._migrate(create)
            if create:
                self._refingerprint()
        except sqlite3.DatabaseError as error:
            raise UsageError(f"{path}: not an ssm history database ({error})") from None
        except OSError as error:
            raise UsageError(f"{path}: cannot open the history database: {error.strerror or error}") from None

    def __enter__(self) -> History:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        self.connection.close()

    def _migrate(self, create: bool) -> None:
        version = self.connection.execute("PRAGMA user_version").fetchone()[0]
        if version == SCHEMA_VERSION:
            return
        if version > SCHEMA_VERSION:
            raise UsageError(f"{self.path}: the history database has schema version {version}; "
                             f"this ssm knows up to {SCHEMA_VERSION} (upgrade ssm-rules)")
        tables = self.connection.execute("SELECT count(*) FROM sqlite_master").fetchone()[0]
        if tables:
            raise UsageError(f"{self.path}: a SQLite database, but not an ssm history database")
        if not create:
            raise UsageError(f"{self.path}: an empty database, not an ssm history database")
        with self._transaction():
            for statement in SCHEMA.split(";"):
                if statement.strip():
                    self.connection.execute(statement)
            self.connection.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")

    def _refingerprint(self) -> None:
        """Compute the stored fingerprints again when the fingerprint function has changed."""
        db = self.connection
        scheme = fingerprint_scheme()
        row = db.execute("SELECT value FROM meta WHERE key = 'fingerprint_scheme'").fetchone()
        if row is not None and row[0] == scheme:
            return
        with self._transaction():
            rows = db.execute("SELECT rowid, run_id, fingerprint, plan_key, rule, subject_kind, subject_id, path"
                              " FROM findings ORDER BY run_id, rowid").fetchall()
            db.execute("UPDATE findings SET fingerprint = 'old:' || rowid")  # no clashes while renaming
            seen: dict[tuple[int, str], int] = {}
            updates = []
            for row in rows:
                base = baseline.fingerprint(row["plan_key"], row["rule"], row["subject_kind"], row["subject_id"],
                                            row["path"])
                count = seen[(row["run_id"], base)] = seen.get((row["run_id"], base), 0) + 1
                updates.append((base if count == 1 else f"{base}#{count}", row["rowid"]))
            db.executemany("UPDATE findings SET fingerprint = ? WHERE rowid = ?", updates)
            db.execute("INSERT OR REPLACE INTO meta (key, value) VALUES ('fingerprint_scheme', ?)", (scheme,))

    @contextmanager
    def _transaction(self) -> Iterator[None]:
        self.connection.execute("BEGIN IMMEDIATE")  # take the write lock now: two audits queue up
        try:
            yield
        except BaseException:
            self.connection.execute("ROLLBACK")
            raise
        self.connection.execute("COMMIT")

    # --- recording a run -----------------------------------------------------------------------

    @contextmanager
    def recording(self, as_of: date, plans: list) -> Iterator[RunDelta]:
        """Record a run (replacing one with the same as-of date) and yield what it changed.

        Everything happens in one transaction, committed when the `with` block ends without an
        exception: the caller renders its reports inside the block, so that a crash anywhere
        before the end leaves the history as it was.
        """
        with self._transaction():
            delta = self._record(as_of, plans)
            yield delta

    def _record(self, as_of: date, plans: list) -> RunDelta:
        db = self.connection
        day = as_of.isoformat()
        db.execute("DELETE FROM runs WHERE as_of = ?", (day,))  # a re-run replaces (cascades)
        counts = {severity: 0 for severity in SEVERITIES}
        for plan in plans:
            for finding in plan.findings:
                counts[finding["severity"]] = counts.get(finding["severity"], 0) + 1
        run_id = db.execute(
            "INSERT INTO runs (as_of, recorded_at, plans, invalid, error, warning, info) VALUES (?, ?, ?, ?, ?, ?, ?)",
            (day, datetime.now(timezone.utc).isoformat(timespec="seconds"), len(plans),
             sum(1 for plan in plans if not plan.valid), counts["error"], counts["warning"], counts["info"]),
        ).lastrowid
        db.executemany(
            "INSERT INTO plans (run_id, file, plan_key, account, owner, valid, problems, outcome_met, outcome_total)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [(run_id, plan.file, plan.key, plan.account, plan.account_owner, int(plan.valid), len(plan.errors),
              *_outcome_counts(plan)) for plan in plans])
        rows = []
        for plan in plans:
            for finding, print_ in zip(plan.findings, plan_fingerprints(plan)):
                subject = finding.get("subject") or {}
                rows.append((run_id, print_, plan.key, finding["rule"], finding["severity"], subject.get("kind"),
                             None if subject.get("id") is None else str(subject.get("id")),
                             (finding.get("location") or {}).get("path"), finding.get("message") or "",
                             (finding.get("next_action") or {}).get("owner"), day))
        # INSERT OR IGNORE: two plan files of one account may repeat a fingerprint; the first wins.
        db.executemany("INSERT OR IGNORE INTO findings (run_id, fingerprint, plan_key, rule, severity, subject_kind,"
                       " subject_id, path, message, owner, first_seen) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", rows)
        delta = self._derive(run_id, as_of)
        # A run recorded for an earlier date than runs already kept changes what those later runs
        # found new or resolved: derive them again, in date order.
        for later in db.execute("SELECT id, as_of FROM runs WHERE as_of > ? ORDER BY as_of", (day,)).fetchall():
            self._derive(later["id"], date.fromisoformat(later["as_of"]))
        first_seen = {}
        by_print = {row["fingerprint"]: date.fromisoformat(row["first_seen"]) for row in
                    db.execute("SELECT fingerprint, first_seen FROM findings WHERE run_id = ?", (run_id,))}
        new_prints = {item["fingerprint"] for item in delta.new}
        delta.new = []
        for plan in plans:
            for index, print_ in enumerate(plan_fingerprints(plan)):
                if print_ in by_print:
                    first_seen[(plan.file, index)] = by_print[print_]
                if print_ in new_prints:
                    delta.new.append({"file": plan.file, "index": index})
                    new_prints.discard(print_)
        delta.first_seen = first_seen
        delta.trend = [run for run in self.runs() if run["as_of"] <= day]
        return delta

    def _derive(self, run_id: int, as_of: date) -> RunDelta:
        """Compute first_seen, new, resolved and invalid_since of one run from the runs before it."""
        db = self.connection
        day = as_of.isoformat()
        previous = db.execute("SELECT max(as_of) FROM runs WHERE as_of < ?", (day,)).fetchone()[0]
        # Each plan's open findings at its last valid check before this run.
        known = {row["fingerprint"]: row for row in db.execute(
            """WITH last_valid AS (
                   SELECT p.plan_key, max(r.as_of) AS as_of
                   FROM plans p JOIN runs r ON r.id = p.run_id
                   WHERE r.as_of < :day AND p.valid
                   GROUP BY p.plan_key)
               SELECT f.fingerprint, f.plan_key, f.rule, f.severity, f.message, f.owner, f.first_seen,
                      f.subject_kind, f.subject_id, f.path, p.account, p.file
               FROM last_valid l
               JOIN runs r ON r.as_of = l.as_of
               JOIN findings f ON f.run_id = r.id AND f.plan_key = l.plan_key
               LEFT JOIN plans p ON p.run_id = r.id AND p.plan_key = f.plan_key""", {"day": day})}
        current = db.execute("SELECT fingerprint, plan_key FROM findings WHERE run_id = ?", (run_id,)).fetchall()
        current_prints = {row["fingerprint"] for row in current}
        valid_keys = {row[0] for row in db.execute("SELECT plan_key FROM plans WHERE run_id = ? AND valid", (run_id,))}
        db.executemany("UPDATE findings SET first_seen = ? WHERE run_id = ? AND fingerprint = ?",
                       [(known[row["fingerprint"]]["first_seen"] if row["fingerprint"] in known else day,
                         run_id, row["fingerprint"]) for row in current])
        new = [{"fingerprint": row["fingerprint"]} for row in current if row["fingerprint"] not in known]
        resolved = [_resolved(row, as_of) for print_, row in known.items()
                    if row["plan_key"] in valid_keys and print_ not in current_prints]
        resolved.sort(key=lambda item: (SEVERITIES.index(item["severity"]) if item["severity"] in SEVERITIES else 9,
                                        item["account"] or "", item["rule"]))
        invalid_since: dict[str, date] = {}
        for plan in db.execute("SELECT file, plan_key FROM plans WHERE run_id = ? AND NOT valid", (run_id,)).fetchall():
            since = db.execute(
                """SELECT min(r.as_of) FROM plans p JOIN runs r ON r.id = p.run_id
                   WHERE p.plan_key = :key AND NOT p.valid AND r.as_of <= :day AND r.as_of > coalesce(
                       (SELECT max(r2.as_of) FROM plans p2 JOIN runs r2 ON r2.id = p2.run_id
                        WHERE p2.plan_key = :key AND p2.valid AND r2.as_of < :day), '')""",
                {"key": plan["plan_key"], "day": day}).fetchone()[0]
            invalid_since[plan["file"]] = date.fromisoformat(since or day)
        db.executemany("UPDATE plans SET invalid_since = ? WHERE run_id = ? AND file = ?",
                       [(since.isoformat(), run_id, file) for file, since in invalid_since.items()])
        repaired = []
        if previous:
            was_invalid = {row[0] for row in db.execute(
                "SELECT p.plan_key FROM plans p JOIN runs r ON r.id = p.run_id WHERE r.as_of = ? AND NOT p.valid",
                (previous,))}
            repaired = sorted(was_invalid & valid_keys)
        db.execute("UPDATE runs SET new = ?, resolved = ?, previous_as_of = ? WHERE id = ?",
                   (len(new), len(resolved), previous, run_id))
        return RunDelta(as_of=as_of, previous_run=date.fromisoformat(previous) if previous else None,
                        first_seen={}, new=new, resolved=resolved, invalid_since=invalid_since, repaired=repaired)

    # --- reading -------------------------------------------------------------------------------

    def runs(self) -> list[dict]:
        """Every run, oldest first: as_of, plans, invalid, error, warning, info, new, resolved."""
        return [{"as_of": row["as_of"], "plans": row["plans"], "invalid": row["invalid"], "error": row["error"],
                 "warning": row["warning"], "info": row["info"], "new": row["new"], "resolved": row["resolved"],
                 "previous_run": row["previous_as_of"], "recorded_at": row["recorded_at"]}
                for row in self.connection.execute("SELECT * FROM runs ORDER BY as_of")]


def _outcome_counts(plan) -> tuple[int | None, int | None]:
    if not plan.valid or not plan.outcome:
        return None, None
    met, missing = len(plan.outcome.get("met", [])), len(plan.outcome.get("missing", []))
    return met, met + missing


def _resolved(row, as_of: date) -> dict:
    first_seen = date.fromisoformat(row["first_seen"])
    return {"account": row["account"], "file": row["file"], "rule": row["rule"], "severity": row["severity"],
            "message": row["message"], "owner": row["owner"], "first_seen": first_seen,
            "subject": {"kind": row["subject_kind"], "id": row["subject_id"]}, "path": row["path"],
            "days_open": (as_of - first_seen).days}
