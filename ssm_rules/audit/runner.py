"""Check many plans in worker processes, in a deterministic order, with progress.

The rule engine (durable-rules, a C core) holds the GIL and allows one live session per
process, so the audit runs in processes, not threads. Each worker builds one Checker when it
starts (compiling the rule packs is the expensive part) and then checks batches of files.

What crosses the process boundary is an `AuditedPlan`: plain data in the output contract's
shape, never engine objects. Each result is handed to the caller with its position among the
input files as soon as it arrives, however the workers finish, and not kept: the audit writes
it to its spool, which gives the input order back. One bad plan never stops the audit: a plan the checker rejects carries its
errors; a plan that crashes the checker (an exception, or a worker process that dies) is
reported as an invalid plan with the reason, and every other plan is still checked.
"""

from __future__ import annotations

import gc
import itertools
import multiprocessing
import os
from contextlib import contextmanager
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from datetime import date
from typing import Any, Callable, Sequence

from ssm_rules.errors import UsageError

_IN_FLIGHT_PER_WORKER = 4  # batches submitted ahead: enough to keep every worker busy


@dataclass
class AuditedPlan:
    """One plan's result as plain data (picklable, JSON-ready): the audit's unit of work."""

    file: str
    account: str | None = None
    account_name: str | None = None
    account_owner: str | None = None
    errors: list[dict] = field(default_factory=list)  # contract shape: {message, location}
    findings: list[dict] = field(default_factory=list)  # contract shape of `ssm check --format json`
    outcome: dict | None = None  # {"met": [...], "missing": [...]}
    team: list[str] = field(default_factory=list)  # every team member the plan names (ssm_rules.owners)
    deals: list[dict] = field(default_factory=list)  # its open opportunities: `ssm pipeline --format json`'s shape

    @property
    def valid(self) -> bool:
        return not self.errors

    @property
    def key(self) -> str:
        """The plan's identity across runs: its account ID, or its file when it names none."""
        return self.account or self.file

    def to_json(self) -> dict:
        """The contract's plan object (as `PlanResult.to_json`)."""
        result: dict[str, Any] = {"file": self.file, "account": self.account}
        if self.errors:
            result["errors"] = self.errors
            result["findings"] = []
            return result
        if self.outcome is not None:
            result["outcome"] = self.outcome
        result["findings"] = self.findings
        return result

    @classmethod
    def from_plan_result(cls, result, *, owner: str | None = None) -> AuditedPlan:
        """From a `pipeline.PlanResult` (in the worker, where the engine objects live).

        With `owner` (`ssm audit --owner`): only the findings whose next action they own and the
        open opportunities they own; an invalid plan as it is. The opportunities' worst findings
        are chosen among all their findings first."""
        from ssm_rules.owners import action_owner, same_person, team_of
        from ssm_rules.review.deals import deals_of

        account_owner = result.account_owner
        if account_owner is None:  # an invalid plan: the owner its file names, if any, gets the fix
            data = getattr(getattr(result, "document", None), "data", None)
            account = data.get("account") if isinstance(data, dict) else None
            if isinstance(account, dict) and isinstance(account.get("owner"), str):
                account_owner = account["owner"]
        as_json = result.to_json()
        findings = as_json.get("findings", [])
        deals = [deal for deal in deals_of(result) if deal.is_open]
        if owner is not None:
            findings = [finding for finding in findings if same_person(action_owner(finding), owner)]
            deals = [deal for deal in deals if same_person(deal.owner, owner)]
        return cls(file=result.file, account=result.account, account_name=getattr(result, "account_name", None),
                   account_owner=account_owner, errors=as_json.get("errors", []), findings=findings,
                   outcome=as_json.get("outcome"), team=sorted(team_of([result])),
                   deals=[deal.to_json() for deal in deals])

    @classmethod
    def crashed(cls, file: str, reason: str) -> AuditedPlan:
        from ssm_rules.discovery import display_name

        file = display_name(file)
        return cls(file=file, errors=[{"message": f"the checker failed on this plan: {reason}",
                                       "location": {"file": file, "line": None, "column": None, "path": None}}])


