"""Runs one plan's facts through the compiled rules: the only module that touches durable-rules.

The engine is durable-rules 2.0.28, bundled as `ssm_rules._durable`. It is driven so that none
of its measured pitfalls can change an answer (docs/engine-notes.md, and
tests/test_engine_quirks.py for each one):

- One `Host` per process, whose `_run` does nothing: no timer threads re-arming forever.
  Actions run in-line inside each assert call, so they have all completed when it returns.
- One live session (`sid`) per ruleset at a time: assert a plan, collect, `delete_state`.
  Sessions are told apart by a 32-bit hash and a ruleset holds at most 1024 live ones.
- A session's first assert fires a start rule: upstream's `delete_state` crashed on a session
  in which no action ever ran, and the start action proves actions run in-line.
- Facts get ids `#0`, `#1`, ... that are never domain IDs (those live in `key`) and whose
  32-bit hashes (FNV-1a, the engine's identity) are pairwise distinct and distinct from the
  engine's own session fact `sid-<sid>`: two equal hashes would drop a fact.
- Facts are asserted in one batch, then one gate per stratum, with the facts derived so far
  asserted before the next gate (deduplicated by content). Facts of a recursive kind (a chain
  a rule derives level by level) are asserted as soon as they are derived, round after round
  until no new one comes, so that the chain is complete before the next gate.
- Actions never raise: durable swallows exceptions into the session state. A failure, and
  any exception left in `state["exception"]`, becomes an error of the plan, never a miss.
- A batch is asserted and its actions run through the C core's own calls (`_Ruleset.assert_batch`),
  as durable's `Host.assert_facts` does for actions that complete in-line, without the layers it
  adds around each action for asynchronous ones: a closure and two timestamps, and re-asserting
  the session's state fact after every action (our actions never change the state). On small
  plans that was a third of the engine's time (bench/README.md).
- Every plan is bounded (ssm_rules.budget): at most `max_facts` facts; before each stratum is
  asserted, an upper bound of the combinations its rules can build from the plan's facts must
  fit `max_matches` (the C core builds them all before any action runs); actions stop at
  `max_matches` matches, `max_derived_facts` derived facts and `max_seconds`. A plan over its
  budget is an error naming the rule; the engine stays usable for the next plan.
- The C core stops reading a batch at a number written with an exponent but no fraction
  (`1e-05`, which is how Python writes 0.00001) or at `Infinity`, drops the rest of the batch
  and reports success. durable's Python layer is given a `json` that writes such numbers with
  a fraction (`1.0e-05`, the same value) and refuses non-finite ones; and every batch ends
  with a fact whose rule must fire, so that a batch cut short for any other reason is an
  error of the plan, never an empty result.
"""

from __future__ import annotations

import itertools
import json
import re
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ssm_rules import budget
from ssm_rules.compiler import CompiledRules, EngineRule, Shard, end_fact, gate_fact, start_fact
from ssm_rules.errors import UsageError


class EngineUnavailable(UsageError):
    """The bundled rule engine's C core cannot be loaded (not built for this Python)."""


@dataclass(frozen=True)
class Match:
    rule_id: str
    bindings: dict[str, dict]  # bound name -> the fact as given to `run` (or a derived fact)


@dataclass
class EngineResult:
    matches: list[Match] = field(default_factory=list)
    derived: list[dict] = field(default_factory=list)  # derived facts: kind + fields
    errors: list[str] = field(default_factory=list)  # a plan with errors has unreliable findings
    # for each match, the index in `derived` of the fact it derived (or found derived already);
    # None: its rule derives nothing. Kept with the run's record (ssm_rules.replay).
    produced: list[int | None] = field(default_factory=list)


# ---- the rule engine, imported once and only when a plan is checked -------------------------

_host = None


def _durable():
    """The bundled durable-rules (`ssm_rules._durable`), never a PyPI install of it."""
    try:
        from ssm_rules._durable import engine as durable_engine
    except ImportError as exc:
        raise EngineUnavailable(_unavailable_message(exc)) from exc
    durable_engine.json = _EngineJson  # every batch and ruleset goes to the C core through it
    return durable_engine


# A JSON string (skipped whole), or a number with an exponent and no fraction or point before it.
_BARE_EXPONENT = re.compile(r'("[^"\\]*(?:\\.[^"\\]*)*")|(?<![\d.])(-?\d+)([eE][-+]?\d+)')


