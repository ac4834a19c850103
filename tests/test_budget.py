"""Every run is bounded: facts, matches, derived facts and time per plan (ssm_rules.budget).

A pair rule of a custom pack on 2,000 contacts ran 150 s and took 4.5 GB (one that also
derived a fact: over 300 s, 12.5 GB); 99,000 contacts in a 1.3 MB plan took 1.1 GB. The engine's
C core builds every combination inside one assert call, before any action could count them, so
the matches are bounded before asserting. Budgets are pack settings; a run uses the largest.
"""

from __future__ import annotations

import json
import shutil
from datetime import date
from pathlib import Path

import pytest

from conftest import FACTS
from ssm_rules import budget, engine
from ssm_rules.cli import main
from ssm_rules.compiler import Budget, compile_packs
from ssm_rules.engine import RuleEngine
from ssm_rules.errors import UsageError
from ssm_rules.rulepack import BUDGET_SETTINGS, load_packs

AS_OF = "2026-11-27"
BANK = FACTS / "banca-valdadige.yaml"
PACK = "name: team\ntitle: Team rules\n"
PAIR = """\
id: TEAM-001
title: Two contacts share an owner
severity: info
guidance: [G40]
when:
  - contact: a
  - contact: b
    where: {owner: $a.owner}
message: "{a.key} and {b.key} share {a.owner}"
next_action: check
"""
DERIVED_PAIR = PAIR.replace("TEAM-001", "TEAM-002") + "derive:\n  kind: shared_owner\n  fields: {first: $a.key, second: $b.key}\n"


def pack(tmp_path: Path, *rules: str, header: str = PACK) -> Path:
    directory = tmp_path / f"pack{len(list(tmp_path.glob('pack*')))}"
    directory.mkdir()
    (directory / "pack.yaml").write_text(header)
    for number, rule in enumerate(rules):
        (directory / f"rule{number}.yaml").write_text(rule)
    return directory


def contacts_plan(path: Path, count: int, owner: str = "jo") -> Path:
    lines = ["format: ssm-plan/1", "account: {id: acme, name: Acme, owner: jo}", "contacts:"]
    lines += [f"  - {{id: c{number}, owner: {owner}}}" for number in range(count)]
    path.write_text("\n".join(lines) + "\n")
    return path


def check(runner, *args):
    result = runner.invoke(main, ["check", *args, "--as-of", AS_OF, "--no-cache", "--format", "json"])
    assert result.exit_code in (0, 1), result.output
    return {Path(plan["file"]).name: plan for plan in json.loads(result.output)["plans"]}


def the_error(plan: dict) -> str:
    (error,) = plan["errors"]
    return error["message"]


def contact_facts(count: int, owner: str = "jo") -> list[dict]:
    return [{"kind": "contact", "path": f"contacts[{n}]", "key": f"c{n}", "owner": owner} for n in range(count)]


# ---- matches ---------------------------------------------------------------------------------


@pytest.mark.parametrize("rule, rule_id", [(PAIR, "TEAM-001"), (DERIVED_PAIR, "TEAM-002")])
def test_a_pair_rule_on_2000_contacts_is_refused_before_the_engine_builds_a_pair(tmp_path, monkeypatch, rule,
                                                                                  rule_id):
    rules = RuleEngine(compile_packs(load_packs([pack(tmp_path, rule)], include_builtin=False)))
    asserted = []
    real_assert = RuleEngine._assert
    monkeypatch.setattr(RuleEngine, "_assert", lambda self, run, name, batch, end_id:
                        asserted.append(batch) or real_assert(self, run, name, batch, end_id))
    result = rules.run(contact_facts(2000))
    assert asserted == []  # refused from the facts alone: the C core never saw them
    assert result.errors == [
        f"rule {rule_id} could match up to 4,002,000 combinations of this plan's facts (all rules 4,002,000), more "
        f"than max_matches = 100,000 allows; if the plan really needs more, raise it in [tool.ssm.settings]"]
    assert not rules.run(contact_facts(3)).errors  # the engine goes on with the next plan


def test_a_plan_over_the_budget_is_its_own_error_and_the_portfolio_goes_on(runner, tmp_path):
    directory = pack(tmp_path, PAIR)
    plans = tmp_path / "plans"
    plans.mkdir()
    contacts_plan(plans / "crowd.yaml", 400)  # 160,400 pairs: over the default budget
    shutil.copy(BANK, plans / "bank.yaml")
    plans_checked = check(runner, str(plans), "--rules", str(directory), "--isolated")
    assert "rule TEAM-001 could match up to 160,400 combinations" in the_error(plans_checked["crowd.yaml"])
    assert len(plans_checked["bank.yaml"]["findings"]) > 8  # the built-in rules and TEAM-001 ran on it


