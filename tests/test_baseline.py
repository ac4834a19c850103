"""Baselines: write, read back, match across moved lines, count-aware, atomic writes."""

from __future__ import annotations

import json
import os
from dataclasses import replace

import pytest

from ci_fakes import FakeFinding, sample_report
from ssm_rules import baseline
from ssm_rules.atomic import write_text_atomic
from ssm_rules.errors import UsageError


def test_round_trip_hides_every_known_finding(tmp_path):
    report = sample_report()
    path = tmp_path / "baseline.json"
    assert baseline.write(str(path), report) == 3
    document = json.loads(path.read_text())
    assert document["version"] == 1 and document["as_of"] == "2026-11-27"
    entry = next(e for e in document["entries"] if e["rule"] == "SSM-BDU-001")
    assert entry == {
        "fingerprint": baseline.fingerprint("northwind-retail", "SSM-BDU-001", "opportunity", "omni-platform",
                                            "opportunities[0]"),
        "rule": "SSM-BDU-001", "account": "northwind-retail",
        "subject": {"kind": "opportunity", "id": "omni-platform"},
        "file": "plans/northwind.yaml",
        "message": "Opportunity 'Omni | platform' has no key decision leader.",
    }
    filtered, outcome = baseline.apply(report, baseline.load(str(path)))
    assert outcome == baseline.BaselineOutcome(known=3, new=0, fixed=0)
    assert all(result.findings == [] for result in filtered.results)
    assert not filtered.results[1].valid  # invalid plans are never baselined
    assert report.results[0].findings  # the original report is untouched


def test_matching_survives_moved_lines_and_renamed_files(tmp_path):
    path = tmp_path / "baseline.json"
    baseline.write(str(path), sample_report())
    moved = sample_report()
    northwind = moved.results[0]
    moved.results[0] = replace(northwind, file="plans/renamed.yaml", findings=[
        replace(f, line=f.line + 12, column=7, file="plans/renamed.yaml") for f in northwind.findings])
    filtered, outcome = baseline.apply(moved, baseline.load(str(path)))
    assert outcome.known == 3 and outcome.new == 0


def test_matching_survives_reordered_opportunities(tmp_path):
    path = tmp_path / "baseline.json"
    baseline.write(str(path), sample_report())
    reordered = sample_report()
    northwind = reordered.results[0]
    # The opportunity moved from first to third place: its findings' paths change index.
    reordered.results[0] = replace(northwind, findings=[
        replace(f, path=f.path.replace("opportunities[0]", "opportunities[2]")) for f in northwind.findings])
    assert any("opportunities[2]" in f.path for f in reordered.results[0].findings)
    filtered, outcome = baseline.apply(reordered, baseline.load(str(path)))
    assert outcome.known == 3 and outcome.new == 0


def test_a_new_subject_or_rule_is_new_and_fixed_ones_are_counted(tmp_path):
    path = tmp_path / "baseline.json"
    baseline.write(str(path), sample_report())
    changed = sample_report()
    northwind = changed.results[0]
    new = FakeFinding("SSM-BDU-001", "error", "Opportunity 'Analytics' has no key decision leader.", 120,
                      path="opportunities[1]", subject={"kind": "opportunity", "id": "analytics"})
    changed.results[0] = replace(northwind, findings=[northwind.findings[0], new])
    filtered, outcome = baseline.apply(changed, baseline.load(str(path)))
    assert [f.subject["id"] for f in filtered.results[0].findings] == ["analytics"]
    assert outcome == baseline.BaselineOutcome(known=1, new=1, fixed=2)


def test_matching_is_count_aware(tmp_path):
    path = tmp_path / "baseline.json"
    twice = sample_report()
    northwind = twice.results[0]
    first = northwind.findings[0]
    twice.results[0] = replace(northwind, findings=[first, replace(first, line=99)])
    baseline.write(str(path), twice)
    thrice = sample_report()
    thrice.results[0] = replace(northwind, findings=[first, replace(first, line=99), replace(first, line=120)])
    filtered, outcome = baseline.apply(thrice, baseline.load(str(path)))
    assert [f.line for f in filtered.results[0].findings] == [120]
    assert outcome.known == 2 and outcome.new == 1


def test_the_file_is_sorted_and_deterministic(tmp_path):
    report = sample_report()
    assert baseline.dumps(report) == baseline.dumps(report)
    entries = json.loads(baseline.dumps(report))["entries"]
    assert [e["rule"] for e in entries] == sorted(e["rule"] for e in entries)


@pytest.mark.parametrize("content, message", [
    (None, "no such baseline file"),
    ("{not json", "not a baseline file"),
    ('{"version": 2, "entries": []}', "baseline version 2 is not supported"),
    ('{"version": 1, "entries": [{"rule": "X"}]}', "entries[0]: missing `fingerprint`"),
    ('[1, 2]', "not a baseline file"),
])
def test_bad_baselines_are_usage_errors(tmp_path, content, message):
    path = tmp_path / "baseline.json"
    if content is not None:
        path.write_text(content)
    with pytest.raises(UsageError, match=message.replace("[", r"\[").replace("]", r"\]")):
        baseline.load(str(path))


