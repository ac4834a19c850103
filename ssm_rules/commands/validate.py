"""`ssm validate`: check that plan files follow the plan format (no rules run)."""

from __future__ import annotations

import sys
from datetime import date

import click

from ssm_rules.commands.common import exit_on_usage_error, paths_argument
from ssm_rules.discovery import plan_files
from ssm_rules.formats import render
from ssm_rules.pipeline import load_plan, validation_result
from ssm_rules.report import Report


@click.command()
@paths_argument
@click.option("--format", "output_format", type=click.Choice(["text", "json"]), default="text", show_default=True,
              help="text: one line per problem, `file:line:col: error: message`; json: the output contract's document.")
@exit_on_usage_error
def validate(paths: tuple[str, ...], output_format: str) -> None:
    """Check that plan files follow the plan format (ssm-plan/1).

    PATHS are plan files or directories (searched recursively for *.yaml, *.yml, *.json).
    Every problem is reported with its file, line and column; one bad file never stops
    the others.

    \b
    Exit codes: 0 every plan is valid; 1 a plan is invalid; 2 usage error (e.g. a
    path that does not exist).
    """
    results = [validation_result(load_plan(file)) for file in plan_files(list(paths))]
    report = Report(as_of=date.today(), results=results, command="validate")
    click.echo(render(report, output_format), nl=False)
    sys.exit(1 if any(not result.valid for result in results) else 0)
