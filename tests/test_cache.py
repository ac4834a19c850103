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
