"""The built-in packs cover their SSM guidance catalogues, and every rule is documented.

The catalogues are data: `guidance.yaml` beside each built-in pack's pack.yaml (G01-G87 of the
Focus phase in rules/focus/, S01-S31 of the opportunity stages in rules/stages/). These tests
check the committed catalogues against the committed rules, both ways: every guidance ID a rule
cites is in a catalogue, and every catalogue item is enforced by a rule of its pack or says
(`no_rule`) why none does.
"""

from __future__ import annotations

import os
import re
from collections import Counter
from pathlib import Path

import pytest
import yaml

from conftest import ROOT
from ssm_rules.rulepack import (RulePackError, all_rules, builtin_pack_dir, guidance_items, load_catalogue,
                                load_packs)

PACK_DIR = ROOT / "rules" / "focus"
PACK_DIRS = (ROOT / "rules" / "focus", ROOT / "rules" / "stages")
EVIDENCE = ("G80", "G81", "G82", "G83", "G84", "G85")
PACKS = load_packs([], include_builtin=True)
RULES = all_rules(PACKS)
FINDING_RULES = [rule for rule in RULES if rule.has_finding]
CATALOGUE = guidance_items(PACKS)
# Every committed catalogue, also one whose pack is not (yet) among the built-in packs.
CATALOGUE_FILES = sorted(ROOT.glob("rules/*/guidance.yaml"))
# The items of the method, as the catalogues number them: none may silently disappear.
FOCUS_IDS = [f"G{n:02d}" for n in (*range(1, 8), *range(10, 14), *range(20, 24), 30, 40, 41, 50, 51,
                                    *range(60, 72), *range(80, 88))]
STAGE_IDS = [f"S{n:02d}" for n in (*range(1, 7), *range(10, 15), 20, 21, 22, 30, 31)]


def _by_guidance(gid: str) -> list:
    return [rule for rule in RULES if gid in rule.guidance]


def test_the_catalogues_hold_every_item_of_the_method():
    files = {path.parent.name: load_catalogue(path, path.parent.name) for path in CATALOGUE_FILES}
    assert set(files) >= {"focus", "stages"}
    assert [item.id for item in files["focus"].items] == FOCUS_IDS
    assert [item.id for item in files["stages"].items] == STAGE_IDS
    for catalogue in files.values():
        for item in catalogue.items:
            assert item.title and item.section and item.looks_for, item.id


@pytest.mark.parametrize("rule", [rule for rule in RULES if rule.has_finding], ids=lambda rule: rule.id)
def test_the_catalogue_gives_each_rule_its_default_severity(rule):
    assert any(CATALOGUE[gid].severity for gid in rule.guidance), (
        f"none of {rule.guidance} gives a default `severity` in its catalogue")


def test_no_guidance_id_is_in_two_catalogues():
    ids = [item.id for path in CATALOGUE_FILES for item in load_catalogue(path, path.parent.name).items]
    assert [gid for gid, count in Counter(ids).items() if count > 1] == []


def test_every_cited_guidance_id_is_in_a_loaded_catalogue():
    cited = {gid for rule in RULES for gid in rule.guidance}
    assert cited and cited <= set(CATALOGUE), sorted(cited - set(CATALOGUE))


@pytest.mark.parametrize("pack", [pack for pack in PACKS if pack.catalogue], ids=lambda pack: pack.name)
def test_every_catalogue_item_is_enforced_by_a_rule_or_says_why_not(pack):
    for item in pack.catalogue.items:
        enforcing = [rule.id for rule in pack.rules if item.id in rule.guidance]
        if item.no_rule:
            assert not enforcing, f"{item.id} says no rule enforces it, but {enforcing} cite it"
        else:
            assert enforcing, f"no rule in {pack.directory} enforces {item.id} ({item.title})"


def test_outcome_evidence_has_short_labels():
    """The audit's outcome chart names each piece of evidence by its catalogue label."""
    for pack in PACKS:
        for item in pack.outcome.items if pack.outcome else ():
            assert item in CATALOGUE and CATALOGUE[item].label, item


