"""Rule packs + settings -> durable-rules rulesets: the only module that knows the engine's syntax.

What the compiler does, and why (every item is a measured behaviour of durable-rules 2.0.28,
each with a regression test in tests/test_engine_quirks.py):

- **Gates and strata.** A negation (`$not`) is decided when the facts to its left arrive and is
  never revisited, so every rule starts with a *gate* fact `{kind: ssm_gate, stratum: S}` that
  the engine adapter asserts after all the facts the stratum depends on. Rules that use a
  derived kind run in a later stratum than the rules deriving it (`rulepack.rule_strata`).
  A rule that matches the kind it derives (a chain: each level from the level below) runs in
  its own stratum; the adapter asserts the facts of such *recursive* kinds as soon as they are
  derived, until no new one comes, before the next gate. Only positive patterns join them
  there, and Rete joins a fact asserted after the gate like any other.
- **No `$or`.** `$or` gives wrong answers as soon as a pattern also joins on an earlier fact
  (the join or the literal branch is silently dropped), and fires once per matching branch.
  `any:` and `in:` are expanded instead: a positive pattern becomes one engine rule per
  alternative (the adapter deduplicates matches), a negation one `$not` per alternative
  (no fact matches A or B == no fact matches A and no fact matches B).
- **Only equality joins.** A join with `$neq/$lt/$lte/$gt/$gte` against an earlier fact
  crashed upstream's engine whenever the comparison was false (issue #381; fixed in the
  bundled copy, docs/engine-notes.md). Such tests are still left out of the engine pattern
  and checked in Python (`EngineRule.check`) with the same semantics; a negation holding one
  is decided wholly in Python.
- **Engine limits.** The C core walks the alpha network with a stack of 64 nodes per fact
  (a fact passing more tests fails its batch), and one alpha node holds at most 255 rules
  (upstream corrupted memory past that; the bundled engine refuses the ruleset). Rules are spread over as many rulesets (*shards*) as needed to keep every
  fact's walk within `ALPHA_STACK_BUDGET`; the adapter runs each plan through every shard.
- **Names.** Bound names become aliases `n_NAME` (the alias `m` is special in the engine);
  property, alias and rule names are compared by a 32-bit hash, so collisions are refused.

Test semantics (shared by the engine patterns and the Python checks): a test on a field the
fact does not have is false, except `exists: false`; compare like with like (numbers with
numbers, text with text, true/false with true/false).
"""

from __future__ import annotations

import copy
import itertools
import json
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ssm_rules import templates
from ssm_rules.errors import UsageError
from ssm_rules.rulepack import (
    BUDGET_SETTINGS,
    Const,
    FieldRef,
    Operand,
    Pack,
    Pattern,
    Rule,
    SettingRef,
    Test,
    all_rules,
    recursive_kinds,
    rule_strata,
)
from ssm_rules.severity import SEVERITIES
from ssm_rules.suggestions import did_you_mean

GATE_KIND = "ssm_gate"
START_KIND = "ssm_start"
END_KIND = "ssm_end"  # closes every batch: its action firing proves the engine read the whole batch
NEVER_KIND = "ssm_never"  # never asserted: the catch-all rule waits for it forever
GATE_ALIAS = "gate"

# Limits of the C core of durable-rules 2.0.28, with margins (see the module docstring).
ALPHA_STACK_BUDGET = 48  # the engine's stack holds 64 alpha nodes per fact
MAX_SUCCESSORS = 100  # successors of one alpha node (crashes at 256)
MAX_RULES_PER_NODE = 100  # rules whose pattern ends at one alpha node (refused at ~256)
MAX_VARIANTS = 64  # engine rules one rule may expand to (any: x in:)
MAX_NEGATIONS = 24  # $not patterns in one engine rule
MAX_FIELDS_PER_KIND = 100  # properties of one fact (crashes between 130 and 300)

_ENGINE_OPERATORS = {"ne": "$neq", "lt": "$lt", "lte": "$lte", "gt": "$gt", "gte": "$gte"}


# ---- what the compiler produces -------------------------------------------------------------


Check = Callable[[Mapping[str, Mapping[str, Any]], Mapping[str, Sequence[Mapping[str, Any]]]], bool]


