"""One regression test per measured durable-rules 2.0.28 pitfall, and how the adapter handles it.

Each `test_raw_*` shows the pitfall on the bare engine (the bundled copy, ssm_rules._durable):
if a change to the engine changes it, that test fails and says what to revisit. The test next
to it shows that `ssm_rules` gives the right answer anyway. The pitfalls are those listed in
docs/engine-notes.md; "new" marks the ones found while building the adapter.

Upstream's crashes that the bundled engine fixes (ssm_rules/_durable/PATCHES.md) are asserted
here in their fixed form, deterministically, in a subprocess so that a regression fails one
test instead of the whole run. How upstream crashes is shown by the scripts in
docs/engine-repro/: no test expects a crash, since whether memory corruption crashes depends
on the machine.
"""

from __future__ import annotations

import json
import operator
import os
import re
import subprocess
import sys
import textwrap
import threading
import time
import uuid
from datetime import date
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ssm_rules import compiler, engine
from ssm_rules.compiler import CompiledRules, compile_packs
from ssm_rules.engine import RuleEngine, fnv1a
from ssm_rules.findings import build_findings
from ssm_rules.rulepack import builtin_pack_dir, load_packs
from conftest import SPEC_EXAMPLE

PACK = "name: q\ntitle: Quirks\nsettings:\n  ongoing_days: {default: 30}\n"

NO_KDL = """\
id: Q-KDL
title: Opportunity has no key decision leader
severity: error
when:
  - opportunity: o
  - not: role
    where: {opportunity: $o.key, role: key_decision_leader}
message: "{o.key} has no KDL"
next_action: find one
"""


def compile_rules(tmp_path: Path, rules: dict[str, str], pack: str = PACK, **options) -> CompiledRules:
    directory = tmp_path / f"pack-{uuid.uuid4().hex[:8]}"
    directory.mkdir()
    (directory / "pack.yaml").write_text(pack)
    for name, text in rules.items():
        (directory / name).write_text(textwrap.dedent(text))
    return compile_packs(load_packs([directory], include_builtin=False), **options)


def fired(result, rule_id: str) -> list[dict]:
    return [m.bindings for m in result.matches if m.rule_id == rule_id]


def opportunity(key: str, **fields) -> dict:
    return {"kind": "opportunity", "path": f"opportunities[{key}]", "key": key, **fields}


def role(opp: str, contact: str, name: str) -> dict:
    return {"kind": "role", "path": f"opportunities[{opp}].buying_unit.{name}", "key": f"{opp}/{contact}/{name}",
            "opportunity": opp, "contact": contact, "role": name}


def contact(key: str, **fields) -> dict:
    return {"kind": "contact", "path": f"contacts[{key}]", "key": key, **fields}


# ---- probes of the bare engine ---------------------------------------------------------------

PRELUDE = """
import sys
from ssm_rules._durable import engine
class QuietHost(engine.Host):
    def _run(self):
        pass
host = QuietHost()
fired = []
def act(c):
    fired.append({k: dict(v) for k, v in c._m.items()})
def ruleset(name, rules):
    host.register_rulesets({name: {r: {"all": p, "run": act} for r, p in rules.items()}})
"""


def probe(code: str) -> subprocess.CompletedProcess:
    """Run `code` against the bare engine in a fresh interpreter (it may crash)."""
    return subprocess.run([sys.executable, "-c", PRELUDE + textwrap.dedent(code)], capture_output=True,
                          text=True, timeout=120)


def survived(process: subprocess.CompletedProcess) -> str:
    """The probe's output, once it is known that it exited normally."""
    assert process.returncode == 0, (process.returncode, process.stdout, process.stderr[-500:])
    return process.stdout


def raw_ruleset(rules: dict[str, list]) -> tuple[str, list]:
    """Register a bare ruleset on the adapter's host, for probes that cannot crash. Like the
    adapter's rulesets it has a start rule (deleting a session where no action ran crashes)
    and a catch-all rule (a fact no pattern handles fails its batch)."""
    seen: list[dict] = []
    name = f"probe_{uuid.uuid4().hex[:12]}"

    def act(c):
        seen.append({k: dict(v) for k, v in c._m.items()})

    rules = {**rules, "start": [{"start": {"kind": "start"}}],
             "catch_all": [{"f": {"$ex": {"kind": 1}}}, {"never": {"kind": "never"}}]}
    engine._shared_host().register_rulesets({name: {r: {"all": p, "run": act} for r, p in rules.items()}})
    return name, seen


def raw_matches(rules: dict[str, list], *batches: list[dict], sid: str = "1") -> list[dict]:
    """The matches of a bare ruleset for facts asserted in batches (one session, deleted after)."""
    name, seen = raw_ruleset(rules)
    host = engine._shared_host()
    host.assert_facts(name, [{"sid": sid, "id": "start", "kind": "start"}])
    for batch in batches:
        host.assert_facts(name, [dict(fact, sid=sid) for fact in batch])
    host.delete_state(name, sid)
    return [match for match in seen if "start" not in match]


# ---- 1. negation depends on the order facts arrive -------------------------------------------


def test_raw_negation_is_decided_when_the_left_fact_arrives():
    matches = raw_matches(
        {"no_kdl": [{"o": {"kind": "opportunity"}}, {"n$not": {"$and": [
            {"kind": "role"}, {"role": "key_decision_leader"}, {"opportunity": {"o": "key"}}]}}]},
        [{"id": "o", "kind": "opportunity", "key": "omni"},
         {"id": "r", "kind": "role", "role": "key_decision_leader", "opportunity": "omni"}])
    assert matches, "the KDL arrived after the opportunity in the same batch: the rule fired wrongly"


@pytest.mark.parametrize("order", ["opportunity first", "role first"])
def test_gates_decide_negations_after_every_fact(tmp_path, order):
    compiled = compile_rules(tmp_path, {"kdl.yaml": NO_KDL})
    facts = [opportunity("omni"), opportunity("loyalty"), role("omni", "li", "key_decision_leader")]
    if order == "role first":
        facts.reverse()
    result = RuleEngine(compiled).run(facts)
    assert [b["o"]["key"] for b in fired(result, "Q-KDL")] == ["loyalty"]
    assert all(next(iter(p)) != compiler.GATE_ALIAS for r in compiled.shards[0].rules for p in r.patterns)
    first = compiled.shards[0].definition(lambda r: None, None, None)["r0"]["all"][0]
    assert first == {"gate": {"$and": [{"kind": "ssm_gate"}, {"stratum": 0}]}}


