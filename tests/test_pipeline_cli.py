"""`ssm pipeline` on real plans, through the engine: the supported stage the `stages` pack
derives, the totals of the stages guide against figures worked out by hand, the JSON contract,
one seller's review (`--owner`), the selection options, the CSV a spreadsheet opens, the table
at 120 and 80 columns, invalid plans and the exit status.

The formats on hand-made deals are tests/test_review_formats.py; the golden output of every
format on facts/ is tests/test_formats.py.
"""

from __future__ import annotations

import csv
import io
import json

import pytest

from conftest import dedent
from ssm_rules import display
from ssm_rules.cli import main

AS_OF = "2026-11-27"

CONTACTS = """
contacts:
  - {id: li-wei, name: Li Wei, owner: sam.lee, last_contact: 2026-11-20}
  - {id: ana-lopez, name: Ana López, owner: sam.lee, last_contact: 2026-11-20}
  - {id: tom-berg, name: Tom Berg, owner: sam.lee}
"""
BUYING_UNIT = "{key_decision_leader: [li-wei], sponsor: [ana-lopez], approver: [tom-berg]}"
INTEREST = "interest: {date: 2026-05-02, by: [ana-lopez], evidence: Asked for a workshop}"
NEED = "need_confirmed: {date: 2026-06-20, by: [ana-lopez], evidence: Signed summary}"
GO = "go_forward: {date: 2026-09-14, by: [li-wei], evidence: Steering minutes}"
APPROVAL = "conditional_approval: {date: 2026-10-30, by: [li-wei], evidence: Letter}"
CONTRACT = "contract_signed: {date: 2026-11-10, by: [tom-berg], evidence: Contract}"


def outcomes(*items: str) -> str:
    return "    outcomes:\n" + "".join(f"      {item}\n" for item in items)


ACME = f"""
format: ssm-plan/1
account: {{id: acme, name: Acme Retail, owner: jane.doe}}
{CONTACTS}
opportunities:
  - id: omni
    name: Omni platform
    owner: raj.patel
    must_win: true
    value: 1200000
    stage: qualified
    stage_since: 2026-10-14
    close_date: 2027-03-31
    buying_unit: {BUYING_UNIT}
{outcomes(INTEREST)}    next_step: {{action: Pilot scoping workshop, due: 2026-12-10}}
  - id: ledger
    name: Ledger migration
    value: 300000
    stage: proposed
    stage_since: 2026-10-30
    close_date: 2027-01-31
    buying_unit: {BUYING_UNIT}
{outcomes(INTEREST, NEED, GO, APPROVAL)}    next_step: {{action: Send the contract, due: 2026-12-01, owner: jane.doe}}
  - id: kiosk
    name: Store kiosks
    owner: raj.patel
    value: 50000
    stage: identified
    buying_unit: {BUYING_UNIT}
  - id: archive
    name: Archive service
    owner: raj.patel
    value: 999999
    stage: won
    close_date: 2026-11-15
    buying_unit: {BUYING_UNIT}
{outcomes(INTEREST, NEED, GO, APPROVAL, CONTRACT)}  - id: print
    name: Print management
    owner: raj.patel
    value: 70000
    stage: lost
    lost_reason: Price
    buying_unit: {BUYING_UNIT}
"""

GLOBEX = f"""
format: ssm-plan/1
account: {{id: globex, name: Globex, owner: sam.lee}}
{CONTACTS}
opportunities:
  - id: crm
    name: CRM consolidation
    value: 400000
    stage: validated
    close_date: 2027-06-30
    buying_unit: {BUYING_UNIT}
{outcomes(INTEREST, NEED, GO)}  - id: unpriced
    name: Data platform
    stage: qualified
    buying_unit: {BUYING_UNIT}
"""

BROKEN = """
format: ssm-plan/1
account: {id: initech, name: Initech, owner: sam.lee}
opportunities:
  - id: x
    stage: qualifed
"""


@pytest.fixture
def plans(tmp_path):
    directory = tmp_path / "plans"
    directory.mkdir()
    (directory / "acme.yaml").write_bytes(dedent(ACME))
    (directory / "globex.yaml").write_bytes(dedent(GLOBEX))
    return directory


def pipeline(runner, *args, env=None):
    return runner.invoke(main, ["pipeline", *map(str, args), "--as-of", AS_OF, "--isolated", "--no-cache"],
                         env={"NO_COLOR": None, "COLUMNS": None, **(env or {})})


def review(runner, *args) -> dict:
    result = pipeline(runner, *args, "--format", "json")
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


# ---- the figures, worked out by hand from the stages guide ------------------------------------------


