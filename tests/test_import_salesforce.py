"""`ssm import salesforce`: exports -> plans, every mapping, merge round trips, bad exports."""

from __future__ import annotations

import codecs
import csv
import io
import os
import shutil
import subprocess
import sys
import textwrap
from datetime import date
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import ROOT, SPEC_EXAMPLE
from ssm_rules.cli import main
from ssm_rules.importers import salesforce as sf
from ssm_rules.pipeline import load_plan

EXPORT = ROOT / "tests" / "data" / "salesforce"
FILES = ("Account.csv", "Contact.csv", "Opportunity.csv", "OpportunityContactRole.csv", "User.csv")

GRANITE = "0015g00000GrInsAAA"
NORTHWIND = "0015g00000NwRetAAC"
JANE = "0055g00000JnDoeAAD"


# -- helpers ----------------------------------------------------------------------------------


@pytest.fixture
def export(tmp_path) -> Path:
    """A writable copy of the realistic export."""
    directory = tmp_path / "export"
    shutil.copytree(EXPORT, directory)
    return directory


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


def cell(header: list[str], row: list[str], column: str) -> str:
    return row[header.index(column.lower())]


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


def invoke(runner, export_dir: Path, out: Path, *extra: str):
    args = ["import", "salesforce", "--from", str(export_dir), "--out", str(out), *extra]
    return runner.invoke(main, args)


def plan_data(path: Path) -> dict:
    loaded = load_plan(str(path))
    assert not loaded.problems, [problem.message for problem in loaded.problems]
    return loaded.document.data


def by_id(items: list[dict]) -> dict[str, dict]:
    return {item["id"]: item for item in items}


# -- the realistic export -----------------------------------------------------------------------


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


@pytest.mark.parametrize("name, slug", [
    ("Granite Insurance, Ltd.", "granite-insurance-ltd"),
    ("Bjørnstad & Søn Rederi AS", "bjornstad-son-rederi-as"),
    ("  Ana López ", "ana-lopez"),
    ("Straße 7 — Œuvre", "strasse-7-oeuvre"),
    ("O'Neill", "o-neill"),
    ("株式会社", ""),
])
def test_slugs_are_lowercase_ascii_with_dashes(name, slug):
    assert sf.slugify(name) == slug


def test_a_name_without_ascii_letters_gets_an_id_from_the_salesforce_id(runner, tmp_path):
    directory = small_export(tmp_path / "e")
    edit_csv(directory / "Account.csv", lambda header, rows: set_cell(header, rows[0], "Name", "株式会社テスト"))
    out = tmp_path / "plans"
    assert invoke(runner, directory, out).exit_code == 0
    (path,) = out.iterdir()
    assert path.name == "account-0015g00000xx001aaa.yaml"
    assert plan_data(path)["account"]["name"] == "株式会社テスト"


# -- mappings -----------------------------------------------------------------------------------


@pytest.mark.parametrize("role, target", list(sf.DEFAULT_ROLES.items()))
def test_every_default_role_mapping(tmp_path, role, target):
    directory = small_export(tmp_path / "e", roles=[(1, 1, role)])
    export = sf.read_export(_files(directory))
    assert export.problems == []
    (opportunity,) = export.accounts[0].opportunities
    assert opportunity.roles == ({target: [sf.sf_key(sf_id("003", 1))]} if target else {})


@pytest.mark.parametrize("stage, target", list(sf.DEFAULT_STAGES.items()))
def test_every_default_stage_mapping(runner, tmp_path, stage, target):
    directory = small_export(tmp_path / "e", stages=[stage])
    out = tmp_path / "plans"
    assert invoke(runner, directory, out).exit_code == 0
    assert plan_data(out / "acme-corp.yaml")["opportunities"][0]["stage"] == target


def test_picklist_values_match_whatever_their_case_and_spacing():
    mapping = sf.SalesforceMapping()
    assert mapping.role("economic  BUYER") == (True, "approver")
    assert mapping.stage("closed won") == (True, "won")
    assert mapping.stage("Discovery") == (False, None)


def test_mapping_overrides_merge_over_the_defaults():
    mapping = sf.parse_mapping_overrides({"roles": {"Champion": "sponsor", "other": "influencer"},
                                          "stages": {"Discovery": "validated", "Closed Lost": ""}})
    assert mapping.role("Champion") == (True, "sponsor")
    assert mapping.role("Other") == (True, "influencer")  # replaces the default, whatever the case
    assert mapping.role("Economic Buyer") == (True, "approver")  # defaults stay
    assert mapping.stage("Discovery") == (True, "validated")
    assert mapping.stage("Closed Lost") == (True, None)


@pytest.mark.parametrize("section, message", [
    ({"roles": {"Champion": "champion"}}, "[salesforce.roles] 'Champion' = 'champion': unknown plan role"),
    ({"roles": {"Champion": "sponsr"}}, "did you mean `sponsor`?"),
    ({"stages": {"Discovery": "validate"}}, "[salesforce.stages] 'Discovery' = 'validate': unknown plan stage; "
                                            "did you mean `validated`?"),
    ({"stage": {"Discovery": "validated"}}, "unknown key `stage` in [salesforce]: did you mean `stages`?"),
    ({"roles": ["Champion"]}, "[salesforce.roles] must be a table"),
    ({"roles": {"Champion": 1}}, "'Champion' must be text"),
])
def test_bad_mapping_overrides_name_the_key(section, message):
    with pytest.raises(sf.MappingError) as error:
        sf.parse_mapping_overrides(section)
    assert message in str(error.value)


def test_mapping_file_overrides_roles_and_stages(runner, tmp_path):
    directory = small_export(tmp_path / "e", stages=["Discovery", "Closed Lost"], roles=[(1, 1, "Champion")])
    mapping = tmp_path / "mapping.toml"
    mapping.write_text('[salesforce.roles]\nChampion = "sponsor"\n\n'
                       '[salesforce.stages]\nDiscovery = "validated"\n"Closed Lost" = ""\n')
    out = tmp_path / "plans"
    result = invoke(runner, directory, out, "--mapping", str(mapping))
    assert result.exit_code == 0, result.stderr
    (opportunity,) = plan_data(out / "acme-corp.yaml")["opportunities"]
    assert opportunity["stage"] == "validated"
    assert opportunity["buying_unit"] == {"sponsor": ["first1-last1"]}
    assert "1 opportunity(ies) in stage 'Closed Lost' skipped" in result.stderr


def test_mapping_can_live_in_pyproject(tmp_path):
    pyproject = tmp_path / "pyproject.toml"
    pyproject.write_text('[tool.ssm.salesforce.roles]\nChampion = "sponsor"\n')
    assert sf.load_mapping_file(pyproject).role("Champion") == (True, "sponsor")


def test_mapping_is_read_from_the_configuration_ssm_check_uses(runner, tmp_path, monkeypatch):
    directory = small_export(tmp_path / "e", stages=["Discovery"], roles=[(1, 1, "Champion")])
    project = tmp_path / "project"
    project.mkdir()
    (project / ".ssm.toml").write_text('[salesforce.roles]\nChampion = "sponsor"\n\n'
                                       '[salesforce.stages]\nDiscovery = "validated"\n')
    monkeypatch.chdir(project)
    out = tmp_path / "plans"
    result = invoke(runner, directory, out)
    assert result.exit_code == 0, result.stderr
    (opportunity,) = plan_data(out / "acme-corp.yaml")["opportunities"]
    assert opportunity["stage"] == "validated"
    assert opportunity["buying_unit"] == {"sponsor": ["first1-last1"]}

    (project / ".ssm.toml").write_text('[salesforce.roles]\nChampion = "hero"\n')
    bad = invoke(runner, directory, tmp_path / "other")
    assert bad.exit_code == 2 and ".ssm.toml" in bad.stderr and "hero" in bad.stderr


@pytest.mark.parametrize("content, message", [
    ('[salesforce.roles]\nChampion = "hero"\n', "unknown plan role"),
    ("[salesforce\n", "not valid TOML"),
    ('[other]\nx = 1\n', "no [salesforce] table"),
])
def test_a_bad_mapping_file_is_a_usage_error(runner, tmp_path, content, message):
    mapping = tmp_path / "mapping.toml"
    mapping.write_text(content)
    out = tmp_path / "plans"
    result = invoke(runner, small_export(tmp_path / "e"), out, "--mapping", str(mapping))
    assert result.exit_code == 2
    assert message in result.stderr and str(mapping) in result.stderr
    assert not out.exists()


# -- owners -------------------------------------------------------------------------------------


def test_owners_are_user_ids_without_a_users_file(runner, tmp_path):
    directory = small_export(tmp_path / "e", users=False)
    out = tmp_path / "plans"
    assert invoke(runner, directory, out).exit_code == 0
    data = plan_data(out / "acme-corp.yaml")
    assert data["account"]["owner"] == JANE
    assert data["contacts"][0]["owner"] == JANE


def test_an_owner_missing_from_the_users_file_is_reported_once(runner, tmp_path):
    directory = small_export(tmp_path / "e")
    write_rows(directory / "User.csv", [["Id", "Email"], [sf_id("005", 9), "someone@example.com"]])
    out = tmp_path / "plans"
    result = invoke(runner, directory, out)
    assert result.exit_code == 1
    assert result.stderr.count("is not in the users file") == 1
    assert "Account.csv, row 2, column OwnerId: owner 0055g00000JnDoeAAD is not in the users file" in result.stderr
    assert plan_data(out / "acme-corp.yaml")["account"]["owner"] == JANE


def test_an_account_without_an_owner_column_gets_a_placeholder_owner(runner, tmp_path):
    directory = small_export(tmp_path / "e")
    write_rows(directory / "Account.csv", [["Id", "Name"], [sf_id("001", 1), "Acme Corp"]])
    out = tmp_path / "plans"
    result = invoke(runner, directory, out)
    assert result.exit_code == 0
    assert "account owner written as `unassigned`: Salesforce gave none; set it" in result.stderr
    assert plan_data(out / "acme-corp.yaml")["account"]["owner"] == "unassigned"
    (out / "acme-corp.yaml").write_text((out / "acme-corp.yaml").read_text().replace("unassigned", "jo.bloggs"))
    assert invoke(runner, directory, out).stderr.count("unchanged") == 1  # the owner set by hand stays


# -- bad rows (reported, left out, exit 1) -----------------------------------------------------