def test_write_into_a_missing_directory_is_a_usage_error(tmp_path):
    with pytest.raises(UsageError, match="cannot write the baseline"):
        baseline.write(str(tmp_path / "nope" / "baseline.json"), sample_report())


def test_atomic_write_replaces_whole_and_keeps_the_mode(tmp_path):
    path = tmp_path / "report.sarif"
    path.write_text("old")
    os.chmod(path, 0o640)
    write_text_atomic(path, "new ✓")
    assert path.read_text(encoding="utf-8") == "new ✓"
    assert (path.stat().st_mode & 0o777) == 0o640
    assert sorted(p.name for p in tmp_path.iterdir()) == ["report.sarif"]  # no temporary left behind
    fresh = tmp_path / "fresh.txt"
    write_text_atomic(str(fresh), "x")
    umask = os.umask(0)
    os.umask(umask)
    assert (fresh.stat().st_mode & 0o777) == 0o666 & ~umask


def test_atomic_write_leaves_nothing_behind_on_failure(tmp_path, monkeypatch):
    path = tmp_path / "out.json"
    path.write_text("old")

    def broken_replace(*_args):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", broken_replace)
    with pytest.raises(OSError):
        write_text_atomic(path, "new")
    assert path.read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.json"]


# ---- through `ssm check` ----------------------------------------------------------------


def ssm(runner, *args):
    from ssm_rules.cli import main

    return runner.invoke(main, ["check", "--isolated", "--as-of", "2026-11-27", *args])


def test_portfolio_adoption_round_trip(runner, tmp_path, monkeypatch):
    import shutil

    from conftest import FACTS

    monkeypatch.chdir(tmp_path)
    shutil.copytree(FACTS, tmp_path / "accounts")
    red = ssm(runner, "accounts")
    assert red.exit_code == 1  # day one without a baseline: red

    written = ssm(runner, "accounts", "--write-baseline", "ssm-baseline.json")
    assert written.exit_code == 0, written.output
    entries = json.loads((tmp_path / "ssm-baseline.json").read_text())["entries"]
    assert len(entries) > 30
    assert f"ssm: recorded {len(entries)} findings in baseline ssm-baseline.json" in written.stderr
    assert "0 errors, 0 warnings, 0 info" in written.stdout

    green = ssm(runner, "accounts", "--baseline", "ssm-baseline.json", "--format", "json")
    assert green.exit_code == 0, green.output
    assert all(plan["findings"] == [] for plan in json.loads(green.stdout)["plans"])
    assert f"{len(entries)} known findings hidden, 0 new" in green.stderr

    # moved lines: a comment block at the top of every plan shifts every finding down
    for plan in (tmp_path / "accounts").glob("*.yaml"):
        text = plan.read_text(encoding="utf-8")
        plan.write_text(text.replace("format: ssm-plan/1\n", "format: ssm-plan/1\n# moved\n# moved\n# moved\n", 1),
                        encoding="utf-8")
    assert ssm(runner, "accounts", "--baseline", "ssm-baseline.json").exit_code == 0

    # a new finding fails, and only it is reported; a fixed one is noticed
    nordvik = tmp_path / "accounts" / "nordvik-insurance.yaml"
    nordvik.write_text(nordvik.read_text(encoding="utf-8").replace("last_reviewed: 2026-11-05", "last_reviewed: 2026-01-05"),
                       encoding="utf-8")
    ghvl = tmp_path / "accounts" / "ghvl-hospitals.yaml"
    ghvl.write_text(ghvl.read_text(encoding="utf-8").replace("last_reviewed: 2026-04-16", "last_reviewed: 2026-11-16"),
                    encoding="utf-8")
    new = ssm(runner, "accounts", "--baseline", "ssm-baseline.json", "--format", "json")
    assert new.exit_code == 1
    findings = [(plan["account"], f["rule"]) for plan in json.loads(new.stdout)["plans"] for f in plan["findings"]]
    assert findings == [("nordvik-insurance", "SSM-PLAN-002")]
    assert "1 new; 1 no longer found (update it with --write-baseline ssm-baseline.json)" in new.stderr


def test_baseline_options_are_checked(runner, tmp_path):
    from conftest import SPEC_EXAMPLE

    both = ssm(runner, str(SPEC_EXAMPLE), "--baseline", "a.json", "--write-baseline", "b.json")
    assert both.exit_code == 2 and "--baseline and --write-baseline cannot be used together" in both.output
    missing = ssm(runner, str(SPEC_EXAMPLE), "--baseline", str(tmp_path / "none.json"))
    assert missing.exit_code == 2 and "no such baseline file" in missing.output
