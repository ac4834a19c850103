"""Matches -> findings: one per rule, subject and location; rendered, owned, located, ordered."""

from __future__ import annotations

import textwrap
import uuid
from pathlib import Path

import pytest

from ssm_rules.compiler import CompiledRules, compile_packs
from ssm_rules.engine import EngineResult, Match, RuleEngine
from ssm_rules.findings import Finding, build_findings, outcome
from ssm_rules.rulepack import load_packs

PACK = "name: f\ntitle: Findings tests\nsettings:\n  days: {default: 30}\n"

RULES = {
    "sponsor.yaml": """\
        id: F-SPONSOR
        title: Opportunity with a sponsor but no KDL
        severity: error
        guidance: [G60, G64]
        when:
          - opportunity: o
          - role: s
            where: {opportunity: $o.key, role: sponsor}
          - contact: sponsor
            where: {key: $s.contact}
          - not: role
            where: {opportunity: $o.key, role: key_decision_leader}
        subject: o
        location: buying_unit
        message: "Opportunity '{o.name|o.key}' has no key decision leader."
        next_action: >-
          Ask sponsor {sponsor.name|sponsor.key} to identify the key decision leader for
          '{o.name|o.key}' and arrange an introduction.
        owner: account
        """,
    "goal.yaml": """\
        id: F-GOAL
        title: Contact without a goal
        severity: warning
        when:
          - contact: c
            where: {goal: {exists: false}}
        location: goal
        message: "{c.name} has no goal"
        next_action: "Set a goal within {settings.days} days"
        """,
    "opposed.yaml": """\
        id: F-OPPOSED
        title: An opposed contact in a role
        severity: info
        when:
          - role: r
          - contact: c
            where: {key: $r.contact, attitude: opposed}
          - opportunity: o
            where: {key: $r.opportunity}
        subject: o
        location: "buying_unit.{r.role}"
        message: "{c.name} ({r.role}) is opposed"
        next_action: contain
        owner: c
        """,
    "issue.yaml": """\
        id: F-ISSUE
        title: Unconfirmed issue
        severity: warning
        guidance: []
        when:
          - issue: i
            where: {confirmed_with_client: false}
        message: "Issue '{i.text}' is not confirmed"
        next_action: confirm
        """,
    "review.yaml": """\
        id: F-REVIEW
        title: Never reviewed
        severity: error
        when:
          - plan: p
            where: {last_reviewed: {exists: false}}
        location: plan.last_reviewed
        message: never reviewed
        next_action: review
        """,
    "flag.yaml": """\
        id: F-FLAG
        title: flags plans
        when:
          - plan: p
        derive: {kind: evidence, fields: {item: G80}}
        """,
}


def compile_rules(tmp_path: Path, rules: dict[str, str] = RULES, **options) -> CompiledRules:
    directory = tmp_path / f"pack-{uuid.uuid4().hex[:8]}"
    directory.mkdir()
    (directory / "pack.yaml").write_text(PACK + "outcome: {kind: evidence, field: item, items: [G80, G81]}\n")
    for name, text in rules.items():
        (directory / name).write_text(textwrap.dedent(text))
    return compile_packs(load_packs([directory], include_builtin=False), **options)


PLAN = {"kind": "plan", "path": "", "key": "northwind", "owner": "jane.doe"}
OMNI = {"kind": "opportunity", "path": "opportunities[0]", "key": "omni", "name": "Omnichannel platform"}
LOYALTY = {"kind": "opportunity", "path": "opportunities[1]", "key": "loyalty"}
ANA = {"kind": "contact", "path": "contacts[0]", "key": "ana", "name": "Ana López", "owner": "raj.patel",
       "goal": "x"}
BEN = {"kind": "contact", "path": "contacts[1]", "key": "ben", "name": "Ben", "attitude": "opposed"}
SPONSOR_ANA = {"kind": "role", "path": "opportunities[0].buying_unit.sponsor[0]", "key": "omni/ana/sponsor",
               "opportunity": "omni", "contact": "ana", "role": "sponsor"}
SPONSOR_BEN = {"kind": "role", "path": "opportunities[0].buying_unit.sponsor[1]", "key": "omni/ben/sponsor",
               "opportunity": "omni", "contact": "ben", "role": "sponsor"}
EVALUATOR_BEN = {"kind": "role", "path": "opportunities[1].buying_unit.evaluator[0]", "key": "loyalty/ben/evaluator",
                 "opportunity": "loyalty", "contact": "ben", "role": "evaluator"}
