"""Reading the export's CSV files: columns, encodings, line ends, and every file-level problem
(exit 2, nothing written) named with its file, row and column."""

from __future__ import annotations

import codecs

import pytest

from salesforce_export import (
    EXPORT, GRANITE, JANE, invoke, plan_data, read_rows, sf_id, small_export, write_rows)
from ssm_rules.cli import main
from ssm_rules.importers.salesforce import tables
from ssm_rules.importers.salesforce.problems import ExportError


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


def test_header_case_bom_crlf_extra_columns_and_multiline_fields_are_read():
    accounts = tables.read_table(EXPORT / "Account.csv", "accounts",
                                 columns=[*tables.COLUMNS["accounts"], "BillingStreet"])
    assert EXPORT.joinpath("Account.csv").read_bytes().startswith(b"\xef\xbb\xbfId,")
    assert accounts.label("id") == "Id" and accounts.rows[0].get("ID") == GRANITE
    assert accounts.rows[0].get("BillingStreet") == "1 Quarry Lane\nSuite 400"
    assert [row.number for row in accounts.rows] == [2, 3, 4, 5]
    assert [row.line for row in accounts.rows] == [2, 4, 5, 6]  # the quoted line break
    contacts = tables.read_table(EXPORT / "Contact.csv", "contacts",
                                 columns=[*tables.COLUMNS["contacts"], "Description"])
    assert contacts.label("accountid") == "ACCOUNTID"
    assert contacts.rows[2].get("Title") == "VP, Claims Operations"
    assert contacts.rows[2].get("Description") == "Met at InsurTech Summit, Leeds.\nPrefers e-mail, not calls."


def test_only_the_columns_the_import_uses_are_kept():
    """A full export has dozens of columns per object; keeping them all took 4 GB for a 560 MB
    export."""
    contacts = tables.read_table(EXPORT / "Contact.csv", "contacts")
    kept = {key for row in contacts.rows for key in row.values}
    assert kept == {"id", "isdeleted", "accountid", "lastname", "firstname", "name", "title", "ownerid"}
    assert contacts.label("Description") == "DESCRIPTION"  # still named in messages


@pytest.mark.parametrize("chunk", [1, 2, 3, 5, 64, 1 << 20])
def test_files_are_read_the_same_whatever_the_size_of_the_chunks_decoded(monkeypatch, tmp_path, chunk):
    """Lines, a CRLF, a multi-byte character or a quoted line break split between two chunks."""
    monkeypatch.setattr(tables, "_CHUNK", chunk)
    every = [*tables.COLUMNS["contacts"], "Description"]
    contacts = tables.read_table(EXPORT / "Contact.csv", "contacts", columns=every)
    monkeypatch.setattr(tables, "_CHUNK", 1 << 20)
    assert contacts == tables.read_table(EXPORT / "Contact.csv", "contacts", columns=every)
    text = (EXPORT / "Contact.csv").read_text(encoding="utf-8")
    (tmp_path / "Contact.csv").write_bytes(text.encode("cp1252"))
    monkeypatch.setattr(tables, "_CHUNK", chunk)
    with pytest.raises(ExportError) as error:
        tables.read_table(tmp_path / "Contact.csv", "contacts")
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
    table = tables.read_table(path, "accounts")
    assert [(row.number, row.line, row.get("Name")) for row in table.rows] == [
        (2, 2, "Acme\rCorp"), (3, 4, "Beta")]


def test_a_line_that_never_ends_is_refused_not_read_forever(runner, tmp_path, monkeypatch):
    monkeypatch.setattr(tables, "MAX_LINE", 1000)
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