def test_negation_of_a_derived_kind_runs_in_a_later_stratum(tmp_path):
    compiled = compile_rules(tmp_path, {
        "derive.yaml": """\
            id: Q-DRV
            title: A KDL who is opposed puts the opportunity at risk
            when:
              - opportunity: o
              - role: r
                where: {opportunity: $o.key, role: key_decision_leader}
              - contact: c
                where: {key: $r.contact, attitude: opposed}
            derive:
              kind: at_risk
              fields: {opportunity: $o.key, contact: $c.key}
            """,
        "safe.yaml": """\
            id: Q-SAFE
            title: Opportunity not at risk
            severity: info
            when:
              - opportunity: o
              - not: at_risk
                where: {opportunity: $o.key}
            message: "{o.key} is safe"
            next_action: none
            """,
    })
    assert {r.rule_id: r.stratum for s in compiled.shards for r in s.rules} == {"Q-DRV": 0, "Q-SAFE": 1}
    facts = [contact("li", attitude="opposed"), opportunity("omni"), opportunity("loyalty"),
             role("omni", "li", "key_decision_leader")]
    for ordering in (facts, facts[::-1]):
        result = RuleEngine(compiled).run(ordering)
        assert [b["o"]["key"] for b in fired(result, "Q-SAFE")] == ["loyalty"]
        assert result.derived == [{"kind": "at_risk", "opportunity": "omni", "contact": "li"}]


# ---- 2. `$or` fires once per branch; new: `$or` next to a join loses matches ---------------


def test_raw_or_fires_once_per_matching_branch():
    matches = raw_matches({"r": [{"a": {"$and": [{"kind": "x"}, {"$or": [{"v": 1}, {"w": 1}]}]}}]},
                          [{"id": "1", "kind": "x", "v": 1, "w": 1}])
    assert len(matches) == 2


def test_raw_or_with_a_join_drops_matches():
    """new: b.p == a.p OR b.p == 1 finds only the join's matches, never the literal branch's."""
    matches = raw_matches(
        {"r": [{"a": {"kind": "x"}}, {"b": {"$and": [{"kind": "x"}, {"$or": [{"p": {"a": "p"}}, {"p": 1}]}]}}]},
        [{"id": "1", "kind": "x", "p": 1}, {"id": "2", "kind": "x", "p": 2}, {"id": "3", "kind": "x", "p": 2}])
    pairs = sorted((m["a"]["id"], m["b"]["id"]) for m in matches)
    assert pairs == [("2", "3"), ("3", "2")], "now also (2, 1) and (3, 1)? then `$or` was fixed"


def test_any_and_in_never_compile_to_or_and_report_each_match_once(tmp_path):
    compiled = compile_rules(tmp_path, {"r.yaml": """\
        id: Q-ANY
        title: A must-win opportunity's KDL or sponsor is not engaged
        severity: warning
        when:
          - opportunity: o
          - role: r
            where: {opportunity: $o.key, role: {in: [key_decision_leader, sponsor]}}
          - contact: c
            any:
              - {key: $r.contact, last_contact: {exists: false}}
              - {key: $r.contact, days_since_contact: {gt: $settings.ongoing_days}}
              - {key: $r.contact, attitude: opposed}
        message: "{c.key}"
        next_action: call
        """})
    assert "$or" not in json.dumps([r.patterns for s in compiled.shards for r in s.rules])
    facts = [opportunity("omni"), contact("li", attitude="opposed"), contact("ana", days_since_contact=40),
             contact("bo", last_contact="2026-11-24", days_since_contact=3), role("omni", "li", "key_decision_leader"),
             role("omni", "ana", "sponsor"), role("omni", "bo", "sponsor"), role("omni", "li", "evaluator")]
    result = RuleEngine(compiled).run(facts)
    # li matches two branches (no last_contact, opposed) but is one match.
    assert sorted(b["c"]["key"] for b in fired(result, "Q-ANY")) == ["ana", "li"]


# ---- 3. fact identity is a 32-bit hash of `id` -----------------------------------------------


def test_raw_fact_ids_are_compared_by_a_32_bit_hash():
    assert fnv1a("contact:900059") == fnv1a("contact:1125602")
    with pytest.raises(engine._durable().MessageObservedException):
        raw_matches({"r": [{"a": {"kind": "x"}}]}, [{"id": "contact:900059", "kind": "x"}],
                    [{"id": "contact:1125602", "kind": "x"}])


def test_generated_fact_ids_have_distinct_hashes_and_are_never_domain_ids():
    ids = [engine._FACT_IDS.at(i)[0] for i in range(20000)]
    assert len({fnv1a(i) for i in ids}) == len(ids)
    assert all(i.startswith("#") for i in ids)  # slugs (domain IDs) never start with `#`
    # A plan never uses the id whose hash equals its session's own fact (`sid-<sid>`).
    allocator = engine._IdAllocator({fnv1a("#2")})
    assert [allocator.take() for _ in range(4)] == ["#0", "#1", "#3", "#4"]


def test_facts_with_an_id_or_sid_are_refused(tmp_path):
    rules = RuleEngine(compile_rules(tmp_path, {"kdl.yaml": NO_KDL}))
    with pytest.raises(ValueError, match="domain IDs go in `key`"):
        rules.run([{"kind": "opportunity", "id": "omni"}])
    with pytest.raises(ValueError, match="with a `kind`"):
        rules.run([{"key": "omni"}])


# ---- 4 and 5. sessions: a 32-bit hash, at most 1024 live --------------------------------------


def test_raw_sessions_with_equal_hashes_share_facts():
    assert fnv1a("p2039599") == fnv1a("p2222382")
    name, seen = raw_ruleset({"r": [{"a": {"kind": "x"}}, {"b": {"kind": "y"}}]})
    host = engine._shared_host()
    host.assert_facts(name, [{"sid": "p2039599", "id": "s", "kind": "start"},
                             {"sid": "p2039599", "id": "1", "kind": "x"}])
    host.assert_facts(name, [{"sid": "p2222382", "id": "2", "kind": "y"}])
    assert [(m["a"]["sid"], m["b"]["sid"]) for m in seen if "a" in m] == [("p2039599", "p2222382")]
    host.delete_state(name, "p2039599")  # the one state both sessions share


def test_raw_a_ruleset_holds_at_most_1024_live_sessions():
    process = probe("""
        ruleset("t", {"r": [{"a": {"kind": "x"}}, {"b": {"kind": "y"}}]})
        for i in range(1100):
            try:
                host.assert_fact("t", {"sid": str(i), "id": "1", "kind": "x"})
            except MemoryError:
                print("MemoryError at", i)
                break
    """)
    assert "MemoryError at 1024" in process.stdout, process.stdout + process.stderr