@dataclass(frozen=True)
class CompiledRule:
    """A rule as this run uses it: its effective severity, settings and whether it reports."""

    rule: Rule
    severity: str | None
    settings: Mapping[str, Any]  # its pack's settings, user overrides applied
    stratum: int
    report: bool  # selected for the run (False: compiled only for the facts it derives)


@dataclass(frozen=True)
class EngineRule:
    """One durable-rules rule: a rule, or one alternative of a rule's `any:`/`in:`."""

    name: str  # the rule's name inside the ruleset
    rule_id: str
    stratum: int
    patterns: tuple[dict, ...]  # engine conditions after the gate, in order
    aliases: Mapping[str, str]  # engine alias -> bound name
    check: Check | None = None  # tests the engine cannot do safely; None when all are in `patterns`

    def accepts(self, bindings: Mapping[str, Mapping[str, Any]],
                facts_by_kind: Mapping[str, Sequence[Mapping[str, Any]]]) -> bool:
        return self.check is None or self.check(bindings, facts_by_kind)


@dataclass(frozen=True)
class Shard:
    """A set of engine rules small enough for one durable-rules ruleset."""

    rules: tuple[EngineRule, ...]
    kinds: frozenset[str]  # kinds its patterns match: facts of other kinds need not be asserted
    strata: tuple[int, ...]

    def definition(self, action_for: Callable[[EngineRule], Callable], on_start: Callable,
                   on_end: Callable) -> dict:
        """A fresh ruleset definition (durable's register_rulesets deletes `run` from it)."""
        ruleset: dict[str, dict] = {
            # A rule that fires first on every session: upstream's delete_state crashed on a
            # session in which no action ever ran, and the adapter learns actions run in-line.
            "ssm_start": {"all": [{"s": {"kind": START_KIND}}], "run": on_start},
            # Fires for the last fact of every batch: the C core stops reading a batch at a
            # value it cannot parse and reports success; a batch whose end never fired was cut.
            "ssm_end": {"all": [{"e": {"kind": END_KIND}}], "run": on_end},
            # Catches every fact so that none is "not handled" (which aborts a batch's actions
            # and leaves a session that crashes on delete); it never fires.
            "ssm_catch_all": {"all": [{"f": {"$ex": {"kind": 1}}}, {"never": {"kind": NEVER_KIND}}],
                              "run": _never},
        }
        for rule in self.rules:
            ruleset[rule.name] = {"all": [gate_pattern(rule.stratum), *copy.deepcopy(rule.patterns)],
                                  "run": action_for(rule)}
        return ruleset


@dataclass(frozen=True)
class Budget:
    """What the rules may do with one plan (rulepack.BUDGET_SETTINGS): the largest value of
    any pack in the run, user settings applied."""

    facts: int = BUDGET_SETTINGS["max_facts"].default
    derived_facts: int = BUDGET_SETTINGS["max_derived_facts"].default
    matches: int = BUDGET_SETTINGS["max_matches"].default
    seconds: float = BUDGET_SETTINGS["max_seconds"].default


@dataclass(frozen=True)
class CompiledRules:
    packs: tuple[Pack, ...]
    rules: Mapping[str, CompiledRule]  # rule ID -> rule, in pack order
    shards: tuple[Shard, ...]
    strata: tuple[int, ...]
    fields: Mapping[str, frozenset[str]]  # kind -> fields the engine patterns read
    budget: Budget = Budget()
    # Derived kind -> stratum from which its facts are asserted as soon as they are derived (a chain).
    recursive: Mapping[str, int] = field(default_factory=dict)
    # Kind -> fields the engine only tests for existence: it gets `true`, not the text or list.
    presence: Mapping[str, frozenset[str]] = field(default_factory=dict)

    @property
    def kinds(self) -> frozenset[str]:
        return frozenset(self.fields)

    def engine_view(self, fact: Mapping[str, Any]) -> dict[str, Any] | None:
        """The fields of `fact` the engine needs, as the engine compares them; None if no rule
        matches its kind."""
        kind = fact.get("kind")
        fields = self.fields.get(kind)
        if fields is None:
            return None
        view = {"kind": kind}
        presence = self.presence.get(kind, ())
        for name, value in fact.items():
            if name in fields:
                if type(value) not in _SCALAR_TYPES or value == "":
                    value = engine_value(value)
                    if value is None:
                        continue
                view[name] = True if name in presence else value
        return view

    def derived_fact(self, rule_id: str, bindings: Mapping[str, Mapping[str, Any]]) -> dict[str, Any] | None:
        """The fact a match of `rule_id` derives (fields without a value are left out)."""
        compiled = self.rules[rule_id]
        derive = compiled.rule.derive
        if derive is None:
            return None
        fact: dict[str, Any] = {"kind": derive.kind}
        for name, operand in derive.fields.items():
            value = _operand_value(operand, bindings, compiled.settings, raw=True)
            if templates.has_value(value):
                fact[name] = value
        return fact


