"""`ssm check`: validate plans, run the SSM rules, print findings with next actions.

Wiring only: configuration (ssm_rules.config), suppressions (ssm_rules.suppressions), baseline
(ssm_rules.baseline), output formats (ssm_rules.formats) and atomic output (ssm_rules.atomic)
each live in their own module.
"""

from __future__ import annotations

import os
import sys
from datetime import date

import click

from ssm_rules.commands.common import (
    as_of_option,
    cache_options,
    check_output_target,
    checked_results,
    color_option,
    config_options,
    exit_on_usage_error,
    open_cache,
    output_option,
    owner_option,
    paths_argument,
    rule_pack_options,
    use_color,
    write_output,
)
from ssm_rules.errors import UsageError
from ssm_rules.formats import FORMATS, render
from ssm_rules.report import Report
from ssm_rules.severity import FAIL_ON

STDIN = "-"


@click.command()
@paths_argument
@click.option("--format", "output_format", type=click.Choice(list(FORMATS)), default="text", show_default=True,
              help="text: `file:line:col: severity RULE message` with the next action under it; json: the "
                   "output contract's document; sarif: SARIF 2.1.0 (GitHub code scanning); github: workflow "
                   "annotations; gitlab: Code Quality report; junit: JUnit XML, one test per plan; markdown: "
                   "a table for a pull-request comment.")
@output_option
@color_option
@as_of_option
@rule_pack_options
@cache_options
@click.option("--fail-on", type=click.Choice(FAIL_ON), default=None,
              help="Exit 1 when a finding of this severity or worse is found; with `never`, findings "
                   "never fail (an invalid plan still does). Default: `fail-on` of the configuration, "
                   "else error.")
@config_options
@click.option("--baseline", "baseline_file", type=click.Path(dir_okay=False), metavar="FILE",
              help="Report, and fail on, only the findings that are not in this baseline.")
@click.option("--write-baseline", "write_baseline_file", type=click.Path(dir_okay=False), metavar="FILE",
              help="Record every current finding in FILE; later runs with --baseline FILE report only new ones.")
@click.option("--stdin-filename", metavar="NAME",
              help="The name of the plan read from standard input (PATH `-`), used in the report.")
@owner_option("Report only the findings whose next action NAME owns (a team member, as the plans name them: "
              "`jane.doe`); the summary counts what is shown. Invalid plans are always reported.")