def test_an_unknown_stage_is_reported_with_file_row_and_column_and_left_out(runner, export, tmp_path):
    edit_csv(export / "Opportunity.csv",
             lambda header, rows: set_cell(header, rows[1], "StageName", "Discovery"))
    out = tmp_path / "plans"
    result = invoke(runner, export, out)
    assert result.exit_code == 1
    assert (f"{export / 'Opportunity.csv'}, row 3 (line 4), column StageName: unknown stage 'Discovery' of opportunity "
            f"'Fraud analytics pilot': left out, not guessed") in result.stderr
    granite = plan_data(out / "granite-insurance-ltd.yaml")
    assert "fraud-analytics-pilot" not in by_id(granite["opportunities"])
    assert len(granite["opportunities"]) == 3


def test_an_unknown_role_is_reported_and_left_out(runner, export, tmp_path):
    edit_csv(export / "OpportunityContactRole.csv",
             lambda header, rows: set_cell(header, rows[0], "Role", "Champion"))
    out = tmp_path / "plans"
    result = invoke(runner, export, out)
    assert result.exit_code == 1
    assert (f"OpportunityContactRole.csv, row 2, column ROLE: unknown role 'Champion' of 'Helen Marsh' on "
            f"'Claims platform modernization': left out, not guessed") in result.stderr
    unit = by_id(plan_data(out / "granite-insurance-ltd.yaml")["opportunities"])["claims-platform-modernization"]
    assert "key_decision_leader" not in unit["buying_unit"]


def test_rows_referring_to_unknown_accounts_contacts_or_opportunities_are_reported(runner, export, tmp_path):
    def contacts(header, rows):
        set_cell(header, rows[1], "AccountId", "0015g00000ZzZzZAAA")

    def roles(header, rows):
        rows.append(["00K5g00000Rl900AAA", "0065g00000Op001AAA", "0035g00000Ct099AAA", "Evaluator", "false", ""])
        rows.append(["00K5g00000Rl901AAA", "0065g00000Op099AAA", "0035g00000Ct001AAA", "Evaluator", "false", ""])

    edit_csv(export / "Contact.csv", contacts)
    edit_csv(export / "OpportunityContactRole.csv", roles)
    result = invoke(runner, export, tmp_path / "plans")
    assert result.exit_code == 1
    stderr = result.stderr
    assert ("Contact.csv, row 3, column ACCOUNTID: unknown account 0015g00000ZzZzZAAA: it is not in "
            in stderr)
    assert "OpportunityContactRole.csv, row 25, column CONTACTID: unknown contact 0035g00000Ct099AAA" in stderr
    assert "OpportunityContactRole.csv, row 26, column OPPORTUNITYID: unknown opportunity 0065g00000Op099AAA" in stderr
    # Tom O'Neill was left out, so his roles are silently dropped with him
    granite = plan_data(tmp_path / "plans" / "granite-insurance-ltd.yaml")
    assert "tom-o-neill" not in by_id(granite["contacts"])
    assert "approver" not in granite["opportunities"][0]["buying_unit"]


def test_a_duplicate_id_is_reported_and_the_second_row_left_out(runner, export, tmp_path):
    def duplicate(header, rows):
        copy = list(rows[0])
        set_cell(header, copy, "FirstName", "Helena")
        rows.append(copy)

    edit_csv(export / "Contact.csv", duplicate)
    result = invoke(runner, export, tmp_path / "plans")
    assert result.exit_code == 1
    assert "column ID: duplicate Id 0035g00000Ct001AAA (first at row 2): row left out" in result.stderr
    names = [c["name"] for c in plan_data(tmp_path / "plans" / "granite-insurance-ltd.yaml")["contacts"]]
    assert "Helen Marsh" in names and "Helena Marsh" not in names


def test_a_contact_role_across_accounts_is_reported(runner, export, tmp_path):
    edit_csv(export / "OpportunityContactRole.csv", lambda header, rows: rows.append(
        ["00K5g00000Rl900AAA", "0065g00000Op001AAA", "0035g00000Ct012AAA", "Evaluator", "false", ""]))
    result = invoke(runner, export, tmp_path / "plans")
    assert result.exit_code == 1
    assert ("contact 'Li Wei' belongs to account 'Northwind Retail Group', not to the account of opportunity "
            "'Claims platform modernization': row left out") in result.stderr


@pytest.mark.parametrize("column, value, message", [
    ("Amount", "lots", "column Amount: 'lots' is not a number: the value of opportunity 'Deal 1' is left out"),
    ("Name", "", "column Name: opportunity 0065g00000Xx001AAA has no name: left out"),
    ("Id", "006-not-an-id", "column Id: '006-not-an-id' is not a Salesforce ID"),
])
def test_bad_values_are_reported(runner, tmp_path, column, value, message):
    directory = small_export(tmp_path / "e")
    edit_csv(directory / "Opportunity.csv", lambda header, rows: set_cell(header, rows[0], column, value))
    result = invoke(runner, directory, tmp_path / "plans")
    assert result.exit_code == 1
    assert "Opportunity.csv, row 2, " + message in result.stderr


def test_many_problems_are_summarized(runner, tmp_path):
    directory = small_export(tmp_path / "e", stages=["Bogus"] * 30)
    result = invoke(runner, directory, tmp_path / "plans")
    assert result.exit_code == 1
    assert result.stderr.count("unknown stage 'Bogus'") == 20
    assert "... and 10 more in" in result.stderr


# -- bad exports (exit 2, nothing written) -------------------------------------------------------


@pytest.mark.parametrize("file_name, column", [
    ("Account.csv", "Name"), ("Contact.csv", "AccountId"), ("Opportunity.csv", "StageName"),
    ("OpportunityContactRole.csv", "Role"), ("User.csv", "Email"),
])
def test_a_missing_required_column_exits_2_and_writes_nothing(runner, export, tmp_path, file_name, column):
    rows = read_rows(export / file_name)
    index = [header.lower() for header in rows[0]].index(column.lower())
    write_rows(export / file_name, [row[:index] + row[index + 1:] for row in rows])
    out = tmp_path / "plans"
    result = invoke(runner, export, out)
    assert result.exit_code == 2
    assert f"{export / file_name}, row 1, column {column}: required column {column} is missing" in result.stderr
    assert "nothing was written" in result.stderr
    assert not out.exists()


def test_a_contact_file_needs_a_name_column(runner, tmp_path):
    directory = small_export(tmp_path / "e")
    write_rows(directory / "Contact.csv", [["Id", "AccountId", "FirstName"], [sf_id("003", 1), sf_id("001", 1), "A"]])
    result = invoke(runner, directory, tmp_path / "plans")
    assert result.exit_code == 2
    assert "required column LastName or Name is missing" in result.stderr


def test_every_file_level_problem_is_listed_at_once(runner, export, tmp_path):
    (export / "Account.csv").write_text("Id,Nom\n")
    (export / "User.csv").write_bytes(b"")
    result = invoke(runner, export, tmp_path / "plans")
    assert result.exit_code == 2
    assert "Account.csv, row 1, column Name: required column Name is missing" in result.stderr
    assert "User.csv, row 1: the file is empty" in result.stderr


def test_existing_plans_are_untouched_when_the_export_is_bad(runner, export, tmp_path):
    out = tmp_path / "plans"
    assert invoke(runner, export, out).exit_code == 0
    before = {path.name: path.read_bytes() for path in out.iterdir()}
    edit_csv(export / "Opportunity.csv", lambda header, rows: set_cell(header, rows[0], "StageName", "Closed Won"))
    rows = read_rows(export / "Contact.csv")
    write_rows(export / "Contact.csv", [row[1:] for row in rows])  # no ID column
    assert invoke(runner, export, out).exit_code == 2
    assert {path.name: path.read_bytes() for path in out.iterdir()} == before


def test_an_undecodable_file_names_its_row_and_column(runner, export, tmp_path):
    text = (export / "Contact.csv").read_text(encoding="utf-8")
    (export / "Contact.csv").write_bytes(text.encode("cp1252"))  # "Kühn" is not UTF-8 any more
    out = tmp_path / "plans"
    result = invoke(runner, export, out)
    assert result.exit_code == 2
    assert (f"{export / 'Contact.csv'}, row 3, column DESCRIPTION: not valid utf-8 text (byte 0xa3 at offset"
            in result.stderr)
    assert "--encoding cp1252" in result.stderr
    assert not out.exists()


def test_another_encoding_can_be_named(runner, tmp_path):
    directory = small_export(tmp_path / "e")
    write_rows(directory / "Account.csv", [["Id", "Name", "OwnerId"], [sf_id("001", 1), "Café Müller", JANE]])
    (directory / "Account.csv").write_bytes((directory / "Account.csv").read_text("utf-8").encode("cp1252"))
    out = tmp_path / "plans"
    assert invoke(runner, directory, out, "--encoding", "cp1252").exit_code == 0
    assert plan_data(out / "cafe-muller.yaml")["account"]["name"] == "Café Müller"
    result = invoke(runner, directory, out, "--encoding", "klingon")
    assert result.exit_code == 2 and "unknown encoding 'klingon'" in result.stderr


def test_malformed_csv_is_a_file_level_error(runner, tmp_path):
    directory = small_export(tmp_path / "e")
    (directory / "Opportunity.csv").write_text('Id,AccountId,Name,StageName\n'
                                               f'{sf_id("006", 1)},{sf_id("001", 1)},"Deal "x",Prospecting\n')
    result = invoke(runner, directory, tmp_path / "plans")
    assert result.exit_code == 2
    assert "Opportunity.csv, row 2: malformed CSV" in result.stderr


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


def test_header_case_bom_crlf_extra_columns_and_multiline_fields_are_read():
    accounts = sf.read_table(EXPORT / "Account.csv", "accounts", columns=[*sf.COLUMNS["accounts"], "BillingStreet"])
    assert EXPORT.joinpath("Account.csv").read_bytes().startswith(b"\xef\xbb\xbfId,")
    assert accounts.label("id") == "Id" and accounts.rows[0].get("ID") == GRANITE
    assert accounts.rows[0].get("BillingStreet") == "1 Quarry Lane\nSuite 400"
    assert [row.number for row in accounts.rows] == [2, 3, 4, 5]
    assert [row.line for row in accounts.rows] == [2, 4, 5, 6]  # the quoted line break
    contacts = sf.read_table(EXPORT / "Contact.csv", "contacts", columns=[*sf.COLUMNS["contacts"], "Description"])
    assert contacts.label("accountid") == "ACCOUNTID"
    assert contacts.rows[2].get("Title") == "VP, Claims Operations"
    assert contacts.rows[2].get("Description") == "Met at InsurTech Summit, Leeds.\nPrefers e-mail, not calls."


