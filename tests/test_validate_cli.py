"""`ssm validate`: located errors, exit codes, one bad file never stops the others."""

from __future__ import annotations

import json
import textwrap
import subprocess
import sys

from conftest import FACTS, SPEC_EXAMPLE
from ssm_rules.cli import main


def test_sample_plans_are_all_valid(runner):
    result = runner.invoke(main, ["validate", str(FACTS)])
    assert result.exit_code == 0, result.output
    assert "invalid" in result.output and ", 0 invalid." in result.output


def test_bad_file_is_reported_and_the_others_still_checked(runner, tmp_path):
    (tmp_path / "a-good.yaml").write_bytes(SPEC_EXAMPLE.read_bytes())
    (tmp_path / "b-bad.yaml").write_text("format: ssm-plan/1\naccount:\n  id: x\n  name: X\n  ownr: jo\n")
    (tmp_path / "c-broken.yaml").write_text("format: ssm-plan/1\naccount: [\n")
    (tmp_path / "notes.txt").write_text("not a plan")
    result = runner.invoke(main, ["validate", str(tmp_path)])
    assert result.exit_code == 1
    lines = result.output.splitlines()
    assert f"{tmp_path}/b-bad.yaml:5:3: error: unknown key `ownr` in account: did you mean `owner`?" in lines
    assert any(line.startswith(f"{tmp_path}/c-broken.yaml:") for line in lines)
    assert lines[-1] == "Validated 3 plans: 1 valid, 2 invalid (3 problems)."


def test_json_output_follows_the_contract(runner, tmp_path):
    (tmp_path / "bad.yaml").write_text("format: ssm-plan/1\naccount:\n  id: x\n  name: X\n  ownr: jo\n")
    result = runner.invoke(main, ["validate", "--format", "json", str(tmp_path / "bad.yaml"), str(SPEC_EXAMPLE)])
    assert result.exit_code == 1
    document = json.loads(result.output)
    assert document["version"] == 1
    bad, good = document["plans"]
    assert bad["account"] == "x" and bad["findings"] == []
    error = bad["errors"][1]
    assert error["message"] == "unknown key `ownr` in account: did you mean `owner`?"
    assert error["location"] == {"file": str(tmp_path / "bad.yaml"), "line": 5, "column": 3, "path": "account.ownr"}
    assert "errors" not in good and good["account"] == "northwind-retail"
    assert document["summary"] == {"plans": 2, "error": 1, "warning": 0, "info": 0}


def test_a_path_that_does_not_exist_is_exit_2(runner, tmp_path):
    result = runner.invoke(main, ["validate", str(tmp_path / "nope.yaml")])
    assert result.exit_code == 2
    assert "nope.yaml: no such file or directory" in result.output


def test_the_installed_console_script_runs():
    ssm = subprocess.run([sys.executable, "-m", "ssm_rules", "validate", str(SPEC_EXAMPLE)],
                         capture_output=True, text=True)
    assert ssm.returncode == 0, ssm.stderr
    assert ssm.stdout.strip() == "Validated 1 plan: 1 valid, 0 invalid."


def test_format_and_reference_problems_are_reported_in_one_run(runner, tmp_path):
    """A file that parses gets every problem at once: an unknown key, a bad value, a missing ID,
    an unknown contact and initiative, a duplicate ID; not the references only after the
    format is fixed."""
    plan = tmp_path / "acme.yaml"
    plan.write_text(textwrap.dedent("""\
        format: ssm-plan/1
        account: {id: acme, name: Acme, owner: jane}
        contacts:
          - id: ana
            nmae: Ana
          - {name: No ID}
        opportunities:
          - id: omni
            stage: wonn
            initiative: unify
            buying_unit: {sponsor: [bob, ana]}
          - id: omni
        """))
    for command in (["validate"], ["check", "--isolated", "--no-cache"]):
        result = runner.invoke(main, [*command, str(plan)])
        assert result.exit_code == 1
        problems = [line.split(": error: ", 1)[1] for line in result.output.splitlines() if ": error: " in line]
        assert [line.split(": error: ")[0] for line in result.output.splitlines() if ": error: " in line] == [
            f"{plan}:5:5", f"{plan}:6:5", f"{plan}:9:5", f"{plan}:10:5", f"{plan}:11:29", f"{plan}:12:5"]
        assert problems[3] == "unknown initiative `unify`: known initiatives: none: the plan has no initiatives"
        assert problems[4] == "unknown contact `bob`: known contacts: ana"
        assert problems[5].startswith("duplicate ID `omni` in opportunities (first used at line 8)")


def test_references_are_only_read_where_they_can_be(runner, tmp_path):
    """An invalid plan with numbers for IDs, text where a list belongs and items that are not
    mappings: the format problems, the one unknown contact that can be read, nothing made up."""
    plan = tmp_path / "odd.yaml"
    plan.write_text(textwrap.dedent("""\
        format: ssm-plan/1
        account: {id: acme, name: Acme, owner: jane}
        contacts:
          - 5
          - {id: 7}
          - {id: ana}
        opportunities:
          - id: omni
            initiative: 12
            buying_unit: {sponsor: [bob, ana, 3], approver: notalist}
          - 3
        """))
    result = runner.invoke(main, ["validate", str(plan)])
    assert result.exit_code == 1 and "internal error" not in result.output
    unknown = [line for line in result.output.splitlines() if "unknown" in line]
    assert unknown == [f"{plan}:10:29: error: unknown contact `bob`: known contacts: ana"]


def test_a_contact_referenced_by_name_is_pointed_at_its_id(runner, tmp_path):
    plan = tmp_path / "acme.yaml"
    plan.write_text(textwrap.dedent("""\
        format: ssm-plan/1
        account: {id: acme, name: Acme, owner: jane}
        contacts:
          - {id: ana, name: Ana  López}
        opportunities:
          - {id: omni, buying_unit: {sponsor: [ana lópez]}}
        """))
    result = runner.invoke(main, ["validate", str(plan)])
    assert result.exit_code == 1
    assert "unknown contact `ana lópez`: `ana lópez` is the name of contact `ana`: write its ID; known contacts: ana" \
        in result.output
