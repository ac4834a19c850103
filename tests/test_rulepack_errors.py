"""Broken rule files are reported as `FILE:LINE: what is wrong (how to fix it)`, all at once."""

from __future__ import annotations

import dataclasses
import os
import re
import textwrap
from pathlib import Path

import pytest

from ssm_rules.errors import UsageError
from ssm_rules.rulepack import RulePackError, builtin_pack_dir, load_packs, rule_strata

PACK = """\
name: t
title: Test pack
settings:
  review_days: {default: 92, description: Days between reviews.}
"""

GOOD = """\
id: T-001
title: Opportunity has no key decision leader
severity: error
guidance: [G60]
when:
  - opportunity: o
    where:
      stage: {ne: lost}
  - not: role
    where: {opportunity: $o.key, role: key_decision_leader}
message: "Opportunity '{o.name|o.key}' has no key decision leader."
next_action: Find one.
"""


def write_pack(root: Path, files: dict[str, str], pack: str = PACK) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    if pack is not None:
        (root / "pack.yaml").write_text(pack)
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text))
    return root


def problems_of(*dirs: Path) -> list[str]:
    with pytest.raises(RulePackError) as info:
        load_packs(list(dirs), include_builtin=False)
    assert isinstance(info.value, UsageError)  # the CLI exits 2
    for line in info.value.problems:
        assert re.match(r"^.+:\d+: \S", line), line
    assert str(info.value) == "\n".join(info.value.problems)
    return info.value.problems


def assert_problem(problems: list[str], file: Path, line: int, *needles: str) -> None:
    prefix = f"{file}:{line}: "
    at = re.compile(re.escape(f"{file}:{line}") + r"(:\d+)?: ")  # syntax errors give a column too
    for problem in problems:
        if at.match(problem) and all(n in problem for n in needles):
            return
    raise AssertionError(f"no problem at {prefix} with {needles}; got:\n" + "\n".join(problems))


def test_a_good_pack_loads(tmp_path):
    (pack,) = load_packs([write_pack(tmp_path / "p", {"good.yaml": GOOD})], include_builtin=False)
    (rule,) = pack.rules
    assert (pack.name, rule.id, rule.subject, rule.severity) == ("t", "T-001", "o", "error")
    assert rule.names == {"o": "opportunity"}
    assert rule.when[1].negated and rule.when[1].kind == "role"
    assert pack.settings["review_days"].default == 92


