"""`ssm check` end to end: findings with next actions on the sample plans, JSON, custom packs."""

from __future__ import annotations

import json
import shutil
import textwrap

import pytest

from conftest import FACTS
from ssm_rules.cli import main

AS_OF = "2026-11-27"


@pytest.fixture(scope="module")
def facts_report():
    from click.testing import CliRunner

    result = CliRunner().invoke(main, ["check", str(FACTS), "--as-of", AS_OF, "--format", "json", "--isolated"])
    assert result.exit_code == 1, result.output  # the flawed samples have errors on purpose
    return json.loads(result.output)


def plan_of(report, account):
    return next(plan for plan in report["plans"] if plan["account"] == account)


def test_the_healthy_plan_is_clean_and_its_outcome_complete(facts_report):
    healthy = plan_of(facts_report, "nordvik-insurance")
    assert healthy["findings"] == []
    assert healthy["outcome"] == {"met": ["G80", "G81", "G82", "G83", "G84", "G85"], "missing": []}


def test_every_flawed_plan_has_findings_with_owned_next_actions(facts_report):
    for plan in facts_report["plans"]:
        if plan["account"] == "nordvik-insurance":
            continue
        assert plan["findings"], plan["account"]
        for finding in plan["findings"]:
            assert finding["next_action"]["text"] and finding["next_action"]["owner"]
            assert finding["location"]["line"] >= 1


def test_next_actions_name_real_people_from_the_plan(facts_report):
    bank = plan_of(facts_report, "banca-valdadige")
    by_rule = {finding["rule"]: finding for finding in bank["findings"]}
    no_kdl = by_rule["SSM-BDU-001"]
    assert no_kdl["guidance"] == ["G60", "G64"]
    assert no_kdl["subject"] == {"kind": "opportunity", "id": "open-banking-api"}
    assert "Ask sponsor Davide Conti" in no_kdl["next_action"]["text"]
    at_risk = by_rule["SSM-BDU-012"]  # derived at-risk fact, escalated for a must-win opportunity
    assert at_risk["severity"] == "error" and "Roberto Gallo" in at_risk["message"]
    assert at_risk["next_action"]["owner"] == "giulia.ferraro"  # the account owner


def test_a_contact_finding_goes_to_the_contacts_owner(facts_report):
    bank = plan_of(facts_report, "banca-valdadige")
    neutral = next(f for f in bank["findings"] if f["rule"] == "SSM-BDU-009")
    assert neutral["subject"]["kind"] == "contact"
    assert neutral["next_action"]["owner"] == "amara.okafor"


def test_early_completion_claims_list_g86_and_the_missing_evidence(facts_report):
    telecom = plan_of(facts_report, "adriatel")
    claims = sorted(tuple(f["guidance"]) for f in telecom["findings"] if "G86" in f["guidance"])
    assert claims == [("G86", "G80"), ("G86", "G85")]


def test_summary_counts_every_severity(facts_report):
    counted = {"error": 0, "warning": 0, "info": 0}
    for plan in facts_report["plans"]:
        for finding in plan["findings"]:
            counted[finding["severity"]] += 1
    assert facts_report["summary"] == {"plans": 6, **counted}
    assert facts_report["as_of"] == AS_OF and facts_report["version"] == 1


def test_text_output_is_grouped_like_a_compilers(runner):
    result = runner.invoke(main, ["check", str(FACTS / "banca-valdadige.yaml"), "--as-of", AS_OF,
                                  "--isolated", "--no-color"])
    lines = result.output.splitlines()
    first = lines[0]
    assert first.startswith(f"{FACTS}/banca-valdadige.yaml:") and " SSM-" in first
    assert lines[1].startswith("    next: ") and "(owner: " in lines[1]
    assert any(line.endswith("outcome 5/6, missing G85") for line in lines)
    assert lines[-1].startswith("Checked 1 plan: 0 invalid, ")


def test_an_invalid_plan_is_reported_and_the_others_still_checked(runner, tmp_path):
    shutil.copy(FACTS / "nordvik-insurance.yaml", tmp_path / "a.yaml")
    (tmp_path / "b.yaml").write_text("format: ssm-plan/1\naccount: {id: b, name: B}\n")
    result = runner.invoke(main, ["check", str(tmp_path), "--as-of", AS_OF, "--format", "json", "--isolated"])
    assert result.exit_code == 1
    plans = json.loads(result.output)["plans"]
    assert plans[0]["findings"] == [] and "errors" not in plans[0]
    assert plans[1]["errors"][0]["message"] == "missing required key `owner` in account"


