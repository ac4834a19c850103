"""The audit's results on disk: one SQLite file, so that memory does not grow with the portfolio.

The parent process writes each plan's result here as soon as a worker sends it (`Spool.add`)
and keeps nothing of it: a portfolio of 10,000 plans takes no more memory than one of 1,000.
Afterwards the history (history.py) works on the spool with SQL, ATTACHed to its own database,
and the reports (view.py, report.py) read it back a row at a time, in the order each section shows.

    audit_plans     one row per plan; `seq` is its position among the input files (results
                    arrive in any order; ORDER BY seq is the input order)
    audit_findings  one row per finding; `idx` is its index in the plan (audit.json's order),
                    `pos` its place in the plan's findings as the page sorts them
    audit_deals     one row per open opportunity of a valid plan (the pipeline section); `idx` is
                    its place among the plan's opportunities
    audit_resolved  findings this run resolved (written by the history, in the page's order)
    audit_repaired  plan keys valid again after being invalid (written by the history)

The tables are named audit_* so that they do not clash with the history's own when attached.
The spool is scratch: written without a journal or fsync, in a temporary directory that the
audit removes when it ends (see files.scratch_directory).
"""

from __future__ import annotations

import json
import sqlite3
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable, Iterator

from ssm_rules.severity import SEVERITIES, severity_rank

NO_OWNER = "(no owner)"

SCHEMA = """
CREATE TABLE audit_plans (
    seq           INTEGER PRIMARY KEY,        -- position among the input files
    file          TEXT NOT NULL,
    plan_key      TEXT NOT NULL,              -- account ID, or the file (the history's identity)
    account       TEXT,
    name          TEXT NOT NULL,              -- as the page names it: name, else ID, else file
    name_lower    TEXT NOT NULL,              -- Python's lower(): SQLite's knows only ASCII
    owner         TEXT,                       -- the account owner
    owner_label   TEXT NOT NULL,              -- the owner, or NO_OWNER (whose action fixing it is)
    owner_label_lower TEXT NOT NULL,
    valid         INTEGER NOT NULL,
    document      TEXT NOT NULL,              -- audit.json's plan object (compact JSON), no history
    errors        TEXT NOT NULL,              -- JSON [{message, where}]
    outcome       TEXT,                       -- JSON {met, missing} of a valid plan, or NULL
    met_count     INTEGER,
    outcome_total INTEGER,
    error         INTEGER NOT NULL,           -- open findings by severity
    warning       INTEGER NOT NULL,
    info          INTEGER NOT NULL,
    findings      INTEGER NOT NULL,
    invalid_since TEXT,                       -- with history: an invalid plan's first invalid run
    team          TEXT NOT NULL DEFAULT '[]'  -- JSON: every team member the plan names (--owner)
);
CREATE TABLE audit_findings (
    plan_seq      INTEGER NOT NULL,
    idx           INTEGER NOT NULL,
    pos           INTEGER NOT NULL,
    fingerprint   TEXT NOT NULL,
    severity      TEXT NOT NULL,
    sev_rank      INTEGER NOT NULL,           -- error 0, warning 1, info 2, anything else 3
    rule          TEXT NOT NULL,
    guidance      TEXT NOT NULL,              -- JSON list
    message       TEXT,
    subject_kind  TEXT,
    subject_id    TEXT,
    location      TEXT NOT NULL,              -- where: file:line:column
    path          TEXT,
    line,
    action        TEXT NOT NULL,
    owner         TEXT NOT NULL,              -- whose action: next_action.owner, else the account's
    owner_lower   TEXT NOT NULL,
    action_owner  TEXT,                       -- next_action.owner as given (the history keeps it)
    first_seen    TEXT,                       -- with history: ISO date
    is_new        INTEGER NOT NULL DEFAULT 0, -- with history: first seen in this run
    PRIMARY KEY (plan_seq, idx)
);
CREATE TABLE audit_deals (
    plan_seq      INTEGER NOT NULL,
    idx           INTEGER NOT NULL,
    document      TEXT NOT NULL,              -- JSON: an opportunity of `ssm pipeline --format json`
    owner         TEXT,
    value         REAL,
    claimed_stage TEXT NOT NULL,
    supported_stage TEXT,                     -- NULL: no outcome supports any milestone
    unsupported   INTEGER NOT NULL,           -- claimed past the evidence
    PRIMARY KEY (plan_seq, idx)
);
CREATE TABLE audit_resolved (
    severity      TEXT NOT NULL,
    account       TEXT,
    file          TEXT,
    rule          TEXT NOT NULL,
    message       TEXT NOT NULL,
    first_seen    TEXT NOT NULL
);
CREATE TABLE audit_repaired (
    plan_key      TEXT NOT NULL
);
"""

