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
from ssm_rules.i18n import _, ngettext
from ssm_rules.severity import SEVERITY_COLOURS


def render(report, *, color: bool = False) -> str:
    def style(text: str, **kwargs) -> str:
        return click.style(text, **kwargs) if color else text

    # `_()` stays out of f-strings: Python 3.12+ tokenizes f-strings into parts, and Babel then
    # extracts calls inside them that it cannot see on 3.11 (the .pot differed by version).
    error_label, next_label = _("error"), _("next:")
    lines: list[str] = []
    for result in report.results:
        for problem in result.errors:
            where = ":".join(str(part) for part in (result.file, problem.line, problem.column) if part)
            lines.append(f"{style(where, bold=True)}: {style(error_label, fg='red', bold=True)}: {problem.message}")
        for finding in (f.to_json() for f in result.findings):
            location = finding["location"]
            where = f"{location['file']}:{location['line']}:{location['column']}"
            severity = finding["severity"]
            lines.append(f"{style(safe(where), bold=True)}: {style(severity, fg=SEVERITY_COLOURS[severity], bold=True)} "
                         f"{style(finding['rule'], bold=True)} {safe(finding['message'])}")
            action = finding["next_action"]
            owner = _("(owner: {owner})").format(owner=safe(str(action["owner"])))
            lines.append(f"    {style(next_label, fg='cyan')} {safe(action['text'])} {style(owner, dim=True)}")
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
    text = _("{file}: outcome {met}/{total}").format(file=result.file, met=len(met), total=total)
    if missing:
        text += _(", missing {items}").format(items=", ".join(missing))
    return style(text, dim=True)


def _summary_line(report, style) -> str:
    counts = report.summary()
    plans = counts["plans"]
    invalid = sum(1 for result in report.results if not result.valid)
    if report.command == "validate":
        problems = sum(len(result.errors) for result in report.results)
        text = ngettext("Validated {plans} plan: {valid} valid, {invalid} invalid",
                        "Validated {plans} plans: {valid} valid, {invalid} invalid", plans).format(
            plans=plans, valid=plans - invalid, invalid=invalid)
        if problems:
            text += ngettext(" ({count} problem)", " ({count} problems)", problems).format(count=problems)
        return style(text + _("."), bold=True)
    findings = counts["error"] - invalid
    whose = (_(" (the next actions of {owner})").format(owner=safe(report.owner))
             if getattr(report, "owner", None) else "")
    text = ngettext("Checked {plans} plan{whose}: ", "Checked {plans} plans{whose}: ", plans).format(
        plans=plans, whose=whose)
    text += _(", ").join([_("{count} invalid").format(count=invalid),
                       ngettext("{count} error", "{count} errors", findings).format(count=findings),
                       ngettext("{count} warning", "{count} warnings", counts["warning"]).format(
                           count=counts["warning"]),
                       _("{count} info").format(count=counts["info"])]) + _(".")
    return style(text, bold=True)
