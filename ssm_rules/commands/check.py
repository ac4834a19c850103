"""`ssm check`: validate plans, run the SSM rules, print findings with next actions."""

from __future__ import annotations

import sys
from datetime import date

import click

from ssm_rules.commands.common import as_of_option, exit_on_usage_error, paths_argument, rule_pack_options
from ssm_rules.discovery import plan_files
from ssm_rules.formats import render
from ssm_rules.report import SEVERITIES, Report

FAIL_ON = (*SEVERITIES, "never")


@click.command()
@paths_argument
@click.option("--format", "output_format", type=click.Choice(["text", "json"]), default="text", show_default=True,
              help="text: `file:line:col: severity RULE message` with the next action under it; "
                   "json: the output contract's document.")
@as_of_option
@rule_pack_options
@click.option("--fail-on", type=click.Choice(FAIL_ON), default="error", show_default=True,
              help="Exit 1 when a finding of this severity or worse is found; with `never`, findings "
                   "never fail (an invalid plan still does).")
@exit_on_usage_error
def check(paths: tuple[str, ...], output_format: str, as_of: date, rule_dirs: tuple[str, ...],
          no_builtin: bool, fail_on: str) -> None:
    """Check plans against the SSM rules and print findings with next actions.

    PATHS are plan files or directories (searched recursively for *.yaml, *.yml, *.json).
    Each plan is validated first; an invalid plan is reported with its errors and the
    others are still checked.

    \b
    Examples:
      ssm check plans/northwind-retail.yaml
      ssm check plans/ --format json > findings.json
      ssm check plans/ --as-of 2026-12-31 --rules my-team-rules/

    \b
    Exit codes: 0 nothing at or above --fail-on was found and every plan is valid;
    1 otherwise; 2 usage error, missing path, broken rule pack.
    """
    from ssm_rules.pipeline import Checker

    files = plan_files(list(paths))
    checker = Checker(rule_dirs=rule_dirs, include_builtin=not no_builtin)
    results = [checker.check_file(file, as_of) for file in files]
    report = Report(as_of=as_of, results=results, rules=checker.rules)
    click.echo(render(report, output_format, **({"color": sys.stdout.isatty()} if output_format == "text" else {})),
               nl=False)
    sys.exit(exit_status(report, fail_on))


def exit_status(report: Report, fail_on: str) -> int:
    if any(not result.valid for result in report.results):
        return 1
    if fail_on == "never":
        return 0
    failing = set(SEVERITIES[: SEVERITIES.index(fail_on) + 1])
    return 1 if any(f.severity in failing for result in report.results for f in result.findings) else 0