def test_the_builtin_pack_is_the_one_in_the_repository():
    assert builtin_pack_dir().resolve() == PACK_DIR.resolve()
    focus = [pack for pack in PACKS if pack.name == "focus"]
    assert len(focus) == 1
    pack = focus[0]
    assert pack.settings["review_days"].default == 92 and pack.settings["review_days"].description
    assert pack.settings["ongoing_days"].default == 30 and pack.settings["ongoing_days"].description
    assert pack.outcome is not None
    assert (pack.outcome.kind, pack.outcome.field, pack.outcome.items) == ("evidence", "item", EVIDENCE)


def test_rule_ids_are_unique_and_follow_the_scheme():
    files = sorted(p for d in PACK_DIRS for p in d.rglob("*.yaml") if p.name not in ("pack.yaml", "guidance.yaml"))
    ids = [yaml.safe_load(path.read_text(encoding="utf-8"))["id"] for path in files]
    duplicates = [rule_id for rule_id, count in Counter(ids).items() if count > 1]
    assert not duplicates
    assert len(ids) == len(RULES)
    for rule_id in ids:
        assert re.fullmatch(r"SSM-(PLAN|INS|OPP|RTM|REL|TEAM|BDU|OUT|DRV|STG)-\d{3}", rule_id), rule_id
    # the stages pack is one ID family: `SSM-STG` selects all of it, like the pack name `stages`
    assert {rule.id.startswith("SSM-STG-") for rule in RULES if rule.pack == "stages"} == {True}


def test_both_builtin_packs_load_focus_first():
    assert [pack.name for pack in PACKS] == ["focus", "stages"]
    stages = PACKS[1]
    assert {name: s.default for name, s in stages.settings.items()}.items() >= {
        "stalled_days": 90, "next_step_grace_days": 0, "engaged_days": 30,
        "stage_weights": {"identified": 10, "validated": 20, "qualified": 40, "proposed": 60, "won": 100}}.items()


def test_s22_is_the_focus_packs_g86_not_a_second_rule():
    assert not _by_guidance("S22")
    assert "G86" in CATALOGUE["S22"].no_rule
    assert len([rule for rule in FINDING_RULES if "G86" in rule.guidance]) >= len(EVIDENCE)


@pytest.mark.parametrize("rule", RULES, ids=lambda rule: rule.id)
def test_rule_file_is_named_after_its_id(rule):
    name = Path(rule.file).name
    assert name.startswith(rule.id.lower() + "-") and name.endswith(".yaml"), name


@pytest.mark.parametrize("rule", RULES, ids=lambda rule: rule.id)
def test_every_rule_is_documented(rule):
    assert rule.title and rule.guidance
    description = rule.description
    assert description is not None, "no `description`"
    for key in ("what", "why", "example"):
        text = getattr(description, key)
        assert text and len(text.split()) >= 4, f"`description.{key}` is missing or too short"
    assert "SSM" in description.why, "`why` should cite the method"
    assert rule.examples is not None
    assert len(rule.examples.fail) >= 1, "needs at least one `fail` example"
    assert len(rule.examples.pass_) >= 1, "needs at least one `pass` example"
    if rule.has_finding:
        assert rule.severity in ("error", "warning", "info")
        assert rule.message and rule.next_action and rule.location
        assert rule.owner, "say whose next action it is (`owner: account` or a contact's name)"
        assert "{" in rule.message, "the message should name what it is about"
        assert all(example.subjects for example in rule.examples.fail), "pin `subjects` on fail examples"
    else:
        assert rule.derive is not None


@pytest.mark.parametrize("rule", FINDING_RULES, ids=lambda rule: rule.id)
def test_default_severity_follows_the_catalogue(rule):
    for gid in rule.guidance:
        default = CATALOGUE[gid].severity
        assert not default or rule.severity in default, f"{gid} is {' or '.join(default)} by default"


@pytest.mark.parametrize("item", [item for item in CATALOGUE.values() if len(item.severity) > 1],
                         ids=lambda item: item.id)
def test_a_split_item_has_a_rule_of_each_severity(item):
    severities = {rule.severity for rule in FINDING_RULES if item.id in rule.guidance}
    assert severities == set(item.severity)


