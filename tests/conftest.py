"""Shared test helpers: plan snippets, the repository's paths, the CLI runner."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
from click.testing import CliRunner

ROOT = Path(__file__).resolve().parent.parent
FACTS = ROOT / "facts"
# The complete example plan of the format's specification, docs/plan-format.md, with every
# field: the one copy (tools/generate.py puts it on that page; the suite checks it is there).
SPEC_EXAMPLE = ROOT / "docs" / "example-plan.yaml"
# A realistic Salesforce export: three accounts and every kind of row (tests/salesforce_export.py).
SALESFORCE_EXPORT = ROOT / "tests" / "data" / "salesforce"


def generate_tool():
    """tools/generate.py as a module: what every generated file is made from, and how."""
    import importlib.util
    import sys

    if "tools_generate" not in sys.modules:
        spec = importlib.util.spec_from_file_location("tools_generate", ROOT / "tools" / "generate.py")
        module = importlib.util.module_from_spec(spec)
        sys.modules[spec.name] = module  # its dataclasses look their module up
        spec.loader.exec_module(module)
    return sys.modules["tools_generate"]


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


@pytest.fixture(autouse=True, scope="session")
def _english():
    """Outputs are compared with English text: a developer's Chinese locale must not change
    them (tests of the language choice set SSM_LANG themselves)."""
    import os

    previous = os.environ.get("SSM_LANG")
    os.environ["SSM_LANG"] = "en"
    yield
    if previous is None:
        os.environ.pop("SSM_LANG", None)
    else:
        os.environ["SSM_LANG"] = previous


@pytest.fixture(autouse=True)
def _fresh_language_state():
    """The language a command chose (ssm_rules.i18n) is per process; tests run many in one."""
    from ssm_rules import i18n

    i18n.reset()
    yield
    i18n.reset()


@pytest.fixture
def runner() -> CliRunner:
    return CliRunner()


@pytest.fixture
def export(tmp_path) -> Path:
    """A writable copy of the realistic Salesforce export."""
    import shutil

    directory = tmp_path / "export"
    shutil.copytree(SALESFORCE_EXPORT, directory)
    return directory
