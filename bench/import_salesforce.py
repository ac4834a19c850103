"""Benchmark `ssm import salesforce`: a team's import, its weekly re-import, one account out of a
whole organisation's export.

    python bench/import_salesforce.py             # 500 accounts; org export of 300 MB (~5 min)
    python bench/import_salesforce.py --quick     # 100 accounts; org export of 60 MB (~1 min)

Each figure is the real command line in a subprocess: wall time, CPU time (user + system: what
the targets are stated in, as a shared machine stretches wall time) and the peak resident set
size the kernel reports for it (wait4). The targets are for the default size; --quick is
dominated by start-up and the interpreter's own 35 MB. The exports are synthetic and deterministic, shaped
like a full Salesforce data export: 15 contacts and 5 opportunities an account, contact roles,
and 30 columns per object that the import does not use.

- team: a fresh import of N accounts into an empty directory, then the same export again
  (nothing changed in the CRM: every plan is found, merged and left unchanged).
- organisation: `--account` picks one account out of an export of 20 N accounts; its plans
  directory holds the N plans of the team run. What it costs is reading the export.
"""

from __future__ import annotations

import argparse
import csv
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

EXTRA = [f"Custom{i}__c" for i in range(30)]
OWNER = "0055g00000JnDoeAAD"

TARGETS = {
    "fresh": 0.060,  # CPU s a plan: a new plan is built, written and read back
    "unchanged": 0.150,  # CPU s a plan: an unchanged plan is parsed with ruamel and merged
    "rss_ratio": 1.0,  # peak RSS of the organisation run / size of the export files
}


def sf_id(prefix: str, number: int) -> str:
    return f"{prefix}5g{number:010d}AAA"


def write_export(directory: Path, accounts: int) -> int:
    """An export of `accounts` accounts; returns its size in bytes."""
    directory.mkdir(parents=True, exist_ok=True)
    filler = ["some text the import does not read"] * len(EXTRA)

    def table(name: str, header: list[str], rows) -> None:
        with open(directory / name, "w", newline="", encoding="utf-8") as stream:
            writer = csv.writer(stream)
            writer.writerow(header)
            writer.writerows(rows)

    table("Account.csv", ["Id", "Name", "Industry", "OwnerId", *EXTRA],
          ([sf_id("001", a), f"Account {a}", "Retail", OWNER, *filler] for a in range(accounts)))
    table("Contact.csv", ["Id", "AccountId", "FirstName", "LastName", "Title", "OwnerId", *EXTRA],
          ([sf_id("003", c), sf_id("001", c // 15), "Kim", f"Lee {c}", "Director", OWNER, *filler]
           for c in range(accounts * 15)))
    table("Opportunity.csv", ["Id", "AccountId", "Name", "StageName", "Amount", "CloseDate", "NextStep", "OwnerId",
                              *EXTRA],
          ([sf_id("006", o), sf_id("001", o // 5), f"Deal {o}", "Qualification", "125000.50", "2027-03-31",
            "Workshop", OWNER, *filler] for o in range(accounts * 5)))
    table("OpportunityContactRole.csv", ["Id", "OpportunityId", "ContactId", "Role"],
          ([sf_id("00K", o), sf_id("006", o), sf_id("003", (o // 5) * 15 + o % 5), "Evaluator"]
           for o in range(accounts * 5)))
    table("User.csv", ["Id", "Email"], [[OWNER, "jane.doe@example.com"]])
    return sum(path.stat().st_size for path in directory.iterdir())


def run(*args: str) -> tuple[float, float, float, str]:
    """(wall seconds, CPU seconds, peak RSS in MB, stderr) of one `ssm` run."""
    command = [sys.executable, "-m", "ssm_rules", *args]
    started = time.perf_counter()
    with tempfile.TemporaryFile() as errors:
        process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=errors)
        _, status, usage = os.wait4(process.pid, 0)
        elapsed = time.perf_counter() - started
        errors.seek(0)
        stderr = errors.read().decode("utf-8", "replace")
    code = os.waitstatus_to_exitcode(status)
    if code != 0:
        sys.exit(f"ssm {' '.join(args)} exited {code}:\n{stderr}")
    return elapsed, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024, stderr


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--accounts", type=int, default=500, help="accounts of the team run (default 500)")
    parser.add_argument("--quick", action="store_true", help="100 accounts")
    parser.add_argument("--keep", action="store_true", help="keep the generated files (printed)")
    options = parser.parse_args()
    accounts = 100 if options.quick else options.accounts
    work = Path(tempfile.mkdtemp(prefix="ssm-import-bench-"))
    rows = []
    try:
        team = work / "team"
        size = write_export(team, accounts)
        plans = work / "plans"
        for name, target, expect in (("fresh import", "fresh", "new"),
                                     ("re-import, nothing changed", "unchanged", f"{accounts} unchanged")):
            wall, cpu, rss, stderr = run("import", "salesforce", "--from", str(team), "--out", str(plans))
            assert expect in stderr, stderr
            rows += [(f"team export ({accounts} accounts, {size / 1e6:.0f} MB): {name}",
                      f"{wall:.1f} s wall, {cpu:.1f} s CPU, {rss:.0f} MB", ""),
                     ("  CPU per plan", f"{cpu / accounts * 1000:.0f} ms", f"<= {TARGETS[target] * 1000:.0f} ms",
                      cpu / accounts <= TARGETS[target])]
        organisation = work / "organisation"
        size = write_export(organisation, accounts * 20)
        wall, cpu, rss, _ = run("import", "salesforce", "--from", str(organisation), "--out", str(plans),
                                "--account", "Account 7")
        rows += [
            (f"organisation export ({accounts * 20} accounts, {size / 1e6:.0f} MB): --account, one plan",
             f"{wall:.1f} s wall, {cpu:.1f} s CPU, {rss:.0f} MB", ""),
            ("  peak RSS / export size", f"{rss * 1024 * 1024 / size:.2f}", f"<= {TARGETS['rss_ratio']:.1f}",
             rss * 1024 * 1024 / size <= TARGETS["rss_ratio"]),
        ]
    finally:
        if options.keep:
            print(f"files kept in {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
    print(f"load average {os.getloadavg()[0]:.2f}, {os.cpu_count()} CPUs, Python {sys.version.split()[0]}")
    width = max(len(row[0]) for row in rows)
    for name, value, target, *met in rows:
        verdict = ("yes" if met[0] else "NO") if met else ""
        print(f"{name:<{width}}  {value:<30}  {target:<10}  {verdict}")


if __name__ == "__main__":
    main()