def test_split_severities():
    # G20: no opportunities is an error; unranked or duplicate ranks are warnings.
    g20 = {rule.id: rule.severity for rule in _by_guidance("G20")}
    assert sorted(g20.values()) == ["error", "warning", "warning"], g20
    # G69: at risk is a warning; a must-win at risk an error for the account owner.
    g69 = [rule for rule in _by_guidance("G69") if rule.has_finding]
    assert sorted(rule.severity for rule in g69) == ["error", "warning"]
    must_win = next(rule for rule in g69 if rule.severity == "error")
    assert must_win.owner == "account"


def test_g69_derives_at_risk_and_rules_build_on_it():
    derivers = [rule for rule in _by_guidance("G69") if rule.derive]
    assert derivers and {rule.derive.kind for rule in derivers} == {"at_risk"}
    users = [rule for rule in FINDING_RULES if "at_risk" in rule.kinds_used]
    assert sorted(rule.severity for rule in users) == ["error", "warning"]


def test_g64_chooses_the_g60_next_action():
    rules = _by_guidance("G64")
    assert len(rules) == 2 and all(rule.guidance == ("G60", "G64") for rule in rules)
    with_sponsor = [rule for rule in rules if "{sponsor." in rule.next_action]
    assert len(with_sponsor) == 1, "one rule asks the sponsor by name, the other maps the buying unit"


@pytest.mark.parametrize("item", EVIDENCE)
def test_evidence_is_derived_and_enforced_by_g86(item):
    derivers = [rule for rule in RULES if rule.derive and rule.derive.kind == "evidence"
                and getattr(rule.derive.fields.get("item"), "value", None) == item]
    assert derivers, f"no rule derives evidence {item}"
    enforcing = [rule for rule in FINDING_RULES if "G86" in rule.guidance and item in rule.guidance]
    assert enforcing, f"no G86 rule for {item}"
    for rule in enforcing:
        claim = rule.when[0]
        assert rule.severity == "error" and claim.kind == "plan"
        assert any(test.field == "claims_complete" and test.value.value is True for test in claim.where)
    if len(enforcing) == 1:  # one finding for the plan: it is about the missing evidence itself
        assert any(p.negated and p.kind == "evidence" for p in enforcing[0].when)
    # Items split by who is concerned (G82: each must-win opportunity, G83: each key contact) have
    # several rules; test_actionable_findings checks that they fire exactly when the item is missing.


# ---- `ssm rules` and `ssm explain` show this catalogue ------------------------------------------


def test_rules_command_lists_every_rule(runner):
    import json

    from ssm_rules.cli import main

    result = runner.invoke(main, ["rules", "--format", "json"])
    assert result.exit_code == 0, result.output
    listed = json.loads(result.output)["rules"]
    assert sorted(r["id"] for r in listed) == sorted(rule.id for rule in RULES)
    first = listed[0]
    assert set(first) >= {"id", "pack", "severity", "title", "guidance"}
    text = runner.invoke(main, ["rules"])
    assert text.exit_code == 0
    assert "SSM-BDU-001" in text.output and "[G60, G64]" in text.output


def test_explain_prints_the_documentation(runner):
    from ssm_rules.cli import main

    result = runner.invoke(main, ["explain", "ssm-bdu-001"])
    assert result.exit_code == 0, result.output
    for part in ("(SSM-BDU-001)", "Severity: error", "G64  Use the sponsor", "## What it does",
                 "## Why is this bad?", "## Example", "It fires on", "It does not fire on"):
        assert part in result.output
    derived = runner.invoke(main, ["explain", "SSM-DRV-001"])
    assert derived.exit_code == 0 and "Used by: SSM-BDU-011, SSM-BDU-012" in derived.output


def test_explain_unknown_rule_suggests_close_ids(runner):
    from ssm_rules.cli import main

    result = runner.invoke(main, ["explain", "SSM-PLN-002"])
    assert result.exit_code == 2
    assert "unknown rule or guidance ID `SSM-PLN-002`" in result.output and "SSM-PLAN-002" in result.output
    guidance = runner.invoke(main, ["explain", "G99"])
    assert guidance.exit_code == 2 and "`G99`; did you mean G69?" in guidance.output


