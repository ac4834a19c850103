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