CASES = [
    # (rule file text, line, needles)
    ("id: T-1\ntitle: x\nseverty: error\nwhen: [{plan: p}]\nmessage: m\nnext_action: n\n", 3,
     ["unknown key `severty`", "did you mean `severity`?"]),
    ("id: T-1\ntitle: x\nseverity: eror\nwhen: [{plan: p}]\nmessage: m\nnext_action: n\n", 3,
     ["severity must be one of error, warning, info", "did you mean `error`?"]),
    ("id: T-1\ntitle: x\nseverity: error\nmessage: m\nnext_action: n\n", 1, ["missing required key `when`"]),
    ("id: T-1\ntitle: x\nseverity: error\nwhen:\n  - opportunty: o\nmessage: m\nnext_action: n\n", 5,
     ["unknown kind `opportunty`", "did you mean `opportunity`?"]),
    ("id: T-1\ntitle: x\nseverity: error\nwhen:\n  - opportunity: o\n    where:\n      stge: lost\n"
     "message: m\nnext_action: n\n", 7, ["kind `opportunity` has no field `stge`", "did you mean `stage`?"]),
    ("id: T-1\ntitle: x\nseverity: error\nwhen:\n  - opportunity: o\n  - role: r\n    where:\n"
     "      opportunity: $op.key\nmessage: m\nnext_action: n\n", 6, ["`$op.key`", "no pattern binds the name `op`",
                                                                    "did you mean `o`?"]),
    ("id: T-1\ntitle: x\nseverity: error\nwhen:\n  - role: r\n    where: {opportunity: $o.key}\n"
     "  - opportunity: o\nmessage: m\nnext_action: n\n", 5, ["refers to `o`, bound later (pattern 2)",
                                                            "move it after pattern 2"]),
    ("id: T-1\ntitle: x\nseverity: error\nwhen:\n  - plan: p\n  - not: role\n    where: {opportunity: $o.key}\n"
     "  - opportunity: o\nmessage: m\nnext_action: n\n", 6, ["`not:` may only use names bound before it"]),
    ("id: T-1\ntitle: x\nseverity: error\nwhen:\n  - role: r\nmessage: m\nnext_action: n\n", 5,
     ["the subject `r` is of kind `role`", "set `subject:`"]),
    ("id: T-1\ntitle: x\nwhen:\n  - plan: p\n", 1, ["the rule produces nothing"]),
    ("id: T-1\ntitle: x\nseverity: error\nmessage: m\nwhen:\n  - plan: p\n", 3,
     ["needs severity, message, next_action", "add `next_action`"]),
    ("id: T-1\ntitle: x\nseverity: error\nwhen:\n  - plan: p\n    where:\n"
     "      days_since_review: {gt: $settings.review_day}\nmessage: m\nnext_action: n\n", 7,
     ["unknown setting `$settings.review_day`", "did you mean `review_days`?", "declare it in pack.yaml"]),
    ("id: T-1\ntitle: x\nseverity: error\nwhen:\n  - plan: p\nmessage: '{q.key}'\nnext_action: n\n", 6,
     ["`message` uses `{q.key}`, but no pattern binds `q`"]),
    ("id: T-1\ntitle: x\nseverity: error\nwhen:\n  - plan: p\nmessage: m\nnext_action: '{p.acount_name}'\n", 7,
     ["kind `plan` has no field `acount_name`", "did you mean `account_name`?"]),
    ("id: T-1\ntitle: x\nseverity: error\nwhen:\n  - plan: p\nmessage: 'Hello {p.key'\nnext_action: n\n", 6,
     ["`message`:", "without a matching `}`"]),
    ("id: T-1\ntitle: x\nseverity: error\nwhen:\n  - plan: p\nmessage: '{settings.nope}'\nnext_action: n\n", 6,
     ["unknown setting `$settings.nope`"]),
    ("id: T-1\ntitle: x\ntitle: y\n", 3, ["duplicate key `title` (already given on line 2)"]),
    ("id: T-1\ntitle: [x\n", 3, ["YAML syntax error"]),
    ("id: T-1\ntitle: x\nseverity: error\nwhen:\n  - opportunity: o\n    where:\n      stage: [lost, won]\n"
     "message: m\nnext_action: n\n", 7, ["a list is not a test", "`stage: {in: [...]}`"]),
    ("id: T-1\ntitle: x\nseverity: error\nwhen:\n  - opportunity: o\n    where:\n      stage:\n"
     "message: m\nnext_action: n\n", 7, ["`stage: {exists: false}`"]),
    ("id: T-1\ntitle: x\nseverity: error\nwhen:\n  - opportunity: o\n    where:\n      stage: {not-in: [lost]}\n"
     "message: m\nnext_action: n\n", 7, ["unknown test `not-in`", "did you mean `not_in`?"]),
    ("id: T-1\ntitle: x\nseverity: error\nwhen:\n  - opportunity: o\n    contact: c\nmessage: m\nnext_action: n\n",
     6, ["one pattern per list item", "start `contact` with its own `- `"]),
    ("id: T-1\ntitle: x\nseverity: error\nwhen:\n  - plan: p\n  - contact: p\nmessage: m\nnext_action: n\n", 6,
     ["the name `p` is already bound by pattern 1"]),
    ("id: T-1\ntitle: x\nseverity: error\nwhen:\n  - plan: settings\nmessage: m\nnext_action: n\n", 5,
     ["the name `settings` is reserved"]),
    ("id: T-1\ntitle: x\nseverity: error\nwhen:\n  - plan:\nmessage: m\nnext_action: n\n", 5,
     ["name the fact: `plan: NAME`"]),
    ("id: T-1\ntitle: x\nwhen:\n  - plan: p\nderive:\n  kind: contact\n  fields: {owner: $p.owner}\n", 5,
     ["`contact` is a base kind"]),
    ("id: T-1\ntitle: x\nseverity: error\nwhen:\n  - role: o\nowner: o\nmessage: m\nnext_action: n\n", 6,
     ["owner `o` is of kind `role`; it must name a contact or an opportunity"]),
    ("id: T-1\ntitle: x\nseverity: error\nwhen:\n  - plan: p\n    where:\n      approved_by_client: &a {exists: true}\n"
     "      last_reviewed: *a\nmessage: m\nnext_action: n\n", 8, ["anchors and aliases"]),
    ("id: T-1\ntitle: x\nseverity: error\nwhen:\n  - plan: p\n    where:\n      routes_agreed: {gt: true}\n"
     "message: m\nnext_action: n\n", 7, ["true/false have no order"]),
    ("id: T-1\ntitle: x\nseverity: error\nwhen:\n  - plan: p\n    where:\n      owner: $jane\n"
     "message: m\nnext_action: n\n", 7, ["`$jane` is not a reference", "`$$`"]),
    ("- id: T-1\n- id: T-2\n", 1, ["a rule file holds one rule", "this is a list"]),
    ("id: T-1\ntitle: x\nseverity: error\nwhen:\n  - not: opportunity\nmessage: m\nnext_action: n\n", 4,
     ["every pattern is `not:`", "- plan: p"]),
    ("id: T 1\ntitle: x\nseverity: error\nwhen: [{plan: p}]\nmessage: m\nnext_action: n\n", 1,
     ["rule ID `T 1` may only hold"]),
    ("id: T-1\ntitle: x\nwhen:\n  - plan: p\nderive:\n  kind: flag\n  fields: {account: $q.key}\n", 7,
     ["`$q.key`: no pattern binds the name `q`"]),
    ("id: T-1\ntitle: x\nwhen:\n  - plan: p\nderive:\n  kind: flag\n  fields: {account: $p.kee}\n", 5,
     ["kind `plan` has no field `kee`", "did you mean `key`?"]),
    ("id: T-1\ntitle: x\nwhen:\n  - plan: p\nsubject: p\nderive:\n  kind: flag\n  fields: {account: $p.key}\n", 5,
     ["`subject` only applies to a rule with a finding"]),
    ("id: T-1\ntitle: x\nseverity: error\nwhen:\n  - plan: p\nmessage: m\nnext_action: n\nexamples:\n  fail:\n"
     "    - plan: {}\n      subject: [x]\n", 11, ["unknown key `subject` in an example", "did you mean `subjects`?"]),
    ("id: T-1\ntitle: x\nseverity: error\nwhen:\n  - plan: p\nmessage: m\nnext_action: n\ndescription: what it does\n",
     8, ["`description` needs `what`, `why` and `example`"]),
    ("id: T-1\ntitle: x\nseverity: error\nwhen:\n  - contact: c\n    any:\n      - {name: x}\n      - {nme: y}\n"
     "message: m\nnext_action: n\n", 8, ["kind `contact` has no field `nme`"]),
    ("id: T-1\ntitle: x\nseverity: error\nwhen:\n  - contact: c\n    any: {name: x}\nmessage: m\nnext_action: n\n",
     6, ["`any:` is a list of `where` maps"]),
]


