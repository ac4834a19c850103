"""The plan model: every class of validation error names the key, its line and the fix."""

from __future__ import annotations

import pytest

from conftest import SPEC_EXAMPLE, dedent
from ssm_rules.errors import PlanError
from ssm_rules.loader import load_bytes
from ssm_rules.model import Plan, validate

MINIMAL = """
format: ssm-plan/1
account:
  id: acme
  name: Acme
  owner: jane.doe
"""


def problems(text: str):
    with pytest.raises(PlanError) as caught:
        validate(load_bytes(dedent(text), "plan.yaml"))
    return caught.value.problems


def test_the_spec_example_is_valid():
    plan = validate(load_bytes(SPEC_EXAMPLE.read_bytes(), "northwind.yaml"))
    assert isinstance(plan, Plan)
    assert plan.account.id == "northwind-retail"
    assert plan.opportunities[0].buying_unit.key_decision_leader == ["li-wei"]


def test_minimal_plan_is_valid():
    assert validate(load_bytes(dedent(MINIMAL), "plan.yaml")).account.owner == "jane.doe"


def test_unknown_key_suggests_the_closest_known_key_at_its_line():
    [problem] = problems(MINIMAL + "plan:\n  last_review: 2026-10-02\n")
    assert problem.message == "unknown key `last_review` in plan: did you mean `last_reviewed`?"
    assert (problem.line, problem.column, problem.path) == (7, 3, "plan.last_review")


def test_unknown_key_without_a_close_match_lists_the_known_keys():
    [problem] = problems(MINIMAL + "outcome:\n  happiness: high\n")
    assert problem.message == "unknown key `happiness` in outcome; known keys: assessment_satisfied"
    assert problem.line == 7


def test_unknown_top_level_key():
    [problem] = problems(MINIMAL + "oportunities: []\n")
    assert "did you mean `opportunities`?" in problem.message
    assert problem.line == 6


def test_format_is_required():
    [problem] = problems(MINIMAL.replace("format: ssm-plan/1\n", ""))
    assert problem.message.startswith("missing `format: ssm-plan/1`")
    assert problem.line == 1


def test_another_format_version_is_a_clear_error():
    [problem] = problems(MINIMAL.replace("ssm-plan/1", "ssm-plan/2"))
    assert problem.message == "unsupported format 'ssm-plan/2': this version of ssm reads `format: ssm-plan/1`"
    assert problem.line == 1


def test_missing_required_key_points_at_its_parent():
    [problem] = problems("format: ssm-plan/1\naccount:\n  id: acme\n  name: Acme\n")
    assert problem.message == "missing required key `owner` in account"
    assert problem.line == 2


def test_enumeration_value_suggests_the_closest_choice():
    [problem] = problems(MINIMAL + "contacts:\n  - id: li-wei\n    attitude: suporter\n")
    assert problem.message == ("`attitude` must be one of supporter, neutral, unsupportive, opposed "
                               "(got 'suporter'): did you mean `supporter`?")
    assert (problem.line, problem.path) == (8, "contacts[0].attitude")


def test_list_item_enumeration_names_the_item():
    [problem] = problems(MINIMAL + "plan:\n  sources: [client, clent]\n")
    assert problem.message.startswith("`sources[1]` must be one of client, internal, partner")
    assert problem.line == 7


def test_id_must_be_a_slug():
    [problem] = problems(MINIMAL.replace("id: acme", "id: Acme Corp"))
    assert "`id` must be an ID: lowercase letters" in problem.message
    assert problem.line == 3


def test_dates_must_be_iso_dates():
    [problem] = problems(MINIMAL + "plan:\n  last_reviewed: last tuesday\n")
    assert problem.message == "`last_reviewed` must be an ISO date like 2026-10-02 (got 'last tuesday')"
    assert problem.line == 7


def test_a_section_that_is_not_a_mapping():
    [problem] = problems(MINIMAL + "team: 5\n")
    assert problem.message == "`team` must be a mapping of keys to values (got a number)"


def test_duplicate_ids_within_a_list_name_both_lines():
    [problem] = problems(MINIMAL + "contacts:\n  - id: li-wei\n  - id: ana\n  - id: li-wei\n")
    assert problem.message == "duplicate ID `li-wei` in contacts (first used at line 7): IDs must be unique"
    assert problem.line == 9


def test_unknown_contact_in_a_buying_unit_names_it_and_the_known_ones():
    [problem] = problems(MINIMAL + """\
contacts:
  - id: li-wei
  - id: ana-lopez
opportunities:
  - id: omni
    buying_unit:
      sponsor: [ana-lopez, li-way]
""")
    assert problem.message == "unknown contact `li-way`: did you mean `li-wei`? known contacts: li-wei, ana-lopez"
    assert (problem.line, problem.path) == (12, "opportunities[0].buying_unit.sponsor[1]")


def test_unknown_initiative_of_an_opportunity():
    [problem] = problems(MINIMAL + "opportunities:\n  - id: omni\n    initiative: growth\n")
    assert problem.message == "unknown initiative `growth`: known initiatives: none: the plan has no initiatives"
    assert (problem.line, problem.path) == (8, "opportunities[0].initiative")


def test_every_problem_is_reported_in_line_order():
    found = problems(MINIMAL + "plan:\n  last_review: 2026-10-02\ncontacts:\n  - id: x\n    influence: huge\n")
    assert [p.line for p in found] == [7, 10]


