"""Configuration: discovery, validation errors (exit 2 with the key), and what it does."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from ci_fakes import FakeFinding, sample_report
from ssm_rules import config
from ssm_rules.config import Config, fails, load
from ssm_rules.errors import UsageError
from ssm_rules.pipeline import PlanResult

RULES = {"SSM-BDU-001": ["G60", "G64"], "SSM-BDU-002": ["G61"], "SSM-REL-001": ["G70"],
         "SSM-PLAN-001": ["G01"], "SSM-PLAN-012": ["G12"], "SSM-META-002": []}
SETTINGS = {"review_days": 92, "ongoing_days": 30}


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


# ---- discovery -----------------------------------------------------------------------------


def test_nearest_configuration_wins(tmp_path):
    write(tmp_path / "pyproject.toml", '[tool.ssm]\nignore = ["SSM-BDU"]\n')
    deep = tmp_path / "a" / "b"
    deep.mkdir(parents=True)
    assert load(cwd=str(deep)).path == str(tmp_path / "pyproject.toml")
    write(tmp_path / "a" / ".ssm.toml", 'select = ["SSM-REL"]\n')
    found = load(cwd=str(deep))
    assert found.path == str(tmp_path / "a" / ".ssm.toml")
    assert found.select == ("SSM-REL",) and found.ignore == ()  # nothing is merged
    assert found.root == str(tmp_path / "a")


def test_ssm_toml_beats_pyproject_and_pyproject_without_tool_ssm_is_skipped(tmp_path):
    write(tmp_path / ".ssm.toml", 'fail-on = "warning"\n')
    write(tmp_path / "sub" / "pyproject.toml", '[project]\nname = "x"\n')
    assert load(cwd=str(tmp_path / "sub")).fail_on == "warning"
    write(tmp_path / "pyproject.toml", '[tool.ssm]\nfail-on = "info"\n')
    assert load(cwd=str(tmp_path)).fail_on == "warning"


def test_no_configuration_gives_the_defaults(tmp_path):
    found = load(cwd=str(tmp_path))
    assert found.path is None and found.root == str(tmp_path)
    assert found.select == ("ALL",) and found.fail_on == "error" and found.builtin


def test_explicit_config_and_isolated(tmp_path):
    write(tmp_path / "ci.toml", 'ignore = ["G60"]\n')
    write(tmp_path / "pyproject.toml", '[tool.ssm]\nignore = ["SSM-REL"]\n')
    assert load(str(tmp_path / "ci.toml"), cwd=str(tmp_path)).ignore == ("G60",)
    assert load(str(tmp_path / "pyproject.toml"), cwd="/").ignore == ("SSM-REL",)
    assert load(isolated=True, cwd=str(tmp_path)).ignore == ()
    with pytest.raises(UsageError, match="--config and --isolated cannot be used together"):
        load(str(tmp_path / "ci.toml"), isolated=True)
    with pytest.raises(UsageError, match="nope.toml: no such configuration file"):
        load(str(tmp_path / "nope.toml"))
    write(tmp_path / "other" / "pyproject.toml", '[project]\nname = "x"\n')
    with pytest.raises(UsageError, match=r"has no \[tool.ssm\] table"):
        load(str(tmp_path / "other" / "pyproject.toml"))


# ---- validation ---------------------------------------------------------------------------


@pytest.mark.parametrize("text, message", [
    ('[tool.ssm]\nper_file_ignores = {}\n', "key `tool.ssm.per_file_ignores`: unknown key (did you mean `per-file-ignores`?)"),
    ('[tool.ssm]\nselect = "SSM-BDU"\n', "key `tool.ssm.select`: expected a list of rule selectors, like ['SSM-BDU']"),
    ('[tool.ssm]\nignore = ["SSM BDU"]\n', "key `tool.ssm.ignore`: 'SSM BDU' is not a rule ID"),
    ('[tool.ssm]\nfail-on = "warn"\n', "key `tool.ssm.fail-on`: expected one of error, warning, info, never, got 'warn'"),
    ('[tool.ssm.severity]\nSSM-BDU-001 = "fatal"\n', "key `tool.ssm.severity.SSM-BDU-001`: expected one of error, warning, info"),
    ('[tool.ssm]\npacks = ["missing-pack"]\n', "key `tool.ssm.packs`: missing-pack: no such directory"),
    ('[tool.ssm]\nbuiltin = "no"\n', "key `tool.ssm.builtin`: expected true or false"),
    ('[tool.ssm.settings]\nreview_days = [1]\n', "key `tool.ssm.settings.review_days`: expected a number"),
    ('[tool.ssm]\nsettings = 3\n', "key `tool.ssm.settings`: expected a table"),
    ('[tool.ssm.per-file-ignores]\n"a/*.yaml" = "ALL"\n', 'key `tool.ssm.per-file-ignores."a/*.yaml"`: expected a list'),
    ('[tool.ssm]\nselect = [\n', "invalid TOML"),
])
def test_bad_configuration_names_the_file_and_key(tmp_path, text, message):
    path = write(tmp_path / "pyproject.toml", text)
    with pytest.raises(UsageError) as error:
        load(cwd=str(tmp_path))
    assert str(error.value).startswith(f"{path}: ")
    assert message in str(error.value)


def test_ssm_toml_keys_are_top_level(tmp_path):
    write(tmp_path / ".ssm.toml", '[tool.ssm]\nselect = ["ALL"]\n')
    with pytest.raises(UsageError, match=r"key `tool`: unknown key \(in .ssm.toml the keys go at the top level"):
        load(cwd=str(tmp_path))


def test_check_against_the_loaded_packs(tmp_path):
    def checked(text):
        write(tmp_path / ".ssm.toml", text)
        load(cwd=str(tmp_path)).check_against(RULES, SETTINGS)

    checked('select = ["SSM-BDU", "G70", "ALL"]\nignore = ["SSM-PLAN-012"]\n[settings]\nreview_days = 60\n')
    with pytest.raises(UsageError, match=r"key `ignore`: `SSM-PLAN-013` matches no rule \(did you mean `SSM-PLAN-012`\?\)"):
        checked('ignore = ["SSM-PLAN-013"]\n')
    with pytest.raises(UsageError, match=r"key `severity.G99`: `G99` matches no rule"):
        checked('[severity]\nG99 = "error"\n')
    with pytest.raises(UsageError, match=r"key `per-file-ignores.\"x/\*\"`: `SSM-XYZ` matches no rule"):
        checked('[per-file-ignores]\n"x/*" = ["SSM-XYZ"]\n')
    with pytest.raises(UsageError, match=r"key `settings.review_day`: no loaded rule pack declares this setting "
                                         r"\(did you mean `review_days`\?\) \(declared: ongoing_days, review_days\)"):
        checked('[settings]\nreview_day = 60\n')
    with pytest.raises(UsageError, match=r"key `settings.review_days`: expected a whole number like the pack's "
                                         r"default 92, got '60'"):
        checked('[settings]\nreview_days = "60"\n')
    with pytest.raises(UsageError, match=r"key `settings.review_days`: expected a whole number"):
        checked('[settings]\nreview_days = 1.5\n')


def test_packs_are_relative_to_the_file_and_salesforce_passes_through(tmp_path):
    (tmp_path / "team" / "rules").mkdir(parents=True)
    write(tmp_path / "pyproject.toml", textwrap.dedent("""\
        [tool.ssm]
        packs = ["team/rules"]
        builtin = false
        [tool.ssm.salesforce]
        instance = "https://example.my.salesforce.com"
        [tool.ssm.salesforce.stages]
        "Closed Won" = "won"
        """))
    (tmp_path / "deep").mkdir()
    found = load(cwd=str(tmp_path / "deep"))
    assert found.packs == (str(tmp_path / "team" / "rules"),)
    assert found.builtin is False
    assert found.salesforce["stages"] == {"Closed Won": "won"}


# ---- what it does -------------------------------------------------------------------------


def test_select_and_ignore_more_specific_wins():
    cfg = Config(select=("SSM-BDU-001", "SSM-REL"), ignore=("SSM-BDU", "G70"))
    assert cfg.is_enabled("SSM-BDU-001", ["G60"])  # an exact ID beats a prefix
    assert not cfg.is_enabled("SSM-BDU-002", ["G61"])  # not selected
    assert cfg.is_enabled("SSM-REL-001", ["G70"])  # a prefix beats a guidance ID
    assert not Config(ignore=("G60",)).is_enabled("SSM-BDU-001", ["G60", "G64"])
    assert not Config(select=("SSM-BDU",), ignore=("SSM-BDU",)).is_enabled("SSM-BDU-001")  # ignore wins ties
    assert Config().is_enabled("ANYTHING-1")
    assert not Config(ignore=("ALL",)).is_enabled("SSM-BDU-001")


def test_severity_overrides_most_specific_wins():
    cfg = Config(severity={"SSM-BDU": "warning", "SSM-BDU-001": "info", "G70": "error"})
    assert cfg.severity_of("SSM-BDU-001", ["G60"], "error") == "info"
    assert cfg.severity_of("SSM-BDU-002", ["G61"], "error") == "warning"
    assert cfg.severity_of("SSM-REL-001", ["G70"], "warning") == "error"
    assert cfg.severity_of("SSM-PLAN-001", ["G01"], "warning") == "warning"


def test_per_file_ignores_globs(tmp_path):
    cfg = Config(root=str(tmp_path), per_file_ignores=(
        ("archive/**", ("ALL",)), ("plans/new-*.yaml", ("SSM-PLAN-001",)), ("legacy.yaml", ("G60",))))
    assert cfg.is_ignored_in(str(tmp_path / "archive" / "2024" / "a.yaml"), "SSM-BDU-001")
    assert cfg.is_ignored_in(str(tmp_path / "plans" / "new-acme.yaml"), "SSM-PLAN-001")
    assert not cfg.is_ignored_in(str(tmp_path / "plans" / "new-acme.yaml"), "SSM-PLAN-002")
    assert not cfg.is_ignored_in(str(tmp_path / "plans" / "sub" / "new-acme.yaml"), "SSM-PLAN-001")
    assert cfg.is_ignored_in(str(tmp_path / "deep" / "legacy.yaml"), "SSM-BDU-001", ["G60"])  # no slash: any dir
    assert not cfg.is_ignored_in(str(tmp_path / "deep" / "legacy.yaml"), "SSM-REL-001", ["G70"])


def test_apply_to_result_filters_and_overrides(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    cfg = Config(root=str(tmp_path), ignore=("SSM-PLAN-012",), severity={"SSM-REL-002": "error"},
                 per_file_ignores=(("plans/north*.yaml", ("G60",)),))
    report = sample_report()
    result = cfg.apply_to_result(report.results[0])
    assert [(f.rule, f.severity) for f in result.findings] == [("SSM-REL-002", "error")]
    assert report.results[0].findings[1].severity == "warning"  # the original is untouched
    assert cfg.apply_to_result(report.results[1]) is report.results[1]  # an invalid plan stays as it is


@pytest.mark.parametrize("absolute", [False, True])
def test_per_file_ignores_apply_to_relative_and_absolute_files(tmp_path, monkeypatch, absolute):
    # apply_to_result works out each file's relative path once: a plan named either way, and a
    # finding located in another file than its plan's, are each matched against the globs.
    monkeypatch.chdir(tmp_path)
    name = (lambda file: str(tmp_path / file)) if absolute else (lambda file: file)
    cfg = Config(root=str(tmp_path), per_file_ignores=(("plans/north*.yaml", ("G60",)),))
    north = PlanResult(file=name("plans/northwind.yaml"), account="northwind", findings=[
        FakeFinding("SSM-BDU-001", "error", "no key decision leader", 8, file=name("plans/northwind.yaml")),
        FakeFinding("SSM-BDU-002", "error", "no coach", 9, file=name("plans/south.yaml")),
        FakeFinding("SSM-REL-001", "warning", "no goal", 10, file=name("plans/northwind.yaml"), guidance=("G70",)),
    ])
    assert [f.rule for f in cfg.apply_to_result(north).findings] == ["SSM-BDU-002", "SSM-REL-001"]
    south = PlanResult(file=name("plans/south.yaml"), account="south", findings=[
        FakeFinding("SSM-BDU-001", "error", "no key decision leader", 8, file=None)])  # the plan's file
    assert [f.rule for f in cfg.apply_to_result(south).findings] == ["SSM-BDU-001"]
    assert cfg.is_ignored_in(name("plans/north.yaml"), "SSM-BDU-001", ["G60"])
    assert not Config(root=str(tmp_path)).is_ignored_in(name("plans/north.yaml"), "SSM-BDU-001", ["G60"])


def test_fails_decides_the_exit_status():
    report = sample_report()
    assert fails(report, "never")  # the invalid plan
    valid_only = sample_report()
    valid_only.results = [valid_only.results[0], valid_only.results[2]]
    assert fails(valid_only, "error") and fails(valid_only, "info")
    assert not fails(valid_only, "never")
    warnings = PlanResult(file="a.yaml", account="a", findings=[FakeFinding("SSM-REL-002", "warning", "m", 2)])
    valid_only.results = [warnings]
    assert not fails(valid_only, "error") and fails(valid_only, "warning")


def test_config_is_frozen():
    with pytest.raises(Exception):
        Config().fail_on = "never"  # type: ignore[misc]
    assert config.KEYS == ("select", "ignore", "severity", "settings", "packs", "builtin", "per-file-ignores",
                           "fail-on", "salesforce", "lang")


# ---- through `ssm check` ----------------------------------------------------------------


def ssm(runner, *args):
    from ssm_rules.cli import main

    return runner.invoke(main, ["check", "--as-of", "2026-11-27", *args])


@pytest.fixture
def portfolio(tmp_path, monkeypatch):
    import shutil

    from conftest import FACTS

    shutil.copytree(FACTS, tmp_path / "accounts")
    monkeypatch.chdir(tmp_path)
    return tmp_path


def findings_of(result) -> list[tuple[str, str, str]]:
    import json

    document = json.loads(result.stdout)
    return [(plan["account"], f["rule"], f["severity"]) for plan in document["plans"] for f in plan["findings"]]


def test_configuration_is_discovered_and_applied(runner, portfolio):
    everything = findings_of(ssm(runner, "accounts", "--format", "json"))
    assert ("ghvl-hospitals", "SSM-PLAN-002", "error") in everything
    (portfolio / "pyproject.toml").write_text(textwrap.dedent("""\
        [tool.ssm]
        ignore = ["SSM-BDU"]
        fail-on = "never"
        [tool.ssm.severity]
        SSM-PLAN-002 = "warning"
        [tool.ssm.per-file-ignores]
        "accounts/kessler-*.yaml" = ["ALL"]
        """))
    (portfolio / "accounts" / "sub").mkdir()
    result = ssm(runner, "accounts", "--format", "json")
    assert result.exit_code == 0  # fail-on = never
    configured = findings_of(result)
    assert ("ghvl-hospitals", "SSM-PLAN-002", "warning") in configured
    assert not [f for f in configured if f[1].startswith("SSM-BDU") or f[0] == "kessler-antriebstechnik"]
    assert len(configured) < len(everything)
    # discovered from a subdirectory too, and --fail-on beats the file
    import os

    os.chdir(portfolio / "accounts" / "sub")
    assert ssm(runner, "..", "--fail-on", "warning").exit_code == 1
    assert ssm(runner, "..").exit_code == 0
    assert ssm(runner, "..", "--isolated").exit_code == 1


def test_settings_reach_the_rules(runner, portfolio):
    before = findings_of(ssm(runner, "accounts", "--format", "json"))
    assert ("banca-valdadige", "SSM-PLAN-002", "error") not in before  # reviewed 37 days before as-of
    (portfolio / ".ssm.toml").write_text("[settings]\nreview_days = 30\n")
    after = findings_of(ssm(runner, "accounts", "--format", "json"))
    assert ("banca-valdadige", "SSM-PLAN-002", "error") in after
    (portfolio / ".ssm.toml").write_text('[settings]\n"focus.review_days" = 30\n')
    assert ("banca-valdadige", "SSM-PLAN-002", "error") in findings_of(ssm(runner, "accounts", "--format", "json"))


@pytest.mark.parametrize("text, message", [
    ("selct = []\n", "key `selct`: unknown key (did you mean `select`?)"),
    ('ignore = ["SSM-BDU-0001"]\n', "key `ignore`: `SSM-BDU-0001` matches no rule (did you mean `SSM-BDU-001`?)"),
    ("[settings]\nreview_dayz = 3\n", "key `settings.review_dayz`: no loaded rule pack declares this setting "
                                       "(did you mean `review_days`?)"),
    ('fail-on = "sometimes"\n', "key `fail-on`: expected one of error, warning, info, never"),
])
def test_bad_configuration_is_exit_2_with_the_key(runner, portfolio, text, message):
    (portfolio / ".ssm.toml").write_text(text)
    result = ssm(runner, "accounts")
    assert result.exit_code == 2, result.output
    assert result.stderr.startswith(f"ssm: {portfolio / '.ssm.toml'}: ")
    assert message in result.stderr
    assert "Traceback" not in result.output


def test_explicit_config_and_packs(runner, portfolio):
    pack = portfolio / "team-rules"
    pack.mkdir()
    (pack / "pack.yaml").write_text("name: team\ntitle: Team rules\n")
    (pack / "no-industry.yaml").write_text(textwrap.dedent("""\
        id: TEAM-001
        title: Plan names no industry
        severity: info
        when:
          - plan: p
            where: {industry: {exists: false}}
        message: "No industry for {p.account_name}."
        next_action: Record the client's industry in `account.industry`.
        """))
    kessler = portfolio / "accounts" / "kessler-antriebstechnik.yaml"
    kessler.write_text("\n".join(line for line in kessler.read_text(encoding="utf-8").splitlines()
                                 if not line.startswith("  industry:")) + "\n", encoding="utf-8")
    (portfolio / "ci").mkdir()
    (portfolio / "ci" / "ssm.toml").write_text('packs = ["../team-rules"]\nselect = ["TEAM"]\n')
    result = ssm(runner, "accounts", "--config", "ci/ssm.toml", "--format", "json")
    assert result.exit_code == 0, result.output
    assert findings_of(result) == [("kessler-antriebstechnik", "TEAM-001", "info")]
    missing = ssm(runner, "accounts", "--config", "nope.toml")
    assert missing.exit_code == 2 and "nope.toml: no such configuration file" in missing.stderr
