"""Inline suppressions: `# ssm: ignore[RULE] reason` comments."""

from __future__ import annotations

import textwrap
from pathlib import Path

from ci_fakes import FakeFinding
from ssm_rules.pipeline import PlanResult
from ssm_rules.suppressions import REASONLESS_RULE, UNUSED_RULE, apply, apply_to_result, parse, read

PLAN = textwrap.dedent("""\
    format: ssm-plan/1
    account: {id: acme, name: Acme, owner: jane.doe}
    insight:
      research:
        industry: >-
          Prose that mentions # ssm: ignore[SSM-PLAN-005] inside a block scalar
          is text, not a comment.
      it_environment: "quoted # ssm: ignore[SSM-PLAN-008] is text too"
    opportunities:
      # ssm: ignore[SSM-BDU-001] the CIO decides alone; agreed in the QBR
      # ssm: ignore[ssm-opp-006, SSM-OPP-002]: pilot first
      - id: omni        # ssm: ignore[SSM-OPP-004] only one opportunity this year
        name: Omni
      - id: other # ssm: ignore[SSM-BDU-001]
      - id: third#not-a-comment
        name: Third   #ssm:ignore [SSM-BDU-001] no space is fine too
      - id: fourth  # ssm: ignore everything
    """)

ROOT = Path(__file__).resolve().parent.parent


def test_parse_finds_comments_their_targets_and_reasons():
    found = {(s.line, s.target_line): s for s in parse(PLAN)}
    assert set(found) == {(10, 12), (11, 12), (12, 12), (14, 14), (16, 16), (17, 17)}
    assert found[(10, 12)].rules == ("SSM-BDU-001",)
    assert found[(10, 12)].reason == "the CIO decides alone; agreed in the QBR"
    assert found[(10, 12)].column == 3
    assert found[(11, 12)].rules == ("SSM-OPP-006", "SSM-OPP-002")
    assert found[(11, 12)].reason == "pilot first"
    assert found[(12, 12)].rules == ("SSM-OPP-004",) and found[(12, 12)].valid
    assert found[(14, 14)].rules == ("SSM-BDU-001",) and found[(14, 14)].reason == ""
    assert not found[(14, 14)].valid
    assert found[(16, 16)].rules == ("SSM-BDU-001",) and found[(16, 16)].valid
    assert found[(17, 17)].rules == () and not found[(17, 17)].valid


def finding(rule, line, severity="error"):
    return FakeFinding(rule, severity, f"{rule} fired", line, file="acme.yaml")


def run(findings, text=PLAN, known=None):
    return apply(findings, parse(text), file="acme.yaml", account="acme", owner="jane.doe", known_rules=known)


def test_a_suppression_hides_only_its_rules_on_its_line():
    kept, meta = run([finding("SSM-BDU-001", 12), finding("SSM-OPP-006", 12), finding("SSM-OPP-002", 12),
                      finding("SSM-OPP-004", 12), finding("SSM-REL-001", 12), finding("SSM-BDU-001", 13),
                      finding("SSM-BDU-001", 16)])
    assert [(f.rule, f.line) for f in kept] == [("SSM-REL-001", 12), ("SSM-BDU-001", 13)]
    # the reasonless comment on line 14 and the malformed one on 17 are reported, nothing unused
    assert [(m.rule, m.line) for m in meta] == [(REASONLESS_RULE, 14), (REASONLESS_RULE, 17)]
    reasonless = meta[0].to_json()
    assert reasonless["severity"] == "warning"
    assert reasonless["subject"] == {"kind": "plan", "id": "acme"}
    assert reasonless["location"] == {"file": "acme.yaml", "line": 14, "column": 15, "path": ""}
    assert "gives no reason" in reasonless["message"]
    assert reasonless["next_action"]["owner"] == "jane.doe"
    assert "# ssm: ignore[SSM-BDU-001] why this is accepted" in reasonless["next_action"]["text"]
    assert "names no rule" in meta[1].message


def test_a_suppression_without_a_reason_suppresses_nothing():
    kept, meta = run([finding("SSM-BDU-001", 14)])
    assert [f.line for f in kept] == [14]
    assert [(m.rule, m.line) for m in meta if m.rule == REASONLESS_RULE] == [(REASONLESS_RULE, 14),
                                                                              (REASONLESS_RULE, 17)]


