"""The pre-commit hook, run for real: `pre-commit try-repo` installs this repository into a
fresh hook environment (pip, from PyPI) and runs `ssm-check` on the plans of another repository.

try-repo clones the hook repository's HEAD (plus changes to tracked files), so the test first
commits a snapshot of this working tree (tracked and new, not ignored, files) into a temporary
repository: it tests the code as it is, committed or not. It needs a package index (the hook
environment installs ssm-rules' dependencies and builds its engine), so it is marked `network`:
`pytest -m network` runs it.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from conftest import ROOT, SPEC_EXAMPLE

GIT_ENV = {"GIT_AUTHOR_NAME": "ssm tests", "GIT_AUTHOR_EMAIL": "tests@example.invalid",
           "GIT_COMMITTER_NAME": "ssm tests", "GIT_COMMITTER_EMAIL": "tests@example.invalid",
           "GIT_CONFIG_NOSYSTEM": "1"}


def git(*args: str, cwd: Path) -> str:
    env = {**os.environ, **GIT_ENV, "HOME": str(cwd)}
    return subprocess.run(["git", *args], cwd=cwd, env=env, check=True, capture_output=True, text=True).stdout


def test_manifest_declares_the_hook():
    hooks = yaml.safe_load((ROOT / ".pre-commit-hooks.yaml").read_text())
    (hook,) = [h for h in hooks if h["id"] == "ssm-check"]
    assert hook["entry"] == "ssm check" and hook["language"] == "python" and hook["types"] == ["yaml"]


def snapshot_of_this_repository(destination: Path) -> Path:
    """A git repository with one commit holding this working tree, as a clone would see it."""
    if not (ROOT / ".git").exists() or shutil.which("git") is None:
        pytest.skip("not a git checkout: pre-commit try-repo needs one")
    listed = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
                            cwd=ROOT, check=True, capture_output=True).stdout.decode().split("\0")
    for name in filter(None, listed):
        source = ROOT / name
        if source.is_file():
            target = destination / name
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target)
    git("init", "-q", cwd=destination)
    git("add", "-A", cwd=destination)
    git("commit", "-q", "-m", "snapshot", cwd=destination)
    return destination


@pytest.mark.network
def test_pre_commit_try_repo_runs_the_hook(tmp_path):
    pytest.importorskip("pre_commit")
    hook_repo = snapshot_of_this_repository(tmp_path / "ssm-rules")
    plans = tmp_path / "plans-repo"
    (plans / "accounts").mkdir(parents=True)
    (plans / "accounts" / "northwind.yaml").write_bytes(SPEC_EXAMPLE.read_bytes())
    (plans / "accounts" / "broken.yaml").write_text("format: ssm-plan/1\naccount:\n  id: x\n  name: X\n  ownr: jo\n")
    (plans / "accounts" / "notes.txt").write_text("not yaml: the hook's `types` leave it out\n")
    # Configuration is discovered from the repository root, where pre-commit runs hooks.
    (plans / ".ssm.toml").write_text('fail-on = "never"\n')
    git("init", "-q", cwd=plans)
    git("add", "-A", cwd=plans)

    env = {**os.environ, **GIT_ENV, "PRE_COMMIT_HOME": str(tmp_path / "pre-commit-home"), "NO_COLOR": "1"}
    env.pop("PIP_REQUIRE_VIRTUALENV", None)
    command = [sys.executable, "-m", "pre_commit", "try-repo", str(hook_repo), "ssm-check", "--color", "never",
               "--verbose", "--files", "accounts/northwind.yaml", "accounts/broken.yaml", "accounts/notes.txt"]
    run = subprocess.run(command, cwd=plans, env=env, capture_output=True, text=True, timeout=600)
    output = run.stdout + run.stderr
    # the invalid plan fails the hook, reported at its line; the valid one is still checked
    assert run.returncode == 1, output
    assert "ssm check (account plans)" in output and "Failed" in output
    assert "accounts/broken.yaml:5:3: error: unknown key `ownr` in account: did you mean `owner`?" in output
    assert "Checked 2 plans: 1 invalid" in output, output
    assert "notes.txt" not in output.split("Using config:")[-1].split("ssm check (account plans)")[-1]


def test_the_ci_snippets_in_the_docs_are_consistent():
    """The snippets teams copy: valid YAML, the files they write are the files they upload."""
    import re

    text = (ROOT / "README.md").read_text(encoding="utf-8")
    blocks = {}
    for block in re.findall(r"```yaml\n(.*?)```", text, re.S):
        first = block.splitlines()[0]
        blocks[first] = yaml.safe_load(block)
    workflow = blocks["# .github/workflows/account-plans.yml"]
    steps = workflow["jobs"]["ssm"]["steps"]
    runs = [step.get("run", "") for step in steps]
    upload = next(step for step in steps if str(step.get("uses", "")).startswith("github/codeql-action/upload-sarif"))
    assert any(f"--format sarif --output {upload['with']['sarif_file']}" in run for run in runs)
    assert any("--format github" in run for run in runs)
    assert workflow["permissions"]["security-events"] == "write"
    gitlab = blocks["# .gitlab-ci.yml"]["ssm"]
    reports = gitlab["artifacts"]["reports"]
    assert any(f"--format gitlab --output {reports['codequality']}" in line for line in gitlab["script"])
    assert any(f"--format junit --output {reports['junit']}" in line for line in gitlab["script"])
    assert gitlab["artifacts"]["when"] == "always"
    hook = blocks["# .pre-commit-config.yaml"]["repos"][0]["hooks"][0]
    manifest = yaml.safe_load((ROOT / ".pre-commit-hooks.yaml").read_text())
    assert hook["id"] in {h["id"] for h in manifest}
    from ssm_rules.config import KEYS
    from ssm_rules.formats import FORMATS

    for name in [*FORMATS, *KEYS]:  # every format and every configuration key is documented
        assert f"| `{name}`" in text, name
