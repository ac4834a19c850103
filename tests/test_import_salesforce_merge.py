"""Re-import: the fields the CRM owns are refreshed, everything a person wrote survives byte for
byte, and a plan that would not read back is never written."""

from __future__ import annotations

from datetime import date

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from salesforce_export import (
    EXPORT, HAND_WRITTEN, JANE, RAJ, by_id, edit_csv, export_files, invoke, plan_data, set_cell, sf_id,
    small_export, stage_export, write_rows)
from ssm_rules.importers import salesforce as sf
from ssm_rules.importers.salesforce import merge
from ssm_rules.pipeline import load_plan


def test_reimport_without_changes_touches_nothing(runner, tmp_path):
    out = tmp_path / "plans"
    assert invoke(runner, EXPORT, out).exit_code == 0
    stamps = {path.name: (path.read_bytes(), path.stat().st_mtime_ns) for path in out.iterdir()}
    result = invoke(runner, EXPORT, out)
    assert result.exit_code == 0
    assert "0 new, 0 updated), 3 unchanged" in result.stderr
    assert {path.name: (path.read_bytes(), path.stat().st_mtime_ns) for path in out.iterdir()} == stamps


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
    result = sf.build_plans(sf.read_export(export_files(directory)), out)
    assert result.problems == []
    (output,) = result.outputs
    kept = [line for line in HAND_WRITTEN.splitlines() if not line.strip().startswith(CRM_OWNED_LINE)]
    remaining = iter(output.new_text.splitlines())
    assert all(any(line == other for other in remaining) for line in kept)
    loaded = load_plan("acme-corp.yaml", raw=output.new_text.encode("utf-8"))
    assert not loaded.problems, [problem.message for problem in loaded.problems]
    (out / "acme-corp.yaml").write_text(output.new_text, encoding="utf-8")
    again = sf.build_plans(sf.read_export(export_files(directory)), out)
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


def test_hand_added_people_and_roles_left_out_stay_in_the_buying_unit(runner, tmp_path):
    directory = small_export(tmp_path / "e", roles=[(1, 1, "Decision Maker"), (1, 3, "Champion")])
    out = tmp_path / "plans"
    out.mkdir()
    (out / "acme-corp.yaml").write_text(HAND_WRITTEN, encoding="utf-8")
    result = invoke(runner, directory, out)
    assert result.exit_code == 1  # the unknown role
    assert "evaluator: [first3-last3, sam-rivers]" in (out / "acme-corp.yaml").read_text()


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
    result = sf.build_plans(sf.read_export(export_files(directory)), out)
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
    again = sf.build_plans(sf.read_export(export_files(directory)), out)
    assert [output.status for output in again.outputs] == ["unchanged"]


def test_a_plan_whose_lists_are_not_lists_is_reported(runner, tmp_path):
    directory = small_export(tmp_path / "e")
    out = tmp_path / "plans"
    out.mkdir()
    text = "format: ssm-plan/1\naccount:\n  id: acme-corp\n  name: Acme Corp\n  owner: x\ncontacts: nobody\n"
    (out / "acme-corp.yaml").write_text(text)
    result = invoke(runner, directory, out)
    assert result.exit_code == 1 and "`contacts` is not a list; fix it, then import again" in result.stderr
    assert (out / "acme-corp.yaml").read_text() == text


def test_a_merge_that_would_not_read_back_is_never_written(runner, tmp_path, monkeypatch):
    directory = small_export(tmp_path / "e")
    out = tmp_path / "plans"
    out.mkdir()
    (out / "acme-corp.yaml").write_text(HAND_WRITTEN)
    real_emit = merge.emit
    monkeypatch.setattr(merge, "emit", lambda yaml, doc: real_emit(yaml, doc).replace("name: Deal 2", "name: [Deal"))
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
    assert merge.three_way(original, base, new) == expected

