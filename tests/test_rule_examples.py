"""Every built-in rule's own examples, run through the real pipeline and the real engine
(the logic is `ssm_rules.examples`, which `ssm rules --check-examples` also uses)."""

from __future__ import annotations

import pytest

from ssm_rules import examples
from ssm_rules.pipeline import Checker
from ssm_rules.rulepack import load_packs

PACKS = load_packs([], include_builtin=True)
CASES = examples.cases(PACKS)


@pytest.fixture(scope="module")
def checker() -> Checker:
    return Checker(packs=PACKS)


def test_every_rule_has_examples_to_run():
    assert len({case.rule.id for case in CASES}) == len({rule.id for pack in PACKS for rule in pack.rules})


@pytest.mark.parametrize("case", CASES, ids=lambda case: case.name)
def test_example(checker, case):
    assert examples.problems_of(case, checker) == []


def test_a_wrong_example_is_reported(checker):
    """The harness itself can fail: a pass example that does fire is caught."""
    case = next(c for c in CASES if c.rule.id == "SSM-BDU-001" and c.which == "fail")
    # The rule's fail example presented as a pass example.
    wrong = type("Mislabelled", (examples.ExampleCase,), {"example": property(lambda self: case.example)})(
        case.rule, "pass", 0)
    assert examples.problems_of(wrong, checker)[0].startswith("fired on a pass example")
