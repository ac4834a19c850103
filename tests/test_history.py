"""The audit history (SQLite): new, resolved, first seen, same-date re-runs, crash safety."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import tempfile
import textwrap
import time
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import pytest

from ssm_rules import baseline
from ssm_rules.audit.history import SCHEMA_VERSION, History, RunDelta, fingerprint
from ssm_rules.audit.runner import AuditedPlan
from ssm_rules.audit.spool import Spool
from ssm_rules.cli import main
from ssm_rules.errors import UsageError

NIGHT1, NIGHT2, NIGHT3 = date(2026, 11, 25), date(2026, 11, 26), date(2026, 11, 27)


def finding(rule: str, subject: str = "omni", *, severity: str = "error", line: int = 10, path: str = "opportunities[0]",
            message: str | None = None, owner: str = "jane.doe") -> dict:
    return {"rule": rule, "severity": severity, "guidance": ["G60"], "message": message or f"{rule} on {subject}",
            "subject": {"kind": "opportunity", "id": subject},
            "location": {"file": "plans/x.yaml", "line": line, "column": 5, "path": path},
            "next_action": {"text": f"Fix {rule}", "owner": owner}}


def plan(account: str, *findings: dict, valid: bool = True) -> AuditedPlan:
    if not valid:
        return AuditedPlan(file=f"plans/{account}.yaml", account=account, account_owner="sam",
                           errors=[{"message": "unknown key `ownr`", "location": {"file": f"plans/{account}.yaml",
                                                                                  "line": 5, "column": 3, "path": "account.ownr"}}])
    return AuditedPlan(file=f"plans/{account}.yaml", account=account, account_owner="sam", findings=list(findings),
                       outcome={"met": ["G80"], "missing": ["G81"]})


@contextmanager
def spooled(plans):
    """A finished spool holding `plans`, as the audit builds it."""
    with tempfile.TemporaryDirectory() as scratch, Spool(Path(scratch) / "spool.sqlite") as spool:
        for seq, audited in enumerate(plans):
            spool.add(seq, audited)
        spool.finish()
        yield spool


@dataclass
class Recorded:
    """A recorded run: the delta, and what the history wrote into the spool for the reports."""

    run: RunDelta
    first_seen: dict  # (file, finding index) -> date
    new: list  # [{file, index}] of the findings tagged new
    resolved: list  # [{account, file, rule, severity, first_seen, days_open}], as the page lists them
    invalid_since: dict  # file -> date
    repaired: list  # plan keys


def record(db, as_of, plans, pipeline=None) -> Recorded:
    with spooled(plans) as spool:
        with History(db) as history, history.recording(as_of, spool, pipeline=pipeline) as delta:
            pass
        rows = spool.db.execute
        return Recorded(
            run=delta,
            first_seen={(file, index): date.fromisoformat(seen) for file, index, seen in rows(
                "SELECT p.file, f.idx, f.first_seen FROM audit_findings f JOIN audit_plans p ON p.seq = f.plan_seq")},
            new=[{"file": file, "index": index} for file, index in rows(
                "SELECT p.file, f.idx FROM audit_findings f JOIN audit_plans p ON p.seq = f.plan_seq"
                " WHERE f.is_new ORDER BY f.plan_seq, f.idx")],
            resolved=[{"account": account, "file": file, "rule": rule, "severity": severity,
                       "first_seen": date.fromisoformat(seen), "days_open": (as_of - date.fromisoformat(seen)).days}
                      for account, file, rule, severity, seen in rows(
                          "SELECT account, file, rule, severity, first_seen FROM audit_resolved ORDER BY rowid")],
            invalid_since={file: date.fromisoformat(since) for file, since in rows(
                "SELECT file, invalid_since FROM audit_plans WHERE NOT valid")},
            repaired=[key for key, in rows("SELECT plan_key FROM audit_repaired ORDER BY plan_key")])


def test_fingerprint_ignores_the_line_and_is_the_baselines():
    acme = plan("acme")
    assert fingerprint(acme, finding("SSM-BDU-001", line=10)) == fingerprint(acme, finding("SSM-BDU-001", line=99))
    assert fingerprint(acme, finding("SSM-BDU-001")) != fingerprint(acme, finding("SSM-BDU-001", subject="other"))
    assert fingerprint(acme, finding("SSM-BDU-001")) != fingerprint(plan("globex"), finding("SSM-BDU-001"))
    assert fingerprint(acme, finding("SSM-BDU-001")) == baseline.fingerprint(
        "acme", "SSM-BDU-001", "opportunity", "omni", "opportunities[0]")


def test_first_run_everything_is_new(tmp_path):
    delta = record(tmp_path / "h.db", NIGHT1, [plan("acme", finding("SSM-BDU-001")), plan("globex")])
    assert delta.run.previous_run is None
    assert delta.run.to_json() == {"previous_run": None, "new": 1, "resolved": 0, "newly_invalid": 0, "repaired": 0,
                               "runs": 1}
    assert delta.first_seen == {("plans/acme.yaml", 0): NIGHT1}


def test_two_nights_one_plan_fixed_one_plan_broken(tmp_path):
    db = tmp_path / "h.db"
    record(db, NIGHT1, [plan("acme", finding("SSM-BDU-001"), finding("SSM-REL-002", severity="warning")),
                        plan("globex")])
    # Night 2: acme fixed its error (the warning stays, on another line); globex got a new error.
    delta = record(db, NIGHT2, [plan("acme", finding("SSM-REL-002", severity="warning", line=40)),
                                plan("globex", finding("SSM-BDU-003", subject="cloud"))])
    assert delta.run.previous_run == NIGHT1
    assert delta.run.to_json()["new"] == 1 and delta.run.to_json()["resolved"] == 1
    assert delta.new == [{"file": "plans/globex.yaml", "index": 0}]
    [resolved] = delta.resolved
    assert (resolved["account"], resolved["rule"], resolved["days_open"]) == ("acme", "SSM-BDU-001", 1)
    assert resolved["first_seen"] == NIGHT1
    assert delta.first_seen[("plans/acme.yaml", 0)] == NIGHT1  # still open since night 1
    assert delta.first_seen[("plans/globex.yaml", 0)] == NIGHT2
    with History(db) as history:
        runs = history.runs()
    assert [(r["as_of"], r["error"], r["warning"], r["new"], r["resolved"]) for r in runs] == [
        ("2026-11-25", 1, 1, 2, 0), ("2026-11-26", 1, 1, 1, 1)]


def test_an_invalid_plan_resolves_nothing_and_keeps_its_findings_age(tmp_path):
    db = tmp_path / "h.db"
    record(db, NIGHT1, [plan("acme", finding("SSM-BDU-001"))])
    delta = record(db, NIGHT2, [plan("acme", valid=False)])
    assert delta.resolved == [] and delta.new == []
    assert delta.invalid_since == {"plans/acme.yaml": NIGHT2}
    assert delta.run.to_json()["newly_invalid"] == 1
    delta = record(db, NIGHT3, [plan("acme", finding("SSM-BDU-001"))])
    assert delta.new == [] and delta.resolved == []
    assert delta.first_seen[("plans/acme.yaml", 0)] == NIGHT1  # not new: the plan was only unreadable
    assert delta.repaired == ["acme"]


def test_an_invalid_streak_counts_from_its_first_night(tmp_path):
    db = tmp_path / "h.db"
    record(db, NIGHT1, [plan("acme", valid=False)])
    delta = record(db, NIGHT2, [plan("acme", valid=False)])
    assert delta.invalid_since == {"plans/acme.yaml": NIGHT1}
    assert delta.run.to_json()["newly_invalid"] == 0


def test_a_rerun_for_the_same_date_replaces_the_run(tmp_path):
    db = tmp_path / "h.db"
    record(db, NIGHT1, [plan("acme", finding("SSM-BDU-001"))])
    record(db, NIGHT2, [plan("acme", finding("SSM-BDU-001")), plan("globex", finding("SSM-BDU-002"))])
    delta = record(db, NIGHT2, [plan("acme"), plan("globex", finding("SSM-BDU-002"))])
    with History(db) as history:
        runs = history.runs()
    assert [run["as_of"] for run in runs] == ["2026-11-25", "2026-11-26"]
    assert (runs[1]["error"], runs[1]["new"], runs[1]["resolved"]) == (1, 1, 1)
    assert delta.run.previous_run == NIGHT1  # compared with the night before, not with the replaced run
    rows = sqlite3.connect(db).execute("SELECT count(*) FROM findings f JOIN runs r ON r.id = f.run_id "
                                       "WHERE r.as_of = '2026-11-26'").fetchone()
    assert rows == (1,)  # the replaced run's findings are gone with it


def test_a_run_for_an_earlier_date_updates_the_later_runs(tmp_path):
    db = tmp_path / "h.db"
    record(db, NIGHT1, [plan("acme", finding("SSM-BDU-001"))])
    record(db, NIGHT3, [plan("acme", finding("SSM-BDU-001"))])
    record(db, NIGHT2, [plan("acme")])  # recorded late: the finding was gone on night 2
    with History(db) as history:
        runs = history.runs()
    assert [(r["as_of"], r["new"], r["resolved"], r["previous_run"]) for r in runs] == [
        ("2026-11-25", 1, 0, None), ("2026-11-26", 0, 1, "2026-11-25"), ("2026-11-27", 1, 0, "2026-11-26")]
    first_seen = sqlite3.connect(db).execute(
        "SELECT first_seen FROM findings f JOIN runs r ON r.id = f.run_id WHERE r.as_of = '2026-11-27'").fetchall()
    assert first_seen == [("2026-11-27",)]


def test_a_new_fingerprint_function_does_not_make_old_findings_new(tmp_path, monkeypatch):
    db = tmp_path / "h.db"
    real = baseline.fingerprint
    monkeypatch.setattr(baseline, "fingerprint", lambda *parts: "old-" + real(*parts)[:20])
    record(db, NIGHT1, [plan("acme", finding("SSM-BDU-001"), finding("SSM-BDU-002"))])
    monkeypatch.setattr(baseline, "fingerprint", real)  # a new version of ssm
    delta = record(db, NIGHT2, [plan("acme", finding("SSM-BDU-001"), finding("SSM-BDU-003"))])
    assert [item["rule"] for item in delta.resolved] == ["SSM-BDU-002"]
    assert delta.new == [{"file": "plans/acme.yaml", "index": 1}]
    assert delta.first_seen[("plans/acme.yaml", 0)] == NIGHT1


def test_repeated_fingerprints_in_one_plan_do_not_collide(tmp_path):
    twice = plan("acme", finding("SSM-BDU-001", message="one"), finding("SSM-BDU-001", message="two"))
    delta = record(tmp_path / "h.db", NIGHT1, [twice])
    assert len(delta.new) == 2 and len(delta.first_seen) == 2


def test_an_exception_mid_run_leaves_the_history_as_it_was(tmp_path):
    db = tmp_path / "h.db"
    record(db, NIGHT1, [plan("acme", finding("SSM-BDU-001"))])
    record(db, NIGHT2, [plan("acme", finding("SSM-BDU-001"))])
    with pytest.raises(RuntimeError), spooled([plan("acme")]) as spool, History(db) as history, \
            history.recording(NIGHT2, spool):
        raise RuntimeError("the report could not be rendered")
    with History(db) as history:
        runs = history.runs()
    assert [(r["as_of"], r["error"]) for r in runs] == [("2026-11-25", 1), ("2026-11-26", 1)]


def test_a_process_killed_mid_run_leaves_the_history_as_it_was(tmp_path):
    db = tmp_path / "h.db"
    record(db, NIGHT1, [plan("acme", finding("SSM-BDU-001"))])
    before = sqlite3.connect(db).execute("SELECT * FROM runs").fetchall()
    # The child replaces night 1 and dies (no cleanup, no rollback) before committing.
    script = textwrap.dedent(f"""
        import os
        from datetime import date
        from ssm_rules.audit.history import History
        from ssm_rules.audit.runner import AuditedPlan
        from ssm_rules.audit.spool import Spool
        spool = Spool({str(tmp_path / "spool.sqlite")!r})
        spool.add(0, AuditedPlan(file="x.yaml", account="x"))
        spool.finish()
        with History({str(db)!r}) as history, history.recording(date(2026, 11, 25), spool):
            os._exit(9)
    """)
    child = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert child.returncode == 9, child.stderr
    assert sqlite3.connect(db).execute("SELECT * FROM runs").fetchall() == before
    with History(db) as history:
        assert [run["plans"] for run in history.runs()] == [1]


def test_the_schema_version_is_kept_and_checked(tmp_path):
    db = tmp_path / "h.db"
    record(db, NIGHT1, [plan("acme")])
    assert sqlite3.connect(db).execute("PRAGMA user_version").fetchone() == (SCHEMA_VERSION,)
    connection = sqlite3.connect(db)
    connection.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    connection.commit()
    connection.close()
    with pytest.raises(UsageError, match="schema version"):
        History(db)


def test_other_files_are_refused(tmp_path):
    other = tmp_path / "other.db"
    connection = sqlite3.connect(other)
    connection.execute("CREATE TABLE customers (id INTEGER)")
    connection.commit()
    connection.close()
    with pytest.raises(UsageError, match="not an ssm history database"):
        History(other)
    text = tmp_path / "notes.txt"
    text.write_text("hello, this is not SQLite at all " * 50)
    with pytest.raises(UsageError, match="not an ssm history database"):
        History(text)
    with pytest.raises(UsageError, match="no such directory"):
        History(tmp_path / "missing" / "h.db")


def test_history_command_lists_the_runs(runner, tmp_path):
    db = tmp_path / "h.db"
    record(db, NIGHT1, [plan("acme", finding("SSM-BDU-001"), finding("SSM-REL-002", severity="warning")),
                        plan("globex", valid=False)])
    record(db, NIGHT2, [plan("acme", finding("SSM-REL-002", severity="warning")), plan("globex", valid=False)])
    result = runner.invoke(main, ["history", "--db", str(db)])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0].split() == ["as", "of", "plans", "invalid", "error", "warning", "info", "new", "resolved",
                                "pipeline", "unsupported"]
    assert lines[1].split() == ["2026-11-25", "2", "1", "1", "1", "0", "-", "-", "-", "-"]  # no stage pack: no pipeline
    assert lines[2].split() == ["2026-11-26", "2", "1", "0", "1", "0", "0", "1", "-", "-"]
    result = runner.invoke(main, ["history", "--db", str(db), "--format", "json"])
    assert result.exit_code == 0, result.output
    document = json.loads(result.output)
    assert document["version"] == 1
    assert [(r["as_of"], r["error"], r["warning"], r["new"], r["resolved"]) for r in document["runs"]] == [
        ("2026-11-25", 1, 1, 2, 0), ("2026-11-26", 0, 1, 0, 1)]


def test_each_run_records_its_open_pipeline_and_unsupported_value(runner, tmp_path):
    from ssm_rules.review.deals import totals_of
    from test_review_formats import SAMPLE, WEIGHTS

    db = tmp_path / "h.db"
    record(db, NIGHT1, [plan("acme")])  # a run without the stage pack records none
    record(db, NIGHT2, [plan("acme")], pipeline=totals_of(SAMPLE, WEIGHTS))
    record(db, NIGHT3, [plan("acme")], pipeline=totals_of(SAMPLE[:2], WEIGHTS))
    runs = json.loads(runner.invoke(main, ["history", "--db", str(db), "--format", "json"]).output)["runs"]
    assert [(r["pipeline_value"], r["unsupported_value"]) for r in runs] == [
        (None, None), (200_000, 150_000), (150_000, 150_000)]
    lines = runner.invoke(main, ["history", "--db", str(db)]).output.splitlines()
    assert lines[2].split()[-2:] == ["200k", "150k"] and lines[1].split()[-2:] == ["-", "-"]
    with History(db) as history:  # the trend the audit page draws has them too
        assert history.runs()[1]["unsupported_value"] == 150_000


def test_a_version_2_history_gains_the_pipeline_columns_and_lists_before_it_does(runner, tmp_path):
    db = tmp_path / "h.db"
    version_1_database(db)
    with History(db) as history:  # now version 3; make it the version 2 an earlier ssm left
        pass
    connection = sqlite3.connect(db)
    connection.executescript("ALTER TABLE runs DROP COLUMN pipeline_value; ALTER TABLE runs DROP COLUMN "
                             "unsupported_value; PRAGMA user_version = 2;")
    connection.close()
    listed = runner.invoke(main, ["history", "--db", str(db), "--format", "json"])  # read-only: no migration
    assert listed.exit_code == 0, listed.output
    assert json.loads(listed.output)["runs"][0]["pipeline_value"] is None
    assert sqlite3.connect(db).execute("PRAGMA user_version").fetchone() == (2,)
    from ssm_rules.review.deals import totals_of
    from test_review_formats import SAMPLE, WEIGHTS

    record(db, NIGHT2, [plan("acme", finding("SSM-BDU-001"))], pipeline=totals_of(SAMPLE, WEIGHTS))
    assert sqlite3.connect(db).execute("PRAGMA user_version").fetchone() == (3,)
    with History(db) as history:
        assert [(run["as_of"], run["pipeline_value"]) for run in history.runs()] == [
            ("2026-11-25", None), ("2026-11-26", 200_000)]


def test_history_command_needs_an_existing_database(runner, tmp_path):
    result = runner.invoke(main, ["history", "--db", str(tmp_path / "nope.db")])
    assert result.exit_code == 2
    assert "no such history database" in result.output
    assert not (tmp_path / "nope.db").exists()  # listing never creates one


# ---- a history that lasts: versions, damage, concurrency, pruning ---------------------------

# The schema ssm wrote before version 2 (the plans of a run were found by joining `runs`).
SCHEMA_V1 = """
CREATE TABLE runs (id INTEGER PRIMARY KEY, as_of TEXT NOT NULL UNIQUE, recorded_at TEXT NOT NULL,
    plans INTEGER NOT NULL, invalid INTEGER NOT NULL, error INTEGER NOT NULL, warning INTEGER NOT NULL,
    info INTEGER NOT NULL, new INTEGER NOT NULL DEFAULT 0, resolved INTEGER NOT NULL DEFAULT 0, previous_as_of TEXT);