def default_jobs() -> int:
    """All the cores this process may use."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


def make_checker(options: dict):
    """The default checker factory: a `pipeline.Checker` wired as `ssm check` wires it.

    `options`: `config_file`, `isolated`, `cwd` (which configuration: `[tool.ssm]` or
    .ssm.toml, see ssm_rules.config), `rule_dirs`, `include_builtin`, `cache_dir` (the
    ssm_rules.cache directory; absent or None: no cache). The configuration's
    packs, settings, select/ignore, severities and per-file ignores apply, and so do the
    plans' `# ssm: ignore[...]` suppressions, so the audit reports what `ssm check` reports.
    Runs in each worker: a configuration cannot cross a process boundary (it is not
    picklable), so each worker reads it again (the files are small).
    """
    from ssm_rules import config
    from ssm_rules.cache import open_cache
    from ssm_rules.pipeline import configured_checker

    settings = config.load(options.get("config_file"), isolated=bool(options.get("isolated")), cwd=options.get("cwd"))
    cache = open_cache(options["cache_dir"]) if options.get("cache_dir") else None
    checker, known_rules = configured_checker(settings, cache, options.get("rule_dirs", ()),
                                              include_builtin=options.get("include_builtin", True))
    return ConfiguredChecker(checker, settings, known_rules)


class ConfiguredChecker:
    """A Checker whose results pass through the plans' suppressions and the configuration."""

    def __init__(self, checker, settings, known_rules):
        from ssm_rules import suppressions

        self.checker, self.settings, self.known_rules = checker, settings, known_rules
        self.rules = dict(checker.rules)
        for rule_id, (title, *_rest) in suppressions.META_RULES.items():
            self.rules.setdefault(rule_id, _MetaRule(title))

    def check_file(self, file: str, as_of: date):
        from ssm_rules.pipeline import apply_suppressions_and_configuration

        return apply_suppressions_and_configuration(self.checker.check_file(file, as_of), self.settings,
                                                    self.known_rules)


@dataclass
class _MetaRule:
    title: str
    severity: str = "warning"
    guidance: tuple = ()


def guidance_catalog(checker) -> dict[str, dict]:
    """Guidance ID -> {title, label}: the items of the checker's packs' guidance catalogues."""
    from ssm_rules.rulepack import guidance_items

    packs = getattr(getattr(checker, "checker", checker), "packs", None) or ()
    return {item.id: {"title": item.title, "label": item.label} for item in guidance_items(packs).values()}


def pipeline_catalog(checker) -> dict | None:
    """What the audit's pipeline section needs to know of the rules: the forecast's
    `stage_weights`; None when no loaded pack derives the supported stage (--no-builtin)."""
    from ssm_rules import stages

    compiled = getattr(getattr(checker, "checker", checker), "compiled", None)
    if compiled is None or not stages.derives_support(compiled):
        return None
    return {"stage_weights": stages.stage_weights(compiled)}


def rule_catalog(checker) -> dict[str, dict]:
    """Rule ID -> {title, severity, guidance}: what the report says about each rule."""
    catalog = {}
    for rule_id, rule in (getattr(checker, "rules", None) or {}).items():
        catalog[rule_id] = {
            "title": getattr(rule, "title", None) or "",
            "severity": getattr(rule, "severity", None),
            "guidance": list(getattr(rule, "guidance", None) or []),
        }
    return catalog


# --- inside a worker process ------------------------------------------------------------------

_worker: dict[str, Any] = {}
_CHECKING_GC_THRESHOLDS = (20_000, 20, 20)  # Python's defaults: (700, 10, 10)


def _init_worker(factory: Callable[[dict], Any], options: dict) -> None:
    """Build this process's Checker; keep a failure to report it from the first task."""
    _worker.clear()
    _worker["owner"] = options.get("owner")  # `ssm audit --owner`: applied to each result (AuditedPlan)
    if options.get("lang"):
        from ssm_rules import i18n

        i18n.request(options["lang"])
    try:
        _worker["checker"] = factory(options)
    except UsageError as error:
        _worker["error"] = str(error)
    except Exception as error:  # noqa: BLE001 - reported by the parent as a usage error
        _worker["error"] = f"cannot build the checker: {type(error).__name__}: {error}"


def _init_pool_worker(factory: Callable[[dict], Any], options: dict) -> None:
    """A worker process only checks plans: the collector settles for that (see _fewer_collections)."""
    _init_worker(factory, options)
    gc.freeze()
    gc.set_threshold(*_CHECKING_GC_THRESHOLDS)


