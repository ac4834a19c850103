"""What the README shows is what the tool does: its commands and their output are run here."""

from __future__ import annotations

import re
import shlex

from conftest import ROOT
from ssm_rules.cli import main

README = (ROOT / "README.md").read_text(encoding="utf-8")


def section(title: str) -> str:
    start = README.index(title)
    end = README.find("\n#", start + len(title))
    return README[start:end if end >= 0 else None]


def test_the_first_command_judges_the_samples_at_the_date_of_the_output_shown():
    """The first command judged the samples as of today while the README shows their output
    as of 2026-11-27: the two must agree, or a new user's first run contradicts the page."""
    first = re.search(r"```sh\n(.*?)```", section("## Two commands"), re.S).group(1)
    command = first.split("&&")[-1].split()
    assert command[:3] == [".venv/bin/ssm", "check", "facts/"]
    assert command[command.index("--as-of") + 1] == "2026-11-27"


def test_the_output_shown_is_what_the_command_prints(runner, monkeypatch):
    shown = section("### What `ssm check` prints")
    command = shlex.split(re.search(r"`(ssm check [^`]+)`", shown).group(1))
    assert "--as-of" in command
    block = re.search(r"```\n(.*?)```", shown, re.S).group(1).splitlines()
    monkeypatch.chdir(ROOT)
    result = runner.invoke(main, [*command[1:], "--isolated", "--no-cache"])
    assert result.exit_code == 1, result.output  # it has errors
    printed = result.output.splitlines()
    position = 0
    for line in block:  # every line shown, in the order shown; `…` stands for lines left out
        if line == "…":
            continue
        assert line in printed[position:], line
        position = printed.index(line, position) + 1
    count = int(re.search(r"prints (\d+) findings", shown).group(1))
    assert sum(1 for line in printed if re.match(r"\S+:\d+:\d+: (error|warning|info) ", line)) == count


def test_the_pipeline_review_shown_is_what_the_command_prints(runner, monkeypatch):
    block = re.search(r"```\n\$ (ssm pipeline [^\n]+)\n(.*?)```", section("## Pipeline review"), re.S)
    command = shlex.split(block.group(1))
    monkeypatch.chdir(ROOT)
    result = runner.invoke(main, [*command[1:], "--isolated", "--no-cache"], env={"COLUMNS": None, "NO_COLOR": None})
    assert result.exit_code == 0, result.output
    assert result.stdout == block.group(2)
