"""Every command piped into a reader that stops early (`ssm rules | head -1`) ends quietly.

Like `yes | head -1`: no traceback, no "internal error" on stderr, and the exit status of a
process stopped by SIGPIPE (141). The tests run the real program with a real pipe.
"""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from conftest import FACTS, ROOT

SSM = [sys.executable, "-m", "ssm_rules"]
AS_OF = ["--as-of", "2026-11-27"]

COMMANDS = [
    ["rules"],
    ["rules", "--format", "json"],
    ["rules", "--format", "markdown"],
    ["explain", "SSM-BDU-001"],
    ["schema"],
    ["validate", str(FACTS)],
    ["validate", str(FACTS), "--format", "json"],
    *(["check", str(FACTS), *AS_OF, "--format", output] for output in
      ("text", "json", "sarif", "github", "gitlab", "junit", "markdown")),
    ["audit", str(FACTS), "--out", "report", *AS_OF],
    ["pipeline", str(FACTS), *AS_OF],
    ["pipeline", str(FACTS), *AS_OF, "--format", "json"],
    ["--help"],
    ["--version"],
    ["check", "--help"],
    ["import", "salesforce", "--help"],
]


def run_into_closed_pipe(args: list[str], tmp_path) -> subprocess.CompletedProcess:
    """Run ssm with its stdout on a pipe nobody reads any more: the first write fails, as it
    does after `head` has printed its line and gone."""
    read_end, write_end = os.pipe()
    os.close(read_end)
    env = {**os.environ, "SSM_CACHE_DIR": str(tmp_path / "cache"), "PYTHONPATH": str(ROOT)}
    env.pop("SSM_DEBUG", None)
    try:
        return subprocess.run([*SSM, *args], stdout=write_end, stderr=subprocess.PIPE, env=env, cwd=tmp_path,
                              timeout=120)
    finally:
        os.close(write_end)


@pytest.mark.parametrize("args", COMMANDS, ids=" ".join)
def test_a_closed_pipe_ends_the_command_quietly(args, tmp_path):
    result = run_into_closed_pipe(args, tmp_path)
    assert result.stderr == b""
    assert result.returncode == 141


def test_head_gets_its_line_and_nothing_is_reported(tmp_path):
    """The shell's own `| head -1` with pipefail: the first line arrives, stderr stays empty and
    the status is 0 (everything fitted into the pipe) or 141, never an error of ssm's."""
    command = " ".join([*SSM, "rules"]) + " | head -1"
    env = {**os.environ, "SSM_CACHE_DIR": str(tmp_path / "cache"), "PYTHONPATH": str(ROOT)}
    result = subprocess.run(["bash", "-o", "pipefail", "-c", command], capture_output=True, text=True, env=env,
                            timeout=120)
    assert result.stdout.startswith("focus: SSM Phase 1 (Focus)")
    assert result.stderr == ""
    assert result.returncode in (0, 141)


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="needs /dev/full (Linux)")
@pytest.mark.parametrize("args", [["rules"], ["check", str(FACTS), *AS_OF, "--format", "json"], ["schema"]],
                         ids=" ".join)
def test_a_full_disk_is_one_line_not_an_internal_error(args, tmp_path):
    env = {**os.environ, "SSM_CACHE_DIR": str(tmp_path / "cache"), "PYTHONPATH": str(ROOT)}
    env.pop("SSM_DEBUG", None)
    with open("/dev/full", "w") as full:
        result = subprocess.run([*SSM, *args], stdout=full, stderr=subprocess.PIPE, env=env, cwd=tmp_path,
                                timeout=120)
    assert result.stderr.decode() == "ssm: cannot write the output: No space left on device\n"
    assert result.returncode == 2


@pytest.mark.parametrize("args", COMMANDS, ids=" ".join)
def test_a_closed_stdout_is_one_line_and_exit_2(args, tmp_path):
    """Started with stdout closed (`ssm rules >&-`), Python has no sys.stdout and click wrote
    nothing, silently: every command exited 0 (or crashed on `isatty`)."""
    env = {**os.environ, "SSM_CACHE_DIR": str(tmp_path / "cache"), "PYTHONPATH": str(ROOT)}
    env.pop("SSM_DEBUG", None)
    result = subprocess.run(["bash", "-c", 'exec "$0" "$@" >&-', *SSM, *args], stderr=subprocess.PIPE, env=env,
                            cwd=tmp_path, timeout=120)
    assert result.stderr.decode() == "ssm: cannot write the output: standard output is closed\n"
    assert result.returncode == 2
