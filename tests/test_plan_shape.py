"""The plain-plan path (ssm_rules.plan_shape) gives exactly what the pydantic model gives.

The pipeline validates plain plans without importing pydantic (start-up time). That is only
right if the plain path never accepts a plan the model rejects and never yields a different
value: these tests compare both on every sample plan, benchmark plan and rule example, and on
thousands of single-value mutations of a real plan.
"""

from __future__ import annotations

import importlib.util
import pickle
import subprocess
import sys
from datetime import date, datetime
from pathlib import Path

import pytest

from conftest import SPEC_EXAMPLE
from ssm_rules import model, plan_shape
from ssm_rules.errors import PlanError
from ssm_rules.loader import load_bytes, load_path
from ssm_rules.rulepack import load_packs

ROOT = Path(__file__).resolve().parent.parent
SAMPLES = sorted((ROOT / "facts").glob("*.yaml"))
# Every field of the format in use: a sample, and the complete example of docs/plan-format.md.
MUTATED = [ROOT / "facts" / "nordvik-insurance.yaml", SPEC_EXAMPLE]


def pydantic_records(data):
    """What the model makes of `data`, as Records; None when it rejects it."""
    try:
        return model.to_record(model.Plan.model_validate(data))
    except Exception:  # noqa: BLE001 - any rejection
        return None


def same(plain, expected) -> bool:
    # repr, not ==: 70 == 70.0, but a float field must hold 70.0 as pydantic makes it.
    return repr(plain) == repr(expected)


