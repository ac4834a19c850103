"""Files ssm writes land only on a regular file or a new path, and never on one of its inputs.

A rename replaces whatever the path names: run as root, `--output /dev/null` replaced the
device with a regular file, and `-o plan.yaml` replaced the plan with its own report.
"""

from __future__ import annotations

import os
import shutil
import stat

import pytest

from conftest import FACTS
from ssm_rules.atomic import UnsafeTarget, check_target, write_text_atomic
from ssm_rules.cli import main

AS_OF = "2026-11-27"
BANK = FACTS / "banca-valdadige.yaml"


def check(runner, *args):
    result = runner.invoke(main, ["check", *args, "--as-of", AS_OF, "--isolated", "--no-cache"])
    assert "internal error" not in result.output, result.output
    return result


@pytest.fixture
def plan(tmp_path):
    path = tmp_path / "bank.yaml"
    shutil.copy(BANK, path)
    return path


@pytest.mark.parametrize("option", ["--output", "--write-baseline"])
def test_a_fifo_is_refused_and_left_as_it_is(runner, tmp_path, plan, option):
    fifo = tmp_path / "out.fifo"
    os.mkfifo(fifo)
    result = check(runner, str(plan), option, str(fifo))
    assert result.exit_code == 2
    assert "is not a regular file (a device, FIFO or socket): ssm writes only to a regular file or a new path" \
        in result.output
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode)


def test_a_device_is_refused_without_being_touched(runner, plan):
    before = os.stat("/dev/null")
    result = check(runner, str(plan), "--output", "/dev/null")
    assert result.exit_code == 2
    assert result.output.startswith("ssm: /dev/null: cannot write the report: is not a regular file")
    after = os.stat("/dev/null")
    assert stat.S_ISCHR(after.st_mode) and after.st_ino == before.st_ino


@pytest.mark.parametrize("option", ["--output", "--write-baseline"])
def test_a_symbolic_link_is_refused_and_its_target_untouched(runner, tmp_path, plan, option):
    outside = tmp_path / "outside"
    outside.mkdir()
    target = outside / "precious.txt"
    target.write_text("keep me\n")
    link = tmp_path / "report.out"
    link.symlink_to(target)
    result = check(runner, str(plan), option, str(link))
    assert result.exit_code == 2
    assert "is a symbolic link: ssm does not write through links" in result.output
    assert link.is_symlink() and target.read_text() == "keep me\n"


def test_a_dangling_symbolic_link_is_refused_too(runner, tmp_path, plan):
    link = tmp_path / "report.out"
    link.symlink_to(tmp_path / "nowhere" / "file")
    result = check(runner, str(plan), "--output", str(link))
    assert result.exit_code == 2 and "is a symbolic link" in result.output


@pytest.mark.parametrize("option", ["--output", "--write-baseline"])
def test_the_plan_being_checked_is_never_overwritten(runner, tmp_path, plan, option):
    original = plan.read_bytes()
    result = check(runner, str(tmp_path), option, str(plan))
    assert result.exit_code == 2
    assert f"cannot write the {'report' if option == '--output' else 'baseline'}: is one of this run's inputs" \
        in result.output
    assert plan.read_bytes() == original


def test_a_hard_link_to_a_plan_is_one_of_the_inputs(runner, tmp_path, plan):
    other = tmp_path / "elsewhere.sarif"
    os.link(plan, other)
    result = check(runner, str(plan), "--output", str(other))
    assert result.exit_code == 2 and "is one of this run's inputs" in result.output


def test_the_baseline_read_is_never_the_report_written(runner, tmp_path, plan):
    baseline = tmp_path / "baseline.json"
    assert check(runner, str(plan), "--write-baseline", str(baseline)).exit_code == 0
    result = check(runner, str(plan), "--baseline", str(baseline), "--output", str(baseline))
    assert result.exit_code == 2 and "is one of this run's inputs" in result.output


def test_output_and_baseline_cannot_be_the_same_file(runner, tmp_path, plan):
    same = tmp_path / "out.json"
    result = check(runner, str(plan), "--output", str(same), "--write-baseline", str(same))
    assert result.exit_code == 2
    assert result.output == f"ssm: {same}: --output and --write-baseline name the same file\n"
    assert not same.exists()


def test_a_regular_file_or_a_new_path_is_written_as_before(runner, tmp_path, plan):
    existing = tmp_path / "old.sarif"
    existing.write_text("old")
    os.chmod(existing, 0o640)
    assert check(runner, str(plan), "--format", "sarif", "--output", str(existing)).exit_code == 1
    assert existing.read_text().startswith("{") and stat.S_IMODE(os.stat(existing).st_mode) == 0o640
    fresh = tmp_path / "new.json"
    assert check(runner, str(plan), "--format", "json", "--output", str(fresh)).exit_code == 1
    assert fresh.read_text().startswith("{")


def test_the_writer_itself_refuses_unsafe_targets(tmp_path):
    """Every writer goes through write_text_atomic (reports, baselines, imported plans)."""
    (tmp_path / "dir").mkdir()
    os.mkfifo(tmp_path / "fifo")
    (tmp_path / "link").symlink_to(tmp_path / "file")
    for name, reason in (("dir", "is a directory"), ("fifo", "is not a regular file"), ("link", "symbolic link")):
        with pytest.raises(UnsafeTarget, match=reason):
            write_text_atomic(tmp_path / name, "x")
    (tmp_path / "input").write_text("plan")
    with pytest.raises(UnsafeTarget, match="one of this run's inputs"):
        check_target(tmp_path / "input", [tmp_path / "input"])
    assert sorted(os.listdir(tmp_path)) == ["dir", "fifo", "input", "link"]  # no temporary file left
