"""`ssm schema`: print the plan format's JSON Schema."""

from __future__ import annotations

import json

import click

from ssm_rules.schema import plan_schema


@click.command()
def schema() -> None:
    """Print the JSON Schema of the plan format (ssm-plan/1).

    Editors use it to complete and check plan files as you type. Save it next to your
    plans and point VS Code's YAML extension at it with a first line like:

    \b
        # yaml-language-server: $schema=./ssm-plan-1.schema.json

    \b
    Example:
        ssm schema > plans/ssm-plan-1.schema.json
    """
    click.echo(json.dumps(plan_schema(), indent=2))
