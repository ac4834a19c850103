"""The opportunity stages end to end: what a seller reads about a deal's stage, who gets the
next action, and that lowering a stage never makes a plan look better than its evidence."""

from __future__ import annotations

import json
from datetime import date

import pytest

from conftest import FACTS, dedent
from ssm_rules.cli import main
from ssm_rules.pipeline import Checker

AS_OF = date(2026, 11, 27)

PLAN = """
format: ssm-plan/1
account: {id: acme, name: Acme, owner: jane.doe}
contacts:
  - {id: li-wei, name: Li Wei, owner: sam.lee, last_contact: 2026-11-20}
  - {id: ana-lopez, name: Ana López, owner: sam.lee, last_contact: 2026-11-20}
  - {id: tom-berg, name: Tom Berg, owner: sam.lee}
opportunities:
  - id: omni
    name: Omni platform
    owner: raj.patel
    stage: STAGE
    buying_unit: {key_decision_leader: [li-wei], sponsor: [ana-lopez], approver: [tom-berg]}
EXTRA"""


def plan_text(stage: str, extra: str = "") -> str:
    return PLAN.replace("STAGE", stage).replace("EXTRA", extra)


@pytest.fixture(scope="module")
def checker() -> Checker:
    return Checker()


def findings(checker, stage: str, extra: str = "") -> list:
    result = checker.check_file("acme.yaml", AS_OF, raw=dedent(plan_text(stage, extra)))
    assert not result.errors, result.errors
    return result.findings


def by_guidance(found, gid: str) -> list:
    return [f for f in found if gid in f.guidance]


OUTCOMES = {
    "interest": "      interest: {date: 2026-05-02, by: [ana-lopez], evidence: Asked for a workshop}\n",
    "need_confirmed": "      need_confirmed: {date: 2026-06-20, by: [ana-lopez], evidence: Signed summary}\n",
    "go_forward": "      go_forward: {date: 2026-09-14, by: [li-wei], evidence: Steering minutes}\n",
    "conditional_approval": "      conditional_approval: {date: 2026-10-30, by: [li-wei], evidence: Letter}\n",
    "contract_signed": "      contract_signed: {date: 2026-11-10, by: [tom-berg], evidence: Contract}\n",
}
NEXT_STEP = "    next_step: {action: Workshop, due: 2026-12-10}\n"


def outcomes(*keys: str) -> str:
    return "    outcomes:\n" + "".join(OUTCOMES[key] for key in keys)


# ---- S01: the claimed stage against the supported stage ---------------------------------------


@pytest.mark.parametrize(("stage", "recorded", "supported", "missing", "asked"), [
    ("validated", (), "no stage at all", "interest, need_confirmed", "sponsor Ana López"),
    ("qualified", ("interest",), "only identified", "need_confirmed, go_forward", "sponsor Ana López"),
    ("qualified", ("interest", "need_confirmed"), "only validated", "go_forward", "key decision leader Li Wei"),
    ("proposed", ("interest", "need_confirmed", "go_forward"), "only qualified", "conditional_approval",
     "key decision leader Li Wei"),
    ("won", ("interest", "need_confirmed", "go_forward", "conditional_approval"), "only proposed",
     "contract_signed", "approver Tom Berg"),
    # a gap: go_forward is recorded, but without need_confirmed it supports nothing
    ("qualified", ("interest", "go_forward"), "only identified", "need_confirmed, go_forward", "sponsor Ana López"),
])
def test_s01_names_claimed_and_supported_stage_every_missing_outcome_and_whom_to_ask(
        checker, stage, recorded, supported, missing, asked):
    (s01,) = by_guidance(findings(checker, stage, (outcomes(*recorded) if recorded else "") + NEXT_STEP), "S01")
    assert s01.severity == "error" and s01.subject_kind == "opportunity" and s01.subject_id == "omni"
    assert s01.message == (f"Opportunity 'Omni platform' is claimed at {stage} but its verifiable outcomes "
                           f"support {supported}: missing {missing}.")
    first = missing.split(", ")[0]
    assert s01.next_action.startswith(f"Ask {asked} for the {first} outcome of 'Omni platform'")
    assert s01.owner == "raj.patel"  # the opportunity's owner
    assert s01.path == f"opportunities[0].outcomes.{first}" or s01.path == "opportunities[0].outcomes.interest"