def test_fail_on_decides_the_exit_status(runner):
    healthy = str(FACTS / "nordvik-insurance.yaml")
    bank = str(FACTS / "banca-valdadige.yaml")
    assert runner.invoke(main, ["check", healthy, "--as-of", AS_OF, "--isolated"]).exit_code == 0
    assert runner.invoke(main, ["check", bank, "--as-of", AS_OF, "--isolated"]).exit_code == 1
    assert runner.invoke(main, ["check", bank, "--as-of", AS_OF, "--isolated", "--fail-on", "never"]).exit_code == 0


CUSTOM_PACK = {
    "pack.yaml": """\
        name: team-extras
        title: Our team's extra rules
        settings:
          min_value:
            default: 100000
            description: Smallest opportunity worth a must-win.
    """,
    "big-must-win.yaml": """\
        id: TEAM-X-001
        title: Must-win opportunity too small
        severity: warning
        guidance: [G21]
        when:
          - opportunity: o
            where: {must_win: true, value: {lt: $settings.min_value}}
        message: "Must-win '{o.name|o.key}' is worth only {o.value}."
        next_action: "Confirm with the sales manager that '{o.name|o.key}' deserves must-win status."
        description:
          what: Flags must-win opportunities below a value threshold.
          why: Must-win status should go to opportunities that matter to the team (SSM Part 2).
          example: "must_win: true, value: 5000"
        examples:
          fail:
            - plan: {opportunities: [{id: tiny, must_win: true, value: 5000}]}
          pass:
            - plan: {opportunities: [{id: big, must_win: true, value: 500000}]}
    """,
}


def write_pack(directory, files):
    directory.mkdir()
    for name, text in files.items():
        (directory / name).write_text(textwrap.dedent(text))
    return directory


def test_a_custom_pack_works_end_to_end(runner, tmp_path):
    pack = write_pack(tmp_path / "extras", CUSTOM_PACK)
    plan = tmp_path / "plan.yaml"
    plan.write_text("format: ssm-plan/1\naccount: {id: acme, name: Acme, owner: jo}\n"
                    "opportunities:\n  - id: tiny\n    name: Tiny deal\n    must_win: true\n    value: 5000\n")
    result = runner.invoke(main, ["check", str(plan), "--rules", str(pack), "--no-builtin", "--as-of", AS_OF,
                                  "--format", "json", "--isolated"])
    assert result.exit_code == 0, result.output  # a warning does not fail by default
    [finding] = json.loads(result.output)["plans"][0]["findings"]
    assert finding["rule"] == "TEAM-X-001"
    assert finding["message"] == "Must-win 'Tiny deal' is worth only 5000."
    assert finding["next_action"]["owner"] == "jo"
    assert (finding["location"]["line"], finding["location"]["path"]) == (4, "opportunities[0]")

    listed = runner.invoke(main, ["rules", "--rules", str(pack)])
    assert "TEAM-X-001" in listed.output and "SSM-BDU-001" in listed.output

    # A pack without an outcome: no "outcome 0/0" line for the plan.
    text = runner.invoke(main, ["check", str(plan), "--rules", str(pack), "--no-builtin", "--as-of", AS_OF,
                                "--isolated"])
    assert "outcome" not in text.output and text.output.startswith(f"{plan}:4:5: warning TEAM-X-001 ")


def test_a_broken_rule_file_is_exit_2_naming_file_and_line(runner, tmp_path):
    broken = dict(CUSTOM_PACK)
    broken["big-must-win.yaml"] = CUSTOM_PACK["big-must-win.yaml"].replace("where: {must_win", "where: {must_wim")
    pack = write_pack(tmp_path / "broken", broken)
    result = runner.invoke(main, ["check", str(FACTS), "--rules", str(pack), "--isolated"])
    assert result.exit_code == 2
    assert "big-must-win.yaml:7:" in result.output and "must_wim" in result.output
    assert "must_win" in result.output  # the suggestion


def test_explain_reads_like_rule_documentation(runner):
    result = runner.invoke(main, ["explain", "SSM-BDU-001"])
    assert result.exit_code == 0
    for heading in ("## What it does", "## Why is this bad?", "## Example", "G60", "G64"):
        assert heading in result.output
    unknown = runner.invoke(main, ["explain", "SSM-BDU-999"])
    assert unknown.exit_code == 2