def load_generator():
    spec = importlib.util.spec_from_file_location("bench_generate", ROOT / "bench" / "generate.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_shape_file_is_generated_from_the_model():
    assert plan_shape.SHAPE_FILE.read_text(encoding="utf-8") == model.shape_json(), (
        "ssm_rules/plan_shape.json is out of date: run `.venv/bin/python tools/generate.py`")


@pytest.mark.parametrize("plan_file", SAMPLES + MUTATED[1:], ids=lambda path: path.name)
def test_sample_plans_take_the_plain_path_with_the_models_values(plan_file):
    data = load_path(plan_file).data
    plain = plan_shape.plain_plan(data)
    assert plain is not None, "a sample plan written as the format shows should be plain"
    assert same(plain, pydantic_records(data))


def test_benchmark_plans_take_the_plain_path_with_the_models_values():
    generator = load_generator()
    for index in range(60):
        data = load_bytes(generator.plan_text(index).encode(), f"bench-{index}.yaml").data
        plain = plan_shape.plain_plan(data)
        assert plain is not None, index
        assert same(plain, pydantic_records(data)), index


def test_a_generated_portfolio_of_200_plans_is_valid():
    # Shape, IDs and references: what `ssm validate` checks on `bench/generate.py --count 200`.
    generator = load_generator()
    invalid = {}
    for index in range(200):
        document = load_bytes(generator.plan_text(index).encode(), f"bench-{index}.yaml")
        try:
            plan_shape.validate(document)
        except PlanError as error:
            invalid[index] = [problem.message for problem in error.problems]
    assert invalid == {}


def test_rule_example_plans_agree_with_the_model():
    compared = 0
    for rule in (rule for pack in load_packs([]) for rule in pack.rules):
        for example in (rule.examples.fail + rule.examples.pass_) if rule.examples else ():
            data = {"format": "ssm-plan/1", "account": {"id": "acme", "name": "Acme", "owner": "jane"},
                    **example.plan}
            plain, expected = plan_shape.plain_plan(data), pydantic_records(data)
            if plain is not None:
                assert same(plain, expected), rule.id
                compared += 1
    assert compared > 150


# Values of every kind a hand-edited plan might put anywhere: some pydantic coerces, some it
# rejects, some the plain path takes.
REPLACEMENTS = [None, "", "text", "Text With Spaces", "2026-10-02", "2026-1-2", "20261002", "true", "yes",
                "1", "3.5", 0, 1, 2, -7, 70, True, False, 3.0, 2.5, float("inf"), float("-inf"), float("nan"),
                "1e309", 10**400, -(10**400), 2**53 - 1, 2**53, -(2**53), 1e-05, 1e300, 100, 100.5, -0.5,
                date(2026, 10, 2),
                datetime(2026, 10, 2, 9, 30), datetime(2026, 10, 2), [], ["a"], ["client"], [1], {}, {"x": 1},
                "supporter", "key_decision_leader", "identified", "lost", "not_started", "client", "platform",
                {"date": date(2026, 7, 2)}, {"date": "2026-07-02", "by": ["li-wei"]}, {"action": "Call"},
                {"interest": {"date": date(2026, 7, 2)}}, {"go_forward": {"by": ["li-wei"]}},
                "abc\n", "UPPER", "a b", "ok-id_1.x"]


def _paths(value, prefix=()):
    yield prefix
    if isinstance(value, dict):
        for key, child in value.items():
            yield from _paths(child, prefix + (key,))
    elif isinstance(value, list):
        for index, child in enumerate(value):
            yield from _paths(child, prefix + (index,))


def _first_items(value):
    """The plan with every list cut to its first item: every field once, a few seconds' worth."""
    if isinstance(value, dict):
        return {key: _first_items(child) for key, child in value.items()}
    if isinstance(value, list):
        return [_first_items(child) for child in value[:1]]
    return value


def _parent(data, path):
    for part in path[:-1]:
        data = data[part]
    return data


@pytest.mark.parametrize("plan_file", MUTATED, ids=lambda path: path.name)
def test_no_mutation_is_accepted_by_the_plain_path_unless_the_model_accepts_it_the_same(plan_file):
    data = _first_items(load_path(plan_file).data)
    paths = [path for path in _paths(data) if path and path != ("format",)]
    plain_accepted = 0
    for path in paths:
        parent = _parent(data, path)
        original = parent[path[-1]]
        for new in REPLACEMENTS:
            parent[path[-1]] = new  # one value changed at a time; put back below
            try:
                plain = plan_shape.plain_plan(data)
                if plain is None:
                    continue  # pydantic decides; nothing to compare
                plain_accepted += 1
                expected = pydantic_records(data)
                assert expected is not None, f"plain path accepted {new!r} at {path}, the model rejects it"
                assert same(plain, expected), f"{new!r} at {path}"
            finally:
                parent[path[-1]] = original
    assert plain_accepted > 300  # the comparison ran on many accepted mutations


def test_an_unknown_key_or_a_missing_one_goes_to_the_model_for_its_message():
    text = (ROOT / "facts" / "nordvik-insurance.yaml").read_text()
    document = load_bytes(text.replace("last_reviewed:", "last_reviewd:", 1).encode(), "plan.yaml")
    with pytest.raises(PlanError) as plain_error:
        plan_shape.validate(document)
    with pytest.raises(PlanError) as model_error:
        model.validate(document)
    assert plain_error.value.problems == model_error.value.problems
    assert "did you mean `last_reviewed`" in plain_error.value.problems[0].message


def test_a_value_pydantic_coerces_is_validated_by_the_model():
    # A priority written as 2.0: not plain (a whole number is wanted), but valid; the model makes it 2.
    text = (ROOT / "facts" / "nordvik-insurance.yaml").read_text()
    assert "priority: 2\n" in text
    document = load_bytes(text.replace("priority: 2\n", "priority: 2.0\n", 1).encode(), "plan.yaml")
    assert plan_shape.plain_plan(document.data) is None
    plan = plan_shape.validate(document)
    assert isinstance(plan, plan_shape.Record)
    assert same(plan, model.to_record(model.validate(document)))


@pytest.mark.parametrize(("written", "message"), [
    ("priority: '2'", "`priority` must be a number, not text (got '2'): write 2 without quotes"),
    ("priority: true", "`priority` must be a number (got true)"),
    ("value: '1200000'", "`value` must be a number, not text (got '1200000'): write 1200000 without quotes"),
    ("value: 1,2 million", "`value` must be a number, not text (got '1,2 million')"),
    ("value: false", "`value` must be a number (got false)"),
    ("share: '60'", "`share` must be a number, not text (got '60'): write 60 without quotes"),
    ("target: '2.5e6'", "`target` must be a number, not text (got '2.5e6'): write 2.5e6 without quotes"),
    ("must_win: 'true'", "`must_win` must be true or false (got 'true'): write true without quotes"),
    ("must_win: yes please", "`must_win` must be true or false (got 'yes please')"),
    ("must_win: 1", "`must_win` must be true or false (got 1)"),
    ("last_reviewed: true", "`last_reviewed` must be an ISO date like 2026-10-02 (got true)"),
    ("name: 2026-01-05", "`name` must be text (got a date 2026-01-05); quote it"),
    ("name: 12", "`name` must be text (got a number 12); quote it"),
    ("name: no", "`name` must be text (got true/false: yes, no, on, off, true and false are read as one); quote it"),
])
def test_a_number_or_boolean_written_as_something_else_is_refused_on_both_paths(written, message):
    # pydantic's lax mode read `value: "12"` as 12 and `value: true` as 1: the plan said neither.
    key, _, value = written.partition(": ")
    data = load_path(MUTATED[0]).data
    parent = {"priority": data["opportunities"][0], "value": data["opportunities"][0],
              "share": data["routes_to_market"]["routes"][0], "target": data["team"],
              "must_win": data["opportunities"][0], "last_reviewed": data["plan"],
              "name": data["opportunities"][0]}[key]
    assert key in parent
    text = f"{key}: {value}\n"
    parent[key] = load_bytes(text.encode(), "value.yaml").data[key]
    assert plan_shape.plain_plan(data) is None
    assert pydantic_records(data) is None
    with pytest.raises(PlanError) as error:
        model.validate_fields(data, load_path(MUTATED[0]))
    assert [problem.message for problem in error.value.problems] == [message]


def test_identity_and_reference_problems_are_found_on_the_plain_path():
    text = (ROOT / "facts" / "nordvik-insurance.yaml").read_text()
    document = load_bytes(text.replace("sponsor: [", "sponsor: [nobody, ", 1).encode(), "plan.yaml")
    assert plan_shape.plain_plan(document.data) is not None
    with pytest.raises(PlanError) as error:
        plan_shape.validate(document)
    assert any("unknown contact `nobody`" in problem.message for problem in error.value.problems)


def test_records_are_read_only_and_survive_the_cache():
    plan = plan_shape.validate(load_path(SAMPLES[0]))
    with pytest.raises(AttributeError):
        plan.account = None
    assert pickle.loads(pickle.dumps(plan)) == plan


def test_checking_a_plain_plan_does_not_import_pydantic(tmp_path):
    """Start-up time: pydantic and the models cost more than a whole yamllint run (bench/README.md)."""
    plan = tmp_path / "plan.yaml"
    plan.write_bytes((ROOT / "facts" / "nordvik-insurance.yaml").read_bytes())
    script = ("import sys\nfrom ssm_rules.cli import main\n"
              "try:\n    main(['check', sys.argv[1], '--as-of', '2026-11-27', '--cache-dir', sys.argv[2]])\n"
              "except SystemExit:\n    pass\n"
              "print('pydantic' in sys.modules)\n")
    command = [sys.executable, "-c", script, str(plan), str(tmp_path / "cache")]
    subprocess.run(command, capture_output=True, check=True)  # fills the cache (rule packs)
    plan.write_bytes(plan.read_bytes() + b"\n# a new version of the file\n")
    result = subprocess.run(command, capture_output=True, text=True, check=True)
    assert result.stdout.strip().splitlines()[-1] == "False", result.stdout + result.stderr


def test_an_unknown_contact_giving_an_outcome_is_found_on_the_plain_path():
    text = SPEC_EXAMPLE.read_text()
    document = load_bytes(text.replace("by: [li-wei]", "by: [li-way]", 1).encode(), "plan.yaml")
    assert plan_shape.plain_plan(document.data) is not None
    with pytest.raises(PlanError) as plain_error:
        plan_shape.validate(document)
    with pytest.raises(PlanError) as model_error:
        model.validate(document)
    assert plain_error.value.problems == model_error.value.problems
    [problem] = plain_error.value.problems
    assert problem.path == "opportunities[0].outcomes.go_forward.by[0]"
    assert problem.message.startswith("unknown contact `li-way`: did you mean `li-wei`?")