@pytest.mark.parametrize(("text", "line", "needles"), CASES, ids=[needles[0][:40] for _, _, needles in CASES])
def test_broken_rule_file(tmp_path, text, line, needles):
    pack = write_pack(tmp_path / "p", {"rule.yaml": text})
    assert_problem(problems_of(pack), pack / "rule.yaml", line, *needles)


def test_every_mistake_is_reported_at_once(tmp_path):
    pack = write_pack(tmp_path / "p", {
        "a.yaml": "id: T-1\ntitle: x\nseverty: error\nwhen: [{plan: p}]\nmessage: m\nnext_action: n\n",
        "b.yaml": "id: T-2\ntitle: x\nseverity: error\nwhen:\n  - opportunty: o\nmessage: m\nnext_action: n\n",
    })
    problems = problems_of(pack)
    assert_problem(problems, pack / "a.yaml", 3, "severty")
    # b.yaml's unknown kind is only found once the catalogue is checked: after a.yaml is fixed.
    fixed = write_pack(tmp_path / "q", {
        "a.yaml": "id: T-1\ntitle: x\nseverity: error\nwhen:\n  - opportunty: o\nmessage: m\nnext_action: n\n",
        "b.yaml": "id: T-2\ntitle: x\nseverity: error\nwhen:\n  - contct: o\nmessage: m\nnext_action: n\n",
    })
    problems = problems_of(fixed)
    assert_problem(problems, fixed / "a.yaml", 5, "opportunty")
    assert_problem(problems, fixed / "b.yaml", 5, "contct")


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