def test_each_deal_shows_the_stage_its_outcomes_support_as_the_engine_derives_it(runner, plans):
    deals = {deal["opportunity"]: deal for deal in review(runner, plans, "--all")["opportunities"]}
    stages = {key: (deal["claimed_stage"], deal["supported_stage"], deal["missing_outcomes"])
              for key, deal in deals.items()}
    assert stages == {
        "omni": ("qualified", "identified", ["need_confirmed", "go_forward"]),
        "ledger": ("proposed", "proposed", []),
        "kiosk": ("identified", None, ["interest"]),  # nothing supports even `identified`
        "archive": ("won", "won", []),
        "print": ("lost", None, []),
        "crm": ("validated", "qualified", []),  # the evidence is ahead of the claim
        "unpriced": ("qualified", None, ["interest", "need_confirmed", "go_forward"]),
    }
    omni = deals["omni"]
    assert omni["days_in_stage"] == 44  # 14 October to 27 November
    assert omni["owner"] == "raj.patel" and omni["must_win"] is True
    assert omni["next_step"] == {"action": "Pilot scoping workshop", "due": "2026-12-10", "owner": "raj.patel"}
    assert "SSM-STG-001" in omni["findings"] and omni["worst"]["severity"] == "error"
    # past `identified` the deal also carries the plan's Phase 1 findings (G86), which come first
    assert "SSM-OUT-003" in omni["findings"] and "SSM-OUT-003" not in deals["kiosk"]["findings"]
    assert deals["ledger"]["owner"] == "jane.doe"  # no owner: the account's
    assert deals["ledger"]["next_step"]["owner"] == "jane.doe"


def test_totals_follow_the_stages_guide(runner, plans):
    totals = review(runner, plans, "--all")["totals"]  # --all shows won and lost; they are never added up
    assert totals == {
        "count": 5,  # omni, ledger, kiosk, crm, unpriced
        "value": 1_950_000,  # 1.2M + 300k + 50k + 400k; unpriced counts 0
        "claimed": {"identified": 50_000, "validated": 400_000, "qualified": 1_200_000, "proposed": 300_000},
        "supported": {"none": 50_000, "identified": 1_200_000, "validated": 0, "qualified": 400_000,
                      "proposed": 300_000, "won": 0, "completed": 0},
        "unsupported_value": 1_250_000,  # omni and kiosk (and unpriced, worth nothing)
        # 1.2M x 40% + 300k x 60% + 50k x 10% + 400k x 20%
        # and on the supported stages 1.2M x 10% + 300k x 60% + 0 (kiosk: no support) + 400k x 40%
        "forecast": {"claimed": 745_000, "supported": 460_000},
    }


def test_stage_weights_from_the_configuration_change_the_forecast(runner, plans, tmp_path):
    config = tmp_path / "ssm.toml"
    config.write_text('[settings]\nstage_weights = {qualified = 50}\n')
    result = runner.invoke(main, ["pipeline", str(plans), "--as-of", AS_OF, "--config", str(config), "--no-cache",
                                  "--format", "json"])
    assert result.exit_code == 0, result.output
    # 1.2M x 50% + 300k x 60% + 50k x 10% + 400k x 20%; supported: crm is at qualified now 50%
    assert json.loads(result.stdout)["totals"]["forecast"] == {"claimed": 865_000, "supported": 500_000}


def test_the_json_is_exactly_the_contract(runner, plans):
    document = review(runner, plans)
    assert list(document) == ["version", "as_of", "opportunities", "totals"]
    assert document["version"] == 1 and document["as_of"] == AS_OF
    for deal in document["opportunities"]:
        assert list(deal) == ["account", "file", "opportunity", "name", "owner", "must_win", "value", "close_date",
                              "claimed_stage", "supported_stage", "missing_outcomes", "days_in_stage", "next_step",
                              "findings", "worst"]
        assert deal["next_step"] is None or list(deal["next_step"]) == ["action", "due", "owner"]
        assert deal["worst"] is None or list(deal["worst"]) == ["rule", "severity", "message"]
    assert list(document["totals"]) == ["count", "value", "claimed", "supported", "unsupported_value", "forecast"]
    assert list(document["totals"]["forecast"]) == ["claimed", "supported"]
    # the default order: claimed past the evidence first, then by value
    assert [deal["opportunity"] for deal in document["opportunities"]] == ["omni", "kiosk", "unpriced", "crm",
                                                                            "ledger"]


# ---- selection ---------------------------------------------------------------------------------------


def test_owner_gives_one_sellers_review_with_their_totals(runner, plans):
    document = review(runner, plans, "--owner", "Raj.Patel")
    assert [deal["opportunity"] for deal in document["opportunities"]] == ["omni", "kiosk"]
    assert document["totals"]["value"] == 1_250_000 and document["totals"]["unsupported_value"] == 1_250_000
    text = pipeline(runner, plans, "--owner", "raj.patel")
    assert text.exit_code == 0
    lines = text.stdout.splitlines()
    assert lines[0] == "Pipeline as of 2026-11-27: 2 open opportunities of raj.patel"
    assert not any(line.startswith("raj.patel") for line in lines)  # one owner: no group line
    assert "Claimed past their evidence: 2, 1.25M (100% of the value)" in lines


