"""Reusing a plan's engine run on a later as-of date (ssm_rules.replay): the nightly audit's
shortcut. A reused result must be exactly what a fresh run gives, on every day; and the
shortcut must stay in use (a guard that refuses everything would pass the first test alone)."""

from __future__ import annotations

import dataclasses
import importlib.util
import random
import shutil
import textwrap
import uuid
from datetime import date, timedelta
from pathlib import Path

import pytest

from ssm_rules.cache import Cache
from ssm_rules.compiler import compile_packs
from ssm_rules.engine import RuleEngine
from ssm_rules.facts import date_facts
from ssm_rules.pipeline import Checker
from ssm_rules.replay import Replayer
from ssm_rules.rulepack import load_packs

ROOT = Path(__file__).resolve().parent.parent


def everything(result) -> dict:
    """All a command shows of a result: the contract's JSON, the pipeline's view, the team."""
    return {**result.to_json(), "opportunities": result.opportunities, "team": list(result.team),
            "owner": result.account_owner}


@pytest.fixture(scope="module")
def portfolio(tmp_path_factory) -> list[str]:
    """The sample plans and generated plans of both sizes, with stage data."""
    folder = tmp_path_factory.mktemp("replay-plans")
    spec = importlib.util.spec_from_file_location("bench_generate", ROOT / "bench" / "generate.py")
    generator = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(generator)
    files = []
    for sample in sorted((ROOT / "facts").glob("*.yaml")):
        files.append(str(shutil.copy(sample, folder / sample.name)))
    for index in range(10):
        profile = "small" if index < 7 else "large"
        path = folder / f"{profile}-{index}.yaml"
        path.write_text(generator.plan_text(index, profile=profile), encoding="utf-8")
        files.append(str(path))
    return files


def test_a_reused_run_is_a_fresh_run_on_every_date(portfolio, tmp_path):
    """Dates walked as nightly audits walk them (mostly a day apart, sometimes a week or a
    month), each checked with the cache (reusing the previous date's run when it can) and
    without it: every result the same."""
    cached = Checker(cache=Cache(tmp_path / "cache", b"k" * 32))
    fresh = Checker()
    rng = random.Random(16)
    day = date(2026, 9, 1)
    checks = next_day_checks = next_day_reused = 0
    for step in range(40):
        gap = rng.choice((1, 1, 1, 1, 2, 3, 7, 30)) if step else 0
        day += timedelta(days=gap)
        for file in portfolio:
            before = cached.replayed
            assert everything(cached.check_file(file, day)) == everything(fresh.check_file(file, day)), (file, day)
            checks += 1
            if gap == 1:
                next_day_checks += 1
                next_day_reused += cached.replayed - before
    assert cached.replayed > 0
    # Most plans cross no threshold overnight: the shortcut serves most next-day checks.
    assert next_day_reused >= 0.6 * next_day_checks, (next_day_reused, next_day_checks)


def test_a_threshold_crossed_overnight_runs_the_engine(tmp_path):
    plan = ROOT / "facts" / "adriatel.yaml"
    last_reviewed = date(2026, 11, 10)  # facts/adriatel.yaml's; review_days is 92
    checker = Checker(cache=Cache(tmp_path / "cache", b"k" * 32))
    due = last_reviewed + timedelta(days=92)  # 92 days: not yet overdue
    assert "SSM-PLAN-002" not in {f.rule for f in checker.check_file(str(plan), due - timedelta(days=1)).findings}
    assert "SSM-PLAN-002" not in {f.rule for f in checker.check_file(str(plan), due).findings}
    assert checker.replayed == 1
    overdue = checker.check_file(str(plan), due + timedelta(days=1))
    assert checker.replayed == 1, "the run of the day before must not be reused across the threshold"
    (finding,) = [f for f in overdue.findings if f.rule == "SSM-PLAN-002"]
    assert everything(overdue) == everything(Checker().check_file(str(plan), due + timedelta(days=1)))
    # The next night reuses the overdue run, with the day count of its own date in the text.
    later = checker.check_file(str(plan), due + timedelta(days=2))
    assert checker.replayed == 2
    assert everything(later) == everything(Checker().check_file(str(plan), due + timedelta(days=2)))


PACK = "name: r\ntitle: Replay\nsettings:\n  quiet_days: {default: 10}\n"


def compile_rules(tmp_path: Path, rules: dict[str, str]):
    directory = tmp_path / f"pack-{uuid.uuid4().hex[:8]}"
    directory.mkdir()
    (directory / "pack.yaml").write_text(PACK)
    for name, text in rules.items():
        (directory / name).write_text(textwrap.dedent(text))
    return compile_packs(load_packs([directory], include_builtin=False))