def test_only_the_columns_the_import_uses_are_kept():
    """A full export has dozens of columns per object; keeping them all took 4 GB for a 560 MB
    export."""
    contacts = sf.read_table(EXPORT / "Contact.csv", "contacts")
    kept = {key for row in contacts.rows for key in row.values}
    assert kept == {"id", "isdeleted", "accountid", "lastname", "firstname", "name", "title", "ownerid"}
    assert contacts.label("Description") == "DESCRIPTION"  # still named in messages


@pytest.mark.parametrize("chunk", [1, 2, 3, 5, 64, 1 << 20])
def test_files_are_read_the_same_whatever_the_size_of_the_chunks_decoded(monkeypatch, tmp_path, chunk):
    """Lines, a CRLF, a multi-byte character or a quoted line break split between two chunks."""
    monkeypatch.setattr(sf, "_CHUNK", chunk)
    every = [*sf.COLUMNS["contacts"], "Description"]
    contacts = sf.read_table(EXPORT / "Contact.csv", "contacts", columns=every)
    monkeypatch.setattr(sf, "_CHUNK", 1 << 20)
    assert contacts == sf.read_table(EXPORT / "Contact.csv", "contacts", columns=every)
    text = (EXPORT / "Contact.csv").read_text(encoding="utf-8")
    (tmp_path / "Contact.csv").write_bytes(text.encode("cp1252"))
    monkeypatch.setattr(sf, "_CHUNK", chunk)
    with pytest.raises(sf.ExportError) as error:
        sf.read_table(tmp_path / "Contact.csv", "contacts")
    assert str(error.value.problems[0]).startswith(f"{tmp_path / 'Contact.csv'}, row 3, column DESCRIPTION: not "
                                                   f"valid utf-8 text (byte 0xa3 at offset 489)")


@pytest.mark.parametrize("encoding", ["utf-16-le", "utf-16-be", "utf-32-le", "utf-32-be", "utf-8"])
def test_a_byte_order_mark_names_the_encoding(runner, tmp_path, encoding):
    """Excel's "Unicode Text" is UTF-16 with a BOM; a BOM wins over --encoding."""
    directory = small_export(tmp_path / "e")
    write_rows(directory / "Account.csv", [["Id", "Name", "OwnerId"], [sf_id("001", 1), "Café Müller", JANE]])
    text = (directory / "Account.csv").read_text("utf-8")
    bom = {"utf-16-le": codecs.BOM_UTF16_LE, "utf-16-be": codecs.BOM_UTF16_BE, "utf-32-le": codecs.BOM_UTF32_LE,
           "utf-32-be": codecs.BOM_UTF32_BE, "utf-8": codecs.BOM_UTF8}[encoding]
    (directory / "Account.csv").write_bytes(bom + text.encode(encoding))
    out = tmp_path / "plans"
    result = invoke(runner, directory, out, "--encoding", "cp1252")
    assert result.exit_code == 0, result.stderr
    assert plan_data(out / "cafe-muller.yaml")["account"]["name"] == "Café Müller"


def test_a_bad_byte_in_a_file_with_a_byte_order_mark_names_its_encoding(runner, tmp_path):
    directory = small_export(tmp_path / "e")
    (directory / "Account.csv").write_bytes(codecs.BOM_UTF16_LE + "Id,Name\n".encode("utf-16-le") + b"\x00\xdc")
    result = invoke(runner, directory, tmp_path / "plans")
    assert result.exit_code == 2
    assert "Account.csv, row 2, column Id: not valid utf-16-le (as its byte-order mark says) text" in result.stderr


@pytest.mark.parametrize("separator, label", [(";", "semicolons"), ("\t", "tabs")])
def test_a_file_separated_by_something_else_than_commas_says_so(runner, tmp_path, separator, label):
    directory = small_export(tmp_path / "e")
    text = (directory / "Account.csv").read_text("utf-8")
    (directory / "Account.csv").write_text(text.replace(",", separator), encoding="utf-8")
    result = invoke(runner, directory, tmp_path / "plans")
    assert result.exit_code == 2
    assert (f"the header is one cell separated by {label}: save the file as CSV separated by commas "
            f"(Salesforce exports are)") in result.stderr


def test_old_mac_line_ends_are_read(tmp_path):
    path = tmp_path / "Account.csv"
    path.write_bytes(b'Id,Name\r0015g00000Xx001AAA,"Acme\rCorp"\r0015g00000Xx002AAA,Beta\r')
    table = sf.read_table(path, "accounts")
    assert [(row.number, row.line, row.get("Name")) for row in table.rows] == [
        (2, 2, "Acme\rCorp"), (3, 4, "Beta")]


def test_a_line_that_never_ends_is_refused_not_read_forever(runner, tmp_path, monkeypatch):
    monkeypatch.setattr(sf, "MAX_LINE", 1000)
    directory = small_export(tmp_path / "e")
    (directory / "Account.csv").write_bytes(b"Id,Name\n" + b"\x00" * 5000)
    result = invoke(runner, directory, tmp_path / "plans")
    assert result.exit_code == 2
    assert "Account.csv, row 2: a line longer than 0 million characters: this is not a CSV export" in result.stderr


def test_a_device_given_as_an_export_file_is_refused(runner, tmp_path):
    directory = small_export(tmp_path / "e")
    result = runner.invoke(main, ["import", "salesforce", "--from", str(directory), "--accounts", "/dev/zero",
                                  "--out", str(tmp_path / "plans")])
    assert result.exit_code == 2
    assert "/dev/zero, row 1: a line longer than 16 million characters: this is not a CSV export" in result.stderr


@pytest.mark.parametrize("amount, value", [
    ("1250000", 1250000), ("640000.50", 640000.5), ("1,250,000.00", 1250000), ("1.25E+06", 1250000),
    ("0.0000001", 1e-07), ("1e300", 1e300), ("12345678901234567890", 12345678901234567890.0), ("-5", -5),
])
def test_amounts_are_written_as_numbers_the_loader_reads(runner, tmp_path, amount, value):
    directory = small_export(tmp_path / "e")
    edit_csv(directory / "Opportunity.csv", lambda header, rows: set_cell(header, rows[0], "Amount", amount))
    out = tmp_path / "plans"
    result = invoke(runner, directory, out)
    assert result.exit_code == 0, result.stderr
    written = plan_data(out / "acme-corp.yaml")["opportunities"][0]["value"]
    assert written == value and isinstance(written, (int, float)) and not isinstance(written, bool)
    assert "1 unchanged" in invoke(runner, directory, out).stderr


@pytest.mark.parametrize("amount", ["1.234,50", "$1,000", "1_000", "NaN", "inf", "1e400", "12,34", "0x10"])
def test_an_amount_that_is_not_plainly_a_number_is_refused(runner, tmp_path, amount):
    directory = small_export(tmp_path / "e")
    edit_csv(directory / "Opportunity.csv", lambda header, rows: set_cell(header, rows[0], "Amount", amount))
    result = invoke(runner, directory, tmp_path / "plans")
    assert result.exit_code == 1
    assert f"column Amount: {amount!r} is not a number" in result.stderr


def test_control_characters_never_reach_the_plan_or_the_terminal(runner, tmp_path):
    directory = small_export(tmp_path / "e", contact_titles=["C\x00E\x07O", "CFO", "CTO"])
    edit_csv(directory / "Account.csv", lambda header, rows: set_cell(header, rows[0], "Name", "Acme\x1b[2J Corp\x9b"))
    write_rows(directory / "User.csv", [["Id", "Email"], [JANE, "Jane\x1b]0;pwned\x07.Doe@example.com"]])
    out = tmp_path / "plans"
    result = invoke(runner, directory, out)
    assert result.exit_code == 0, result.stderr
    assert "\x1b" not in result.stderr and "\x07" not in result.stderr
    data = plan_data(out / "acme-2j-corp.yaml")
    assert data["account"]["name"] == "Acme[2J Corp" and data["account"]["owner"] == "jane]0;pwned.doe"
    assert data["contacts"][0]["title"] == "CEO"


def test_an_owner_id_that_is_not_a_salesforce_id_is_reported_not_written(runner, tmp_path):
    directory = small_export(tmp_path / "e", users=False)
    edit_csv(directory / "Account.csv", lambda header, rows: set_cell(header, rows[0], "OwnerId", "=cmd|' /C calc'!A0"))
    out = tmp_path / "plans"
    result = invoke(runner, directory, out)
    assert result.exit_code == 1
    assert "column OwnerId: \"=cmd|' /C calc'!A0\" is not a Salesforce user ID: no owner taken from it" in result.stderr
    assert plan_data(out / "acme-corp.yaml")["account"]["owner"] == "unassigned"



def test_only_the_selected_accounts_are_imported(runner, tmp_path):
    out = tmp_path / "plans"
    result = invoke(runner, EXPORT, out, "--account", "Granite Insurance, Ltd.", "--account", NORTHWIND)
    assert result.exit_code == 0, result.stderr
    assert sorted(path.name for path in out.iterdir()) == ["granite-insurance-ltd.yaml",
                                                           "northwind-retail-group.yaml"]
    result = invoke(runner, EXPORT, out, "--account", "bjornstad-son-rederi-as", "--account", "Nobody Inc")
    assert result.exit_code == 2
    assert "--account 'Nobody Inc': no such account" in result.stderr


# -- re-import: merge ---------------------------------------------------------------------------


def test_reimport_without_changes_touches_nothing(runner, tmp_path):
    out = tmp_path / "plans"
    assert invoke(runner, EXPORT, out).exit_code == 0
    stamps = {path.name: (path.read_bytes(), path.stat().st_mtime_ns) for path in out.iterdir()}
    result = invoke(runner, EXPORT, out)
    assert result.exit_code == 0
    assert "0 new, 0 updated), 3 unchanged" in result.stderr
    assert {path.name: (path.read_bytes(), path.stat().st_mtime_ns) for path in out.iterdir()} == stamps


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