def test_explain_a_guidance_item_prints_the_catalogue_entry_and_its_rules(runner):
    from ssm_rules.cli import main

    result = runner.invoke(main, ["explain", "g69"])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0] == "G69: An opposed key decision leader or approver puts the opportunity at risk"
    assert "Section: The buying decision unit of each opportunity (rules/focus/guidance.yaml)" in lines[1]
    assert "Default severity: warning / error" in lines
    for rule in _by_guidance("G69"):
        assert any(line.split()[:2] == [rule.id, rule.severity or "derive"] for line in lines), rule.id


def test_explain_an_item_no_rule_enforces_says_how_it_is_reported(runner):
    from ssm_rules.cli import main

    result = runner.invoke(main, ["explain", "G87"])
    assert result.exit_code == 0, result.output
    assert result.output.startswith("G87: Know how far the outcome is\n")
    assert "No rule enforces it:" in result.output and "outcome 4/6" in result.output
    assert "Rules:" not in result.output


def test_explain_shows_a_custom_packs_own_guidance_ids(runner, tmp_path):
    """A pack without a catalogue may cite IDs of its own; `ssm explain ID` lists its rules."""
    from ssm_rules.cli import main

    write_pack(tmp_path, rules={"r.yaml": RULE.format(guidance="[TEAM-7]")})
    result = runner.invoke(main, ["explain", "team-7", "--rules", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert result.output.splitlines()[:3] == ["TEAM-7", "", "Rules that cite it:"]


def test_rules_json_lists_the_catalogue_with_the_rules_of_each_item(runner):
    import json

    from ssm_rules.cli import main

    document = json.loads(runner.invoke(main, ["rules", "--format", "json"]).output)
    items = {item["id"]: item for item in document["guidance"]}
    assert list(items)[:3] == ["G01", "G02", "G03"]
    assert items["G60"]["rules"] == ["SSM-BDU-001", "SSM-BDU-002"]
    assert items["G87"]["rules"] == [] and items["G87"]["no_rule"]
    assert items["G20"]["severity"] == ["error", "warning"]


# ---- a pack's guidance.yaml ----------------------------------------------------------------------

RULE = """id: MY-001
title: Plans have an owner
severity: warning
guidance: {guidance}
when:
  - plan: p
    where: {{owner: {{exists: false}}}}
message: "Plan {{p.key}} has no owner."
next_action: Name the account owner.
"""
CATALOGUE_FILE = """title: Our method
sections:
  - title: Basics
    items:
      - id: OWN-1
        title: Every plan has an owner
        looks_for: no owner
        severity: warning
"""


def write_pack(directory: Path, catalogue: str | None = None, rules: dict[str, str] | None = None) -> Path:
    (directory / "pack.yaml").write_text("name: mine\ntitle: Mine\n")
    if catalogue is not None:
        (directory / "guidance.yaml").write_text(catalogue)
    for name, text in (rules or {}).items():
        (directory / name).parent.mkdir(parents=True, exist_ok=True)
        (directory / name).write_text(text)
    return directory


def test_a_pack_ships_its_catalogue_beside_pack_yaml(tmp_path):
    write_pack(tmp_path, CATALOGUE_FILE, {"r.yaml": RULE.format(guidance="[OWN-1, G60]")})
    mine = load_packs([tmp_path])[-1]
    assert [rule.id for rule in mine.rules] == ["MY-001"]  # guidance.yaml is not read as a rule
    assert mine.catalogue.title == "Our method"
    (item,) = mine.catalogue.items
    assert (item.id, item.section, item.severity, item.pack, item.line) == ("OWN-1", "Basics", ("warning",), "mine", 5)
    assert guidance_items(load_packs([tmp_path]))["OWN-1"] == item


def problems(directory: Path, include_builtin: bool = True) -> list[str]:
    with pytest.raises(RulePackError) as caught:
        load_packs([directory], include_builtin=include_builtin)
    return [line.replace(str(directory) + "/", "") for line in caught.value.problems]


def test_a_pack_with_a_catalogue_cites_only_catalogued_guidance(tmp_path):
    write_pack(tmp_path, CATALOGUE_FILE, {"r.yaml": RULE.format(guidance="[OWN-2]")})
    (problem,) = problems(tmp_path)
    assert problem == ("r.yaml:4: guidance `OWN-2` is in no loaded guidance catalogue (did you mean `OWN-1`?); "
                       "add it to guidance.yaml or correct the ID")


@pytest.mark.parametrize("text, expected", [
    (CATALOGUE_FILE.replace("severity: warning", "severity: warn"),
     "guidance.yaml:8: severity must be one of error, warning, info (or a list of them), not `warn` (did you mean "
     "`warning`?)"),
    (CATALOGUE_FILE.replace("looks_for:", "look_for:"),
     "guidance.yaml:7: unknown key `look_for` in a guidance item (did you mean `looks_for`?); allowed: id, title, "
     "looks_for, severity, label, no_rule"),
    (CATALOGUE_FILE + "      - id: OWN-1\n        title: Again\n",
     "guidance.yaml:9: guidance ID `OWN-1` is already used on line 5; guidance IDs are unique"),
    (CATALOGUE_FILE.replace("severity: warning", "severity: warning\n        no_rule: checked by hand"),
     "guidance.yaml:8: an item with `no_rule` has no rules, so no default severity; remove one of the two"),
    (CATALOGUE_FILE.replace("      - id: OWN-1\n", "      - id: G60\n"),
     "guidance.yaml:5: guidance ID `G60` is already used by rules/focus/guidance.yaml:"),
    ("title: Our method\nsections: []\n", "guidance.yaml:2: `sections` is a non-empty list"),
    ("- a list\n", "guidance.yaml:1: guidance.yaml must be a mapping"),
])
def test_catalogue_mistakes_name_the_file_and_line(tmp_path, text, expected):
    write_pack(tmp_path, text)
    found = problems(tmp_path)
    assert any(problem.startswith(expected) for problem in found), found


def test_a_catalogue_below_the_pack_directory_is_an_error_not_a_rule(tmp_path):
    write_pack(tmp_path, rules={"part/guidance.yaml": CATALOGUE_FILE})
    assert problems(tmp_path) == ["part/guidance.yaml:1: a guidance catalogue belongs beside pack.yaml, in the "
                                  "pack's own directory; move it there"]


def test_rules_command_reports_a_broken_pack(runner, tmp_path):
    from ssm_rules.cli import main

    (tmp_path / "pack.yaml").write_text("name: mine\ntitle: Mine\n")
    (tmp_path / "r.yaml").write_text("id: MY-001\ntitle: T\nseverity: eror\nwhen: [{plan: p}]\n"
                                     "message: m\nnext_action: n\n")
    result = runner.invoke(main, ["rules", "--rules", str(tmp_path)])
    assert result.exit_code == 2
    assert "r.yaml:3:" in result.output and "severity" in result.output


def test_the_rule_reference_page_is_up_to_date():
    """docs/rules.md is what SARIF's helpUri links to: regenerate it when a rule changes."""
    from click.testing import CliRunner

    from ssm_rules.cli import main

    generated = CliRunner().invoke(main, ["rules", "--format", "markdown"])
    assert generated.exit_code == 0
    committed = (Path(__file__).resolve().parent.parent / "docs" / "rules.md").read_text(encoding="utf-8")
    assert generated.output == committed, "run: .venv/bin/python tools/generate.py"


@pytest.mark.parametrize("name", ["guidance.yaml", "r.yaml"])
def test_a_fifo_in_a_pack_is_reported_not_read(tmp_path, name):
    """A FIFO blocks whoever reads it: `ssm check` (pack cache key, then the loader) must not hang."""
    import subprocess
    import sys

    write_pack(tmp_path)
    os.mkfifo(tmp_path / name)
    plan = ROOT / "docs" / "example-plan.yaml"
    process = subprocess.run([sys.executable, "-m", "ssm_rules", "check", "--rules", str(tmp_path), str(plan)],
                             capture_output=True, text=True, timeout=120,
                             env={**os.environ, "SSM_CACHE_DIR": str(tmp_path / "cache")})
    assert process.returncode == 2
    assert process.stderr.strip().endswith(f"{name}:1: cannot read the file: not a regular file (a device, FIFO "
                                           f"or socket)")
