"""Three years of nightly audits in the history database: does recording a run stay cheap?

    python bench/history.py [--runs 1100] [--plans 1000] [--findings 5] [--db FILE]

Simulates a portfolio of --plans plans audited every night for --runs nights (1,100: three
years), through the same code as `ssm audit --history`: each night's results are spooled
(`ssm_rules.audit.spool`) and recorded (`History.recording`). The portfolio changes as real
ones do: each plan has about --findings open findings; every night about one finding in fifty
is fixed and as many new ones appear, one plan in a hundred is invalid for a few nights, and a
few plans a month join or leave the portfolio.

Prints the time to record a night (median of the nights around it) after one month, one year,
two and three years, the ratio of the last to the first (the target: at most 2.0), and the size
of the database. Deterministic: the same arguments give the same portfolio.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import tempfile
import time
from datetime import date, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from ssm_rules.audit.history import History  # noqa: E402
from ssm_rules.audit.runner import AuditedPlan  # noqa: E402
from ssm_rules.audit.spool import Spool  # noqa: E402

START = date(2024, 1, 1)
RULES = [f"SSM-BDU-{number:03d}" for number in range(1, 16)] + [f"SSM-REL-{number:03d}" for number in range(1, 6)]
CHECKPOINTS = {"one month": 31, "one year": 365, "two years": 730, "three years": 1100}
WINDOW = 5  # nights around a checkpoint whose median is reported


class Portfolio:
    """The plans and their open findings, changed a little every night."""

    def __init__(self, plans: int, findings: int, seed: int = 2026):
        self.random = random.Random(seed)
        self.findings_per_plan = findings
        self.next_plan = 0
        self.plans: dict[str, list[tuple[str, str]]] = {}  # account -> [(rule, subject)]
        self.invalid: dict[str, int] = {}  # account -> nights left invalid
        for _ in range(plans):
            self._add_plan()

    def _add_plan(self) -> None:
        account = f"account-{self.next_plan:05d}"
        self.next_plan += 1
        count = max(0, round(self.random.gauss(self.findings_per_plan, 2)))
        self.plans[account] = [self._new_finding() for _ in range(count)]

    def _new_finding(self) -> tuple[str, str]:
        return self.random.choice(RULES), f"opp-{self.random.randrange(40)}"

    def night(self) -> None:
        for account, findings in self.plans.items():
            for index in range(len(findings)):
                if self.random.random() < 0.02:
                    findings[index] = self._new_finding()
            if account not in self.invalid and self.random.random() < 0.01:
                self.invalid[account] = self.random.randint(1, 4)
        self.invalid = {account: nights - 1 for account, nights in self.invalid.items() if nights > 1}
        if self.random.random() < 0.1:  # about three plans a month leave, three join
            del self.plans[self.random.choice(sorted(self.plans))]
            self._add_plan()

    def results(self) -> list[AuditedPlan]:
        results = []
        for account, findings in sorted(self.plans.items()):
            file = f"plans/{account}.yaml"
            if account in self.invalid:
                results.append(AuditedPlan(file=file, account=account, account_owner="sam", errors=[
                    {"message": "unknown key `ownr` in account: did you mean `owner`?",
                     "location": {"file": file, "line": 4, "column": 3, "path": "account.ownr"}}]))
                continue
            results.append(AuditedPlan(
                file=file, account=account, account_name=account.title(), account_owner="sam",
                outcome={"met": ["G80", "G81"], "missing": ["G82", "G83", "G84", "G85"]},
                findings=[_finding(file, rule, subject, index) for index, (rule, subject) in enumerate(findings)]))
        return results


def _finding(file: str, rule: str, subject: str, index: int) -> dict:
    return {"rule": rule, "severity": ("error", "warning", "info")[index % 3], "guidance": ["G60"],
            "message": f"Opportunity '{subject}' has no key decision leader ({rule}).",
            "subject": {"kind": "opportunity", "id": subject},
            "location": {"file": file, "line": 10 + index, "column": 5, "path": f"opportunities[{subject}].buying_unit"},
            "next_action": {"text": "Ask the sponsor to introduce the key decision leader.", "owner": "jane.doe"}}


def record_night(db: Path, as_of: date, results: list[AuditedPlan], scratch: Path) -> tuple[float, int]:
    """Spool the night's results as the audit does, then record them: (seconds, SQLite steps).

    The steps (thousands of SQLite virtual-machine instructions) measure the work whatever the
    machine's load; the seconds are what a user waits."""
    spool_file = scratch / "spool.sqlite"
    steps = [0]

    def count() -> int:
        steps[0] += 1
        return 0

    with Spool(spool_file) as spool:
        for seq, result in enumerate(results):
            spool.add(seq, result)
        spool.finish()
        started = time.perf_counter()
        with History(db) as history:
            history.connection.set_progress_handler(count, 1000)
            with history.recording(as_of, spool):
                pass
        elapsed = time.perf_counter() - started
    spool_file.unlink()
    return elapsed, steps[0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=1100)
    parser.add_argument("--plans", type=int, default=1000)
    parser.add_argument("--findings", type=int, default=5, help="open findings per plan, on average")
    parser.add_argument("--db", type=Path, help="keep the database here (default: a temporary file, removed)")
    args = parser.parse_args()

    portfolio = Portfolio(args.plans, args.findings)
    checkpoints = {name: night for name, night in CHECKPOINTS.items() if night <= args.runs}
    timed = {night for at in checkpoints.values() for night in range(max(1, at - WINDOW + 1), at + 1)}
    with tempfile.TemporaryDirectory() as scratch_name:
        scratch = Path(scratch_name)
        db = args.db or scratch / "history.sqlite"
        if db.exists():
            sys.exit(f"{db} exists: give a new path")
        times: dict[int, float] = {}
        steps: dict[int, int] = {}
        started = time.perf_counter()
        for night in range(1, args.runs + 1):
            elapsed, work = record_night(db, START + timedelta(days=night - 1), portfolio.results(), scratch)
            if night in timed:
                times[night], steps[night] = elapsed, work
            if night % 100 == 0:
                print(f"  night {night}: {elapsed * 1000:.0f} ms ({work / 1000:.1f} M steps) to record, database "
                      f"{os.path.getsize(db) / 2**20:.0f} MiB ({time.perf_counter() - started:.0f} s so far)",
                      file=sys.stderr)
            portfolio.night()
        size = os.path.getsize(db)

    print(f"History of {args.runs} nightly runs of {args.plans} plans (~{args.findings} open findings each):")
    medians, work = {}, {}
    for name, at in checkpoints.items():
        nights = range(max(1, at - WINDOW + 1), at + 1)
        medians[name] = statistics.median(times[night] for night in nights)
        work[name] = statistics.median(steps[night] for night in nights)
        print(f"  recording a run after {name} (night {at}): {medians[name] * 1000:.0f} ms, "
              f"{work[name] / 1000:.1f} M SQLite steps (medians of nights {nights[0]}-{at})")
    names = list(medians)
    if len(names) > 1:
        print(f"  {names[-1]} / {names[0]}: {medians[names[-1]] / medians[names[0]]:.2f} in time, "
              f"{work[names[-1]] / work[names[0]]:.2f} in steps (target: at most 2.0)")
    print(f"  database size: {size / 2**20:.0f} MiB ({size / args.runs / 2**10:.0f} KiB a run)")


if __name__ == "__main__":
    main()
