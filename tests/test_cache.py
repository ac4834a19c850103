"""The plan cache: a second run of an unchanged portfolio reuses work; nothing stale or forged
is ever served."""

from __future__ import annotations

import json
import shutil

from conftest import FACTS
from ssm_rules import cache as cache_module
from ssm_rules.cli import main

AS_OF = "2026-11-27"


def check_json(runner, *args):
    result = runner.invoke(main, ["check", *args, "--as-of", AS_OF, "--isolated", "--format", "json"])
    assert result.exit_code in (0, 1), result.output
    return json.loads(result.output)


def test_cached_results_equal_fresh_ones_and_a_changed_file_is_rechecked(runner, tmp_path):
    plans = tmp_path / "plans"
    shutil.copytree(FACTS, plans, ignore=shutil.ignore_patterns("*.md"))
    cache_dir = tmp_path / "cache"
    fresh = check_json(runner, str(plans), "--no-cache")
    first = check_json(runner, str(plans), "--cache-dir", str(cache_dir))
    assert any(cache_dir.rglob("*")), "the first run fills the cache"
    again = check_json(runner, str(plans), "--cache-dir", str(cache_dir))
    assert fresh == first == again

    # Fix a gap in one plan: its findings change, served from the file, not from the cache.
    bank = plans / "banca-valdadige.yaml"
    bank.write_text(bank.read_text().replace("  - id: open-banking-api", "  - id: open-banking-api2"))
    changed = check_json(runner, str(plans), "--cache-dir", str(cache_dir))
    assert changed == check_json(runner, str(plans), "--no-cache")
    assert changed != first


def test_a_forged_or_corrupt_entry_is_a_miss(tmp_path):
    cache = cache_module.open_cache(tmp_path / "cache")
    assert cache is not None
    cache.put("plan", "ab" * 32, {"clean": True})
    assert cache.get("plan", "ab" * 32) == {"clean": True}
    [entry] = [path for path in (tmp_path / "cache").rglob("*") if path.is_file() and path.name == "ab" * 32]
    blob = bytearray(entry.read_bytes())
    blob[-1] ^= 0xFF  # a planted or damaged entry no longer carries our signature
    entry.write_bytes(bytes(blob))
    assert cache.get("plan", "ab" * 32) is None
    entry.write_bytes(b"garbage")
    assert cache.get("plan", "ab" * 32) is None


def test_no_cache_writes_nothing(runner, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("SSM_CACHE_DIR", raising=False)
    check_json(runner, str(FACTS / "nordvik-insurance.yaml"), "--no-cache")
    assert not (tmp_path / ".ssm_cache").exists()
    check_json(runner, str(FACTS / "nordvik-insurance.yaml"))
    assert (tmp_path / ".ssm_cache").is_dir()  # the default: beside where ssm runs
    assert (tmp_path / ".ssm_cache" / ".gitignore").read_text().splitlines()[-1] == "*"


def test_a_same_day_rerun_is_answered_by_the_result_alone(tmp_path, monkeypatch):
    """The result entry carries what the reports need (account, name, owner, suppressions), so a
    re-run on the same day never unpickles the larger plan entry (parsed plan and positions)."""
    from datetime import date

    from ssm_rules.audit.runner import AuditedPlan
    from ssm_rules.pipeline import Checker
    from ssm_rules.suppressions import apply_to_result

    plan = tmp_path / "adriatel.yaml"
    lines = (FACTS / "adriatel.yaml").read_text().splitlines()
    plan.write_text("\n".join(lines) + "\n")
    cache = cache_module.open_cache(tmp_path / "cache")
    first_finding = next(f for f in Checker(cache=None).check_file(str(plan), date(2026, 11, 27)).findings if f.line)
    lines[first_finding.line - 1] += f"  # ssm: ignore[{first_finding.rule}] known, see the QBR notes"
    plan.write_text("\n".join(lines) + "\n")

    def audited(checker):
        result = checker.check_file(str(plan), date(2026, 11, 27))
        return AuditedPlan.from_plan_result(apply_to_result(result))

    first = audited(Checker(cache=cache))
    kinds_read = []
    original_get = cache_module.Cache.get
    monkeypatch.setattr(cache_module.Cache, "get",
                        lambda self, kind, key: kinds_read.append(kind) or original_get(self, kind, key))
    again = audited(Checker(cache=cache))
    assert again == first
    assert again.account_name == "Adriatel d.d."  # the name the report lists
    assert (first_finding.rule, first_finding.line) not in [
        (f["rule"], f["location"]["line"]) for f in again.findings]  # still suppressed
    assert "result" in kinds_read and "plan" not in kinds_read


# ---- a cache directory that came with a repository is never followed -----------------------


def test_a_cache_directory_that_is_a_symbolic_link_is_never_followed(runner, tmp_path, monkeypatch):
    repo, outside = tmp_path / "repo", tmp_path / "outside"
    repo.mkdir()
    outside.mkdir()
    shutil.copy(FACTS / "banca-valdadige.yaml", repo / "bank.yaml")
    (repo / ".ssm_cache").symlink_to(outside)  # committed by whoever wrote the pull request
    monkeypatch.chdir(repo)
    monkeypatch.delenv("SSM_CACHE_DIR", raising=False)
    result = runner.invoke(main, ["check", "bank.yaml", "--as-of", AS_OF, "--isolated"])
    assert result.exit_code == 1
    assert ("ssm: warning: the cache directory .ssm_cache is a symbolic link, which ssm never follows; "
            "running without the cache") in result.output
    assert "4 errors" in result.output
    result = runner.invoke(main, ["audit", ".", "--out", str(tmp_path / "report"), "--as-of", AS_OF,
                                  "--isolated", "--jobs", "2"])
    assert result.exit_code == 0, result.output
    assert result.output.count("symbolic link") == 1  # said once, not once per worker
    assert list(outside.iterdir()) == []


def test_links_planted_inside_the_cache_are_never_followed(tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    directory = tmp_path / "cache"
    directory.mkdir()
    (directory / ".gitignore").symlink_to(outside / "gitignore")  # dangling: writing would create it
    (directory / "plan").symlink_to(outside)
    cache = cache_module.open_cache(directory)
    assert cache is not None
    cache.put("plan", "ab" * 32, {"clean": True})
    assert cache.get("plan", "ab" * 32) is None
    assert list(outside.iterdir()) == []
    assert (directory / ".gitignore").is_symlink()


def test_special_files_planted_as_entries_are_misses(tmp_path):
    import os

    cache = cache_module.open_cache(tmp_path / "cache")
    cache.put("plan", "cd" * 32, {"clean": True})
    entry = tmp_path / "cache" / "plan" / "cd" / ("cd" * 32)
    entry.unlink()
    os.mkfifo(entry)  # opened for reading, a FIFO would wait for a writer forever
    assert cache.get("plan", "cd" * 32) is None
    entry.unlink()
    entry.symlink_to("/dev/zero")  # and this would never end
    assert cache.get("plan", "cd" * 32) is None
    victim = tmp_path / "victim"
    victim.write_text("keep me")
    temporary = tmp_path / "cache" / "plan" / "ef" / f"{'ef' * 32}.{os.getpid()}.tmp"
    temporary.parent.mkdir()
    temporary.symlink_to(victim)  # a planted temporary name: truncating it would truncate the victim
    cache.put("plan", "ef" * 32, {"clean": True})
    assert victim.read_text() == "keep me"
    assert cache.get("plan", "ef" * 32) == {"clean": True}
