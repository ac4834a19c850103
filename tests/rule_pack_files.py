"""Rule packs written to a temporary directory, and the problems loading them reports: the helpers of
the rule pack tests (test_rulepack_errors, test_rulepack_checks, test_rulepack_strata)."""

from __future__ import annotations

import re
import textwrap
from pathlib import Path

import pytest

from ssm_rules.errors import UsageError
from ssm_rules.rulepack import RulePackError, load_packs

PACK = """\
name: t
title: Test pack
settings:
  review_days: {default: 92, description: Days between reviews.}
"""


GOOD = """\
id: T-001
title: Opportunity has no key decision leader
severity: error
guidance: [G60]
when:
  - opportunity: o
    where:
      stage: {ne: lost}
  - not: role
    where: {opportunity: $o.key, role: key_decision_leader}
message: "Opportunity '{o.name|o.key}' has no key decision leader."
next_action: Find one.
"""


def write_pack(root: Path, files: dict[str, str], pack: str = PACK) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    if pack is not None:
        (root / "pack.yaml").write_text(pack)
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text))
    return root


def problems_of(*dirs: Path) -> list[str]:
    with pytest.raises(RulePackError) as info:
        load_packs(list(dirs), include_builtin=False)
    assert isinstance(info.value, UsageError)  # the CLI exits 2
    for line in info.value.problems:
        assert re.match(r"^.+:\d+: \S", line), line
    assert str(info.value) == "\n".join(info.value.problems)
    return info.value.problems


def assert_problem(problems: list[str], file: Path, line: int, *needles: str) -> None:
    prefix = f"{file}:{line}: "
    at = re.compile(re.escape(f"{file}:{line}") + r"(:\d+)?: ")  # syntax errors give a column too
    for problem in problems:
        if at.match(problem) and all(n in problem for n in needles):
            return
    raise AssertionError(f"no problem at {prefix} with {needles}; got:\n" + "\n".join(problems))


def typed_rule(where: str, *, extra: str = "") -> str:
    return textwrap.dedent("""\
        id: T-9
        title: Typed
        severity: warning
        when:
          - contact: c
          - opportunity: o
            where: {where}
        message: m
        next_action: n
        """).replace("{where}", where) + extra
