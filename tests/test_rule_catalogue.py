"""The built-in pack covers the SSM guidance catalogue, and every rule is documented.

The catalogue is read from the guide's tables (../shared/spec/ssm-focus-guide.md) when the
spec is at hand, else from the copy `ssm explain` uses (`ssm_rules.commands.rules.GUIDANCE`).
"""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

import pytest
import yaml

from conftest import ROOT
from ssm_rules.commands.rules import GUIDANCE
from ssm_rules.rulepack import all_rules, builtin_pack_dir, load_packs

GUIDE = ROOT.parent / "shared" / "spec" / "ssm-focus-guide.md"
PACK_DIR = ROOT / "rules" / "focus"
EVIDENCE = ("G80", "G81", "G82", "G83", "G84", "G85")
_ROW = re.compile(r"^\|\s*(G\d\d)\s*\|(.*)\|\s*$", re.MULTILINE)


def _catalogue() -> dict[str, str | None]:
    """Guidance ID -> its default severity column (None for the evidence table and fallback)."""
    if GUIDE.is_file():
        rows = {}
        for gid, rest in _ROW.findall(GUIDE.read_text(encoding="utf-8")):
            cells = [cell.strip() for cell in rest.split("|")]
            rows[gid] = cells[2] if len(cells) == 3 else None  # guidance | looks for | default
        return rows
    return {gid: None for gid in GUIDANCE}


CATALOGUE = _catalogue()
# G87 is a report line (the outcome summary), not a finding: every other item needs a rule.
REQUIRED = sorted(gid for gid, default in CATALOGUE.items() if "report only" not in (default or "")
                  and gid != "G87")
PACKS = load_packs([], include_builtin=True)
RULES = all_rules(PACKS)
FINDING_RULES = [rule for rule in RULES if rule.has_finding]


def _by_guidance(gid: str) -> list:
    return [rule for rule in RULES if gid in rule.guidance]


def test_catalogue_is_complete():
    assert len(REQUIRED) >= 39, REQUIRED  # G01-G07, G10-G13, G20-G23, G30, G40-41, G50-51, G60-71, G80-86
    assert "G01" in REQUIRED and "G86" in REQUIRED and "G87" not in REQUIRED


def test_explain_knows_every_guidance_title():
    assert sorted(GUIDANCE) == sorted(CATALOGUE)


def test_the_builtin_pack_is_the_one_in_the_repository():
    assert builtin_pack_dir().resolve() == PACK_DIR.resolve()
    focus = [pack for pack in PACKS if pack.name == "focus"]
    assert len(focus) == 1
    pack = focus[0]
    assert pack.settings["review_days"].default == 92 and pack.settings["review_days"].description
    assert pack.settings["ongoing_days"].default == 30 and pack.settings["ongoing_days"].description
    assert pack.outcome is not None
    assert (pack.outcome.kind, pack.outcome.field, pack.outcome.items) == ("evidence", "item", EVIDENCE)


@pytest.mark.parametrize("gid", REQUIRED)
def test_every_guidance_item_has_a_rule(gid):
    assert _by_guidance(gid), f"no rule in {PACK_DIR} enforces {gid} ({GUIDANCE.get(gid, '?')})"


def test_rule_ids_are_unique_and_follow_the_scheme():
    files = sorted(p for p in PACK_DIR.rglob("*.yaml") if p.name != "pack.yaml")
    ids = [yaml.safe_load(path.read_text(encoding="utf-8"))["id"] for path in files]
    duplicates = [rule_id for rule_id, count in Counter(ids).items() if count > 1]
    assert not duplicates
    assert len(ids) == len(RULES)
    for rule_id in ids:
        assert re.fullmatch(r"SSM-(PLAN|INS|OPP|RTM|REL|TEAM|BDU|OUT|DRV)-\d{3}", rule_id), rule_id


@pytest.mark.parametrize("rule", RULES, ids=lambda rule: rule.id)
def test_rule_file_is_named_after_its_id(rule):
    name = Path(rule.file).name
    assert name.startswith(rule.id.lower() + "-") and name.endswith(".yaml"), name


@pytest.mark.parametrize("rule", RULES, ids=lambda rule: rule.id)
def test_every_rule_is_documented(rule):
    assert rule.title and rule.guidance
    assert all(g in CATALOGUE for g in rule.guidance), rule.guidance
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
    if "G86" in rule.guidance:
        assert rule.severity == "error"
        return
    for gid in rule.guidance:
        default = CATALOGUE.get(gid)
        if default in ("error", "warning", "info"):
            assert rule.severity == default, f"{gid} is {default} by default"


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
    enforcing = [rule for rule in FINDING_RULES if rule.guidance == ("G86", item)]
    assert len(enforcing) == 1, f"one G86 rule for {item}"
    rule = enforcing[0]
    assert rule.severity == "error" and "evidence" in rule.kinds_used
    assert any(p.negated and p.kind == "evidence" for p in rule.when)


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
    assert "unknown rule `SSM-PLN-002`" in result.output and "SSM-PLAN-002" in result.output


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
    assert generated.output == committed, "run: ssm rules --format markdown > docs/rules.md"
