"""Inline suppressions: `# ssm: ignore[RULE] reason` comments."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

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


def test_a_suppression_hides_only_its_rules_in_the_item_it_is_on():
    kept, meta = run([finding("SSM-BDU-001", 12), finding("SSM-OPP-006", 12), finding("SSM-OPP-002", 12),
                      finding("SSM-OPP-004", 12), finding("SSM-REL-001", 12), finding("SSM-BDU-001", 13),
                      finding("SSM-OPP-006", 13), finding("SSM-BDU-001", 15), finding("SSM-BDU-001", 16)])
    # the comments on lines 10-12 cover the item `omni` (lines 12-13), not the items after it
    assert [(f.rule, f.line) for f in kept] == [("SSM-REL-001", 12), ("SSM-BDU-001", 15)]
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
    item = "on lines 12-13 (the item or key that begins on line 12)"
    assert unused == [
        (UNUSED_RULE, 11, f"Unused suppression: SSM-OPP-006 has no finding {item}."),
        (UNUSED_RULE, 11, "Suppression of SSM-OPP-002 names no known rule."),
        (UNUSED_RULE, 12, f"Unused suppression: SSM-OPP-004 has no finding {item}."),
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


def _unit_line() -> int:
    """The 1-based line of 'open-banking-api's `buying_unit:` in the sample, where SSM-BDU-001 points."""
    from conftest import FACTS

    lines = (FACTS / "banca-valdadige.yaml").read_text(encoding="utf-8").splitlines()
    start = lines.index("  - id: open-banking-api")
    return lines.index("    buying_unit:", start) + 1


UNIT = _unit_line()


def plan_with_comment(tmp_path, comment: str, *, trailing: bool = False):
    from conftest import FACTS

    lines = (FACTS / "banca-valdadige.yaml").read_text(encoding="utf-8").splitlines()
    assert lines[UNIT - 1] == "    buying_unit:"  # where SSM-BDU-001 points for 'open-banking-api'
    if trailing:
        lines[UNIT - 1] += f"  {comment}"
    else:
        lines.insert(UNIT - 1, f"    {comment}")
    path = tmp_path / "banca.yaml"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def rules_at(document, line):
    (plan,) = document["plans"]
    return sorted(f["rule"] for f in plan["findings"] if f["location"]["line"] == line)


def test_round_trip_suppress_then_unused_then_reasonless(runner, tmp_path):
    from conftest import FACTS

    _, before = check_json(runner, str(FACTS / "banca-valdadige.yaml"))
    assert "SSM-BDU-001" in rules_at(before, UNIT)
    count = len(before["plans"][0]["findings"])

    _, after = check_json(runner, str(plan_with_comment(tmp_path, "# ssm: ignore[SSM-BDU-001] KDL named in Q1")))
    assert rules_at(after, UNIT + 1) == []  # the finding moved one line down, and is suppressed
    assert len(after["plans"][0]["findings"]) == count - 1

    _, trailing = check_json(runner, str(plan_with_comment(
        tmp_path, "# ssm: ignore[SSM-BDU-001] KDL named in Q1", trailing=True)))
    assert rules_at(trailing, UNIT) == []

    _, unused = check_json(runner, str(plan_with_comment(tmp_path, "# ssm: ignore[SSM-TEAM-001] not here")))
    (meta,) = [f for f in unused["plans"][0]["findings"] if f["rule"] == "SSM-META-002"]
    assert meta["severity"] == "warning" and meta["location"]["line"] == UNIT
    assert meta["message"] == (f"Unused suppression: SSM-TEAM-001 has no finding on lines {UNIT + 1}-{UNIT + 7} "
                               f"(the item or key that begins on line {UNIT + 1}).")
    assert meta["subject"] == {"kind": "plan", "id": "banca-valdadige"}
    assert "SSM-BDU-001" in rules_at(unused, UNIT + 1)

    result, reasonless = check_json(runner, str(plan_with_comment(tmp_path, "# ssm: ignore[SSM-BDU-001]")))
    assert "SSM-BDU-001" in rules_at(reasonless, UNIT + 1)  # not suppressed
    assert rules_at(reasonless, UNIT) == ["SSM-META-001"]

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
    assert rules_at(document, UNIT + 1) == []
    assert all(f["location"]["file"] == "accounts/banca.yaml" for f in plan["findings"])


# ---- what a suppression covers (README: "Suppressing a finding in the plan") -----------------


def test_a_comment_above_an_item_covers_the_whole_item_and_nothing_after_it():
    text = textwrap.dedent("""\
        opportunities:
          # ssm: ignore[SSM-BDU-001] the CIO decides alone
          - id: omni
            name: Omni
            buying_unit:
              sponsor: [ana]

          - id: next
            buying_unit: {sponsor: [ana]}
        contacts: []
        """)
    (suppression,) = parse(text)
    assert (suppression.target_line, suppression.end_line) == (3, 6)
    kept, meta = run([finding("SSM-BDU-001", 5), finding("SSM-BDU-001", 8), finding("SSM-BDU-001", 9)], text)
    assert [f.line for f in kept] == [8, 9] and meta == []


def test_a_comment_above_a_key_covers_its_value():
    text = textwrap.dedent("""\
        opportunities:
          - id: omni
            # ssm: ignore[SSM-BDU-002] mapped in the next QBR
            buying_unit:
              evaluator: [ana]
              approver: [bo]
            stage: identified
        """)
    (suppression,) = parse(text)
    assert (suppression.target_line, suppression.end_line) == (4, 6)
    kept, _ = run([finding("SSM-BDU-002", 4), finding("SSM-BDU-002", 6), finding("SSM-BDU-002", 7)], text)
    assert [f.line for f in kept] == [7]


def test_a_trailing_comment_covers_the_item_its_line_begins():
    text = textwrap.dedent("""\
        opportunities:
          - id: analytics    # ssm: ignore[SSM-OPP-006] scoped after the pilot
            name: Analytics
          - id: other
        """)
    (suppression,) = parse(text)
    assert (suppression.target_line, suppression.end_line) == (2, 3)


def test_the_readme_suppression_example_suppresses(runner, tmp_path):
    """The YAML block of the README's section on suppressions, in a plan: its comments suppress
    the findings they name, and none is reported as unused."""
    import json
    import re

    from ssm_rules.cli import main

    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme[readme.index("### Suppressing a finding in the plan"):]
    example = re.search(r"```yaml\n(.*?)```", section, re.S).group(1)
    assert example.startswith("opportunities:\n") and "# ssm: ignore[" in example
    plan = tmp_path / "northwind.yaml"
    plan.write_text(textwrap.dedent("""\
        format: ssm-plan/1
        account: {id: northwind-retail, name: Northwind Retail, owner: jane.doe}
        contacts:
          - {id: ana-lopez, name: Ana López, attitude: supporter, owner: jane.doe, goal: Keep her close}
        """) + example, encoding="utf-8")
    unsuppressed = runner.invoke(main, ["check", "--isolated", "--as-of", "2026-11-27", "--format", "json",
                                        str(plan)], input=None)
    findings = json.loads(unsuppressed.stdout)["plans"][0]["findings"]
    subjects = {(f["rule"], f["subject"]["id"]) for f in findings}
    assert not [f for f in findings if f["rule"].startswith("SSM-META")], findings
    assert ("SSM-BDU-001", "omni-platform") not in subjects
    assert not {("SSM-OPP-006", "analytics"), ("SSM-OPP-002", "analytics")} & subjects
    # without the comments, each of those findings is there
    plain = tmp_path / "plain.yaml"
    plain.write_text(re.sub(r"\s*# ssm: ignore.*", "", plan.read_text(encoding="utf-8")), encoding="utf-8")
    result = runner.invoke(main, ["check", "--isolated", "--as-of", "2026-11-27", "--format", "json", str(plain)])
    subjects = {(f["rule"], f["subject"]["id"]) for f in json.loads(result.stdout)["plans"][0]["findings"]}
    assert {("SSM-BDU-001", "omni-platform"), ("SSM-OPP-006", "analytics"), ("SSM-OPP-002", "analytics")} <= subjects


@pytest.mark.parametrize("scalar", [
    # a block scalar that is a list item
    "strategic_priorities:\n  - |\n    Grow SME lending\n    # ssm: ignore[SSM-BDU-001] pasted from an e-mail\n",
    # a multi-line double-quoted string
    'it_environment: "Mainframe, and\n  # ssm: ignore[SSM-BDU-001] quoted text\n  more"\n',
    # a multi-line single-quoted string
    "it_environment: 'Mainframe\n  # ssm: ignore[SSM-BDU-001] quoted text\n  '\n",
    # a quoted string inside a flow list
    'strategic_priorities: [a, "b\n  # ssm: ignore[SSM-BDU-001] x", c]\n',
])
def test_directive_text_inside_a_scalar_is_not_a_suppression(scalar):
    text = "insight:\n" + textwrap.indent(scalar, "  ") + "opportunities:\n  - id: omni\n"
    assert parse(text) == []
    kept, meta = run([finding("SSM-BDU-001", text.count("\n"))], text)
    assert len(kept) == 1 and meta == []


def test_a_comment_on_a_block_scalar_header_is_a_comment():
    text = "opportunities:\n  - id: omni\n    notes: |  # ssm: ignore[SSM-OPP-006] later\n      # text\n"
    assert [(s.line, s.column, s.rules) for s in parse(text)] == [(3, 15, ("SSM-OPP-006",))]


def test_columns_are_characters_after_a_byte_order_mark_and_non_ascii_text():
    raw = "\ufeffa: 'Ünïcödé'  # ssm: ignore[X-1] r\n".encode("utf-8")
    (suppression,) = read(raw, "plan.yaml")
    assert (suppression.line, suppression.column) == (1, 15)
    assert read(b'{"a": 1}  # ssm: ignore[X-1] r', "plan.json") == []  # JSON has no comments


def test_a_directive_may_follow_a_note_in_the_same_comment():
    """`# note  # ssm: ignore[...]`, as ruff reads `# note  # noqa: E501`."""
    text = "opportunities:\n  - id: omni  # pilot first  # ssm: ignore[SSM-OPP-006] components later\n"
    (suppression,) = parse(text)
    assert (suppression.line, suppression.column, suppression.rules) == (2, 30, ("SSM-OPP-006",))
    assert suppression.text == "# ssm: ignore[SSM-OPP-006] components later"
    assert suppression.reason == "components later"