ISSUE = {"kind": "issue", "path": "insight.issues[2]", "key": 2, "text": "Stock\ninvisible", "confirmed_with_client": False}
FACTS = [PLAN, ANA, BEN, OMNI, LOYALTY, SPONSOR_ANA, SPONSOR_BEN, EVALUATOR_BEN, ISSUE]
POSITIONS = {"": (1, 1), "plan": (5, 1), "contacts[0]": (20, 5), "contacts[1]": (30, 5), "opportunities[0]": (40, 5),
             "opportunities[0].buying_unit": (45, 7), "opportunities[1]": (60, 5), "insight.issues[2]": (12, 7)}


def locate(path: str) -> tuple[int, int]:
    """Like Document.locate: the nearest ancestor of `path` that the file has."""
    while path and path not in POSITIONS:
        cut = max(path.rfind("."), path.rfind("["))
        path = path[:cut] if cut > 0 else ""
    return POSITIONS[path]


@pytest.fixture
def checked(tmp_path):
    compiled = compile_rules(tmp_path)
    result = RuleEngine(compiled).run(FACTS)
    assert not result.errors
    return compiled, result


def test_a_finding_has_exactly_the_contract_shape(checked):
    compiled, result = checked
    findings = build_findings(compiled, FACTS, result, locate, "facts/northwind.yaml")
    sponsor = next(f for f in findings if f.rule == "F-SPONSOR")
    assert sponsor.to_json() == {
        "rule": "F-SPONSOR",
        "severity": "error",
        "guidance": ["G60", "G64"],
        "message": "Opportunity 'Omnichannel platform' has no key decision leader.",
        "subject": {"kind": "opportunity", "id": "omni"},
        "location": {"file": "facts/northwind.yaml", "line": 45, "column": 7, "path": "opportunities[0].buying_unit"},
        "next_action": {"text": "Ask sponsor Ana López to identify the key decision leader for 'Omnichannel "
                                "platform' and arrange an introduction.", "owner": "jane.doe"},
    }
    assert list(sponsor.to_json()) == ["rule", "severity", "guidance", "message", "subject", "location",
                                       "next_action"]


def test_one_finding_per_rule_subject_and_location_the_first_in_plan_order(checked):
    compiled, result = checked
    sponsor_matches = [m for m in result.matches if m.rule_id == "F-SPONSOR"]
    assert len(sponsor_matches) == 2  # Ana and Ben are both sponsors of omni
    for matches in (result.matches, result.matches[::-1]):
        reordered = EngineResult(matches=list(matches), derived=result.derived)
        (finding,) = [f for f in build_findings(compiled, FACTS, reordered, locate, "p.yaml") if f.rule == "F-SPONSOR"]
        assert "Ask sponsor Ana López" in finding.next_action  # Ana's role comes first in the plan
    # ... unless Ben's role comes first in the plan
    facts = [PLAN, ANA, BEN, OMNI, LOYALTY, SPONSOR_BEN, SPONSOR_ANA, EVALUATOR_BEN, ISSUE]
    (finding,) = [f for f in build_findings(compiled, facts, result, locate, "p.yaml") if f.rule == "F-SPONSOR"]
    assert "Ask sponsor Ben" in finding.next_action


def test_locations_that_differ_make_separate_findings(checked):
    compiled, result = checked
    findings = [f for f in build_findings(compiled, FACTS, result, locate, "p.yaml") if f.rule == "F-OPPOSED"]
    assert [(f.subject_id, f.path, (f.line, f.column)) for f in findings] == [
        ("omni", "opportunities[0].buying_unit.sponsor", (45, 7)),
        ("loyalty", "opportunities[1].buying_unit.evaluator", (60, 5)),
    ]


def test_owners(checked):
    compiled, result = checked
    findings = {(f.rule, f.subject_id): f for f in build_findings(compiled, FACTS, result, locate, "p.yaml")}
    assert findings["F-SPONSOR", "omni"].owner == "jane.doe"  # owner: account
    assert findings["F-OPPOSED", "omni"].owner == "jane.doe"  # owner: c, who has no owner
    assert findings["F-GOAL", "ben"].owner == "jane.doe"  # default, a contact without an owner
    assert findings["F-ISSUE", 2].owner == "jane.doe"  # default, not a contact: the account owner
    owned = dict(BEN, owner="raj.patel")
    facts = [PLAN, ANA, owned, OMNI, LOYALTY, SPONSOR_ANA, dict(SPONSOR_BEN), EVALUATOR_BEN, ISSUE]
    result = RuleEngine(compiled).run(facts)
    findings = {(f.rule, f.subject_id): f for f in build_findings(compiled, facts, result, locate, "p.yaml")}
    assert findings["F-OPPOSED", "loyalty"].owner == "raj.patel"  # owner: c
    assert findings["F-GOAL", "ben"].owner == "raj.patel"  # the subject is a contact with an owner
    assert findings["F-SPONSOR", "omni"].owner == "jane.doe"