_BARE_EXPONENT_HINT = re.compile(r"\d[eE][-+]")


def _may_have_exponent(text: str) -> bool:
    """False only if `text`, written by json.dumps, holds no number with an exponent: Python
    writes every exponent with its sign (`1e-05`, `1e+16`). A substring search answers most
    batches several times faster than a pattern; text that has `e-` ("chloe-tanaka") still
    goes through the cheap pattern before the rewrite, which parses every string."""
    return ("e-" in text or "e+" in text) and _BARE_EXPONENT_HINT.search(text) is not None


def _with_fraction(match: re.Match) -> str:
    return match.group(1) or f"{match.group(2)}.0{match.group(3)}"


class _EngineJson:
    """The `json` durable-rules' Python layer uses: numbers written so that its C core reads them.

    The C core's parser stops at `1e-05` or `1e+16` (no fraction) and at `Infinity`, and
    silently ignores the rest of the batch (tests/test_engine_quirks.py). `1.0e-05` is the same
    number and is read; a non-finite number raises ValueError, which the adapter reports.
    """

    loads = staticmethod(json.loads)

    @staticmethod
    def dumps(value: Any, **options: Any) -> str:
        text = json.dumps(value, allow_nan=False, **options)
        if _may_have_exponent(text):
            text = _BARE_EXPONENT.sub(_with_fraction, text)
        return text


def _unavailable_message(exc: ImportError) -> str:
    cause = str(exc) or type(exc).__name__
    python = f"Python {sys.version_info.major}.{sys.version_info.minor}"
    return (f"the rule engine cannot load ({cause}): its C core is built when ssm-rules is installed, "
            f"and this installation has none that works with {python}. Reinstall ssm-rules with this "
            f"Python (`pip install .` in a checkout, `pip install -e .` to develop; a C compiler is needed)")


def _shared_host():
    """The process's one Host. A default Host starts two timer threads that never stop."""
    global _host
    if _host is None:
        durable_engine = _durable()

        class QuietHost(durable_engine.Host):
            def _run(self) -> None:  # no background dispatch: actions run inside each assert
                pass

        _host = QuietHost()
    return _host


# ---- fact and session identities ------------------------------------------------------------


def fnv1a(text: str) -> int:
    """The engine's 32-bit identity of a fact id or session id (FNV-1a over signed chars)."""
    value = 0x811C9DC5
    for byte in text.encode("utf-8"):
        value ^= (byte - 256 if byte > 127 else byte) & 0xFFFFFFFF
        value = (value * 0x01000193) & 0xFFFFFFFF
    return value


class _FactIds:
    """The sequence of fact ids `#0`, `#1`, ... leaving out any whose hash equals an earlier
    one's; computed once, shared by every plan. `#` never starts a domain ID (IDs are slugs)."""

    def __init__(self) -> None:
        self.ids: list[str] = []
        self.hashes: list[int] = []
        self._used: set[int] = set()
        self._candidates = itertools.count()

    def at(self, index: int) -> tuple[str, int]:
        while len(self.ids) <= index:
            candidate = f"#{next(self._candidates)}"
            value = fnv1a(candidate)
            if value not in self._used:
                self._used.add(value)
                self.ids.append(candidate)
                self.hashes.append(value)
        return self.ids[index], self.hashes[index]


_FACT_IDS = _FactIds()


class _IdAllocator:
    """Hands out one plan's fact ids in sequence, skipping any equal in hash to a session's
    own fact id (`sid-<sid>`)."""

    def __init__(self, forbidden_hashes: set[int]):
        self._forbidden = forbidden_hashes
        self._next = 0

    def take(self) -> str:
        ids, hashes = _FACT_IDS.ids, _FACT_IDS.hashes  # read directly: this runs for every fact
        while True:
            index = self._next
            if index >= len(ids):
                _FACT_IDS.at(index)
            self._next = index + 1
            if hashes[index] not in self._forbidden:
                return ids[index]


# ---- one plan -------------------------------------------------------------------------------


