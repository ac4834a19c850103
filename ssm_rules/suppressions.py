"""Inline suppressions: `# ssm: ignore[RULE, ...] reason` comments in a plan file.

    opportunities:
      # ssm: ignore[SSM-BDU-001] the CIO decides alone; agreed with the client in the QBR
      - id: omni-platform
      - id: analytics   # ssm: ignore[SSM-OPP-006] components follow after the pilot

- A suppression applies to one line: its own, when the comment follows YAML, or else the next
  line that holds YAML (so several may be stacked above one item). It covers the findings on
  that line and, when a list item or a mapping key begins there, anywhere inside that item or
  under that key (as eslint-disable-next-line covers a statement): findings are located at
  the key of what they are about (`buying_unit`), often lines below the item's first line.
- Rule IDs are exact (`SSM-BDU-001`, any case), separated by commas or spaces.
- The reason (the text after `]`) is required. A suppression without a reason, or without a
  rule, does not suppress anything and is reported as `SSM-META-001` (warning).
- A suppression whose rule has no finding in what it covers is reported as `SSM-META-002`
  (warning), like ruff's unused `noqa`; so is a suppression of a rule that does not exist.
- Both meta findings have the subject `plan` (the account), are located at the comment, and
  can themselves be turned off with `ignore = ["SSM-META-002"]` in the configuration (but not
  with a suppression comment).
- Only YAML comments count: the parser says where they are, so text inside quoted strings and
  block scalars (`|`, `>`) is never taken for a comment.
"""

from __future__ import annotations

import bisect
import itertools
import re
from dataclasses import dataclass, replace
from typing import Iterable

import yaml

from ssm_rules.loader import _LINE_BREAK

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
# Anywhere in a comment, as ruff reads `# note  # noqa: E501`: a note may come first.
_DIRECTIVE = re.compile(r"#\s*ssm\s*:\s*ignore\b(?P<rest>.*)$", re.IGNORECASE)
_BRACKETS = re.compile(r"^\[(?P<rules>[^\]]*)\](?P<reason>.*)$")
_RULE_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
_PARSER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_NODE_EVENTS = (yaml.ScalarEvent, yaml.AliasEvent, yaml.MappingStartEvent, yaml.SequenceStartEvent)


@dataclass(frozen=True)
class Suppression:
    line: int  # 1-based line of the comment
    column: int  # 1-based column of its `#`
    target_line: int  # the line it applies to
    rules: tuple[str, ...]  # upper-case rule IDs; empty when none could be read
    reason: str
    text: str  # the comment as written
    end_line: int = 0  # the last line it covers: the end of the item or key that begins on target_line

    def covers(self, line: int) -> bool:
        return self.target_line <= line <= max(self.end_line, self.target_line)

    @property
    def scope(self) -> str:
        """The lines it covers, in words."""
        if self.end_line <= self.target_line:
            return f"on line {self.target_line}"
        return f"on lines {self.target_line}-{self.end_line} (the item or key that begins on line {self.target_line})"

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
    """Every `# ssm: ignore` comment of a YAML text, in line order.

    Where the comments are, and where each list item and mapping key ends, comes from the YAML
    parser: a `#` inside a scalar (quoted, `|` or `>` block, multi-line) is text, never a
    comment. A text that does not parse has no suppressions (its plan is invalid anyway).
    """
    try:
        layout = _Layout(text)
    except yaml.YAMLError:
        return []
    suppressions = []
    for number, column, comment, own_line in layout.comments:
        match = _DIRECTIVE.search(comment)
        if not match:
            continue
        column += match.start()
        comment = match.group(0)
        rules, reason = _parse_rest(match.group("rest"))
        target = number
        if own_line:
            following = bisect.bisect_right(layout.content_lines, number)
            if following < len(layout.content_lines):
                target = layout.content_lines[following]
        end = max(target, layout.entry_ends.get(target, target))
        suppressions.append(Suppression(number, column, target, rules, reason, comment, end))
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