def _checker():
    if "error" in _worker:
        raise UsageError(_worker["error"])
    return _worker["checker"]


def _check_one(checker, file: str, as_of: date) -> AuditedPlan:
    try:
        return AuditedPlan.from_plan_result(checker.check_file(file, as_of), owner=_worker.get("owner"))
    except UsageError:
        raise
    except Exception as error:  # noqa: BLE001 - one plan's crash must not stop the audit
        return AuditedPlan.crashed(file, f"{type(error).__name__}: {error}")


def _check_batch(files: list[str], positions: Sequence[int], as_of: date, prepare) -> list:
    checker = _checker()
    return [prepare(position, _check_one(checker, file, as_of)) for position, file in zip(positions, files)]


def _keep(position: int, result: AuditedPlan) -> AuditedPlan:
    return result


def _catalog() -> dict[str, dict]:
    checker = _checker()
    return {"rules": rule_catalog(checker), "guidance": guidance_catalog(checker),
            "pipeline": pipeline_catalog(checker)}


# --- in the parent ----------------------------------------------------------------------------

def check_plans(files: list[str], as_of: date, *, on_result: Callable[[int, Any], None],
                prepare: Callable[[int, AuditedPlan], Any] = _keep,
                jobs: int | None = None, checker_options: dict | None = None,
                checker_factory: Callable[[dict], Any] | None = None,
                on_progress: Callable[[int, int], None] | None = None) -> dict:
    """Check `files`, handing each result to `on_result(position, prepare(position, result))`;
    return what the report says about the rules, the guidance they cite and the pipeline:
    `{"rules": rule_catalog(...), "guidance": guidance_catalog(...), "pipeline": pipeline_catalog(...)}`.

    `prepare` (a module-level function) runs where the plan was checked, in the worker: what it
    does there runs in parallel, instead of in this process, which shares the cores with them.

    `position` is the file's index in `files`: results are handed over as plans finish, in any
    order, and are never kept here (the audit spools them to disk), so memory does not grow
    with the number of files. Every file gets exactly one result.

    `jobs` worker processes (default: all cores; never more than there are files). With one
    job the plans are checked in this process. `on_progress(done, total)` is called as plans
    finish. `checker_factory(options)` builds the Checker in each worker (a module-level
    function, so that it can be sent to a worker). A checker that cannot be built (a broken
    rule pack) is a UsageError.
    """
    options = dict(checker_options or {})
    from ssm_rules import i18n

    options.setdefault("lang", i18n.language())  # workers write findings in the run's language
    checker_factory = checker_factory or make_checker
    total = len(files)
    jobs = max(1, min(jobs or default_jobs(), total or 1))
    progress = on_progress or (lambda done, total: None)
    if jobs == 1:
        return _check_here(files, as_of, options, checker_factory, prepare, on_result, progress)
    return _check_in_pool(files, as_of, jobs, options, checker_factory, prepare, on_result, progress)


def _check_here(files, as_of, options, factory, prepare, on_result, progress):
    _init_worker(factory, options)
    try:
        catalog = _catalog()
        with _fewer_collections():
            for position, file in enumerate(files):
                on_result(position, prepare(position, _check_one(_worker["checker"], file, as_of)))
                progress(position + 1, len(files))
        return catalog
    finally:
        _worker.clear()


@contextmanager
def _fewer_collections():
    """Checking a plan allocates thousands of short-lived objects (YAML nodes, facts, findings),
    so Python's cycle collector runs every few hundred allocations, each time also scanning the
    long-lived checker (compiled rules, the engine's bindings). Freezing what exists before the
    checking and collecting the youngest objects less often saves ~3% a plan (A/B on 250
    benchmark plans in one process); garbage is still collected, in larger steps."""
    thresholds = gc.get_threshold()
    gc.freeze()
    gc.set_threshold(*_CHECKING_GC_THRESHOLDS)
    try:
        yield
    finally:
        gc.set_threshold(*thresholds)
        gc.unfreeze()


def _pool_context():
    """Fresh worker processes: forked from a clean server process, not from this one.

    Plain fork would copy whatever engine state this process holds (a Checker built by an
    earlier command in the same process, the engine's threads); the engine allows one live
    session per process and is not fork-safe, so workers start clean.
    """
    methods = multiprocessing.get_all_start_methods()
    return multiprocessing.get_context("forkserver" if "forkserver" in methods else "spawn")


