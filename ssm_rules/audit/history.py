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

A history lasts for years, so it carries its schema version (`PRAGMA user_version`): an older
database is migrated in one transaction when an audit opens it, a newer one is refused (this
ssm cannot know what it holds), and a damaged one, or one whose tables were changed by hand,
is named as such instead of failing somewhere in a query. Creating a new database is atomic:
two audits that start at the same moment both find, or both make, the same schema. `prune`
removes old runs. Every query that looks back (a plan's last valid check, the start of its
invalid streak) seeks an index instead of reading every run kept (bench/history.py).
"""

from __future__ import annotations

import os
import sqlite3
import stat
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date, datetime, timezone
from pathlib import Path
from typing import Iterator

from ssm_rules import baseline
from ssm_rules.errors import UsageError
from ssm_rules.severity import SEVERITIES

SCHEMA_VERSION = 3
_SQLITE_HEADER = b"SQLite format 3\x00"

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
    previous_as_of TEXT,                      -- the run compared against
    pipeline_value REAL,                      -- value of the open opportunities (version 3), NULL when
    unsupported_value REAL                    -- unknown: no stage pack, or recorded before version 3
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
    as_of         TEXT NOT NULL DEFAULT '',   -- the run's as_of (version 2): indexed with the plan
    PRIMARY KEY (run_id, file)
);
CREATE INDEX plans_by_key_date ON plans (plan_key, valid, as_of);
CREATE INDEX plans_by_run_key ON plans (run_id, plan_key);
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

# Version N-1 -> N, each run in the transaction that opens the database.
MIGRATIONS = {
    2: """
ALTER TABLE plans ADD COLUMN as_of TEXT NOT NULL DEFAULT '';
UPDATE plans SET as_of = (SELECT r.as_of FROM runs r WHERE r.id = plans.run_id);
DROP INDEX plans_by_key;
CREATE INDEX plans_by_key_date ON plans (plan_key, valid, as_of);
CREATE INDEX plans_by_run_key ON plans (run_id, plan_key);
""",
    # The pipeline review's figures of each run; earlier runs did not record them (NULL).
    3: """
