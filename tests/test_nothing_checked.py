"""A run that checks nothing is never green (exit 2, one line saying why), like eslint.

An empty directory, a directory of `.YAML` files, a subdirectory that cannot be read, a
configuration that selects no rule or loads no pack: each once exited 0 having checked nothing.
"""

from __future__ import annotations

import json
import os
import shutil

import pytest

from conftest import FACTS
from ssm_rules.cli import main

AS_OF = "2026-11-27"
BANK = FACTS / "banca-valdadige.yaml"


@pytest.mark.parametrize("command", ["check", "validate", "audit"])
def test_a_directory_without_plans_is_a_usage_error(runner, tmp_path, command):
    empty = tmp_path / "plans"
    (empty / "notes").mkdir(parents=True)
    (empty / "README.md").write_text("no plans here")
    extra = ["--out", str(tmp_path / "report")] if command == "audit" else []
    result = runner.invoke(main, [command, str(empty), *extra])
    assert result.exit_code == 2
    assert result.output == f"ssm: {empty}: no plan files (*.yaml, *.yml, *.json) found in this directory\n"


def test_one_empty_directory_among_others_is_named(runner, tmp_path):
    (tmp_path / "plans").mkdir()
    shutil.copy(BANK, tmp_path / "plans" / "bank.yaml")
    (tmp_path / "archive").mkdir()
    result = runner.invoke(main, ["check", str(tmp_path / "plans"), str(tmp_path / "archive"), "--isolated"])
    assert result.exit_code == 2 and str(tmp_path / "archive") in result.output


def test_plan_extensions_match_in_any_case(runner, tmp_path):
    for name in ("A.YAML", "b.Yml", "c.JSON"):
        source = BANK.read_text() if not name.endswith("JSON") else json.dumps(
            __import__("yaml").safe_load(BANK.read_text()), default=str)
        (tmp_path / name).write_text(source)
    result = runner.invoke(main, ["check", str(tmp_path), "--as-of", AS_OF, "--isolated", "--format", "json"])
    assert result.exit_code == 1
    plans = json.loads(result.output)["plans"]
    assert sorted(os.path.basename(plan["file"]) for plan in plans) == ["A.YAML", "b.Yml", "c.JSON"]
    assert all(len(plan["findings"]) == 8 for plan in plans)  # c.JSON was read as JSON


def test_an_unreadable_subdirectory_is_reported_and_fails_the_run(runner, tmp_path, monkeypatch):
    """As a user who cannot list `plans/locked` (root can: the refusal is simulated)."""
    shutil.copy(BANK, tmp_path / "bank.yaml")
    locked = tmp_path / "locked"
    locked.mkdir()
    shutil.copy(BANK, locked / "hidden.yaml")
    real_scandir = os.scandir

    def scandir(path="."):
        if os.fspath(path) == str(locked):
            raise PermissionError(13, "Permission denied", os.fspath(path))
        return real_scandir(path)

    monkeypatch.setattr(os, "scandir", scandir)
    result = runner.invoke(main, ["check", str(tmp_path), "--as-of", AS_OF, "--isolated", "--fail-on", "never"])
    assert result.exit_code == 1, result.output  # an invalid "plan": even --fail-on never fails
    assert (f"{locked}: error: cannot read this directory (Permission denied): the plans in it were not "
            f"checked") in result.output
    assert "Checked 2 plans: 1 invalid, 4 errors" in result.output


@pytest.mark.parametrize("config, message", [
    ("select = []\n", "key `select`: no rule is selected (`select` is empty): the run would check nothing"),
    ('select = ["SSM-BDU"]\nignore = ["SSM-BDU"]\n',
     "key `select`: no rule is selected (`ignore` turns off every rule `select` selects): the run would check nothing"),
])
def test_a_configuration_that_selects_no_rule_is_a_usage_error(runner, tmp_path, config, message):
    (tmp_path / ".ssm.toml").write_text(config)
    result = runner.invoke(main, ["check", str(BANK), "--config", str(tmp_path / ".ssm.toml")])
    assert result.exit_code == 2
    assert result.output == f"ssm: {tmp_path / '.ssm.toml'}: {message}\n"


@pytest.mark.parametrize("how", [["--no-builtin"], ["--config", "CONFIG"]])
def test_no_rule_pack_is_a_usage_error(runner, tmp_path, how):
    (tmp_path / ".ssm.toml").write_text("builtin = false\n")
    how = [str(tmp_path / ".ssm.toml") if part == "CONFIG" else part for part in how]
    for command in (["check", str(BANK)], ["audit", str(FACTS), "--out", str(tmp_path / "report")]):
        result = runner.invoke(main, [*command, *how])
        assert result.exit_code == 2, result.output
        assert result.output == ("ssm: no rule pack to check with: the built-in packs are left out (--no-builtin or "
                                 "`builtin = false`) and no other is given (--rules DIR or `packs`)\n")


def test_a_pack_without_any_finding_rule_is_a_usage_error(runner, tmp_path):
    pack = tmp_path / "pack"
    pack.mkdir()
    (pack / "pack.yaml").write_text("name: derive-only\ntitle: Derives only\n")
    (pack / "rule.yaml").write_text("id: D-1\ntitle: derive\nwhen:\n  - contact: c\n"
                                    "derive: {kind: seen, fields: {who: $c.key}}\n")
    result = runner.invoke(main, ["check", str(BANK), "--rules", str(pack), "--no-builtin", "--isolated"])
    assert result.exit_code == 2
    assert "have no rule with a finding" in result.output


def test_a_linked_directory_is_not_followed_and_says_so(runner, tmp_path):
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    shutil.copy(BANK, elsewhere / "emea.yaml")
    plans = tmp_path / "plans"
    plans.mkdir()
    shutil.copy(BANK, plans / "bank.yaml")
    (plans / "emea").symlink_to(elsewhere)
    result = runner.invoke(main, ["check", str(plans), "--as-of", AS_OF, "--isolated", "--format", "json"])
    assert result.exit_code == 1
    assert (f"ssm: warning: {plans / 'emea'} is a symbolic link to a directory; its plans are not checked unless "
            f"it is given as a path") in result.output
