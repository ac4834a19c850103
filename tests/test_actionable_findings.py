"""Built-in findings say what is wrong, where, and what to do about it, without double counting.

Each test here is a wrong or unhelpful finding a new user met on the sample plans, kept so it
cannot come back: a next action that does not lead to the fix, a duplicate counted twice, a
summary that hides who is concerned, a count that contradicts the advice.
"""

from __future__ import annotations

import textwrap
from datetime import date

import pytest
import yaml

from conftest import FACTS
from ssm_rules.pipeline import Checker

AS_OF = date(2026, 11, 27)


@pytest.fixture(scope="module")
def checker() -> Checker:
    return Checker()


def check(checker: Checker, text: str, name: str = "acme.yaml"):
    raw = textwrap.dedent(text).encode("utf-8")
    result = checker.check_file(name, AS_OF, raw=raw)
    assert not result.errors, result.errors
    return result


def of_rule(result, rule: str) -> list:
    return [finding for finding in result.findings if finding.rule == rule]


ACCOUNT = "format: ssm-plan/1\naccount: {id: acme, name: Acme, owner: jane.doe}\n"


# ---- 2: "Phase 1 claimed complete" names what claims it ----------------------------------------


def test_an_opportunity_past_identified_is_named_as_the_claim_and_the_finding_points_at_it(checker):
    result = check(checker, ACCOUNT + textwrap.dedent("""\
        plan:
          phase_complete: false
        opportunities:
          - id: kiosks
            name: Store kiosks
          - id: core
            name: Core banking
            stage: qualified
          - id: cards
            stage: proposed
        """))
    outcome_rules = {"SSM-OUT-001", "SSM-OUT-002", "SSM-OUT-005", "SSM-OUT-006", "SSM-OUT-007"}
    findings = [f for f in result.findings if f.rule in outcome_rules]
    assert {f.rule for f in findings} == outcome_rules
    for finding in findings:
        assert (finding.line, finding.path) == (10, "opportunities[1].stage")  # `stage: qualified`
        claim = "opportunity 'Core banking' at stage 'qualified' (and 1 more past 'identified')"
        assert claim in finding.message and claim in finding.next_action
        assert "phase_complete: false" not in finding.next_action  # it would change nothing
    (approval,) = of_rule(result, "SSM-OUT-001")
    assert approval.next_action.startswith("Review the account plan for Acme with the client")


def test_the_plans_own_claim_is_named_when_it_makes_one(checker):
    result = check(checker, ACCOUNT + "plan:\n  phase_complete: true\nopportunities:\n  - {id: a, stage: won}\n")
    (approval,) = of_rule(result, "SSM-OUT-001")
    assert (approval.line, approval.path) == (4, "plan.phase_complete")
    assert "by `plan.phase_complete: true`," in approval.message


# ---- 4: one finding per group of opportunities that share a priority ----------------------------


def test_one_finding_per_group_of_opportunities_sharing_a_priority(checker):
    result = check(checker, ACCOUNT + textwrap.dedent("""\
        opportunities:
          - {id: a, name: Alpha, priority: 2}
          - {id: b, name: Beta, priority: 2}
          - {id: c, priority: 2}
          - {id: d, name: Delta, priority: 1}
          - {id: e, name: Echo, priority: 1, stage: lost}
          - {id: f, name: Foxtrot, priority: 3}
        """))
    findings = of_rule(result, "SSM-OPP-003")
    assert [(f.subject_id, f.message) for f in findings] == [("a", "'Alpha' shares priority 2 with: Beta, c.")]
    assert findings[0].next_action.startswith("Decide in which order 'Alpha' and Beta, c come")


def test_opportunities_sharing_a_priority_are_never_paired(checker):
    """The duplicate check counts groups in the facts; it never pairs opportunities (2,000 of
    them sharing a priority made 4 million pairs: 207 s and 4.5 GB). The work is the engine's
    matches: ten times the opportunities must make about ten times the matches, and one
    SSM-OPP-003 match. (bench/duplicates.py times it.)"""
    from ssm_rules.facts import plan_facts
    from ssm_rules.loader import load_bytes
    from ssm_rules.plan_shape import validate

    def matches(count: int) -> tuple[int, int]:
        items = "".join(f"  - {{id: o{i}, name: Opp {i}, priority: 1}}\n" for i in range(count))
        raw = (ACCOUNT + "opportunities:\n" + items).encode()
        facts = plan_facts(validate(load_bytes(raw, "dup.yaml")), AS_OF)
        result = checker.engine.run(facts)
        return len(result.matches), sum(1 for m in result.matches if m.rule_id == "SSM-OPP-003")

    small, small_duplicates = matches(200)
    large, large_duplicates = matches(2000)
    assert small_duplicates == large_duplicates == 1
    assert large <= 10 * small + 100


