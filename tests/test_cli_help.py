"""Every command's --help, as a user reads it in an 80-column terminal."""

from __future__ import annotations

import click
import pytest

from ssm_rules.cli import main


def command_paths(group: click.Group, prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    # list_commands/get_command, not .commands: the top-level group loads its commands lazily.
    context = click.Context(group)
    paths = [prefix]
    for name in group.list_commands(context):
        command = group.get_command(context, name)
        if isinstance(command, click.Group):
            paths += command_paths(command, (*prefix, name))
        else:
            paths.append((*prefix, name))
    return paths


@pytest.mark.parametrize("command", command_paths(main), ids=lambda path: " ".join(path) or "ssm")
def test_help_fits_80_columns(runner, command):
    """Click does not rewrap a `\\b` block (examples, exit codes, mappings): those lines must be
    written to fit. `ssm import salesforce --help` ran to 89 columns."""
    result = runner.invoke(main, [*command, "--help"], env={"COLUMNS": "80"}, terminal_width=80)
    assert result.exit_code == 0, result.output
    assert [line for line in result.stdout.splitlines() if len(line) > 80] == []