def test_mapping_settings(tmp_path):
    pack = PACK + "  weights:\n    default: {identified: 10, won: 100}\n    description: Forecast weights.\n"
    (loaded,) = load_packs([write_pack(tmp_path / "p", {"a.yaml": GOOD}, pack=pack)], include_builtin=False)
    assert loaded.settings["weights"].default == {"identified": 10, "won": 100}
    assert loaded.settings["weights"].is_mapping and not loaded.settings["review_days"].is_mapping
    uses = GOOD.replace("stage: {ne: lost}", "priority: {gt: $settings.weights}")
    assert_problem(problems_of(write_pack(tmp_path / "q", {"a.yaml": uses}, pack=pack)), tmp_path / "q" / "a.yaml", 8,
                   "`weights` is a mapping setting")
    bad = PACK + "  weights:\n    default: {Identified: [10]}\n"
    assert_problem(problems_of(write_pack(tmp_path / "r", {}, pack=bad)), tmp_path / "r" / "pack.yaml", 6,
                   "setting `weights` needs a `default`")


def test_setting_bounds(tmp_path):
    def bounded(bounds: str) -> str:
        return PACK.replace("{default: 92, ", "{default: 92, " + bounds)

    (loaded,) = load_packs([write_pack(tmp_path / "p", {"a.yaml": GOOD}, pack=bounded("minimum: 0, maximum: 400, "))],
                           include_builtin=False)
    assert (loaded.settings["review_days"].minimum, loaded.settings["review_days"].maximum) == (0, 400)
    weights = PACK + "  weights:\n    default: {identified: 10, won: 100}\n    minimum: 0\n    maximum: 100\n"
    (loaded,) = load_packs([write_pack(tmp_path / "w", {"a.yaml": GOOD}, pack=weights)], include_builtin=False)
    assert loaded.settings["weights"].maximum == 100
    for index, (bounds, message) in enumerate([
        ("minimum: low, ", "`minimum` of setting `review_days` must be a number"),
        ("minimum: 100, ", "the default 92 of setting `review_days` lies outside its bounds (at least 100)"),
        ("minimum: 10, maximum: 5, ", "setting `review_days`: `maximum` 5 is less than `minimum` 10"),
    ]):
        assert_problem(problems_of(write_pack(tmp_path / f"b{index}", {}, pack=bounded(bounds))),
                       tmp_path / f"b{index}" / "pack.yaml", 4, message)
    text = PACK + "  label:\n    default: soon\n    maximum: 3\n"
    assert_problem(problems_of(write_pack(tmp_path / "t", {}, pack=text)), tmp_path / "t" / "pack.yaml", 7,
                   "setting `label` has bounds, so its default must be a number")


def test_owner_may_name_a_contact_or_an_opportunity(tmp_path):
    owned = GOOD + "owner: o\n"
    (loaded,) = load_packs([write_pack(tmp_path / "p", {"a.yaml": owned})], include_builtin=False)
    assert loaded.rules[0].owner == "o"
    role = GOOD.replace("  - not: role\n", "  - role: r\n    where: {opportunity: $o.key}\n  - not: role\n") + "owner: r\n"
    assert_problem(problems_of(write_pack(tmp_path / "q", {"a.yaml": role})), tmp_path / "q" / "a.yaml", 15,
                   "owner `r` is of kind `role`; it must name a contact or an opportunity")


def test_once_per_subject_is_a_flag_of_rules_with_a_finding(tmp_path):
    (loaded,) = load_packs([write_pack(tmp_path / "p", {"a.yaml": GOOD + "once_per_subject: true\n"})],
                           include_builtin=False)
    assert loaded.rules[0].once_per_subject
    assert_problem(problems_of(write_pack(tmp_path / "q", {"a.yaml": GOOD + "once_per_subject: yes please\n"})),
                   tmp_path / "q" / "a.yaml", 13, "`once_per_subject` is true or false")


def test_pack_file_problems(tmp_path):
    pack = write_pack(tmp_path / "p", {}, pack="name: Bad Name\ntitel: x\nsettings:\n  days: {description: d}\n"
                                              "outcome: {kind: evidence, field: item, items: []}\n")
    problems = problems_of(pack)
    file = pack / "pack.yaml"
    assert_problem(problems, file, 1, "pack name `Bad Name` must be a slug")
    assert_problem(problems, file, 2, "unknown key `titel`", "did you mean `title`?")
    assert_problem(problems, file, 1, "missing required key `title`")
    assert_problem(problems, file, 4, "setting `days` needs a `default`")
    assert_problem(problems, file, 5, "`outcome.items` is a non-empty list")


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


