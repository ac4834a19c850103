"""bench/generate.py's portfolio profiles: the benchmark's targets are stated for them, so a
generator that drifts (plans that no longer validate, small plans that grow) would quietly
change what the targets mean."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from ssm_rules import plan_shape
from ssm_rules.loader import load_bytes

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def generator():
    spec = importlib.util.spec_from_file_location("bench_generate", ROOT / "bench" / "generate.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def load(generator, index: int, profile: str):
    text = generator.plan_text(index, profile=profile)
    return text, load_bytes(text.encode(), f"{profile}-{index}.yaml").data


def test_small_plans_are_small_and_valid(generator):
    lines = []
    for index in range(80):
        text, data = load(generator, index, "small")
        assert 1 <= len(data["opportunities"]) <= 3, index
        assert 3 <= len(data["contacts"]) <= 8, index
        assert all("outcomes" in opportunity for opportunity in data["opportunities"]), "stage data"
        assert plan_shape.plain_plan(data) is not None, index  # valid, and on the fast path
        lines.append(text.count("\n"))
    assert min(lines) >= 100 and max(lines) <= 240
    assert sorted(lines)[len(lines) // 2] <= 200  # most are 100-200 lines


def test_large_plans_keep_their_sizes(generator):
    for index in range(20):
        _, data = load(generator, index, "large")
        assert 3 <= len(data["opportunities"]) <= 10, index
        assert 5 <= len(data["contacts"]) <= 30, index
        assert plan_shape.plain_plan(data) is not None, index


def test_mixed_holds_both_and_each_plan_is_its_profiles(generator):
    kinds = set()
    for index in range(30):
        text, _ = load(generator, index, "mixed")
        small, large = generator.plan_text(index, profile="small"), generator.plan_text(index, profile="large")
        assert text in (small, large), index
        kinds.add("small" if text == small else "large")
    assert kinds == {"small", "large"}


def test_generated_plans_write_no_anchors(generator):
    """People do not write `&id001` in plans; a shared date object made the dumper do it."""
    for profile in ("small", "large"):
        for index in range(20):
            text, _ = load(generator, index, profile)
            assert "&id0" not in text and "*id0" not in text, (profile, index)