def test_unused_and_unknown_suppressions_are_reported():
    kept, meta = run([finding("SSM-BDU-001", 12)], known={"SSM-BDU-001", "SSM-OPP-006", "SSM-OPP-004"})
    assert kept == []
    unused = [(m.rule, m.line, m.message) for m in meta if m.rule == UNUSED_RULE]
    assert unused == [
        (UNUSED_RULE, 11, "Unused suppression: SSM-OPP-006 has no finding on line 12."),
        (UNUSED_RULE, 11, "Suppression of SSM-OPP-002 names no known rule."),
        (UNUSED_RULE, 12, "Unused suppression: SSM-OPP-004 has no finding on line 12."),
        (UNUSED_RULE, 16, "Unused suppression: SSM-BDU-001 has no finding on line 16."),
    ]


def test_apply_to_result_appends_meta_findings(tmp_path):
    path = tmp_path / "acme.yaml"
    result = PlanResult(file=str(path), account="acme", account_owner="jane.doe", outcome={"met": [], "missing": []},
                        findings=[finding("SSM-BDU-001", 12), finding("SSM-REL-001", 3)],
                        suppressions=read(PLAN.encode()))
    after = apply_to_result(result)
    # meta findings follow the findings, in the order of the comments
    assert [(f.rule, f.line) for f in after.findings] == [
        ("SSM-REL-001", 3), (UNUSED_RULE, 11), (UNUSED_RULE, 11), (UNUSED_RULE, 12), (REASONLESS_RULE, 14),
        (UNUSED_RULE, 16), (REASONLESS_RULE, 17)]
    assert after.findings[1].to_json()["location"]["file"] == str(path)


def test_suppressions_come_from_the_bytes_that_were_checked(tmp_path):
    """The file is read once: comments and findings always describe the same version of it,
    even when an editor saves the file again while a hook is checking it."""
    from datetime import date

    from ssm_rules.pipeline import Checker

    checker = Checker()
    path = tmp_path / "acme.yaml"
    lines = (ROOT / "facts" / "adriatel.yaml").read_text(encoding="utf-8").splitlines()
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    target = next(f for f in checker.check_file(str(path), date(2026, 11, 27)).findings if f.line)
    lines[target.line - 1] += f"  # ssm: ignore[{target.rule}] accepted for this test"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    result = checker.check_file(str(path), date(2026, 11, 27))
    path.write_text("format: ssm-plan/1\n", encoding="utf-8")  # saved again, without the comment
    after = apply_to_result(result)
    assert (target.rule, target.line) in [(f.rule, f.line) for f in result.findings]
    assert (target.rule, target.line) not in [(f.rule, f.line) for f in after.findings]


def test_a_plan_on_standard_input_has_its_suppressions(tmp_path):
    from datetime import date

    from ssm_rules.pipeline import Checker

    raw = (ROOT / "facts" / "adriatel.yaml").read_bytes()
    piped = Checker().check_file("-", date(2026, 11, 27), raw=raw)
    assert piped.suppressions == read(raw)


def test_invalid_plans_and_plans_without_comments_are_left_alone(tmp_path):
    path = tmp_path / "plain.yaml"
    path.write_text("format: ssm-plan/1\n", encoding="utf-8")
    result = PlanResult(file=str(path), account="x", findings=[finding("SSM-BDU-001", 1)],
                        suppressions=read(path.read_bytes()))
    assert apply_to_result(result) is result
    from ssm_rules.errors import PlanProblem

    invalid = PlanResult(file=str(tmp_path / "acme.yaml"), errors=[PlanProblem("bad", 1, 1)],
                         suppressions=read(PLAN.encode()))
    assert apply_to_result(invalid) is invalid


def test_comment_detection_respects_quotes():
    text = textwrap.dedent("""\
        a: 'it''s # ssm: ignore[X-1] r'
        b: "say \\" # ssm: ignore[X-2] r"
        c: [one, 'two'] # ssm: ignore[X-3] real
        """)
    assert [(s.line, s.rules) for s in parse(text)] == [(3, ("X-3",))]


# ---- through `ssm check` ----------------------------------------------------------------