class _PlanRun:
    """One plan's run: its facts by id, and what the actions found."""

    def __init__(self, compiled: CompiledRules, sids: list[str]):
        self.compiled = compiled
        self.sids = sids  # one session per shard
        self.ids = _IdAllocator({fnv1a(f"sid-{sid}") for sid in sids})
        self.by_id: dict[str, dict] = {}
        self.facts_by_kind: dict[str, list[dict]] = {}  # facts asserted so far, for Python checks
        self.matches: dict[tuple, Match] = {}
        self.derived: dict[tuple, dict] = {}  # canonical content -> derived fact
        self.derived_at: dict[tuple, int] = {}  # canonical content -> its index in `derived`
        self.produced: dict[tuple, int] = {}  # match key -> index of the fact it derived
        self.pending: list[dict] = []  # derived facts not yet asserted
        self.errors: list[str] = []
        self.started: set[str] = set()  # rulesets whose start action ran in this plan
        self.ended: set[str] = set()  # ids of the end facts whose action ran
        self.interrupt: BaseException | None = None
        self.views_by_kind: dict[str, list[dict]] = {}  # what the engine sees, for the budget's bounds
        self.groups: dict = {}  # the budget's largest groups of those, kept while they do not change
        self.budget = compiled.budget
        self.deadline = time.monotonic() + self.budget.seconds
        self.frames = 0  # matches the actions were given (before Python's own checks)
        self.bounded = 0  # the bound of the matches of the strata asserted so far (ssm_rules.budget)
        self.chain_bound = 0  # the part of it the chain rules' rounds added
        self.stopped = False  # over budget: the remaining actions do nothing

    def over_budget(self, message: str) -> None:
        if not self.stopped:
            self.stopped = True
            self.errors.append(message)

    def add(self, fact: dict) -> str:
        """Give a fact its id for this plan."""
        fact_id = self.ids.take()
        self.by_id[fact_id] = fact
        self.facts_by_kind.setdefault(fact["kind"], []).append(fact)
        return fact_id

    def record(self, rule: EngineRule, frame: Mapping[str, Any]) -> None:
        if self.stopped:
            return
        self.frames += 1
        if self.frames > self.budget.matches:  # the bound before asserting makes this a safety net
            self.over_budget(_budget_message(f"the rules matched more combinations of facts than",
                                             "max_matches", self.budget.matches, f" (rule {rule.rule_id} was running)"))
            return
        if time.monotonic() > self.deadline:
            self.over_budget(_budget_message("the rules took longer on this plan than", "max_seconds",
                                             self.budget.seconds, f" (rule {rule.rule_id} was running)"))
            return
        bindings = {name: self.by_id[frame[alias]["id"]] for alias, name in rule.aliases.items()}
        if not rule.accepts(bindings, self.facts_by_kind):
            return
        # The same match arrives once per alternative of an `any:`/`in:` that it satisfies.
        key = (rule.rule_id, tuple(sorted((name, frame[alias]["id"]) for alias, name in rule.aliases.items())))
        if key in self.matches:
            return
        self.matches[key] = Match(rule.rule_id, bindings)
        fact = self.compiled.derived_fact(rule.rule_id, bindings)
        if fact is not None:
            canonical = canonical_content(fact)
            if canonical not in self.derived:
                if len(self.derived) >= self.budget.derived_facts:
                    self.over_budget(_budget_message(f"rule {rule.rule_id} derived more facts from this plan than",
                                                     "max_derived_facts", self.budget.derived_facts))
                    return
                self.derived_at[canonical] = len(self.derived)
                self.derived[canonical] = fact
                self.pending.append(fact)
            self.produced[key] = self.derived_at[canonical]


def canonical_content(fact: Mapping[str, Any]) -> tuple:
    """A derived fact's content as a key: two derivations of equal content are one fact.
    Derived values are text, numbers, booleans or lists of them."""
    return tuple(sorted((name, tuple(value) if type(value) is list else value) for name, value in fact.items()))


def _budget_message(what: str, setting: str, limit: float, detail: str = "") -> str:
    return (f"{what} {setting} = {limit:,} allows{detail}; if the plan really needs more, raise it in "
            f"[tool.ssm.settings]")


class _Context:
    """What an action is given: `_m`, the matched facts by alias (durable's `Closure._m`)."""

    __slots__ = ("_m",)

    def __init__(self, frame: Any):
        self._m = frame


