"""Every rule's own examples, run through the real pipeline (and the real engine).

A `fail` example must make its rule fire (on exactly the `subjects` it pins, when given); a
`pass` example must not. For a rule that only derives facts, "fire" means "derive": those are
checked on the engine's matches, and evidence rules also on the plan's outcome. Examples are
judged as of 2026-06-30 with the pack's default settings.
"""

from __future__ import annotations

from datetime import date

import pytest

from ssm_rules.facts import plan_facts
from ssm_rules.model import Plan
from ssm_rules.pipeline import Checker
from ssm_rules.rulepack import all_rules, load_packs

AS_OF = date(2026, 6, 30)
ACCOUNT = {"id": "example-account", "name": "Example Account", "owner": "alex.morgan"}

PACKS = load_packs([], include_builtin=True)
RULES = {rule.id: rule for rule in all_rules(PACKS)}
OUTCOME = next(pack.outcome for pack in PACKS if pack.name == "focus")
CASES = [
    pytest.param(rule.id, which, index, id=f"{rule.id}-{which}-{index + 1}")
    for rule in RULES.values()
    for which, examples in (("fail", rule.examples.fail), ("pass", rule.examples.pass_))
    for index in range(len(examples))
]


@pytest.fixture(scope="module")
def checker() -> Checker:
    return Checker(packs=PACKS)


def _example(rule_id: str, which: str, index: int):
    rule = RULES[rule_id]
    example = (rule.examples.fail if which == "fail" else rule.examples.pass_)[index]
    return rule, example, {"format": "ssm-plan/1", "account": dict(ACCOUNT), **example.plan}


def _evidence_item(rule) -> str | None:
    if rule.derive is None or rule.derive.kind != OUTCOME.kind:
        return None
    return getattr(rule.derive.fields.get(OUTCOME.field), "value", None)


@pytest.mark.parametrize("rule_id, which, index", CASES)
def test_example(checker, rule_id, which, index):
    rule, example, data = _example(rule_id, which, index)
    result = checker.check_data(data, file=f"{rule_id.lower()}-{which}-{index + 1}.yaml", as_of=AS_OF)
    assert not result.errors, f"the example is not a valid plan: {result.errors}"

    if rule.has_finding:
        # Findings as the output contract shows them: subject {kind, id}, next_action {text, owner}.
        findings = [f.to_json() for f in result.findings if f.rule == rule_id]
        if which == "pass":
            assert not findings, f"fired on a pass example: {[f['message'] for f in findings]}"
            return
        assert findings, "did not fire on a fail example"
        if example.subjects is not None:
            assert sorted(str(f["subject"]["id"]) for f in findings) == sorted(str(s) for s in example.subjects)
        for finding in findings:
            assert finding["severity"] == rule.severity and finding["guidance"] == list(rule.guidance)
            assert "{" not in finding["message"] and "}" not in finding["message"], finding["message"]
            action = finding["next_action"]
            assert action["text"] and "{" not in action["text"], action["text"]
            assert action["owner"], "every next action has an owner"
            if rule.owner == "account":
                assert action["owner"] == ACCOUNT["owner"]
            assert finding["location"]["path"] and finding["location"]["line"], "it points at what to edit"
        return

    # A rule that only derives: look at the engine's matches, and at the outcome for evidence.
    matches = [m for m in checker.engine.run(plan_facts(Plan.model_validate(data), AS_OF)).matches
               if m.rule_id == rule_id]
    subject = rule.subject or next(p.name for p in rule.when if not p.negated)
    if which == "fail":
        assert matches, "derived nothing on a fail example"
        if example.subjects is not None:
            assert sorted({str(m.bindings[subject]["key"]) for m in matches}) == \
                sorted(str(s) for s in example.subjects)
    else:
        assert not matches, "derived a fact on a pass example"
    item = _evidence_item(rule)
    if item is not None and result.outcome is not None:
        assert (item in result.outcome["met"]) == (which == "fail"), result.outcome