ALTER TABLE runs ADD COLUMN pipeline_value REAL;
ALTER TABLE runs ADD COLUMN unsupported_value REAL;
""",
}
# Columns of `runs` added after version 1: a read-only look at an older database goes without them.
_RUNS_COLUMNS_SINCE = {3: {"pipeline_value", "unsupported_value"}}


def _expected_columns() -> dict[str, set[str]]:
    """Table -> the columns this version reads and writes (checked when a database is opened)."""
    with sqlite3.connect(":memory:") as probe:
        probe.executescript(SCHEMA)
        tables = [name for (name,) in probe.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
        return {table: {row[1] for row in probe.execute(f"PRAGMA table_info({table})")} for table in tables}


_EXPECTED_COLUMNS = _expected_columns()


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
    """What one run changed, in numbers (the findings themselves are in the spool)."""

    as_of: date
    previous_run: date | None
    new: int  # findings first seen in this run
    resolved: int  # findings gone since the run before
    newly_invalid: int  # plans invalid since this run
    repaired: int  # plans valid again after being invalid
    trend: list[dict] = field(default_factory=list)  # runs up to this one, oldest first

    def to_json(self) -> dict:
        """The `history` block of audit.json."""
        return {
            "previous_run": self.previous_run.isoformat() if self.previous_run else None,
            "new": self.new,
            "resolved": self.resolved,
            "newly_invalid": self.newly_invalid,
            "repaired": self.repaired,
            "runs": len(self.trend),
        }


@dataclass
class PruneResult:
    removed: list[str]  # as-of dates of the runs removed, oldest first
    kept: list[str]


class History:
    """An audit history database.

    `mode`: "create" (an audit: created with its schema on first use, migrated when older),
    "write" (must exist; migrated when older: `ssm history prune`), "read" (must exist; opened
    read-only, never changed: `ssm history`). Use as a context manager; `recording()` records
    one run in one transaction. Every failure is a UsageError naming the file.
    """

    def __init__(self, path: str | Path, *, create: bool = True, mode: str | None = None):
        self.path = Path(path)
        self.mode = mode or ("create" if create else "read")
        self._check_file()
        try:
            if self.mode == "read":
                uri = self.path.resolve().as_uri() + "?mode=ro"
                self.connection = sqlite3.connect(uri, uri=True, timeout=60, isolation_level=None)
            else:
                self.connection = sqlite3.connect(self.path, timeout=60, isolation_level=None)
        except sqlite3.Error as error:
            raise UsageError(f"{path}: cannot open the history database ({error})") from None
        try:
            with self._errors_named():
                self.connection.row_factory = sqlite3.Row
                self.connection.execute("PRAGMA foreign_keys = ON")
                self._open_schema()
                if self.mode != "read":
                    self._refingerprint()
        except BaseException:
            self.connection.close()
            raise

    def _check_file(self) -> None:
        """The path must be a regular file (not a link: ssm never writes through one), or, for
        an audit, a new file in an existing directory."""
        try:
            info = os.lstat(self.path)
        except FileNotFoundError:
            info = None
        except OSError as error:
            raise UsageError(f"{self.path}: cannot open the history database: {error.strerror or error}") from None
        if info is None:
            if self.mode != "create":
                raise UsageError(f"{self.path}: no such history database")
            if not self.path.absolute().parent.is_dir():
                raise UsageError(f"{self.path}: no such directory for the history database")
            return
        if stat.S_ISLNK(info.st_mode):
            raise UsageError(f"{self.path}: is a symbolic link: ssm does not write through links; give the path "
                             f"of the database itself")
        if stat.S_ISDIR(info.st_mode):
            raise UsageError(f"{self.path}: is a directory, not a history database")
        if not stat.S_ISREG(info.st_mode):
            raise UsageError(f"{self.path}: not a regular file (a device, FIFO or socket), not a history database")
        if info.st_size:
            with open(self.path, "rb") as stream:
                header = stream.read(len(_SQLITE_HEADER))
            if header != _SQLITE_HEADER:
                raise UsageError(f"{self.path}: not an ssm history database (not a SQLite database at all)")

    def __enter__(self) -> History:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        self.connection.close()

    @contextmanager
    def _errors_named(self) -> Iterator[None]:
        """A SQLite error names the database and what is wrong with it, never a traceback."""
        try:
            yield
        except sqlite3.DatabaseError as error:
            text = str(error)
            if "malformed" in text or "not a database" in text or isinstance(error, sqlite3.DataError):
                raise UsageError(f"{self.path}: the history database is corrupted (SQLite: {text}); restore it "
                                 f"from a backup, or start a new one") from None
            if isinstance(error, sqlite3.OperationalError) and ("locked" in text or "busy" in text):
                raise UsageError(f"{self.path}: the history database is locked by another process (SQLite: "
                                 f"{text}); try again when it is done") from None
            if isinstance(error, sqlite3.OperationalError) and ("unable to open" in text or "readonly" in text):
                raise UsageError(f"{self.path}: cannot write the history database (SQLite: {text})") from None
            raise UsageError(f"{self.path}: the history database does not have the tables this ssm expects "
                             f"(SQLite: {text}); were they changed by hand? Restore it from a backup") from None

    def _open_schema(self) -> None:
        """Create, migrate or check the schema. The version is read again inside the write
        transaction: another audit may have created or migrated the database meanwhile."""
        version = self._version()
        if version > SCHEMA_VERSION:
            raise self._too_new(version)
        if version < SCHEMA_VERSION and self.mode != "read":
            with self._transaction():
                version = self._version()
                if version > SCHEMA_VERSION:
                    raise self._too_new(version)
                if version == 0:
                    self._create()
                else:
                    for step in range(version + 1, SCHEMA_VERSION + 1):
                        for statement in MIGRATIONS[step].split(";"):
                            if statement.strip():
                                self.connection.execute(statement)
                self.connection.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
            version = SCHEMA_VERSION
        if version == 0:
            tables = self.connection.execute("SELECT count(*) FROM sqlite_master").fetchone()[0]
            raise UsageError(f"{self.path}: " + ("a SQLite database, but not an ssm history database" if tables
                                                 else "an empty database, not an ssm history database"))
        self._check_columns(version)

    def _version(self) -> int:
        return self.connection.execute("PRAGMA user_version").fetchone()[0]

    def _too_new(self, version: int) -> UsageError:
        return UsageError(f"{self.path}: the history database has schema version {version}; this ssm knows up "
                          f"to {SCHEMA_VERSION} (upgrade ssm-rules to read it)")

    def _create(self) -> None:
        if self.connection.execute("SELECT count(*) FROM sqlite_master").fetchone()[0]:
            raise UsageError(f"{self.path}: a SQLite database, but not an ssm history database")
        for statement in SCHEMA.split(";"):
            if statement.strip():
                self.connection.execute(statement)

    def _check_columns(self, version: int) -> None:
        """Every table and column this version uses is there (a read-only open of an older
        database needs only what listing the runs reads)."""
        if version == SCHEMA_VERSION:
            expected = _EXPECTED_COLUMNS
        else:
            later = {column for since, columns in _RUNS_COLUMNS_SINCE.items() if since > version for column in columns}
            expected = {"runs": _EXPECTED_COLUMNS["runs"] - later}
        for table, columns in expected.items():
            found = {row[1] for row in self.connection.execute(f"PRAGMA table_info({table})")}
            missing = sorted(columns - found)
            if missing:
                what = f"has no table `{table}`" if not found else \
                    f"table `{table}` has no column {', '.join(f'`{name}`' for name in missing)}"
                raise UsageError(f"{self.path}: the history database {what}: its tables were changed by hand or "
                                 f"it is damaged; restore it from a backup")

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
    def recording(self, as_of: date, spool, *, pipeline=None) -> Iterator[RunDelta]:
        """Record a run (replacing one with the same as-of date) from a finished `spool.Spool`,
        and yield what it changed. `pipeline` (a review.deals.Totals, or None without the stage
        pack) gives the run's open pipeline value and unsupported value.

        Everything happens in one transaction, committed when the `with` block ends without an
        exception: the caller renders its reports inside the block, so that a crash anywhere
        before the end leaves the history as it was. Meanwhile the spool is attached to this
        database and read through it (`spool.db`): each finding's `first_seen` and `is_new`, an
        invalid plan's `invalid_since`, and the tables `audit_resolved` and `audit_repaired` are
        written into the spool, for the reports.
        """
        with self._errors_named(), spool.attached_to(self.connection), self._transaction():
            delta = self._record(as_of, pipeline)
            yield delta

    def _record(self, as_of: date, pipeline=None) -> RunDelta:
        """Record the attached spool's results as the run of `as_of`, all in SQL (nothing per
        plan in Python memory)."""
        db = self.connection
        day = as_of.isoformat()
        db.execute("DELETE FROM runs WHERE as_of = ?", (day,))  # a re-run replaces (cascades)
        counts = dict(db.execute("SELECT severity, count(*) FROM audit_findings GROUP BY severity").fetchall())
        run_id = db.execute(
            """INSERT INTO runs (as_of, recorded_at, plans, invalid, error, warning, info, pipeline_value,
                                unsupported_value)
               SELECT ?, ?, count(*), coalesce(sum(NOT valid), 0), ?, ?, ?, ?, ? FROM audit_plans""",
            (day, datetime.now(timezone.utc).isoformat(timespec="seconds"),
             *(counts.get(severity, 0) for severity in SEVERITIES),
             *((pipeline.value, pipeline.unsupported_value) if pipeline is not None else (None, None))),
        ).lastrowid
        # Outcome counts of a valid plan with an outcome ('{}' is none).
        db.execute("""INSERT INTO plans (run_id, file, plan_key, account, owner, valid, problems, outcome_met,
                                         outcome_total, as_of)
                      SELECT ?, file, plan_key, account, owner, valid, json_array_length(errors),
                             iif(outcome <> '{}', met_count, NULL), iif(outcome <> '{}', outcome_total, NULL), ?
                      FROM audit_plans ORDER BY seq""", (run_id, day))
        # INSERT OR IGNORE: two plan files of one account may repeat a fingerprint; the first wins.
        db.execute("""INSERT OR IGNORE INTO findings (run_id, fingerprint, plan_key, rule, severity, subject_kind,
                                                      subject_id, path, message, owner, first_seen)
                      SELECT :run, f.fingerprint, p.plan_key, f.rule, f.severity, f.subject_kind, f.subject_id,
                             f.path, coalesce(f.message, ''), f.action_owner, :day
                      FROM audit_findings f JOIN audit_plans p ON p.seq = f.plan_seq
                      ORDER BY f.plan_seq, f.idx""", {"run": run_id, "day": day})
        previous, new, resolved = self._derive(run_id, as_of)
        self._report_changes(run_id, as_of, previous)
        # A run recorded for an earlier date than runs already kept changes what those later runs
        # found new or resolved: derive them again, in date order.
        for later in db.execute("SELECT id, as_of FROM runs WHERE as_of > ? ORDER BY as_of", (day,)).fetchall():
            self._derive(later["id"], date.fromisoformat(later["as_of"]))
        db.execute("DROP TABLE temp.known")
        return RunDelta(
            as_of=as_of, previous_run=date.fromisoformat(previous) if previous else None, new=new, resolved=resolved,
            newly_invalid=db.execute("SELECT count(*) FROM audit_plans WHERE NOT valid AND invalid_since = ?",
                                     (day,)).fetchone()[0],
            repaired=db.execute("SELECT count(*) FROM audit_repaired").fetchone()[0],
            trend=[run for run in self._runs() if run["as_of"] <= day])

    def _derive(self, run_id: int, as_of: date) -> tuple[str | None, int, int]:
        """Compute first_seen, new, resolved and invalid_since of one run from the runs before it.

        Returns (the previous run's as-of date, new, resolved), and leaves in `temp.known` each
        plan's open findings at its last valid check before this run.
        """
        db = self.connection
        params = {"run": run_id, "day": as_of.isoformat()}
        previous = db.execute("SELECT max(as_of) FROM runs WHERE as_of < :day", params).fetchone()[0]
        db.execute("DROP TABLE IF EXISTS temp.known")
        # Each plan of this run's last valid check before it: one index seek a plan
        # (plans_by_key_date), whatever the number of runs kept.
        db.execute("""CREATE TEMP TABLE known AS
                      WITH last_valid AS (
                          SELECT cur.plan_key,
                                 (SELECT p.run_id FROM plans p
                                  WHERE p.plan_key = cur.plan_key AND p.valid = 1 AND p.as_of < :day
                                  ORDER BY p.as_of DESC LIMIT 1) AS run_id
                          FROM (SELECT DISTINCT plan_key FROM plans WHERE run_id = :run) cur)
                      SELECT f.*, f.rowid AS position
                      FROM last_valid l
                      JOIN findings f ON f.run_id = l.run_id AND f.plan_key = l.plan_key""", params)
        db.execute("CREATE INDEX temp.known_by_print ON known (fingerprint)")
        db.execute("""UPDATE findings SET first_seen = coalesce(
                          (SELECT k.first_seen FROM known k WHERE k.fingerprint = findings.fingerprint), :day)
                      WHERE run_id = :run""", params)
        new = db.execute("""SELECT count(*) FROM findings f WHERE f.run_id = :run
                            AND NOT EXISTS (SELECT 1 FROM known k WHERE k.fingerprint = f.fingerprint)""",
                         params).fetchone()[0]
        resolved = db.execute(f"SELECT count(*) FROM ({_RESOLVED})", params).fetchone()[0]
        # An invalid plan: invalid since the first run after its last valid one (index seeks).
        db.execute("""UPDATE plans SET invalid_since = coalesce(
                          (SELECT min(p.as_of) FROM plans p
                           WHERE p.plan_key = plans.plan_key AND p.valid = 0 AND p.as_of <= :day AND p.as_of > coalesce(
                               (SELECT max(p2.as_of) FROM plans p2
                                WHERE p2.plan_key = plans.plan_key AND p2.valid = 1 AND p2.as_of < :day), '')), :day)
                      WHERE run_id = :run AND NOT valid""", params)
        db.execute("UPDATE runs SET new = ?, resolved = ?, previous_as_of = ? WHERE id = ?",
                   (new, resolved, previous, run_id))
        return previous, new, resolved

    def _report_changes(self, run_id: int, as_of: date, previous: str | None) -> None:
        """Write what the reports show of this run's changes into the spool."""
        db = self.connection
        params = {"run": run_id, "day": as_of.isoformat(), "previous": previous}
        db.execute("""UPDATE audit_findings SET first_seen = h.first_seen
                      FROM findings h WHERE h.run_id = :run AND h.fingerprint = audit_findings.fingerprint""", params)
        # New: the first finding (in input order) of each fingerprint first seen today.
        db.execute("""UPDATE audit_findings SET is_new = 1
                      WHERE first_seen = :day AND rowid = (SELECT f.rowid FROM audit_findings f
                          WHERE f.fingerprint = audit_findings.fingerprint ORDER BY f.plan_seq, f.idx LIMIT 1)""",
                   params)
        db.execute("""UPDATE audit_plans SET invalid_since = h.invalid_since
                      FROM plans h WHERE h.run_id = :run AND h.file = audit_plans.file AND NOT audit_plans.valid""",
                   params)
        db.execute(f"""INSERT INTO audit_resolved (severity, account, file, rule, message, first_seen)
                       SELECT k.severity, (SELECT p.account FROM plans p WHERE p.run_id = k.run_id AND p.plan_key = k.plan_key),
                              (SELECT p.file FROM plans p WHERE p.run_id = k.run_id AND p.plan_key = k.plan_key),
                              k.rule, k.message, k.first_seen
                       FROM ({_RESOLVED}) k
                       ORDER BY CASE k.severity WHEN 'error' THEN 0 WHEN 'warning' THEN 1 WHEN 'info' THEN 2 ELSE 9 END,
                                coalesce((SELECT p.account FROM plans p WHERE p.run_id = k.run_id AND p.plan_key = k.plan_key), ''),
                                k.rule, k.plan_key, k.position""", params)
        db.execute("""INSERT INTO audit_repaired (plan_key)
                      SELECT DISTINCT p.plan_key FROM plans p JOIN runs r ON r.id = p.run_id
                      WHERE r.as_of = :previous AND NOT p.valid
                        AND p.plan_key IN (SELECT plan_key FROM plans WHERE run_id = :run AND valid)
                      ORDER BY p.plan_key""", params)

    # --- pruning -------------------------------------------------------------------------------

    def prune(self, *, keep_days: int | None = None, keep_runs: int | None = None) -> PruneResult:
        """Remove old runs, in one transaction. A run is kept when either rule keeps it:
        `keep_days` keeps the runs less than N days older than the latest run, `keep_runs` the
        latest N runs. The latest run is always kept. Open findings keep their `first_seen`
        (it is stored with each run), so pruning never makes an old finding look new."""
        if keep_days is None and keep_runs is None:
            raise ValueError("give keep_days or keep_runs")
        with self._errors_named(), self._transaction():
            runs = [(row["id"], row["as_of"]) for row in
                    self.connection.execute("SELECT id, as_of FROM runs ORDER BY as_of DESC")]
            if not runs:
                return PruneResult(removed=[], kept=[])
            latest = date.fromisoformat(runs[0][1])
            kept, removed = [], []
            for position, (run_id, as_of) in enumerate(runs):
                by_days = keep_days is not None and (latest - date.fromisoformat(as_of)).days < max(keep_days, 1)
                by_count = keep_runs is not None and position < max(keep_runs, 1)
                (kept if position == 0 or by_days or by_count else removed).append((run_id, as_of))
            self.connection.executemany("DELETE FROM runs WHERE id = ?", [(run_id,) for run_id, _ in removed])
        return PruneResult(removed=sorted(as_of for _, as_of in removed), kept=sorted(as_of for _, as_of in kept))

    # --- reading -------------------------------------------------------------------------------

    def runs(self) -> list[dict]:
        """Every run, oldest first: as_of, plans, invalid, error, warning, info, new, resolved."""
        with self._errors_named():
            return self._runs()

    def _runs(self) -> list[dict]:
        """Oldest first; `pipeline_value` and `unsupported_value` are None where a run did not
        record them (no stage pack, an older ssm, or an older database only listed)."""
        runs = []
        for row in self.connection.execute("SELECT * FROM runs ORDER BY as_of"):
            columns = row.keys()
            runs.append({"as_of": row["as_of"], "plans": row["plans"], "invalid": row["invalid"], "error": row["error"],
                         "warning": row["warning"], "info": row["info"], "new": row["new"],
                         "resolved": row["resolved"], "previous_run": row["previous_as_of"],
                         "recorded_at": row["recorded_at"],
                         "pipeline_value": _money(row["pipeline_value"]) if "pipeline_value" in columns else None,
                         "unsupported_value": _money(row["unsupported_value"])
                         if "unsupported_value" in columns else None})
        return runs


def _money(value: float | None) -> int | float | None:
    """A stored value as the pipeline review writes it: 1250000, not 1250000.0."""
    if value is None:
        return None
    return int(value) if float(value).is_integer() and abs(value) < 2**53 else value


# Findings at their plan's last valid check (temp.known) that are gone now, in a plan valid now.
_RESOLVED = """
    SELECT k.* FROM known k
    WHERE k.plan_key IN (SELECT plan_key FROM plans WHERE run_id = :run AND valid)
      AND NOT EXISTS (SELECT 1 FROM findings f WHERE f.run_id = :run AND f.fingerprint = k.fingerprint)"""