def test_reimport_refreshes_crm_fields_and_keeps_every_hand_written_word(runner, tmp_path):
    directory = small_export(tmp_path / "e", stages=["Prospecting", "Qualification"],
                             roles=[(1, 1, "Decision Maker"), (1, 3, "Evaluator")])
    out = tmp_path / "plans"
    out.mkdir()
    (out / "acme-corp.yaml").write_text(HAND_WRITTEN, encoding="utf-8")
    assert invoke(runner, directory, out).exit_code == 0
    assert (out / "acme-corp.yaml").read_text(encoding="utf-8") == HAND_WRITTEN  # nothing changed in the CRM

    # Next week in Salesforce: a new title, a stage moved, a role removed and one added,
    # a new contact with a role, and the opportunity's amount changed.
    edit_csv(directory / "Contact.csv", lambda header, rows: (
        set_cell(header, rows[2], "Title", "Chief Technology Officer"),
        rows.append([sf_id("003", 4), sf_id("001", 1), "Nia", "Okoye", "COO", JANE])))
    edit_csv(directory / "Opportunity.csv", lambda header, rows: (
        set_cell(header, rows[0], "StageName", "Needs Analysis"), set_cell(header, rows[0], "Amount", "250000.00")))
    write_rows(directory / "OpportunityContactRole.csv", [
        ["OpportunityId", "ContactId", "Role"],
        [sf_id("006", 1), sf_id("003", 1), "Decision Maker"],
        [sf_id("006", 1), sf_id("003", 2), "Economic Buyer"],
        [sf_id("006", 2), sf_id("003", 4), "Business User"]])
    result = invoke(runner, directory, out)
    assert result.exit_code == 0, result.stderr
    assert "1 updated" in result.stderr
    expected = HAND_WRITTEN.replace(
        "  title: CTO\n", "  title: Chief Technology Officer\n").replace(
        "  value: 1000\n  stage: identified\n", "  value: 250000\n  stage: validated\n").replace(
        "    evaluator: [first3-last3, sam-rivers]\n",
        "    evaluator: [sam-rivers]\n    approver: [first2-last2]\n").replace(
        "  name: Sam Rivers\n  external: true\n",
        "  name: Sam Rivers\n  external: true\n\n"
        "- id: nia-okoye  # sf:0035g00000Xx004AAA\n  name: Nia Okoye\n  title: COO\n  owner: jane.doe\n").replace(
        "  value: 1000\n  stage: validated\n",
        "  value: 1000\n  stage: validated\n  buying_unit:\n    benefit_owner: [nia-okoye]\n")
    assert (out / "acme-corp.yaml").read_text(encoding="utf-8") == expected
    for change in ("contact `first3-last3`: title 'CTO' -> 'Chief Technology Officer'",
                   "contact `nia-okoye` added (Nia Okoye)",
                   "opportunity `deal-1`: stage 'identified' -> 'validated'",
                   "opportunity `deal-1`: buying unit evaluator - first3-last3 (no such contact role in Salesforce)",
                   "opportunity `deal-1`: buying unit approver + first2-last2"):
        assert change in result.stderr
    plan_data(out / "acme-corp.yaml")
    # and once more: stable
    assert invoke(runner, directory, out).exit_code == 0
    assert (out / "acme-corp.yaml").read_text(encoding="utf-8") == expected


CRM_OWNED_LINE = ("title:", "stage:", "value:", "buying_unit:") + tuple(f"{role}:" for role in sf.PLAN_ROLES)


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(titles=st.lists(st.sampled_from(["CEO", "Chair", "", "No", "VP, Sales", "Ågent #1"]), min_size=3, max_size=3),
       stages=st.lists(st.sampled_from(list(sf.DEFAULT_STAGES)), min_size=2, max_size=2),
       roles=st.sets(st.tuples(st.integers(1, 2), st.integers(1, 4), st.sampled_from(list(sf.DEFAULT_ROLES))),
                     max_size=6),
       new_contact=st.booleans())
def test_hand_written_lines_survive_any_crm_change(tmp_path_factory, titles, stages, roles, new_contact):
    directory = small_export(tmp_path_factory.mktemp("e"), stages=stages, roles=sorted(roles),
                             contact_titles=titles)
    if new_contact:
        edit_csv(directory / "Contact.csv",
                 lambda header, rows: rows.append([sf_id("003", 4), sf_id("001", 1), "Nia", "Okoye", "COO", JANE]))
    else:
        write_rows(directory / "OpportunityContactRole.csv", [["OpportunityId", "ContactId", "Role"]] + [
            [sf_id("006", o), sf_id("003", c), role] for o, c, role in sorted(roles) if c != 4])
    out = tmp_path_factory.mktemp("plans")
    (out / "acme-corp.yaml").write_text(HAND_WRITTEN, encoding="utf-8")
    result = sf.build_plans(sf.read_export(_files(directory)), out)
    assert result.problems == []
    (output,) = result.outputs
    kept = [line for line in HAND_WRITTEN.splitlines() if not line.strip().startswith(CRM_OWNED_LINE)]
    remaining = iter(output.new_text.splitlines())
    assert all(any(line == other for other in remaining) for line in kept)
    loaded = load_plan("acme-corp.yaml", raw=output.new_text.encode("utf-8"))
    assert not loaded.problems, [problem.message for problem in loaded.problems]
    (out / "acme-corp.yaml").write_text(output.new_text, encoding="utf-8")
    again = sf.build_plans(sf.read_export(_files(directory)), out)
    assert [output.status for output in again.outputs] == ["unchanged"]


# -- opportunity stage fields: owner, close_date, stage_since, next_step.action ------------------

RAJ = "0055g00000RjPtlAAC"

HAND_WRITTEN_STAGES = """\
format: ssm-plan/1
account:
  id: acme-corp  # sf:0015g00000Xx001AAA
  name: Acme Corp
  industry: Manufacturing
  owner: jane.doe

contacts:
- id: first1-last1  # sf:0035g00000Xx001AAA
  name: First1 Last1
  title: CEO
  owner: jane.doe
- id: first2-last2  # sf:0035g00000Xx002AAA
  name: First2 Last2
  title: CFO
  owner: jane.doe
- id: first3-last3  # sf:0035g00000Xx003AAA
  name: First3 Last3
  title: CTO
  owner: jane.doe

opportunities:
- id: deal-1  # sf:0065g00000Xx001AAA
  name: Deal 1
  owner: jane.doe          # Raj covers while Jane is away
  must_win: true
  value: 1000
  stage: validated
  stage_since: 2026-09-01
  close_date: 2027-03-31   # the CFO's budget year
  outcomes:
    interest: {date: 2026-07-02, by: [first1-last1], evidence: Asked for a workshop}
    need_confirmed:
      date: 2026-08-20
      by: [first1-last1]
      evidence: |
        Signed workshop summary.
        # not a comment: part of the evidence
  next_step:
    action: Workshop with the CEO
    due: 2026-12-10        # agreed on the phone
    owner: sam.lee

- id: deal-2  # sf:0065g00000Xx002AAA
  name: Deal 2
  value: 1000
  stage: lost
  lost_reason: 'No: the client built it in house'
"""


def stage_export(directory: Path, deals: list[dict]) -> Path:
    """small_export, with the opportunity columns of the stages: one dict of columns per deal."""
    directory = small_export(directory, stages=[deal.get("StageName", "Prospecting") for deal in deals])
    columns = ["OwnerId", "CloseDate", "NextStep", "LastStageChangeDate"]
    rows = read_rows(directory / "Opportunity.csv")
    write_rows(directory / "Opportunity.csv", [rows[0] + columns] + [
        row + [deal.get(column, "") for column in columns] for row, deal in zip(rows[1:], deals)])
    write_rows(directory / "User.csv", [["Id", "Email"], [JANE, "Jane.Doe@example.com"], [RAJ, "raj.patel@example.com"]])
    return directory


def test_stage_fields_come_from_the_opportunity_export(runner, tmp_path):
    directory = stage_export(tmp_path / "e", [
        {"StageName": "Needs Analysis", "OwnerId": RAJ, "CloseDate": "2027-03-31", "NextStep": "Workshop with the CEO",
         "LastStageChangeDate": "2026-10-14T23:59:59.000Z"},
        {"StageName": "Closed Lost", "CloseDate": "2026-09-30", "LastStageChangeDate": "2026-09-30"}])
    out = tmp_path / "plans"
    result = invoke(runner, directory, out)
    assert result.exit_code == 0, result.stderr
    first, second = plan_data(out / "acme-corp.yaml")["opportunities"]
    assert first == {"id": "deal-1", "name": "Deal 1", "owner": "raj.patel", "value": 1000, "stage": "validated",
                     "stage_since": date(2026, 10, 14), "close_date": date(2027, 3, 31),
                     "next_step": {"action": "Workshop with the CEO"}}
    assert second == {"id": "deal-2", "name": "Deal 2", "value": 1000, "stage": "lost",
                      "stage_since": date(2026, 9, 30), "close_date": date(2026, 9, 30)}
    text = (out / "acme-corp.yaml").read_text()
    assert "    stage_since: 2026-10-14\n    close_date: 2027-03-31\n" in text  # dates, not quoted text


def test_hand_written_outcomes_next_step_due_and_lost_reason_survive_byte_for_byte(runner, tmp_path):
    directory = stage_export(tmp_path / "e", [
        {"StageName": "Qualification", "OwnerId": JANE, "CloseDate": "2027-03-31", "NextStep": "Workshop with the CEO",
         "LastStageChangeDate": "2026-09-01T10:00:00.000Z"},
        {"StageName": "Closed Lost"}])
    out = tmp_path / "plans"
    out.mkdir()
    (out / "acme-corp.yaml").write_text(HAND_WRITTEN_STAGES)
    first = invoke(runner, directory, out)
    assert first.exit_code == 0, first.stderr
    assert "1 unchanged" in first.stderr and (out / "acme-corp.yaml").read_text() == HAND_WRITTEN_STAGES

    # In Salesforce: Raj takes the deal, it moves to Value Proposition on 3 December, the close
    # slips a quarter, the next step changes; the lost deal gets a next step of its own.
    directory = stage_export(tmp_path / "e", [
        {"StageName": "Value Proposition", "OwnerId": RAJ, "CloseDate": "2027-06-30",
         "NextStep": "Pilot scope: yes or no?", "LastStageChangeDate": "2026-12-03T08:15:00.000Z"},
        {"StageName": "Closed Lost", "NextStep": "Ask why, in January"}])
    result = invoke(runner, directory, out)
    assert result.exit_code == 0, result.stderr
    expected = HAND_WRITTEN_STAGES.replace(
        "  owner: jane.doe          # Raj", "  owner: raj.patel         # Raj").replace(
        "  stage: validated\n  stage_since: 2026-09-01\n  close_date: 2027-03-31   #",
        "  stage: qualified\n  stage_since: 2026-12-03\n  close_date: 2027-06-30   #").replace(
        "    action: Workshop with the CEO\n", "    action: 'Pilot scope: yes or no?'\n").replace(
        "  lost_reason: 'No: the", "  next_step:\n    action: Ask why, in January\n  lost_reason: 'No: the")
    assert (out / "acme-corp.yaml").read_text() == expected
    for change in ("opportunity `deal-1`: owner 'jane.doe' -> 'raj.patel'",
                   "opportunity `deal-1`: stage_since 2026-09-01 -> 2026-12-03",
                   "opportunity `deal-1`: close_date 2027-03-31 -> 2027-06-30",
                   "opportunity `deal-1`: next_step.action 'Workshop with the CEO' -> 'Pilot scope: yes or no?'",
                   "opportunity `deal-2`: next_step.action set to 'Ask why, in January'"):
        assert change in result.stderr
    data = plan_data(out / "acme-corp.yaml")
    assert data["opportunities"][0]["next_step"] == {"action": "Pilot scope: yes or no?", "due": date(2026, 12, 10),
                                                     "owner": "sam.lee"}
    assert invoke(runner, directory, out).stderr.count("unchanged") == 1