def test_each_plan_has_its_own_session_deleted_after_it(tmp_path, monkeypatch):
    rules = RuleEngine(compile_rules(tmp_path, {"kdl.yaml": NO_KDL}))
    host = engine._shared_host()
    batches: list[set[str]] = []
    # Every batch, as the C core receives it (the adapter asserts through the core's own call).
    core = engine._durable().durable_rules_engine
    original = core.assert_facts
    monkeypatch.setattr(core, "assert_facts", lambda handle, text: (batches.append({f["sid"] for f in json.loads(text)}),
                                                                    original(handle, text))[1])
    rules.run([opportunity("omni")])
    rules.run([opportunity("loyalty")])
    assert all(len(sids) == 1 for sids in batches)  # never two sessions in one call
    used = set().union(*batches)
    assert len(used) == 2
    (name, _), = rules._rulesets
    for sid in used:  # deleted: the engine no longer knows them
        with pytest.raises(Exception, match="309"):
            host.get_state(name, sid)


def test_thousands_of_plans_in_one_process(tmp_path):
    """More plans than the engine's 1024 sessions, with and without findings; and how fast."""
    compiled = compile_rules(tmp_path, {"kdl.yaml": NO_KDL})
    rules = RuleEngine(compiled)
    plans = [[opportunity(f"o{i}"), role(f"o{i}", "li", "key_decision_leader" if i % 2 else "sponsor")]
             for i in range(2100)]
    start = time.perf_counter()
    results = [rules.run(facts) for facts in plans]
    elapsed = time.perf_counter() - start
    assert not any(r.errors for r in results)
    assert [len(fired(r, "Q-KDL")) for r in results] == [0 if i % 2 else 1 for i in range(2100)]
    print(f"\n{len(plans) / elapsed:.0f} small plans/s")


# ---- 6. deleting a session: never with actions pending; new: never one without any action -----


def test_raw_deleting_a_session_in_which_no_action_ran_is_safe():
    """new, fixed in the bundled engine (patch state-context-init): upstream's delete_state
    freed two pointers that only running an action sets, and crashed or not by memory layout
    (docs/engine-repro/delete_without_actions.py). The adapter still fires a start rule in
    every session (test_plans_on_which_nothing_fires_are_deleted_safely)."""
    process = probe("""
        ruleset("t", {"r": [{"a": {"kind": "x"}}, {"b": {"kind": "y"}}]})
        for sid in range(50):
            host.assert_fact("t", {"sid": str(sid), "id": "1", "kind": "x"})
            host.delete_state("t", str(sid))
        print("deleted", len(fired))
    """)
    assert survived(process).split() == ["deleted", "0"]


def test_plans_on_which_nothing_fires_are_deleted_safely(tmp_path):
    rules = RuleEngine(compile_rules(tmp_path, {"kdl.yaml": NO_KDL}))
    for i in range(300):  # every session is deleted; none ever had a rule fire but the start rule
        result = rules.run([opportunity(f"o{i}"), role(f"o{i}", "li", "key_decision_leader")] if i % 3 else [])
        assert not result.matches and not result.errors


def test_no_session_is_deleted_while_actions_are_pending(tmp_path, monkeypatch):
    from ssm_rules._durable import _core as durable_rules_engine

    rules = RuleEngine(compile_rules(tmp_path, {"kdl.yaml": NO_KDL}))
    host = engine._shared_host()
    (name, _), = rules._rulesets
    handle = host.get_ruleset(name)._handle
    checked = []
    original = host.delete_state

    def delete_state(ruleset, sid=None):
        assert durable_rules_engine.start_action(handle) is None, "an action was still pending"
        checked.append(sid)
        return original(ruleset, sid)

    monkeypatch.setattr(host, "delete_state", delete_state)
    for i in range(20):
        rules.run([opportunity(f"o{i}"), opportunity(f"p{i}")])
    assert len(checked) == 20


# ---- 7. one session per call; facts no pattern handles ---------------------------------------


def test_raw_a_batch_of_several_sessions_runs_only_the_last_ones_actions():
    process = probe("""
        ruleset("t", {"r": [{"a": {"kind": "x"}}]})
        host.assert_facts("t", [{"sid": "1", "id": "1", "kind": "x"}, {"sid": "2", "id": "2", "kind": "x"}])
        print(sorted(m["a"]["sid"] for m in fired))
    """)
    assert process.stdout.strip() == "['2']", process.stdout + process.stderr


def test_raw_a_fact_no_pattern_handles_fails_the_batch():
    process = probe("""
        ruleset("t", {"r": [{"a": {"kind": "x"}}]})
        try:
            host.assert_facts("t", [{"sid": "1", "id": "1", "kind": "x"}, {"sid": "1", "id": "2", "kind": "unused"}])
        except engine.MessageNotHandledException:
            print("not handled; actions run:", len(fired))
    """)
    assert "not handled; actions run: 0" in process.stdout, process.stdout + process.stderr


def test_facts_no_rule_uses_or_no_test_passes_lose_nothing(tmp_path):
    compiled = compile_rules(tmp_path, {"kdl.yaml": NO_KDL, "lost.yaml": """\
        id: Q-LOST
        title: Lost opportunity
        severity: info
        when:
          - opportunity: o
            where: {stage: lost}
        message: "{o.key}"
        next_action: learn
        """})
    facts = [{"kind": "route", "path": "routes[0]", "key": 0, "route": "direct"},  # no rule uses routes
             {"kind": "partner", "path": "partners[0]", "key": 0},
             opportunity("omni", stage="won"),  # fails Q-LOST's only test
             opportunity("old", stage="lost")]
    result = RuleEngine(compiled).run(facts)
    assert not result.errors
    assert sorted(b["o"]["key"] for b in fired(result, "Q-KDL")) == ["old", "omni"]
    assert [b["o"]["key"] for b in fired(result, "Q-LOST")] == ["old"]
    assert compiled.engine_view(facts[0]) is None  # not even sent to the engine


# ---- 8. exceptions in actions are swallowed --------------------------------------------------