# Built once every result is in (faster than keeping them up to date row by row).
INDEXES = """
CREATE INDEX audit_plans_by_name ON audit_plans (name_lower, file);
CREATE INDEX audit_plans_by_account ON audit_plans (account, seq);
CREATE INDEX audit_findings_by_plan ON audit_findings (plan_seq, pos);
CREATE INDEX audit_findings_by_print ON audit_findings (fingerprint, plan_seq, idx);
CREATE INDEX audit_findings_by_owner ON audit_findings (owner);
CREATE INDEX audit_plans_invalid_by_owner ON audit_plans (owner_label) WHERE NOT valid;
"""


# SQLite's memory on a connection: its page cache, and for each sort (ORDER BY, GROUP BY, CREATE
# INDEX) the rows it holds before it spills a sorted run to a temporary file, up to the larger of
# the cache and 1 MiB. At the default (2 MiB) the sorts of 1,000 large plans' findings fit in
# memory and those of 10,000 plans' took twice as much: capped at 1 MiB, a sort of 1,000 plans
# already reaches the cap, so the audit's peak memory no longer grows with the portfolio (the
# reads are no slower: the spool is many times larger than either cache, the OS caches the file).
CACHE_KIB = 1024


def bound_memory(connection: sqlite3.Connection, schema: str = "main") -> None:
    """Cap `schema`'s page cache on `connection`, and with main's the sorts it runs (CACHE_KIB)."""
    connection.execute(f"PRAGMA {schema}.cache_size = -{CACHE_KIB}")


def where(location: dict, file: str) -> str:
    """A location as the page sorts and shows it: file:line:column."""
    parts = [str(location.get("file") or file)]
    for key in ("line", "column"):
        if location.get(key):
            parts.append(str(location[key]))
    return ":".join(parts)


class Spool:
    """A spool file: `add` each result, `finish`, then read it (`db`) until `close`."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.connection = sqlite3.connect(self.path, isolation_level=None)
        self.db = self.connection  # where the reports read; the history's connection while attached
        for pragma in ("journal_mode = OFF", "synchronous = OFF"):  # scratch: a crash discards it anyway
            self.connection.execute(f"PRAGMA {pragma}")
        bound_memory(self.connection)
        self.connection.executescript(SCHEMA)
        self.connection.execute("BEGIN")

    def __enter__(self) -> Spool:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        self.connection.close()

    def add(self, seq: int, plan) -> None:
        """Write one plan's result (a runner.AuditedPlan); `seq` is its position among the inputs."""
        self.insert(prepare(seq, plan))

    def insert(self, prepared: tuple[tuple, list[list], list[tuple]]) -> None:
        """Write one plan's rows, made by `prepare` (perhaps in the worker process that checked it)."""
        plan_row, finding_rows, deal_rows = prepared
        self.connection.execute(
            "INSERT INTO audit_plans (seq, file, plan_key, account, name, name_lower, owner, owner_label, owner_label_lower,"
            " valid, document,"
            " errors, outcome, met_count, outcome_total, error, warning, info, findings, team)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", plan_row)
        self.connection.executemany(
            "INSERT INTO audit_deals (plan_seq, idx, document, owner, value, claimed_stage, supported_stage, unsupported)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?)", deal_rows)
        self.connection.executemany(
            "INSERT INTO audit_findings (plan_seq, idx, pos, fingerprint, severity, sev_rank, rule, guidance, message,"
            " subject_kind, subject_id, location, path, line, action, owner, owner_lower, action_owner)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", finding_rows)

    def finish(self) -> None:
        """Every result is in: commit and index, ready to be read."""
        self.connection.execute("COMMIT")
        self.connection.executescript(INDEXES)
        self.connection.execute("ANALYZE")

    @contextmanager
    def attached_to(self, connection: sqlite3.Connection) -> Iterator[None]:
        """Make the spool's tables visible to `connection` (the history's), and read through it.

        The history writes into the spool within its own transaction; only that connection sees
        those writes before it commits, so the reports rendered meanwhile read through it too.
        """
        connection.execute("ATTACH DATABASE ? AS spool", (str(self.path),))
        main_cache = connection.execute("PRAGMA main.cache_size").fetchone()[0]
        try:
            for pragma in ("journal_mode = OFF", "synchronous = OFF"):
                connection.execute(f"PRAGMA spool.{pragma}")
            # The reports' sorts now run on `connection`, bounded by its main database's cache.
            bound_memory(connection, "spool")
            bound_memory(connection)
            self.db = connection
            yield
        finally:
            self.db = self.connection
            connection.execute(f"PRAGMA main.cache_size = {int(main_cache)}")
            connection.execute("DETACH DATABASE spool")