def test_s01_is_quiet_when_every_outcome_up_to_the_claim_counts(checker):
    found = findings(checker, "proposed", outcomes("interest", "need_confirmed", "go_forward",
                                                   "conditional_approval") + NEXT_STEP)
    assert by_guidance(found, "S01") == []


def test_an_outcome_that_does_not_count_leaves_a_gap(checker):
    future = outcomes("interest", "need_confirmed").replace("2026-06-20", "2026-12-20")
    found = findings(checker, "validated", future + NEXT_STEP)
    (s01,) = by_guidance(found, "S01")
    assert "support only identified: missing need_confirmed" in s01.message
    (s04,) = by_guidance(found, "S04")
    assert s04.path == "opportunities[0].outcomes.need_confirmed.date"


def test_with_nobody_in_the_role_the_next_action_is_to_find_them(checker):
    text = plan_text("qualified", outcomes("interest", "need_confirmed") + NEXT_STEP)
    found = checker.check_file("acme.yaml", AS_OF, raw=dedent(
        text.replace("key_decision_leader: [li-wei], ", ""))).findings
    (s01,) = by_guidance(found, "S01")
    assert s01.rule == "SSM-STG-002"
    assert s01.next_action.startswith("Identify the power sponsor (a key decision leader) for 'Omni platform'")


# ---- the complaint: lowering the stage does not make the plan look better --------------


def test_moving_an_unsupported_deal_back_to_identified_still_asks_for_its_evidence(checker):
    claimed = findings(checker, "validated")
    assert by_guidance(claimed, "S01") and by_guidance(claimed, "G86")
    lowered = findings(checker, "identified")
    assert not by_guidance(lowered, "S01") and not by_guidance(lowered, "G86")  # Phase 1 is not claimed
    assert [f.rule for f in by_guidance(lowered, "S02")] == ["SSM-STG-003"]  # the client's interest
    assert [f.rule for f in by_guidance(lowered, "S10")] == ["SSM-STG-010"]  # a dated next step


def test_a_deal_whose_outcomes_are_past_identified_claims_phase_1_whatever_its_stage_says(checker):
    """Recording the client's confirmed need but keeping the stage at identified must not hide
    that Phase 1 is claimed: G86 reports the missing evidence as for a validated deal."""
    evidence = outcomes("interest", "need_confirmed") + NEXT_STEP
    as_validated = {f.rule for f in by_guidance(findings(checker, "validated", evidence), "G86")}
    as_identified = {f.rule for f in by_guidance(findings(checker, "identified", evidence), "G86")}
    assert as_validated and as_identified == as_validated


# ---- who owns the next action -------------------------------------------------------------------


def test_stage_findings_go_to_the_opportunitys_owner_focus_findings_to_the_account_owner(checker):
    found = findings(checker, "validated")
    assert {f.owner for f in found if f.rule.startswith("SSM-STG")} == {"raj.patel"}
    focus_on_omni = [f for f in found if f.subject_id == "omni" and not f.rule.startswith("SSM-STG")]
    assert focus_on_omni and {f.owner for f in focus_on_omni} == {"jane.doe"}  # Phase 1 is the account's


def test_without_an_owner_the_opportunity_is_the_account_owners(checker):
    text = plan_text("validated").replace("    owner: raj.patel\n", "")
    found = checker.check_file("acme.yaml", AS_OF, raw=dedent(text)).findings
    assert {f.owner for f in found if f.rule.startswith("SSM-STG")} == {"jane.doe"}


# ---- one finding per opportunity and rule -------------------------------------------------------


def test_several_outcomes_at_fault_give_one_finding_at_the_first(checker):
    thin = ("    outcomes:\n      interest: {date: 2026-05-02, by: [ana-lopez]}\n"
            "      need_confirmed: {date: 2026-06-20, by: [ana-lopez]}\n")
    (s06,) = by_guidance(findings(checker, "validated", thin + NEXT_STEP), "S06")
    assert s06.path == "opportunities[0].outcomes.interest"


