"""`ssm audit` and the pipeline review: the one-seller report (`--owner`), and the pipeline
section, audit.json's `pipeline` and the history's pipeline figures on the sample plans."""

from __future__ import annotations

import json

from test_audit import audit, fake_checker, portfolio, write_plan  # noqa: F401 - fake_checker is a fixture


def test_owner_keeps_their_next_actions_and_every_invalid_plan(runner, tmp_path, fake_checker):
    plans = portfolio(tmp_path)
    write_plan(plans, "umbrella", account="umbrella", owner="sam.lee",
               findings=[{"rule": "SSM-BDU-001", "owner": "jane.doe"}, {"rule": "SSM-REL-002", "severity": "warning"}])
    out = tmp_path / "report"
    result = audit(runner, plans, "--out", out, "--as-of", "2026-11-27", "--owner", "Jane.Doe")
    assert result.exit_code == 0, result.output
    assert result.output.splitlines()[0].startswith("Audited 4 plans for jane.doe as of 2026-11-27: 1 invalid, "
                                                    "2 errors, 1 warning, 0 info.")
    document = json.loads((out / "audit.json").read_text())
    owners = {f["next_action"]["owner"] for p in document["plans"] for f in p["findings"]}
    assert owners == {"jane.doe"}
    assert [p["account"] for p in document["plans"] if p.get("errors")] == ["globex"]  # sam.lee's, still shown
    page = (out / "index.html").read_text()
    assert "Account plan audit: jane.doe" in page and "one seller's report: jane.doe's next actions" in page
    assert "sam.lee" in page  # the invalid plan's owner gets its fix, whoever asked
    assert "## SSM account plan audit · 2026-11-27 · jane.doe" in (out / "summary.md").read_text()


def test_owner_nobody_is_called_and_owner_with_history_are_usage_errors(runner, tmp_path, fake_checker):
    plans = portfolio(tmp_path)
    out = tmp_path / "report"
    result = audit(runner, plans, "--out", out, "--owner", "jane.do")
    assert result.exit_code == 2
    assert "--owner jane.do: nobody of that name" in result.output and "did you mean `jane.doe`?" in result.output
    assert not out.exists()  # nothing written
    result = audit(runner, plans, "--out", out, "--owner", "jane.doe", "--history", tmp_path / "h.db")
    assert result.exit_code == 2 and "--owner and --history cannot be used together" in result.output
    assert not (tmp_path / "h.db").exists()


def test_without_the_stage_pack_there_is_no_pipeline_section(runner, tmp_path, fake_checker):
    out = tmp_path / "report"
    assert audit(runner, portfolio(tmp_path), "--out", out).exit_code == 0
    assert "pipeline" not in json.loads((out / "audit.json").read_text())
    assert 'id="pipeline"' not in (out / "index.html").read_text()


# ---- the sample plans, through the engine --------------------------------------------------------


def _y_axis_labels(page: str, title: str) -> list[str]:
    """The labels on the y axis of the pygal chart that follows `title` in the page."""
    import re

    chart = page[page.index(title):]
    chart = chart[chart.index("<svg"):chart.index("</svg>")]
    axis = chart[chart.index('class="axis y'):]
    axis = axis[:axis.index('class="axis x')] if 'class="axis x' in axis else axis
    return re.findall(r"<text [^>]*>([^<]*)</text>", axis)


def test_the_audit_of_the_samples_has_the_pipeline_of_ssm_pipeline(runner, tmp_path):
    from conftest import FACTS
    from ssm_rules.cli import main

    history, out = tmp_path / "history.sqlite", tmp_path / "report"
    for night in ("2026-11-20", "2026-11-27"):
        result = audit(runner, FACTS, "--out", out, "--as-of", night, "--history", history, "--isolated")
        assert result.exit_code == 0, result.output
    review = runner.invoke(main, ["pipeline", str(FACTS), "--as-of", "2026-11-27", "--format", "json", "--isolated"])
    totals = json.loads(review.stdout)["totals"]
    assert json.loads((out / "audit.json").read_text())["pipeline"] == {"totals": totals}
    assert "pipeline 30.8M in 25 open, 11.6M claimed past the evidence" in result.output
    page = (out / "index.html").read_text()
    assert 'id="pipeline"' in page and "Unsupported value" in page and "11.6M" in page
    assert "Deals claimed past their evidence" in page and "bss-consolidation" in page
    # No deal claims `none`: its claimed cell is empty, not a 0 that reads like a figure.
    assert '<tr><td>none</td><td class="num"><span class="muted" title="no deal can claim this stage">–</span>' in page
    # The trend of the pipeline starts at zero: on an axis fitted to the values (12M to 30M),
    # 11.6M of unsupported value was drawn on the bottom line, as if it were nothing.
    assert "0" in _y_axis_labels(page, "Open pipeline and unsupported value over time")
    listed = runner.invoke(main, ["history", "--db", str(history), "--format", "json"])
    runs = json.loads(listed.stdout)["runs"]
    assert [(run["pipeline_value"], run["unsupported_value"]) for run in runs] == [
        (totals["value"], totals["unsupported_value"])] * 2


def test_a_one_seller_audit_has_that_sellers_pipeline(runner, tmp_path):
    from conftest import FACTS

    out = tmp_path / "report"
    result = audit(runner, FACTS, "--out", out, "--as-of", "2026-11-27", "--owner", "filip.novak", "--isolated")
    assert result.exit_code == 0, result.output
    totals = json.loads((out / "audit.json").read_text())["pipeline"]["totals"]
    # aiops-noc (1.6M, proposed, supported qualified) and private-5g (900k, validated, supported identified)
    assert (totals["count"], totals["value"], totals["unsupported_value"]) == (2, 2_500_000, 2_500_000)
    assert totals["forecast"] == {"claimed": 1_600_000 * 0.6 + 900_000 * 0.2, "supported": 1_600_000 * 0.4 + 90_000}