def test_empty_or_absent_stage_columns_never_erase_the_plan(runner, tmp_path):
    out = tmp_path / "plans"
    out.mkdir()
    (out / "acme-corp.yaml").write_text(HAND_WRITTEN_STAGES)
    empty = stage_export(tmp_path / "empty", [{"StageName": "Qualification"}, {"StageName": "Closed Lost"}])
    result = invoke(runner, empty, out)
    assert result.exit_code == 0, result.stderr
    assert (out / "acme-corp.yaml").read_text() == HAND_WRITTEN_STAGES
    absent = small_export(tmp_path / "absent", stages=["Qualification", "Closed Lost"])  # no such columns
    assert invoke(runner, absent, out).exit_code == 0
    assert (out / "acme-corp.yaml").read_text() == HAND_WRITTEN_STAGES


@pytest.mark.parametrize("column, value", [
    ("CloseDate", "31/03/2027"), ("CloseDate", "2027-02-30"), ("LastStageChangeDate", "yesterday"),
    ("LastStageChangeDate", "2026-10-14 lunchtime"),
])
def test_a_date_that_is_not_a_date_is_reported_and_left_out(runner, tmp_path, column, value):
    directory = stage_export(tmp_path / "e", [{"StageName": "Prospecting", column: value}])
    out = tmp_path / "plans"
    result = invoke(runner, directory, out)
    assert result.exit_code == 1
    assert f"Opportunity.csv, row 2, column {column}: {value!r} is not a date (YYYY-MM-DD)" in result.stderr
    (opportunity,) = plan_data(out / "acme-corp.yaml")["opportunities"]
    assert "close_date" not in opportunity and "stage_since" not in opportunity


def test_an_opportunity_owner_missing_from_the_users_file_is_its_user_id(runner, tmp_path):
    stranger = sf_id("005", 7)
    directory = stage_export(tmp_path / "e", [{"OwnerId": stranger}])
    out = tmp_path / "plans"
    result = invoke(runner, directory, out)
    assert result.exit_code == 1
    assert f"Opportunity.csv, row 2, column OwnerId: owner {stranger} is not in the users file" in result.stderr
    assert plan_data(out / "acme-corp.yaml")["opportunities"][0]["owner"] == stranger


@pytest.mark.parametrize("written", ["  next_step: null\n", "  next_step:\n"])
def test_an_empty_next_step_gets_the_crm_action(runner, tmp_path, written):
    directory = stage_export(tmp_path / "e", [{"NextStep": "Call Li"}])
    out = tmp_path / "plans"
    out.mkdir()
    text = ("format: ssm-plan/1\naccount:\n  id: acme-corp  # sf:0015g00000Xx001AAA\n  name: Acme Corp\n"
            "  industry: Manufacturing\n  owner: jane.doe\nopportunities:\n- id: deal-1  # sf:0065g00000Xx001AAA\n"
            "  name: Deal 1\n  value: 1000\n  stage: identified\n" + written + "  lost_reason: Budget cut\n")
    (out / "acme-corp.yaml").write_text(text)
    assert invoke(runner, directory, out).exit_code == 0
    assert (out / "acme-corp.yaml").read_text().endswith("  next_step:\n    action: Call Li\n  lost_reason: Budget cut\n")


def test_a_next_step_that_is_not_a_mapping_is_reported(runner, tmp_path):
    directory = stage_export(tmp_path / "e", [{"NextStep": "Call Li"}])
    out = tmp_path / "plans"
    out.mkdir()
    text = HAND_WRITTEN_STAGES.replace("  next_step:\n    action: Workshop with the CEO\n", "  next_step: Call Li\n"
                                       ).replace("    due: 2026-12-10        # agreed on the phone\n    owner: sam.lee\n",
                                                 "")
    (out / "acme-corp.yaml").write_text(text)
    result = invoke(runner, directory, out)
    assert result.exit_code == 1
    assert "the next_step of opportunity `deal-1` is not a mapping; fix it, then import again" in result.stderr
    assert (out / "acme-corp.yaml").read_text() == text


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(deals=st.lists(st.fixed_dictionaries({
    "StageName": st.sampled_from(list(sf.DEFAULT_STAGES)),
    "OwnerId": st.sampled_from(["", JANE, RAJ]),
    "CloseDate": st.sampled_from(["", "2027-03-31", "2027-06-30T00:00:00.000Z"]),
    "NextStep": st.sampled_from(["", "Workshop with the CEO", "No", "Call: 12:30", "- x", "# y"]),
    "LastStageChangeDate": st.sampled_from(["", "2026-09-01T10:00:00.000Z", "2026-12-03"])}),
    min_size=2, max_size=2))
def test_hand_written_stage_data_survives_any_crm_change(tmp_path_factory, deals):
    directory = stage_export(tmp_path_factory.mktemp("e"), deals)
    out = tmp_path_factory.mktemp("plans")
    (out / "acme-corp.yaml").write_text(HAND_WRITTEN_STAGES, encoding="utf-8")
    result = sf.build_plans(sf.read_export(_files(directory)), out)
    assert result.problems == []
    (output,) = result.outputs
    crm_owned = ("owner:", "stage:", "stage_since:", "close_date:", "action:", "next_step:")
    kept = [line for line in HAND_WRITTEN_STAGES.splitlines() if not line.strip().startswith(crm_owned)]
    remaining = iter(output.new_text.splitlines())
    assert all(any(line == other for other in remaining) for line in kept)
    loaded = load_plan("acme-corp.yaml", raw=output.new_text.encode("utf-8"))
    assert not loaded.problems, [problem.message for problem in loaded.problems]
    before = load_plan("acme-corp.yaml", raw=HAND_WRITTEN_STAGES.encode("utf-8")).document.data["opportunities"]
    after = loaded.document.data["opportunities"]
    assert after[0]["outcomes"] == before[0]["outcomes"] and after[1]["lost_reason"] == before[1]["lost_reason"]
    assert {key: after[0]["next_step"][key] for key in ("due", "owner")} == {"due": date(2026, 12, 10),
                                                                             "owner": "sam.lee"}
    for deal, opportunity in zip(deals, after):
        if deal["NextStep"]:
            assert opportunity["next_step"]["action"] == deal["NextStep"]
        if deal["CloseDate"]:
            assert opportunity["close_date"].isoformat() == deal["CloseDate"][:10]
    (out / "acme-corp.yaml").write_text(output.new_text, encoding="utf-8")
    again = sf.build_plans(sf.read_export(_files(directory)), out)
    assert [output.status for output in again.outputs] == ["unchanged"]


def test_an_empty_crm_value_never_erases_what_the_plan_has(runner, tmp_path):
    directory = small_export(tmp_path / "e", contact_titles=["CEO", "", "CTO"])
    out = tmp_path / "plans"
    out.mkdir()
    (out / "acme-corp.yaml").write_text(HAND_WRITTEN, encoding="utf-8")
    edit_csv(directory / "Opportunity.csv", lambda header, rows: set_cell(header, rows[0], "Amount", ""))
    write_rows(directory / "OpportunityContactRole.csv", [
        ["OpportunityId", "ContactId", "Role"],
        [sf_id("006", 1), sf_id("003", 1), "Decision Maker"], [sf_id("006", 1), sf_id("003", 3), "Evaluator"]])
    assert invoke(runner, directory, out).exit_code == 0
    text = (out / "acme-corp.yaml").read_text(encoding="utf-8")
    assert "  title: CFO\n" in text and "  value: 1000\n  stage: identified" in text


def test_a_column_absent_from_the_export_leaves_that_field_alone(runner, tmp_path):
    directory = small_export(tmp_path / "e")
    write_rows(directory / "Contact.csv", [["Id", "AccountId", "Name"]] + [
        [sf_id("003", n), sf_id("001", 1), f"First{n} Last{n}"] for n in (1, 2, 3)])
    out = tmp_path / "plans"
    out.mkdir()
    (out / "acme-corp.yaml").write_text(HAND_WRITTEN.replace("  owner: jane.doe\n  goal", "  owner: li.wei\n  goal"))
    assert invoke(runner, directory, out).exit_code == 0
    text = (out / "acme-corp.yaml").read_text()
    assert "  title: CEO\n  owner: li.wei\n" in text


def test_vanished_contacts_and_opportunities_are_reported_not_deleted(runner, tmp_path):
    directory = small_export(tmp_path / "e")
    out = tmp_path / "plans"
    out.mkdir()
    (out / "acme-corp.yaml").write_text(HAND_WRITTEN, encoding="utf-8")
    edit_csv(directory / "Contact.csv", lambda header, rows: rows.pop(1))
    result = invoke(runner, directory, out)
    assert result.exit_code == 0, result.stderr
    assert "Gone from Salesforce, kept in the plan (2)" in result.stderr
    assert "contact `first2-last2` (First2 Last2, sf:0035g00000Xx002AAA)" in result.stderr
    assert "opportunity `deal-2` (Deal 2, sf:0065g00000Xx002AAA)" in result.stderr
    data = plan_data(out / "acme-corp.yaml")
    assert "first2-last2" in by_id(data["contacts"]) and "deal-2" in by_id(data["opportunities"])