def _batches(positions: Sequence[int], jobs: int) -> list[Sequence[int]]:
    """Small enough batches to balance the load and move the progress bar; big enough to cut IPC."""
    size = max(1, min(16, len(positions) // (jobs * 8)))
    return [positions[start:start + size] for start in range(0, len(positions), size)]


class _Delivery:
    """Hands results over once each, counts them, and remembers (one byte a file) which are done."""

    def __init__(self, files: list[str], on_result, progress):
        self.files, self.on_result, self.progress = files, on_result, progress
        self.done = bytearray(len(files))
        self.count = 0

    def __call__(self, position: int, result: AuditedPlan) -> None:
        self.on_result(position, result)
        self.done[position] = 1
        self.count += 1

    def report_progress(self) -> None:
        self.progress(self.count, len(self.files))


def _check_in_pool(files, as_of, jobs, options, factory, prepare, on_result, progress):
    """Parallel rounds; after a worker dies, find the plan that killed it one by one, then go on.

    A dead worker breaks the whole pool: every unfinished batch fails. The culprit is among the
    first unfinished batches (the pool works in order), so those are re-run in a one-worker pool,
    one file per task: the first file that fails there is the culprit, reported as a failed plan.
    """
    deliver = _Delivery(files, on_result, progress)
    catalog: dict | None = None
    queue: Sequence[int] = range(len(files))
    suspects = 0  # > 0: the next round is serial, over this many files at the head of the queue
    while queue:
        if suspects:
            head, queue = queue[:suspects], queue[suspects:]
            unfinished, catalog = _round([[position] for position in head], 1, files, as_of, options, factory,
                                         prepare, deliver, catalog, probe=True)
            if unfinished:
                culprit, *rest = unfinished
                deliver(culprit, prepare(culprit, AuditedPlan.crashed(
                    files[culprit], "its worker process died (a crash in the rule engine?)")))
                deliver.report_progress()
                queue = [*rest, *queue]
            suspects = 0
        else:
            batches = _batches(queue, jobs)
            unfinished, catalog = _round(batches, jobs, files, as_of, options, factory, prepare, deliver, catalog)
            queue = unfinished
            if unfinished:
                suspects = (jobs + 1) * len(batches[0])
    return catalog or {"rules": {}, "guidance": {}, "pipeline": None}


def _round(batches, workers, files, as_of, options, factory, prepare, deliver, catalog, *, probe=False):
    """Run `batches` (of positions in `files`) in a fresh pool, delivering their results; return
    (the positions not checked, in order; the catalog).

    Only a few batches a worker are in flight at a time: a batch's results are handed over and
    dropped as it finishes, and the rest wait their turn here, not in the pool's queues.
    With `probe` (one worker), the catalog is asked first whatever: a worker that dies before
    answering it died building the checker, not on a plan, and the audit cannot run at all.
    """
    with ProcessPoolExecutor(max_workers=workers, mp_context=_pool_context(), initializer=_init_pool_worker,
                             initargs=(factory, options)) as pool:
        catalog_future = pool.submit(_catalog) if catalog is None or probe else None
        waiting = iter(batches)
        in_flight: dict = {}  # future -> its batch

        def submit(count: int) -> None:
            for batch in itertools.islice(waiting, count):
                in_flight[pool.submit(_check_batch, [files[position] for position in batch], batch, as_of,
                                      prepare)] = batch

        submit(_IN_FLIGHT_PER_WORKER * workers)
        if catalog_future is not None:
            try:
                catalog = catalog_future.result()
            except BrokenProcessPool:
                if probe:
                    for future in in_flight:
                        future.cancel()
                    raise UsageError("a worker process died while building the checker "
                                     "(the rule engine crashed before checking any plan)") from None
                # asked again with the next pool
        broken = False
        while in_flight:
            finished, _ = wait(in_flight, return_when=FIRST_COMPLETED)
            for future in sorted(finished, key=lambda future: in_flight[future][0]):  # in file order
                batch = in_flight.pop(future)
                try:
                    results = future.result()
                except BrokenProcessPool:
                    broken = True
                    continue
                for position, result in zip(batch, results):
                    deliver(position, result)
                deliver.report_progress()
            if not broken:
                submit(len(finished))
    if not broken:
        return [], catalog
    return [position for batch in batches for position in batch if not deliver.done[position]], catalog
