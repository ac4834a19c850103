"""The export's rows -> account records: IDs and slugs, owners, cell values, and the rows left
out (reported with file, row and column; exit 1)."""

from __future__ import annotations

from datetime import date

import pytest

from salesforce_export import (
    EXPORT, JANE, NORTHWIND, RAJ, by_id, edit_csv, invoke, plan_data, set_cell, sf_id, small_export,
    stage_export, write_rows)
from ssm_rules.importers import salesforce as sf


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


def test_an_owner_id_that_is_not_a_salesforce_id_is_reported_not_written(runner, tmp_path):
    directory = small_export(tmp_path / "e", users=False)
    edit_csv(directory / "Account.csv", lambda header, rows: set_cell(header, rows[0], "OwnerId", "=cmd|' /C calc'!A0"))
    out = tmp_path / "plans"
    result = invoke(runner, directory, out)
    assert result.exit_code == 1
    assert "column OwnerId: \"=cmd|' /C calc'!A0\" is not a Salesforce user ID: no owner taken from it" in result.stderr
    assert plan_data(out / "acme-corp.yaml")["account"]["owner"] == "unassigned"


def test_an_opportunity_owner_missing_from_the_users_file_is_its_user_id(runner, tmp_path):
    stranger = sf_id("005", 7)
    directory = stage_export(tmp_path / "e", [{"OwnerId": stranger}])
    out = tmp_path / "plans"
    result = invoke(runner, directory, out)
    assert result.exit_code == 1
    assert f"Opportunity.csv, row 2, column OwnerId: owner {stranger} is not in the users file" in result.stderr
    assert plan_data(out / "acme-corp.yaml")["opportunities"][0]["owner"] == stranger


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


@pytest.mark.parametrize("amount, value", [
    ("1250000", 1250000), ("640000.50", 640000.5), ("1,250,000.00", 1250000), ("1.25E+06", 1250000),
    ("0.0000001", 1e-07), ("9e15", 9e15), ("9007199254740991", 9007199254740991), ("+5", 5), ("0", 0),
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


@pytest.mark.parametrize("amount", ["1e300", "12345678901234567890", "-9007199254740992", "-1", "-0.5"])
def test_an_amount_beyond_what_a_plan_holds_is_left_out_with_a_warning(runner, tmp_path, amount):
    # A plan's value is within ±(2**53 - 1) (the pipeline review adds values up): writing 1e300
    # made a plan the importer's own validation then refused.
    directory = small_export(tmp_path / "e")
    edit_csv(directory / "Opportunity.csv", lambda header, rows: set_cell(header, rows[0], "Amount", amount))
    out = tmp_path / "plans"
    result = invoke(runner, directory, out)
    assert result.exit_code == 1
    assert f"column Amount: {amount!r} is beyond what a plan's value may be (0 to 9,007,199,254,740,991)" in result.stderr
    assert "value" not in plan_data(out / "acme-corp.yaml")["opportunities"][0]


@pytest.mark.parametrize("amount", ["1.234,50", "$1,000", "1_000", "NaN", "inf", "1e400", "12,34", "0x10"])
def test_an_amount_that_is_not_plainly_a_number_is_refused(runner, tmp_path, amount):
    directory = small_export(tmp_path / "e")
    edit_csv(directory / "Opportunity.csv", lambda header, rows: set_cell(header, rows[0], "Amount", amount))
    result = invoke(runner, directory, tmp_path / "plans")
    assert result.exit_code == 1
    assert f"column Amount: {amount!r} is not a number" in result.stderr


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


def test_only_the_selected_accounts_are_imported(runner, tmp_path):
    out = tmp_path / "plans"
    result = invoke(runner, EXPORT, out, "--account", "Granite Insurance, Ltd.", "--account", NORTHWIND)
    assert result.exit_code == 0, result.stderr
    assert sorted(path.name for path in out.iterdir()) == ["granite-insurance-ltd.yaml",
                                                           "northwind-retail-group.yaml"]
    result = invoke(runner, EXPORT, out, "--account", "bjornstad-son-rederi-as", "--account", "Nobody Inc")
    assert result.exit_code == 2
    assert "--account 'Nobody Inc': no such account" in result.stderr