DAY = date(2026, 11, 27)


def contact(key: str, days: int, on: date = DAY) -> dict:
    """A contact last met `days` before DAY, as a fact of the plan on the date `on`."""
    fact = {"kind": "contact", "path": f"contacts[{key}]", "key": key,
            "last_contact": (DAY - timedelta(days=days)).isoformat()}
    return date_facts([fact], on)[0]


def on(day: date, *facts: dict) -> list[dict]:
    """The same facts on another date."""
    return date_facts([dict(fact) for fact in facts], day)


QUIET = """\
id: R-QUIET
title: Contact gone quiet
severity: warning
when:
  - contact: c
    where: {days_since_contact: {gt: $settings.quiet_days}}
message: "{c.key} quiet for {c.days_since_contact} days"
next_action: call
"""


def test_values_compared_with_constants_are_reused_until_a_test_answers_otherwise(tmp_path):
    compiled = compile_rules(tmp_path, {"quiet.yaml": QUIET})
    engine, replayer = RuleEngine(compiled), Replayer(compiled)
    facts = [contact("ana", 11), contact("ben", 3)]
    earlier = replayer.record(facts, engine.run(facts), DAY)
    tomorrow = DAY + timedelta(days=1)
    result, record = replayer.replay(on(tomorrow, *facts), earlier, tomorrow)
    assert [(m.rule_id, m.bindings["c"]["days_since_contact"]) for m in result.matches] == [("R-QUIET", 12)]
    assert record.as_of == tomorrow  # the next night compares with this one's values
    a_week = DAY + timedelta(days=7)  # ben at 10 days: not yet past quiet_days
    assert replayer.replay(on(a_week, *facts), earlier, a_week) is not None
    eight_days = DAY + timedelta(days=8)  # ben at 11: crossed
    assert replayer.replay(on(eight_days, *facts), earlier, eight_days) is None
    assert replayer.replay(on(tomorrow, facts[0]), earlier, tomorrow) is None  # a fact fewer
    crossing = [contact("ana", 11), contact("ben", 10)]
    assert replayer.replay(on(tomorrow, *crossing), replayer.record(crossing, engine.run(crossing), DAY),
                           tomorrow) is None  # ben crossed overnight
    # Back in time too: ana at 10 days a day earlier is no longer quiet.
    assert replayer.replay(on(DAY - timedelta(days=1), *facts), earlier, DAY - timedelta(days=1)) is None


def test_values_compared_between_facts_are_never_reused(tmp_path):
    """Both counts move by one: the order between them holds, but the guard does not reason
    about comparisons between facts; it runs the engine."""
    compiled = compile_rules(tmp_path, {"older.yaml": """\
        id: R-OLDER
        title: Contact quieter than another
        severity: info
        when:
          - contact: a
          - contact: b
            where: {days_since_contact: {gt: $a.days_since_contact}}
        message: "{b.key} quieter than {a.key}"
        next_action: call
        """})
    engine, replayer = RuleEngine(compiled), Replayer(compiled)
    facts = [contact("ana", 5), contact("ben", 3)]
    earlier = replayer.record(facts, engine.run(facts), DAY)
    assert replayer.replay(on(DAY, *facts), earlier, DAY) is not None
    assert replayer.replay(on(DAY + timedelta(days=1), *facts), earlier, DAY + timedelta(days=1)) is None


def test_a_derived_fact_that_copies_a_moving_value_is_checked_too(tmp_path):
    """`days_since_contact` is tested by no rule (so the engine never sees it), but a derived
    fact copies it and another rule tests the copy."""
    compiled = compile_rules(tmp_path, {
        "aged.yaml": """\
            id: R-AGED
            title: Contact age
            when:
              - contact: c
            derive:
              kind: aged
              fields: {contact: $c.key, days: $c.days_since_contact}
            """,
        "old.yaml": """\
            id: R-OLD
            title: Old contact
            severity: info
            when:
              - contact: c
              - aged: a
                where: {contact: $c.key, days: {gt: 10}}
            message: "{a.contact} is {a.days} days old"
            next_action: call
            """})
    engine, replayer = RuleEngine(compiled), Replayer(compiled)
    assert replayer.moving["contact"] == ()  # no test reads the contact's count itself
    facts = [contact("ana", 9)]
    run = engine.run(facts)
    earlier = replayer.record(facts, run, DAY)
    assert earlier.matches[0][2] == 0  # R-AGED derived fact number 0, as the engine counted it
    assert replayer.record(facts, dataclasses.replace(run, produced=[]), DAY) is None  # not known: never guessed
    tomorrow, in_two_days = DAY + timedelta(days=1), DAY + timedelta(days=2)
    reused, _ = replayer.replay(on(tomorrow, *facts), earlier, tomorrow)
    assert reused.derived == [{"kind": "aged", "contact": "ana", "days": 10}]
    assert not [m for m in reused.matches if m.rule_id == "R-OLD"]
    assert replayer.replay(on(in_two_days, *facts), earlier, in_two_days) is None  # the copy crossed R-OLD's test
    fresh = engine.run(on(in_two_days, *facts))
    assert [m.rule_id for m in fresh.matches].count("R-OLD") == 1


