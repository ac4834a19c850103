"""`--format markdown`: a summary and a table of findings, for a pull-request comment or a
GitHub job summary (`--output "$GITHUB_STEP_SUMMARY"`).

Plan text is escaped (no stray table cells, links or HTML); the findings table stops after
`max_rows` rows (default 100) with a note of how many more there are, since comments are
limited in size. A second, folded table gives each plan's counts and Phase 1 outcome.
"""

from __future__ import annotations

import re

from ssm_rules.display import safe
from ssm_rules.formats._common import plan_items, plural, relative_path

MAX_ROWS = 100
_SPECIAL = re.compile(r"([\\`*_\[\]|<>~])")  # what could make links, HTML, emphasis, strikethrough, tables
_CODE_SPAN = re.compile(r"(`[^`\n]+`)")


def render(report, *, root: str | None = None, max_rows: int = MAX_ROWS, **_options) -> str:
    counts = report.summary()
    invalid = sum(1 for result in report.results if not result.valid)
    findings = counts["error"] - invalid + counts["warning"] + counts["info"]
    lines = [f"## ssm {getattr(report, 'command', 'check')}: {_headline(counts, invalid)}", ""]
    lines.append(f"Checked {plural(counts['plans'], 'plan')} as of {report.as_of.isoformat()}.")
    items = [item for result in report.results for item in plan_items(result)]
    if not items:
        lines += ["", "No findings."]
    else:
        lines += ["", "| Severity | Rule | Location | Finding | Next action | Owner |",
                  "|---|---|---|---|---|---|"]
        for item in items[:max_rows]:
            where = ":".join(str(part) for part in (relative_path(item.file, root), item.line) if part)
            lines.append("| " + " | ".join([
                f"**{item.severity}**",
                f"`{item.rule}`",
                f"`{_code(where)}`",
                _escape(item.message),
                _escape(item.next_action or ""),
                _escape(item.owner or ""),
            ]) + " |")
        if len(items) > max_rows:
            lines += ["", f"…and {plural(len(items) - max_rows, 'more item')} ({findings} findings, "
                          f"{invalid} invalid plans in all): see the full report."]
    lines += ["", "<details><summary>Plans</summary>", "",
              "| Plan | Account | Errors | Warnings | Info | Outcome |", "|---|---|---|---|---|---|"]
    for result in report.results:
        plan_counts = {"error": 0, "warning": 0, "info": 0}
        for finding in result.findings:
            plan_counts[finding.severity] += 1
        if not result.valid:
            outcome = f"invalid ({plural(len(result.errors), 'problem')})"
        elif result.outcome and (result.outcome.get("met") or result.outcome.get("missing")):
            met, missing = result.outcome.get("met", []), result.outcome.get("missing", [])
            outcome = f"{len(met)}/{len(met) + len(missing)}" + (f", missing {', '.join(missing)}" if missing else "")
        else:
            outcome = ""
        lines.append("| " + " | ".join([
            f"`{_code(relative_path(result.file, root))}`", _escape(result.account or ""),
            str(plan_counts["error"]), str(plan_counts["warning"]), str(plan_counts["info"]), _escape(outcome),
        ]) + " |")
    lines += ["", "</details>"]
    return "\n".join(lines) + "\n"


def _headline(counts: dict[str, int], invalid: int) -> str:
    errors = counts["error"] - invalid
    parts = [plural(errors, "error"), plural(counts["warning"], "warning"), f"{counts['info']} info"]
    if invalid:
        parts.insert(0, f"{invalid} invalid {'plan' if invalid == 1 else 'plans'}")
    return ", ".join(parts)


def markdown_text(text: str, *, table: bool = False) -> str:
    """Text for Markdown, on one line: `code spans` kept as written (rules quote keys in them, and
    nothing inside one is markup), everything else escaped, so plan text cannot become links,
    HTML or emphasis. In a table cell a `|` ends the cell, even in a code span: it is escaped.
    Control characters and bidi overrides are written as escapes (`\\x1b`), as on the terminal:
    Markdown is printed to one, and pasted into chats and pages that show them raw."""
    parts = _CODE_SPAN.split(safe(text))
    return "".join((part.replace("|", "\\|") if table else part) if index % 2 else _SPECIAL.sub(r"\\\1", part)
                   for index, part in enumerate(parts))


def _escape(text: str) -> str:
    return markdown_text(text, table=True)


def _code(text: str) -> str:
    # Inside a code span only the backtick and the table's pipe matter.
    return safe(text).replace("`", "'").replace("|", "\\|")