def test_raw_an_exception_in_an_action_is_swallowed_into_the_state():
    def boom(c):
        raise RuntimeError("boom")

    name = f"probe_{uuid.uuid4().hex[:12]}"
    host = engine._shared_host()
    host.register_rulesets({name: {"r": {"all": [{"a": {"kind": "x"}}], "run": boom}}})
    host.assert_facts(name, [{"sid": "1", "id": "1", "kind": "x"}])  # returns normally
    assert "boom" in host.get_state(name, "1")["exception"]
    host.delete_state(name, "1")  # an action ran (and failed): deleting is safe


def test_a_failing_action_is_an_error_of_the_plan(tmp_path, monkeypatch):
    compiled = compile_rules(tmp_path, {"kdl.yaml": NO_KDL})
    rules = RuleEngine(compiled)

    def broken(self, rule_id, bindings):
        raise KeyError("surprise")

    monkeypatch.setattr(CompiledRules, "derived_fact", broken)
    result = rules.run([opportunity("omni")])
    assert result.errors and "Q-KDL" in result.errors[0] and "surprise" in result.errors[0]
    monkeypatch.undo()
    assert not rules.run([opportunity("omni")]).errors  # the next plan is not affected


def test_an_exception_left_in_the_state_is_an_error_of_the_plan(tmp_path, monkeypatch):
    rules = RuleEngine(compile_rules(tmp_path, {"kdl.yaml": NO_KDL}))
    host = engine._shared_host()
    original = host.get_state
    monkeypatch.setattr(host, "get_state", lambda name, sid=None: dict(original(name, sid), exception="lost"))
    assert rules.run([opportunity("omni")]).errors == ["a rule failed inside the engine: lost"]


# ---- 9. timer threads, one host --------------------------------------------------------------


def test_raw_a_default_host_starts_timer_threads_that_rearm_forever():
    process = probe("""
        import threading, time
        default = engine.Host()
        started = (default._d_timer, default._t_timer)
        # started, daemon Timer threads (each replaces itself before it ends: no thread count)
        print(len(set(started)), all(isinstance(t, threading.Timer) and t.daemon and t.ident for t in started))
        deadline = time.monotonic() + 60  # they fire after 0.1 s; a loaded machine may take longer
        while time.monotonic() < deadline and (default._d_timer is started[0] or default._t_timer is started[1]):
            time.sleep(0.01)
        print(default._d_timer is not started[0] and default._t_timer is not started[1])
    """)
    assert survived(process).split() == ["2", "True", "True"]


def test_the_adapter_starts_no_threads_and_shares_one_host(tmp_path):
    before = set(threading.enumerate())
    first = RuleEngine(compile_rules(tmp_path, {"kdl.yaml": NO_KDL}))
    second = RuleEngine(compile_rules(tmp_path, {"kdl.yaml": NO_KDL}))
    first.run([opportunity("omni")])
    # A default Host has started its two timers by the time its constructor returns.
    assert set(threading.enumerate()) - before == set()
    assert not hasattr(first._host, "_d_timer") and not hasattr(first._host, "_t_timer")
    assert first._host is second._host
    assert first._rulesets[0][0] != second._rulesets[0][0]


# ---- 10. values must be JSON -----------------------------------------------------------------


def test_dates_and_lists_in_facts_reach_the_engine_as_text(tmp_path):
    compiled = compile_rules(tmp_path, {"r.yaml": """\
        id: Q-SAME
        title: Two contacts with the same goal
        severity: info
        when:
          - contact: a
            where: {last_contact: {lt: 2026-06-01}}
          - contact: b
            where: {goal: $a.goal}
        message: "{a.key} {b.key}"
        next_action: merge
        """})
    facts = [contact("a", last_contact=date(2026, 5, 1), goal=["x", "y"]),
             contact("b", last_contact="2026-07-01", goal=["x", "y"])]
    result = RuleEngine(compiled).run(facts)
    assert not result.errors
    assert [(b["a"]["key"], b["b"]["key"]) for b in fired(result, "Q-SAME")] == [("a", "b")]
    assert compiled.engine_view(facts[0])["goal"] == "x, y"


# ---- new: numbers the C core could not read cut a batch short, silently (fixed) --------------


@pytest.mark.parametrize(("number", "read"), [("1e-05", True), ("1e+16", True), ("1E5", True), ("Infinity", False)])
def test_raw_a_number_with_an_exponent_and_no_fraction_is_read(number, read):
    """new, fixed in the bundled engine (patches json-exponent, batch-errors): upstream's JSON
    reader stopped at such a number (Python writes 0.00001 as `1e-05`) and reported success;
    the facts after it were never seen. Now it is read like `1.0e-05`, and what is not JSON
    (`Infinity`) fails the batch with a parse error instead of ending it."""
    process = probe(f"""
        import json
        ruleset("t", {{"r": [{{"a": {{"kind": "x"}}}}]}})
        class Raw(str):
            pass
        engine.json = type("J", (), {{"dumps": staticmethod(lambda v, **k: v if isinstance(v, Raw) else json.dumps(v, **k)),
                                      "loads": staticmethod(json.loads)}})
        batch = '[{{"sid": "1", "id": "1", "kind": "x"}}, {{"sid": "1", "id": "2", "kind": "x", "v": %s}}, ' \\
                '{{"sid": "1", "id": "3", "kind": "x"}}]'
        for number in ("1.0e-05", "{number}"):
            fired.clear()
            try:
                host.assert_facts("t", Raw(batch % number))
                print(number, sorted(m["a"]["id"] for m in fired))
            except Exception as exc:
                print(number, "failed", exc, len(fired))
            host.delete_state("t", "1")
    """)
    outcome = "['1', '2', '3']" if read else "failed Could not assert facts, error code: 202 0"
    assert survived(process).splitlines() == ["1.0e-05 ['1', '2', '3']", f"{number} {outcome}"]


SMALL_VALUE = """\
id: Q-SMALL
title: A small value
severity: info
when:
  - opportunity: o
    where: {value: {lt: 0.0001}}
message: "{o.key}"
next_action: check
"""


def test_every_exponent_python_writes_gets_a_fraction():
    """The adapter looks for `e-`/`e+` before rewriting: every float Python writes with an
    exponent, alone in a batch (no other text to trip the search), still gets its fraction."""
    bare = re.compile(r"(?<![\d.])-?\d+[eE]")
    values = [float(f"{mantissa}e{exponent}") for exponent in range(-330, 310) for mantissa in ("1", "-7", "2.5")
              if float(f"{mantissa}e{exponent}") not in (float("inf"), float("-inf"))]
    for value in values:
        for batch in ([value], {"v": value}):
            text = engine._EngineJson.dumps(batch)
            assert not bare.search(text), text
            assert json.loads(text) == batch


