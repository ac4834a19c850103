"""Hostile and broken input: each case once aborted a whole run with "internal error" (or hung).

Every one now ends in one line naming the file, and exit 2 (the run cannot go on) or the
plan's own error (exit 1, and the other plans are still checked).
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import tempfile
import time

import pytest
import yaml

from conftest import FACTS
from ssm_rules import globs
from ssm_rules.cli import main

AS_OF = "2026-11-27"
BANK = FACTS / "banca-valdadige.yaml"
PACK = "name: team\ntitle: Team rules\n"
RULE = """\
id: TEAM-001
title: A test rule
severity: info
guidance: [G40]
when:
  - contact: a
    where: {WHERE}
message: "{a.key}"
next_action: check
"""


def run(runner, *args, **kwargs):
    result = runner.invoke(main, [*args], **kwargs)
    assert "internal error" not in result.output, result.output
    assert "Traceback" not in result.output, result.output
    return result


def json_plan(tmp_path, name="bank.json", **changes):
    data = yaml.safe_load(BANK.read_text())
    data.update(changes)
    text = json.dumps(data, default=str, indent=1)
    path = tmp_path / name
    path.write_text(text)
    return path, text


# ---- plans -----------------------------------------------------------------------------------


def test_a_lone_surrogate_in_a_json_plan_is_the_plans_error(runner, tmp_path):
    bad, _ = json_plan(tmp_path, "bad.json")
    bad.write_text(bad.read_text().replace('"Banca Popolare Valdadige S.p.A."', '"Banca \\ud800"', 1))
    shutil.copy(BANK, tmp_path / "good.yaml")
    result = run(runner, "check", str(tmp_path), "--as-of", AS_OF, "--isolated", "--format", "json")
    assert result.exit_code == 1
    plans = {os.path.basename(plan["file"]): plan for plan in json.loads(result.output)["plans"]}
    (error,) = plans["bad.json"]["errors"]
    assert "unpaired surrogate escape" in error["message"]
    assert error["location"]["line"] == 5 and error["location"]["path"] == "account.name"
    assert len(plans["good.yaml"]["findings"]) == 8  # the other plan is still checked


def test_a_lone_surrogate_in_a_key_is_located_at_the_key(runner, tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text('{"format": "ssm-plan/1",\n "account": {"id": "a", "name": "A", "owner": "o", "\\udc00": 1}}')
    result = run(runner, "check", str(bad), "--isolated", "--format", "json")
    (error,) = json.loads(result.output)["plans"][0]["errors"]
    assert error["location"] == {"file": str(bad), "line": 2, "column": 52, "path": "account"}


def test_a_lone_surrogate_does_not_stop_the_audit(runner, tmp_path):
    plans = tmp_path / "plans"
    plans.mkdir()
    bad, _ = json_plan(plans, "bad.json")
    bad.write_text(bad.read_text().replace('"Banca Popolare Valdadige S.p.A."', '"\\udfff"', 1))
    shutil.copy(BANK, plans / "good.yaml")
    result = run(runner, "audit", str(plans), "--out", str(tmp_path / "report"), "--as-of", AS_OF, "--isolated",
                 "--jobs", "1", "--no-cache")
    assert result.exit_code == 0, result.output
    assert "Audited 2 plans as of 2026-11-27: 1 invalid, 4 errors" in result.output


@pytest.mark.skipif(sys.platform != "linux", reason="file names as bytes (PEP 383) are a POSIX matter")
@pytest.mark.parametrize("output_format", ["json", "sarif", "junit", "gitlab", "markdown", "github"])
def test_a_file_name_that_is_not_utf8_is_shown_escaped(runner, tmp_path, output_format):
    plans = tmp_path / "plans"
    plans.mkdir()
    shutil.copy(BANK, os.fsdecode(os.fsencode(str(plans)) + b"/bank\xff.yaml"))
    out = tmp_path / f"report.{output_format}"
    result = run(runner, "check", str(plans), "--as-of", AS_OF, "--isolated", "--format", output_format,
                 "--output", str(out))
    assert result.exit_code == 1, result.output
    assert "xff.yaml" in out.read_text(encoding="utf-8")  # valid UTF-8, the byte shown as `\\xff`


@pytest.mark.skipif(sys.platform != "linux", reason="file names as bytes (PEP 383) are a POSIX matter")
def test_a_file_name_that_is_not_utf8_does_not_stop_the_audit_or_the_baseline(runner, tmp_path):
    plans = tmp_path / "plans"
    plans.mkdir()
    shutil.copy(BANK, os.fsdecode(os.fsencode(str(plans)) + b"/bank\xff.yaml"))
    history = tmp_path / "history.sqlite"
    result = run(runner, "audit", str(plans), "--out", str(tmp_path / "report"), "--history", str(history),
                 "--as-of", AS_OF, "--isolated", "--jobs", "1", "--no-cache")
    assert result.exit_code == 0, result.output
    assert "bank\\\\xff.yaml" in (tmp_path / "report" / "audit.json").read_text(encoding="utf-8")
    result = run(runner, "check", str(plans), "--as-of", AS_OF, "--isolated", "--write-baseline",
                 str(tmp_path / "baseline.json"))
    assert result.exit_code == 0, result.output


def test_standard_input_has_the_size_limit_of_a_file(runner):
    from ssm_rules.loader import DEFAULT_MAX_BYTES

    result = run(runner, "check", "-", "--isolated", "--no-cache", input=b"#" * (DEFAULT_MAX_BYTES * 3))
    assert result.exit_code == 1
    assert (f"-: error: the file is too big: more than {DEFAULT_MAX_BYTES:,} bytes, the limit is "
            f"{DEFAULT_MAX_BYTES:,} bytes") in result.output


def test_standard_input_is_read_no_further_than_the_limit(monkeypatch):
    from ssm_rules.commands import check
    from ssm_rules.loader import DEFAULT_MAX_BYTES

    class Endless:
        asked: list[int] = []

        def read(self, size=-1):
            self.asked.append(size)
            assert size >= 0, "read to the end of an endless stream"
            return b"x" * size

    monkeypatch.setattr(sys, "stdin", type("Stdin", (), {"buffer": Endless()})())
    assert len(check._read_stdin()) == DEFAULT_MAX_BYTES + 1
    assert Endless.asked == [DEFAULT_MAX_BYTES + 1]


# ---- configuration -------------------------------------------------------------------------


def test_a_configuration_that_is_not_utf8_is_named(runner, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / ".ssm.toml").write_bytes(b'select = ["ALL"]\n# caf\xe9\n')
    shutil.copy(BANK, tmp_path / "bank.yaml")
    result = run(runner, "check", "bank.yaml")
    assert result.exit_code == 2
    assert result.output == f"ssm: {tmp_path / '.ssm.toml'}:2: not UTF-8 text (byte 0xe9); save the file as UTF-8\n"


def test_a_configuration_nested_too_deeply_is_named(runner, tmp_path):
    config = tmp_path / ".ssm.toml"
    config.write_text("select = " + "[" * 5000 + "]" * 5000 + "\n")
    result = run(runner, "check", str(BANK), "--config", str(config))
    assert result.exit_code == 2
    assert "invalid TOML" in result.output and str(config) in result.output


@pytest.mark.parametrize("glob, message", [
    ("[z-a]*", "the range `z-a` in `[z-a]*` is backwards (write `a-z`)"),
])
def test_a_glob_that_cannot_match_is_a_configuration_error(runner, tmp_path, glob, message):
    config = tmp_path / ".ssm.toml"
    config.write_text(f'[per-file-ignores]\n"{glob}" = ["ALL"]\n')
    result = run(runner, "check", str(BANK), "--config", str(config))
    assert result.exit_code == 2
    assert result.output == f'ssm: {config}: key `per-file-ignores."{glob}"`: {message}\n'


def test_globs_read_like_fnmatch_at_their_edges():
    assert globs.compile_glob("[!]]x").matches("ax") and not globs.compile_glob("[!]]x").matches("]x")
    assert globs.compile_glob("[]a]").matches("]") and globs.compile_glob("[]a]").matches("a")
    assert globs.compile_glob("a[").matches("a[")  # never closed: a plain `[`
    assert globs.compile_glob("**/*").matches("a.yaml") and globs.compile_glob("**/*").matches("x/y/a.yaml")
    assert not globs.compile_glob("*.yaml").matches("a/b.yaml")
    assert not globs.compile_glob("[!a]x").matches("/x")


def test_a_glob_with_many_stars_matches_in_linear_time(runner, tmp_path):
    """`*a*a*...*b` against a long name backtracked for hours through a regular expression."""
    pattern = "*a" * 40 + "b"
    started = time.perf_counter()
    assert not globs.compile_glob(pattern).matches("a" * 5000)
    assert not globs.compile_glob("**a" * 40 + "b").matches("a/" * 2500)
    # Generous: the regular expression did not finish in an hour; this takes a fraction of a second.
    assert time.perf_counter() - started < 30
    config = tmp_path / ".ssm.toml"
    config.write_text(f'[per-file-ignores]\n"{pattern}" = ["ALL"]\n')
    plan = tmp_path / ("a" * 200 + ".yaml")
    shutil.copy(BANK, plan)
    result = run(runner, "check", str(plan), "--config", str(config), "--as-of", AS_OF)
    assert result.exit_code == 1 and "4 errors" in result.output


# ---- rule packs ----------------------------------------------------------------------------


def pack(tmp_path, where: str = "{name: x}", rule: str = RULE):
    directory = tmp_path / "pack"
    directory.mkdir(exist_ok=True)
    (directory / "pack.yaml").write_text(PACK)
    (directory / "rule.yaml").write_text(rule.replace("{WHERE}", where))
    return directory


def test_a_rule_nested_990_levels_deep_is_a_pack_error(runner, tmp_path):
    directory = pack(tmp_path, "{name: " + "[" * 990 + "]" * 990 + "}")
    result = run(runner, "check", str(BANK), "--rules", str(directory), "--isolated")
    assert result.exit_code == 2
    assert result.output == f"ssm: {directory / 'rule.yaml'}:7: nested more than 64 levels deep; a rule is far flatter\n"


def test_a_rule_example_nested_deep_is_a_pack_error(runner, tmp_path):
    rule = RULE + "examples:\n  fail:\n    - plan: {contacts: " + "[" * 400 + "]" * 400 + "}\n"
    directory = pack(tmp_path, rule=rule)
    result = run(runner, "rules", "--rules", str(directory), "--check-examples")
    assert result.exit_code == 2
    assert "nested more than 64 levels deep" in result.output


def test_not_in_with_hundreds_of_values_compiles_and_runs(runner, tmp_path):
    values = ", ".join(f"v{number}" for number in range(330))
    directory = pack(tmp_path, "{name: {not_in: [" + values + "]}}")
    result = run(runner, "check", str(BANK), "--rules", str(directory), "--no-builtin", "--isolated",
                 "--format", "json", "--as-of", AS_OF)
    assert result.exit_code == 0, result.output
    findings = json.loads(result.output)["plans"][0]["findings"]
    named = [contact for contact in yaml.safe_load(BANK.read_text())["contacts"] if contact.get("name")]
    assert len(findings) == len(named) == 10  # none is called v0..v329


def test_a_fifo_in_a_rule_pack_is_a_pack_error_not_a_hang(runner, tmp_path):
    directory = pack(tmp_path)
    os.mkfifo(directory / "waiting.yaml")
    result = run(runner, "check", str(BANK), "--rules", str(directory), "--isolated")
    assert result.exit_code == 2
    assert f"{directory / 'waiting.yaml'}:1: cannot read the file: not a regular file" in result.output


# ---- baselines -----------------------------------------------------------------------------


def test_a_baseline_nested_too_deeply_is_named(runner, tmp_path):
    baseline = tmp_path / "baseline.json"
    baseline.write_text("[" * 100_000 + "]" * 100_000)
    result = run(runner, "check", str(BANK), "--baseline", str(baseline), "--isolated")
    assert result.exit_code == 2
    assert result.output == f"ssm: {baseline}: not a baseline file: nested too deeply\n"


@pytest.mark.parametrize("special", ["fifo", "/dev/zero"])
def test_a_special_file_as_baseline_is_refused_not_read_forever(runner, tmp_path, special):
    path = tmp_path / "baseline.fifo"
    if special == "fifo":
        os.mkfifo(path)
    else:
        path = special
    result = run(runner, "check", str(BANK), "--baseline", str(path), "--isolated")
    assert result.exit_code == 2
    assert result.output == f"ssm: {path}: cannot read the baseline: not a regular file (a device, FIFO or socket)\n"


# ---- the audit's report directory ----------------------------------------------------------


def test_a_report_directory_that_cannot_be_written_is_a_usage_error(runner, tmp_path, monkeypatch):
    """As a user whose --out lies in a read-only directory (root ignores modes: simulated)."""
    plans = tmp_path / "plans"
    plans.mkdir()
    shutil.copy(BANK, plans / "bank.yaml")

    def read_only(*args, **kwargs):
        raise PermissionError(13, "Permission denied", kwargs.get("dir"))

    monkeypatch.setattr(tempfile, "mkdtemp", read_only)
    report = tmp_path / "report"
    result = run(runner, "audit", str(plans), "--out", str(report), "--isolated", "--jobs", "1")
    assert result.exit_code == 2
    assert result.output.startswith(f"ssm: {report}: cannot write the report: Permission denied")


def test_a_salesforce_mapping_file_that_is_not_utf8_is_named(tmp_path):
    from ssm_rules.importers import salesforce

    mapping = tmp_path / "mapping.toml"
    mapping.write_bytes(b'[salesforce.roles]\nChampion = "sponsor"\n# caf\xe9\n')
    with pytest.raises(salesforce.MappingError, match="mapping.toml: not UTF-8 text; save the mapping file as UTF-8"):
        salesforce.load_mapping_file(mapping)


# ---- text that looks like a command ------------------------------------------------------------


def test_plan_text_never_starts_a_line_of_the_report(runner, tmp_path):
    """A line starting with `::` in a GitHub Actions log is a workflow command: a plan's owner,
    key or file name must not be able to start one in the text report."""
    plans = tmp_path / "plans"
    plans.mkdir()
    (plans / "owner.yaml").write_text('format: ssm-plan/1\naccount: {id: a, name: A, owner: "jo\\n::error::owned"}\n')
    (plans / "key.yaml").write_text('format: ssm-plan/1\naccount: {id: b, name: B, owner: o, "x\\r\\n::error::key": 1}\n')
    if sys.platform == "linux":
        shutil.copy(plans / "owner.yaml", plans / "name\n::error::file.yaml")
    result = run(runner, "check", str(plans), "--isolated", "--as-of", AS_OF, "--no-cache")
    assert result.exit_code == 1
    assert not [line for line in result.output.splitlines() if line.startswith("::")], result.output
    assert "unknown key `x\\r\\n::error::key`" in result.output
    assert "(owner: jo ::error::owned)" in result.output


@pytest.mark.parametrize("colour", ["--color", "--no-color"])
def test_plan_text_never_sends_a_control_sequence_to_the_terminal(runner, tmp_path, colour):
    """A plan is someone else's text: an escape sequence in a name reached the terminal as is
    (OSC retitles the window, some terminals write the clipboard with it; with --color, CSI
    cleared the screen), and a bidi override reordered the line. Shown as escapes now."""
    plan = tmp_path / "esc.yaml"
    plan.write_text('format: ssm-plan/1\naccount: {id: esc, name: "Evil \\e[2J\\u202Egnp", owner: "jo\\e]52;c;eA==\\a"}\n'
                    'opportunities:\n  - {id: o1, name: "Opp \\e]0;pwned\\a"}\n')
    result = run(runner, "check", str(plan), "--isolated", "--as-of", AS_OF, "--no-cache", colour)
    assert result.exit_code == 1, result.output
    styled = result.output.replace("\x1b[0m", "")
    for code in ("1", "2", "31", "33", "34", "36"):  # the report's own styles
        styled = styled.replace(f"\x1b[{code}m", "")
    assert "\x1b" not in styled and "\x07" not in styled and "\u202e" not in styled
    assert "Opp \\x1b]0;pwned\\x07" in result.output and "Evil \\x1b[2J\\u202egnp" in result.output
    assert "(owner: jo\\x1b]52;c;eA==\\x07)" in result.output


@pytest.mark.parametrize("command", [("check", "--format", "markdown"), ("pipeline", "--format", "markdown"),
                                     ("pipeline", "--format", "text", "--color"), ("pipeline", "--format", "csv")])
def test_no_report_of_plan_text_carries_a_control_sequence(runner, tmp_path, command):
    """Markdown is printed to a terminal too, and pasted into chats: `ssm check --format
    markdown`, `ssm pipeline --format markdown` and the audit's summary.md passed an escape
    sequence or a bidi override in a name through as is."""
    plan = tmp_path / "esc.yaml"
    plan.write_text('format: ssm-plan/1\naccount: {id: esc, name: "Evil \\e[2J\\u202Egnp", owner: "jo\\e]52;c;eA==\\a"}\n'
                    'opportunities:\n  - {id: o1, name: "Opp \\e]0;pwned\\a", stage: qualified,'
                    ' next_step: {action: "Call \\e[31m\\u2066 Ana"}}\n')
    result = run(runner, *command[:1], str(plan), *command[1:], "--isolated", "--as-of", AS_OF, "--no-cache")
    assert result.exit_code in (0, 1), result.output
    styled = result.stdout
    for code in ("0", "1", "2", "31", "33", "34", "36"):  # the text table's own styles
        styled = styled.replace(f"\x1b[{code}m", "")
    assert "\x1b" not in styled and "\x07" not in styled and "\u202e" not in styled and "\u2066" not in styled
    assert "x1b" in styled  # written as an escape, not left out


def test_the_audit_summary_carries_no_control_sequence(runner, tmp_path):
    plans = tmp_path / "plans"
    plans.mkdir()
    (plans / "esc.yaml").write_text('format: ssm-plan/1\naccount: {id: esc, name: "Evil \\e[2J\\u202Egnp", '
                                    'owner: "jo\\e]52;c;eA==\\a"}\n')
    (plans / "bad.yaml").write_text('format: ssm-plan/1\naccount: {id: bad, name: "Bad \\e[2J", owner: jo, x: 1}\n')
    result = run(runner, "audit", str(plans), "--out", str(tmp_path / "out"), "--isolated", "--as-of", AS_OF,
                 "--no-cache", "--jobs", "1")
    assert result.exit_code == 0, result.output
    summary = (tmp_path / "out" / "summary.md").read_text(encoding="utf-8")
    assert "\x1b" not in summary and "\x07" not in summary and "\u202e" not in summary
    assert "Bad \\\\x1b" in summary  # the escape, its backslash escaped for Markdown


def test_a_chain_of_derived_kinds_deeper_than_python_recurses_is_a_pack_error():
    from ssm_rules.rulepack import Derive, Pattern, Rule, RulePackError, rule_strata

    def link(number: int) -> Rule:
        source = "contact" if number == 0 else f"k{number - 1}"
        return Rule(id=f"CH-{number}", title="chain", when=(Pattern(kind=source, name="c"),),
                    derive=Derive(kind=f"k{number}", fields={}), pack="chain", file=f"r{number}.yaml")

    chain = [link(number) for number in reversed(range(1200))]  # the deepest rule first: deepest recursion
    with pytest.raises(RulePackError, match=r"r1134.yaml:1: derived kinds build on each other more than 64 "
                                            r"levels deep \(from `k1198`, derived by CH-1198, down to `k1134`\)"):
        rule_strata(chain)
    assert rule_strata(chain[-60:])["CH-59"] == 59  # a chain within the limit is fine
