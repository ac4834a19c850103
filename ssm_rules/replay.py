"""Reuse a plan's engine run on another as-of date, when no rule can tell the two dates apart.

A nightly audit checks the same plans every night. From one night to the next, what moves in an
unchanged plan's facts is what facts.py counts from the as-of date (`facts.AS_OF_FIELDS`: days
since the last review, since an outcome, in a stage, past a due date, whether a meeting is still
ahead), and nothing else: the plan, and so every other value, is the same. Most of those values
cross none of the rules' thresholds overnight, so the engine's answer (which rules matched which
facts, in which order, deriving what) cannot change, and running the engine again is the largest
part of checking a plan that was loaded from the cache.

The answer is reused only when the rules themselves prove it is the same, never by a guess:

- The rules are given the facts of the same plan (the caller's promise: the result cache keys
  the record by the file's bytes), as many as before; only the as-of fields can differ.
- Every as-of field a rule's test reads (in the engine or in Python) is either equal to its value
  on the earlier date, or read only by tests against constants (`days_since_review: {gt:
  $settings.review_days}`) that each give the same answer on both values. A value that moved and
  is compared with another fact's value (a join, `order: {lt: $a.order}`) refuses the reuse.
- The earlier matches, bound to today's facts, derive their facts again from today's values; they
  must come out deduplicated exactly as before, and pass the same check against the earlier
  derived facts (a derived fact that copies a day count is tested like a fact of the plan).

The matches depend only on the outcomes of the rules' tests on the facts (a Rete network compares
values only in its tests, and so do the checks the compiler leaves to Python), so under those
conditions they are the matches a new run would find. The findings are then built from them with
today's facts, so their messages say today's values ("not reviewed for 95 days").
tests/test_replay.py compares reused results with fresh runs over forty dates, and keeps the
reuse in use.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

from ssm_rules.compiler import CompiledRules, engine_value, test_holds
from ssm_rules.engine import EngineResult, Match, canonical_content
from ssm_rules.facts import AS_OF_FIELDS, as_of_value
from ssm_rules.rulepack import FieldRef, Test

_ABSENT = object()
_SCALARS = frozenset((int, str, bool, float))  # values the tests read as they are (compiler.engine_value)
_MAX_KNOWN_ANSWERS = 100_000


@dataclass(frozen=True)
class EngineRecord:
    """What an engine run must remember to be reused on another day (kept in the result cache).

    `matches`: (rule ID, ((bound name, reference), ...), the derived fact it gave or None), in the
    order the engine found them; a reference >= 0 is the index of a plan fact, a reference < 0 is
    derived fact number -1 - reference."""

    as_of: date  # the date of the run
    fact_count: int  # how many facts of the plan it was given
    derived_readings: tuple[dict | None, ...]  # what the rules' tests read of each derived fact
    matches: tuple[tuple[str, tuple[tuple[str, int], ...], int | None], ...]


class Replayer:
    """Which values of which kinds the compiled rules read, and how: computed once per run."""

    def __init__(self, compiled: CompiledRules):
        self.compiled = compiled
        self._known_answers: dict[tuple, tuple[bool, ...]] = {}
        # (kind, field) -> the tests against constants that read it, each with its rule's settings
        self.constant_tests: dict[tuple[str, str], list[tuple[Test, Mapping[str, Any]]]] = {}
        # (kind, field) read by a test that compares it with another fact's value
        self.compared: set[tuple[str, str]] = set()
        read: dict[str, set[str]] = {kind: set() for kind in compiled.fields}
        for compiled_rule in compiled.rules.values():
            rule = compiled_rule.rule
            kinds = rule.names
            for pattern in rule.when:
                for test in pattern.tests():
                    read.setdefault(pattern.kind, set()).add(test.field)
                    references = [operand for operand in test.operands if isinstance(operand, FieldRef)]
                    if references:
                        self.compared.add((pattern.kind, test.field))
                        for ref in references:
                            self.compared.add((kinds.get(ref.name), ref.field))
                            read.setdefault(kinds.get(ref.name), set()).add(ref.field)
                    else:
                        self.constant_tests.setdefault((pattern.kind, test.field), []).append(
                            (test, compiled_rule.settings))
        # kind -> the fields any test reads, including those the compiler leaves to Python checks
        # (comparisons between facts), which the engine's view of a fact leaves out
        self.read = {kind: tuple(sorted(fields)) for kind, fields in read.items() if kind is not None}
        # kind -> the as-of fields of its facts that a test reads: all that can tell two dates apart
        self.moving = {kind: tuple(spec for spec in specs if spec[0] in self.read.get(kind, ()))
                       for kind, specs in AS_OF_FIELDS.items()}

    def record(self, facts: Sequence[Mapping[str, Any]], result: EngineResult, as_of: date) -> EngineRecord | None:
        """The record of a run of the engine on `facts` (the plan's facts on `as_of`); None when
        it cannot be reused (errors)."""
        if result.errors or len(result.produced) != len(result.matches):
            return None  # (no `produced`: not a RuleEngine's result, which match derived what is unknown)
        positions = {id(fact): index for index, fact in enumerate(facts)}
        positions.update({id(fact): -1 - index for index, fact in enumerate(result.derived)})
        matches = []
        for match, produced in zip(result.matches, result.produced):
            references = []
            for name, fact in match.bindings.items():
                position = positions.get(id(fact))
                if position is None:
                    return None
                references.append((name, position))
            matches.append((match.rule_id, tuple(references), produced))
        return EngineRecord(as_of=as_of, fact_count=len(facts), derived_readings=self._readings(result.derived),
                            matches=tuple(matches))

    def replay(self, facts: Sequence[Mapping[str, Any]], earlier: EngineRecord,
               as_of: date) -> tuple[EngineResult, EngineRecord] | None:
        """The engine's result on `facts`, the same plan's facts on `as_of`, from the record of a
        run on another date, and the record to keep for the next day; None when the rules could
        tell the two runs apart (run the engine)."""
        compiled = self.compiled
        if len(facts) != earlier.fact_count or not self._same_on_both_dates(facts, earlier.as_of):
            return None
        derived: list[dict] = []
        derived_at: dict[tuple, int] = {}
        matches = []
        for rule_id, references, produced in earlier.matches:
            bindings = {}
            for name, position in references:
                if position >= 0:
                    bindings[name] = facts[position]
                else:
                    if -1 - position >= len(derived):
                        return None
                    bindings[name] = derived[-1 - position]
            matches.append(Match(rule_id, bindings))
            fact = compiled.derived_fact(rule_id, bindings) if rule_id in compiled.rules else None
            if (fact is None) != (produced is None):
                return None
            if fact is not None:
                index = derived_at.setdefault(canonical_content(fact), len(derived))
                if index == len(derived):
                    derived.append(fact)
                if index != produced:
                    return None
        derived_readings = self._readings(derived)
        if not self._same_to_the_rules(earlier.derived_readings, derived_readings):
            return None
        return (EngineResult(matches=matches, derived=derived, errors=[]),
                EngineRecord(as_of=as_of, fact_count=len(facts), derived_readings=derived_readings,
                             matches=earlier.matches))

    def _same_on_both_dates(self, facts: Sequence[Mapping[str, Any]], before: date) -> bool:
        """Whether every test reading an as-of field of `facts` answers on `before` as on their own date."""
        moving = self.moving
        for fact in facts:
            kind = fact["kind"]
            for name, source, how in moving.get(kind, ()):
                old = as_of_value(fact.get(source), how, before)
                if not self._tests_agree(kind, name, _ABSENT if old is None else old, fact.get(name, _ABSENT)):
                    return False
        return True

    def _readings(self, facts: Sequence[Mapping[str, Any]]) -> tuple[dict | None, ...]:
        """Each fact's kind and the values of it the rules' tests read, as the tests read them."""
        read, readings = self.read, []
        for fact in facts:
            kind = fact.get("kind")
            fields = read.get(kind)
            if fields is None:
                readings.append(None)
                continue
            reading = {"kind": kind}
            for name in fields:
                value = fact.get(name)
                if type(value) not in _SCALARS or value == "":
                    value = engine_value(value)
                    if value is None:
                        continue
                reading[name] = value
            readings.append(reading)
        return tuple(readings)

    def _same_to_the_rules(self, before: Sequence[dict | None], after: Sequence[dict | None]) -> bool:
        """Whether every test of every rule gives the same answer on both lists of readings."""
        if len(before) != len(after):
            return False
        for old, new in zip(before, after):
            # Equal readings need no test. (`==` equates 1, 1.0 and True, but a field of an
            # unchanged plan's fact never changes type from one date to another: what moves
            # are day counts, which stay numbers, and flags, which stay booleans.)
            if old == new:
                continue
            if old is None or new is None or new["kind"] != old["kind"]:
                return False
            kind = old["kind"]
            for name in old.keys() | new.keys():
                if not self._tests_agree(kind, name, old.get(name, _ABSENT), new.get(name, _ABSENT)):
                    return False
        return True

    def _tests_agree(self, kind: str, name: str, old: Any, new: Any) -> bool:
        """Whether every test reading (kind, name) answers alike on `old` and `new` (_ABSENT: no value)."""
        if type(old) is type(new) and old == new:
            return True
        if (kind, name) in self.compared:
            return False  # compared with another fact's value: the guard does not reason about joins
        if old is not _ABSENT and new is not _ABSENT and type(old) is not type(new):
            return False  # the engine and test_holds agree on like values; never bet on the rest
        return self._answers(kind, name, old) == self._answers(kind, name, new)

    def _answers(self, kind: str, name: str, value: Any) -> tuple[bool, ...]:
        """What each test against constants on (kind, name) answers for `value` (remembered:
        day counts repeat across plans and nights)."""
        key = (kind, name, type(value), value)
        answers = self._known_answers.get(key)
        if answers is None:
            fact = {} if value is _ABSENT else {name: value}
            answers = tuple(test_holds(test, fact, {}, settings)
                            for test, settings in self.constant_tests.get((kind, name), ()))
            if len(self._known_answers) >= _MAX_KNOWN_ANSWERS:
                self._known_answers.clear()
            self._known_answers[key] = answers
        return answers