# ---- 6: findings about the outcome name the people and opportunities concerned -----------------


def test_a_silent_key_contact_is_named_and_the_next_action_goes_to_their_owner(checker):
    result = check(checker, ACCOUNT + textwrap.dedent("""\
        plan: {phase_complete: true}
        initiatives:
          - {id: grow, goal: Grow}
        contacts:
          - {id: sofia, name: Sofia Marchetti, owner: luca.bianchi, last_contact: 2026-09-01}
          - {id: paolo, name: Paolo Rossi, owner: luca.bianchi, last_contact: 2026-11-20}
        opportunities:
          - id: core
            name: Core banking
            must_win: true
            initiative: grow
            buying_unit: {key_decision_leader: [paolo], sponsor: [sofia]}
          - id: cards
            name: Card fraud
            must_win: true
          - id: api
            name: Open API
            must_win: true
            buying_unit: {sponsor: [paolo]}
        """))
    (silent,) = of_rule(result, "SSM-OUT-004")
    assert (silent.subject_kind, silent.subject_id, silent.owner) == ("contact", "sofia", "luca.bianchi")
    assert "Sofia Marchetti, sponsor of must-win opportunity 'Core banking'" in silent.message
    assert "(last contact: 2026-09-01)" in silent.message
    assert silent.next_action.startswith("Meet Sofia Marchetti about 'Core banking'")
    (no_contact,) = of_rule(result, "SSM-OUT-008")
    assert (no_contact.subject_id, no_contact.path) == ("cards", "opportunities[1].buying_unit")
    unlinked = of_rule(result, "SSM-OUT-003")
    assert [f.subject_id for f in unlinked] == ["cards", "api"]
    assert "must-win opportunity 'Card fraud' serves no client initiative" in unlinked[0].message
    assert result.outcome["missing"] == ["G80", "G81", "G82", "G83", "G84", "G85"]


def test_every_missing_piece_of_evidence_of_a_claimed_phase_is_reported(checker):
    """On every sample plan and every rule example that claims Phase 1 complete, the outcome
    items missing are exactly those the SSM-OUT findings name, and an outcome that is met
    gets no SSM-OUT finding: the per-person findings did not lose or invent evidence."""
    from ssm_rules import examples
    from ssm_rules.facts import plan_facts
    from ssm_rules.loader import load_bytes
    from ssm_rules.plan_shape import validate

    plans = [(path.name, path.read_bytes(), AS_OF) for path in sorted(FACTS.glob("*.yaml"))]
    for case in examples.cases(checker.packs):
        data = yaml.safe_dump(case.plan_data(), sort_keys=False).encode("utf-8")
        plans.append((case.name + ".yaml", data, examples.AS_OF))
    claimed = 0
    for name, raw, as_of in plans:
        result = checker.check_file(name, as_of, raw=raw)
        if result.errors:
            continue
        (plan_fact,) = [f for f in plan_facts(validate(load_bytes(raw, name)), as_of) if f["kind"] == "plan"]
        named = {g for f in result.findings if f.rule.startswith("SSM-OUT-") for g in f.guidance} - {"G86"}
        if plan_fact["claims_complete"]:
            claimed += 1
            assert named == set(result.outcome["missing"]), name
        else:
            assert named == set(), name
    assert claimed >= 20


# ---- 7: the count and the advice agree -------------------------------------------------------


@pytest.mark.parametrize(("sources", "count"), [("", 0), ("plan: {sources: [internal]}\n", 1)])
def test_the_single_source_advice_asks_for_two_kinds(checker, sources, count):
    (finding,) = of_rule(check(checker, ACCOUNT + sources), "SSM-PLAN-003")
    assert f"validated with {count} kind(s) of source; SSM asks for at least two" in finding.message
    assert f"lists at least two kinds (it lists {count})" in finding.next_action
    assert "one more" not in finding.next_action


def test_thousands_of_opportunities_sharing_a_priority_give_a_message_of_a_line(checker):
    # SSM-OPP-003 named every other opportunity: 2,000 of them made a 60 KB message.
    deals = "".join(f"  - {{id: deal-{n}, name: Deal {n}, priority: 1, stage: lost}}\n" if n % 4 == 1 else
                    f"  - {{id: deal-{n}, name: Deal {n}, priority: 1}}\n" for n in range(2000))
    raw = "format: ssm-plan/1\naccount: {id: acme, name: Acme, owner: jane}\nopportunities:\n" + deals
    (finding,) = [f for f in checker.check_file("acme.yaml", AS_OF, raw=raw.encode()).findings
                  if f.rule == "SSM-OPP-003"]
    assert finding.message == "'Deal 0' shares priority 1 with: Deal 2, Deal 3, Deal 4, Deal 6, Deal 7 and 1,494 more."
    assert len(finding.next_action) < 300, finding.next_action