class _Ruleset:
    """A ruleset registered with the host, asserted through the C core directly.

    durable's `Host.assert_facts` runs each action through a `Closure` built for asynchronous
    actions (two timestamps, a lease) and then re-asserts the session's state fact with
    `update_state` (JSON out, parsed again by the C core, through the network) before asking
    for the next action. Every action of ours runs in-line and leaves the state alone, so the
    loop below keeps only what the C core needs: assert the batch, start the session's first
    action, run it, complete it and start the next, until none is left. What `Host` reports is
    kept: a fact not handled or already observed raises the same exceptions, and an action that
    raises (ours never do) is abandoned before the exception goes on, so no action is left
    pending when the session is deleted.
    """

    __slots__ = ("name", "_core", "_handle", "_actions", "_durable")

    def __init__(self, durable_engine: Any, host: Any, name: str):
        ruleset = host.get_ruleset(name)
        self.name = name
        self._durable = durable_engine
        self._core = durable_engine.durable_rules_engine
        self._handle = ruleset._handle
        # rule name -> the function given as its `run` (durable wraps each in a Promise)
        self._actions = {rule: promise._func for rule, promise in ruleset._actions.items()}

    def assert_batch(self, batch: list[dict]) -> None:
        core, handle = self._core, self._handle
        code, state_offset = core.assert_facts(handle, _EngineJson.dumps(batch, ensure_ascii=False))
        if code == 1:  # ERR_EVENT_NOT_HANDLED: durable raises before any action runs
            raise self._durable.MessageNotHandledException(batch)
        if code == 2:  # ERR_EVENT_OBSERVED
            raise self._durable.MessageObservedException(batch)
        if code != 0:  # ERR_EVENT_DEFERRED: only with a queue callback, which is never set
            return
        started = core.start_action_for_state(handle, state_offset)
        messages = started[1] if started is not None else None
        actions, loads = self._actions, json.loads
        while messages is not None:
            for rule_name, frame in loads(messages).items():
                try:
                    actions[rule_name](_Context(frame))
                except BaseException:
                    core.abandon_action(handle, state_offset)
                    raise
                break
            messages = core.complete_and_start_action(handle, state_offset)


