"""Run rules' own examples through the real pipeline: the built-in pack's test suite and
`ssm rules --check-examples` for a team's own packs both use this.

A `fail` example must make its rule fire (on exactly the `subjects` it pins, when given); a
`pass` example must not. For a rule that only derives facts, "fire" means "derive": that is
checked on the engine's matches, and for the facts behind the plan's outcome on the outcome
too. Examples are judged as of 2026-06-30 with the packs' default settings.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from ssm_rules.plan_format import FORMAT

AS_OF = date(2026, 6, 30)
ACCOUNT = {"id": "example-account", "name": "Example Account", "owner": "alex.morgan"}


@dataclass(frozen=True)
class ExampleCase:
    rule: object  # ssm_rules.rulepack.Rule
    which: str  # "fail" or "pass"
    index: int  # 0-based among the rule's examples of that kind

    @property
    def name(self) -> str:
        return f"{self.rule.id}-{self.which}-{self.index + 1}"

    @property
    def example(self):
        examples = self.rule.examples.fail if self.which == "fail" else self.rule.examples.pass_
        return examples[self.index]

    def plan_data(self) -> dict:
        return {"format": FORMAT, "account": dict(ACCOUNT), **self.example.plan}


def cases(packs) -> list[ExampleCase]:
    from ssm_rules.rulepack import all_rules

    return [ExampleCase(rule, which, index)
            for rule in all_rules(packs) if rule.examples is not None
            for which, examples in (("fail", rule.examples.fail), ("pass", rule.examples.pass_))
            for index in range(len(examples))]


def without_examples(packs) -> list:
    """The rules that give no example of a plan they fire on (a rule without one is untested)."""
    from ssm_rules.rulepack import all_rules

    return [rule for rule in all_rules(packs) if rule.examples is None or not rule.examples.fail]


def problems_of(case: ExampleCase, checker) -> list[str]:
    """What is wrong with one example's result; empty when the rule behaves as the example says."""
    rule, which = case.rule, case.which
    data = case.plan_data()
    result = checker.check_data(data, file=f"{case.name.lower()}.yaml", as_of=AS_OF)
    if result.errors:
        return [f"the example is not a valid plan: {problem.message}" for problem in result.errors]
    if rule.has_finding:
        return _finding_problems(case, [f.to_json() for f in result.findings if f.rule == rule.id])
    return _derivation_problems(case, checker, data, result.outcome)


def _finding_problems(case: ExampleCase, findings: list[dict]) -> list[str]:
    rule = case.rule
    if case.which == "pass":
        return [f"fired on a pass example: {finding['message']}" for finding in findings]
    if not findings:
        return ["did not fire on a fail example"]
    problems = []
    pinned = case.example.subjects
    if pinned is not None:
        fired_on = sorted(str(f["subject"]["id"]) for f in findings)
        if fired_on != sorted(str(s) for s in pinned):
            problems.append(f"fired on {fired_on}, the example pins {sorted(str(s) for s in pinned)}")
    for finding in findings:
        action = finding["next_action"]
        if "{" in finding["message"] or "}" in finding["message"]:
            problems.append(f"the message has an unrendered placeholder: {finding['message']}")
        if not action["text"] or "{" in action["text"]:
            problems.append(f"the next action is empty or has an unrendered placeholder: {action['text']}")
        if not action["owner"]:
            problems.append("the next action has no owner")
        elif rule.owner == "account" and action["owner"] != ACCOUNT["owner"]:
            problems.append(f"the next action goes to {action['owner']}, not the account owner")
        if not (finding["location"]["path"] and finding["location"]["line"]):
            problems.append("the finding does not point at what to edit")
    return problems


def _derivation_problems(case: ExampleCase, checker, data: dict, outcome: dict | None) -> list[str]:
    from ssm_rules.facts import plan_facts
    from ssm_rules.model import Plan, to_record

    rule = case.rule
    matches = [m for m in checker.engine.run(plan_facts(to_record(Plan.model_validate(data)), AS_OF)).matches
               if m.rule_id == rule.id]
    problems = []
    if case.which == "pass":
        if matches:
            problems.append("derived a fact on a pass example")
    elif not matches:
        problems.append("derived nothing on a fail example")
    elif case.example.subjects is not None:
        subject = rule.subject or next(p.name for p in rule.when if not p.negated)
        if any("key" not in m.bindings[subject] for m in matches):
            kind = next(p.kind for p in rule.when if p.name == subject)
            return [f"`subjects` pins keys, but the rule's first pattern binds `{kind}` facts, which have "
                    f"none: bind a fact of the plan first, or leave `subjects` out"]
        derived_for = sorted({str(m.bindings[subject]["key"]) for m in matches})
        if derived_for != sorted(str(s) for s in case.example.subjects):
            problems.append(f"derived for {derived_for}, the example pins {sorted(map(str, case.example.subjects))}")
    item = _outcome_item(rule, checker.packs)
    if item is not None and outcome is not None and (item in outcome["met"]) != (case.which == "fail"):
        problems.append(f"the plan's outcome does not agree: {outcome}")
    return problems


def _outcome_item(rule, packs) -> str | None:
    """The outcome item a derivation rule proves (e.g. G80), if its pack's outcome is made of it."""
    pack = next((p for p in packs if p.name == rule.pack), None)
    spec = pack.outcome if pack else None
    if spec is None or rule.derive is None or rule.derive.kind != spec.kind:
        return None
    return getattr(rule.derive.fields.get(spec.field), "value", None)
