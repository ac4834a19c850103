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
            from ssm_rules.cli import is_output_error

            if os.environ.get("SSM_DEBUG") or is_output_error(error):
                raise  # a closed pipe or a full disk: ssm_rules.cli ends the run as a Unix tool does
            click.echo(f"ssm: internal error: {type(error).__name__}: {error} "
                       "(set SSM_DEBUG=1 for the traceback, and please report it)", err=True)
            sys.exit(2)

    return wrapper


def _parse_date(ctx: click.Context, param: click.Parameter, value: str | None):
    from datetime import date

    if value is None:
        return date.today()
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise click.BadParameter(f"{value!r} is not an ISO date like 2026-11-27") from None


as_of_option = click.option(
    "--as-of", callback=_parse_date, metavar="YYYY-MM-DD",
    help="The date the plans are judged at (review age, meetings ahead, ...). Default: today.")


def rule_pack_options(command: Callable) -> Callable:
    command = click.option("--no-builtin", is_flag=True,
                           help="Leave the built-in rule packs (focus, stages) out: use only --rules packs. "
                                "To leave one out, ignore it by name in the configuration "
                                "(ignore = [\"stages\"]).")(command)
    command = click.option("--rules", "rule_dirs", multiple=True, metavar="DIR",
                           type=click.Path(file_okay=False),
                           help="Add a rule pack directory (repeatable). See docs/rule-language.md.")(command)
    return command


def cache_options(command: Callable) -> Callable:
    """--no-cache and --cache-dir: the cache of validated plans, compiled rules and results."""
    command = click.option("--no-cache", is_flag=True,
                           help="Neither read nor write the cache (see --cache-dir).")(command)
    command = click.option("--cache-dir", metavar="DIR", type=click.Path(file_okay=False),
                           help="Keep the cache of parsed and validated plans, compiled rules and results in DIR "
                                "(default: $SSM_CACHE_DIR, else .ssm_cache in the current directory). Entries are "
                                "keyed by content: a changed plan, rule or ssm version is never served from it. "
                                "Delete it at any time.")(command)
    return command


def config_options(command: Callable) -> Callable:
    """--config and --isolated: which configuration ([tool.ssm] or .ssm.toml) applies."""
    command = click.option("--isolated", is_flag=True, help="Ignore all configuration files.")(command)
    command = click.option("--config", "config_file", type=click.Path(dir_okay=False), metavar="FILE",
                           help="Read the configuration from FILE (a pyproject.toml's [tool.ssm], or a .ssm.toml) "
                                "instead of the nearest one found upward from the current directory.")(command)
    return command


output_option = click.option(
    "--output", "-o", "output_file", type=click.Path(dir_okay=False), metavar="FILE",
    help="Write the report to FILE (atomically) instead of standard output. FILE is a regular file or a new "
         "path: never a symbolic link, a device or one of the plans checked.")

color_option = click.option(
    "--color/--no-color", default=None,
    help="Colour the text format. Default: on a terminal only, and never when NO_COLOR is set.")


def owner_option(help_text: str) -> Callable:
    """--owner NAME: one team member's share of the run (ssm_rules.owners)."""
    return click.option("--owner", metavar="NAME", help=help_text)


def use_color(color: bool | None, output_file: str | None) -> bool:
    """--color/--no-color, else colour only on a terminal and never with NO_COLOR set."""
    if color is not None:
        return color
    return output_file is None and sys.stdout.isatty() and not os.environ.get("NO_COLOR")


def check_output_target(path: str | None, inputs: list[str], what: str = "report") -> None:
    """Refuse, before any work, an output that would land where it must not (ssm_rules.atomic)."""
    from ssm_rules.atomic import check_target

    if path:
        try:
            check_target(path, inputs)
        except OSError as error:
            raise UsageError(f"{path}: cannot write the {what}: {error.strerror}") from None


def write_output(path: str, text: str, inputs: list[str], what: str = "report", *, encoding: str = "utf-8") -> None:
    """Write `text` to `path` atomically, with the checks of `check_output_target`."""
    from ssm_rules.atomic import write_text_atomic

    try:
        write_text_atomic(path, text, inputs=inputs, encoding=encoding)
    except OSError as error:
        raise UsageError(f"{path}: cannot write the {what}: {error.strerror or error}") from None


CHECK_PROGRESS_FROM = 50  # plans: below this a check takes well under a second, a bar would only flicker


def checked_results(checker, configuration, known_rules, files: list[str], as_of) -> list:
    """Check `files` as `ssm check` does: each result with its suppressions and the
    configuration applied; a progress bar on a terminal for a long run."""
    from ssm_rules.pipeline import apply_suppressions_and_configuration

    results = []
    with progress_bar(len(files) if len(files) >= CHECK_PROGRESS_FROM else 0, "Checking plans") as progressed:
        for done, file in enumerate(files, 1):
            results.append(checker.check_file(file, as_of))
            if progressed:
                progressed(done, len(files))
    return [apply_suppressions_and_configuration(result, configuration, known_rules) for result in results]


def open_cache(cache_dir: str | None, no_cache: bool):
    from ssm_rules.cache import open_cache as open_

    return open_(cache_dir, enabled=not no_cache)


class progress_bar:
    """`with progress_bar(total, label) as update:` a bar on stderr, only when stderr is a terminal.

    `update(done, total)` moves it (None when there is no bar: output piped to a file or a CI
    log stays free of control characters). Long runs show how far they are; one plan shows nothing.
    """

    def __init__(self, total: int, label: str):
        self.total, self.label = total, label
        self.bar = None
        self.done = 0

    def __enter__(self):
        if sys.stderr.isatty() and self.total > 1:
            self.bar = click.progressbar(length=self.total, label=self.label, file=sys.stderr,
                                         show_pos=True, show_eta=True, width=30)
            self.bar.__enter__()
            return self.update
        return None

    def update(self, done: int, total: int) -> None:
        self.bar.update(done - self.done)
        self.done = done

    def __exit__(self, *exc):
        if self.bar is not None:
            self.bar.__exit__(*exc)
        return False