def test_s03_the_power_sponsor_gives_go_forward(checker):
    text = outcomes("interest", "need_confirmed", "go_forward").replace("by: [li-wei]", "by: [ana-lopez]")
    (s03,) = by_guidance(findings(checker, "qualified", text + NEXT_STEP), "S03")
    assert s03.rule == "SSM-STG-005"
    # named, as in the plan: the person who gave it and the one who should have
    assert "is given by Ana López, not by a key decision leader (the power sponsor)" in s03.message
    assert s03.next_action.startswith("Confirm the agreement to go forward on 'Omni platform' with key decision "
                                      "leader Li Wei and record them in outcomes.go_forward.by")


def test_s20_and_s31_ask_the_person_by_name(checker):
    # S20: a must-win deal at qualified whose key decision leader was last seen months ago
    engaged = plan_text("qualified", outcomes("interest", "need_confirmed", "go_forward") + NEXT_STEP)
    engaged = engaged.replace("    stage: qualified\n", "    stage: qualified\n    must_win: true\n")
    engaged = engaged.replace("name: Li Wei, owner: sam.lee, last_contact: 2026-11-20", "name: Li Wei, owner: sam.lee, "
                              "last_contact: 2026-06-01")
    (s20,) = by_guidance(checker.check_file("acme.yaml", AS_OF, raw=dedent(engaged)).findings, "S20")
    assert s20.next_action.startswith("Meet key decision leader Li Wei, the power sponsor of 'Omni platform',")
    # S31: the benefit owner if there is one, else the power sponsor
    won = plan_text("won", outcomes("interest", "need_confirmed", "go_forward", "conditional_approval",
                                    "contract_signed").replace("2026-11-10", "2026-03-10") + "    close_date: 2026-03-20\n")
    (s31,) = by_guidance(checker.check_file("acme.yaml", AS_OF, raw=dedent(won)).findings, "S31")
    assert s31.next_action.startswith("Review with key decision leader Li Wei the value 'Omni platform' delivers")
    with_benefit_owner = won.replace("approver: [tom-berg]}", "approver: [tom-berg], benefit_owner: [ana-lopez]}")
    (s31,) = by_guidance(checker.check_file("acme.yaml", AS_OF, raw=dedent(with_benefit_owner)).findings, "S31")
    assert s31.next_action.startswith("Review with benefit owner Ana López the value")


# ---- the samples and the command line -----------------------------------------------------------


def test_check_of_the_samples_shows_stage_findings_with_named_people(runner):
    result = runner.invoke(main, ["check", str(FACTS), "--as-of", "2026-11-27", "--isolated", "--no-cache",
                                  "--format", "json"])
    assert result.exit_code == 1
    document = json.loads(result.stdout)
    stage_findings = [f for plan in document["plans"] for f in plan["findings"] if f["rule"].startswith("SSM-STG")]
    assert len({f["rule"] for f in stage_findings}) >= 10
    asks = [f["next_action"]["text"] for f in stage_findings if f["guidance"] == ["S01"]]
    assert any(text.startswith("Ask key decision leader Ivana Marić for the conditional_approval outcome")
               for text in asks), asks
    healthy = next(plan for plan in document["plans"] if plan["account"] == "nordvik-insurance")
    assert healthy["findings"] == []