def test_renames_in_salesforce_keep_ids_and_files(runner, tmp_path):
    directory = small_export(tmp_path / "e", roles=[(1, 1, "Decision Maker")])
    out = tmp_path / "plans"
    assert invoke(runner, directory, out).exit_code == 0
    edit_csv(directory / "Account.csv", lambda header, rows: set_cell(header, rows[0], "Name", "Acme Holdings plc"))
    edit_csv(directory / "Contact.csv", lambda header, rows: set_cell(header, rows[0], "LastName", "Married-Name"))
    edit_csv(directory / "Opportunity.csv", lambda header, rows: set_cell(header, rows[0], "Name", "Deal One"))
    result = invoke(runner, directory, out)
    assert result.exit_code == 0, result.stderr
    assert [path.name for path in out.iterdir()] == ["acme-corp.yaml"]
    data = plan_data(out / "acme-corp.yaml")
    assert data["account"]["id"] == "acme-corp" and data["account"]["name"] == "Acme Holdings plc"
    assert data["contacts"][0]["id"] == "first1-last1" and data["contacts"][0]["name"] == "First1 Married-Name"
    assert data["opportunities"][0] == {"id": "deal-1", "name": "Deal One", "value": 1000, "stage": "identified",
                                        "buying_unit": {"key_decision_leader": ["first1-last1"]}}


def test_a_renamed_plan_file_is_found_by_its_tag(runner, tmp_path):
    directory = small_export(tmp_path / "e")
    out = tmp_path / "plans"
    assert invoke(runner, directory, out).exit_code == 0
    (out / "acme-corp.yaml").rename(out / "acme.yaml")
    edit_csv(directory / "Contact.csv", lambda header, rows: set_cell(header, rows[0], "Title", "Chair"))
    result = invoke(runner, directory, out)
    assert result.exit_code == 0
    assert [path.name for path in out.iterdir()] == ["acme.yaml"]
    assert plan_data(out / "acme.yaml")["contacts"][0]["title"] == "Chair"


def test_an_untagged_plan_is_found_by_its_file_name(runner, tmp_path):
    directory = small_export(tmp_path / "e")
    out = tmp_path / "plans"
    out.mkdir()
    (out / "acme-corp.yaml").write_text("format: ssm-plan/1\naccount:\n  id: acme\n  name: ACME\n  owner: jo\n")
    assert invoke(runner, directory, out).exit_code == 0
    assert [path.name for path in out.iterdir()] == ["acme-corp.yaml"]
    assert plan_data(out / "acme-corp.yaml")["account"] == {"id": "acme", "name": "Acme Corp",
                                                            "industry": "Manufacturing", "owner": "jane.doe"}


def test_15_and_18_character_ids_name_the_same_record(runner, tmp_path):
    directory = small_export(tmp_path / "e")
    write_rows(directory / "OpportunityContactRole.csv", [
        ["OpportunityId", "ContactId", "Role"], [sf_id("006", 1)[:15], sf_id("003", 2)[:15], "Economic Buyer"]])
    out = tmp_path / "plans"
    assert invoke(runner, directory, out).exit_code == 0
    assert plan_data(out / "acme-corp.yaml")["opportunities"][0]["buying_unit"] == {"approver": ["first2-last2"]}
    text = (out / "acme-corp.yaml").read_text().replace("# sf:0035g00000Xx002AAA", "# sf:0035g00000Xx002")
    (out / "acme-corp.yaml").write_text(text)
    assert invoke(runner, directory, out).stderr.count("unchanged") == 1


def test_a_plan_written_before_the_first_import_is_adopted_by_name(runner, tmp_path):
    """The example plan of docs/plan-format.md (Northwind, untagged, column-aligned comments, `plan: null`)."""
    out = tmp_path / "plans"
    out.mkdir()
    original = SPEC_EXAMPLE.read_text(encoding="utf-8")
    (out / "northwind.yaml").write_text(original, encoding="utf-8")
    result = invoke(runner, EXPORT, out, "--account", NORTHWIND)
    assert result.exit_code == 0, result.stderr
    assert [path.name for path in out.iterdir()] == ["northwind.yaml"]
    text = (out / "northwind.yaml").read_text(encoding="utf-8")
    assert "  id: northwind-retail              # required, unique across a portfolio  sf:0015g00000NwRetAAC\n" in text
    assert "  - id: li-wei  # sf:0035g00000Ct012AAA\n" in text
    assert "    plan: null                      # conversion plan" in text  # ruamel would write `plan:`
    assert "    stage: validated                # pipeline milestone, see below\n" in text
    # every line of the original is still there, in order, except the ones the CRM owns
    crm_lines = {"  id: northwind-retail              # required, unique across a portfolio\n",
                 "  - id: li-wei\n", "  - id: ana-lopez\n", "  - id: omni-platform\n",
                 "    owner: raj.patel\n", "    stage: qualified                # pipeline milestone, see below\n",
                 "    owner: raj.patel                # the seller who owns it; default: the account owner\n",
                 "      evaluator: []\n", "      approver: [li-wei]\n"}
    kept = [line for line in original.splitlines(keepends=True) if line not in crm_lines]
    remaining = iter(text.splitlines(keepends=True))
    assert all(any(line == other for other in remaining) for line in kept)
    data = plan_data(out / "northwind.yaml")
    contacts = by_id(data["contacts"])
    assert list(contacts) == ["li-wei", "ana-lopez", "mark-jensen", "li-wei-2"]
    assert contacts["li-wei"]["goal"] == "Co-author the 2027 IT roadmap"
    omni = by_id(data["opportunities"])["omni-platform"]
    assert omni["priority"] == 1 and omni["components"] == ["strategy_design", "applications", "middleware",
                                                             "deployment"]
    # li-wei as approver was written by hand for a Salesforce contact with no such role: the CRM owns roles
    assert omni["buying_unit"]["approver"] == []
    assert omni["buying_unit"]["evaluator"] == ["mark-jensen", "li-wei-2"]
    assert omni["owner"] == "jane.doe" and omni["stage_since"] == date(2026, 10, 14)
    assert omni["next_step"] == {"action": "Pilot scoping workshop with Li Wei's architects", "due": date(2026, 12, 10),
                                 "owner": "raj.patel"}
    assert list(omni["outcomes"]) == ["interest", "need_confirmed", "go_forward"]
    assert invoke(runner, EXPORT, out, "--account", NORTHWIND).stderr.count("unchanged") == 1


def test_hand_added_people_and_roles_left_out_stay_in_the_buying_unit(runner, tmp_path):
    directory = small_export(tmp_path / "e", roles=[(1, 1, "Decision Maker"), (1, 3, "Champion")])
    out = tmp_path / "plans"
    out.mkdir()
    (out / "acme-corp.yaml").write_text(HAND_WRITTEN, encoding="utf-8")
    result = invoke(runner, directory, out)
    assert result.exit_code == 1  # the unknown role
    assert "evaluator: [first3-last3, sam-rivers]" in (out / "acme-corp.yaml").read_text()


def test_other_indentation_styles_and_line_ends_are_kept(runner, tmp_path):
    directory = small_export(tmp_path / "e", roles=[(1, 2, "Evaluator")])
    out = tmp_path / "plans"
    out.mkdir()
    text = textwrap.dedent("""\
        format: ssm-plan/1
        account:
            id: acme-corp
            name: Acme Corp
            owner: jane.doe
        contacts:
            - id: first1-last1
              name: First1 Last1
              title: CEO
              owner: jane.doe
              attitude: ~
            - id: first2-last2
              name: First2 Last2
              title: CFO
              owner: jane.doe
        opportunities:
            - id: deal-1
              name: Deal 1
              value: 1000
              stage: identified
              plan: null
        """).replace("plan: null", "must_win: null").replace("\n", "\r\n")
    (out / "acme-corp.yaml").write_bytes(b"\xef\xbb\xbf" + text.encode("utf-8"))
    assert invoke(runner, directory, out).exit_code == 0
    raw = (out / "acme-corp.yaml").read_bytes()
    assert raw.startswith(b"\xef\xbb\xbfformat: ssm-plan/1\r\n")
    new = raw.decode("utf-8-sig")
    assert "\r\n" in new and "\n" not in new.replace("\r\n", "")
    assert new == text.replace("    id: acme-corp\r\n", "    id: acme-corp  # sf:0015g00000Xx001AAA\r\n").replace(
        "    name: Acme Corp\r\n", "    name: Acme Corp\r\n    industry: Manufacturing\r\n").replace(
        "- id: first1-last1", "- id: first1-last1  # sf:0035g00000Xx001AAA").replace(
        "- id: first2-last2", "- id: first2-last2  # sf:0035g00000Xx002AAA").replace(
        "- id: deal-1", "- id: deal-1  # sf:0065g00000Xx001AAA").replace(
        "      owner: jane.doe\r\nopportunities:",
        "      owner: jane.doe\r\n    - id: first3-last3  # sf:0035g00000Xx003AAA\r\n      name: First3 Last3\r\n"
        "      title: CTO\r\n      owner: jane.doe\r\nopportunities:") + (
        "      buying_unit:\r\n          evaluator: [first2-last2]\r\n")


def test_a_plan_in_mixed_styles_keeps_all_its_data_and_comments(runner, tmp_path):
    directory = small_export(tmp_path / "e", roles=[(1, 2, "Evaluator")])
    out = tmp_path / "plans"
    out.mkdir()
    text = textwrap.dedent("""\
        format: ssm-plan/1
        account:
            id: acme-corp   # the flagship
            name: Acme Corp
            owner: jane.doe
        contacts:
            -   id: first1-last1
                name: First1 Last1
                attitude: ~      # unknown yet
                goal: Meet the CEO before Christmas
        opportunities:
          - id: deal-1
            name: Deal 1
            stage: identified
        """)
    (out / "acme-corp.yaml").write_text(text)
    assert invoke(runner, directory, out).exit_code == 0
    new = (out / "acme-corp.yaml").read_text()
    for comment in ("# the flagship", "# unknown yet"):
        assert comment in new
    data = plan_data(out / "acme-corp.yaml")
    first = data["contacts"][0]
    assert first["goal"] == "Meet the CEO before Christmas" and first["attitude"] is None
    assert data["opportunities"][0]["buying_unit"] == {"evaluator": ["first2-last2"]}
    assert [c["id"] for c in data["contacts"]] == ["first1-last1", "first2-last2", "first3-last3"]


