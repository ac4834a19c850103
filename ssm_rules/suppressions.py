"""Inline suppressions: `# ssm: ignore[RULE, ...] reason` comments in a plan file.

    opportunities:
      # ssm: ignore[SSM-BDU-001] the CIO decides alone; agreed with the client in the QBR
      - id: omni-platform
      - id: analytics   # ssm: ignore[SSM-OPP-006] components follow after the pilot

- A comment that follows YAML on the same line suppresses the named rules' findings located
  on that line. A comment on a line of its own suppresses them on the next line that holds
  YAML (so several suppression comments may be stacked above one item).
- Rule IDs are exact (`SSM-BDU-001`, any case), separated by commas or spaces.
- The reason (the text after `]`) is required. A suppression without a reason, or without a
  rule, does not suppress anything and is reported as `SSM-META-001` (warning).
- A suppression whose rule has no finding on its line is reported as `SSM-META-002`
  (warning), like ruff's unused `noqa`; so is a suppression of a rule that does not exist.
- Both meta findings have the subject `plan` (the account), are located at the comment, and
  can themselves be turned off with `ignore = ["SSM-META-002"]` in the configuration (but not
  with a suppression comment).
- Text inside quoted strings and block scalars (`|`, `>`) is never taken for a comment.
"""

from __future__ import annotations

import bisect
import re
from dataclasses import dataclass, replace
from typing import Iterable

REASONLESS_RULE = "SSM-META-001"
UNUSED_RULE = "SSM-META-002"

META_RULES: dict[str, tuple[str, str, str]] = {
    REASONLESS_RULE: (
        "Suppression without a reason or a rule",
        "A `# ssm: ignore[RULE] reason` comment that names no rule or gives no reason. It "
        "suppresses nothing until both are given.",
        "A suppression hides a gap in the plan from every later reader and reviewer; the "
        "reason is what tells them the gap is known and accepted, and why.",
    ),
    UNUSED_RULE: (
        "Unused suppression",
        "A `# ssm: ignore[RULE] reason` comment for a rule that has no finding on the line it "
        "applies to, or for a rule that does not exist.",
        "The gap it excused has been closed (or has moved): a stale suppression would hide "
        "the next finding of that rule on that line without anyone deciding to.",
    ),
}

_ANY_DIRECTIVE_BYTES = re.compile(rb"#\s*ssm\s*:\s*ignore", re.IGNORECASE)
_DIRECTIVE = re.compile(r"^#\s*ssm\s*:\s*ignore\b(?P<rest>.*)$", re.IGNORECASE)
_BRACKETS = re.compile(r"^\[(?P<rules>[^\]]*)\](?P<reason>.*)$")
_RULE_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
_BLOCK_INDICATOR = re.compile(r"(^|\s)[|>][0-9+-]*$")


@dataclass(frozen=True)
class Suppression:
    line: int  # 1-based line of the comment
    column: int  # 1-based column of its `#`
    target_line: int  # the line whose findings it suppresses
    rules: tuple[str, ...]  # upper-case rule IDs; empty when none could be read
    reason: str
    text: str  # the comment as written

    @property
    def valid(self) -> bool:
        return bool(self.rules) and bool(self.reason)


def meta_finding(rule: str, message: str, action: str, *, file: str, line: int, column: int,
                 account: str | None, owner: str | None):
    """A warning of one of the tool's suppression rules, about the plan, located at the comment."""
    from ssm_rules.findings import Finding

    return Finding(rule=rule, severity="warning", guidance=(), message=message, subject_kind="plan",
                   subject_id=account, file=file, line=line, column=column, path="", next_action=action,
                   owner=owner)


def parse(text: str) -> list[Suppression]:
    """Every `# ssm: ignore` comment of a YAML text, in line order."""
    lines = text.splitlines()
    found: list[tuple[int, int, str, bool]] = []  # line, column, comment, own line
    block_parent: int | None = None  # indentation of the key that opened a block scalar
    for number, line in enumerate(lines, start=1):
        stripped = line.strip()
        indent = len(line) - len(line.lstrip(" "))
        if block_parent is not None:
            if not stripped or indent > block_parent:
                continue  # inside a block scalar: content, not comments
            block_parent = None
        start = _comment_start(line)
        content = line if start is None else line[:start]
        if start is not None:
            found.append((number, start + 1, line[start:].rstrip(), not content.strip()))
        if _BLOCK_INDICATOR.search(content.rstrip()):
            block_parent = _node_column(content)
    content_lines = [n for n, line in enumerate(lines, start=1) if _has_content(line)]
    suppressions = []
    for number, column, comment, own_line in found:
        match = _DIRECTIVE.match(comment)
        if not match:
            continue
        rules, reason = _parse_rest(match.group("rest"))
        following = bisect.bisect_right(content_lines, number)
        target = content_lines[following] if own_line and following < len(content_lines) else number
        suppressions.append(Suppression(number, column, target, rules, reason, comment))
    return suppressions


