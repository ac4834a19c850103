"""The order rules run in: derived kinds in strata, chains within one, and cycles refused."""

from __future__ import annotations

from rule_pack_files import problems_of, write_pack

from ssm_rules.rulepack import load_packs, rule_strata

def test_a_cycle_of_derived_kinds_is_an_error(tmp_path):
    pack = write_pack(tmp_path / "p", {
        "a.yaml": "id: A-1\ntitle: x\nwhen:\n  - plan: p\n  - not: beta\nderive:\n  kind: alpha\n  fields: {k: $p.key}\n",
        "b.yaml": "id: B-1\ntitle: x\nwhen:\n  - alpha: a\nderive:\n  kind: beta\n  fields: {k: $a.k}\n",
    })
    (problem,) = problems_of(pack)
    assert "depends on itself" in problem and "A-1" in problem and "B-1" in problem
    assert problem.startswith(f"{pack / 'a.yaml'}:3: ") or problem.startswith(f"{pack / 'b.yaml'}:3: ")


CHAIN = {
    "base.yaml": "id: C-0\ntitle: x\nwhen:\n  - opportunity: o\nderive:\n  kind: level\n  fields: {o: $o.key, n: 0}\n",
    "step.yaml": "id: C-1\ntitle: x\nwhen:\n  - level: l\n    where: {n: 0}\n  - opportunity: o\n"
                 "    where: {key: $l.o}\nderive:\n  kind: level\n  fields: {o: $o.key, n: 1}\n",
    "top.yaml": "id: C-2\ntitle: x\nwhen:\n  - opportunity: o\n  - not: level\n    where: {o: $o.key, n: 1}\n"
                "severity: info\nmessage: m\nnext_action: n\n",
}


def test_a_rule_may_derive_a_level_of_a_chain_from_the_level_below(tmp_path):
    """The supported stage is derived level by level: a rule that matches (never negates) the
    kind it derives is no cycle; it runs in the stratum of its other kinds."""
    from ssm_rules.rulepack import recursive_kinds

    packs = load_packs([write_pack(tmp_path / "p", CHAIN)], include_builtin=False)
    rules = [r for p in packs for r in p.rules]
    assert rule_strata(rules) == {"C-0": 0, "C-1": 0, "C-2": 1}
    assert recursive_kinds(rules, rule_strata(rules)) == {"level": 0}


def test_a_cycle_through_the_second_rule_deriving_a_kind_is_found(tmp_path):
    """Regression: the stratum of a kind was recorded after its first deriver, so a cycle
    through a later deriver went unnoticed and the rules ran in the wrong strata."""
    pack = write_pack(tmp_path / "p", {  # in this file order: the rule using `alpha` comes first
        "a.yaml": "id: C-1\ntitle: x\nwhen:\n  - alpha: a\nderive:\n  kind: beta\n  fields: {k: $a.k}\n",
        "b.yaml": "id: A-1\ntitle: x\nwhen:\n  - plan: p\nderive:\n  kind: alpha\n  fields: {k: $p.key}\n",
        "c.yaml": "id: B-1\ntitle: x\nwhen:\n  - plan: p\n  - not: beta\nderive:\n  kind: alpha\n  fields: {k: $p.owner}\n",
    })
    (problem,) = problems_of(pack)
    assert "depends on itself" in problem and "B-1" in problem and "C-1" in problem


def test_a_rule_negating_the_kind_it_derives_is_a_cycle(tmp_path):
    pack = write_pack(tmp_path / "p", {**CHAIN, "step.yaml": CHAIN["step.yaml"].replace(
        "  - opportunity: o\n    where: {key: $l.o}\n", "  - opportunity: o\n    where: {key: $l.o}\n  - not: level\n"
        "    where: {n: 1}\n")})
    (problem,) = problems_of(pack)
    assert "depends on itself" in problem and "C-1" in problem