def test_flow_style_items_become_blocks_to_carry_their_tag(runner, tmp_path):
    directory = small_export(tmp_path / "e")
    out = tmp_path / "plans"
    out.mkdir()
    (out / "acme-corp.yaml").write_text(textwrap.dedent("""\
        format: ssm-plan/1
        account: {id: acme-corp, name: Acme Corp, owner: jane.doe}
        contacts:
          - {id: first1-last1, name: First1 Last1, attitude: supporter}   # the boss
          - {id: sam, name: Sam Rivers}   # hand-written, stays as it is
        """))
    assert invoke(runner, directory, out).exit_code == 0
    text = (out / "acme-corp.yaml").read_text()
    assert "  id: acme-corp  # sf:0015g00000Xx001AAA\n" in text
    assert "  - id: first1-last1   # the boss  sf:0035g00000Xx001AAA\n" in text
    assert "  - {id: sam, name: Sam Rivers}   # hand-written, stays as it is\n" in text
    assert plan_data(out / "acme-corp.yaml")["contacts"][0]["attitude"] == "supporter"
    assert invoke(runner, directory, out).stderr.count("unchanged") == 1


def test_a_merge_that_would_not_read_back_is_never_written(runner, tmp_path, monkeypatch):
    directory = small_export(tmp_path / "e")
    out = tmp_path / "plans"
    out.mkdir()
    (out / "acme-corp.yaml").write_text(HAND_WRITTEN)
    real_emit = sf._emit
    monkeypatch.setattr(sf, "_emit", lambda yaml, doc: real_emit(yaml, doc).replace("name: Deal 2", "name: [Deal"))
    edit_csv(directory / "Contact.csv", lambda header, rows: set_cell(header, rows[0], "Title", "Chair"))
    result = invoke(runner, directory, out)
    assert result.exit_code == 1
    assert "the updated plan would not be readable YAML" in result.stderr
    assert (out / "acme-corp.yaml").read_text() == HAND_WRITTEN


@pytest.mark.parametrize("original, base, new, expected", [
    # ruamel writes `x:` for `x: ~`: the person's line stays, the change is applied elsewhere
    ("a: 1\nx: ~\nb: 2\n", "a: 1\nx:\nb: 2\n", "a: 1\nx:\nb: 3\n", "a: 1\nx: ~\nb: 3\n"),
    # additions at the start and the very end
    ("a: 1\nx: ~\n", "a: 1\nx:\n", "z: 0\na: 1\nx:\ny: 2\n", "z: 0\na: 1\nx: ~\ny: 2\n"),
    # the change touches the normalized line itself: the merged emission wins there
    ("a: 1\nx: ~\n", "a: 1\nx:\n", "a: 1\nx: 5\n", "a: 1\nx: 5\n"),
    ("a: 1\n", "a: 1\n", "a: 2\n", "a: 2\n"),
])
def test_the_three_way_patch_keeps_lines_the_merge_did_not_change(original, base, new, expected):
    assert sf._three_way(original, base, new) == expected


def test_an_unreadable_plan_is_reported_and_never_overwritten(runner, tmp_path):
    directory = small_export(tmp_path / "e")
    out = tmp_path / "plans"
    out.mkdir()
    broken = "format: ssm-plan/1\naccount: [\n  id: acme-corp\n"
    (out / "acme-corp.yaml").write_text(broken)
    result = invoke(runner, directory, out)
    assert result.exit_code == 1
    assert f"{out / 'acme-corp.yaml'}: cannot update this plan of account 'Acme Corp': line 4: invalid YAML" \
        in result.stderr
    assert (out / "acme-corp.yaml").read_text() == broken
    assert [path.name for path in out.iterdir()] == ["acme-corp.yaml"]


def test_a_plan_whose_lists_are_not_lists_is_reported(runner, tmp_path):
    directory = small_export(tmp_path / "e")
    out = tmp_path / "plans"
    out.mkdir()
    text = "format: ssm-plan/1\naccount:\n  id: acme-corp\n  name: Acme Corp\n  owner: x\ncontacts: nobody\n"
    (out / "acme-corp.yaml").write_text(text)
    result = invoke(runner, directory, out)
    assert result.exit_code == 1 and "`contacts` is not a list; fix it, then import again" in result.stderr
    assert (out / "acme-corp.yaml").read_text() == text


def test_a_hand_written_plan_that_does_not_validate_is_updated_and_reported(runner, tmp_path):
    directory = small_export(tmp_path / "e")
    out = tmp_path / "plans"
    out.mkdir()
    (out / "acme-corp.yaml").write_text(HAND_WRITTEN.replace("  goal: Quarterly", "  gaol: Quarterly"))
    result = invoke(runner, directory, out)
    assert result.exit_code == 1
    assert "Plans that do not validate (1)" in result.stderr and "unknown key `gaol`" in result.stderr


def test_another_account_with_the_same_name_gets_its_own_file(runner, tmp_path):
    directory = small_export(tmp_path / "e")
    edit_csv(directory / "Account.csv", lambda header, rows: rows.append([sf_id("001", 2), "Acme Corp", "", JANE]))
    out = tmp_path / "plans"
    assert invoke(runner, directory, out).exit_code == 0
    assert sorted(path.name for path in out.iterdir()) == ["acme-corp-2.yaml", "acme-corp.yaml"]
    assert plan_data(out / "acme-corp-2.yaml")["account"]["id"] == "acme-corp-2"
    assert invoke(runner, directory, out).stderr.count("unchanged") == 1  # both matched by tag


def test_text_the_loader_would_read_as_another_type_is_quoted(runner, tmp_path):
    directory = small_export(tmp_path / "e", contact_titles=["No", "0123", "12:30"])
    out = tmp_path / "plans"
    assert invoke(runner, directory, out).exit_code == 0
    text = (out / "acme-corp.yaml").read_text()
    assert "title: 'No'" in text and "title: '0123'" in text and "title: '12:30'" in text
    assert [c["title"] for c in plan_data(out / "acme-corp.yaml")["contacts"]] == ["No", "0123", "12:30"]


# -- the output directory: only plans are merged, nothing else is touched ------------------------


def one_account(directory: Path, name: str) -> Path:
    directory = small_export(directory)
    edit_csv(directory / "Account.csv", lambda header, rows: set_cell(header, rows[0], "Name", name))
    return directory


def snapshot(out: Path) -> dict[str, bytes]:
    return {path.name: path.read_bytes() for path in out.iterdir() if path.is_file() and not path.is_symlink()}


@pytest.mark.parametrize("name, content", [
    ("config.yaml", "# the application's settings\napp:\n  debug: true\n"),
    ("values.yaml", "- a\n- b\n"),
    ("config.yaml", "format: other-tool/3\naccount:\n  id: config\n"),
    ("config.yaml", "just text\n"),
    ("config.yaml", "key: [unclosed\n"),
    ("config.yaml", ""),
])
def test_a_file_that_is_not_a_plan_is_never_merged_into(runner, tmp_path, name, content):
    account = name.removesuffix(".yaml").title()
    directory = one_account(tmp_path / "e", account)
    out = tmp_path / "plans"
    out.mkdir()
    (out / name).write_text(content)
    result = invoke(runner, directory, out)
    assert result.exit_code == 0, result.stderr
    assert (out / name).read_text() == content
    other = out / name.replace(".yaml", "-2.yaml")
    assert (f"Note: {out / name} is not a plan (it has no `format: ssm-plan/1`): left as it is; the plan of "
            f"account '{account}' is {other}.") in result.stderr
    assert plan_data(other)["account"]["id"] == other.stem
    again = invoke(runner, directory, out)  # found by its tag from now on
    assert again.exit_code == 0 and "1 unchanged" in again.stderr and "Note:" not in again.stderr
    assert (out / name).read_text() == content


def test_a_file_that_is_not_a_plan_but_carries_the_accounts_tag_is_reported(runner, tmp_path):
    directory = one_account(tmp_path / "e", "Acme Corp")
    out = tmp_path / "plans"
    out.mkdir()
    text = "account:\n  id: acme-corp  # sf:0015g00000Xx001AAA\n  name: Acme Corp\n"  # `format:` deleted
    (out / "acme.yaml").write_text(text)
    result = invoke(runner, directory, out)
    assert result.exit_code == 1
    assert (f"{out / 'acme.yaml'}: account 'Acme Corp' not imported: this file carries its `# sf:` tag, but is "
            f"not a plan (it has no `format: ssm-plan/1`); if it is the plan, add `format: ssm-plan/1` as its "
            f"first line and import again") in result.stderr
    assert snapshot(out) == {"acme.yaml": text.encode()}


def test_a_plan_of_another_format_version_is_reported_not_duplicated(runner, tmp_path):
    directory = one_account(tmp_path / "e", "Acme Corp")
    out = tmp_path / "plans"
    out.mkdir()
    text = "format: ssm-plan/2\naccount:\n  id: acme-corp\n  name: Acme Corp\n"
    (out / "acme-corp.yaml").write_text(text)
    result = invoke(runner, directory, out)
    assert result.exit_code == 1
    assert ("cannot update this plan of account 'Acme Corp': its format is ssm-plan/2; this version of ssm "
            "updates ssm-plan/1") in result.stderr
    assert snapshot(out) == {"acme-corp.yaml": text.encode()}


def test_a_symbolic_link_in_the_output_directory_is_neither_followed_nor_replaced(runner, tmp_path):
    directory = one_account(tmp_path / "e", "Acme Corp")
    elsewhere = tmp_path / "elsewhere.yaml"
    elsewhere.write_text("format: ssm-plan/1\naccount:\n  id: acme-corp\n  name: Acme Corp\n  owner: x\n")
    out = tmp_path / "plans"
    out.mkdir()
    (out / "acme-corp.yaml").symlink_to(elsewhere)
    (out / "dangling.yaml").symlink_to(tmp_path / "nowhere")
    for args in ((), ("--dry-run",)):
        result = invoke(runner, directory, out, *args)
        assert result.exit_code == 1
        assert (f"{out / 'acme-corp.yaml'}: account 'Acme Corp' not imported: this file has the name of its plan, "
                f"but is a symbolic link, which the import neither follows nor replaces") in result.stderr
        assert result.stdout == ""  # the dry run shows nothing of the link's target
    assert (out / "acme-corp.yaml").is_symlink() and (out / "dangling.yaml").is_symlink()
    assert elsewhere.read_text().endswith("owner: x\n")
    assert sorted(path.name for path in out.iterdir()) == ["acme-corp.yaml", "dangling.yaml"]


