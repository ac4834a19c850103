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
# The same plan with the opportunity fields of the SSM stages guide (outcomes, next step, ...).
STAGES_EXAMPLE = ROOT / "tests" / "data" / "stages-example.yaml"


def dedent(text: str) -> bytes:
    return textwrap.dedent(text).lstrip("\n").encode("utf-8")


@pytest.fixture(autouse=True, scope="session")
def _private_cache(tmp_path_factory):
    """Tests never read or leave a plan cache in the working tree (ssm caches in .ssm_cache/)."""
    import os

    previous = os.environ.get("SSM_CACHE_DIR")
    os.environ["SSM_CACHE_DIR"] = str(tmp_path_factory.mktemp("ssm-cache"))
    yield
    if previous is None:
        os.environ.pop("SSM_CACHE_DIR", None)
    else:
        os.environ["SSM_CACHE_DIR"] = previous


@pytest.fixture
def runner() -> CliRunner:
    return CliRunner()