def gate_pattern(stratum: int) -> dict:
    return {GATE_ALIAS: {"$and": [{"kind": GATE_KIND}, {"stratum": stratum}]}}


def gate_fact(stratum: int) -> dict:
    return {"kind": GATE_KIND, "stratum": stratum}


def start_fact() -> dict:
    return {"kind": START_KIND}


def end_fact() -> dict:
    return {"kind": END_KIND}


def _never(c: Any) -> None:  # the catch-all rule's action; it cannot fire
    return None


_SCALAR_TYPES = frozenset((int, str, bool, float))


def engine_value(value: Any) -> str | int | float | bool | None:
    """A fact value as rules see it: None when absent (None, empty text or list); a list as its
    text ("a, b"), since the engine cannot compare lists (and crashes joining on them)."""
    if value is None or value == "" or isinstance(value, (list, tuple)) and not value:
        return None
    if isinstance(value, (list, tuple)):
        return templates.value_text(value) or None
    if isinstance(value, float) and not math.isfinite(value):
        return None  # not JSON
    if isinstance(value, (bool, int, float, str)):
        return value
    if hasattr(value, "isoformat"):  # dates are ISO text
        return value.isoformat()
    return str(value)


# ---- compiling ------------------------------------------------------------------------------


def compile_packs(packs: Sequence[Pack], settings: Mapping[str, Any] | None = None,
                  severity_overrides: Mapping[str, str] | None = None,
                  selected: Iterable[str] | None = None) -> CompiledRules:
    """Compile loaded packs for one run; raise UsageError for an unknown setting or rule ID.

    `settings` maps `NAME` (every pack declaring it) or `PACK.NAME` to a value;
    `severity_overrides` maps rule IDs to error|warning|info; `selected` limits the rules that
    report (rules deriving what they use still run, and so do the outcome's).
    """
    rules = all_rules(packs)
    by_id = {rule.id: rule for rule in rules}
    resolved = _resolve_settings(packs, settings or {})
    severities = _resolve_severities(by_id, severity_overrides or {})
    reporting = set(by_id) if selected is None else _check_selected(by_id, selected)
    included = _with_dependencies(rules, reporting, packs)
    strata = rule_strata([rule for rule in rules if rule.id in included])
    compiled = {
        rule.id: CompiledRule(rule=rule, severity=severities.get(rule.id, rule.severity),
                              settings=resolved[rule.pack], stratum=strata[rule.id],
                              report=rule.id in reporting and rule.has_finding)
        for rule in rules if rule.id in included
    }
    engine_rules: list[EngineRule] = []
    for rule_id, compiled_rule in compiled.items():
        engine_rules += _RuleCompiler(compiled_rule, len(engine_rules)).compile()
    fields, presence = _engine_fields(engine_rules, compiled)
    _check_hashes(engine_rules, fields)
    return CompiledRules(packs=tuple(packs), rules=compiled, shards=tuple(_shard(engine_rules)),
                         strata=tuple(sorted({r.stratum for r in engine_rules})), fields=fields,
                         budget=_budget(resolved),
                         recursive=recursive_kinds([c.rule for c in compiled.values()], strata),
                         presence=presence)


def _budget(resolved: Mapping[str, Mapping[str, Any]]) -> Budget:
    def largest(name: str) -> Any:
        values = [settings[name] for settings in resolved.values() if name in settings]
        return max(values) if values else BUDGET_SETTINGS[name].default

    return Budget(facts=largest("max_facts"), derived_facts=largest("max_derived_facts"),
                  matches=largest("max_matches"), seconds=largest("max_seconds"))


