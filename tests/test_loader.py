"""Tests for ssm_rules.loader: positions, every error the loader reports, and hostile files."""

from __future__ import annotations

import datetime
import json
import math
import os
import random
import subprocess
import sys
import textwrap
import time
import timeit
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import SPEC_EXAMPLE
from ssm_rules import loader
from ssm_rules.errors import PlanError, PlanProblem
from ssm_rules.loader import DEFAULT_MAX_BYTES, Document, load_bytes, load_path, read_path

EXAMPLE = SPEC_EXAMPLE  # the complete example plan of docs/plan-format.md


def load(text: str | bytes, filename: str = "plan.yaml", **limits) -> Document:
    raw = text.encode() if isinstance(text, str) else text
    return load_bytes(raw, filename, **limits)


def problems_of(text: str | bytes, filename: str = "plan.yaml", **limits) -> list[PlanProblem]:
    with pytest.raises(PlanError) as caught:
        load(text, filename, **limits)
    assert caught.value.problems, "a PlanError must carry at least one problem"
    return caught.value.problems


def the_problem(text: str | bytes, filename: str = "plan.yaml", **limits) -> PlanProblem:
    found = problems_of(text, filename, **limits)
    assert len(found) == 1, found
    return found[0]


def billion_laughs(levels: int = 9) -> bytes:
    lines = ['a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    names = "abcdefghijklmnopqrstuvwxyz"
    for level in range(1, levels):
        name, below = names[level], names[level - 1]
        lines.append(f"{name}: &{name} [{', '.join(['*' + below] * 9)}]")
    return ("\n".join(lines) + "\n").encode()


@pytest.fixture(params=["libyaml", "pure-python"])
def any_loader(request, monkeypatch):
    """Run a test with CSafeLoader and with the pure-Python SafeLoader fallback."""
    if request.param == "pure-python":
        monkeypatch.setattr(loader, "_Loader", yaml.SafeLoader)
    elif not yaml.__with_libyaml__:
        pytest.skip("PyYAML was built without libyaml")
    return request.param


# --- data and positions ---------------------------------------------------------------------

SAMPLE = """\
format: ssm-plan/1
account:
  id: acme
contacts:
  - id: li-wei
    name: Li Wei
  -
    id: ana
opportunities:
  - id: omni
    components: [apps, middleware]
    buying_unit:
      sponsor:
        - li-wei
        - - nested
          - deeper
"""


def test_positions_of_keys_and_items(any_loader):
    doc = load(SAMPLE)
    expected = {
        "format": (1, 1),
        "account": (2, 1),
        "account.id": (3, 3),
        "contacts": (4, 1),
        "contacts[0]": (5, 5),  # `- id: x`: the line of the item, the column of `id`
        "contacts[0].id": (5, 5),
        "contacts[0].name": (6, 5),
        "contacts[1]": (8, 5),  # the item's node starts on the line after the bare `-`
        "contacts[1].id": (8, 5),
        "opportunities": (9, 1),
        "opportunities[0]": (10, 5),
        "opportunities[0].id": (10, 5),
        "opportunities[0].components": (11, 5),
        "opportunities[0].components[0]": (11, 18),
        "opportunities[0].components[1]": (11, 24),
        "opportunities[0].buying_unit": (12, 5),
        "opportunities[0].buying_unit.sponsor": (13, 7),
        "opportunities[0].buying_unit.sponsor[0]": (14, 11),
        "opportunities[0].buying_unit.sponsor[1]": (15, 11),
        "opportunities[0].buying_unit.sponsor[1][0]": (15, 13),
        "opportunities[0].buying_unit.sponsor[1][1]": (16, 13),
    }
    assert doc.positions == expected  # every entry and item, nothing else
    assert doc.data["opportunities"][0]["buying_unit"]["sponsor"] == ["li-wei", ["nested", "deeper"]]


def test_locate_falls_back_to_the_nearest_ancestor():
    doc = load(SAMPLE)
    assert doc.locate("account.id") == (3, 3)
    assert doc.locate("account.name") == (2, 1)  # missing key: where it should be added
    assert doc.locate("contacts[0].owner") == (5, 5)
    assert doc.locate("contacts[7].id") == (4, 1)
    assert doc.locate("opportunities[0].buying_unit.sponsor[1][1]") == (16, 13)
    assert doc.locate("nothing.at.all") == (1, 1)
    assert doc.locate("") == (1, 1)


def test_example_plan_matches_safe_load():
    raw = EXAMPLE.read_bytes()
    doc = load_bytes(raw, str(EXAMPLE))
    assert doc.data == yaml.safe_load(raw)
    assert doc.data["plan"]["last_reviewed"] == datetime.date(2026, 10, 2)
    assert doc.data["contacts"][0]["plan"] is None
    assert doc.data["opportunities"][0]["value"] == 1200000
    assert doc.data["contacts"][1]["name"] == "Ana López"
    # Lines found in the text, so that adding a field to the example moves nothing here.
    lines = raw.decode("utf-8").splitlines()
    name_line = lines.index("    name: Ana López") + 1
    sponsor_line = lines.index("      sponsor: [ana-lopez]") + 1
    assert doc.locate("contacts[1].name") == (name_line, 5)
    assert doc.locate("opportunities[0].buying_unit.sponsor[0]") == (sponsor_line, 17)
    assert doc.locate("opportunities[0].buying_unit.sponsor") == (sponsor_line, 7)


def test_scalar_types():
    doc = load(
        "a: 2026-10-02\nb: 2026-10-02 10:30:00\nc: 12\nd: 1.5\ne: true\nf: null\ng: ~\nh: '12'\n"
        "i: !!str 12\nj: =\nk:\n"
    )
    assert doc.data == {
        "a": datetime.date(2026, 10, 2),
        "b": datetime.datetime(2026, 10, 2, 10, 30),
        "c": 12,
        "d": 1.5,
        "e": True,
        "f": None,
        "g": None,
        "h": "12",
        "i": "12",
        "j": "=",
        "k": None,
    }


def test_bom_is_accepted_and_does_not_shift_columns(any_loader):
    doc = load(b"\xef\xbb\xbf" + SAMPLE.encode())
    assert doc.positions == load(SAMPLE).positions
    assert "format" in doc.data


def test_crlf_line_endings(any_loader):
    text = SAMPLE + "notes: |\n  first\n  second\n"
    lf = load(text)
    crlf = load(text.replace("\n", "\r\n"))
    assert crlf.positions == lf.positions
    assert crlf.data == lf.data
    assert crlf.data["notes"] == "first\nsecond\n"


def test_aliased_list_item_is_located_where_the_alias_is_written(any_loader):
    doc = load("defaults: &c {id: x, name: X}\nlist:\n  - *c\n  - y\n  - [*c]\n")
    assert doc.data["list"] == [{"id": "x", "name": "X"}, "y", [{"id": "x", "name": "X"}]]
    assert doc.locate("list[0]") == (3, 5)
    assert doc.locate("list[1]") == (4, 5)
    assert doc.locate("list[2][0]") == (5, 6)
    # Inside the expansion, values are found where they are written: at the anchor.
    assert doc.locate("list[0].name") == (1, 22)
    # Each expansion is its own object, as if it had been written out.
    assert doc.data["list"][0] is not doc.data["defaults"]


def test_merge_keys_behave_like_safe_load():
    text = textwrap.dedent(
        """\
        base: &base {owner: jane, influence: low}
        other: &other {influence: high, attitude: neutral}
        contact:
          <<: [*base, *other]
          influence: medium
        """
    )
    doc = load(text)
    assert doc.data == yaml.safe_load(text)
    assert doc.data["contact"] == {"owner": "jane", "influence": "medium", "attitude": "neutral"}
    assert doc.locate("contact.influence") == (5, 3)  # written here: wins over the merged ones
    assert doc.locate("contact.owner") == (1, 14)  # merged: found where the value is written
    assert doc.locate("contact.attitude") == (2, 33)


def test_nested_merges_and_inline_sources():
    text = textwrap.dedent(
        """\
        a: &a {x: 1, w: 0}
        b: &b {<<: *a, y: 2}
        c: {<<: [*b, *a], z: 3}
        d: {<<: {v: 4}, w: 5}
        """
    )
    doc = load(text)
    assert doc.data == yaml.safe_load(text)
    assert doc.data["c"] == {"x": 1, "w": 0, "y": 2, "z": 3}
    assert doc.locate("c.x") == (1, 8)
    assert doc.locate("d.v") == (4, 10)


def test_odd_but_valid_inputs():
    assert load("=: 1\n").data == {"=": 1}  # YAML 1.1 "value key": just text for a plan
    assert load_bytes(bytearray(b"a: 1\n"), "p.yaml").data == {"a": 1}
    assert load_bytes(memoryview(b"a: 1\n"), "p.yaml").data == {"a": 1}
    assert load("!!map {a: !!seq [1], b: !!str 2}\n").data == {"a": [1], "b": "2"}


# --- errors: the text and the line ----------------------------------------------------------


def test_duplicate_key(any_loader):
    problem = the_problem("account:\n  id: a\n  name: x\n  name: y\n")
    assert problem.message == "duplicate key 'name' (first defined at line 3)"
    assert (problem.line, problem.column, problem.path) == (4, 3, "account.name")


def test_duplicate_keys_are_all_reported_and_the_first_value_kept():
    found = problems_of("a: 1\nb: 2\na: 3\nl:\n  - {x: 1, x: 2}\nb: 4\n")
    assert [(p.message, p.line, p.path) for p in found] == [
        ("duplicate key 'a' (first defined at line 1)", 3, "a"),
        ("duplicate key 'x' (first defined at line 5)", 5, "l[0].x"),
        ("duplicate key 'b' (first defined at line 2)", 6, "b"),
    ]


def test_problem_count_is_capped():
    text = "a: 0\n" + "".join("a: 1\n" for _ in range(500))
    found = problems_of(text)
    assert len(found) == 101
    assert found[-1].message == "stopped after 100 problems"


@pytest.mark.parametrize(
    "text, message, line, column",
    [
        (
            "account:\n  id: a: b\n",
            "invalid YAML: mapping values are not allowed in this context; a value that contains"
            " ': ' must be quoted, or the indentation is off",
            2,
            8,
        ),
        (
            "a:\n  b: 1\n c: 2\n",
            "invalid YAML: did not find expected key (while parsing a block mapping at line 1);"
            " check this line's indentation against the keys above it",
            3,
            2,
        ),
        (
            "a: [1, 2\nb: 3\n",
            "invalid YAML: did not find expected ',' or ']' (while parsing a flow sequence at line 1)",
            2,
            2,
        ),
        (
            'a: 1\nb: "abc\nc: 2\n',
            "a quoted value is never closed: the quote at line 2, column 4 has no matching end quote",
            2,
            4,
        ),
        ("a:\n\tb: 1\n", "a tab character is used for indentation: YAML needs spaces", 2, 1),
        (
            "a: 1\n---\nb: 2\n",
            "the file holds more than one YAML document (another starts at line 2): a plan is one document",
            2,
            1,
        ),
        ("a: 1\nb: *nope\n", "alias '*nope' is used, but no anchor '&nope' is defined before it", 2, 4),
        ("a: &x 1\nb: &x 2\n", "anchor '&x' is defined twice (first at line 1)", 2, 4),
    ],
)
def test_yaml_syntax_errors(text, message, line, column):
    problem = the_problem(text)
    assert (problem.message, problem.line, problem.column) == (message, line, column)


def test_yaml_syntax_errors_with_the_pure_python_loader(monkeypatch):
    monkeypatch.setattr(loader, "_Loader", yaml.SafeLoader)
    problem = the_problem("account:\n  id: a: b\n")
    assert problem.message.startswith("invalid YAML: mapping values are not allowed here")
    assert problem.line == 2
    assert the_problem("a: 1\n---\nb: 2\n").line == 2


@pytest.mark.parametrize(
    "tag",
    [
        "!!python/object/apply:os.system",
        "!!python/object:builtins.dict",
        "!!python/name:os.system",
        "!!binary",
        "!!set",
        "!!omap",
        "!custom",
    ],
)
def test_disallowed_tags(tag, any_loader):
    problem = the_problem(f"format: ssm-plan/1\naccount:\n  id: {tag} x\n")
    assert problem.message == (
        f"tag '{tag}' is not allowed: plans are data (plain mappings, lists, text, numbers, true/false and dates)"
    )
    assert (problem.line, problem.column, problem.path) == (3, 7, "account.id")


def test_python_tags_never_run_code(tmp_path, any_loader):
    marker = tmp_path / "pwned"
    text = (
        f"a: !!python/object/apply:os.system ['touch {marker}']\n"
        f"b: !!python/object/apply:subprocess.call [['touch', '{marker}']]\n"
        f"!!python/object/apply:os.system ['touch {marker}']: 1\n"
    )
    found = problems_of(text)
    assert [p.line for p in found] == [1, 2, 3]
    assert not marker.exists()
    top = the_problem(f"!!python/object/apply:os.system ['touch {marker}']\n")
    assert "is not allowed: plans are data" in top.message
    assert not marker.exists()


@pytest.mark.parametrize(
    "key, shown, kind",
    [("1", "1", "a number"), ("null", "null", "null"), ("~", "~", "null"), ("yes", "yes", "a true/false value"),
     ("2026-01-01", "2026-01-01", "a date"), ("1.5", "1.5", "a number")],
)
def test_keys_must_be_text(key, shown, kind):
    problem = the_problem(f"format: ssm-plan/1\naccount:\n  {key}: x\n")
    assert problem.message == (
        f"the key {shown} is read as {kind}, but keys must be text: quote it ('{key}':) or fix the key"
    )
    assert (problem.line, problem.column) == (3, 3)


def test_collection_keys_are_refused():
    problem = the_problem("a: 1\n? [x, y]\n: 2\n")
    assert problem.message == "a key must be text, found a list used as a key"
    assert problem.line == 2


def test_quoted_keys_are_fine():
    assert load("'1': x\n'null': y\n").data == {"1": "x", "null": "y"}


def test_problems_inside_an_inline_merge_source():
    found = problems_of("c: {<<: {x: 1, x: 2, 1: y}}\n")
    assert [(p.message, p.line, p.column) for p in found] == [
        ("duplicate key 'x' (first defined at line 1)", 1, 16),
        ("the key 1 is read as a number, but keys must be text: quote it ('1':) or fix the key", 1, 22),
    ]


def test_mapping_key_is_refused():
    problem = the_problem("a: 1\n? {b: 1}\n: 2\n")
    assert problem.message == "a key must be text, found a mapping used as a key"
    assert (problem.line, problem.column) == (2, 3)


@pytest.mark.parametrize(
    "text, message",
    [
        ("a: !!int abc\n", "'abc' is not a valid !!int value"),
        ("a: 2026-02-30\n", "'2026-02-30' is not a valid date (day is out of range for month)"),
        ("a: !!bool maybe\n", "'maybe' is not a valid !!bool value"),
        ("a: " + "7" * 5000 + "\n", "the number '7777777777777777777777777777777777777...' has too many digits"),
    ],
)
def test_bad_scalars(text, message):
    problem = the_problem(text)
    assert (problem.message, problem.line, problem.path) == (message, 1, "a")


@pytest.mark.parametrize("text", ["", "\n\n", "# only a comment\n# and another\n", "---\n", "--- # c\n...\n"])
def test_empty_file(text):
    problem = the_problem(text)
    assert problem.message == "the file is empty: a plan needs `format: ssm-plan/1` and an `account`"
    assert problem.line == 1


@pytest.mark.parametrize(
    "text, found, line",
    [
        ("- a\n- b\n", "a list", 1),
        ("# c\nhello\n", "a text value", 2),
        ("42\n", "a number", 1),
        ("null\n", "null", 1),
        ("[1, 2]\n", "a list", 1),
    ],
)
def test_top_level_must_be_a_mapping(text, found, line):
    problem = the_problem(text)
    assert problem.message == f"a plan must be a mapping (key: value pairs) at the top level, found {found}"
    assert problem.line == line


def test_invalid_utf8():
    problem = the_problem("format: ssm-plan/1\naccount:\n  name: Caf".encode() + b"\xe9\n")
    assert problem.message == "not valid UTF-8 at line 3: byte 0xe9 at offset 39 (column 12); save the file as UTF-8"
    assert (problem.line, problem.column) == (3, 12)


def test_utf16_is_refused():
    problem = the_problem("a: 1\n".encode("utf-16"))
    assert problem.message.startswith("not valid UTF-8 at line 1: the file is UTF-16")


def test_control_character(any_loader):
    problem = the_problem(b"a: 1\nb: x\x07y\n")
    assert problem.message == "the file contains a control character (U+0007) at line 2: YAML text cannot contain it"
    assert (problem.line, problem.column) == (2, 5)
    assert the_problem(b"a: \x00\n").line == 1


# --- bounds ---------------------------------------------------------------------------------


def test_size_limit_in_load_bytes():
    problem = the_problem(b"a: 1\n" + b"#" * 100, max_bytes=64)
    assert problem.message == (
        "the file is too big: 105 bytes, the limit is 64 bytes (a plan is normally a few kilobytes)"
    )
    assert load(b"a: 1\n", max_bytes=5).data == {"a": 1}
    assert DEFAULT_MAX_BYTES == 5 * 1024 * 1024


def test_size_limit_in_load_path_is_checked_before_reading(tmp_path, monkeypatch):
    big = tmp_path / "big.yaml"
    with open(big, "wb") as handle:
        handle.truncate(DEFAULT_MAX_BYTES + 1)  # sparse: costs no disk

    def no_open(*args, **kwargs):
        raise AssertionError("the file was opened although stat() said it is too big")

    monkeypatch.setattr(loader, "open", no_open, raising=False)
    with pytest.raises(PlanError) as caught:
        load_path(big)
    assert caught.value.problems[0].message == (
        f"the file is too big: {DEFAULT_MAX_BYTES + 1:,} bytes, the limit is {DEFAULT_MAX_BYTES:,} bytes"
        " (a plan is normally a few kilobytes)"
    )
    with pytest.raises(PlanError, match="the limit is 10 bytes"):
        load_path(big, max_bytes=10)


def test_load_path(tmp_path):
    plan = tmp_path / "plan.yaml"
    plan.write_bytes(EXAMPLE.read_bytes())
    assert load_path(plan).data == load_path(str(plan)).data == yaml.safe_load(EXAMPLE.read_bytes())
    as_json = tmp_path / "plan.JSON"
    as_json.write_text(json.dumps({"format": "ssm-plan/1"}))
    assert load_path(as_json).data == {"format": "ssm-plan/1"}


def test_read_path_returns_the_checked_bytes(tmp_path):
    plan = tmp_path / "plan.yaml"
    plan.write_bytes(b"a: 1\n")
    assert read_path(plan) == b"a: 1\n"
    with pytest.raises(PlanError, match="the limit is 3 bytes"):
        read_path(plan, max_bytes=3)
    with pytest.raises(PlanError, match="the file does not exist"):
        read_path(tmp_path / "missing.yaml")


def test_load_path_unreadable(tmp_path):
    with pytest.raises(PlanError) as caught:
        load_path(tmp_path / "missing.yaml")
    assert caught.value.problems == [PlanProblem("the file does not exist")]
    with pytest.raises(PlanError, match="this is a directory, not a plan file"):
        load_path(tmp_path)
    fifo = tmp_path / "pipe.yaml"
    os.mkfifo(fifo)
    with pytest.raises(PlanError, match="this is not a regular file"):
        load_path(fifo)  # must not block waiting for a writer
    if os.geteuid() != 0:  # root reads anything
        locked = tmp_path / "locked.yaml"
        locked.write_text("a: 1\n")
        locked.chmod(0)
        with pytest.raises(PlanError, match="permission denied"):
            load_path(locked)


def test_load_path_oserrors(tmp_path, monkeypatch):
    with pytest.raises(PlanError) as caught:
        load_path(tmp_path / ("x" * 5000))
    assert caught.value.problems[0].message == "cannot read the file: File name too long"

    plan = tmp_path / "plan.yaml"
    plan.write_text("a: 1\n")

    def denied(*args, **kwargs):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(loader, "open", denied, raising=False)
    with pytest.raises(PlanError) as caught:
        load_path(plan)
    assert caught.value.problems == [PlanProblem("cannot read the file: permission denied")]


def test_load_path_file_growing_after_stat(tmp_path, monkeypatch):
    plan = tmp_path / "plan.yaml"
    plan.write_text("a: 1\n" * 100)
    real_stat = os.stat

    def stale_stat(path, *args, **kwargs):
        result = list(real_stat(path, *args, **kwargs))
        result[6] = 5  # st_size: as it was before someone appended to the file
        return os.stat_result(result)

    monkeypatch.setattr(loader.os, "stat", stale_stat)
    with pytest.raises(PlanError) as caught:
        load_path(plan, max_bytes=64)
    assert caught.value.problems[0].message.startswith("the file is too big: more than 64 bytes, the limit is 64 bytes")


def test_unexpected_errors_become_plan_problems(monkeypatch):
    def boom(*args):
        raise RuntimeError("boom")

    monkeypatch.setattr(loader._Walker, "mapping", boom)
    problem = the_problem("a: 1\n")
    assert problem.message == "could not read the plan (RuntimeError: boom)"


def test_alias_bomb_fails(any_loader):
    problem = the_problem(billion_laughs(9))
    assert problem.message == "too many nodes after alias expansion (limit 200,000): is this an alias bomb?"
    # The alias being expanded when the budget ran out, as written in the file (line of `f:`).
    assert (problem.line, problem.path) == (6, "f[1]")


@pytest.mark.slow
def test_alias_bomb_fails_fast(any_loader):
    started = time.perf_counter()
    the_problem(billion_laughs(9))
    assert time.perf_counter() - started < 1.0


def test_alias_bomb_is_also_stopped_by_the_walk(monkeypatch):
    # Defence in depth: even without the up-front size check, the walk's own count stops it.
    monkeypatch.setattr(loader, "_check_expansion", lambda *args: None)
    problem = the_problem(billion_laughs(9))
    assert problem.message == "too many nodes after alias expansion (limit 200,000): is this an alias bomb?"
    assert (problem.line, problem.path) == (6, "f[1]")


@pytest.mark.slow
def test_alias_bomb_stopped_by_the_walk_is_bounded_in_time(monkeypatch):
    monkeypatch.setattr(loader, "_check_expansion", lambda *args: None)
    started = time.perf_counter()
    the_problem(billion_laughs(9))
    # It walks max_nodes values first (about 0.3 s on an idle machine): bounded, not fast.
    assert time.perf_counter() - started < 3.0


def test_alias_bomb_memory_in_a_fresh_process(tmp_path):
    bomb = tmp_path / "bomb.yaml"
    bomb.write_bytes(billion_laughs(9))
    script = textwrap.dedent(
        f"""
        import sys, time
        sys.path.insert(0, {str(Path(__file__).parent.parent)!r})
        from ssm_rules.loader import load_path
        from ssm_rules.errors import PlanError
        started = time.perf_counter()
        try:
            load_path({str(bomb)!r})
        except PlanError as error:
            assert "alias bomb" in error.problems[0].message, error.problems
        else:
            raise SystemExit("the bomb loaded")
        elapsed = time.perf_counter() - started
        # VmHWM, not ru_maxrss: Linux carries ru_maxrss across fork+exec, so a child of a big
        # pytest process would report the parent's peak. VmHWM belongs to this process's memory.
        with open("/proc/self/status") as status:
            peak_mb = next(int(line.split()[1]) for line in status if line.startswith("VmHWM:")) / 1024
        print(elapsed, peak_mb)
        """
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    elapsed, peak_mb = map(float, result.stdout.split())  # the time: test_alias_bomb_fails_fast
    assert peak_mb < 200  # the whole process, interpreter included


def merge_key_bomb() -> str:
    lines = ["a0: &a0 {k: [1, 2, 3, 4, 5, 6, 7, 8]}"]
    for level in range(1, 20):
        lines.append(f"a{level}: &a{level} {{x: *a{level - 1}, y: *a{level - 1}, <<: *a{level - 1}}}")
    return "\n".join(lines) + "\n"


def test_alias_bomb_from_merge_keys_is_bounded():
    assert "alias bomb" in the_problem(merge_key_bomb()).message


@pytest.mark.slow
def test_alias_bomb_from_merge_keys_fails_fast():
    started = time.perf_counter()
    the_problem(merge_key_bomb())
    assert time.perf_counter() - started < 1.0


def test_many_values_without_aliases():
    problem = the_problem("a: 1\nb: [" + "1, " * 1000 + "]\n", max_nodes=500)
    assert problem.message == "the plan has too many values (limit 500): a plan is far smaller than this"
    assert (problem.line, problem.path) == (2, "b")


def test_walk_counts_mappings_and_merges(monkeypatch):
    problem = the_problem("a: 1\nb: 2\nc: 3\nd: 4\n", max_nodes=3)
    assert problem.message == "the plan has too many values (limit 3): a plan is far smaller than this"
    assert (problem.line, problem.column) == (1, 1)
    monkeypatch.setattr(loader, "_check_expansion", lambda *args: None)
    problem = the_problem("d: &d {x: 1, y: 2}\ne: {<<: *d}\n", max_nodes=6)
    assert problem.message == "too many nodes after alias expansion (limit 6): is this an alias bomb?"
    assert problem.line == 2


def test_text_aliases_follow_the_written_structure():
    raw = b"a: &a [1]\n? [k, *a]\n: v\nb: {c: [*a, {d: *a}], e: *a}\n- x\n"
    # The last line is invalid YAML; the event stream is only read up to what is needed here.
    raw = raw.rsplit(b"- x", 1)[0]
    assert loader._text_aliases(raw) == {"b.c[0]": (4, 9), "b.c[1].d": (4, 17), "b.e": (4, 26)}


def test_legitimate_aliases_under_the_limit_load():
    doc = load(billion_laughs(4))
    assert len(doc.data["d"]) == 9 and doc.data["d"][8][8][8] == ["lol"] * 9


def nested_mappings(levels: int) -> str:
    return "".join("  " * i + f"k{i}:\n" for i in range(levels - 1)) + "  " * (levels - 1) + "k: v\n"


def test_nesting_limit(any_loader):
    assert load(nested_mappings(64)).data["k0"]["k1"]  # the root counts as level 1
    problem = the_problem(nested_mappings(65))
    assert problem.message == "the plan is nested too deeply (more than 64 levels)"
    # The 65th mapping is the value of `k63`; it starts at its first key, `k` on line 65.
    assert (problem.line, problem.column) == (65, 129)
    assert the_problem(nested_mappings(10), max_depth=5).line == 6


def test_flow_nesting_far_beyond_libyaml_limits():
    problem = the_problem("a: " + "[" * 100_000 + "]" * 100_000 + "\n")
    assert problem.message == "the plan is nested too deeply (more than 64 levels)"
    assert problem.line == 1


def test_deep_nesting_with_the_pure_python_loader_is_no_recursion_error(monkeypatch):
    monkeypatch.setattr(loader, "_Loader", yaml.SafeLoader)
    # 600 levels overflow PyYAML's recursive composer (libyaml would stop at 1000 by itself).
    problem = the_problem("a: " + "[" * 600 + "]" * 600 + "\n")
    assert problem == PlanProblem("the plan is nested too deeply (more than 64 levels)")


def test_max_depth_is_capped():
    with pytest.raises(ValueError):
        load("a: 1\n", max_depth=100_000)


@pytest.mark.parametrize(
    "text, line, path",
    [("a: 1\nb: &b [x, *b]\n", 2, "b[1]"), ("a: &a\n  b: &b\n    c: *a\n", 3, "a.b.c")],
)
def test_recursive_alias(text, line, path, any_loader):
    problem = the_problem(text)
    assert problem.message == "an alias refers to a node that contains it: plans cannot be recursive"
    assert (problem.line, problem.path) == (line, path)


def test_recursive_merge():
    problem = the_problem("a: &a {x: 1, <<: *a}\n")
    assert problem.message == "a merge key `<<` includes the mapping it is written in"


def test_bad_merge_values():
    problem = the_problem("a: {<<: 1}\n")
    assert problem.message == "a merge key `<<` must be followed by a mapping or a list of mappings"
    problem = the_problem("d: &d {x: 1}\ne: {<<: *d, <<: *d}\n")
    assert problem.message == "duplicate key '<<' (first defined at line 2)"


# --- JSON -----------------------------------------------------------------------------------

JSON_SAMPLE = """\
{
  "format": "ssm-plan/1",
  "account": {"id": "acme", "name": "Acme"},
  "contacts": [
    {"id": "li-wei"},
\t"x\\ud83d\\ude00"
  ],
  "value": 1e5
}
"""


def test_json_data_and_positions():
    doc = load(JSON_SAMPLE, "plan.json")
    assert doc.data == json.loads(JSON_SAMPLE)
    assert doc.data["contacts"][1] == "x\U0001f600"  # YAML would refuse this escape pair
    assert doc.data["value"] == 100000.0  # YAML 1.1 would read `1e5` as text
    assert doc.positions == {
        "format": (2, 3),
        "account": (3, 3),
        "account.id": (3, 15),
        "account.name": (3, 29),
        "contacts": (4, 3),
        "contacts[0]": (5, 5),
        "contacts[0].id": (5, 6),
        "contacts[1]": (6, 2),
        "value": (8, 3),
    }


def test_json_crlf_and_bom():
    doc = load(b"\xef\xbb\xbf" + JSON_SAMPLE.replace("\n", "\r\n").encode(), "plan.json")
    assert doc.positions == load(JSON_SAMPLE, "plan.json").positions


def test_json_long_keys_and_escaped_keys():
    key = "k" * 2000
    text = json.dumps({key: 1, "a\"b": {"c\\d": [1]}})
    doc = load(text, "p.json")
    assert doc.data[key] == 1
    assert doc.locate('a"b.c\\d[0]') == (1, text.index("[1]") + 2)
    assert doc.locate('a"b.c\\d') == (1, text.index('"c') + 1)


def test_json_duplicate_keys():
    found = problems_of('{\n  "a": 1,\n  "l": [{"x": 1, "\\u0078": 2}],\n  "a": {"b": 3}\n}\n', "plan.json")
    assert [(p.message, p.line, p.column, p.path) for p in found] == [
        ("duplicate key 'x' (first defined at line 3)", 3, 18, "l[0].x"),
        ("duplicate key 'a' (first defined at line 2)", 4, 3, "a"),
    ]


def test_json_syntax_error():
    problem = the_problem('{\n  "a": 1,\n  "b": [1 2]\n}\n', "plan.json")
    assert problem.message == "invalid JSON: Expecting ',' delimiter"
    assert (problem.line, problem.column) == (3, 11)


def test_json_nan_is_refused():
    problem = the_problem('{"a": 1,\n "b": NaN}', "plan.json")
    assert problem.message == "NaN is not valid JSON: write a number"
    assert (problem.line, problem.column, problem.path) == (2, 7, "b")


@pytest.mark.parametrize(
    "text, found", [("[1, 2]", "a list"), ('"x"', "a text value"), ("3", "a number"), ("null", "null")]
)
def test_json_top_level_must_be_an_object(text, found):
    problem = the_problem(text, "plan.json")
    assert problem.message == f"a plan must be a mapping (key: value pairs) at the top level, found {found}"


def test_json_other_failures():
    assert the_problem('{"a": ' + "9" * 5000 + "}", "plan.json").message.startswith("invalid JSON: Exceeds the limit")
    assert the_problem('{"a\\x": 1}', "plan.json").message == "invalid JSON: Invalid \\escape"
    assert the_problem("true", "plan.json").message.endswith("found a true/false value")
    assert the_problem('{"a": Infinity}', "plan.json").message == "Infinity is not valid JSON: write a number"


def test_json_empty():
    assert the_problem(" \n", "plan.json").message.startswith("the file is empty")


def test_json_deep_nesting():
    problem = the_problem('{"a":\n' + "[" * 100_000 + "]" * 100_000 + "}", "plan.json")
    assert problem.message == "the plan is nested too deeply (more than 64 levels)"
    assert (problem.line, problem.column) == (2, 64)


def test_json_too_many_values():
    problem = the_problem(json.dumps({"a": list(range(1000))}), "plan.json", max_nodes=100)
    assert problem.message.startswith("the plan has too many values (limit 100)")


def test_json_invalid_utf8():
    assert the_problem(b'{"a": "\xff"}', "plan.json").message.startswith("not valid UTF-8 at line 1")


# --- never a traceback ----------------------------------------------------------------------


def same_data(left, right) -> bool:
    if isinstance(left, dict):
        return (
            isinstance(right, dict)
            and left.keys() == right.keys()
            and all(same_data(left[key], right[key]) for key in left)
        )
    if isinstance(left, list):
        return isinstance(right, list) and len(left) == len(right) and all(map(same_data, left, right))
    if isinstance(left, float) and math.isnan(left):
        return isinstance(right, float) and math.isnan(right)
    return type(left) is type(right) and left == right


def check_any_input(raw: bytes, filename: str = "fuzz.yaml") -> None:
    try:
        doc = load_bytes(raw, filename, max_nodes=20_000)
    except PlanError as error:
        assert error.problems and all(isinstance(p, PlanProblem) and p.message for p in error.problems)
        assert "could not read the plan" not in error.problems[0].message, error.problems  # no unexpected error
        return
    assert isinstance(doc.data, dict)
    if filename.endswith(".yaml"):
        # Whatever the loader accepts, PyYAML's safe loader (same parser) reads the same way,
        # except a plain `=`, which PyYAML cannot construct and the loader reads as text.
        try:
            expected = yaml.load(raw, Loader=loader._Loader)
        except yaml.constructor.ConstructorError as error:
            assert "tag:yaml.org,2002:value" in str(error)
        else:
            assert same_data(doc.data, expected)
    for path, (line, column) in doc.positions.items():
        assert line >= 1 and column >= 1, path


YAML_ALPHABET = st.sampled_from(
    list("ab:-[]{},'\"#&*!|>?<=% \n\t\r\\1.~")
    + ["\n  ", ": ", "- ", "<<: ", "&a ", "*a", "!!int ", "\xe9", "\ufeff", "\x00", "2026-01-01", "---\n"]
)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(YAML_ALPHABET, max_size=60).map("".join))
def test_fuzz_yaml_never_tracebacks(text):
    check_any_input(text.encode())


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=200))
def test_fuzz_bytes_never_traceback(raw):
    check_any_input(raw)
    check_any_input(raw, "fuzz.json")