def test_special_files_in_the_output_directory_are_never_opened_nor_replaced(runner, tmp_path):
    directory = one_account(tmp_path / "e", "Acme Corp")
    out = tmp_path / "plans"
    out.mkdir()
    os.mkfifo(out / "acme-corp.yaml")  # opening it for reading would wait for a writer forever
    (out / "acme-corp-2.yaml").mkdir()
    result = invoke(runner, directory, out)
    assert result.exit_code == 0, result.stderr
    assert f"{out / 'acme-corp.yaml'} is not a regular file: left as it is" in result.stderr
    assert (out / "acme-corp.yaml").is_fifo() and (out / "acme-corp-2.yaml").is_dir()
    assert plan_data(out / "acme-corp-3.yaml")["account"]["name"] == "Acme Corp"


def test_file_names_are_compared_whatever_their_case(runner, tmp_path):
    directory = one_account(tmp_path / "e", "Acme Corp")
    out = tmp_path / "plans"
    assert invoke(runner, directory, out).exit_code == 0
    (out / "acme-corp.yaml").rename(out / "Acme-Corp.YAML")  # a tagged plan under another spelling
    (out / "ACME-CORP-2.yml").write_text("not: a plan\n")  # would be the same file on macOS or Windows
    edit_csv(directory / "Account.csv", lambda header, rows: rows.append([sf_id("001", 2), "Acme Corp", "", JANE]))
    result = invoke(runner, directory, out)
    assert result.exit_code == 0, result.stderr
    assert sorted(path.name for path in out.iterdir()) == ["ACME-CORP-2.yml", "Acme-Corp.YAML", "acme-corp-3.yaml"]


def test_an_untagged_plan_goes_to_the_account_of_its_name_before_one_of_the_same_slug(runner, tmp_path):
    directory = one_account(tmp_path / "e", "ACME Corp.")
    edit_csv(directory / "Account.csv", lambda header, rows: rows.append([sf_id("001", 2), "Acme Corp", "", JANE]))
    out = tmp_path / "plans"
    out.mkdir()
    (out / "acme-corp.yaml").write_text("format: ssm-plan/1\naccount:\n  id: acme-corp\n  name: Acme Corp\n"
                                        "  owner: jo\n")
    assert invoke(runner, directory, out).exit_code == 0
    assert "sf:0015g00000Xx002AAA" in (out / "acme-corp.yaml").read_text()
    assert plan_data(out / "acme-corp-2.yaml")["account"]["name"] == "ACME Corp."


def test_an_untagged_plan_two_accounts_could_own_is_left_to_a_person(runner, tmp_path):
    directory = one_account(tmp_path / "e", "ACME Corp.")
    edit_csv(directory / "Account.csv", lambda header, rows: rows.append([sf_id("001", 2), "Acme Corp", "", JANE]))
    out = tmp_path / "plans"
    out.mkdir()
    text = "format: ssm-plan/1\naccount:\n  id: acme-corp\n  name: Acme\n  owner: jo\n"
    (out / "acme-corp.yaml").write_text(text)
    result = invoke(runner, directory, out)
    assert result.exit_code == 1
    assert result.stderr.count("this plan matches the id of 'ACME Corp.' (0015g00000Xx001AAA), 'Acme Corp' "
                               "(0015g00000Xx002AAA); put `# sf:<Id>` at the end of its `account.id` line") == 2
    assert snapshot(out) == {"acme-corp.yaml": text.encode()}


@pytest.mark.parametrize("out, message", [
    ("dangling", "--out {out}: not a directory (a symbolic link to nothing)"),
    ("afile/plans", "--out {out}: a part of this path is a file, not a directory"),
])
def test_an_output_directory_that_cannot_be_one_is_a_one_line_error(runner, tmp_path, out, message):
    (tmp_path / "dangling").symlink_to(tmp_path / "nowhere")
    (tmp_path / "afile").write_text("x")
    result = invoke(runner, small_export(tmp_path / "e"), tmp_path / out)
    assert result.exit_code == 2
    assert result.stderr == "ssm: " + message.format(out=tmp_path / out) + "\n"
    assert not (tmp_path / "nowhere").exists()


# -- values that YAML would read as another type --------------------------------------------------

YAML_LOOKALIKES = ["Yes", "No", "On", "off", "y", "n", "True", "NULL", "~", "1e3", "1_000", "0x10", "0o17", "017",
                   "-1", "+1", ".inf", ".NaN", "2026-01-01", "2026-1-1", "12:30", "190:20:30", "=", "<<", "1.5",
                   "- x", "? x", "[x]", "{x}", "&a", "*a", "!x", "%YAML", "@x", "`x", "|", ">", "#x", "x # y",
                   "x: y", "'", '"', "---", "...", "=HYPERLINK(\"http://x\",\"y\")", "+1+1", "@SUM(A1)",
                   "%TAG ! tag:x:", "\\N"]


@pytest.mark.parametrize("name", YAML_LOOKALIKES)
def test_every_value_the_import_writes_reads_back_as_the_same_text(runner, tmp_path, name):
    """Names, titles, owners and every ID derived from them (the account's, contacts', the
    opportunities' and the buying-unit references) come back as the text Salesforce had."""
    directory = small_export(tmp_path / "e", roles=[(1, 1, "Evaluator")], contact_titles=[name, name, name])
    edit_csv(directory / "Account.csv", lambda header, rows: (set_cell(header, rows[0], "Name", name),
                                                              set_cell(header, rows[0], "Industry", name)))
    edit_csv(directory / "Contact.csv", lambda header, rows: (set_cell(header, rows[0], "FirstName", ""),
                                                              set_cell(header, rows[0], "LastName", name)))
    edit_csv(directory / "Opportunity.csv", lambda header, rows: set_cell(header, rows[0], "Name", name))
    owner = name.replace("@", "").lower()
    write_rows(directory / "User.csv", [["Id", "Email"], [JANE, f"{owner}@example.com"]])
    out = tmp_path / "plans"
    result = invoke(runner, directory, out)
    assert result.exit_code == 0, result.stderr
    (path,) = out.iterdir()
    data = plan_data(path)
    slug = sf.slugify(name) or "account-0015g00000xx001aaa"
    assert data["account"] == {"id": slug, "name": name, "industry": name, "owner": owner}
    contact = data["contacts"][0]
    assert contact == {"id": sf.slugify(name) or "contact-0035g00000xx001aaa", "name": name, "title": name,
                       "owner": owner}
    (opportunity,) = data["opportunities"]
    assert opportunity["id"] == (sf.slugify(name) or "opportunity-0065g00000xx001aaa") and opportunity["name"] == name
    assert opportunity["buying_unit"] == {"evaluator": [contact["id"]]}
    assert "1 unchanged" in invoke(runner, directory, out).stderr


def test_a_plain_value_the_loader_misreads_is_quoted_on_reimport(runner, tmp_path):
    directory = small_export(tmp_path / "e", stages=["Prospecting", "Qualification"],
                             roles=[(1, 1, "Decision Maker"), (1, 3, "Evaluator")], contact_titles=["No", "CFO", "CTO"])
    out = tmp_path / "plans"
    out.mkdir()
    (out / "acme-corp.yaml").write_text(HAND_WRITTEN.replace("  title: CEO\n", "  title: No\n"))
    result = invoke(runner, directory, out)
    assert result.exit_code == 0, result.stderr
    assert "contact `first1-last1`: title 'No' quoted, to be read as text" in result.stderr
    assert (out / "acme-corp.yaml").read_text() == HAND_WRITTEN.replace("  title: CEO\n", "  title: 'No'\n")


def test_a_plan_the_loader_would_misread_is_never_written(runner, tmp_path, monkeypatch):
    directory = one_account(tmp_path / "e", "Yes")
    monkeypatch.setattr(sf, "_yaml_text", lambda value: value)  # as before quoting was fixed
    out = tmp_path / "plans"
    result = invoke(runner, directory, out)
    assert result.exit_code == 1
    assert ("cannot write the plan of account 'Yes': `ssm validate` would not read 'Yes', 'yes' as text "
            "(please report this)") in result.stderr
    assert not out.exists()
    out.mkdir()
    (out / "yes.yaml").write_text(HAND_WRITTEN.replace("acme-corp  #", "'yes'  #").replace("name: Acme Corp",
                                                                                            "name: 'Yes'"))
    edit_csv(directory / "Contact.csv", lambda header, rows: set_cell(header, rows[0], "Title", "On"))
    result = invoke(runner, directory, out)
    assert result.exit_code == 1
    assert "cannot update this plan of account 'Yes': `ssm validate` would not read 'On' as text" in result.stderr


def test_a_hand_written_value_the_loader_misreads_does_not_stop_the_update(runner, tmp_path):
    directory = small_export(tmp_path / "e", stages=["Prospecting", "Qualification"],
                             roles=[(1, 1, "Decision Maker"), (1, 3, "Evaluator")])
    edit_csv(directory / "Contact.csv", lambda header, rows: set_cell(header, rows[0], "Title", "Chair"))
    out = tmp_path / "plans"
    out.mkdir()
    text = HAND_WRITTEN.replace("  goal: Quarterly strategy breakfast\n", "  goal: yes\n")
    (out / "acme-corp.yaml").write_text(text)
    result = invoke(runner, directory, out)
    assert result.exit_code == 1  # it does not validate: `goal` must be text, as `ssm validate` says
    assert "Plans that do not validate (1)" in result.stderr
    assert (out / "acme-corp.yaml").read_text() == text.replace("title: CEO", "title: Chair")


# -- dry run, writing -----------------------------------------------------------------------------


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


def _files(directory: Path) -> sf.ExportFiles:
    users = directory / "User.csv"
    return sf.ExportFiles(directory / "Account.csv", directory / "Contact.csv", directory / "Opportunity.csv",
                          directory / "OpportunityContactRole.csv", users if users.exists() else None)


def test_only_the_plans_an_import_concerns_are_parsed_for_the_merge(runner, tmp_path, monkeypatch):
    """ruamel's round-trip parse costs ~50 times the plan loader: importing one account into a
    directory of a team's plans must not parse them all."""
    out = tmp_path / "plans"
    assert invoke(runner, EXPORT, out).exit_code == 0
    for number in range(5):
        (out / f"hand-written-{number}.yaml").write_text(f"format: ssm-plan/1\naccount:\n  id: other-{number}\n"
                                                         f"  name: Other {number}\n  owner: jo\n")
    parsed = []
    real = sf._parse_plan
    monkeypatch.setattr(sf, "_parse_plan", lambda plan: (parsed.append(plan.path.name), real(plan)))
    result = invoke(runner, EXPORT, out, "--account", NORTHWIND)
    assert result.exit_code == 0 and "1 unchanged" in result.stderr
    assert parsed == ["northwind-retail-group.yaml"]