def _resolve_settings(packs: Sequence[Pack], user: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    resolved = {pack.name: pack.setting_defaults() for pack in packs}
    known = sorted({name for pack in packs for name in pack.settings} |
                   {f"{pack.name}.{name}" for pack in packs for name in pack.settings})
    for key, value in user.items():
        pack_name, _, name = key.rpartition(".")
        targets = [pack for pack in packs if name in pack.settings and pack_name in ("", pack.name)]
        if not targets:
            raise UsageError(f"unknown setting `{key}`{did_you_mean(key, known)}; known settings: "
                             f"{', '.join(known) or 'none'}")
        for pack in targets:
            setting = pack.settings[name]
            resolved[pack.name][name] = _setting_value(key, value, setting.default, setting.minimum, setting.maximum)
    return resolved


def _setting_value(key: str, value: Any, default: Any, minimum: Any = None, maximum: Any = None) -> Any:
    """`value` converted to the type of the setting's default, within the setting's bounds, or a
    UsageError. A mapping setting takes a mapping of some of its names: they replace the
    defaults of those names."""
    if isinstance(default, dict):
        if not isinstance(value, Mapping) or not value:
            raise UsageError(f"setting `{key}` maps names to values ({', '.join(default)}), not `{value}`")
        merged = dict(default)
        for name, item in value.items():
            if name not in default:
                raise UsageError(f"setting `{key}` has no name `{name}`{did_you_mean(str(name), default)}; "
                                 f"its names: {', '.join(default)}")
            merged[name] = _setting_value(f"{key}.{name}", item, default[name], minimum, maximum)
        return merged
    if isinstance(default, bool):
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("true", "false", "yes", "no"):
            return value.lower() in ("true", "yes")
        raise UsageError(f"setting `{key}` is true or false, not `{value}`")
    if isinstance(default, (int, float)):
        number = None
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            number = value
        elif isinstance(value, str):  # from a command line or an environment variable
            for convert in (int, float):
                try:
                    number = convert(value)
                    break
                except ValueError:
                    pass
        if number is None:
            raise UsageError(f"setting `{key}` is a number, not `{value}`")
        if not math.isfinite(number):  # TOML has `inf` and `nan`; a rule compares with neither
            raise UsageError(f"setting `{key}` must be a finite number, not `{value}`")
        if key.rpartition(".")[2] in BUDGET_SETTINGS and not number > 0:
            raise UsageError(f"setting `{key}` is a budget: it must be more than 0, not `{value}`")
        if (minimum is not None and number < minimum) or (maximum is not None and number > maximum):
            bounds = f"from {minimum} to {maximum}" if minimum is not None and maximum is not None else \
                f"at least {minimum}" if minimum is not None else f"at most {maximum}"
            raise UsageError(f"setting `{key}` must be {bounds}, not `{value}`")
        return number
    if isinstance(value, str) and value:
        return value
    raise UsageError(f"setting `{key}` is text, not `{value}`")


def _resolve_severities(rules: Mapping[str, Rule], overrides: Mapping[str, str]) -> dict[str, str]:
    for rule_id, severity in overrides.items():
        if rule_id not in rules:
            raise UsageError(f"severity override for unknown rule `{rule_id}`{did_you_mean(rule_id, rules)}")
        if severity not in SEVERITIES:
            raise UsageError(f"severity override for `{rule_id}`: `{severity}` is not one of "
                             f"{', '.join(SEVERITIES)}")
        if not rules[rule_id].has_finding:
            raise UsageError(f"severity override for `{rule_id}`: the rule only derives facts, "
                             f"it has no finding")
    return dict(overrides)


def _check_selected(rules: Mapping[str, Rule], selected: Iterable[str]) -> set[str]:
    chosen = set(selected)
    for rule_id in sorted(chosen - set(rules)):
        raise UsageError(f"unknown rule `{rule_id}`{did_you_mean(rule_id, rules)}")
    return chosen


def _with_dependencies(rules: Sequence[Rule], reporting: set[str], packs: Sequence[Pack]) -> set[str]:
    """The reporting rules plus every rule deriving a kind they (or the outcome) need."""
    derivers: dict[str, list[Rule]] = {}
    for rule in rules:
        if rule.derive:
            derivers.setdefault(rule.derive.kind, []).append(rule)
    included: set[str] = set()
    pending = [rule for rule in rules if rule.id in reporting]
    pending += [r for pack in packs if pack.outcome for r in derivers.get(pack.outcome.kind, [])]
    while pending:
        rule = pending.pop()
        if rule.id in included:
            continue
        included.add(rule.id)
        for kind in rule.kinds_used:
            pending += derivers.get(kind, [])
    return included


# ---- one rule -> engine rules ---------------------------------------------------------------


class _RuleCompiler:
    def __init__(self, compiled: CompiledRule, first_index: int):
        self.compiled = compiled
        self.rule = compiled.rule
        self.settings = compiled.settings
        self.first_index = first_index

    def compile(self) -> list[EngineRule]:
        rule = self.rule
        positives: list[list[dict]] = []  # per positive pattern: its alternative engine conditions
        negations: dict[int, list[dict]] = {}  # pattern index -> engine conditions (one $not each)
        python_patterns: list[tuple[int, Pattern]] = []  # patterns (partly) decided in Python
        for index, pattern in enumerate(rule.when):
            needs_python = any(_needs_python(test) for test in pattern.tests())
            if needs_python:
                python_patterns.append((index, pattern))
            if pattern.negated:
                if not needs_python:
                    negations[index] = self._alternatives(pattern)
            elif needs_python:
                # The engine matches the safe `where` tests; Python checks the whole pattern.
                safe = [t for t in pattern.where if not _needs_python(t) and t.op != "in"]
                positives.append([self._condition(pattern.kind, safe)])
            else:
                positives.append(self._alternatives(pattern))
        variant_count = 1
        for alternatives in positives:
            variant_count *= len(alternatives)
        if variant_count > MAX_VARIANTS:
            raise UsageError(f"{rule.source('when')}: the `any:`/`in:` alternatives of rule {rule.id} "
                             f"multiply to {variant_count} cases (at most {MAX_VARIANTS}); split the rule "
                             f"or derive a fact")
        negation_count = sum(len(v) for v in negations.values())
        if negation_count > MAX_NEGATIONS:
            raise UsageError(f"{rule.source('when')}: rule {rule.id} expands to {negation_count} `not:` "
                             f"tests (at most {MAX_NEGATIONS}); shorten its `in:` lists")
        aliases = {_alias(p.name): p.name for p in rule.when if not p.negated}
        check = _python_check(python_patterns, rule, self.settings) if python_patterns else None
        engine_rules = []
        for number, choice in enumerate(itertools.product(*positives)):
            patterns: list[dict] = []
            chosen = iter(choice)
            for index, pattern in enumerate(rule.when):
                if not pattern.negated:
                    patterns.append({_alias(pattern.name): next(chosen)})
                else:
                    for branch, condition in enumerate(negations.get(index, ())):
                        patterns.append({f"x{index}_{branch}$not": condition})
            engine_rules.append(EngineRule(name=f"r{self.first_index + number}", rule_id=rule.id,
                                           stratum=self.compiled.stratum, patterns=tuple(patterns),
                                           aliases=aliases, check=check))
        return engine_rules

    def _alternatives(self, pattern: Pattern) -> list[dict]:
        """The pattern as a list of engine conditions, one of which must hold (its DNF)."""
        fixed = [t for t in pattern.where if t.op != "in"]
        choices = [[[_equality(t, v)] for v in t.operands] for t in pattern.where if t.op == "in"]
        if pattern.any:
            choices.append([alternative for branch in pattern.any for alternative in _expand_in(branch)])
        conditions: list[dict] = []
        seen: set[str] = set()
        for choice in itertools.product(*choices):
            tests = fixed + [t for part in choice for t in part]
            condition = self._condition(pattern.kind, tests)
            key = json.dumps(condition, sort_keys=True)
            if key not in seen:
                seen.add(key)
                conditions.append(condition)
        return conditions

    def _condition(self, kind: str, tests: Sequence[Test]) -> dict:
        parts: dict[str, dict] = {}
        for test in tests:
            for part in self._engine_tests(test):
                parts.setdefault(json.dumps(part, sort_keys=True), part)
        if not parts:
            return {"kind": kind}
        # A canonical order lets rules share the engine's alpha nodes (fewer, shorter walks).
        # Equalities with a value come first: the engine finds those successors of a node by
        # hash, while it tries every other kind of test one by one, for every fact that
        # reaches the node.
        return {"$and": [{"kind": kind}, *(parts[key] for key in sorted(parts, key=_test_order))]}

    def _engine_tests(self, test: Test) -> list[dict]:
        name = test.field
        if test.op == "exists":
            return [{"$ex" if test.value else "$nex": {name: 1}}]
        if test.op == "not_in":
            return [{"$neq": {name: self._literal(operand)}} for operand in test.operands]
        operand = test.operands[0]
        if isinstance(operand, FieldRef):  # only equality joins reach here
            return [{name: {_alias(operand.name): operand.field}}]
        value = self._literal(operand)
        if test.op == "eq":
            return [{name: value}]
        return [{_ENGINE_OPERATORS[test.op]: {name: value}}]

    def _literal(self, operand: Operand) -> Any:
        return _operand_value(operand, {}, self.settings)


def _test_order(key: str) -> tuple[int, str]:
    """Equality with a literal first, then the other tests (comparisons, existence, joins)."""
    ((name, value),) = json.loads(key).items()
    return (0 if not name.startswith("$") and not isinstance(value, dict) else 1, key)


def _expand_in(tests: Sequence[Test]) -> list[list[Test]]:
    """A conjunction with `in` tests as a list of conjunctions with equalities."""
    fixed = [t for t in tests if t.op != "in"]
    choices = [[_equality(t, v) for v in t.operands] for t in tests if t.op == "in"]
    return [fixed + list(choice) for choice in itertools.product(*choices)]


def _equality(test: Test, operand: Operand) -> Test:
    """One alternative of `field: {in: [...]}`."""
    return Test(field=test.field, op="eq", value=operand, line=test.line)


def _needs_python(test: Test) -> bool:
    """A comparison with an earlier fact's field that the engine cannot do safely."""
    return test.op not in ("eq", "in") and any(isinstance(o, FieldRef) for o in test.operands)


def _alias(name: str) -> str:
    return f"n_{name}"


# ---- the Python side of a pattern (same semantics as the engine's) --------------------------


def _python_check(patterns: list[tuple[int, Pattern]], rule: Rule, settings: Mapping[str, Any]) -> Check:
    bound_before = {index: tuple(p.name for p in rule.when[:index] if not p.negated)
                    for index, _ in patterns}
    return _PythonCheck(tuple(patterns), bound_before, dict(settings))


@dataclass(frozen=True, eq=False)  # compared and hashed by identity, like the closure it replaces
class _PythonCheck:
    """The patterns (or parts of them) of one rule that Python decides. A class rather than a
    closure so that compiled rules can be pickled (ssm_rules.cache keeps them between runs)."""

    patterns: tuple[tuple[int, Pattern], ...]
    bound_before: Mapping[int, tuple[str, ...]]  # pattern index -> names bound before it
    settings: Mapping[str, Any]

    def __call__(self, bindings: Mapping[str, Mapping[str, Any]],
                 facts_by_kind: Mapping[str, Sequence[Mapping[str, Any]]]) -> bool:
        settings = self.settings
        for index, pattern in self.patterns:
            if not pattern.negated:
                if not pattern_holds(pattern, bindings[pattern.name], bindings, settings):
                    return False
                continue
            # Like the engine, a negation never counts a fact already bound in the match.
            taken = {id(bindings[name]) for name in self.bound_before[index]}
            for fact in facts_by_kind.get(pattern.kind, ()):
                if id(fact) not in taken and pattern_holds(pattern, fact, bindings, settings):
                    return False
        return True


def pattern_holds(pattern: Pattern, fact: Mapping[str, Any], bindings: Mapping[str, Mapping[str, Any]],
                  settings: Mapping[str, Any]) -> bool:
    """Whether `fact` satisfies the pattern's tests, given the facts bound so far."""
    if fact.get("kind") != pattern.kind:
        return False
    if not all(test_holds(t, fact, bindings, settings) for t in pattern.where):
        return False
    return not pattern.any or any(all(test_holds(t, fact, bindings, settings) for t in branch)
                                  for branch in pattern.any)


def test_holds(test: Test, fact: Mapping[str, Any], bindings: Mapping[str, Mapping[str, Any]],
               settings: Mapping[str, Any]) -> bool:
    value = engine_value(fact.get(test.field))
    if test.op == "exists":
        return (value is not None) == test.value
    if value is None:
        return False
    others = [v for o in test.operands if (v := _operand_value(o, bindings, settings)) is not None]
    if test.op == "in":
        return any(_equal(value, other) for other in others)
    if test.op == "not_in":
        return not any(_equal(value, other) for other in others)
    if not others:
        return False  # compared with a field the other fact does not have
    other = others[0]
    if test.op == "eq":
        return _equal(value, other)
    if test.op == "ne":
        return not _equal(value, other)
    kind = _type_class(value)
    if kind not in ("number", "text") or kind != _type_class(other):
        return False
    return {"lt": value < other, "lte": value <= other, "gt": value > other, "gte": value >= other}[test.op]


def _type_class(value: Any) -> str:
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, (int, float)):
        return "number"
    return "text" if isinstance(value, str) else "other"


