"""Shared test helpers: plan snippets, the repository's paths, the CLI runner."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
from click.testing import CliRunner

ROOT = Path(__file__).resolve().parent.parent
FACTS = ROOT / "facts"
# The complete example of ../shared/spec/plan-format.md, copied verbatim.
SPEC_EXAMPLE = ROOT / "tests" / "data" / "spec-example.yaml"


def dedent(text: str) -> bytes:
    return textwrap.dedent(text).lstrip("\n").encode("utf-8")


@pytest.fixture
def runner() -> CliRunner:
    return CliRunner()
