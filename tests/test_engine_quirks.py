"""One regression test per measured durable-rules 2.0.28 pitfall, and how the adapter handles it.

Each `test_raw_*` shows the pitfall on the bare engine (in a subprocess when it crashes the
process): if an upgrade of durable-rules changes it, that test fails and says what to revisit.
The test next to it shows that `ssm_rules` gives the right answer anyway. The pitfalls are
those of docs/engine-notes.md, including the ones found while building the adapter
(marked "new").
"""

from __future__ import annotations

import json
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
from ssm_rules.engine import EngineUnavailable, RuleEngine, fnv1a
from ssm_rules.findings import build_findings
from ssm_rules.rulepack import builtin_pack_dir, load_packs

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
from durable import engine
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


def crashed(process: subprocess.CompletedProcess) -> bool:
    return process.returncode < 0 or process.returncode == 139  # SIGSEGV


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
    original = host.assert_facts
    monkeypatch.setattr(host, "assert_facts", lambda name, facts, *a: (batches.append({f["sid"] for f in facts}),
                                                                        original(name, facts, *a))[1])
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


def test_raw_deleting_a_session_in_which_no_action_ran_crashes():
    """new: delete_state segfaults unless some action has run in the session."""
    process = probe("""
        ruleset("t", {"r": [{"a": {"kind": "x"}}, {"b": {"kind": "y"}}]})
        host.assert_fact("t", {"sid": "1", "id": "1", "kind": "x"})
        print("asserted", flush=True)
        host.delete_state("t", "1")
        print("deleted", flush=True)
    """)
    assert "asserted" in process.stdout, (process.returncode, process.stdout)
    if not crashed(process):
        # Seen on Python 3.11 builds; on 3.12.1 the same script survives. The workaround (a start
        # rule that fires in every session) is what test_plans_on_which_nothing_fires_... guards.
        pytest.skip("delete_state of an actionless session did not crash on this build")


def test_plans_on_which_nothing_fires_are_deleted_safely(tmp_path):
    rules = RuleEngine(compile_rules(tmp_path, {"kdl.yaml": NO_KDL}))
    for i in range(300):  # every session is deleted; none ever had a rule fire but the start rule
        result = rules.run([opportunity(f"o{i}"), role(f"o{i}", "li", "key_decision_leader")] if i % 3 else [])
        assert not result.matches and not result.errors


def test_no_session_is_deleted_while_actions_are_pending(tmp_path, monkeypatch):
    import durable_rules_engine

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


def test_raw_a_default_host_starts_timer_threads():
    process = probe("""
        import threading, time
        before = threading.active_count()
        engine.Host()
        time.sleep(0.3)
        print(threading.active_count() - before)
    """)
    assert process.stdout.strip() == "2", process.stdout + process.stderr


def test_the_adapter_starts_no_threads_and_shares_one_host(tmp_path):
    before = threading.active_count()
    first = RuleEngine(compile_rules(tmp_path, {"kdl.yaml": NO_KDL}))
    second = RuleEngine(compile_rules(tmp_path, {"kdl.yaml": NO_KDL}))
    first.run([opportunity("omni")])
    time.sleep(0.3)
    assert threading.active_count() == before
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


# ---- new: numbers the C core cannot read cut a batch short, silently -------------------------


@pytest.mark.parametrize("number", ["1e-05", "1e+16", "1E5", "Infinity"])
def test_raw_a_number_with_an_exponent_and_no_fraction_drops_the_rest_of_the_batch(number):
    """new: the C core's JSON reader stops at such a number (Python writes 0.00001 as `1e-05`)
    and reports success; the facts after it are never seen. `1.0e-05` is read."""
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
            host.assert_facts("t", Raw(batch % number))
            print(number, sorted(m["a"]["id"] for m in fired))
            host.delete_state("t", "1")
    """)
    assert process.stdout.splitlines() == ["1.0e-05 ['1', '2', '3']", f"{number} ['1']"], \
        process.stdout + process.stderr


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
    # Without the adapter's json the C core reads up to the 1e-05 and drops the rest.
    monkeypatch.setattr(engine._EngineJson, "dumps", staticmethod(json.dumps))
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


# ---- new: comparison joins crash the process -------------------------------------------------


COMPARISON_JOIN = """
import sys
from helper import host, act
rules = {"r": [{"a": {"kind": "x"}}, {"b": {"$and": [{"kind": "y"}, {sys.argv[1]: {"p": {"a": "p"}}}]}}],
         "start": [{"s": {"kind": "start"}}],
         "catch_all": [{"f": {"$ex": {"kind": 1}}}, {"never": {"kind": "never"}}]}