def prepare(seq: int, plan) -> tuple[tuple, list[list], list[tuple]]:
    """One plan's spool rows (plain data): the Python side of `Spool.add`, without the database.

    The audit calls it in the worker that checked the plan (runner.check_plans' `prepare`), so
    the parent, which shares the cores with the workers, only inserts.
    """
    from ssm_rules.audit.history import plan_fingerprints

    name = plan.account_name or plan.account or plan.file
    owner_label = plan.account_owner or NO_OWNER
    rows = [_finding_row(seq, index, finding, plan, print_)
            for index, (finding, print_) in enumerate(zip(plan.findings, plan_fingerprints(plan)))]
    # `pos`: the page lists a plan's findings worst first, then by rule and place (a stable sort).
    for pos, index in enumerate(sorted(range(len(rows)), key=lambda i: (rows[i][5], rows[i][6], rows[i][11]))):
        rows[index][2] = pos
    counts = {severity: sum(1 for row in rows if row[4] == severity) for severity in SEVERITIES}
    outcome = plan.outcome if plan.valid else None
    met = len(outcome.get("met", [])) if outcome is not None else None
    missing = len(outcome.get("missing", [])) if outcome is not None else None
    errors = [{"message": error.get("message", ""), "where": where(error.get("location") or {}, plan.file)}
              for error in plan.errors]
    plan_row = (seq, plan.file, plan.key, plan.account, name, name.lower(), plan.account_owner, owner_label,
                owner_label.lower(), int(plan.valid),
                json.dumps(_document(plan)), json.dumps(errors), None if outcome is None else json.dumps(outcome),
                met, None if outcome is None else met + missing, counts["error"], counts["warning"], counts["info"],
                len(rows), json.dumps(list(plan.team)))
    return plan_row, rows, [_deal_row(seq, index, deal) for index, deal in enumerate(plan.deals if plan.valid else ())]


def _deal_row(seq: int, index: int, deal: dict) -> tuple:
    from ssm_rules.review.deals import claimed_past_evidence

    claimed, supported = deal["claimed_stage"], deal.get("supported_stage")
    unsupported = claimed_past_evidence(claimed, supported)
    return (seq, index, json.dumps(deal), deal.get("owner"), deal.get("value"), claimed, supported, int(unsupported))


def _finding_row(seq: int, index: int, finding: dict, plan, fingerprint: str) -> list:
    location = finding.get("location") or {}
    action = finding.get("next_action") or {}
    subject = finding.get("subject") or {}
    owner = action.get("owner") or plan.account_owner or NO_OWNER
    severity = finding.get("severity", "info")
    return [seq, index, 0, fingerprint, severity, severity_rank(severity), finding.get("rule", ""),
            json.dumps(list(finding.get("guidance") or [])), finding.get("message", ""), subject.get("kind"),
            None if subject.get("id") is None else str(subject.get("id")), where(location, plan.file),
            location.get("path"), location.get("line"), action.get("text") or "", owner, owner.lower(),
            action.get("owner")]


def _document(plan) -> dict:
    """audit.json's plan object, before the history adds `first_seen` and `invalid_since`."""
    document = plan.to_json()
    if plan.account_owner is not None:
        document["account_owner"] = plan.account_owner
    document["findings"] = plan.findings  # (an invalid plan has none; if it had, they would show)
    return document


class Rows:
    """A query's results as a sequence the templates can use like a list: iterated (the query
    runs again each time, a row at a time), `len` (a COUNT), truth, and `[:n]` (a LIMIT).

    `make(row)` turns a row (sqlite3.Row) into what the template sees. With `whole`, every row
    is read before the first is made, which ends the query first: for a short list whose rows
    run queries of their own (an owner's actions), so that the two sorts are not held at once.
    """

    def __init__(self, db: sqlite3.Connection, sql: str, params: dict | tuple = (),
                 make: Callable[[sqlite3.Row], Any] = lambda row: row, limit: int | None = None,
                 whole: bool = False):
        self.db, self.sql, self.params, self.make, self.limit, self.whole = db, sql, params, make, limit, whole

    def _query(self) -> str:
        return self.sql if self.limit is None else f"{self.sql} LIMIT {int(self.limit)}"

    def __iter__(self) -> Iterator[Any]:
        cursor = self.db.cursor()
        cursor.row_factory = sqlite3.Row
        try:
            rows = cursor.execute(self._query(), self.params)
            if self.whole:
                rows = rows.fetchall()
                cursor.close()  # (frees the statement's sorts before the rows' own queries run)
            for row in rows:
                yield self.make(row)
        finally:
            cursor.close()

    def __len__(self) -> int:
        return self.db.execute(f"SELECT count(*) FROM ({self._query()})", self.params).fetchone()[0]

    def __bool__(self) -> bool:
        return self.db.execute(f"SELECT EXISTS ({self._query()})", self.params).fetchone()[0] == 1

    def __getitem__(self, part: slice) -> Rows:
        if not isinstance(part, slice) or part.start is not None or part.step is not None or part.stop is None:
            raise TypeError("Rows supports only [:n]")
        limit = part.stop if self.limit is None else min(part.stop, self.limit)
        return Rows(self.db, self.sql, self.params, self.make, max(limit, 0), self.whole)
