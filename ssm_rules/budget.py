"""How much work a plan may cost the rules, bounded before the engine does it.

The engine's C core builds the combinations of facts a rule matches (its join frames) inside
one assert call, before any action runs: a pair rule over 2,000 contacts built 4,000,000 of
them (150 s, 4.5 GB) and a check in the actions would only have seen them afterwards. So before
each stratum is asserted, every rule of it gets an upper bound on the frames it can build,
from the plan's facts alone:

- a pattern with no join can bind any fact of its kind: the number of such facts;
- a pattern joined to earlier facts (`owner: $a.owner`) binds, for one frame to its left, at
  most the largest group of facts of its kind that share a value of the joined fields;
- the engine joins left to right, so a rule builds at most the sum, over its patterns, of the
  product of the fan-outs up to that pattern (the frames of every prefix).

That bound is exact for the common shapes (a key join binds one fact) and cheap: counts and
largest groups per kind, computed once a plan. When the plan's total is over the budget, the
bound is computed again with each pattern's own tests (`stage: {ne: lost}`) applied to the
facts, leniently (a test that might hold counts as holding), so that it stays an upper bound.
Only if that too is over the budget is the plan refused, naming the rule with the largest
bound (ssm_rules.engine reports it).
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class PatternShape:
    """What bounds one positive pattern of an engine rule."""

    kind: str
    joins: tuple[str, ...]  # fields tested equal to an earlier fact's field
    tests: tuple[dict, ...]  # the pattern's other engine tests (constants, existence)


def shapes(patterns: Iterable[Mapping[str, dict]]) -> tuple[PatternShape, ...]:
    """The positive patterns of an engine rule (negations build no frames), in join order."""
    found = []
    for pattern in patterns:
        ((alias, condition),) = pattern.items()
        if alias.endswith("$not"):
            continue
        parts = condition["$and"] if "$and" in condition else [condition]
        joins, tests = [], []
        for part in parts[1:]:
            ((key, value),) = part.items()
            if not key.startswith("$") and isinstance(value, dict):
                joins.append(key)
            else:
                tests.append(part)
        found.append(PatternShape(parts[0]["kind"], tuple(sorted(joins)), tuple(tests)))
    return tuple(found)


class RuleSet:
    """The engine rules of one stratum, reduced to what their bounds need, computed once."""

    def __init__(self, rules: Sequence[tuple[str, Sequence[PatternShape]]]):
        self.rule_ids = [rule_id for rule_id, _ in rules]
        self.shapes = [tuple(rule_shapes) for _, rule_shapes in rules]
        keys: dict[tuple[str, tuple[str, ...]], int] = {}
        self.indexes = [tuple(keys.setdefault((shape.kind, shape.joins), len(keys)) for shape in rule_shapes)
                        for rule_shapes in self.shapes]
        self.keys = list(keys)

    def bound(self, facts_by_kind: Mapping[str, Sequence[Mapping[str, Any]]],
              known: dict[tuple[str, tuple[str, ...]], tuple[int, int]] | None = None) -> int:
        """The cheap bound of every rule together (counts and largest groups per kind).

        `known`, kept by the caller between calls on facts that only grow (one plan's, as the
        engine asserts them stratum by stratum): (kind, joins) -> (facts counted, largest group),
        so that a kind whose facts did not change is not grouped again."""
        known = {} if known is None else known
        fanouts = []
        for key in self.keys:
            kind, joins = key
            facts = facts_by_kind.get(kind, ())
            counted = known.get(key)
            if counted is None or counted[0] != len(facts):
                counted = known[key] = (len(facts), _largest_group(facts, joins))
            fanouts.append(counted[1])
        total = 0
        for indexes in self.indexes:
            product = 1
            for index in indexes:
                product *= fanouts[index]
                if not product:
                    break
                total += product
        return total

    def closer_bounds(self, facts_by_kind: Mapping[str, Sequence[Mapping[str, Any]]]) -> dict[str, int]:
        """Rule ID -> its bound with each pattern's own tests applied to the facts (slower)."""
        by_rule: dict[str, int] = {}
        for rule_id, rule_shapes in zip(self.rule_ids, self.shapes):
            total, product = 0, 1
            for shape in rule_shapes:
                facts = [fact for fact in facts_by_kind.get(shape.kind, ())
                         if all(_may_hold(test, fact) for test in shape.tests)]
                product *= _largest_group(facts, shape.joins)
                if not product:
                    break
                total += product
            by_rule[rule_id] = by_rule.get(rule_id, 0) + total
        return by_rule


def _largest_group(facts: Sequence[Mapping[str, Any]], joins: tuple[str, ...]) -> int:
    if not joins:
        return len(facts)
    if len(joins) == 1:
        (field,) = joins
        groups = Counter(_join_key(fact[field]) for fact in facts if field in fact)
    else:
        groups = Counter(tuple(_join_key(fact[field]) for field in joins)
                         for fact in facts if all(field in fact for field in joins))
    return max(groups.values(), default=0)


def _join_key(value: Any) -> Any:
    # The engine's equality coerces across types (true == 1, 1 == 1.0): one group for them.
    return value if type(value) is str else float(value) if isinstance(value, (int, float)) else value


_ORDERS = {"$lt": lambda a, b: a < b, "$lte": lambda a, b: a <= b, "$gt": lambda a, b: a > b,
           "$gte": lambda a, b: a >= b}


def _may_hold(test: dict, fact: Mapping[str, Any]) -> bool:
    """Whether an engine test could hold for `fact`: False only when it surely does not."""
    ((key, value),) = test.items()
    if key == "$ex":
        return all(field in fact for field in value)
    if key == "$nex":
        return not any(field in fact for field in value)
    if key == "$neq":
        ((field, other),) = value.items()
        return field in fact and not _surely_equal(fact[field], other)
    if key in _ORDERS:
        ((field, other),) = value.items()
        if field not in fact:
            return False
        mine = fact[field]
        if _comparable(mine, other):
            return _ORDERS[key](mine, other)
        return True
    if key.startswith("$"):
        return True  # a test this module does not know: it might hold
    if key not in fact:
        return False
    return not _surely_different(fact[key], value)


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _comparable(a: Any, b: Any) -> bool:
    return (_number(a) and _number(b)) or (isinstance(a, str) and isinstance(b, str))


def _surely_equal(a: Any, b: Any) -> bool:
    return type(a) is type(b) and a == b


def _surely_different(a: Any, b: Any) -> bool:
    return _comparable(a, b) and a != b


def kind_counts(facts: Iterable[Mapping[str, Any]]) -> Counter:
    return Counter(fact.get("kind") for fact in facts)