host.register_rulesets({"t": {name: {"all": p, "run": act} for name, p in rules.items()}})
host.assert_fact("t", {"sid": "1", "id": "s", "kind": "start"})
host.assert_fact("t", {"sid": "1", "id": "1", "kind": "x", "p": int(sys.argv[2])})
host.assert_fact("t", {"sid": "1", "id": "2", "kind": "y", "p": int(sys.argv[3])})
print("survived")
"""


@pytest.mark.parametrize(("operator", "left", "right", "crashes"), [
    ("$gt", 2, 1, True), ("$lt", 1, 2, True), ("$neq", 1, 1, True), ("$gt", 1, 2, False)])
def test_raw_a_false_comparison_with_another_fact_crashes(tmp_path, operator, left, right, crashes):
    """new (upstream issue #381): a `$lt/$gt/$neq/...` test against an earlier fact's field
    reads past the end of the engine's expression list when it is false: a segfault or garbage,
    depending on the memory layout (the same script inlined in one file survives here). Equality
    joins only reach that code when two different values have equal 32-bit hashes."""
    (tmp_path / "helper.py").write_text(PRELUDE)
    (tmp_path / "main.py").write_text(COMPARISON_JOIN)
    process = subprocess.run([sys.executable, "main.py", operator, str(left), str(right)], cwd=tmp_path,
                             capture_output=True, text=True, timeout=120)
    assert crashed(process) == crashes, (process.returncode, process.stdout, process.stderr[-300:])


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
    process = probe("""
        rules = {f"r{i}": [{"a": {"$and": [{"kind": "plan"}, {f"f{i}": 1}]}}] for i in range(70)}
        ruleset("t", rules)
        fact = {"sid": "1", "id": "p", "kind": "plan", **{f"f{i}": 1 for i in range(70)}}
        try:
            host.assert_facts("t", [fact])
            print("matched", len(fired))
        except Exception as exc:
            print("failed", type(exc).__name__)
    """)
    assert crashed(process) or "failed" in process.stdout, process.stdout


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
    """Why the rule language says "compare like with like": here true == 1, and "1" == 1 one way."""
    facts = [{"id": str(i), "kind": "x", "v": v} for i, v in enumerate([1, "1", True, 2, "one"])]
    number = raw_matches({"r": [{"a": {"$and": [{"kind": "x"}, {"v": 1}]}}]}, facts)
    text = raw_matches({"r": [{"a": {"$and": [{"kind": "x"}, {"v": "1"}]}}]}, facts)
    assert sorted(repr(m["a"]["v"]) for m in number) == ["1", "True"]
    assert sorted(repr(m["a"]["v"]) for m in text) == ["'1'", "1"]


# ---- Python versions -------------------------------------------------------------------------


def test_an_engine_that_cannot_load_is_a_usage_error_naming_the_fix(monkeypatch):
    import builtins

    real_import = builtins.__import__

    def failing_import(name, *args, **kwargs):
        if name == "durable" or name.startswith("durable."):
            raise ImportError("durable_rules_engine.cpython-313: undefined symbol: PyEval_CallObject")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", failing_import)
    with pytest.raises(EngineUnavailable) as info:
        engine._durable()
    message = str(info.value)
    assert "PyEval_CallObject" in message
    assert "CPPFLAGS=-DPyEval_CallObject=PyObject_CallObject" in message
    assert "--no-binary durable-rules" in message and "3.11 or 3.12" in message


def test_the_engine_is_imported_lazily():
    process = subprocess.run([sys.executable, "-c", "import sys, ssm_rules.engine, ssm_rules.findings, "
                              "ssm_rules.compiler; print('durable' in sys.modules)"],
                             capture_output=True, text=True, timeout=60)
    assert process.stdout.strip() == "False", process.stderr


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