def test_mutated_example_never_tracebacks():
    base = EXAMPLE.read_bytes()
    pieces = [b":", b"- ", b"  ", b"\n", b"[", b"]", b"{", b"'", b'"', b"&x ", b"*x", b"\t", b"#"]
    pieces.append(b"!!python/name:os.system ")
    rng = random.Random(20261127)
    for _ in range(300):
        raw = bytearray(base)
        for _ in range(rng.randint(1, 4)):
            at = rng.randrange(len(raw))
            if rng.random() < 0.5:
                del raw[at : at + rng.randint(1, 5)]
            else:
                raw[at:at] = rng.choice(pieces)
        check_any_input(bytes(raw))
    as_json = json.dumps(yaml.safe_load(base), default=str, indent=2).encode()
    for _ in range(200):
        raw = bytearray(as_json)
        at = rng.randrange(len(raw))
        raw[at : at + rng.randint(0, 3)] = rng.choice([b",", b"{", b"]", b'"', b"", b"NaN", b'"id": 1,'])
        check_any_input(bytes(raw), "fuzz.json")


# --- speed ----------------------------------------------------------------------------------


def enlarged_example() -> bytes:
    text = EXAMPLE.read_text()
    extra = "".join(
        f"\n  - id: person-{i}\n    name: Person {i}\n    title: Director {i}\n    attitude: neutral\n"
        f"    influence: low\n    owner: raj.patel\n    last_contact: 2026-11-{10 + i:02d}\n"
        f"    next_meeting: 2026-12-{10 + i:02d}\n"
        for i in range(10)
    )
    return text.replace("\nopportunities:", extra + "\nopportunities:", 1).encode()


