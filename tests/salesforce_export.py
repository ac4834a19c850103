"""Exports and plans for the tests of `ssm import salesforce` (tests/test_import_salesforce*.py):
the realistic export in tests/data/salesforce, small exports written on the fly, and the CLI."""

from __future__ import annotations

import csv
import io
from pathlib import Path

from conftest import SALESFORCE_EXPORT
from ssm_rules.cli import main
from ssm_rules.importers import salesforce as sf
from ssm_rules.pipeline import load_plan

EXPORT = SALESFORCE_EXPORT  # the realistic export; the fixture `export` is a writable copy of it
GRANITE = "0015g00000GrInsAAA"
NORTHWIND = "0015g00000NwRetAAC"
JANE = "0055g00000JnDoeAAD"
RAJ = "0055g00000RjPtlAAC"


def read_rows(path: Path) -> list[list[str]]:
    return list(csv.reader(io.StringIO(path.read_bytes().decode("utf-8-sig"), newline="")))


def write_rows(path: Path, rows: list[list[str]], bom: bool = False) -> None:
    buffer = io.StringIO(newline="")
    csv.writer(buffer, lineterminator="\r\n").writerows(rows)
    path.write_bytes((b"\xef\xbb\xbf" if bom else b"") + buffer.getvalue().encode("utf-8"))


def edit_csv(path: Path, change) -> None:
    """Apply `change(header, rows)` (in place, by column name) to an export file."""
    rows = read_rows(path)
    header = [cell.lower() for cell in rows[0]]
    body = rows[1:]
    change(header, body)
    write_rows(path, [rows[0]] + body)


def set_cell(header: list[str], row: list[str], column: str, value: str) -> None:
    row[header.index(column.lower())] = value


def sf_id(prefix: str, number: int) -> str:
    return f"{prefix}5g00000Xx{number:03d}AAA"


def small_export(directory: Path, *, stages=("Prospecting",), roles=(), users=True,
                 contact_titles=None) -> Path:
    """One account ("Acme Corp"), contacts c1..c3, one opportunity per stage; `roles` are
    (opportunity index, contact index, role) rows."""
    directory.mkdir(parents=True, exist_ok=True)
    account = sf_id("001", 1)
    write_rows(directory / "Account.csv", [["Id", "Name", "Industry", "OwnerId"],
                                           [account, "Acme Corp", "Manufacturing", JANE]])
    titles = contact_titles or ["CEO", "CFO", "CTO"]
    write_rows(directory / "Contact.csv",
               [["Id", "AccountId", "FirstName", "LastName", "Title", "OwnerId"]]
               + [[sf_id("003", n), account, f"First{n}", f"Last{n}", titles[n - 1], JANE] for n in (1, 2, 3)])
    write_rows(directory / "Opportunity.csv",
               [["Id", "AccountId", "Name", "StageName", "Amount"]]
               + [[sf_id("006", n), account, f"Deal {n}", stage, "1000"] for n, stage in enumerate(stages, 1)])
    write_rows(directory / "OpportunityContactRole.csv",
               [["OpportunityId", "ContactId", "Role"]]
               + [[sf_id("006", o), sf_id("003", c), role] for o, c, role in roles])
    if users:
        write_rows(directory / "User.csv", [["Id", "Email"], [JANE, "Jane.Doe@example.com"]])
    return directory


def stage_export(directory: Path, deals: list[dict]) -> Path:
    """small_export, with the opportunity columns of the stages: one dict of columns per deal."""
    directory = small_export(directory, stages=[deal.get("StageName", "Prospecting") for deal in deals])
    columns = ["OwnerId", "CloseDate", "NextStep", "LastStageChangeDate"]
    rows = read_rows(directory / "Opportunity.csv")
    write_rows(directory / "Opportunity.csv", [rows[0] + columns] + [
        row + [deal.get(column, "") for column in columns] for row, deal in zip(rows[1:], deals)])
    write_rows(directory / "User.csv", [["Id", "Email"], [JANE, "Jane.Doe@example.com"], [RAJ, "raj.patel@example.com"]])
    return directory


def one_account(directory: Path, name: str) -> Path:
    directory = small_export(directory)
    edit_csv(directory / "Account.csv", lambda header, rows: set_cell(header, rows[0], "Name", name))
    return directory


def invoke(runner, export_dir: Path, out: Path, *extra: str):
    args = ["import", "salesforce", "--from", str(export_dir), "--out", str(out), *extra]
    return runner.invoke(main, args)


def plan_data(path: Path) -> dict:
    loaded = load_plan(str(path))
    assert not loaded.problems, [problem.message for problem in loaded.problems]
    return loaded.document.data


def by_id(items: list[dict]) -> dict[str, dict]:
    return {item["id"]: item for item in items}


def export_files(directory: Path) -> sf.ExportFiles:
    users = directory / "User.csv"
    return sf.ExportFiles(directory / "Account.csv", directory / "Contact.csv", directory / "Opportunity.csv",
                          directory / "OpportunityContactRole.csv", users if users.exists() else None)


HAND_WRITTEN = """\
format: ssm-plan/1
# Acme: our flagship account. Reviewed monthly with Jane.

account:
  owner: jane.doe               # took over from Raj in 2025
  id: acme-corp  # sf:0015g00000Xx001AAA
  name: Acme Corp
  industry: Manufacturing

plan:
  last_reviewed: 2026-11-02
  sources: [client, internal]

insight:
  strategic_priorities:
  - Halve unplanned downtime by 2028   # from the CEO's town hall
  issues:
  - text: Maintenance data sits in three systems
    priority: 1

initiatives:
- id: predictive-maintenance
  goal: Predict 80% of failures a week ahead

contacts:
# The CEO decides everything above 1m.
- id: first1-last1  # sf:0035g00000Xx001AAA
  name: First1 Last1
  attitude: supporter
  title: CEO
  owner: jane.doe
  goal: Quarterly strategy breakfast
  plan: null

- id: first2-last2  # sf:0035g00000Xx002AAA  (met at the fair)
  name: First2 Last2
  title: CFO
  owner: jane.doe
  attitude: neutral
  plan: Show the downtime business case

- id: first3-last3  # sf:0035g00000Xx003AAA
  name: First3 Last3
  title: CTO
  owner: jane.doe

- id: sam-rivers
  name: Sam Rivers
  external: true

opportunities:
- id: deal-1  # sf:0065g00000Xx001AAA
  name: Deal 1
  initiative: predictive-maintenance
  must_win: true
  value: 1000
  stage: identified
  buying_unit:
    key_decision_leader: [first1-last1]
    evaluator: [first3-last3, sam-rivers]

- id: deal-2  # sf:0065g00000Xx002AAA
  name: Deal 2
  value: 1000
  stage: validated

outcome:
  assessment_satisfied: false   # not yet: waiting for the steering group
"""

