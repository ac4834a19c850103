"""`ssm pipeline`: the pipeline review. Each opportunity's claimed stage beside the stage its
verifiable outcomes support, the outcomes missing, the next step and the worst finding, with
the value claimed past the evidence and a weighted forecast on both stages.

Wiring only: the plans are checked as `ssm check` checks them (configuration, packs,
suppressions, cache); ssm_rules.review selects, orders, adds up and renders.
"""

from __future__ import annotations

import os
import shutil
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
from ssm_rules.review import FORMATS
from ssm_rules.review.deals import ALL_STAGES, SORTS


@click.command()
@paths_argument
@owner_option("Show only the opportunities NAME owns (an opportunity without `owner` is its account owner's).")
@click.option("--must-win", is_flag=True, help="Show only must-win opportunities.")
@click.option("--stage", "stages", multiple=True, type=click.Choice(ALL_STAGES), metavar="STAGE",
              help="Show only opportunities claimed at STAGE (repeatable): " + ", ".join(ALL_STAGES)
                   + ". Any stage named is shown, open or not.")
@click.option("--all", "everything", is_flag=True,
              help="Also show won, completed and lost opportunities (the totals still add up the open ones).")
@click.option("--sort", type=click.Choice(SORTS), default=None,
              help="value: largest first; close: soonest close date first; stage: furthest claimed stage "
                   "first; risk: worst finding first, then the widest gap between claimed and supported "
                   "stage. Default: claimed past the evidence first, then by value.")
@click.option("--format", "output_format", type=click.Choice(list(FORMATS)), default="text", show_default=True,
              help="text: a table for the terminal, grouped by owner, with the totals; json: the output "
                   "contract's document; markdown: for meeting notes; csv: for a spreadsheet (one row per "
                   "opportunity, formula-safe).")
@output_option
@color_option
@as_of_option
@rule_pack_options
@cache_options
@config_options
@exit_on_usage_error
def pipeline(paths: tuple[str, ...], owner: str | None, must_win: bool, stages: tuple[str, ...], everything: bool,
             sort: str | None, output_format: str, output_file: str | None, color: bool | None, as_of: date,
             rule_dirs: tuple[str, ...], no_builtin: bool, cache_dir: str | None, no_cache: bool,
             config_file: str | None, isolated: bool) -> None:
    """Review the pipeline: is each opportunity's claimed stage backed by the client's
    verifiable outcomes?

    One row per open opportunity (claimed identified, validated, qualified or proposed):
    account, opportunity, value, close date, the claimed stage and the stage its outcomes
    support (`qualified → none`), the first missing outcome, days in stage, the next step
    and its due date, and the worst finding; grouped by owner, with the totals below: the
    value claimed past the evidence (unsupported value) and a forecast weighted by stage
    (`stage_weights`) on the claimed and on the supported stages.

    PATHS are plan files or directories. The plans are checked as `ssm check` checks them
    (configuration, rule packs, suppressions); the stage pack must be loaded. An invalid
    plan is named on standard error and the others are shown.

    \b
    Examples:
      ssm pipeline plans/ --owner raj.patel
      ssm pipeline plans/ --must-win --sort close
      ssm pipeline plans/ --format markdown --output review.md
      ssm pipeline plans/ --all --format csv --output pipeline.csv

    \b
    Exit codes: 0 every plan was read (findings are shown, they never fail the
    review); 1 a plan is invalid (the others are shown); 2 usage error, missing
    path, bad configuration or rule pack, an --owner nobody in the plans has.
    """
    from ssm_rules import config, owners, stages as stage_views
    from ssm_rules.discovery import plan_files
    from ssm_rules.formats._common import plural
    from ssm_rules.pipeline import configured_checker
    from ssm_rules.review import render
    from ssm_rules.review.deals import Selection, review

    settings = config.load(config_file, isolated=isolated)
    checker, known_rules = configured_checker(settings, open_cache(cache_dir, no_cache), rule_dirs,
                                              include_builtin=not no_builtin)
    if not stage_views.derives_support(checker.compiled):
        raise UsageError("the pipeline review needs the supported stage, which the built-in `stages` rule pack "
                         "derives; it is not loaded (--no-builtin or `builtin = false`)")
    files = plan_files(list(paths))
    inputs = [*files, *([settings.path] if settings.path else [])]
    check_output_target(output_file, inputs)
    results = checked_results(checker, settings, known_rules, files, as_of)
    if owner is not None:
        owner = owners.check_known(owner, owners.team_of(results))
    selection = Selection(owner=owner, must_win=must_win, stages=tuple(dict.fromkeys(stages)), everything=everything)
    the_review = review(results, as_of, stage_views.stage_weights(checker.compiled), selection, sort)

    for result in the_review.invalid:  # diagnostics: the review shows the plans it could read
        for problem in result.errors:
            where = ":".join(str(part) for part in (result.file, problem.line, problem.column) if part)
            click.echo(f"{where}: error: {problem.message}", err=True)
    color = use_color(color, output_file) if output_format == "text" else False
    text = render(the_review, output_format, color=color, width=_width(output_file))
    if output_file:
        # A spreadsheet opened from a file needs the byte-order mark to read UTF-8 (Excel guesses
        # a legacy code page without it); a pipe gets none.
        write_output(output_file, text, inputs, encoding="utf-8-sig" if output_format == "csv" else "utf-8")
        click.echo(f"ssm: wrote the {output_format} pipeline review to {output_file} "
                   f"({plural(len(the_review.deals), 'opportunity', 'opportunities')})", err=True)
    else:
        click.echo(text, nl=False, color=color)
    sys.exit(1 if the_review.invalid else 0)


def _width(output_file: str | None) -> int:
    """The text table's width: $COLUMNS, else the terminal's, else 120 (a file, a pipe)."""
    from ssm_rules.review.text import DEFAULT_WIDTH

    columns = os.environ.get("COLUMNS", "")
    if columns.isdigit() and int(columns) > 0:
        return int(columns)
    if output_file is None and sys.stdout.isatty():
        return shutil.get_terminal_size((DEFAULT_WIDTH, 24)).columns
    return DEFAULT_WIDTH