def test_numbers_reach_the_engine_in_a_form_it_reads(tmp_path):
    compiled = compile_rules(tmp_path, {"r.yaml": SMALL_VALUE})
    assert engine._EngineJson.dumps([1e-05, -2e-07, 1e16, 1.5e-05, "1e-05", 'a"1e5']) == \
        '[1.0e-05, -2.0e-07, 1.0e+16, 1.5e-05, "1e-05", "a\\"1e5"]'
    result = RuleEngine(compiled).run([opportunity("tiny", value=1e-05), opportunity("big", value=1e300),
                                       opportunity("after")])
    assert not result.errors
    assert [b["o"]["key"] for b in fired(result, "Q-SMALL")] == ["tiny"]


def test_a_batch_the_engine_cuts_short_is_an_error_of_the_plan(tmp_path, monkeypatch):
    rules = RuleEngine(compile_rules(tmp_path, {"kdl.yaml": NO_KDL, "small.yaml": SMALL_VALUE}))
    # As upstream's engine did at a number it could not read: the rest of the batch unseen.
    monkeypatch.setattr(engine._EngineJson, "dumps", staticmethod(
        lambda value, **options: json.dumps(value[:-1] if isinstance(value, list) else value, **options)))
    result = rules.run([opportunity("omni", value=1e-05), opportunity("loyalty")])
    assert result.errors == ["the rule engine stopped reading the plan's facts part way (a value it cannot "
                             "read?); the plan was not checked"]
    monkeypatch.undo()
    assert sorted(b["o"]["key"] for b in fired(rules.run([opportunity("omni"), opportunity("loyalty")]),
                                               "Q-KDL")) == ["loyalty", "omni"]


def test_a_non_finite_value_is_an_error_of_the_plan_never_a_miss(tmp_path):
    result = RuleEngine(compile_rules(tmp_path, {"kdl.yaml": NO_KDL, "small.yaml": SMALL_VALUE})).run(
        [opportunity("omni", value=float("inf"))])
    assert not result.matches
    assert result.errors and "Out of range float values are not JSON compliant" in result.errors[0]


# ---- new: comparison joins read past the rule's expressions (fixed in the bundled engine) -----


def test_raw_comparisons_with_another_fact_are_right_whether_true_or_false():
    """new, fixed in the bundled engine (patch join-short-circuit; upstream issue #381): upstream
    read past the end of the join's expressions whenever the last comparison of a group was
    false, and crashed or answered from garbage by memory layout
    (docs/engine-repro/comparison_join.py). Each case is a ruleset of its own; the expected
    answers are Python's. The compiler still checks comparison joins in Python
    (test_comparisons_with_another_fact_are_checked_in_python)."""
    process = probe("""
        import itertools, json
        cases = [[op, x, y] for op in ("$gt", "$gte", "$lt", "$lte", "$neq")
                 for x, y in ((1, 2), (2, 1), (1, 1))]
        # a group of two joins (y.p >= x.p and y.q < x.q = 5, with y.q = y.p + 3): false in the
        # first, in the last, in both, in neither
        cases += [["pair", x, y] for x, y in ((2, 1), (3, 3), (3, 2), (1, 1))]
        for number, (op, x, y) in enumerate(cases):
            if op == "pair":
                test = [{"kind": "y"}, {"$gte": {"p": {"a": "p"}}}, {"$lt": {"q": {"a": "q"}}}]
            else:
                test = [{"kind": "y"}, {op: {"p": {"a": "p"}}}]
            ruleset(f"t{number}", {"r": [{"a": {"kind": "x"}}, {"b": {"$and": test}}],
                                   "start": [{"s": {"kind": "start"}}]})
            before = len(fired)
            host.assert_facts(f"t{number}", [{"sid": "1", "id": "s", "kind": "start"},
                                             {"sid": "1", "id": "1", "kind": "x", "p": x, "q": 5}])
            host.assert_facts(f"t{number}", [{"sid": "1", "id": "2", "kind": "y", "p": y, "q": y + 3}])
            print(json.dumps([op, x, y, len(fired) - before - 1]))
            host.delete_state(f"t{number}", "1")
    """)
    compare = {"$gt": operator.gt, "$gte": operator.ge, "$lt": operator.lt, "$lte": operator.le,
               "$neq": operator.ne, "pair": lambda y, x: y >= x and y + 3 < 5}
    answers = [json.loads(line) for line in survived(process).splitlines()]
    assert len(answers) == 19
    for op, x, y, fired_count in answers:
        assert fired_count == int(compare[op](y, x)), (op, x, y, fired_count)


def test_comparisons_with_another_fact_are_checked_in_python(tmp_path):
    compiled = compile_rules(tmp_path, {
        "order.yaml": """\
            id: Q-ORDER
            title: An activity is done before an earlier one
            severity: warning
            when:
              - plan: p
              - activity: a
                where: {status: done}
              - activity: before
                where: {order: {lt: $a.order}, status: {ne: done}}
            message: "{a.key} before {before.key}"
            next_action: redo
            """,
        "unique.yaml": """\
            id: Q-ALONE
            title: The only opportunity at its priority
            severity: info
            when:
              - opportunity: o
              - not: opportunity
                where: {priority: $o.priority, key: {ne: $o.key}}
            message: "{o.key}"
            next_action: none
            """,
    })
    patterns = json.dumps([r.patterns for s in compiled.shards for r in s.rules])
    for operator in ("$lt", "$neq"):  # never against another fact's field ({"alias": "field"})
        assert f'"{operator}": {{"order": {{' not in patterns and f'"{operator}": {{"key": {{' not in patterns
    activities = [{"kind": "activity", "path": f"activities.{k}", "key": k, "order": n, "status": s}
                  for n, (k, s) in enumerate([("align", "done"), ("plan", "in_progress"),
                                              ("articulate_value", "done"), ("thought_leadership", "done")], 1)]
    opportunities = [{"kind": "plan", "path": "", "key": "acme"}, opportunity("a", priority=1),
                     opportunity("b", priority=2), opportunity("c", priority=2), opportunity("d")]
    for facts in (activities + opportunities, (activities + opportunities)[::-1]):
        result = RuleEngine(compiled).run(facts)
        assert not result.errors
        assert sorted((b["a"]["key"], b["before"]["key"]) for b in fired(result, "Q-ORDER")) == \
            [("articulate_value", "plan"), ("thought_leadership", "plan")]
        # d has no priority: a test on a missing field is false, so nothing blocks it either.
        assert sorted(b["o"]["key"] for b in fired(result, "Q-ALONE")) == ["a", "d"]


