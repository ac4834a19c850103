"""`--owner NAME` on `ssm check`: one seller's next actions, what the summary counts, invalid
plans, the baseline, and a NAME nobody is called (ssm_rules.owners)."""

from __future__ import annotations

import json

import pytest

from conftest import FACTS, dedent
from ssm_rules.cli import main
from ssm_rules.owners import check_known, person_key, same_person
from ssm_rules.errors import UsageError

AS_OF = "2026-11-27"


def check(runner, *args):
    return runner.invoke(main, ["check", *map(str, args), "--as-of", AS_OF, "--isolated", "--no-cache"])


@pytest.fixture(scope="module")
def everyone():
    from click.testing import CliRunner

    result = check(CliRunner(), FACTS, "--format", "json")
    return json.loads(result.output)


def owners_of(document) -> set:
    return {finding["next_action"]["owner"] for plan in document["plans"] for finding in plan["findings"]}


def test_owner_keeps_exactly_the_findings_whose_next_action_they_own(runner, everyone):
    result = check(runner, FACTS, "--format", "json", "--owner", "giulia.ferraro")
    mine = json.loads(result.output)
    expected = [(plan["file"], finding) for plan in everyone["plans"] for finding in plan["findings"]
                if finding["next_action"]["owner"] == "giulia.ferraro"]
    assert expected, "the samples give giulia.ferraro findings"
    assert [(plan["file"], finding) for plan in mine["plans"] for finding in plan["findings"]] == expected
    assert owners_of(mine) == {"giulia.ferraro"}
    # The summary counts what is shown, and the exit status follows it.
    counts = {severity: sum(1 for _, f in expected if f["severity"] == severity) for severity in ("error", "warning",
                                                                                                   "info")}
    assert mine["summary"] == {"plans": len(everyone["plans"]), **counts}
    assert result.exit_code == (1 if counts["error"] else 0)


def test_owner_matches_in_any_case_and_the_text_summary_says_whose(runner):
    result = check(runner, FACTS, "--owner", "  Giulia.FERRARO ")
    assert "(owner: giulia.ferraro)" in result.output
    assert "(owner: " not in result.output.replace("(owner: giulia.ferraro)", "")
    last = result.output.rstrip().splitlines()[-1]
    assert last.startswith("Checked 6 plans (the next actions of giulia.ferraro): 0 invalid,")  # as the plans write it


def test_text_shows_the_outcome_only_of_plans_that_concern_the_owner(runner, everyone):
    result = check(runner, FACTS, "--owner", "giulia.ferraro")
    outcome_lines = [line for line in result.output.splitlines() if ": outcome " in line]
    assert outcome_lines and all("banca-valdadige" in line for line in outcome_lines)


def test_an_owner_nobody_is_called_is_a_usage_error_with_a_suggestion(runner):
    result = check(runner, FACTS, "--owner", "giulia.feraro")
    assert result.exit_code == 2
    assert "--owner giulia.feraro: nobody of that name" in result.output
    assert "did you mean `giulia.ferraro`?" in result.output


def test_an_owner_with_nothing_to_do_is_clean_not_an_error(runner, tmp_path):
    plan = tmp_path / "plan.yaml"
    plan.write_bytes(dedent("""
        format: ssm-plan/1
        account: {id: acme, name: Acme, owner: jane.doe}
        contacts:
          - {id: ana, name: Ana, owner: raj.patel, goal: Lunch, attitude: supporter, influence: high}
    """))
    result = check(runner, plan, "--owner", "raj.patel")
    assert result.exit_code == 0, result.output
    assert "Checked 1 plan (the next actions of raj.patel): 0 invalid, 0 errors, 0 warnings, 0 info." in result.output


def test_an_invalid_plan_is_always_reported(runner, tmp_path):
    (tmp_path / "good.yaml").write_bytes((FACTS / "banca-valdadige.yaml").read_bytes())
    (tmp_path / "broken.yaml").write_bytes(b"format: ssm-plan/1\naccount: {id: x, name: X, owner: nobody}\nbogus: 1\n")
    result = check(runner, tmp_path, "--owner", "giulia.ferraro", "--format", "json")
    assert result.exit_code == 1
    document = json.loads(result.output)
    broken = next(plan for plan in document["plans"] if plan["file"].endswith("broken.yaml"))
    assert broken["errors"]


def test_owner_applies_after_the_baseline(runner, tmp_path):
    """The baseline is matched against every finding: filtering first would report everyone
    else's baselined findings as "no longer found"."""
    baseline = tmp_path / "baseline.json"
    recorded = check(runner, FACTS, "--write-baseline", baseline)
    assert recorded.exit_code == 0, recorded.output
    result = check(runner, FACTS, "--baseline", baseline, "--owner", "giulia.ferraro")
    assert result.exit_code == 0, result.output
    assert "no longer found" not in result.output
    assert "0 errors, 0 warnings, 0 info" in result.output


def test_owner_cannot_write_a_baseline(runner, tmp_path):
    result = check(runner, FACTS, "--write-baseline", tmp_path / "b.json", "--owner", "giulia.ferraro")
    assert result.exit_code == 2
    assert "--owner and --write-baseline cannot be used together" in result.output
    assert not (tmp_path / "b.json").exists()


def test_names_compare_by_case_and_spacing_only():
    assert same_person("Raj  Patel", "raj patel") and not same_person("raj.patel", "raj patel")
    assert not same_person(None, "raj") and person_key(None) == ""
    with pytest.raises(UsageError, match="give the name of a team member"):
        check_known("  ", ["raj"])
    assert check_known("RAJ", ["raj"]) == "raj"