def _equal(a: Any, b: Any) -> bool:
    return _type_class(a) == _type_class(b) and a == b


def _operand_value(operand: Operand, bindings: Mapping[str, Mapping[str, Any]], settings: Mapping[str, Any],
                   raw: bool = False) -> Any:
    if isinstance(operand, Const):
        return operand.value
    if isinstance(operand, SettingRef):
        return settings[operand.setting]
    fact = bindings.get(operand.name)
    value = fact.get(operand.field) if fact is not None else None
    return value if raw else engine_value(value)


# ---- engine limits --------------------------------------------------------------------------


def _engine_fields(engine_rules: Sequence[EngineRule],
                   compiled: Mapping[str, CompiledRule]) -> tuple[dict[str, frozenset[str]], dict[str, frozenset[str]]]:
    """Kind -> fields the engine reads (tested fields, and the fields joins refer to), and kind ->
    the fields of those it only tests for existence (long texts and lists need not travel)."""
    fields: dict[str, set[str]] = {}
    valued: dict[str, set[str]] = {}  # fields compared with a value or joined
    for rule in compiled.values():
        for pattern in rule.rule.when:
            fields.setdefault(pattern.kind, set())
    for engine_rule in engine_rules:
        kinds = {alias: compiled[engine_rule.rule_id].rule.names[name]
                 for alias, name in engine_rule.aliases.items()}
        for pattern in engine_rule.patterns:
            (condition,) = pattern.values()
            kind = _kind_of(condition)
            for part in _parts(condition)[1:]:
                existence = next(iter(part)) in ("$ex", "$nex")
                for name, rhs in _field_tests(part):
                    fields[kind].add(name)
                    if not existence:
                        valued.setdefault(kind, set()).add(name)
                    if isinstance(rhs, dict):  # a join: {alias: field}
                        ((alias, other_field),) = rhs.items()
                        fields[kinds[alias]].add(other_field)
                        valued.setdefault(kinds[alias], set()).add(other_field)
    for kind, names in fields.items():
        if len(names) > MAX_FIELDS_PER_KIND:
            raise UsageError(f"rules test {len(names)} fields of `{kind}` facts; the engine handles "
                             f"at most {MAX_FIELDS_PER_KIND}")
    presence = {kind: frozenset(names - valued.get(kind, set())) for kind, names in fields.items()}
    return ({kind: frozenset(names) for kind, names in fields.items()},
            {kind: names for kind, names in presence.items() if names})


