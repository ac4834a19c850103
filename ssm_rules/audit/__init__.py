"""The nightly portfolio audit: check every plan in parallel, keep history, write reports.

    runner   plans -> AuditedPlan results, in worker processes (one Checker per process)
    spool    each result on disk (SQLite) as it arrives: memory stays flat in the number of plans
    history  SQLite: runs, plans and findings per run; what is new, resolved, open since when
    view     spool + history -> the view model (plain data and spool queries); charts: its SVG charts
    report   the view -> index.html, summary.md, audit.json (pieces: the page's rows made in Python)
    files    writes the report directory as one unit (old or new, never half)

`run_audit` wires them; `ssm audit` (commands/audit.py) is its command line.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Callable


@dataclass
class AuditOutcome:
    """What `run_audit` did: the counts, the history delta (None without history), the files."""

    as_of: date
    delta: object | None  # history.RunDelta
    written: list[Path] = field(default_factory=list)
    summary: dict = field(default_factory=dict)
    pipeline: object | None = None  # review.deals.Totals of the open opportunities; None without the stage pack
    owner: str | None = None  # a one-seller report's seller, as the plans write the name


def run_audit(files: list[str], out_dir: str | Path, as_of: date, *, history_db: str | Path | None = None,
              jobs: int | None = None, checker_options: dict | None = None,
              on_progress: Callable[[int, int], None] | None = None, owner: str | None = None) -> AuditOutcome:
    """Check `files`, record the run in `history_db` (when given), write the reports into `out_dir`.

    With `owner`, a one-seller report (ssm_rules.owners): their next actions and opportunities;
    such a report is never recorded in a history, which follows the whole portfolio.

    The order is: check everything, spooling each result to disk as it comes (nothing is
    written to the report or the history yet); then, in one history transaction, record the
    run and render the reports; commit; then swap the report directory into place. A crash
    while checking or rendering leaves both the history and the old report untouched.
    """
    from ssm_rules.audit import files as report_files
    from ssm_rules.audit import report, runner
    from ssm_rules.audit.spool import Spool
    from ssm_rules.audit.spool import prepare as prepare_rows
    from ssm_rules.audit.view import build_view, known_owner, pipeline_totals

    from ssm_rules.errors import UsageError

    if owner is not None and history_db is not None:
        raise UsageError("--owner and --history cannot be used together: the history follows the whole portfolio "
                         "(record it with the full audit; a one-seller report is made without --history)")
    out = Path(out_dir)
    report_files.check_target(out)  # refuse a bad --out before spending minutes checking
    checker_options = dict(checker_options or {}, **({"owner": owner} if owner is not None else {}))
    # The report's lock is held to the end: a second audit of the same report waits, and what a
    # killed audit left beside the report (its scratch and staging directories) is removed.
    with report_files.report_lock(out), report_files.scratch_directory(out) as scratch, \
            Spool(scratch / "spool.sqlite") as spool:
        # The rows are made in the workers (prepare), the parent only inserts them.
        catalog = runner.check_plans(files, as_of, prepare=prepare_rows, jobs=jobs,
                                   on_result=lambda position, rows: spool.insert(rows),
                                   checker_options=checker_options, on_progress=on_progress)
        spool.finish()
        if owner is not None:
            owner = known_owner(spool, owner)
        pipeline = catalog.get("pipeline")
        totals = pipeline_totals(spool, pipeline["stage_weights"]) if pipeline else None
        generated_at = datetime.now().astimezone()
        # The reports are written (staged) before the history commits, so that a crash while
        # rendering leaves both untouched; the staged directory takes the old one's place last.
        if history_db is None:
            view = build_view(as_of, spool, catalog["rules"], guidance=catalog["guidance"],
                              generated_at=generated_at, pipeline=totals, owner=owner)
            reports = report.render_all(view, as_of, spool, pipeline=totals)
            staging = report_files.stage(out, reports)
            delta = None
        else:
            from ssm_rules.audit.history import History

            staging = None
            try:
                with History(history_db) as history, history.recording(as_of, spool, pipeline=totals) as delta:
                    view = build_view(as_of, spool, catalog["rules"], guidance=catalog["guidance"],
                                      delta=delta, generated_at=generated_at, pipeline=totals)
                    reports = report.render_all(view, as_of, spool, delta=delta, pipeline=totals)
                    staging = report_files.stage(out, reports)
            except BaseException:
                if staging is not None:
                    report_files.discard(staging)
                raise
        written = report_files.swap(staging, out, list(reports))
    return AuditOutcome(as_of=as_of, delta=delta, written=written, summary=view["summary"], pipeline=totals,
                        owner=owner)