# ---- new: the engine's alpha walk holds 64 nodes per fact -------------------------------------


def test_raw_more_than_64_passing_tests_on_one_fact_fail():
    """The engine walks a fact through the alpha network with a stack of 64 nodes: a fact that
    passes more tests fails its batch (error 303), and no action runs for it."""
    process = probe("""
        rules = {f"r{i}": [{"a": {"$and": [{"kind": "plan"}, {f"f{i}": 1}]}}] for i in range(70)}
        ruleset("t", {**rules, "start": [{"s": {"kind": "start"}}]})
        host.assert_facts("t", [{"sid": "1", "id": "s", "kind": "start"}])
        for tests in (64, 65):
            fact = {"sid": "1", "id": f"p{tests}", "kind": "plan", **{f"f{i}": 1 for i in range(tests)}}
            before = len(fired)
            try:
                host.assert_facts("t", [fact])
                print(tests, "matched", len(fired) - before)
            except Exception as exc:
                print(tests, "failed", exc, len(fired) - before)
        host.delete_state("t", "1")
    """)
    assert survived(process).splitlines() == ["64 matched 64", "65 failed Could not assert facts, error code: 303 0"]


def test_raw_rule_limits_are_refused_when_the_rules_are_registered():
    """new, fixed in the bundled engine (patch list-limits): upstream wrote the 256th rule that
    ends at one test past the end of its list, and filled the table of tests on one field so
    that lookups never ended (docs/engine-repro/rule_limits.py). Now both are refused at
    registration; the compiler stays well below them (MAX_RULES_PER_NODE, MAX_SUCCESSORS)."""
    process = probe("""
        for count, same_test in ((255, True), (256, True), (511, False), (512, False)):
            rules = {f"r{i}": [{"a": {"$and": [{"kind": "plan"}, {"f": 1 if same_test else i}]}}]
                     for i in range(count)}
            name = f"t{count}"
            try:
                ruleset(name, rules)
            except Exception as exc:
                print(count, "refused", exc)
                continue
            before = len(fired)
            host.assert_facts(name, [{"sid": "1", "id": "p", "kind": "plan", "f": 1, "g": 2}])
            print(count, "matched", len(fired) - before)
            host.delete_state(name, "1")
    """)
    assert survived(process).splitlines() == [
        "255 matched 255", "256 refused Could not create ruleset, error code: 108",
        "511 matched 1", "512 refused Could not create ruleset, error code: 106"]


def test_rules_are_spread_over_rulesets_to_stay_within_the_alpha_walk(tmp_path):
    rules = {f"r{i}.yaml": f"""\
        id: Q-{i:03d}
        title: count is not {i}
        severity: info
        when:
          - plan: p
            where: {{strategy_count: {{ne: {i}}}}}
        message: m
        next_action: n
        """ for i in range(150)}
    compiled = compile_rules(tmp_path, rules)
    assert len(compiled.shards) >= 3
    result = RuleEngine(compiled).run([{"kind": "plan", "path": "", "key": "acme", "strategy_count": 1000}])
    assert not result.errors
    assert len(result.matches) == 150


# ---- new: only the fields rules use reach the engine (it crashes on very wide facts) ------------


def test_raw_a_fact_with_too_many_fields_fails_its_batch():
    """new, fixed in the bundled engine (patch batch-errors): a fact holds at most 254 fields.
    Upstream ended the batch at a wider fact as if it were complete (the facts after it were
    silently dropped) and crashed when it came first (docs/engine-repro/wide_fact.py). Now the
    batch fails with error 302, and an empty batch is nothing at all."""
    process = probe("""
        ruleset("t", {"r": [{"a": {"kind": "x"}}], "start": [{"s": {"kind": "start"}}]})
        wide = {"sid": "1", "id": "wide", "kind": "x", **{f"field_{i}": i for i in range(300)}}
        for batch in ([wide], [{"sid": "1", "id": "s", "kind": "start"}, wide, {"sid": "1", "id": "n", "kind": "x"}],
                      []):
            try:
                print(len(batch), "passed", host.assert_facts("t", batch), len(fired))
            except Exception as exc:
                print(len(batch), "failed", exc, len(fired))
        host.delete_state("t", "1")
    """)
    assert survived(process).splitlines() == [
        "1 failed Could not assert facts, error code: 302 0", "3 failed Could not assert facts, error code: 302 0",
        "0 passed None 0"]


def test_wide_facts_are_narrowed_to_the_fields_rules_use(tmp_path):
    compiled = compile_rules(tmp_path, {"kdl.yaml": NO_KDL})
    wide = opportunity("omni", **{f"extra_{i}": i for i in range(400)})
    assert compiled.engine_view(wide) == {"kind": "opportunity", "key": "omni"}
    assert len(fired(RuleEngine(compiled).run([wide]), "Q-KDL")) == 1


# ---- new: semantics the engine imposes -------------------------------------------------------


def test_raw_a_test_on_a_missing_field_is_false_even_ne():
    matches = raw_matches({"r": [{"a": {"$and": [{"kind": "x"}, {"$neq": {"stage": "lost"}}]}}]},
                          [{"id": "1", "kind": "x", "stage": "won"}, {"id": "2", "kind": "x"}])
    assert [m["a"]["id"] for m in matches] == ["1"]


def test_raw_a_fact_binds_at_most_one_name_and_negations_skip_bound_facts():
    matches = raw_matches({
        "two": [{"a": {"kind": "x"}}, {"b": {"kind": "x"}}],
        "alone": [{"a": {"kind": "y"}}, {"n$not": {"$and": [{"kind": "y"}, {"p": {"a": "p"}}]}}],
    }, [{"id": "1", "kind": "x"}, {"id": "2", "kind": "y", "p": 1}])
    assert [sorted(m) for m in matches] == [["a"]]  # `two` needs two x facts; y is alone at p=1


def test_raw_equality_coerces_across_types():
    """Why the rule language says "compare like with like": here true == 1 and "1" == 1.
    Upstream compared a fact's text with a number of the rule over a length it never set, so
    `{"v": 1}` matched "1" on one build and not on another; the bundled engine uses the
    length of the number's text (patch number-text-length)."""
    facts = [{"id": str(i), "kind": "x", "v": v} for i, v in enumerate([1, "1", True, 2, "one", "10", 1.5, "1.5"])]
    number = raw_matches({"r": [{"a": {"$and": [{"kind": "x"}, {"v": 1}]}}]}, facts)
    text = raw_matches({"r": [{"a": {"$and": [{"kind": "x"}, {"v": "1"}]}}]}, facts)
    assert sorted(repr(m["a"]["v"]) for m in number) == ["'1'", "1", "True"]
    assert sorted(repr(m["a"]["v"]) for m in text) == ["'1'", "1"]