def _kind_of(condition: dict) -> str:
    return _parts(condition)[0]["kind"]


def _parts(condition: dict) -> list[dict]:
    return condition["$and"] if "$and" in condition else [condition]


def _field_tests(part: dict) -> list[tuple[str, Any]]:
    ((key, value),) = part.items()
    if key.startswith("$"):
        return list(value.items())
    return [(key, value)]


def djb2(text: str) -> int:
    """The engine's 32-bit hash of property, alias and rule names."""
    value = 5381
    for byte in text.encode("utf-8"):
        value = (value * 33 + (byte - 256 if byte > 127 else byte)) & 0xFFFFFFFF
    return value


def _check_hashes(engine_rules: Sequence[EngineRule], fields: Mapping[str, frozenset[str]]) -> None:
    """The engine tells names apart by a 32-bit hash only: refuse names that collide."""
    def distinct(names: Iterable[str], what: str) -> None:
        seen: dict[int, str] = {}
        for name in names:
            other = seen.setdefault(djb2(name), name)
            if other != name:
                raise UsageError(f"the engine cannot tell {what} `{other}` and `{name}` apart "
                                 f"(equal 32-bit hashes); rename one")

    reserved = {"kind", "id", "sid", "stratum", "$s"}
    for kind, names in fields.items():
        distinct(sorted(reserved | names), f"the fields of `{kind}`:")
    distinct([rule.name for rule in engine_rules] + ["ssm_start", "ssm_end", "ssm_catch_all"], "rule names")
    for rule in engine_rules:
        aliases = [GATE_ALIAS, *[next(iter(p)) for p in rule.patterns]]
        distinct(aliases, f"in rule {rule.rule_id} the names")


