"""Numbers in plans: finite, within range, and added up the way a person reads them.

A non-finite number once switched every rule off (the engine's C core dropped the batch: 0
findings, exit 0), a NaN share passed the 100% check, and 10.1 + 64.1 + 25.8 was reported as
"99.99999999999999%, not 100%". Each case here goes through the whole `ssm check`.
"""

from __future__ import annotations

import json
import shutil

import pytest
import yaml

from conftest import FACTS
from ssm_rules import model, plan_shape
from ssm_rules.errors import PlanError
from ssm_rules.loader import load_bytes

AS_OF = "2026-11-27"
BANK = FACTS / "banca-valdadige.yaml"  # routes: direct 70, business_partner 30; 8 findings


def check(runner, path, *extra):
    return runner.invoke(main_command(), ["check", str(path), "--as-of", AS_OF, "--isolated", "--no-cache", *extra])


def main_command():
    from ssm_rules.cli import main

    return main


def bank_with(tmp_path, old: str, new: str, name: str = "bank.yaml"):
    text = BANK.read_text(encoding="utf-8")
    assert old in text
    path = tmp_path / name
    path.write_text(text.replace(old, new, 1), encoding="utf-8")
    return path


def line_of(path, needle: str) -> int:
    return next(number for number, line in enumerate(path.read_text().splitlines(), 1) if needle in line)


@pytest.mark.parametrize("written, shown", [
    (".inf", "inf"), ("-.inf", "-inf"), (".nan", "nan"), ("1e309", "inf"), ("1.0e+309", "inf"),
])
def test_a_non_finite_share_is_a_validation_error_with_its_place(runner, tmp_path, written, shown):
    plan = bank_with(tmp_path, "share: 70", f"share: {written}")
    result = check(runner, plan)
    assert result.exit_code == 1, result.output
    line = line_of(plan, f"share: {written}")
    assert f"bank.yaml:{line}:7: error: `share` must be a finite number (got {shown})" in result.output
    assert "1 invalid" in result.output


@pytest.mark.parametrize("field, old", [("target", "target: 3900000"), ("value", "value: 3200000"),
                                        ("client_spend", "client_spend: 2600000")])
def test_a_non_finite_amount_is_a_validation_error_not_a_clean_plan(runner, tmp_path, field, old):
    plan = bank_with(tmp_path, old, f"{field}: .inf")
    result = check(runner, plan, "--format", "json")
    assert result.exit_code == 1
    (checked,) = json.loads(result.output)["plans"]
    (error,) = checked["errors"]
    assert error["message"] == f"`{field}` must be a finite number (got inf)"
    assert error["location"]["line"] == line_of(plan, f"{field}: .inf")


def test_1e400_in_a_json_plan_is_a_validation_error(runner, tmp_path):
    data = yaml.safe_load(BANK.read_text())
    text = json.dumps(data, default=str, indent=1).replace("3900000", "1e400")
    plan = tmp_path / "bank.json"
    plan.write_text(text)
    result = check(runner, plan)
    assert result.exit_code == 1
    assert f"bank.json:{line_of(plan, '1e400')}:3: error: `target` must be a finite number (got inf)" in result.output


def test_a_whole_number_too_large_for_a_float_field_is_an_error_not_a_crash(runner, tmp_path):
    plan = bank_with(tmp_path, "value: 3200000", "value: " + "9" * 400)
    result = check(runner, plan)
    assert result.exit_code == 1, result.output
    assert "internal error" not in result.output
    assert f"bank.yaml:{line_of(plan, '9999')}:5: error: `value` must be a finite number (got 9999" in result.output
    assert "(400 characters)" in result.output  # the message quotes the number cut short


@pytest.mark.parametrize("amount", ["1.7e308", "-1.7e308", str(2**53)])
def test_money_past_2_53_is_refused_the_pipeline_adds_it_up(runner, tmp_path, amount):
    # Two values of 1.7e308 add up to infinity: the pipeline review's totals overflowed (a crash).
    plan = bank_with(tmp_path, "value: 3200000", f"value: {amount}")
    result = check(runner, plan)
    assert result.exit_code == 1, result.output
    assert "internal error" not in result.output
    bound = "at most 9,007,199,254,740,991" if not amount.startswith("-") else "at least 0"
    assert f"bank.yaml:{line_of(plan, 'value: ' + amount)}:5: error: `value` must be {bound}" in result.output


@pytest.mark.parametrize("field, old, amount", [("value", "value: 3200000", "-5"),
                                                ("value", "value: 3200000", "-0.01"),
                                                ("client_spend", "client_spend: 2600000", "-1"),
                                                ("target", "target: 3900000", "-2500000")])
def test_negative_money_is_refused_it_would_lower_the_pipeline_totals(runner, tmp_path, field, old, amount):
    # `value: -5` was accepted: the deal then took 5 off the open and unsupported pipeline value.
    plan = bank_with(tmp_path, old, f"{field}: {amount}")
    result = check(runner, plan)
    assert result.exit_code == 1, result.output
    assert f"error: `{field}` must be at least 0 (got {amount})" in result.output