def test_raw_a_pattern_matches_a_number_by_its_digits():
    """The engine prints a number to match it against a pattern (`$mt`); the bundled engine
    prints it into a buffer that outlives the match (patch regex-number-buffer)."""
    facts = [{"id": str(i), "kind": "x", "v": v} for i, v in enumerate([123, 45, "12", 12.5, True])]
    matches = raw_matches({"r": [{"a": {"$and": [{"kind": "x"}, {"$mt": {"v": "12.*"}}]}}]}, facts)
    assert sorted(repr(m["a"]["v"]) for m in matches) == ["'12'", "12.5", "123"]


# ---- Python versions -------------------------------------------------------------------------


BLOCK_THE_CORE = """
import sys
class NoCore:  # as if the C core had not been built for this Python
    def find_spec(self, name, path=None, target=None):
        if name == "ssm_rules._durable._core":
            raise ImportError("No module named 'ssm_rules._durable._core'")
sys.meta_path.insert(0, NoCore())
from ssm_rules.cli import main
main()
"""


def test_an_engine_that_cannot_load_is_one_line_naming_the_fix(tmp_path):
    plan = tmp_path / "plan.yaml"
    plan.write_bytes(SPEC_EXAMPLE.read_bytes())
    check = subprocess.run([sys.executable, "-c", BLOCK_THE_CORE, "check", str(plan)], capture_output=True,
                           text=True, timeout=120, cwd=tmp_path)
    assert check.returncode == 2 and check.stdout == "", (check.returncode, check.stdout, check.stderr)
    (line,) = check.stderr.splitlines()  # one line, no traceback
    version = f"Python {sys.version_info.major}.{sys.version_info.minor}"
    assert "the rule engine cannot load (No module named 'ssm_rules._durable._core')" in line
    assert version in line and "Reinstall ssm-rules" in line and "C compiler" in line
    assert "CPPFLAGS" not in line and "PyEval_CallObject" not in line  # no rebuild recipe: nothing to rebuild
    # validating needs no engine, and --version says what is wrong
    validate = subprocess.run([sys.executable, "-c", BLOCK_THE_CORE, "validate", str(plan)], capture_output=True,
                              text=True, timeout=120, cwd=tmp_path)
    assert validate.returncode == 0, validate.stderr
    shown = subprocess.run([sys.executable, "-c", BLOCK_THE_CORE, "--version"], capture_output=True, text=True,
                           timeout=120, cwd=tmp_path)
    assert shown.returncode == 0, shown.stderr
    assert shown.stdout.splitlines()[-1] == "  C core: cannot load (No module named 'ssm_rules._durable._core')"


def test_the_engine_is_imported_lazily():
    process = subprocess.run([sys.executable, "-c", "import sys, ssm_rules.engine, ssm_rules.findings, "
                              "ssm_rules.compiler; print(sorted(m for m in sys.modules if 'durable' in m))"],
                             capture_output=True, text=True, timeout=60)
    assert process.stdout.strip() == "[]", process.stderr


def test_the_bundled_engine_never_touches_a_durable_rules_from_pypi(tmp_path):
    """A durable-rules installed from PyPI in the same environment is another module: checking
    plans neither imports it nor is disturbed by it. Stand-ins named like PyPI's modules that
    fail on import prove that nothing reaches for them."""
    (tmp_path / "durable").mkdir()
    (tmp_path / "durable" / "__init__.py").write_text("raise RuntimeError('the PyPI durable was imported')\n")
    (tmp_path / "durable_rules_engine.py").write_text("raise RuntimeError('the PyPI C module was imported')\n")
    plan = tmp_path / "plan.yaml"
    plan.write_bytes(SPEC_EXAMPLE.read_bytes())
    code = ("import sys; from ssm_rules.cli import main; sys.argv[1:] = ['check', '--no-cache', '--fail-on', "
            "'never', 'plan.yaml']\ntry:\n    main()\nfinally:\n    print(sorted(m for m in sys.modules if "
            "'durable' in m), file=sys.stderr)")
    process = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                             cwd=tmp_path, env={**os.environ, "PYTHONPATH": str(tmp_path)})
    assert process.returncode == 0, process.stderr
    assert "Checked 1 plan" in process.stdout
    assert "['ssm_rules._durable', 'ssm_rules._durable._core', 'ssm_rules._durable.engine']" in process.stderr


def test_version_names_ssm_python_and_the_engine_build(runner):
    from ssm_rules import __version__
    from ssm_rules._durable import PATCHES, _core
    from ssm_rules.cli import main

    result = runner.invoke(main, ["--version"])
    assert result.exit_code == 0
    lines = result.output.splitlines()
    assert lines[0] == f"ssm {__version__}"
    assert lines[1].startswith(f"Python {'.'.join(map(str, sys.version_info[:3]))} (") and sys.executable in lines[1]
    assert lines[2] == f"rule engine: durable-rules 2.0.28 (bundled, patched: {', '.join(PATCHES)})"
    assert lines[3] == f"  C core: {_core.__file__}"


def test_every_patch_of_the_engine_is_documented_and_marked_in_its_sources():
    """PATCHES (what --version says), the headings of PATCHES.md and the `ssm-rules patch (NAME)`
    markers in the C sources name the same patches."""
    import re

    from ssm_rules._durable import PATCHES

    directory = Path(engine.__file__).parent / "_durable"
    documented = re.findall(r"^## (\S+)$", (directory / "PATCHES.md").read_text(), re.M)
    assert list(PATCHES) == documented
    marked = set()
    for source in sorted((directory / "c-src").rglob("*.[ch]")):
        marked |= set(re.findall(r"ssm-rules patch \(([\w.-]+)\)", source.read_text()))
    not_in_c = {"python-3.13", "namespaced", "no-utcfromtimestamp"}  # renames and Python-side changes
    assert marked == set(PATCHES) - not_in_c
    assert "PyEval_CallObject" not in (directory / "c-src" / "rulespy" / "rules.c").read_text()
    assert "utcfromtimestamp" not in (directory / "engine.py").read_text()


