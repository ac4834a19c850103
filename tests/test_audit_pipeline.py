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