def check_json(runner, *args):
    import json

    from ssm_rules.cli import main

    result = runner.invoke(main, ["check", "--isolated", "--as-of", "2026-11-27", "--format", "json", *args])
    assert result.exit_code in (0, 1), result.output
    return result, json.loads(result.stdout)


def plan_with_comment(tmp_path, comment: str, *, trailing: bool = False):
    from conftest import FACTS

    lines = (FACTS / "banca-valdadige.yaml").read_text(encoding="utf-8").splitlines()
    assert lines[231] == "    buying_unit:"  # where SSM-BDU-001 points for 'open-banking-api'
    if trailing:
        lines[231] += f"  {comment}"
    else:
        lines.insert(231, f"    {comment}")
    path = tmp_path / "banca.yaml"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def rules_at(document, line):
    (plan,) = document["plans"]
    return sorted(f["rule"] for f in plan["findings"] if f["location"]["line"] == line)


def test_round_trip_suppress_then_unused_then_reasonless(runner, tmp_path):
    from conftest import FACTS

    _, before = check_json(runner, str(FACTS / "banca-valdadige.yaml"))
    assert "SSM-BDU-001" in rules_at(before, 232)
    count = len(before["plans"][0]["findings"])

    _, after = check_json(runner, str(plan_with_comment(tmp_path, "# ssm: ignore[SSM-BDU-001] KDL named in Q1")))
    assert rules_at(after, 233) == []  # the finding moved one line down, and is suppressed
    assert len(after["plans"][0]["findings"]) == count - 1

    _, trailing = check_json(runner, str(plan_with_comment(
        tmp_path, "# ssm: ignore[SSM-BDU-001] KDL named in Q1", trailing=True)))
    assert rules_at(trailing, 232) == []

    _, unused = check_json(runner, str(plan_with_comment(tmp_path, "# ssm: ignore[SSM-TEAM-001] not here")))
    (meta,) = [f for f in unused["plans"][0]["findings"] if f["rule"] == "SSM-META-002"]
    assert meta["severity"] == "warning" and meta["location"]["line"] == 232
    assert meta["message"] == "Unused suppression: SSM-TEAM-001 has no finding on line 233."
    assert meta["subject"] == {"kind": "plan", "id": "banca-valdadige"}
    assert "SSM-BDU-001" in rules_at(unused, 233)

    result, reasonless = check_json(runner, str(plan_with_comment(tmp_path, "# ssm: ignore[SSM-BDU-001]")))
    assert "SSM-BDU-001" in rules_at(reasonless, 233)  # not suppressed
    assert rules_at(reasonless, 232) == ["SSM-META-001"]

    _, unknown = check_json(runner, str(plan_with_comment(tmp_path, "# ssm: ignore[SSM-BDU-999] typo")))
    assert [f["message"] for f in unknown["plans"][0]["findings"] if f["rule"] == "SSM-META-002"] == [
        "Suppression of SSM-BDU-999 names no known rule."]


def test_meta_findings_can_be_configured_away(runner, tmp_path):
    path = plan_with_comment(tmp_path, "# ssm: ignore[SSM-TEAM-001] not here")
    (tmp_path / ".ssm.toml").write_text('ignore = ["SSM-META-002"]\n')
    import json

    from ssm_rules.cli import main

    result = runner.invoke(main, ["check", "--config", str(tmp_path / ".ssm.toml"), "--as-of", "2026-11-27",
                                  "--format", "json", str(path)])
    document = json.loads(result.stdout)
    assert not [f for f in document["plans"][0]["findings"] if f["rule"].startswith("SSM-META")]


def test_suppression_in_a_plan_from_stdin(runner, tmp_path):
    path = plan_with_comment(tmp_path, "# ssm: ignore[SSM-BDU-001] KDL named in Q1")
    import json

    from ssm_rules.cli import main

    result = runner.invoke(main, ["check", "--isolated", "--as-of", "2026-11-27", "--format", "json", "-",
                                  "--stdin-filename", "accounts/banca.yaml"], input=path.read_bytes())
    document = json.loads(result.stdout)
    (plan,) = document["plans"]
    assert plan["file"] == "accounts/banca.yaml"
    assert rules_at(document, 233) == []
    assert all(f["location"]["file"] == "accounts/banca.yaml" for f in plan["findings"])
