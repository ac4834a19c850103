"""`ssm audit`: check a portfolio and write its reports; `ssm history`: list the recorded runs."""

from __future__ import annotations

import json
import os
import sys
from datetime import date

import click

from ssm_rules.commands.common import (as_of_option, cache_options, config_options, exit_on_usage_error,
                                      owner_option, progress_bar, rule_pack_options)
from ssm_rules.severity import FAIL_ON, failing_severities


@click.command()
@click.argument("directory", metavar="DIR")
@click.option("--out", "out_dir", required=True, metavar="REPORT_DIR",
              help="Directory to write index.html, summary.md and audit.json into. It is replaced whole "
                   "(atomically), so it must be new, empty, or an earlier audit report.")
@click.option("--history", "history_db", metavar="DB",
              help="SQLite file that keeps every run (created on first use): the report then shows what is "
                   "new, what was resolved, how long findings have been open, and the trend. Old runs: "
                   "`ssm history prune`.")
@as_of_option
@click.option("--jobs", "-j", type=click.IntRange(min=1), default=None, metavar="N",
              help="Worker processes checking plans in parallel. Default: all cores.")
@rule_pack_options
@cache_options
@config_options
@click.option("--fail-on", type=click.Choice(FAIL_ON), default="never", show_default=True,
              help="Exit 1 when a finding of this severity or worse is open, or a plan is invalid. "
                   "By default the audit exits 0 whenever it ran: findings are its output, not its failure.")
@owner_option("A one-seller report: only the next actions NAME owns and the opportunities NAME owns (invalid "
              "plans are always listed). Not with --history, which follows the whole portfolio.")
@exit_on_usage_error
def audit(directory: str, out_dir: str, history_db: str | None, as_of: date, jobs: int | None,
          rule_dirs: tuple[str, ...], no_builtin: bool, cache_dir: str | None, no_cache: bool,
          config_file: str | None, isolated: bool, fail_on: str, owner: str | None) -> None:
    """Audit every plan under DIR and write the portfolio's reports into REPORT_DIR.

    Plans are checked in parallel worker processes; one bad plan never stops the audit (it is
    listed with its errors). The reports:

    \b
      index.html   one self-contained page: the portfolio at a glance, charts,
                   the pipeline (claimed vs supported stage, unsupported value),
                   what changed, each owner's action list, each account's
                   findings and next actions
      summary.md   a short digest for a chat message or an email
      audit.json   every plan's result in the shape of `ssm check --format
                   json`, the pipeline's totals (`pipeline`), and with
                   --history first_seen on each finding and a `history` block

    \b
    Examples:
      ssm audit plans/ --out report/
      ssm audit plans/ --out /srv/www/ssm --history ssm-history.sqlite --jobs 4
      ssm audit plans/ --out report-raj/ --owner raj.patel

    \b
    Exit codes: 0 the audit ran (whatever it found, unless --fail-on says
    otherwise); 1 --fail-on was met; 2 usage error, missing DIR, no plans under
    it, a bad rule pack, an unusable REPORT_DIR or history database.
    """
    from ssm_rules.audit import run_audit
    from ssm_rules.cache import directory_for, unsafe_reason
    from ssm_rules.discovery import plan_files
    from ssm_rules.errors import UsageError

    if owner is not None and history_db is not None:  # before minutes of checking (run_audit says it too)
        raise UsageError("--owner and --history cannot be used together: the history follows the whole portfolio "
                         "(record it with the full audit; a one-seller report is made without --history)")
    report_dir = os.path.abspath(out_dir)
    # The report's own audit.json is not a plan, when REPORT_DIR lies under DIR.
    files = [file for file in plan_files([directory])
             if not os.path.abspath(file).startswith(report_dir + os.sep)]
    if not files:
        raise UsageError(f"{directory}: no plan files (*.yaml, *.yml, *.json) found")
    # The configuration ([tool.ssm] or .ssm.toml) and suppressions apply as in `ssm check`; each
    # worker reads them (runner.make_checker). Its `fail-on` does not: findings are the audit's
    # output, so only --fail-on makes the audit fail.
    cache_directory = None if no_cache else directory_for(cache_dir)
    if cache_directory is not None and (reason := unsafe_reason(cache_directory)) is not None:
        click.echo(f"ssm: warning: {reason}; running without the cache", err=True)  # once, not once a worker
        cache_directory = None
    checker_options = {"rule_dirs": rule_dirs, "include_builtin": not no_builtin, "config_file": config_file,
                       "isolated": isolated, "cwd": os.getcwd(),
                       # Workers open the cache themselves; a relative directory means this one's.
                       "cache_dir": None if cache_directory is None else str(cache_directory.absolute())}
    with progress_bar(len(files), "Checking plans") as on_progress:
        outcome = run_audit(files, out_dir, as_of, history_db=history_db, jobs=jobs,
                            checker_options=checker_options, on_progress=on_progress, owner=owner)
    click.echo(_summary_line(outcome))
    click.echo("Report: " + ", ".join(str(path) for path in outcome.written))
    sys.exit(_exit_status(outcome, fail_on))