class RuleEngine:
    """Checks plans (lists of facts) against compiled rules, one plan at a time."""

    _ruleset_numbers = itertools.count()

    def __init__(self, compiled: CompiledRules):
        self.compiled = compiled
        self._durable = _durable()
        self._host = _shared_host()
        self._run: _PlanRun | None = None
        self._sessions = itertools.count(1)
        self._rulesets: list[tuple[str, Shard]] = []  # (ruleset name, shard)
        self._drivers: dict[str, _Ruleset] = {}  # ruleset name -> how its batches are asserted
        # stratum -> its engine rules as the budget's bounds see them
        by_stratum: dict[int, list] = {}
        for shard in compiled.shards:
            for rule in shard.rules:
                by_stratum.setdefault(rule.stratum, []).append((rule.rule_id, budget.shapes(rule.patterns)))
        self._bounded = {stratum: budget.RuleSet(rules) for stratum, rules in by_stratum.items()}
        # The chain rules (a rule deriving a recursive kind from it) build more frames with each
        # round of a chain: each round is bounded too.
        chain_rules = {rule_id for rule_id, compiled_rule in compiled.rules.items()
                       if compiled_rule.rule.derive and compiled_rule.rule.derive.kind in compiled.recursive
                       and compiled_rule.rule.derive.kind in compiled_rule.rule.kinds_used}
        self._chain_bounded = budget.RuleSet([(rule.rule_id, budget.shapes(rule.patterns)) for shard in compiled.shards
                                              for rule in shard.rules if rule.rule_id in chain_rules])
        for shard in compiled.shards:
            # A ruleset name can be registered once per host: every engine gets new names.
            name = f"ssm_rules_{next(RuleEngine._ruleset_numbers)}"
            try:
                self._host.register_rulesets({name: shard.definition(self._action_for, self._on_start(name),
                                                                     self._on_end)})
            except Exception as exc:  # noqa: BLE001 - durable's C core reports only an error code
                rules = ", ".join(sorted({rule.rule_id for rule in shard.rules})) or "none"
                raise UsageError(f"the rule engine cannot read the compiled rules ({exc}); rules: {rules}") from None
            self._rulesets.append((name, shard))
            self._drivers[name] = _Ruleset(self._durable, self._host, name)

    # -- actions: called by durable inside an assert; they must never raise --

    def _action_for(self, rule: EngineRule):
        def action(c: Any) -> None:
            run = self._run
            try:
                run.record(rule, c._m)
            except BaseException as exc:  # noqa: BLE001 - durable would swallow it silently
                if isinstance(exc, (KeyboardInterrupt, SystemExit)):
                    run.interrupt = exc
                else:
                    run.errors.append(f"rule {rule.rule_id}: the check failed ({type(exc).__name__}: {exc})")

        return action

    def _on_start(self, ruleset_name: str):
        def action(c: Any) -> None:
            self._run.started.add(ruleset_name)

        return action

    def _on_end(self, c: Any) -> None:
        self._run.ended.add(c._m["e"]["id"])

    # -- running one plan --

    def run(self, facts: Sequence[dict]) -> EngineResult:
        """Check one plan. `facts` are plain dicts with a `kind` (never an `id` or `sid`)."""
        for fact in facts:
            if not isinstance(fact, dict) or not isinstance(fact.get("kind"), str):
                raise ValueError(f"a fact must be a dict with a `kind`: {fact!r}")
            if "id" in fact or "sid" in fact:
                raise ValueError(f"facts must not have `id` or `sid` (domain IDs go in `key`): {fact!r}")
        run = self._run = _PlanRun(self.compiled, [str(next(self._sessions)) for _ in self._rulesets])
        try:
            self._check(run, facts)
        finally:
            self._close(run)
            self._run = None
        if run.interrupt is not None:
            raise run.interrupt
        return EngineResult(matches=list(run.matches.values()), derived=list(run.derived.values()),
                            errors=run.errors, produced=[run.produced.get(key) for key in run.matches])

    def _check(self, run: _PlanRun, facts: Sequence[dict]) -> None:
        if len(facts) > run.budget.facts:
            kind, count = budget.kind_counts(facts).most_common(1)[0]
            run.over_budget(_budget_message(f"the plan gives the rules {len(facts):,} facts ({count:,} of them "
                                            f"{kind} facts), more than", "max_facts", run.budget.facts))
            return
        views = []  # (id, engine view) of every fact of a kind some rule matches
        for fact in facts:
            view = self.compiled.engine_view(fact)
            if view is not None:
                views.append((run.add(fact), view))
                run.views_by_kind.setdefault(view["kind"], []).append(view)
        start_id = run.ids.take()
        strata = list(self.compiled.strata)
        # Nothing is derived before the first stratum: its gate can close the first batch.
        first = strata.pop(0) if strata else None
        if first is not None and not self._within_budget(run, first):
            return
        gate_id, end_id = run.ids.take(), run.ids.take()
        for (name, shard), sid in zip(self._rulesets, run.sids):
            batch = [dict(start_fact(), id=start_id, sid=sid)]
            batch += [dict(view, id=fact_id, sid=sid) for fact_id, view in views if view["kind"] in shard.kinds]
            if first in shard.strata:
                batch.append(dict(gate_fact(first), id=gate_id, sid=sid))
            if not self._assert(run, name, batch, end_id):
                return
            if name not in run.started:
                run.errors.append("the rule engine did not run its actions in-line; the plan was not checked")
                return
        if not self._complete_chains(run, first):
            return
        for stratum in strata:
            # Facts derived by earlier strata go in before the gate that lets later rules see them.
            derived = [(run.add(fact), view) for fact in run.pending
                       if (view := self.compiled.engine_view(fact)) is not None]
            run.pending.clear()
            for _, view in derived:
                run.views_by_kind.setdefault(view["kind"], []).append(view)
            if run.stopped or not self._within_budget(run, stratum):
                return
            gate_id, end_id = run.ids.take(), run.ids.take()
            for (name, shard), sid in zip(self._rulesets, run.sids):
                batch = [dict(view, id=fact_id, sid=sid) for fact_id, view in derived if view["kind"] in shard.kinds]
                if stratum in shard.strata:
                    batch.append(dict(gate_fact(stratum), id=gate_id, sid=sid))
                if batch and not self._assert(run, name, batch, end_id):
                    return
            if run.interrupt is not None or not self._complete_chains(run, stratum):
                return

    def _complete_chains(self, run: _PlanRun, stratum: int | None) -> bool:
        """Assert derived facts at once while some are of a kind whose chain rules already run
        (a recursive kind, from its chain's stratum on), until none comes; False when the plan
        cannot be checked further (over budget, an engine error).

        Asserting a derived fact before the next gate is always sound: a rule that negates its
        kind runs in a later stratum, behind a gate not yet asserted. Each round lets a chain
        rule derive the next level from the facts of the round before.
        """
        recursive = self.compiled.recursive
        if stratum is None or not any(first <= stratum for first in recursive.values()):
            return True
        while run.interrupt is None and any(recursive.get(fact["kind"], stratum + 1) <= stratum
                                            for fact in run.pending):
            derived = [(run.add(fact), view) for fact in run.pending
                       if (view := self.compiled.engine_view(fact)) is not None]
            run.pending.clear()
            for _, view in derived:
                run.views_by_kind.setdefault(view["kind"], []).append(view)
            if run.stopped or not self._chain_within_budget(run):
                return False
            end_id = run.ids.take()
            for (name, shard), sid in zip(self._rulesets, run.sids):
                batch = [dict(view, id=fact_id, sid=sid) for fact_id, view in derived if view["kind"] in shard.kinds]
                if batch and not self._assert(run, name, batch, end_id):
                    return False
        return run.interrupt is None

    def _chain_within_budget(self, run: _PlanRun) -> bool:
        """The frames the chain rules can build with this round's facts, charged to the budget."""
        bound = self._chain_bounded.bound(run.views_by_kind, run.groups)
        added = max(0, bound - run.chain_bound)
        if run.bounded + added > run.budget.matches:
            run.over_budget(_budget_message(f"the chain rules could match up to {bound:,} combinations of this "
                                            f"plan's facts, more than the rest of", "max_matches", run.budget.matches))
            return False
        run.bounded += added
        run.chain_bound = bound
        return True

    def _within_budget(self, run: _PlanRun, stratum: int) -> bool:
        """Whether the rules of `stratum` can build at most the budget's matches from the facts
        the engine has (ssm_rules.budget); if not, the plan's error names the largest rule."""
        rules = self._bounded.get(stratum)
        if rules is None:
            return True
        limit = run.budget.matches - run.bounded
        total = rules.bound(run.views_by_kind, run.groups)  # cheap, and enough for every real plan
        if total > limit:
            by_rule = rules.closer_bounds(run.views_by_kind)
            total = sum(by_rule.values())
            if total > limit:
                worst = max(by_rule, key=by_rule.get)
                run.over_budget(_budget_message(
                    f"rule {worst} could match up to {by_rule[worst]:,} combinations of this plan's facts (all "
                    f"rules {total:,}), more than", "max_matches", run.budget.matches))
                return False
        run.bounded += total
        return True

    def _assert(self, run: _PlanRun, name: str, batch: list[dict], end_id: str) -> bool:
        """Assert one batch, closed by an end fact; False (and an error of the plan) when the
        engine failed or did not read the whole batch."""
        batch.append(dict(end_fact(), id=end_id, sid=batch[0]["sid"]))
        errors = len(run.errors)
        try:
            self._drivers[name].assert_batch(batch)
        except self._durable.MessageNotHandledException as exc:
            # Cannot happen (the catch-all rule handles every fact), but the batch's actions
            # would not have run: never a silent miss.
            run.errors.append(f"the rule engine refused a fact ({exc.message}); the results are incomplete")
        except self._durable.MessageObservedException as exc:
            run.errors.append(f"the rule engine saw a fact twice ({exc.message}); the results are incomplete")
        except Exception as exc:  # noqa: BLE001 - an engine failure is the plan's error, not a crash
            run.errors.append(f"the rule engine failed ({type(exc).__name__}: {exc}); the results are incomplete")
        if len(run.errors) == errors and end_id not in run.ended and run.interrupt is None:
            run.errors.append("the rule engine stopped reading the plan's facts part way (a value it cannot "
                              "read?); the plan was not checked")
        if len(run.errors) == errors and time.monotonic() > run.deadline:  # the C core's own time
            run.over_budget(_budget_message("the rules took longer on this plan than", "max_seconds",
                                            run.budget.seconds))
        return len(run.errors) == errors

    def _close(self, run: _PlanRun) -> None:
        """Check each session for swallowed exceptions, then delete it (all actions are done)."""
        for (name, _), sid in zip(self._rulesets, run.sids):
            if name not in run.started:
                continue  # deleting a session in which no action ran crashed upstream's engine
            try:
                state = self._host.get_state(name, sid)
                if state.get("exception"):
                    run.errors.append(f"a rule failed inside the engine: {state['exception']}")
                self._host.delete_state(name, sid)
            except Exception as exc:  # noqa: BLE001
                run.errors.append(f"the rule engine could not close the plan's session ({exc})")
