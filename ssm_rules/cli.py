"""The `ssm` command line: a click group whose commands are imported only when used.

Each command lives in its own module under `ssm_rules.commands`; importing them lazily keeps
`ssm validate` on one file from paying for the rule engine or the report templates.
"""

from __future__ import annotations

import errno
import importlib
import io
import os
import platform
import sys

import click

from ssm_rules import __version__

# name -> (module, attribute, one-line help shown by `ssm --help` without importing the module)
COMMANDS: dict[str, tuple[str, str, str]] = {
    "validate": ("ssm_rules.commands.validate", "validate", "Check that plan files follow the plan format."),
    "check": ("ssm_rules.commands.check", "check", "Check plans against the SSM rules and print findings with next actions."),
    "rules": ("ssm_rules.commands.rules", "rules", "List every rule: ID, severity, title, guidance."),
    "explain": ("ssm_rules.commands.rules", "explain", "Print a rule's full documentation."),
    "schema": ("ssm_rules.commands.schema", "schema", "Print the plan format's JSON Schema."),
    "pipeline": ("ssm_rules.commands.pipeline", "pipeline",
                 "Review the pipeline: claimed vs evidence-supported stage, unsupported value, next steps."),
    "audit": ("ssm_rules.commands.audit", "audit", "Audit a portfolio: HTML, Markdown and JSON reports, with history."),
    "history": ("ssm_rules.commands.audit", "history", "List (or prune) the audit runs kept in a history database."),
    "import": ("ssm_rules.commands.import_", "import_group", "Import plans from a CRM export (Salesforce)."),
}


class LazyGroup(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMANDS)

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        if name not in COMMANDS:
            return None
        module_name, attribute, _ = COMMANDS[name]
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as error:
            if error.name and error.name.startswith("ssm_rules.commands"):
                return None  # command not built yet in this checkout
            raise
        return with_lang_option(getattr(module, attribute))

    # Output that cannot be written ends the run as a Unix tool would, never as a bug report:
    # `ssm rules | head -1` (the reader went away) quietly, with the status of a process killed
    # by SIGPIPE (128 + 13); a full disk with one line saying so (exit 2).
    def make_context(self, *args, **kwargs):
        if sys.stdout is None:  # started with stdout closed (`ssm rules >&-`)
            sys.stdout = _ClosedOutput()
        with _output_errors():
            return super().make_context(*args, **kwargs)

    def invoke(self, ctx: click.Context):
        with _output_errors():
            try:
                return super().invoke(ctx)
            finally:
                if sys.stdout is not None:  # None when started with stdout closed (`>&-`)
                    sys.stdout.flush()  # the last buffered lines: a closed pipe shows here, not at exit

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        rows = [(name, COMMANDS[name][2]) for name in self.list_commands(ctx)]
        with formatter.section("Commands"):
            formatter.write_dl(rows)


def _request_language(ctx: click.Context, param: click.Parameter, value: str | None) -> None:
    from ssm_rules import i18n
    from ssm_rules.errors import UsageError

    if ctx.resilient_parsing:
        return
    if value is None and ctx.meta.get("ssm.lang") is not None:
        return  # `ssm --lang X check`: the group's option already chose
    try:
        i18n.request(value)
    except UsageError as error:
        raise click.UsageError(str(error), ctx) from None
    if value is not None:
        ctx.meta["ssm.lang"] = value


LANG_HELP = ("The language of findings, next actions and reports: en, zh_Hant (Traditional Chinese) or zh_Hans "
             "(Simplified Chinese). Default: $SSM_LANG, else the configuration's `lang`, else the locale "
             "(LC_ALL, LC_MESSAGES, LANG), else English. Rule IDs and machine-readable keys never change.")


def lang_option() -> click.Option:
    return click.Option(["--lang"], metavar="LANG", expose_value=False, is_eager=True,
                        callback=_request_language, help=LANG_HELP)


def with_lang_option(command: click.Command) -> click.Command:
    """Every command (and subcommand) takes --lang: added here, once, not in each module."""
    if not any(param.name == "lang" for param in command.params):
        command.params.append(lang_option())
    if isinstance(command, click.Group):
        for subcommand in command.commands.values():
            with_lang_option(subcommand)
    return command


def version_text() -> str:
    """What a bug report needs: ssm's version, the Python running it, the rule engine's build."""
    from ssm_rules._durable import describe

    python = f"Python {platform.python_version()} ({platform.python_implementation()}, {sys.executable})"
    return f"ssm {__version__}\n{python}\nrule engine: {describe()}"


def _print_version(ctx: click.Context, param: click.Parameter, value: bool) -> None:
    if value and not ctx.resilient_parsing:
        click.echo(version_text())
        ctx.exit()


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.option("--version", is_flag=True, expose_value=False, is_eager=True, callback=_print_version,
              help="Show the versions of ssm, Python and the rule engine (paste them into bug reports), and exit.")
@click.option("--lang", metavar="LANG", expose_value=False, is_eager=True, callback=_request_language,
              help=LANG_HELP)
def main() -> None:
    """Check sales account plans against IBM's Signature Selling Method (SSM).

    Plans are YAML files, one per client account (see `ssm schema` and the README).
    `ssm validate` checks their format; `ssm check` runs the SSM rules and prints
    findings with next actions; `ssm pipeline` reviews the opportunities' claimed
    stages against the client's verifiable outcomes; `ssm audit` reports on a whole
    portfolio.

    Exit codes: 0 nothing at or above the failing severity was found; 1 findings or
    invalid plans; 2 the tool could not do its job (usage error, missing path, bad
    configuration or rule pack).
    """


BROKEN_PIPE_STATUS = 141  # 128 + SIGPIPE, what a shell reports for `yes | head -1`
# Errors of a write that no retry will fix: the output is lost, and ssm cannot do its job.
OUTPUT_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EIO, errno.EBADF})


class _ClosedOutput(io.TextIOBase):
    """Standard output when the process started with it closed. Python then sets sys.stdout
    to None, and click.echo silently writes nothing: `ssm rules >&-` printed nothing and exited
    0. Writing here fails like writing to any lost output (exit 2, one line on stderr)."""

    encoding = "utf-8"  # click uses a text stream with an encoding as it is
    errors = "strict"

    def writable(self) -> bool:
        return True

    def write(self, text: str) -> int:
        raise OSError(errno.EBADF, "standard output is closed")


def is_output_error(error: BaseException) -> bool:
    """A write that failed for a reason outside ssm (a closed pipe, a full disk)."""
    return isinstance(error, BrokenPipeError) or isinstance(error, OSError) and error.errno in OUTPUT_ERRNOS


class _output_errors:
    def __enter__(self):
        return self

    def __exit__(self, kind, error, traceback):
        if kind is None or not is_output_error(error):
            return False
        try:  # nothing more can be written; stop Python's own flush at exit from complaining
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
        except (OSError, ValueError, AttributeError):
            pass  # stdout is not a file (a test runner's buffer)
        if isinstance(error, BrokenPipeError):
            sys.exit(BROKEN_PIPE_STATUS)
        where = f"{error.filename}: " if error.filename else "the output: "
        click.echo(f"ssm: cannot write {where}{error.strerror or error}", err=True)
        sys.exit(2)