def test_the_budget_is_a_setting_the_configuration_can_raise(runner, tmp_path):
    directory = pack(tmp_path, PAIR)
    plan = contacts_plan(tmp_path / "crowd.yaml", 40)  # 40 + 1,600 frames for TEAM-001
    config = tmp_path / ".ssm.toml"
    config.write_text("builtin = false\n[settings]\nmax_matches = 1000\n")
    refused = check(runner, str(plan), "--rules", str(directory), "--config", str(config))
    assert "more than max_matches = 1,000 allows" in the_error(refused["crowd.yaml"])
    config.write_text("builtin = false\n[settings]\nmax_matches = 2000\n")
    checked = check(runner, str(plan), "--rules", str(directory), "--config", str(config))
    assert len(checked["crowd.yaml"]["findings"]) == 40


def test_the_closer_bound_keeps_plans_the_cheap_one_would_refuse(tmp_path):
    """The cheap bound counts every contact; the rule only pairs the opposed ones."""
    rule = PAIR.replace("  - contact: a\n", "  - contact: a\n    where: {attitude: opposed}\n")
    rules = RuleEngine(compile_packs(load_packs([pack(tmp_path, rule)], include_builtin=False)))
    facts = contact_facts(400)
    facts[0]["attitude"] = "opposed"
    result = rules.run(facts)
    assert not result.errors
    assert len(result.matches) == 399  # c0 with each other contact


def test_the_bound_is_never_below_the_matches_the_engine_makes(tmp_path):
    """The bound must be an upper bound: over the built-in rules and every sample plan."""
    from ssm_rules.facts import plan_facts
    from ssm_rules.pipeline import Checker, load_plan

    checker = Checker()
    seen = []
    real = engine._PlanRun.record

    def counting(self, rule, frame):
        real(self, rule, frame)
        seen.append(self)

    engine._PlanRun.record = counting
    try:
        for path in sorted(FACTS.glob("*.yaml")):
            facts = plan_facts(load_plan(str(path)).plan, date(2026, 11, 27))
            result = checker.engine.run(facts)
            assert not result.errors
            run = seen[-1]
            assert 0 < run.frames <= run.bounded, path.name
    finally:
        engine._PlanRun.record = real


def test_matches_past_the_budget_stop_the_plan_even_if_the_bound_were_wrong(tmp_path, monkeypatch):
    rules = RuleEngine(compile_packs(load_packs([pack(tmp_path, PAIR)], include_builtin=False),
                                     settings={"max_matches": 50}))
    monkeypatch.setattr(budget.RuleSet, "bound", lambda self, facts, known=None: 0)  # a bound that lies
    result = rules.run(contact_facts(10))
    assert result.errors == ["the rules matched more combinations of facts than max_matches = 50 allows (rule "
                             "TEAM-001 was running); if the plan really needs more, raise it in [tool.ssm.settings]"]


def test_join_groups_follow_the_engines_equality(tmp_path):
    """The engine's equality coerces (true == 1 == 1.0): a group bound must count them together."""
    shape = budget.PatternShape("opportunity", ("priority",), ())
    rule_set = budget.RuleSet([("R", (budget.PatternShape("opportunity", (), ()), shape))])
    facts = {"opportunity": [{"kind": "opportunity", "priority": value} for value in (1, 1.0, True, 2, "1")]}
    assert rule_set.bound(facts) == 5 + 5 * 3


# ---- facts, derived facts, time ----------------------------------------------------------------


def test_a_plan_with_more_facts_than_the_budget_is_refused_before_the_engine(runner, tmp_path):
    plan = contacts_plan(tmp_path / "crowd.yaml", 60)
    config = tmp_path / ".ssm.toml"
    config.write_text("[settings]\nmax_facts = 60\n")  # the bank plan has 54
    checked = check(runner, str(plan), str(BANK), "--config", str(config))
    assert the_error(checked["crowd.yaml"]) == (
        "the rules could not be checked: the plan gives the rules 65 facts (60 of them contact facts), more than "
        "max_facts = 60 allows; if the plan really needs more, raise it in [tool.ssm.settings]")
    assert checked["banca-valdadige.yaml"]["findings"]


def test_99000_contacts_are_refused_by_the_default_budget(tmp_path):
    rules = RuleEngine(compile_packs(load_packs([])))
    result = rules.run(contact_facts(99_000))
    assert result.errors and "99,000 of them contact facts), more than max_facts = 10,000" in result.errors[0]


def test_derived_facts_past_the_budget_name_the_rule(tmp_path):
    rules = RuleEngine(compile_packs(load_packs([pack(tmp_path, DERIVED_PAIR)], include_builtin=False),
                                     settings={"max_derived_facts": 20}))
    result = rules.run(contact_facts(6))  # 30 pairs, each a derived fact
    assert result.errors == ["rule TEAM-002 derived more facts from this plan than max_derived_facts = 20 allows; "
                             "if the plan really needs more, raise it in [tool.ssm.settings]"]