class _Layout:
    """What the parser says about a YAML text, with 1-based line numbers:

    - `comments`: (line, column, text, on a line of its own) of every comment;
    - `content_lines`: the lines that hold YAML (anything but blanks and comments), sorted;
    - `entry_ends`: line where a list item or a mapping key begins -> the last line of that item,
      or of that key's value (the longest, when several begin on one line).
    """

    def __init__(self, text: str):
        self.lines = _LINE_BREAK.split(text)
        self.scalars: list[tuple[tuple[int, int], tuple[int, int]]] = []  # 0-based (start, end) spans
        self.entry_ends: dict[int, int] = {}
        self._read_events(text)
        self.comments: list[tuple[int, int, str, bool]] = []
        self.content_lines: list[int] = []
        for index, line in enumerate(self.lines):
            start = self._comment_start(index, line) if "#" in line else None
            content = line if start is None else line[:start]
            if start is not None:
                self.comments.append((index + 1, start + 1, line[start:].rstrip(), not content.strip()))
            if content.strip():
                self.content_lines.append(index + 1)

    def _read_events(self, text: str) -> None:
        # One frame per open collection: [is a mapping, the next node is a key, line of the entry
        # (list item, or key with its value) being read, flow style].
        stack: list[list] = []
        last = 0  # 0-based line of the last content read: where the node just completed ends
        for event in yaml.parse(text, Loader=_PARSER):
            kind = type(event)
            if kind is yaml.MappingEndEvent or kind is yaml.SequenceEndEvent:
                frame = stack.pop()
                if frame[3]:  # a flow collection ends at its bracket; a block one at its last content
                    last = event.end_mark.line
                self._completed(stack, last)
                continue
            if kind not in _NODE_EVENTS:
                continue
            start, end = event.start_mark, event.end_mark
            if stack:
                frame = stack[-1]
                if not frame[0] or frame[1]:  # a list item, or a key: an entry begins
                    frame[2] = start.line
            if kind is yaml.ScalarEvent:
                block = event.style in ("|", ">")
                # A block scalar's header line (`key: |  # comment`) is not its content.
                self.scalars.append(((start.line + 1, 0) if block else (start.line, start.column),
                                     (end.line, end.column)))
                if event.value or event.style:  # an empty plain scalar is placed at the next token
                    last = end.line - 1 if end.column == 0 and end.line > start.line else end.line
                self._completed(stack, last)
            elif kind is yaml.AliasEvent:
                self.scalars.append(((start.line, start.column), (end.line, end.column)))
                last = end.line
                self._completed(stack, last)
            else:  # a collection starts; its anchor and tag, if any, are text too
                self.scalars.append(((start.line, start.column), (end.line, end.column)))
                last = max(last, start.line)
                stack.append([kind is yaml.MappingStartEvent, True, start.line, bool(event.flow_style)])
        self._starts = [span[0] for span in self.scalars]

    def _completed(self, stack: list[list], last: int) -> None:
        """A node ends on line `last`: close the entry it completes, if any."""
        if not stack:
            return
        frame = stack[-1]
        if frame[0] and frame[1]:  # a key: its value comes next
            frame[1] = False
            return
        first = frame[2] + 1
        self.entry_ends[first] = max(self.entry_ends.get(first, first), last + 1)
        frame[1] = True

    def _comment_start(self, index: int, line: str) -> int | None:
        """Column (0-based) of the `#` that starts a comment on this line, if any: the first `#`
        outside every scalar that follows whitespace or a flow indicator (or starts the line)."""
        column = line.find("#")
        while column >= 0:
            if (column == 0 or line[column - 1] in " \t,[]{}") and not self._in_scalar(index, column):
                return column
            column = line.find("#", column + 1)
        return None

    def _in_scalar(self, index: int, column: int) -> bool:
        position = (index, column)
        found = bisect.bisect_right(self._starts, position) - 1
        return found >= 0 and position < self.scalars[found][1]


def apply(findings: Iterable, suppressions: list[Suppression], *, file: str, account: str | None,
          owner: str | None, known_rules: Iterable[str] | None = None) -> tuple[list, list]:
    """The findings no valid suppression covers, and the meta findings about the suppressions."""
    known = None if known_rules is None else {rule.upper() for rule in known_rules}
    by_rule: dict[str, _Scopes] = {}
    for suppression in suppressions:
        if suppression.valid:
            for rule in suppression.rules:
                by_rule.setdefault(rule, _Scopes()).add(suppression)
    used: set[tuple[int, str]] = set()
    kept = []
    for finding in findings:
        data = finding.to_json()
        line = (data.get("location") or {}).get("line")
        rule = str(data["rule"]).upper()
        covering = by_rule[rule].covering(line) if line and rule in by_rule else []
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
                message = f"Unused suppression: {rule} has no finding {suppression.scope}."
                action = f"Remove {rule} from `{suppression.text}`; the finding it excused is gone."
            meta.append(meta_finding(UNUSED_RULE, message, action, file=file, line=suppression.line,
                                     column=suppression.column, account=account, owner=owner))
    return kept, meta


class _Scopes:
    """The suppressions of one rule, to find those covering a line without trying each one."""

    def __init__(self) -> None:
        self.items: list[Suppression] = []
        self._targets: list[int] = []
        self._reach: list[int] = []

    def add(self, suppression: Suppression) -> None:
        self.items.append(suppression)
        self._targets = []

    def covering(self, line: int) -> list[Suppression]:
        if not self._targets:
            self.items.sort(key=lambda s: s.target_line)
            self._targets = [s.target_line for s in self.items]
            # reach[i]: the last line that any of the first i+1 suppressions covers
            self._reach = list(itertools.accumulate((max(s.end_line, s.target_line) for s in self.items), max))
        found = []
        index = bisect.bisect_right(self._targets, line) - 1
        while index >= 0 and self._reach[index] >= line:
            if self.items[index].covers(line):
                found.append(self.items[index])
            index -= 1
        return found


def read(raw: bytes, file: str = "") -> list[Suppression]:
    """The suppressions of a plan file's bytes; the pipeline calls it when it loads the plan,
    so they travel with the result (and the plan cache) and the file is never read again.
    A JSON plan has none: JSON has no comments."""
    if file.lower().endswith(".json") or not _ANY_DIRECTIVE_BYTES.search(raw):
        return []
    text = raw.decode("utf-8", errors="replace")
    return parse(text[1:] if text.startswith("\ufeff") else text)  # columns as the loader counts them


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