def _shard(engine_rules: Sequence[EngineRule]) -> list[Shard]:
    """Spread the rules over as few rulesets as keep every alpha walk within the limits."""
    paths = {rule.name: _alpha_paths(rule) for rule in engine_rules}
    groups: list[list[EngineRule]] = []
    for rule in engine_rules:
        for group in groups:
            if _within_limits([paths[r.name] for r in group] + [paths[rule.name]]):
                group.append(rule)
                break
        else:
            if not _within_limits([paths[rule.name]]):
                raise UsageError(f"rule {rule.rule_id} is too large for the rule engine")
            groups.append([rule])
    shards = []
    for group in groups:
        kinds = {_kind_of(next(iter(p.values()))) for rule in group for p in rule.patterns}
        shards.append(Shard(rules=tuple(group), kinds=frozenset(kinds),
                            strata=tuple(sorted({r.stratum for r in group}))))
    return shards or [Shard(rules=(), kinds=frozenset(), strata=())]


def _alpha_paths(rule: EngineRule) -> list[tuple[str, ...]]:
    """The chain of alpha tests of each of the rule's patterns (the gate's included)."""
    conditions = [gate_pattern(rule.stratum)[GATE_ALIAS], *(next(iter(p.values())) for p in rule.patterns)]
    return [tuple(json.dumps(part, sort_keys=True) for part in _parts(c)) for c in conditions]