def test_rule_authors_can_check_their_packs_examples(runner, tmp_path):
    pack = write_pack(tmp_path / "extras", CUSTOM_PACK)
    good = runner.invoke(main, ["rules", "--rules", str(pack), "--no-builtin", "--check-examples"])
    assert good.exit_code == 0, good.output
    assert good.output.strip() == "2 examples of 1 rule checked (as of 2026-06-30): 0 failed."

    wrong = dict(CUSTOM_PACK)
    wrong["big-must-win.yaml"] = CUSTOM_PACK["big-must-win.yaml"].replace("value: 500000", "value: 500")
    pack = write_pack(tmp_path / "wrong", wrong)
    bad = runner.invoke(main, ["rules", "--rules", str(pack), "--no-builtin", "--check-examples"])
    assert bad.exit_code == 1
    assert "TEAM-X-001-pass-1: fired on a pass example: Must-win 'big' is worth only 500." in bad.output


def test_a_rule_without_examples_is_a_warning_not_a_crash(runner, tmp_path):
    bare = dict(CUSTOM_PACK)
    text = CUSTOM_PACK["big-must-win.yaml"]
    bare["big-must-win.yaml"] = text[:text.index("examples:")]
    pack = write_pack(tmp_path / "bare", bare)
    result = runner.invoke(main, ["rules", "--rules", str(pack), "--no-builtin", "--check-examples"])
    assert result.exit_code == 0, result.output
    assert "internal error" not in result.output
    lines = result.output.strip().splitlines()
    assert lines[0].endswith("warning: TEAM-X-001 has no `fail` example, so nothing shows that it can fire; "
                             "add `examples: {fail: [{plan: ...}]}`")
    assert lines[0].startswith(str(pack / "big-must-win.yaml") + ":1: ")
    assert lines[-1] == "0 examples of 0 rules checked (as of 2026-06-30): 0 failed, 1 rule without a fail example."


def test_a_long_check_shows_progress_on_a_terminal_and_nothing_in_a_pipe(tmp_path):
    import os
    import pty
    import subprocess
    import sys

    plans = tmp_path / "plans"
    plans.mkdir()
    for copy in range(9):  # 54 plans: enough for a progress bar
        for plan in FACTS.glob("*.yaml"):
            shutil.copy(plan, plans / f"{copy}-{plan.name}")
    command = [sys.executable, "-m", "ssm_rules", "check", str(plans), "--as-of", "2026-11-27",
               "--format", "json", "--fail-on", "never", "--isolated", "--no-cache"]
    leader, follower = pty.openpty()
    with open(tmp_path / "report.json", "wb") as report, \
            subprocess.Popen(command, stdout=report, stderr=follower) as process:
        os.close(follower)
        terminal = b""
        while True:
            try:
                chunk = os.read(leader, 4096)
            except OSError:  # the terminal closed with the process
                break
            if not chunk:
                break
            terminal += chunk
    os.close(leader)
    stdout = (tmp_path / "report.json").read_bytes()
    assert b"Checking plans" in terminal and b"/54" in terminal  # how far it redraws depends on timing
    assert len(json.loads(stdout)["plans"]) == 54  # the report on stdout is untouched
    piped = subprocess.run(command, capture_output=True)
    assert piped.stderr == b""


def test_pinned_subjects_of_a_rule_that_starts_with_a_derived_fact_are_explained_not_a_crash(runner, tmp_path):
    """Regression: `ssm rules --check-examples` stopped with an internal error (KeyError) when a
    derivation rule's first pattern binds a derived fact (which has no key) and an example pins
    `subjects`."""
    pack = write_pack(tmp_path / "chain", {
        "pack.yaml": "name: chain\ntitle: A chain\n",
        "base.yaml": "id: C-1\ntitle: base\nwhen: [{opportunity: o}]\nderive: {kind: flag, fields: {o: $o.key}}\n"
                     "examples:\n  fail: [{plan: {opportunities: [{id: a}]}, subjects: [a]}]\n",
        "next.yaml": "id: C-2\ntitle: next\nwhen:\n  - flag: f\n  - opportunity: o\n    where: {key: $f.o}\n"
                     "derive: {kind: flag2, fields: {o: $o.key}}\n"
                     "examples:\n  fail: [{plan: {opportunities: [{id: a}]}, subjects: [a]}]\n",
    })
    result = runner.invoke(main, ["rules", "--rules", str(pack), "--no-builtin", "--check-examples"])
    assert result.exit_code == 1, result.output
    assert "C-2-fail-1: `subjects` pins keys, but the rule's first pattern binds `flag` facts" in result.output
    assert "internal error" not in result.output