def _parse_rest(rest: str) -> tuple[tuple[str, ...], str]:
    bracketed = _BRACKETS.match(rest.strip())
    if not bracketed:
        return (), rest.strip()
    names = [name for name in re.split(r"[\s,]+", bracketed.group("rules")) if name]
    if not names or not all(_RULE_ID.match(name) for name in names):
        return (), bracketed.group("reason").strip()
    reason = bracketed.group("reason").strip().lstrip(":-\u2013\u2014 ").strip()
    return tuple(dict.fromkeys(name.upper() for name in names)), reason


def _comment_start(line: str) -> int | None:
    """Index of the `#` that starts a YAML comment on this line, outside quoted scalars."""
    quote: str | None = None
    index = 0
    while index < len(line):
        char = line[index]
        if quote == '"':
            if char == "\\":
                index += 2
                continue
            if char == '"':
                quote = None
        elif quote == "'":
            if char == "'":
                if line[index + 1:index + 2] == "'":
                    index += 2
                    continue
                quote = None
        elif char in "\"'" and (index == 0 or line[index - 1] in " \t[{,:-?"):
            quote = char
        elif char == "#" and (index == 0 or line[index - 1] in " \t"):
            return index
        index += 1
    return None


def _node_column(line: str) -> int:
    """The column of the key (or scalar) a line opens, past any `- ` sequence indicators."""
    column = len(line) - len(line.lstrip(" "))
    rest = line[column:]
    while rest.startswith("- "):
        stripped = rest[2:].lstrip(" ")
        column += len(rest) - len(stripped)
        rest = stripped
    return column


def _has_content(line: str) -> bool:
    start = _comment_start(line)
    return bool((line if start is None else line[:start]).strip())


def apply(findings: Iterable, suppressions: list[Suppression], *, file: str, account: str | None,
          owner: str | None, known_rules: Iterable[str] | None = None) -> tuple[list, list]:
    """The findings no valid suppression covers, and the meta findings about the suppressions."""
    known = None if known_rules is None else {rule.upper() for rule in known_rules}
    by_line: dict[int, list[Suppression]] = {}
    for suppression in suppressions:
        if suppression.valid:
            by_line.setdefault(suppression.target_line, []).append(suppression)
    used: set[tuple[int, str]] = set()
    kept = []
    for finding in findings:
        data = finding.to_json()
        line = (data.get("location") or {}).get("line")
        rule = str(data["rule"]).upper()
        covering = [s for s in by_line.get(line, ()) if rule in s.rules] if line else []
        if covering:
            for suppression in covering:
                used.add((suppression.line, rule))
        else:
            kept.append(finding)
    meta: list = []
    for suppression in suppressions:
        if not suppression.valid:
            problem = "names no rule" if not suppression.rules else "gives no reason"
            example = f"# ssm: ignore[{', '.join(suppression.rules) or 'RULE'}] why this is accepted"
            meta.append(meta_finding(
                REASONLESS_RULE, f"Suppression `{suppression.text}` {problem}, so it suppresses nothing.",
                f"Write it as `{example}`, or remove it.", file=file, line=suppression.line,
                column=suppression.column, account=account, owner=owner))
            continue
        for rule in suppression.rules:
            if (suppression.line, rule) in used:
                continue
            if known is not None and rule not in known:
                message = f"Suppression of {rule} names no known rule."
                action = f"Correct the rule ID in `{suppression.text}` (see `ssm rules`), or remove it."
            else:
                message = f"Unused suppression: {rule} has no finding on line {suppression.target_line}."
                action = f"Remove {rule} from `{suppression.text}`; the finding it excused is gone."
            meta.append(meta_finding(UNUSED_RULE, message, action, file=file, line=suppression.line,
                                     column=suppression.column, account=account, owner=owner))
    return kept, meta


def read(raw: bytes) -> list[Suppression]:
    """The suppressions of a plan file's bytes; the pipeline calls it when it loads the plan,
    so they travel with the result (and the plan cache) and the file is never read again."""
    if not _ANY_DIRECTIVE_BYTES.search(raw):
        return []
    return parse(raw.decode("utf-8", errors="replace"))


def apply_to_result(result, *, known_rules: Iterable[str] | None = None):
    """A PlanResult with its suppressed findings removed and the meta findings added (in line order).

    The suppressions are the ones `read` found when the plan was loaded (`result.suppressions`).
    An invalid plan is returned as it is: it has no findings to suppress.
    """
    if not result.valid or not result.suppressions:
        return result
    kept, meta = apply(result.findings, result.suppressions, file=result.file, account=result.account,
                       owner=getattr(result, "account_owner", None), known_rules=known_rules)
    findings = [*kept, *meta]
    if all(hasattr(finding, "sort_key") for finding in findings):
        findings.sort(key=lambda finding: finding.sort_key())  # meta findings in line order, like the rest
    return replace(result, findings=findings)
