"""Options and error handling shared by the commands."""

from __future__ import annotations

import functools
import os
import sys
from typing import Callable

import click

from ssm_rules.errors import UsageError

paths_argument = click.argument("paths", nargs=-1, required=True, metavar="PATHS...")


def exit_on_usage_error(command: Callable) -> Callable:
    """Turn a UsageError into `ssm: message` on stderr and exit 2; never show a traceback.

    An unexpected exception is a bug: it is reported in one line (exit 2) unless SSM_DEBUG is
    set, which lets the traceback through for whoever is fixing it.
    """

    @functools.wraps(command)
    def wrapper(*args, **kwargs):
        try:
            return command(*args, **kwargs)
        except UsageError as error:
            click.echo(f"ssm: {error}", err=True)
            sys.exit(2)
        except (SystemExit, KeyboardInterrupt, click.exceptions.Exit, click.ClickException):
            raise
        except Exception as error:  # noqa: BLE001 - the last line of defence against a traceback
            if os.environ.get("SSM_DEBUG"):
                raise
            click.echo(f"ssm: internal error: {type(error).__name__}: {error} "
                       "(set SSM_DEBUG=1 for the traceback, and please report it)", err=True)
            sys.exit(2)

    return wrapper
