"""The plan's text as a person laid it out (indentation, line ends, flow style, comments), and
every value written so that the plan loader reads it back as the same text."""

from __future__ import annotations

import textwrap

import pytest

from salesforce_export import (
    HAND_WRITTEN, JANE, edit_csv, invoke, one_account, plan_data, set_cell, small_export, write_rows)
from ssm_rules.importers import salesforce as sf
from ssm_rules.importers.salesforce import merge, roundtrip


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


def test_text_the_loader_would_read_as_another_type_is_quoted(runner, tmp_path):
    directory = small_export(tmp_path / "e", contact_titles=["No", "0123", "12:30"])
    out = tmp_path / "plans"
    assert invoke(runner, directory, out).exit_code == 0
    text = (out / "acme-corp.yaml").read_text()
    assert "title: 'No'" in text and "title: '0123'" in text and "title: '12:30'" in text
    assert [c["title"] for c in plan_data(out / "acme-corp.yaml")["contacts"]] == ["No", "0123", "12:30"]


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
    for module in (merge, roundtrip):  # every value written unquoted, as before quoting was fixed
        monkeypatch.setattr(module, "yaml_text", lambda value: value)
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