def test_directory_problems(tmp_path):
    missing = tmp_path / "missing"
    assert_problem(problems_of(missing), missing, 1, "rule pack directory does not exist")
    no_pack = tmp_path / "nopack"
    no_pack.mkdir()
    assert_problem(problems_of(no_pack), no_pack, 1, "it has no `pack.yaml`")
    pack = write_pack(tmp_path / "p", {"a.yml": GOOD, "inner/pack.yaml": PACK, ".hidden.yaml": "not: [valid"})
    problems = problems_of(pack)
    assert_problem(problems, pack / "a.yml", 1, "rule files end in `.yaml`")
    assert_problem(problems, pack / "inner" / "pack.yaml", 1, "a pack cannot contain another pack")
    assert not any(".hidden" in p for p in problems)


def test_empty_and_non_utf8_files(tmp_path):
    pack = write_pack(tmp_path / "p", {"empty.yaml": ""})
    (pack / "latin1.yaml").write_bytes(b"id: T-1\ntitle: caf\xe9\n")
    problems = problems_of(pack)
    assert_problem(problems, pack / "empty.yaml", 1, "the file is empty")
    assert_problem(problems, pack / "latin1.yaml", 2, "not UTF-8")


def test_unsafe_yaml_tags_are_refused(tmp_path):
    pack = write_pack(tmp_path / "p", {"evil.yaml": "id: !!python/object/apply:os.system [echo hi]\n"})
    assert_problem(problems_of(pack), pack / "evil.yaml", 1, "cannot read the tag")


def test_references_and_literal_dollars(tmp_path):
    text = GOOD.replace("stage: {ne: lost}", "stage: {ne: lost}\n      value: {gt: $settings.review_days}")
    text = text.replace("{opportunity: $o.key,", "{opportunity: {in: [$$cash, $o.key]},")
    (loaded,) = load_packs([write_pack(tmp_path / "p", {"r.yaml": text})], include_builtin=False)
    value = loaded.rules[0].when[0].where[1]
    assert dataclasses.asdict(value.operands[0]) == {"setting": "review_days"}
    opportunity = loaded.rules[0].when[1].where[0]
    assert [dataclasses.asdict(o) for o in opportunity.operands] == [{"value": "$cash"}, {"name": "o", "field": "key"}]


def test_rules_load_in_path_order_and_dates_become_iso_text(tmp_path):
    pack = write_pack(tmp_path / "p", {
        "b/z.yaml": GOOD.replace("T-001", "T-003"),
        "a.yaml": GOOD.replace("T-001", "T-002"),
        "b/a.yaml": GOOD.replace("stage: {ne: lost}", "stage: {ne: lost}\n      name: {gt: 2026-01-31}"),
    })
    (loaded,) = load_packs([pack], include_builtin=False)
    assert [r.id for r in loaded.rules] == ["T-002", "T-001", "T-003"]
    test = loaded.rules[1].when[0].where[1]
    assert (test.field, test.op, test.value.value) == ("name", "gt", "2026-01-31")


def test_builtin_pack_loads():
    directory = builtin_pack_dir()
    if not (directory / "pack.yaml").is_file():
        pytest.skip("the built-in pack is not written yet")
    packs = load_packs([], include_builtin=True)
    assert packs[0].directory.endswith(os.path.join("rules", "focus")) or "builtin_rules" in packs[0].directory
    assert packs[0].rules


# ---- a test that cannot match the field's type is a pack error (it would never fire) ---------


def typed_rule(where: str, *, extra: str = "") -> str:
    return textwrap.dedent("""\
        id: T-9
        title: Typed
        severity: warning
        when:
          - contact: c
          - opportunity: o
            where: {where}
        message: m
        next_action: n
        """).replace("{where}", where) + extra


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


def test_rule_files_read_numbers_as_numbers(tmp_path):
    """YAML 1.1 reads `1e6` as text; in a rule it is the number a person means."""
    rule = typed_rule("{value: {gte: 1e6}, priority: {lt: 1_000}}")
    (pack,) = load_packs([write_pack(tmp_path / "p", {"r.yaml": rule})], include_builtin=False)
    tests = {test.field: test.value.value for test in pack.rules[0].when[1].where}
    assert tests == {"value": 1_000_000, "priority": 1000}
    assert all(type(value) in (int, float) for value in tests.values())