@pytest.mark.skipif(not yaml.__with_libyaml__, reason="compares against CSafeLoader")
@pytest.mark.slow
def test_speed_is_close_to_plain_yaml_load():
    raw = enlarged_example()
    assert len(raw.splitlines()) > 200
    assert load_bytes(raw, "plan.yaml").data == yaml.load(raw, Loader=yaml.CSafeLoader)
    ours = min(timeit.repeat(lambda: load_bytes(raw, "plan.yaml"), number=50, repeat=7))
    plain = min(timeit.repeat(lambda: yaml.load(raw, Loader=yaml.CSafeLoader), number=50, repeat=7))
    # The target is <= 1.5x (measured: about 0.85x); the margin keeps a busy CI machine green.
    assert ours < 2.5 * plain, (ours, plain)


def print_benchmark(number: int = 2000) -> None:
    """`.venv/bin/python tests/test_loader.py`: load time of the enlarged example plan."""
    raw = enlarged_example()
    with_alias = raw.replace(b"    owner: raj.patel\n", b"    owner: &raj raj.patel\n", 1).replace(
        b"    owner: raj.patel\n", b"    owner: *raj\n"
    )
    as_json = json.dumps(yaml.safe_load(raw), default=str, indent=2).encode()
    plain_loader = loader._Loader
    print(f"{len(raw.splitlines())} lines, {len(raw):,} bytes, {number} loads, best of 7; loader: {plain_loader.__name__}")
    rows = [
        ("yaml.load", lambda: yaml.load(raw, Loader=plain_loader)),
        ("yaml.compose", lambda: yaml.compose(raw, Loader=plain_loader)),
        ("load_bytes", lambda: load_bytes(raw, "plan.yaml")),
        ("yaml.load, with an alias", lambda: yaml.load(with_alias, Loader=plain_loader)),
        ("load_bytes, with an alias", lambda: load_bytes(with_alias, "plan.yaml")),
        ("json.loads, as JSON", lambda: json.loads(as_json)),
        ("load_bytes, as JSON", lambda: load_bytes(as_json, "plan.json")),
    ]
    times = {}
    for name, run in rows:
        times[name] = min(timeit.repeat(run, number=number, repeat=7)) / number
        print(f"  {name:28s} {times[name] * 1e6:8.1f} us")
    print(f"  load_bytes / yaml.load = {times['load_bytes'] / times['yaml.load']:.2f}")
    print(f"  with an alias: {times['load_bytes, with an alias'] / times['yaml.load, with an alias']:.2f}")


if __name__ == "__main__":
    print_benchmark()