def test_either_pack_can_be_left_out_by_name(runner, tmp_path):
    plan = FACTS / "adriatel.yaml"
    for ignored, kept_prefix in (("stages", "SSM-STG"), ("focus", "SSM-")):
        (tmp_path / ".ssm.toml").write_text(f'ignore = ["{ignored}"]\n')
        result = runner.invoke(main, ["check", str(plan), "--as-of", "2026-11-27", "--format", "json",
                                      "--config", str(tmp_path / ".ssm.toml"), "--no-cache"])
        rules = {f["rule"] for f in json.loads(result.stdout)["plans"][0]["findings"]}
        assert rules, result.output
        if ignored == "stages":
            assert not any(rule.startswith(kept_prefix) for rule in rules)
        else:
            assert all(rule.startswith("SSM-STG") for rule in rules)
    # select one pack, then take one rule back out of it: the more specific selector wins
    (tmp_path / ".ssm.toml").write_text('select = ["stages"]\nignore = ["S13"]\n')
    result = runner.invoke(main, ["check", str(plan), "--as-of", "2026-11-27", "--format", "json",
                                  "--config", str(tmp_path / ".ssm.toml"), "--no-cache"])
    rules = {f["rule"] for f in json.loads(result.stdout)["plans"][0]["findings"]}
    assert rules and all(rule.startswith("SSM-STG") for rule in rules) and "SSM-STG-015" not in rules
    # a guidance ID is more specific than a pack: the stages pack and G86 only
    (tmp_path / ".ssm.toml").write_text('select = ["ALL", "G86"]\nignore = ["focus"]\n')
    result = runner.invoke(main, ["check", str(plan), "--as-of", "2026-11-27", "--format", "json",
                                  "--config", str(tmp_path / ".ssm.toml"), "--no-cache"])
    rules = {f["rule"] for f in json.loads(result.stdout)["plans"][0]["findings"]}
    assert {rule for rule in rules if not rule.startswith("SSM-STG")} == {"SSM-OUT-001", "SSM-OUT-006"}


@pytest.mark.parametrize(("setting", "message"), [
    ("stage_weights = {proposed = 50}", None),
    ('[settings.stages]\nstage_weights = {won = 90}', None),
    ("stage_weights = {propsed = 50}", "`stage_weights` has no `propsed` (did you mean `proposed`?)"),
    ("stage_weights = {proposed = \"high\"}", "expected a whole number like the pack's default 60"),
    ("stage_weights = 50", "expected a table of identified, validated, qualified, proposed, won"),
    ("stalled_days = nan", "expected a finite number"),
    # bounds: a negative day count made every open deal stalled, a weight of 150 a forecast
    # above the pipeline
    ("stalled_days = -1", "key `settings.stalled_days`: must be at least 0, got -1"),
    ("next_step_grace_days = -5", "key `settings.next_step_grace_days`: must be at least 0, got -5"),
    ('[settings.stages]\nengaged_days = -1', "key `settings.stages.engaged_days`: must be at least 0, got -1"),
    ("stage_weights = {won = 150}", "key `settings.stage_weights.won`: must be from 0 to 100, got 150"),
    ('[settings.stage_weights]\nproposed = -10', "key `settings.stage_weights.proposed`: must be from 0 to 100"),
    ("review_days = -1", "key `settings.review_days`: must be at least 0, got -1"),
    ("stalled_days = 0", None),
    ("stage_weights = {won = 100, identified = 0}", None),
])
def test_stage_weights_overrides_are_checked_name_by_name(runner, tmp_path, setting, message):
    config = tmp_path / ".ssm.toml"
    config.write_text(setting if setting.startswith("[") else f"[settings]\n{setting}\n")
    result = runner.invoke(main, ["check", str(FACTS / "nordvik-insurance.yaml"), "--as-of", "2026-11-27",
                                  "--config", str(config), "--no-cache"])
    if message is None:
        assert result.exit_code == 0, result.output
    else:
        assert result.exit_code == 2 and message in result.output, result.output
        assert "Traceback" not in result.output


def test_the_resolved_stage_weights_merge_an_override_with_the_defaults(tmp_path):
    from ssm_rules import config as configuration
    from ssm_rules.pipeline import configured_checker

    path = tmp_path / ".ssm.toml"
    path.write_text("[settings]\nstage_weights = {proposed = 50}\n")
    checker, _ = configured_checker(configuration.load(str(path)), None)
    weights = next(r for r in checker.compiled.rules.values() if r.rule.pack == "stages").settings["stage_weights"]
    assert weights == {"identified": 10, "validated": 20, "qualified": 40, "proposed": 50, "won": 100}