def _summary_line(outcome) -> str:
    summary, plans = outcome.summary, outcome.summary["plans"]
    from ssm_rules.display import safe

    whose = f" for {safe(outcome.owner)}" if outcome.owner else ""  # a name as a plan writes it
    text = (f"Audited {plans} plan{'s' if plans != 1 else ''}{whose} as of {outcome.as_of.isoformat()}: "
            f"{summary['invalid']} invalid, {summary['error']} error{'s' if summary['error'] != 1 else ''}, "
            f"{summary['warning']} warning{'s' if summary['warning'] != 1 else ''}, {summary['info']} info")
    delta = outcome.delta
    if delta is not None:
        if delta.previous_run:
            text += f"; since {delta.previous_run.isoformat()}: {delta.new} new, {delta.resolved} resolved"
        else:
            text += "; first recorded run"
    pipeline = outcome.pipeline
    if pipeline is not None:
        from ssm_rules.review.text import compact

        text += (f"; pipeline {compact(pipeline.value)} in {pipeline.count} open, "
                 f"{compact(pipeline.unsupported_value)} claimed past the evidence")
    return text + "."


def _exit_status(outcome, fail_on: str) -> int:
    if fail_on == "never":
        return 0
    if outcome.summary["invalid"]:
        return 1
    return 1 if any(outcome.summary[severity] for severity in failing_severities(fail_on)) else 0


@click.group(invoke_without_command=True)
@click.option("--db", "db", metavar="FILE", help="The history database written by `ssm audit --history`.")
@click.option("--format", "output_format", type=click.Choice(["text", "json"]), default="text", show_default=True,
              help="text: a table, one run a line; json: {\"version\": 1, \"runs\": [...]}.")
@click.pass_context
@exit_on_usage_error
def history(ctx: click.Context, db: str | None, output_format: str) -> None:
    """List the audit runs kept in a history database, oldest first (or prune old ones).

    For each run: the as-of date, the plans checked (and how many were invalid), the open
    findings by severity, how many findings were new and resolved since the run before, and
    the value of the open pipeline and of the deals claimed past their evidence (`-` for a
    run that did not record them: an older ssm, or no stage pack).

    \b
    Examples:
      ssm history --db ssm-history.sqlite
      ssm history prune --db ssm-history.sqlite --keep-days 400

    \b
    Exit codes: 0 listed; 2 the database does not exist, is not an ssm history
    database, is damaged, or was written by a newer ssm.
    """
    ctx.ensure_object(dict)["db"] = db
    if ctx.invoked_subcommand is not None:
        return
    if db is None:
        raise click.UsageError("Missing option '--db'.")
    from ssm_rules.audit.history import History

    with History(db, mode="read") as database:
        runs = database.runs()
    if output_format == "json":
        click.echo(json.dumps({"version": 1, "runs": runs}, indent=2))
        return
    from ssm_rules.display import pad, width
    from ssm_rules.i18n import _

    if not runs:
        click.echo(_("No runs recorded yet."))
        return
    from ssm_rules.review.text import compact

    columns = ("as_of", "plans", "invalid", "error", "warning", "info", "new", "resolved", "pipeline_value",
               "unsupported_value")
    headers = (_("as of"), _("plans"), _("invalid"), _("error"), _("warning"), _("info"), _("new"), _("resolved"),
               _("pipeline"), _("unsupported"))

    def cell(run: dict, column: str) -> str:
        if column in ("new", "resolved") and run["previous_run"] is None:
            return "-"
        if column in ("pipeline_value", "unsupported_value"):
            return "-" if run[column] is None else compact(run[column])  # not recorded by that run
        return str(run[column])

    rows = [[cell(run, column) for column in columns] for run in runs]
    # Display width, not len(): a Chinese header takes two columns a character.
    widths = [max(width(header), *(width(row[i]) for row in rows)) for i, header in enumerate(headers)]
    for line in (headers, *rows):
        click.echo("  ".join(pad(v, w, right=i > 0) for i, (v, w) in enumerate(zip(line, widths))))


@history.command()
@click.option("--db", "db", metavar="FILE", help="The history database (also accepted before `prune`).")
@click.option("--keep-days", type=click.IntRange(min=1), metavar="N",
              help="Keep the runs of the N days up to the latest run.")
@click.option("--keep-runs", type=click.IntRange(min=1), metavar="N", help="Keep the latest N runs.")
@click.pass_context
@exit_on_usage_error
def prune(ctx: click.Context, db: str | None, keep_days: int | None, keep_runs: int | None) -> None:
    """Remove old runs from a history database, in one transaction.

    A run is kept when either option keeps it; the latest run is always kept. Findings still
    open keep the date they were first seen. The file does not shrink (SQLite reuses the
    space for later runs); `sqlite3 FILE VACUUM` shrinks it.

    \b
    Examples:
      ssm history prune --db ssm-history.sqlite --keep-days 400
      ssm history prune --db ssm-history.sqlite --keep-runs 90

    \b
    Exit codes: 0 pruned (or nothing to prune); 2 no --keep-days or
    --keep-runs, or the database cannot be used.
    """
    from ssm_rules.audit.history import History
    from ssm_rules.errors import UsageError

    db = db or (ctx.obj or {}).get("db")
    if db is None:
        raise click.UsageError("Missing option '--db'.")
    if keep_days is None and keep_runs is None:
        raise UsageError("say what to keep: --keep-days N, --keep-runs N, or both")
    with History(db, mode="write") as database:
        result = database.prune(keep_days=keep_days, keep_runs=keep_runs)
    if result.removed:
        click.echo(f"Removed {len(result.removed)} run{'s' if len(result.removed) != 1 else ''} "
                   f"({result.removed[0]} to {result.removed[-1]}); kept {len(result.kept)} "
                   f"({result.kept[0]} to {result.kept[-1]}).")
    else:
        click.echo(f"Nothing to remove: {len(result.kept)} run{'s' if len(result.kept) != 1 else ''} kept.")