CREATE TABLE plans (run_id INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE, file TEXT NOT NULL,
    plan_key TEXT NOT NULL, account TEXT, owner TEXT, valid INTEGER NOT NULL, problems INTEGER NOT NULL DEFAULT 0,
    invalid_since TEXT, outcome_met INTEGER, outcome_total INTEGER, PRIMARY KEY (run_id, file));
CREATE INDEX plans_by_key ON plans (plan_key, valid);
CREATE TABLE findings (run_id INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE, fingerprint TEXT NOT NULL,
    plan_key TEXT NOT NULL, rule TEXT NOT NULL, severity TEXT NOT NULL, subject_kind TEXT, subject_id TEXT,
    path TEXT, message TEXT NOT NULL, owner TEXT, first_seen TEXT NOT NULL, PRIMARY KEY (run_id, fingerprint));
CREATE INDEX findings_by_plan ON findings (run_id, plan_key);
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
"""


def version_1_database(path: Path) -> None:
    """A history as version 1 left it: night 1, acme valid with one finding, globex invalid."""
    connection = sqlite3.connect(path)
    connection.executescript(SCHEMA_V1)
    print_ = fingerprint(plan("acme"), finding("SSM-BDU-001"))
    connection.executescript(f"""
        INSERT INTO runs VALUES (1, '2026-11-25', '2026-11-25T03:00:00+00:00', 2, 1, 1, 0, 0, 1, 0, NULL);
        INSERT INTO plans VALUES (1, 'plans/acme.yaml', 'acme', 'acme', 'sam', 1, 0, NULL, 1, 2);
        INSERT INTO plans VALUES (1, 'plans/globex.yaml', 'globex', 'globex', 'sam', 0, 1, '2026-11-25', NULL, NULL);
        INSERT INTO findings VALUES (1, '{print_}', 'acme', 'SSM-BDU-001', 'error', 'opportunity', 'omni',
                                     'opportunities[0]', 'SSM-BDU-001 on omni', 'jane.doe', '2026-11-25');
        INSERT INTO meta VALUES ('fingerprint_scheme', '{__import__("ssm_rules.audit.history").audit.history.fingerprint_scheme()}');
        PRAGMA user_version = 1;
    """)
    connection.commit()
    connection.close()


def test_a_version_1_history_is_migrated_and_keeps_its_meaning(tmp_path):
    db = tmp_path / "h.db"
    version_1_database(db)
    delta = record(db, NIGHT2, [plan("acme", finding("SSM-BDU-001")), plan("globex", valid=False)])
    assert sqlite3.connect(db).execute("PRAGMA user_version").fetchone() == (SCHEMA_VERSION,) == (3,)
    assert sqlite3.connect(db).execute("SELECT DISTINCT as_of FROM plans WHERE run_id = 1").fetchall() == \
        [("2026-11-25",)]
    # Night 1's finding is still open: not new, first seen on night 1; globex invalid since night 1.
    assert delta.run.new == 0 and delta.first_seen[("plans/acme.yaml", 0)] == NIGHT1
    assert delta.invalid_since == {"plans/globex.yaml": NIGHT1}


def test_a_migration_that_fails_leaves_the_older_database_as_it_was(tmp_path, monkeypatch):
    from ssm_rules.audit import history as history_module

    db = tmp_path / "h.db"
    version_1_database(db)
    monkeypatch.setitem(history_module.MIGRATIONS, 2, history_module.MIGRATIONS[2] + ";\nSELECT no_such_function()")
    with pytest.raises(UsageError, match=str(db)):
        History(db)
    connection = sqlite3.connect(db)
    assert connection.execute("PRAGMA user_version").fetchone() == (1,)
    assert "as_of" not in {row[1] for row in connection.execute("PRAGMA table_info(plans)")}


def test_listing_an_older_history_does_not_change_it(runner, tmp_path):
    db = tmp_path / "h.db"
    version_1_database(db)
    result = runner.invoke(main, ["history", "--db", str(db)])
    assert result.exit_code == 0, result.output
    assert result.output.splitlines()[1].split()[:2] == ["2026-11-25", "2"]
    assert sqlite3.connect(db).execute("PRAGMA user_version").fetchone() == (1,)


def test_a_newer_history_is_refused_with_a_clear_message(runner, tmp_path):
    db = tmp_path / "h.db"
    record(db, NIGHT1, [plan("acme")])
    connection = sqlite3.connect(db)
    connection.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    connection.commit()
    connection.close()
    for arguments in (["history", "--db", str(db)], ["history", "prune", "--db", str(db), "--keep-runs", "1"]):
        result = runner.invoke(main, arguments)
        assert result.exit_code == 2
        assert result.output == (f"ssm: {db}: the history database has schema version {SCHEMA_VERSION + 1}; this "
                                 f"ssm knows up to {SCHEMA_VERSION} (upgrade ssm-rules to read it)\n")


@pytest.mark.parametrize("change, message", [
    ("ALTER TABLE findings RENAME COLUMN message TO msg", "table `findings` has no column `message`"),
    ("DROP TABLE meta", "has no table `meta`"),
    ("ALTER TABLE plans DROP COLUMN as_of", "table `plans` has no column `as_of`"),
])
def test_a_history_whose_tables_were_changed_by_hand_is_named(runner, tmp_path, change, message):
    db = tmp_path / "h.db"
    record(db, NIGHT1, [plan("acme", finding("SSM-BDU-001"))])
    connection = sqlite3.connect(db)
    if "DROP COLUMN as_of" in change:
        connection.execute("DROP INDEX plans_by_key_date")
    connection.execute(change)
    connection.commit()
    connection.close()
    with pytest.raises(UsageError) as error:
        record(db, NIGHT2, [plan("acme")])
    assert str(error.value) == (f"{db}: the history database {message}: its tables were changed by hand or it is "
                                f"damaged; restore it from a backup")


def test_a_constraint_added_by_hand_is_named_not_a_crash(tmp_path):
    db = tmp_path / "h.db"
    record(db, NIGHT1, [plan("acme", finding("SSM-BDU-001"))])
    connection = sqlite3.connect(db)
    connection.execute("ALTER TABLE findings ADD COLUMN reviewer TEXT NOT NULL DEFAULT 'x'")
    connection.execute("CREATE TRIGGER no_new_runs BEFORE INSERT ON runs BEGIN SELECT RAISE(ABORT, 'frozen'); END")
    connection.commit()
    connection.close()
    with pytest.raises(UsageError, match="does not have the tables this ssm expects.*frozen"):
        record(db, NIGHT2, [plan("acme")])


def test_a_corrupted_history_is_named_as_such(tmp_path):
    db = tmp_path / "h.db"
    for night in (NIGHT1, NIGHT2):
        record(db, night, [plan(f"account-{n}", finding("SSM-BDU-001"), finding("SSM-REL-002", severity="warning"))
                           for n in range(300)])
    with open(db, "r+b") as stream:  # a disk fault: pages after the first overwritten with noise
        stream.seek(4096)
        stream.write(bytes(range(256)) * 64)
    with pytest.raises(UsageError, match=rf"{db}: the history database is corrupted \(SQLite: .*\); restore it"):
        record(db, NIGHT3, [plan("account-1")])


def test_a_link_or_a_fifo_is_never_used_as_the_history(runner, tmp_path):
    plans = tmp_path / "plans"
    plans.mkdir()
    (plans / "acme.yaml").write_text((Path(__file__).resolve().parent.parent / "facts" / "adriatel.yaml").read_text())
    real = tmp_path / "elsewhere.sqlite"
    record(real, NIGHT1, [plan("acme")])
    link = tmp_path / "h.sqlite"
    link.symlink_to(real)
    fifo = tmp_path / "h.fifo"
    os.mkfifo(fifo)
    for db, message in ((link, "is a symbolic link"), (fifo, "not a regular file")):
        result = runner.invoke(main, ["audit", str(plans), "--out", str(tmp_path / "report"), "--history", str(db),
                                      "--isolated", "--jobs", "1"])
        assert result.exit_code == 2, result.output
        assert f"ssm: {db}: {message}" in result.output


def test_a_stale_version_read_before_another_audit_created_the_schema_is_read_again(tmp_path, monkeypatch):
    """Two audits creating one database: the one that waited for the other's write lock must
    find the schema made, not make it a second time ("table runs already exists")."""
    db = tmp_path / "h.db"
    record(db, NIGHT1, [plan("acme")])  # the other audit, done first
    reads = []  # the first read is what this audit saw before the other one committed
    real_version = History._version
    monkeypatch.setattr(History, "_version", lambda self: 0 if not reads.append(1) and len(reads) == 1
                        else real_version(self))
    with History(db) as history:
        assert [run["as_of"] for run in history.runs()] == ["2026-11-25"]


def test_audits_creating_one_history_at_the_same_moment_all_succeed(tmp_path):
    script = textwrap.dedent("""
        import sys, time
        from datetime import date
        from ssm_rules.audit.history import History
        from ssm_rules.audit.runner import AuditedPlan
        from ssm_rules.audit.spool import Spool
        db, spool_file, start = sys.argv[1], sys.argv[2], float(sys.argv[3])
        spool = Spool(spool_file)
        spool.add(0, AuditedPlan(file="x.yaml", account="x"))
        spool.finish()
        time.sleep(max(0.0, start - time.time()))  # every process opens the new database together
        with History(db) as history, history.recording(date(2026, 11, 25), spool):
            pass
        print("ok")
    """)
    for trial in range(4):
        db = tmp_path / f"h{trial}.db"
        start = time.time() + 1.0  # after every process has imported ssm
        processes = [subprocess.Popen([sys.executable, "-c", script, str(db), str(tmp_path / f"s{trial}-{n}.sqlite"),
                                       str(start)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
                     for n in range(3)]
        outcomes = [process.communicate(timeout=120) for process in processes]
        assert all(process.returncode == 0 for process in processes), outcomes
        assert sqlite3.connect(db).execute("PRAGMA user_version").fetchone() == (SCHEMA_VERSION,)


def test_prune_keeps_days_or_runs_in_one_transaction(runner, tmp_path):
    db = tmp_path / "h.db"
    nights = [date(2026, 11, day) for day in (1, 2, 10, 20, 25, 26, 27)]
    for night in nights:
        record(db, night, [plan("acme", finding("SSM-BDU-001"))])
    result = runner.invoke(main, ["history", "prune", "--db", str(db), "--keep-days", "8"])
    assert result.exit_code == 0, result.output
    assert result.output == "Removed 3 runs (2026-11-01 to 2026-11-10); kept 4 (2026-11-20 to 2026-11-27).\n"
    result = runner.invoke(main, ["history", "--db", str(db), "prune", "--keep-runs", "2"])
    assert result.output == "Removed 2 runs (2026-11-20 to 2026-11-25); kept 2 (2026-11-26 to 2026-11-27).\n"
    with History(db) as history:
        assert [run["as_of"] for run in history.runs()] == ["2026-11-26", "2026-11-27"]
    assert sqlite3.connect(db).execute("SELECT count(*) FROM findings").fetchone() == (2,)  # cascaded
    # The finding open since November 1st is still open since then, and not new tonight.
    delta = record(db, date(2026, 11, 28), [plan("acme", finding("SSM-BDU-001"))])
    assert delta.run.new == 0 and delta.first_seen[("plans/acme.yaml", 0)] == date(2026, 11, 1)


def test_prune_needs_something_to_keep_and_an_existing_database(runner, tmp_path):
    result = runner.invoke(main, ["history", "prune", "--db", str(tmp_path / "h.db"), "--keep-days", "3"])
    assert result.exit_code == 2 and "no such history database" in result.output
    assert not (tmp_path / "h.db").exists()
    record(tmp_path / "h.db", NIGHT1, [plan("acme")])
    result = runner.invoke(main, ["history", "prune", "--db", str(tmp_path / "h.db")])
    assert result.exit_code == 2
    assert result.output == "ssm: say what to keep: --keep-days N, --keep-runs N, or both\n"


def test_a_failed_prune_removes_nothing(tmp_path, monkeypatch):
    db = tmp_path / "h.db"
    for night in (NIGHT1, NIGHT2, NIGHT3):
        record(db, night, [plan("acme", finding("SSM-BDU-001"))])
    with History(db, mode="write") as history:
        real_execute = history.connection.executemany

        def failing(sql, rows):
            real_execute(sql, list(rows)[:1])  # the first run goes ...
            raise sqlite3.OperationalError("disk I/O error")  # ... then the disk fails

        monkeypatch.setattr(history, "connection", _Wrapper(history.connection, executemany=failing))
        with pytest.raises(UsageError, match="disk I/O error"):
            history.prune(keep_runs=1)
    with History(db) as history:
        assert len(history.runs()) == 3


class _Wrapper:
    """A connection whose named methods are replaced."""

    def __init__(self, connection, **methods):
        self._connection, self._methods = connection, methods

    def __getattr__(self, name):
        return self._methods.get(name) or getattr(self._connection, name)
