"""The order rules run in: strata over derived kinds (`rule_strata`), and which derived kinds
chain within their stratum (`recursive_kinds`)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

from ssm_rules.rulepack.model import MAX_DERIVATION_DEPTH, Rule, RulePackError


def derived_fields(rules: Iterable[Rule]) -> dict[str, set[str]]:
    """Derived kind -> the fields its derive blocks list."""
    kinds: dict[str, set[str]] = {}
    for rule in rules:
        if rule.derive:
            kinds.setdefault(rule.derive.kind, set()).update(rule.derive.fields)
    return kinds


def rule_strata(rules: Sequence[Rule]) -> dict[str, int]:
    """Rule ID -> stratum: a rule runs after every rule that derives a kind it uses.

    Base kinds are stratum 0; a derived kind is one above the highest rule deriving it; a rule
    sits at the highest stratum of the kinds it uses (matched or negated). A rule may match
    (never negate) the kind it derives itself: one level of a chain from the level below, as
    the supported stage is derived milestone by milestone. Such a rule runs in the stratum of
    its other kinds, and the engine asserts what it derives at once, until nothing new comes,
    before the next stratum. Any other cycle (a derived kind that depends on itself through
    other rules or through a negation) raises RulePackError.
    """
    derivers: dict[str, list[Rule]] = {}
    for rule in rules:
        if rule.derive:
            derivers.setdefault(rule.derive.kind, []).append(rule)
    rule_stratum: dict[str, int] = {}
    kind_stratum: dict[str, int] = {}
    path: list[tuple[str, Rule]] = []  # (kind, rule deriving it) being worked out

    def of_kind(kind: str) -> int:
        if kind not in derivers:
            return 0
        if kind not in kind_stratum:
            # Set only when every deriver is known: with a partial value, a cycle through the
            # second deriver of a kind would go unnoticed (and give wrong strata).
            if any(k == kind for k, _ in path):
                raise RulePackError([_cycle_message(path, kind)])
            stratum = 0
            for rule in derivers[kind]:
                if len(path) >= MAX_DERIVATION_DEPTH:  # each level is a stratum, and two Python calls here
                    raise RulePackError([f"{rule.source('when')}: derived kinds build on each other more than "
                                         f"{MAX_DERIVATION_DEPTH} levels deep (from `{path[0][0]}`, derived by "
                                         f"{path[0][1].id}, down to `{kind}`); derive in fewer steps"])
                path.append((kind, rule))
                stratum = max(stratum, 1 + of_rule(rule))
                path.pop()
            kind_stratum[kind] = stratum
        return kind_stratum[kind]

    def of_rule(rule: Rule) -> int:
        if rule.id not in rule_stratum:
            rule_stratum[rule.id] = max((of_kind(k) for k in sorted(rule.kinds_used - _self_matched(rule))),
                                        default=0)
        return rule_stratum[rule.id]

    for rule in rules:
        of_rule(rule)
    return rule_stratum


def _self_matched(rule: Rule) -> set[str]:
    """The kind a rule derives, when it only matches it (never negates it): its own chain."""
    if rule.derive is None:
        return set()
    kind = rule.derive.kind
    uses = [p for p in rule.when if p.kind == kind]
    return {kind} if uses and not any(p.negated for p in uses) else set()


def recursive_kinds(rules: Iterable[Rule], strata: Mapping[str, int]) -> dict[str, int]:
    """Derived kind -> the first stratum with a rule that matches it while deriving it: from
    that stratum on, its facts are asserted as soon as they are derived (a chain)."""
    first: dict[str, int] = {}
    for rule in rules:
        for kind in _self_matched(rule):
            first[kind] = min(first.get(kind, strata[rule.id]), strata[rule.id])
    return first


def _cycle_message(path: list[tuple[str, Rule]], kind: str) -> str:
    start = next(i for i, (k, _) in enumerate(path) if k == kind)
    steps = ", which uses ".join(f"`{k}`, derived by {rule.id} ({rule.source('when')})" for k, rule in path[start:])
    return (f"{path[start][1].source('when')}: the derived kind `{kind}` depends on itself: {steps}, "
            f"which uses `{kind}`; a rule cannot use, even through other rules, a kind it derives")