@exit_on_usage_error
def check(paths: tuple[str, ...], output_format: str, output_file: str | None, color: bool | None, as_of: date,
          rule_dirs: tuple[str, ...], no_builtin: bool, fail_on: str | None, config_file: str | None,
          isolated: bool, baseline_file: str | None, write_baseline_file: str | None,
          stdin_filename: str | None, cache_dir: str | None, no_cache: bool, owner: str | None) -> None:
    """Check plans against the SSM rules and print findings with next actions.

    Two rule packs run: focus (the account plan, SSM Phase 1: G01-G86) and stages (each
    opportunity's claimed stage against its verifiable outcomes, its next step and dates:
    S01-S31). `ssm rules` lists the rules, `ssm explain RULE` explains one.

    PATHS are plan files or directories (searched recursively for *.yaml, *.yml, *.json),
    or `-` for one plan on standard input. Each plan is validated first; an invalid plan is
    reported with its errors and the others are still checked. Findings can be suppressed in
    the plan with a `# ssm: ignore[RULE] reason` comment, and selected, re-graded and
    configured in `[tool.ssm]` of pyproject.toml or in .ssm.toml (see the README).

    \b
    Examples:
      ssm check plans/northwind-retail.yaml
      ssm check plans/ --format json > findings.json
      ssm check plans/ --format sarif --output ssm.sarif
      ssm check plans/ --write-baseline ssm-baseline.json
      ssm check plans/ --baseline ssm-baseline.json --format github
      ssm check plans/ --owner jane.doe

    \b
    Exit codes: 0 nothing at or above --fail-on was found and every plan is valid;
    1 otherwise; 2 usage error, missing path, bad configuration or rule pack.
    """
    # Only what every run needs: the baseline and atomic output are imported when asked for.
    from ssm_rules import config
    from ssm_rules.discovery import plan_files
    from ssm_rules.pipeline import apply_suppressions_and_configuration, configured_checker

    if baseline_file and write_baseline_file:
        raise UsageError("--baseline and --write-baseline cannot be used together")
    if owner is not None and write_baseline_file:
        # A baseline of one person's findings would make everyone else's new in the next run.
        raise UsageError("--owner and --write-baseline cannot be used together: a baseline records every finding")
    settings = config.load(config_file, isolated=isolated)
    fail_on = fail_on or settings.fail_on

    checker, known_rules = configured_checker(settings, open_cache(cache_dir, no_cache), rule_dirs,
                                              include_builtin=not no_builtin)

    if STDIN in paths:
        if len(paths) > 1:
            raise UsageError("`-` (a plan on standard input) cannot be combined with other paths")
        files = []
    elif stdin_filename:
        raise UsageError("--stdin-filename names a plan read from standard input: give `-` as the path")
    else:
        files = plan_files(list(paths))
    # Refuse an output that would land where it must not before spending time on the plans.
    inputs = [*files, *([baseline_file] if baseline_file else []), *([settings.path] if settings.path else [])]
    _check_outputs(output_file, write_baseline_file, inputs)
    if STDIN in paths:
        result = checker.check_file(stdin_filename or STDIN, as_of, raw=_read_stdin())
        results = [apply_suppressions_and_configuration(result, settings, known_rules)]
    else:
        results = checked_results(checker, settings, known_rules, files, as_of)
    report = Report(as_of=as_of, results=results, rules=checker.rules)
    if write_baseline_file or baseline_file:
        from ssm_rules import baseline
    if write_baseline_file:
        count = baseline.write(write_baseline_file, report, inputs=inputs)
        click.echo(f"ssm: recorded {count} finding{'s' if count != 1 else ''} in baseline {write_baseline_file}",
                   err=True)
        baseline_file = write_baseline_file
    if baseline_file:
        report, outcome = baseline.apply(report, baseline.load(baseline_file))
        if not write_baseline_file:
            note = f"ssm: baseline {baseline_file}: {outcome.known} known finding{'s' if outcome.known != 1 else ''} " \
                   f"hidden, {outcome.new} new"
            if outcome.fixed:
                note += f"; {outcome.fixed} no longer found (update it with --write-baseline {baseline_file})"
            click.echo(note, err=True)
    if owner is not None:
        # After the baseline, which is matched against every finding of the run.
        from ssm_rules import owners

        owner = owners.check_known(owner, owners.team_of(report.results))
        report.results = [owners.owned_findings(result, owner) for result in report.results]
        report.owner = owner

    color = use_color(color, output_file)
    options = {"color": color} if output_format == "text" else {"fail_on": fail_on}
    text = render(report, output_format, **options)
    if output_file:
        write_output(output_file, text, [*inputs, *([write_baseline_file] if write_baseline_file else [])])
        from ssm_rules.formats._common import summary_sentence

        click.echo(f"ssm: wrote the {output_format} report to {output_file} ({summary_sentence(report)})", err=True)
    else:
        click.echo(text, nl=False, color=color)
    sys.exit(1 if config.fails(report, fail_on) else 0)


def _check_outputs(output_file: str | None, baseline_file: str | None, inputs: list[str]) -> None:
    if output_file and baseline_file and os.path.abspath(output_file) == os.path.abspath(baseline_file):
        raise UsageError(f"{output_file}: --output and --write-baseline name the same file")
    check_output_target(output_file, inputs, "report")
    check_output_target(baseline_file, inputs, "baseline")


def _read_stdin() -> bytes:
    """One plan from standard input: never more than one byte past a plan file's size limit (the
    loader then reports the plan as too big), however much is piped in."""
    from ssm_rules.loader import DEFAULT_MAX_BYTES

    stream = getattr(sys.stdin, "buffer", None)
    if stream is None:  # replaced by a text stream (tests, embedding)
        return sys.stdin.read(DEFAULT_MAX_BYTES + 1).encode("utf-8", "surrogateescape")
    return stream.read(DEFAULT_MAX_BYTES + 1)

