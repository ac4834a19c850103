"""Checks across rule files and packs: unique IDs and pack names, derived kinds and fields, the
pack outcome, and tests whose value cannot have the type of the field they test."""

from __future__ import annotations

import textwrap

import pytest
from rule_pack_files import GOOD, PACK, assert_problem, problems_of, typed_rule, write_pack

from ssm_rules.rulepack import load_packs, rule_strata

def test_duplicate_rule_ids_across_packs_name_both_files(tmp_path):
    first = write_pack(tmp_path / "one", {"a.yaml": GOOD})
    second = write_pack(tmp_path / "two", {"sub/b.yaml": GOOD}, pack=PACK.replace("name: t", "name: u"))
    problems = problems_of(first, second)
    assert_problem(problems, second / "sub" / "b.yaml", 1, "rule ID `T-001` is already used by",
                   f"{first / 'a.yaml'}:1")


def test_duplicate_pack_names(tmp_path):
    first = write_pack(tmp_path / "one", {})
    second = write_pack(tmp_path / "two", {})
    assert_problem(problems_of(first, second), second / "pack.yaml", 1, "pack name `t` is already used by")


def test_derived_kinds_are_known_to_every_pack_and_checked_for_fields(tmp_path):
    deriving = write_pack(tmp_path / "one", {"d.yaml": """\
        id: D-1
        title: flags opportunities
        when:
          - opportunity: o
        derive:
          kind: flagged
          fields: {opportunity: $o.key}
        """})
    using = write_pack(tmp_path / "two", {"u.yaml": """\
        id: U-1
        title: uses the flag
        severity: info
        when:
          - opportunity: o
          - flagged: f
            where: {opportunity: $o.key, reason: x}
        message: m
        next_action: n
        """}, pack=PACK.replace("name: t", "name: u"))
    assert_problem(problems_of(deriving, using), using / "u.yaml", 7,
                   "kind `flagged` has no field `reason`")
    (using / "u.yaml").write_text((using / "u.yaml").read_text().replace(", reason: x", ""))
    packs = load_packs([deriving, using], include_builtin=False)
    assert rule_strata([r for p in packs for r in p.rules]) == {"D-1": 0, "U-1": 1}


def test_outcome_must_name_a_derived_kind_and_field(tmp_path):
    pack = write_pack(tmp_path / "p", {"d.yaml": """\
        id: D-1
        title: evidence
        when: [{plan: p}]
        derive: {kind: evidence, fields: {item: G80}}
        """}, pack=PACK + "outcome: {kind: evidence, field: itme, items: [G80]}\n")
    assert_problem(problems_of(pack), pack / "pack.yaml", 1, "outcome field `itme`", "did you mean `item`?")
    (pack / "pack.yaml").write_text(PACK + "outcome: {kind: evidense, field: item, items: [G80]}\n")
    assert_problem(problems_of(pack), pack / "pack.yaml", 1, "outcome kind `evidense` is not a derived kind",
                   "did you mean `evidence`?")


@pytest.mark.parametrize(("where", "needles"), [
    ('{value: {lte: "100000"}}', ['`value` of `opportunity` is a number, but `"100000"` is text',
                                  "write the number without quotes"]),
    ("{value: {gte: 1e6x}}", ["`value` of `opportunity` is a number", "`\"1e6x\"` is text"]),
    ('{must_win: "yes"}', ["`must_win` of `opportunity` is true/false", "write true or false without quotes"]),
    ("{must_win: {gt: 0}}", ["`must_win` of `opportunity` is true/false", "true/false have no order"]),
    ("{name: 12}", ["`name` of `opportunity` is text, but `12` is a number", "put the value in quotes"]),
    ("{priority: $c.name}", ["`priority` of `opportunity` is a number, but `$c.name` is text"]),
    ("{priority: {in: [1, two]}}", ['`"two"` is text']),
    ("{value: {gt: $settings.label}}", ["`$settings.label` is text"]),
    ("{stage: {ne: 2026-01-01}, value: {lt: 2026-01-01}}", ["`value` of `opportunity` is a number, but "
                                                            "`2026-01-01` is a date"]),
])
def test_a_test_whose_value_cannot_have_the_fields_type_is_refused(tmp_path, where, needles):
    pack = PACK + "  label: {default: big, description: A text setting.}\n"
    path = write_pack(tmp_path / "p", {"r.yaml": typed_rule(where)}, pack=pack)
    (problem,) = problems_of(path)
    assert problem.startswith(f"{path / 'r.yaml'}:7: ")
    for needle in needles:
        assert needle in problem, problem


def test_dates_are_compared_with_dates(tmp_path):
    rule = typed_rule("{stage: identified}").replace("- contact: c", '- contact: c\n    where: {last_contact: {lt: "2026-1-1"}}')
    path = write_pack(tmp_path / "p", {"r.yaml": rule})
    (problem,) = problems_of(path)
    assert "`last_contact` of `contact` is a date" in problem and "write the date as YYYY-MM-DD" in problem
    fine = typed_rule("{stage: identified}").replace("- contact: c", "- contact: c\n    where: {last_contact: {lt: 2026-01-01}}")
    load_packs([write_pack(tmp_path / "q", {"r.yaml": fine})], include_builtin=False)


def test_derived_fields_have_the_type_of_what_they_copy(tmp_path):
    derive = textwrap.dedent("""\
        id: T-8
        title: Derives
        when:
          - opportunity: o
        derive: {kind: ranked, fields: {opportunity: $o.key, rank: $o.priority}}
        """)
    use = typed_rule("{key: $r.opportunity}").replace("- contact: c", '- ranked: r\n    where: {rank: "1"}') + "subject: o\n"
    path = write_pack(tmp_path / "p", {"a.yaml": derive, "b.yaml": use})
    (problem,) = problems_of(path)
    assert problem.startswith(f"{path / 'b.yaml'}:6: ") and "`rank` of `ranked` is a number" in problem


def test_the_fact_catalogue_gives_the_type_of_every_value_the_facts_hold():
    """FACT_FIELDS is the one source of the fields' types: what plan_facts produces for the
    sample plans has the declared type, and every declared type is one the loader knows."""
    from datetime import date

    from conftest import FACTS
    from ssm_rules import facts as fact_module
    from ssm_rules.loader import load_path
    from ssm_rules.plan_shape import validate

    python_types = {fact_module.TEXT: str, fact_module.NUMBER: (int, float), fact_module.BOOLEAN: bool,
                    fact_module.DATE: str, fact_module.LIST: list}
    for fields in fact_module.FACT_FIELDS.values():
        assert all(spec[0] in fact_module.FIELD_TYPES and spec[1] for spec in fields.values())
    seen = set()
    for path in sorted(FACTS.glob("*.yaml")):
        for fact in fact_module.plan_facts(validate(load_path(path)), date(2026, 11, 27)):
            declared = fact_module.FACT_FIELDS[fact["kind"]]
            for name, value in fact.items():
                if name in ("kind", "path"):
                    continue
                field_type = declared[name][0]
                assert isinstance(value, python_types[field_type]), (fact["kind"], name, value)
                assert field_type != fact_module.NUMBER or not isinstance(value, bool), (fact["kind"], name)
                if field_type == fact_module.DATE:
                    date.fromisoformat(value)
                seen.add((fact["kind"], name))
    assert len(seen) > 0.9 * sum(len(fields) for fields in fact_module.FACT_FIELDS.values())