def test_a_run_with_errors_is_never_kept(tmp_path):
    compiled = compile_rules(tmp_path, {"quiet.yaml": QUIET})
    engine, replayer = RuleEngine(compiled), Replayer(compiled)
    facts = [contact("ana", 11)]
    result = engine.run(facts)
    result.errors.append("the rule engine failed")
    assert replayer.record(facts, result, DAY) is None


def test_facts_moved_to_another_date_are_the_facts_of_that_date(portfolio):
    """A next-day check re-dates the facts its result entry kept (facts.date_facts) instead of
    loading the plan: they must be exactly the facts built on that date, for every kind of date
    field, both ways in time, a meeting on the day itself included."""
    from ssm_rules.facts import AS_OF_FIELDS, date_facts, plan_facts
    from ssm_rules.pipeline import load_plan

    days = [date(2026, 11, 27), date(2026, 11, 28), date(2027, 6, 1), date(2019, 1, 1)]
    moved_kinds = set()
    for file in portfolio:
        plan = load_plan(file).plan
        meetings = [fact["next_meeting"] for fact in plan_facts(plan, days[0]) if "next_meeting" in fact]
        for day in days + [date.fromisoformat(meeting) for meeting in meetings[:1]]:
            expected = plan_facts(plan, day)
            for other in days:
                moved = date_facts(plan_facts(plan, other), day)
                assert moved == expected, (file, other, day)
                moved_kinds |= {fact["kind"] for fact in moved if fact["kind"] in AS_OF_FIELDS}
    assert moved_kinds == set(AS_OF_FIELDS)  # every kind with a moving field was exercised


def test_a_finding_whose_place_moves_with_the_date_is_placed_afresh(tmp_path):
    """A next-day check places findings where the earlier check placed them (the file is the
    same); a location naming a moving value gives a path no earlier finding had, and the check
    then loads the plan to place it."""
    pack = tmp_path / "pack"
    pack.mkdir()
    (pack / "pack.yaml").write_text(PACK)
    (pack / "quiet.yaml").write_text(QUIET + "location: \"after_{c.days_since_contact}_days\"\n")
    plan = ROOT / "facts" / "adriatel.yaml"
    cached = Checker(rule_dirs=[pack], include_builtin=False, cache=Cache(tmp_path / "cache", b"k" * 32))
    fresh = Checker(rule_dirs=[pack], include_builtin=False)
    day = date(2026, 12, 10)  # every contact quiet for more than quiet_days (10): none crosses
    first = cached.check_file(str(plan), day)
    assert first.findings and all(finding.path.split(".")[-1].startswith("after_") for finding in first.findings)
    for later in (day + timedelta(days=1), day + timedelta(days=2)):
        again = cached.check_file(str(plan), later)
        assert everything(again) == everything(fresh.check_file(str(plan), later))
        assert {f.path for f in again.findings}.isdisjoint({f.path for f in first.findings})
    assert cached.replayed == 2  # the engine's run was reused; only the places were looked up


def test_a_next_day_check_does_not_load_an_unchanged_plan(portfolio, tmp_path, monkeypatch):
    """The shortcut's point: a plan checked yesterday is checked today from its result entry,
    without reading the plan entry or building its facts again."""
    from ssm_rules import pipeline

    cached = Checker(cache=Cache(tmp_path / "cache", b"k" * 32))
    day = date(2026, 11, 30)  # the night before one where the plans cross few thresholds
    for file in portfolio:
        cached.check_file(file, day)
    expected = [everything(Checker().check_file(file, day + timedelta(days=1))) for file in portfolio]
    loads = []
    real = pipeline.load_plan
    monkeypatch.setattr(pipeline, "load_plan", lambda *args, **kwargs: loads.append(args[0]) or real(*args, **kwargs))
    assert [everything(cached.check_file(file, day + timedelta(days=1))) for file in portfolio] == expected
    assert cached.replayed >= len(portfolio) - len(loads) > 0
    assert len(loads) <= len(portfolio) // 4, loads  # only plans whose run could not be reused