def test_a_number_written_with_an_exponent_compares_as_a_number(tmp_path):
    """Through the real engine: `gte: 1e6` fires on 2,000,000 and never on smaller values."""
    from datetime import date

    from ssm_rules.pipeline import Checker

    rule = textwrap.dedent("""\
        id: BIG-1
        title: A big deal
        severity: info
        when:
          - opportunity: o
            where: {value: {gte: 1e6}}
        message: "'{o.key}' is big."
        next_action: Celebrate.
        """)
    (pack,) = load_packs([write_pack(tmp_path / "p", {"big.yaml": rule})], include_builtin=False)
    plan = {"format": "ssm-plan/1", "account": {"id": "acme", "name": "Acme", "owner": "jane"},
            "opportunities": [{"id": f"o-{value}", "value": value} for value in (2000, 50000, 900000, 2000000)]}
    result = Checker(packs=[pack]).check_data(plan, "acme.yaml", date(2026, 6, 30))
    assert [f.subject_id for f in result.findings] == ["o-2000000"]


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


# ---- hints are right, syntax errors read as they do for plans ---------------------------------


def test_any_inside_where_is_told_to_move_beside_it(tmp_path):
    rule = typed_rule("\n      stage: identified\n      any:\n        - {priority: {exists: false}}\n"
                      "        - {priority: {gt: 3}}")
    path = write_pack(tmp_path / "p", {"r.yaml": rule})
    (problem,) = problems_of(path)
    assert problem.startswith(f"{path / 'r.yaml'}:9: `any:` belongs beside `where:` in the pattern, not inside")
    assert "in: [...]" not in problem  # the old, wrong hint


@pytest.mark.parametrize(("text", "line", "column", "message"), [
    ("id: T-1\n\ttitle: t\n", 2, 1, "a tab character is used for indentation: YAML needs spaces"),
    ("id: T-1\nwhen:\n  - plan: p\n    where:\n    \tkey: x\n", 5, 5,
     "a tab character is used for indentation: YAML needs spaces"),
    ('id: T-1\ntitle: "t\n', 2, 8, "a quoted value is never closed"),
    ("id: T-1\ntitle: t\x01\n", 2, 9, "the file contains a control character (U+0001)"),
])
def test_rule_files_get_the_plans_syntax_messages_with_line_and_column(tmp_path, text, line, column, message):
    path = write_pack(tmp_path / "p", {"r.yaml": text})
    (problem,) = problems_of(path)
    assert problem.startswith(f"{path / 'r.yaml'}:{line}:{column}: YAML syntax error: {message}"), problem



def test_every_mistake_of_one_rule_file_is_reported_in_one_run(tmp_path):
    """A bad severity used to hide the field typo, the unbound name and the broken template
    until it was fixed: a rule author met them one round at a time."""
    rule = textwrap.dedent("""\
        id: T-1
        title: t
        severity: warn
        when:
          - opportunity: o
            where:
              valu: {gt: 5}
              stage: [won, lost]
          - contact: c
            where: {key: $x.contact}
        message: "{o.name} {c.name"
        next_action: n
        """)
    path = write_pack(tmp_path / "p", {"r.yaml": rule})
    problems = problems_of(path)
    lines = [int(problem.split(":")[1]) for problem in problems]
    assert lines == [3, 7, 8, 9, 11], problems  # in line order
    for needle in ("not `warn`", "no field `valu` (did you mean `value`?)", "`stage: {in: [...]}`",
                   "no pattern binds the name `x`", "without a matching `}`"):
        assert any(needle in problem for problem in problems), needle


@pytest.mark.parametrize("url", ["wiki/{rule}", "https://wiki.example.com/{rule.__class__}", "https://x/{0}",
                                 "javascript:alert(1)", "https://x/{rule"])
def test_a_pack_url_is_an_http_address_with_only_the_two_placeholders(tmp_path, url):
    path = write_pack(tmp_path / "p", {"good.yaml": GOOD}, pack=PACK + f"url: '{url}'\n")
    (problem,) = problems_of(path)
    assert problem.startswith(f"{path / 'pack.yaml'}:5: `url` must be an http(s) address")


def test_a_pack_url_gives_each_rule_its_address(tmp_path):
    path = write_pack(tmp_path / "p", {"good.yaml": GOOD}, pack=PACK + "url: https://wiki.example.com/ssm#{anchor}\n")
    (pack,) = load_packs([path], include_builtin=False)
    assert pack.rules[0].url == "https://wiki.example.com/ssm#t-001"