# ---- opportunity stages: owner, dates, verifiable outcomes, next step ----------------------------

STAGED = MINIMAL + """\
contacts:
  - id: li-wei
  - id: ana-lopez
opportunities:
  - id: omni
    stage: qualified
"""


def test_the_example_plan_keeps_every_stage_field():
    plan = validate(load_bytes(SPEC_EXAMPLE.read_bytes(), "northwind.yaml"))
    omni, lost = plan.opportunities
    assert (omni.owner, omni.stage_since.isoformat(), omni.close_date.isoformat()) == (
        "raj.patel", "2026-10-14", "2027-03-31")
    assert omni.outcomes.go_forward.by == ["li-wei"] and omni.outcomes.go_forward.date.isoformat() == "2026-10-14"
    assert omni.outcomes.conditional_approval is None
    assert "steering meeting" in omni.outcomes.go_forward.evidence
    assert (omni.next_step.action, omni.next_step.due.isoformat(), omni.next_step.owner) == (
        "Pilot scoping workshop with Li Wei's architects", "2026-12-10", "raj.patel")
    assert lost.lost_reason == "The client chose to build it in house"


def test_outcome_keys_are_the_milestones_in_order():
    from ssm_rules.model import Outcomes
    from ssm_rules.plan_format import MILESTONES

    assert list(Outcomes.model_fields) == [outcome for _, outcome in MILESTONES]
    assert [stage for stage, _ in MILESTONES] == ["identified", "validated", "qualified", "proposed", "won",
                                                   "completed"]


def test_an_unknown_contact_giving_an_outcome_names_it_and_the_known_ones():
    [problem] = problems(STAGED + "    outcomes:\n      interest: {date: 2026-07-02, by: [li-wei, ana-lopes]}\n")
    assert problem.message == ("unknown contact `ana-lopes`: did you mean `ana-lopez`? "
                               "known contacts: li-wei, ana-lopez")
    assert (problem.line, problem.column, problem.path) == (13, 49, "opportunities[0].outcomes.interest.by[1]")


def test_a_misspelt_outcome_key_suggests_the_milestone():
    [problem] = problems(STAGED + "    outcomes:\n      go_foward:\n        date: 2026-10-14\n")
    assert problem.message == "unknown key `go_foward` in opportunities[0].outcomes: did you mean `go_forward`?"
    assert (problem.line, problem.column) == (13, 7)


def test_stage_since_must_be_a_date():
    [problem] = problems(STAGED + "    stage_since: last week\n")
    assert problem.message == "`stage_since` must be an ISO date like 2026-10-02 (got 'last week')"
    assert (problem.line, problem.column, problem.path) == (12, 5, "opportunities[0].stage_since")


def test_an_outcome_needs_its_date_and_a_next_step_its_action():
    found = problems(STAGED + "    outcomes:\n      interest: {by: [li-wei]}\n    next_step: {due: 2026-12-01}\n")
    assert [(p.message, p.line) for p in found] == [
        ("missing required key `date` in opportunities[0].outcomes.interest", 13),
        ("missing required key `action` in opportunities[0].next_step", 14)]


def test_outcome_dates_and_due_dates_are_iso_dates():
    found = problems(STAGED + "    close_date: Q1\n    outcomes:\n      go_forward: {date: soon}\n"
                              "    next_step: {action: Call Li, due: next week}\n")
    assert [p.path for p in found] == ["opportunities[0].close_date", "opportunities[0].outcomes.go_forward.date",
                                       "opportunities[0].next_step.due"]


def test_thousands_of_dangling_references_are_reported_in_bounded_time_and_size():
    """Regression: every unknown reference got a did-you-mean search and the full list of known
    IDs: 20,000 of them against 3,000 contacts took three minutes and printed gigabytes."""
    contacts = "".join(f"  - id: c{i}\n" for i in range(100))
    by = ", ".join(f"x{i}" for i in range(300))
    found = problems(MINIMAL + "contacts:\n" + contacts + "opportunities:\n  - id: omni\n    outcomes:\n"
                     f"      interest: {{date: 2026-07-02, by: [{by}]}}\n")
    assert len(found) == 51
    assert found[0].message.startswith("unknown contact `x0`: known contacts: c0, c1,")
    assert found[0].message.endswith(", c29, ... (100 in all)")
    assert found[-1].message.startswith("250 more unknown references from here on (the first 50 are listed)")
    assert found[-1].path == "opportunities[0].outcomes.interest.by[50]"


def test_numbers_must_be_finite():
    """Regression: `share: .nan` made the route shares "add up" to NaN, which no rule can
    compare, so G30 said nothing; `value: .nan` hid a missing value from S12 the same way."""
    found = problems(MINIMAL + "opportunities:\n  - {id: a, stage: proposed, value: .nan}\n"
                               "routes_to_market: {routes: [{route: direct, share: .inf}]}\n")
    assert [(p.message, p.path) for p in found] == [
        ("`value` must be a finite number (got nan)", "opportunities[0].value"),
        ("`share` must be a finite number (got inf)", "routes_to_market.routes[0].share")]


def test_the_plain_path_leaves_non_finite_numbers_to_the_model():
    from ssm_rules.plan_shape import plain_plan

    data = {"format": "ssm-plan/1", "account": {"id": "a", "name": "A", "owner": "jo"},
            "team": {"target": float("-inf")}}
    assert plain_plan(data) is None
