"""`--format text`: like a compiler's output, grouped by plan, with a summary line.

    facts/northwind.yaml:88:5: error SSM-BDU-001 Opportunity 'X' has no key decision leader.
        next: Ask sponsor Ana López to identify ... (owner: jane.doe)

Text from a plan (messages quote names) goes to a terminal: its control characters and bidi
overrides are shown as escapes (ssm_rules.display.safe), so a plan cannot clear the screen,
retitle the window or reorder what is read.
"""

from __future__ import annotations

import click

from ssm_rules.display import safe
from ssm_rules.severity import SEVERITY_COLOURS


def render(report, *, color: bool = False) -> str:
    def style(text: str, **kwargs) -> str:
        return click.style(text, **kwargs) if color else text

    lines: list[str] = []
    for result in report.results:
        for problem in result.errors:
            where = ":".join(str(part) for part in (result.file, problem.line, problem.column) if part)
            lines.append(f"{style(where, bold=True)}: {style('error', fg='red', bold=True)}: {problem.message}")
        for finding in (f.to_json() for f in result.findings):
            location = finding["location"]
            where = f"{location['file']}:{location['line']}:{location['column']}"
            severity = finding["severity"]
            lines.append(f"{style(safe(where), bold=True)}: {style(severity, fg=SEVERITY_COLOURS[severity], bold=True)} "
                         f"{style(finding['rule'], bold=True)} {safe(finding['message'])}")
            action = finding["next_action"]
            lines.append(f"    {style('next:', fg='cyan')} {safe(action['text'])} "
                         f"{style('(owner: ' + safe(str(action['owner'])) + ')', dim=True)}")
        if result.valid and result.outcome is not None and (result.outcome["met"] or result.outcome["missing"]) \
                and _concerns_owner(report, result):
            lines.append(_outcome_line(result, style))  # packs without an outcome (--no-builtin): no line
    lines.append(_summary_line(report, style))
    return "\n".join(lines) + "\n"


def _concerns_owner(report, result) -> bool:
    """With --owner, a plan's outcome line shows when its account or a finding shown is theirs."""
    from ssm_rules.owners import same_person

    owner = getattr(report, "owner", None)
    return owner is None or bool(result.findings) or same_person(result.account_owner, owner)


def _outcome_line(result, style) -> str:
    met, missing = result.outcome["met"], result.outcome["missing"]
    total = len(met) + len(missing)
    text = f"{result.file}: outcome {len(met)}/{total}"
    if missing:
        text += f", missing {', '.join(missing)}"
    return style(text, dim=True)


def _summary_line(report, style) -> str:
    counts = report.summary()
    plans = counts["plans"]
    invalid = sum(1 for result in report.results if not result.valid)
    noun = "plan" if plans == 1 else "plans"
    if report.command == "validate":
        problems = sum(len(result.errors) for result in report.results)
        text = f"Validated {plans} {noun}: {plans - invalid} valid, {invalid} invalid"
        if problems:
            text += f" ({problems} problem{'s' if problems != 1 else ''})"
        return style(text + ".", bold=True)
    findings = counts["error"] - invalid
    whose = f" (the next actions of {safe(report.owner)})" if getattr(report, "owner", None) else ""
    text = (f"Checked {plans} {noun}{whose}: {invalid} invalid, {findings} error{'s' if findings != 1 else ''}, "
            f"{counts['warning']} warning{'s' if counts['warning'] != 1 else ''}, {counts['info']} info.")
    return style(text, bold=True)