def test_a_plan_that_takes_longer_than_the_budget_names_the_running_rule(tmp_path, monkeypatch):
    rules = RuleEngine(compile_packs(load_packs([pack(tmp_path, PAIR)], include_builtin=False),
                                     settings={"max_seconds": 5.0}))
    clock = iter(range(0, 1000, 2))  # every reading of the clock is two seconds later
    monkeypatch.setattr(engine.time, "monotonic", lambda: next(clock))
    result = rules.run(contact_facts(5))
    assert result.errors == ["the rules took longer on this plan than max_seconds = 5.0 allows (rule TEAM-001 was "
                             "running); if the plan really needs more, raise it in [tool.ssm.settings]"]
    monkeypatch.undo()
    assert len(rules.run(contact_facts(5)).matches) == 20


# ---- the budget as pack settings ---------------------------------------------------------------


def test_every_pack_has_the_budget_and_a_run_uses_the_largest(tmp_path):
    small = pack(tmp_path, PAIR)
    large = pack(tmp_path, PAIR.replace("TEAM-001", "BIG-001"),
                 header="name: big\ntitle: Big\nsettings:\n  max_matches: {default: 500000, description: many}\n")
    packs = load_packs([small, large], include_builtin=False)
    assert [pack.settings["max_matches"].default for pack in packs] == [100_000, 500_000]
    assert compile_packs(packs).budget == Budget(facts=10_000, derived_facts=10_000, matches=500_000, seconds=30.0)
    assert compile_packs(packs, settings={"max_seconds": 2}).budget.seconds == 2
    assert set(BUDGET_SETTINGS) <= set(load_packs([])[0].settings)


@pytest.mark.parametrize("default", ["-5", "0", "lots", "1.5"])
def test_a_pack_declaring_a_budget_must_make_it_a_positive_whole_number(tmp_path, default):
    directory = pack(tmp_path, PAIR, header=f"name: team\ntitle: T\nsettings:\n  max_facts: {{default: {default}}}\n")
    with pytest.raises(UsageError, match="setting `max_facts` is a budget of every pack: its default must be a "
                                         "positive whole number"):
        load_packs([directory], include_builtin=False)


@pytest.mark.parametrize("value, message", [
    ("0", "setting `max_matches` is a budget: it must be more than 0, not `0`"),
    ("-3", "setting `max_matches` is a budget: it must be more than 0, not `-3`"),
])
def test_a_budget_set_to_nothing_is_a_configuration_error(runner, tmp_path, value, message):
    config = tmp_path / ".ssm.toml"
    config.write_text(f"[settings]\nmax_matches = {value}\n")
    result = runner.invoke(main, ["check", str(BANK), "--config", str(config)])
    assert result.exit_code == 2
    assert message in result.output


def test_a_non_finite_setting_is_a_configuration_error(runner, tmp_path):
    config = tmp_path / ".ssm.toml"
    config.write_text("[settings]\nmax_seconds = inf\n")
    result = runner.invoke(main, ["check", str(BANK), "--config", str(config)])
    assert result.exit_code == 2
    assert "key `settings.max_seconds`: expected a finite number, got inf" in result.output


def test_the_budget_is_listed_with_each_packs_settings(runner):
    result = runner.invoke(main, ["rules", "--format", "json"])
    assert result.exit_code == 0, result.output
    for listed in json.loads(result.output)["packs"]:
        budget_settings = {name: setting for name, setting in listed["settings"].items() if name in BUDGET_SETTINGS}
        assert {name: setting["default"] for name, setting in budget_settings.items()} == \
            {"max_facts": 10_000, "max_derived_facts": 10_000, "max_matches": 100_000, "max_seconds": 30.0}
        assert all(setting["description"] for setting in budget_settings.values())


def test_the_bound_kept_between_strata_is_the_bound_worked_out_afresh():
    """The engine keeps each kind's largest group while its facts do not change (a plan's facts
    only grow, stratum by stratum): the bound must be the one worked out from scratch."""
    from ssm_rules.budget import PatternShape, RuleSet

    rules = RuleSet([("PAIR", (PatternShape("contact", (), ()), PatternShape("contact", ("owner",), ()))),
                     ("CHAIN", (PatternShape("supported", (), ()), PatternShape("outcome", ("opportunity",), ())))])
    facts: dict[str, list[dict]] = {"contact": [{"owner": "ana"}, {"owner": "ana"}, {"owner": "ben"}],
                                    "outcome": [{"opportunity": "a"}, {"opportunity": "a"}]}
    known: dict = {}
    for step in range(6):
        assert rules.bound(facts, known) == rules.bound(facts), step
        facts.setdefault("supported", []).append({"rank": step})
        if step % 2:
            facts["outcome"].append({"opportunity": "b" if step < 3 else "a"})
        if step == 4:
            facts["contact"] += [{"owner": "ben"}] * 3
    assert known  # it was used