def test_the_engine_exports_nothing_but_its_init_function():
    """Built with hidden visibility: the C core's functions (createRuleset, assertFacts, ...)
    cannot bind to those of another copy of the engine loaded in the same process."""
    import ctypes

    from ssm_rules._durable import _core

    library = ctypes.CDLL(_core.__file__)
    assert library.PyInit__core
    for name in ("createRuleset", "assertFacts", "deleteState", "fnv1Hash32"):
        with pytest.raises(AttributeError):
            getattr(library, name)


# ---- ways to catch these bugs: order and portfolio properties ----------------------------------

KINDS_OF_ROLE = ["key_decision_leader", "sponsor", "benefit_owner", "evaluator", "approver", "influencer"]


@st.composite
def plans(draw, account: str = "acme") -> list[dict]:
    """The facts of a small random plan, as ssm_rules.facts shapes them."""
    maybe = lambda strategy: draw(st.one_of(st.none(), strategy))  # noqa: E731
    plan = {"kind": "plan", "path": "", "key": account, "owner": "jane", "account_name": account.title(),
            "days_since_review": maybe(st.integers(-5, 200)), "source_kinds": draw(st.integers(0, 3)),
            "must_win_count": draw(st.integers(0, 2)), "routes_agreed": draw(st.booleans()),
            "assessment_satisfied": draw(st.booleans()), "approved_by_client": maybe(st.just("2026-10-01")),
            "thought_leadership_confirmed_count": draw(st.integers(0, 1)), "phase_complete": draw(st.booleans()),
            "claims_complete": draw(st.booleans()), "strategic_priority_count": draw(st.integers(0, 2)),
            "issue_count": 1, "initiative_count": 1, "opportunity_count": 2, "route_count": 1,
            "route_share_total": draw(st.sampled_from([100, 110])), "strategy_count": draw(st.integers(0, 1)),
            "research_industry": maybe(st.just("Retail")), "org_informal": maybe(st.just(["Steering group"]))}
    facts = [{k: v for k, v in plan.items() if v is not None}]
    for order, name in enumerate(["align", "plan", "articulate_value", "thought_leadership"], 1):
        facts.append({"kind": "activity", "path": f"plan.activities.{name}", "key": name, "order": order,
                      "status": draw(st.sampled_from(["done", "in_progress", "not_started"]))})
    contacts = [f"c{i}" for i in range(draw(st.integers(0, 4)))]
    for index, key in enumerate(contacts):
        fields = {"name": maybe(st.just(f"Person {index}")), "owner": maybe(st.sampled_from(["raj", "jane"])),
                  "attitude": maybe(st.sampled_from(["supporter", "neutral", "unsupportive", "opposed"])),
                  "influence": maybe(st.sampled_from(["high", "low"])), "goal": maybe(st.just("Lunch")),
                  "days_since_contact": maybe(st.integers(0, 90)), "meeting_ahead": draw(st.booleans()),
                  "next_meeting": maybe(st.just("2026-12-01")), "benefit": maybe(st.just("Growth")),
                  "has_plan": draw(st.booleans()), "external": draw(st.booleans()),
                  "in_buying_unit": draw(st.booleans())}
        facts.append({"kind": "contact", "path": f"contacts[{index}]", "key": key,
                      **{k: v for k, v in fields.items() if v is not None}})
    opportunities = [f"o{i}" for i in range(draw(st.integers(0, 3)))]
    for index, key in enumerate(opportunities):
        fields = {"name": f"Deal {index}", "priority": maybe(st.integers(1, 2)), "must_win": draw(st.booleans()),
                  "stage": draw(st.sampled_from(["identified", "validated", "lost"])),
                  "initiative": maybe(st.just("i0")), "component_count": draw(st.integers(0, 2)),
                  "past_identified": draw(st.booleans())}
        facts.append({"kind": "opportunity", "path": f"opportunities[{index}]", "key": key,
                      **{k: v for k, v in fields.items() if v is not None}})
    if opportunities and contacts:
        triples = draw(st.sets(st.tuples(st.sampled_from(opportunities), st.sampled_from(contacts),
                                         st.sampled_from(KINDS_OF_ROLE)), max_size=6))
        for opp, person, name in sorted(triples):
            index = opportunities.index(opp)
            facts.append({"kind": "role", "path": f"opportunities[{index}].buying_unit.{name}[0]",
                          "key": f"{opp}/{person}/{name}", "opportunity": opp, "contact": person, "role": name})
    facts.append({"kind": "initiative", "path": "initiatives[0]", "key": "i0", "goal": "Grow",
                  "action_count": draw(st.integers(0, 1)), "project_count": 0})
    facts.append({"kind": "issue", "path": "insight.issues[0]", "key": 0, "text": "Slow",
                  "confirmed_with_client": draw(st.booleans())})
    facts.append({"kind": "route", "path": "routes_to_market.routes[0]", "key": 0, "route": "direct", "share": 100})
    return facts


def locate(path: str) -> tuple[int, int]:
    """A stand-in for the plan file's positions: any fixed function of the path will do."""
    return (len(path.split(".")), len(path) + 1)


@pytest.fixture(scope="module")
def builtin_rules() -> CompiledRules:
    if not (builtin_pack_dir() / "pack.yaml").is_file():
        pytest.skip("the built-in pack is not written yet")
    return compile_packs(load_packs([]))


def findings_of(rules: RuleEngine, facts: list[dict], order: list[dict] | None = None) -> list[dict]:
    result = rules.run(facts)
    assert not result.errors
    return [f.to_json() for f in build_findings(rules.compiled, order or facts, result, locate, "plan.yaml")]


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(facts=plans(), seed=st.randoms(use_true_random=False))
def test_findings_do_not_depend_on_the_order_facts_are_asserted(builtin_rules, facts, seed):
    rules = _engine_for(builtin_rules)
    shuffled = list(facts)
    seed.shuffle(shuffled)
    assert findings_of(rules, shuffled, order=facts) == findings_of(rules, facts)


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(portfolio=st.lists(plans(), min_size=2, max_size=12))
def test_findings_do_not_depend_on_the_plans_checked_before(builtin_rules, portfolio):
    shared = _engine_for(builtin_rules)
    together = [findings_of(shared, facts) for facts in portfolio]
    alone = [findings_of(RuleEngine(builtin_rules), facts) for facts in portfolio[::-1]][::-1]
    assert together == alone


_engines: dict[int, RuleEngine] = {}


def _engine_for(compiled: CompiledRules) -> RuleEngine:
    """One engine per compiled pack for the whole module (registering rulesets is not free)."""
    return _engines.setdefault(id(compiled), RuleEngine(compiled))