def test_an_owner_nobody_is_called_is_a_usage_error(runner, plans):
    result = pipeline(runner, plans, "--owner", "raj.patell")
    assert result.exit_code == 2
    assert "did you mean `raj.patel`?" in result.stderr and result.stdout == ""


def test_all_stage_and_must_win_select(runner, plans):
    shown = lambda *args: [deal["opportunity"] for deal in review(runner, plans, *args)["opportunities"]]  # noqa: E731
    assert sorted(shown("--all")) == ["archive", "crm", "kiosk", "ledger", "omni", "print", "unpriced"]
    assert shown("--stage", "won", "--stage", "lost") == ["archive", "print"]
    assert shown("--must-win") == ["omni"]
    assert shown("--sort", "close") == ["ledger", "omni", "crm", "kiosk", "unpriced"]
    totals = review(runner, plans, "--stage", "won")["totals"]
    assert totals["count"] == 0 and totals["value"] == 0 and totals["unsupported_value"] == 0


# ---- what is written, where --------------------------------------------------------------------------


def test_an_invalid_plan_is_named_on_stderr_and_the_others_are_shown(runner, plans):
    (plans / "initech.yaml").write_bytes(dedent(BROKEN))
    result = pipeline(runner, plans, "--format", "json")
    assert result.exit_code == 1
    assert len(json.loads(result.stdout)["opportunities"]) == 5
    assert "initech.yaml:5:5: error:" in result.stderr and "qualifed" in result.stderr
    text = pipeline(runner, plans)
    assert text.exit_code == 1
    assert "Not shown: 1 invalid plan (" in text.stdout and "initech.yaml" in text.stdout


def test_findings_never_fail_the_review(runner, plans):
    assert pipeline(runner, plans, "--format", "json").exit_code == 0  # omni has an error finding (S01)


def test_without_the_stages_pack_the_review_cannot_run(runner, plans):
    result = pipeline(runner, plans, "--no-builtin", "--rules", "rules/focus")
    assert result.exit_code == 2
    assert "needs the supported stage" in result.stderr and "Traceback" not in result.output


def test_csv_for_a_spreadsheet_runs_no_formula_and_reads_back(runner, plans, tmp_path):
    plan = plans / "acme.yaml"
    plan.write_text(plan.read_text(encoding="utf-8").replace("Omni platform", "'=HYPERLINK(\"http://x\")'")
                    .replace("Pilot scoping workshop", "'@SUM(A1)'"), encoding="utf-8")
    out = tmp_path / "review.csv"
    result = pipeline(runner, plans, "--format", "csv", "--output", out)
    assert result.exit_code == 0, result.output
    raw = out.read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf")  # Excel reads UTF-8 only with the byte-order mark
    assert b"\r\n" in raw  # RFC 4180
    rows = list(csv.DictReader(io.StringIO(raw.decode("utf-8-sig"), newline="")))
    omni = next(row for row in rows if row["opportunity"] == "omni")
    assert omni["name"] == "'=HYPERLINK(\"http://x\")"
    assert omni["next_step"] == "'@SUM(A1)"
    assert not any(cell.startswith(("=", "+", "-", "@")) for row in rows for cell in row.values())
    assert "wrote the csv pipeline review to" in result.stderr
    piped = pipeline(runner, plans, "--format", "csv")
    assert not piped.stdout_bytes.startswith(b"\xef\xbb\xbf")  # a pipe gets plain UTF-8


def test_output_never_overwrites_a_plan(runner, plans):
    result = pipeline(runner, plans, "--output", plans / "acme.yaml")
    assert result.exit_code == 2
    assert "ssm-plan/1" in (plans / "acme.yaml").read_text(encoding="utf-8")


@pytest.mark.parametrize("columns", [120, 80])
def test_the_table_fits_the_terminal_and_keeps_one_line_a_deal(runner, plans, columns):
    plan = plans / "globex.yaml"
    plan.write_text(plan.read_text(encoding="utf-8").replace("name: Globex", "name: 环球数据科技股份有限公司 Globex")
                    .replace("CRM consolidation", "客户关系管理系统整合与数据迁移项目"), encoding="utf-8")
    result = pipeline(runner, plans, env={"COLUMNS": str(columns)})
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert max(display.width(line) for line in lines) <= columns
    rows = [line for line in lines if "Omni" in line or "客户" in line or "Store kiosks" in line]
    assert len(rows) == 3  # one line each, never wrapped
    assert any("qualified → identified" in line for line in rows)
    header = lines[1]
    assert header.startswith("ACCOUNT") and "CLAIMED → SUPPORTED" in header and "WORST" in header
    if columns == 120:
        assert "MISSING" in header and "NEXT STEP" in header and "CLOSE" in header


def test_colour_only_when_asked(runner, plans):
    assert "\x1b[" not in pipeline(runner, plans).stdout  # not a terminal
    coloured = pipeline(runner, plans, "--color").stdout
    assert "\x1b[33mqualified → identified" in coloured  # claimed past the evidence: yellow
    assert "\x1b[" not in pipeline(runner, plans, "--format", "markdown", "--color").stdout  # text only
