"""`ssm import salesforce` end to end: the documented command, what it prints, dry runs, writes.

The steps have their own files, as the importer has its modules: test_import_salesforce_mapping,
_tables (CSV files), _join (account records), _matching (the output directory), _merge and
_roundtrip (re-import into plans people wrote)."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import date

from salesforce_export import (
    EXPORT, HAND_WRITTEN, by_id, edit_csv, invoke, plan_data, read_rows, set_cell, small_export,
    write_rows)
from ssm_rules.cli import main
from ssm_rules.importers import salesforce as sf
from ssm_rules.pipeline import load_plan


def test_the_documented_command_writes_one_valid_plan_per_account(runner, tmp_path):
    out = tmp_path / "plans"
    result = runner.invoke(main, [
        "import", "salesforce",
        "--accounts", str(EXPORT / "Account.csv"), "--contacts", str(EXPORT / "Contact.csv"),
        "--opportunities", str(EXPORT / "Opportunity.csv"),
        "--contact-roles", str(EXPORT / "OpportunityContactRole.csv"),
        "--users", str(EXPORT / "User.csv"), "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert sorted(path.name for path in out.iterdir()) == [
        "bjornstad-son-rederi-as.yaml", "granite-insurance-ltd.yaml", "northwind-retail-group.yaml"]
    assert "3 new, 0 updated" in result.stderr
    assert "2 deleted row(s)" in result.stderr and "1 contact(s) without an account" in result.stderr
    assert result.stdout == ""

    granite = plan_data(out / "granite-insurance-ltd.yaml")
    assert granite["account"] == {"id": "granite-insurance-ltd", "name": "Granite Insurance, Ltd.",
                                  "industry": "Insurance", "owner": "ingrid.solberg"}
    contacts = by_id(granite["contacts"])
    assert list(contacts) == ["helen-marsh", "tom-o-neill", "priya-raman", "daniel-kuhn", "sarah-whitfield",
                              "marcus-lee"]
    assert contacts["priya-raman"] == {"id": "priya-raman", "name": "Priya Raman",
                                       "title": "VP, Claims Operations", "owner": "raj.patel"}
    assert contacts["daniel-kuhn"]["name"] == "Daniel Kühn"
    opportunities = by_id(granite["opportunities"])
    assert opportunities["claims-platform-modernization"] == {
        "id": "claims-platform-modernization", "name": "Claims platform modernization", "owner": "ingrid.solberg",
        "value": 1250000, "stage": "proposed", "stage_since": date(2026, 11, 20), "close_date": date(2027, 3, 31),
        "buying_unit": {
            "key_decision_leader": ["helen-marsh"], "sponsor": ["priya-raman"], "benefit_owner": ["priya-raman"],
            "evaluator": ["daniel-kuhn"], "approver": ["tom-o-neill"], "influencer": ["sarah-whitfield"]},
        "next_step": {"action": "Final pricing call with Tom O'Neill, then the board"}}
    # no NextStep in Salesforce: no next_step; no LastStageChangeDate: no stage_since
    assert "next_step" not in opportunities["fraud-analytics-pilot"]
    assert opportunities["fraud-analytics-pilot"]["owner"] == "raj.patel"
    # Other -> no role, an empty role -> no role; no Amount -> no value
    assert opportunities["fraud-analytics-pilot"]["buying_unit"] == {
        "key_decision_leader": ["priya-raman"], "evaluator": ["marcus-lee"]}
    assert opportunities["mainframe-hosting-renewal"]["buying_unit"] == {"approver": ["tom-o-neill"]}
    assert "value" not in opportunities["document-capture-phase-2"]

    northwind = plan_data(out / "northwind-retail-group.yaml")
    # two people with the same name get distinct IDs; the deleted contact is not imported
    assert [(c["id"], c["title"]) for c in northwind["contacts"]] == [
        ("li-wei", "CIO"), ("ana-lopez", "Head of E-commerce"), ("mark-jensen", "Store Operations Director"),
        ("li-wei-2", "Data Analyst")]
    assert northwind["opportunities"][0]["buying_unit"]["evaluator"] == ["mark-jensen", "li-wei-2"]

    bjornstad = plan_data(out / "bjornstad-son-rederi-as.yaml")
    assert bjornstad["account"]["name"] == "Bjørnstad & Søn Rederi AS"
    assert [c["id"] for c in bjornstad["contacts"]] == ["ase-bjornstad", "lars-ovrebo", "kari-nilsen",
                                                        "jonas-berg", "sigrid-dahl"]
    assert bjornstad["opportunities"][0]["value"] == 640000.5
    assert bjornstad["contacts"][3]["owner"] == "m.okafor"  # inactive users still map


def test_new_plan_text_is_laid_out_for_people(runner, tmp_path):
    out = tmp_path / "plans"
    assert invoke(runner, EXPORT, out).exit_code == 0
    text = (out / "northwind-retail-group.yaml").read_text(encoding="utf-8")
    assert text.startswith("format: ssm-plan/1\n# Imported from Salesforce")
    assert "ssm check" in text.split("account:")[0]
    assert "  id: northwind-retail-group  # sf:0015g00000NwRetAAC\n" in text
    assert "  - id: ana-lopez  # sf:0035g00000Ct013AAA\n    name: Ana López\n" in text
    assert "\n\ncontacts:\n" in text and "\n\nopportunities:\n" in text
    assert "      evaluator: [mark-jensen, li-wei-2]\n" in text
    assert "owner: jane.doe\n\n  - id: mark-jensen" in text  # a blank line between items


def test_every_plan_the_import_writes_validates_and_says_what_is_next(runner, tmp_path):
    out = tmp_path / "plans"
    result = invoke(runner, EXPORT, out)
    assert f"Next: `ssm check {out}`" in result.stderr
    for path in out.iterdir():
        assert not load_plan(str(path)).problems


def test_missing_files_are_usage_errors(runner, tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    result = invoke(runner, empty, tmp_path / "plans")
    assert result.exit_code == 2
    assert "missing export files (not found in" in result.stderr and "--contact-roles" in result.stderr
    result = runner.invoke(main, ["import", "salesforce", "--accounts", str(tmp_path / "nope.csv"),
                                  "--contacts", str(EXPORT / "Contact.csv"),
                                  "--opportunities", str(EXPORT / "Opportunity.csv"),
                                  "--contact-roles", str(EXPORT / "OpportunityContactRole.csv"),
                                  "--out", str(tmp_path / "plans")])
    assert result.exit_code == 2
    assert "nope.csv: cannot read it: No such file or directory" in result.stderr


def test_existing_plans_are_untouched_when_the_export_is_bad(runner, export, tmp_path):
    out = tmp_path / "plans"
    assert invoke(runner, export, out).exit_code == 0
    before = {path.name: path.read_bytes() for path in out.iterdir()}
    edit_csv(export / "Opportunity.csv", lambda header, rows: set_cell(header, rows[0], "StageName", "Closed Won"))
    rows = read_rows(export / "Contact.csv")
    write_rows(export / "Contact.csv", [row[1:] for row in rows])  # no ID column
    assert invoke(runner, export, out).exit_code == 2
    assert {path.name: path.read_bytes() for path in out.iterdir()} == before


def test_a_hand_written_plan_that_does_not_validate_is_updated_and_reported(runner, tmp_path):
    directory = small_export(tmp_path / "e")
    out = tmp_path / "plans"
    out.mkdir()
    (out / "acme-corp.yaml").write_text(HAND_WRITTEN.replace("  goal: Quarterly", "  gaol: Quarterly"))
    result = invoke(runner, directory, out)
    assert result.exit_code == 1
    assert "Plans that do not validate (1)" in result.stderr and "unknown key `gaol`" in result.stderr


def test_dry_run_prints_a_diff_and_writes_nothing(runner, tmp_path):
    directory = small_export(tmp_path / "e")
    out = tmp_path / "plans"
    out.mkdir()
    (out / "acme-corp.yaml").write_text(HAND_WRITTEN, encoding="utf-8")
    edit_csv(directory / "Contact.csv", lambda header, rows: set_cell(header, rows[2], "Title", "CIO"))
    result = invoke(runner, directory, out, "--dry-run")
    assert result.exit_code == 0, result.stderr
    assert result.stdout.startswith(f"--- {out / 'acme-corp.yaml'}\n+++ {out / 'acme-corp.yaml'}\n@@ ")
    assert "\n-  title: CTO\n+  title: CIO\n" in result.stdout
    assert "would write 1 (0 new, 1 updated)" in result.stderr and "Dry run: nothing was written." in result.stderr
    assert (out / "acme-corp.yaml").read_text(encoding="utf-8") == HAND_WRITTEN
    fresh = tmp_path / "fresh"
    result = invoke(runner, directory, fresh, "--dry-run")
    assert result.stdout.startswith(f"--- /dev/null\n+++ {fresh / 'acme-corp.yaml'}\n")
    assert not fresh.exists()


def test_writes_are_atomic_and_keep_permissions(tmp_path):
    path = tmp_path / "plan.yaml"
    path.write_text("old")
    path.chmod(0o640)
    sf.write_atomic(path, "new ✓\n")
    assert path.read_text(encoding="utf-8") == "new ✓\n"
    assert path.stat().st_mode & 0o777 == 0o640
    assert os.listdir(tmp_path) == ["plan.yaml"]


def test_ruamel_is_loaded_only_by_the_import_command():
    code = ("import sys, ssm_rules.cli, ssm_rules.commands.import_, ssm_rules.importers.salesforce; "
            "print(any(name.startswith('ruamel') for name in sys.modules))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "False"


def test_help_documents_the_mappings_and_exit_codes(runner):
    result = runner.invoke(main, ["import", "salesforce", "--help"])
    assert result.exit_code == 0
    for text in ("--dry-run", "--mapping", "Economic Buyer -> approver", "Closed Lost -> lost", "Exit codes:"):
        assert text in result.output
    assert "salesforce" in runner.invoke(main, ["import", "--help"]).output

