"""The audit's memory does not grow with the portfolio: results are spooled to disk, not kept.

The parent process used to hold every plan's result, the page's view of every account and
finding, and the whole JSON document at once: ten times the plans took ten times that memory.
Now each result goes to the spool as it arrives and the reports are streamed from it, so the
peak of Python memory while auditing 1,000 plans is that of auditing 100 (the list of file
names is the caller's).
"""

from __future__ import annotations

import json
import tracemalloc
from datetime import date

import pytest

from ssm_rules.audit import run_audit, runner
from test_audit import fake_factory

OWNERS = ("jane.doe", "sam.lee", "ana.maric")


def portfolio(directory, count: int) -> list[str]:
    """`count` plans for the fake checker (see test_audit): two findings each, one in 50 invalid."""
    directory.mkdir(parents=True)
    files = []
    for number in range(count):
        spec = {"account": f"acct-{number:05}", "name": f"Account {number}", "owner": OWNERS[number % 3],
                "findings": [{"rule": "SSM-BDU-001", "subject": f"o{number}", "message": f"Plan {number} " * 8},
                             {"rule": "SSM-REL-002", "severity": "warning", "owner": OWNERS[(number + 1) % 3],
                              "line": number % 97 + 1}]}
        if number % 50 == 7:
            spec["errors"] = ["unknown key `ownr`"]
        files.append(directory / f"p{number:05}.json")
        files[-1].write_text(json.dumps(spec))
    return [str(file) for file in files]


def peak_while_auditing(directory, files: list[str]) -> int:
    """Peak Python memory (bytes) of an audit with history, compared with the night before."""
    directory.mkdir(exist_ok=True)
    history = directory / "history.sqlite"
    run_audit(files[::2], directory / "report", date(2026, 11, 26), history_db=history, jobs=1)
    tracemalloc.start()
    try:
        run_audit(files, directory / "report", date(2026, 11, 27), history_db=history, jobs=1)
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


@pytest.mark.slow  # a resource budget, and 15 s; bench/run.py measures the whole process tree's RSS
def test_peak_memory_does_not_grow_with_the_number_of_plans(tmp_path, monkeypatch):
    monkeypatch.setattr(runner, "make_checker", fake_factory)
    small, large = tmp_path / "small", tmp_path / "large"
    small_files, large_files = portfolio(small / "plans", 100), portfolio(large / "plans", 1000)
    # Warm up first: imports, compiled templates and other one-off caches are not the portfolio's.
    peak_while_auditing(tmp_path / "warm-up", small_files[:20])
    small_peak = peak_while_auditing(small, small_files)
    large_peak = peak_while_auditing(large, large_files)
    # Measured: about 150 bytes a plan more (SQLite's own memory is not Python's, so not counted);
    # results kept per plan would add a few kilobytes a plan.
    assert large_peak - small_peak < 600_000, (small_peak, large_peak)


def test_the_spool_bounds_sqlites_cache_and_sorts(tmp_path):
    """SQLite's page cache, and each sort's memory, follow the cache size: the default let the
    sorts of a larger portfolio take more memory; the spool caps it (on the history's connection
    too, while the spool is attached, and gives that connection its own setting back)."""
    import sqlite3

    from ssm_rules.audit.spool import CACHE_KIB, Spool

    with Spool(tmp_path / "spool.sqlite") as spool:
        assert spool.connection.execute("PRAGMA cache_size").fetchone()[0] == -CACHE_KIB
        history = sqlite3.connect(tmp_path / "history.sqlite", isolation_level=None)
        history.execute("PRAGMA cache_size = -4000")
        with spool.attached_to(history):
            assert history.execute("PRAGMA main.cache_size").fetchone()[0] == -CACHE_KIB
            assert history.execute("PRAGMA spool.cache_size").fetchone()[0] == -CACHE_KIB
        assert history.execute("PRAGMA main.cache_size").fetchone()[0] == -4000
        history.close()


@pytest.mark.parametrize("whole", [False, True])
def test_rows_read_whole_end_their_query_before_the_first_row_is_made(tmp_path, whole):
    """An owner's actions are a query run while the owners' list is read: read whole, the
    owners' query (and its sort) is over by then. SQLite refuses to drop a table that a
    running query reads, so dropping it while making the first row tells the two apart."""
    import sqlite3

    from ssm_rules.audit.spool import Rows

    db = sqlite3.connect(tmp_path / "rows.sqlite", isolation_level=None)
    db.executescript("CREATE TABLE t (x); INSERT INTO t VALUES (2), (1), (3);")

    def make(row):
        db.execute("DROP TABLE IF EXISTS t")
        return row["x"]

    rows = Rows(db, "SELECT x FROM t ORDER BY x", make=make, whole=whole)
    if whole:
        assert list(rows) == [1, 2, 3]
    else:
        with pytest.raises(sqlite3.OperationalError, match="locked"):
            list(rows)
    db.close()