def test_a_priority_past_2_53_is_refused_the_engine_would_take_two_for_one(runner, tmp_path):
    # Past 2**63 the C core compares such numbers as equal: a false "shared priority" finding.
    plan = bank_with(tmp_path, "priority: 1\n", f"priority: {2**63 + 1}\n")
    result = check(runner, plan)
    assert result.exit_code == 1
    assert "`priority` must be at most 9,007,199,254,740,991 (got 9223372036854775809)" in result.output


@pytest.mark.parametrize("share, message", [("-5", "`share` must be at least 0 (got -5)"),
                                            ("-0.5", "`share` must be at least 0 (got -0.5)")])
def test_a_negative_share_is_invalid(runner, tmp_path, share, message):
    plan = bank_with(tmp_path, "share: 70", f"share: {share}")
    result = check(runner, plan)
    assert result.exit_code == 1
    assert f"bank.yaml:{line_of(plan, 'share: ' + share)}:7: error: {message}" in result.output


@pytest.mark.parametrize("value", [float("inf"), float("-inf"), float("nan"), 10**400, -5.0, -(10**400)])
def test_both_validation_paths_refuse_the_same_numbers_with_the_same_message(value):
    data = yaml.safe_load(BANK.read_text())
    data["routes_to_market"]["routes"][0]["share"] = value
    document = load_bytes(yaml.safe_dump(data).encode(), "bank.yaml")
    assert plan_shape.plain_plan(document.data) is None  # not plain: pydantic words the error
    with pytest.raises(PlanError) as plain:
        plan_shape.validate(document)
    with pytest.raises(PlanError) as pydantic:
        model.validate(document)
    assert plain.value.problems == pydantic.value.problems
    assert plain.value.problems[0].path == "routes_to_market.routes[0].share"


def test_every_number_field_of_the_model_is_bounded():
    """A new float field is finite and a new int field within 2**53 unless someone decides
    otherwise: the shape the plain path checks says so for every numeric field."""
    shape = json.loads(plan_shape.SHAPE_FILE.read_text())
    numeric = [(name, field, spec) for name, fields in shape["models"].items() for field, spec in fields.items()
               if spec["type"] in ("int", "float")]
    assert numeric
    for name, field, spec in numeric:
        if spec["type"] == "float":
            assert spec.get("finite") is True, f"{name}.{field}"
            assert spec.get("maximum") == model.MAX_WHOLE or field == "share", f"{name}.{field}"
        else:
            assert spec.get("maximum") == model.MAX_WHOLE and spec.get("minimum") == -model.MAX_WHOLE, \
                f"{name}.{field}"


def test_shares_written_in_decimals_add_up_to_100(runner, tmp_path):
    plan = bank_with(tmp_path, "      share: 70\n    - route: business_partner\n      share: 30\n",
                     "      share: 10.1\n    - route: business_partner\n      share: 64.1\n"
                     "    - route: distributor\n      share: 25.8\n")
    assert 10.1 + 64.1 + 25.8 != 100  # what a plain sum gives
    result = check(runner, plan, "--format", "json")
    rules = [finding["rule"] for finding in json.loads(result.output)["plans"][0]["findings"]]
    assert "SSM-RTM-002" not in rules


def test_shares_that_miss_100_are_reported_with_the_rounded_total(runner, tmp_path):
    plan = bank_with(tmp_path, "      share: 70\n    - route: business_partner\n      share: 30\n",
                     "      share: 10.1\n    - route: business_partner\n      share: 64.1\n"
                     "    - route: distributor\n      share: 25.7\n")
    result = check(runner, plan)
    assert "add up to 99.9%, not 100%." in result.output
    assert "(now 99.9)" in result.output


def test_tiny_and_huge_amounts_reach_the_rules(runner, tmp_path):
    """0.00001 is written `1e-05` by Python, which the engine's C core cannot read: the rest of
    the batch used to be dropped silently (no finding on the plan at all)."""
    expected = check(runner, BANK, "--format", "json")
    shutil.copy(BANK, tmp_path / "same.yaml")
    baseline = json.loads(expected.output)["plans"][0]["findings"]
    assert len(baseline) == 8
    # (Money is bounded by 2**53, which Python writes without an exponent; a share is not.)
    for old, new in (("share: 70", "share: 0.00001"), ("share: 70", "share: 1.0e+300"),
                     ("value: 3200000", "value: 0.00001"), ("target: 3900000", "target: 0.0000002")):
        plan = bank_with(tmp_path, old, new)
        result = check(runner, plan, "--format", "json")
        assert result.exit_code == 1
        findings = json.loads(result.output)["plans"][0]["findings"]
        # Every rule still ran (the share now misses 100%, one finding more).
        assert {f["rule"] for f in baseline} <= {f["rule"] for f in findings}, new


def test_a_number_with_an_exponent_is_a_number_in_a_plan(runner, tmp_path):
    # YAML 1.1 reads `2.5e6` as text; a number field refuses text, so the loader reads it as
    # YAML 1.2, JSON and a person do.
    from ssm_rules.loader import load_bytes

    data = load_bytes(b"a: 2.5e6\nb: 1e3\nc: -4E2\nd: '1e3'\n", "x.yaml").data
    assert data == {"a": 2500000.0, "b": 1000.0, "c": -400.0, "d": "1e3"}
    plan = bank_with(tmp_path, "share: 70", "share: 7e1")
    result = check(runner, plan)
    assert "0 invalid" in result.output and "share" not in result.output, result.output