def test_subjects_locations_and_rendering(checked):
    compiled, result = checked
    findings = {(f.rule, f.subject_id): f for f in build_findings(compiled, FACTS, result, locate, "p.yaml")}
    issue = findings["F-ISSUE", 2]
    assert (issue.subject_kind, issue.path, issue.line, issue.column) == ("issue", "insight.issues[2]", 12, 7)
    assert issue.message == "Issue 'Stock invisible' is not confirmed"  # one line
    assert issue.guidance == ()
    review = findings["F-REVIEW", "northwind"]
    assert (review.path, review.line) == ("plan.last_reviewed", 5)  # the plan's path is the root
    goal = findings["F-GOAL", "ben"]
    assert (goal.path, goal.next_action) == ("contacts[1].goal", "Set a goal within 30 days")


def test_findings_come_in_line_column_rule_order(checked):
    compiled, result = checked
    findings = build_findings(compiled, FACTS, result, locate, "p.yaml")
    assert [(f.line, f.column, f.rule) for f in findings] == sorted((f.line, f.column, f.rule) for f in findings)
    assert [f.rule for f in findings] == ["F-REVIEW", "F-ISSUE", "F-GOAL", "F-OPPOSED", "F-SPONSOR", "F-OPPOSED"]


def test_severity_overrides_and_unselected_rules(tmp_path):
    compiled = compile_rules(tmp_path, severity_overrides={"F-GOAL": "info"}, selected={"F-GOAL", "F-ISSUE"})
    result = RuleEngine(compiled).run(FACTS)
    findings = build_findings(compiled, FACTS, result, locate, "p.yaml")
    assert [(f.rule, f.severity) for f in findings] == [("F-ISSUE", "warning"), ("F-GOAL", "info")]


def test_matches_of_rules_without_a_finding_are_not_findings(checked):
    compiled, result = checked
    assert any(m.rule_id == "F-FLAG" for m in result.matches)
    assert all(f.rule != "F-FLAG" for f in build_findings(compiled, FACTS, result, locate, "p.yaml"))


def test_an_index_key_given_as_text_is_reported_as_a_number(checked):
    compiled, _ = checked
    issue = dict(ISSUE, key="2")
    result = EngineResult(matches=[Match("F-ISSUE", {"i": issue})])
    (finding,) = build_findings(compiled, [PLAN, issue], result, locate, "p.yaml")
    assert finding.subject_id == 2


def test_without_a_plan_fact_the_account_owner_is_unknown(checked):
    compiled, _ = checked
    result = EngineResult(matches=[Match("F-ISSUE", {"i": ISSUE})])
    (finding,) = build_findings(compiled, [ISSUE], result, locate, "p.yaml")
    assert finding.owner is None and finding.to_json()["next_action"]["owner"] is None


def test_a_finding_is_a_dataclass_whose_severity_can_be_replaced():
    import dataclasses

    finding = Finding("R", "error", (), "m", "plan", "a", "f", 1, 1, "", "n", None)
    assert dataclasses.replace(finding, severity="info").to_json()["severity"] == "info"


def test_outcome(checked, tmp_path):
    compiled, result = checked
    packs = compiled.packs
    assert outcome(packs, result.derived) == {"met": ["G80"], "missing": ["G81"]}
    assert outcome(packs[0], []) == {"met": [], "missing": ["G80", "G81"]}
    assert outcome(packs, [{"kind": "evidence", "item": "G81"}, {"kind": "other", "item": "G80"}]) == \
        {"met": ["G81"], "missing": ["G80"]}
    plain = compile_packs(load_packs([_pack_without_outcome(tmp_path)], include_builtin=False))
    assert outcome(plain.packs, result.derived) == {"met": [], "missing": []}


def _pack_without_outcome(tmp_path: Path) -> Path:
    directory = tmp_path / "plain"
    directory.mkdir()
    (directory / "pack.yaml").write_text("name: plain\ntitle: Plain\n")
    return directory