@dataclass
class _AlphaNode:
    successors: dict[str, _AlphaNode] = field(default_factory=dict)
    rules: int = 0  # patterns ending here


def _within_limits(rules: Sequence[list[tuple[str, ...]]]) -> bool:
    """Model the engine's alpha network (a node per distinct test, shared by common prefixes)
    and check the walk of any fact against the engine's limits, assuming every test passes
    (the worst case). `rules` holds each rule's alpha paths."""
    root = _AlphaNode()
    for paths in rules:
        for path in paths:
            node = root
            for part in path:
                node = node.successors.setdefault(part, _AlphaNode())
            node.rules += 1

    def worst_stack(top: _AlphaNode) -> int:
        """The most nodes the engine's stack holds while walking below `top`. Iterative: a
        `not_in` of hundreds of values is a chain of as many nodes, deeper than Python recurses."""
        worst: dict[int, int] = {}
        pending: list[tuple[_AlphaNode, bool]] = [(top, False)]
        while pending:
            node, children_done = pending.pop()
            if not children_done:
                pending.append((node, True))
                pending.extend((child, False) for child in node.successors.values())
                continue
            if len(node.successors) > MAX_SUCCESSORS or node.rules > MAX_RULES_PER_NODE:
                worst[id(node)] = ALPHA_STACK_BUDGET + 1
                continue
            deepest = max((worst[id(child)] for child in node.successors.values()), default=0)
            count = len(node.successors)
            worst[id(node)] = max(count, count - 1 + deepest) if count else 0
        return worst[id(top)]

    if len(root.successors) + 3 > MAX_SUCCESSORS:  # the start, end and catch-all rules' nodes
        return False
    # At the root a fact passes its own kind node, plus the catch-all rule's node.
    return all(1 + worst_stack(node) <= ALPHA_STACK_BUDGET for node in root.successors.values())
