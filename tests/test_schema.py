"""`ssm schema`: a valid JSON Schema that accepts every valid plan and rejects typos."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import jsonschema
import pytest

from conftest import FACTS, ROOT, SPEC_EXAMPLE
from ssm_rules.cli import main
from ssm_rules.loader import load_path
from ssm_rules.schema import plan_schema


def as_json(value):
    """What an editor sees: YAML dates are plain ISO strings in JSON."""
    if isinstance(value, dict):
        return {key: as_json(item) for key, item in value.items()}
    if isinstance(value, list):
        return [as_json(item) for item in value]
    return value.isoformat() if isinstance(value, date) else value


@pytest.fixture(scope="module")
def validator():
    schema = plan_schema()
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema, format_checker=jsonschema.FormatChecker())


@pytest.mark.parametrize("plan_file", [SPEC_EXAMPLE, *sorted(FACTS.glob("*.yaml"))], ids=lambda p: p.name)
def test_schema_accepts_every_valid_plan(validator, plan_file: Path):
    errors = list(validator.iter_errors(as_json(load_path(plan_file).data)))
    assert errors == []


def test_schema_rejects_an_unknown_key(validator):
    data = as_json(load_path(SPEC_EXAMPLE).data)
    data["plan"]["last_review"] = "2026-10-02"
    assert not validator.is_valid(data)


def test_schema_knows_the_opportunity_stage_fields(validator):
    data = as_json(load_path(SPEC_EXAMPLE).data)
    outcomes = data["opportunities"][0]["outcomes"]
    outcomes["go_foward"] = outcomes.pop("go_forward")
    assert not validator.is_valid(data)
    outcomes["go_forward"] = outcomes.pop("go_foward")
    del outcomes["interest"]["date"]
    assert not validator.is_valid(data)
    outcomes["interest"]["date"] = "2026-07-02"
    data["opportunities"][0]["stage_since"] = "last week"
    assert not validator.is_valid(data)


def test_schema_command_prints_it(runner):
    result = runner.invoke(main, ["schema"])
    assert result.exit_code == 0
    assert json.loads(result.output) == plan_schema()


def test_the_committed_schema_file_is_up_to_date():
    committed = json.loads((ROOT / "schema" / "ssm-plan-1.schema.json").read_text())
    assert committed == plan_schema(), "run: .venv/bin/python tools/generate.py"
