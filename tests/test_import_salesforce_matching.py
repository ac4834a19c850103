"""The output directory: each account finds its plan (tag, name, ID, file name); only plans are
merged, and nothing else in the directory is ever opened for writing, followed or replaced."""

from __future__ import annotations

import os
from datetime import date
from pathlib import Path

import pytest

from conftest import SPEC_EXAMPLE
from salesforce_export import (
    EXPORT, JANE, NORTHWIND, by_id, edit_csv, invoke, one_account, plan_data, set_cell, sf_id, small_export)
from ssm_rules.importers.salesforce import plans


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


def test_another_account_with_the_same_name_gets_its_own_file(runner, tmp_path):
    directory = small_export(tmp_path / "e")
    edit_csv(directory / "Account.csv", lambda header, rows: rows.append([sf_id("001", 2), "Acme Corp", "", JANE]))
    out = tmp_path / "plans"
    assert invoke(runner, directory, out).exit_code == 0
    assert sorted(path.name for path in out.iterdir()) == ["acme-corp-2.yaml", "acme-corp.yaml"]
    assert plan_data(out / "acme-corp-2.yaml")["account"]["id"] == "acme-corp-2"
    assert invoke(runner, directory, out).stderr.count("unchanged") == 1  # both matched by tag


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


def test_only_the_plans_an_import_concerns_are_parsed_for_the_merge(runner, tmp_path, monkeypatch):
    """ruamel's round-trip parse costs ~50 times the plan loader: importing one account into a
    directory of a team's plans must not parse them all."""
    out = tmp_path / "plans"
    assert invoke(runner, EXPORT, out).exit_code == 0
    for number in range(5):
        (out / f"hand-written-{number}.yaml").write_text(f"format: ssm-plan/1\naccount:\n  id: other-{number}\n"
                                                         f"  name: Other {number}\n  owner: jo\n")
    parsed = []
    real = plans.parse_plan
    monkeypatch.setattr(plans, "parse_plan", lambda plan: (parsed.append(plan.path.name), real(plan)))
    result = invoke(runner, EXPORT, out, "--account", NORTHWIND)
    assert result.exit_code == 0 and "1 unchanged" in result.stderr
    assert parsed == ["northwind-retail-group.yaml"]

