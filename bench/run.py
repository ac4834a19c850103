"""Benchmark the whole pipeline against the parse floor, and print every figure with its target.

    python bench/run.py                      # small and large plans, N = 1,000 and 10,000 (~20 minutes)
    python bench/run.py --quick              # N = 300 and 1,000, one run each (about 4 minutes)
    python bench/run.py --profiles small --sizes 1000,10000 --repeat 2 --json results.json
    python bench/run.py --stages-cost 1000 --repeat 3   # only the split: both packs / Focus alone

Every figure is measured for each portfolio profile (`--profiles`, default `small,large`; see
bench/generate.py): small plans (1-3 opportunities) are mostly the fixed cost of a plan, large
ones (3-10) mostly its size, and each profile has its own targets (PROFILE_TARGETS).

What is measured (bench/README.md says why):

- floor: reading every plan file and parsing it with PyYAML's CSafeLoader (`yaml.load`), in
  this process, one after the other. The cheapest a tool that reads the same YAML can be.
- audit: `ssm audit DIR --out REPORT --jobs J --no-cache`, the real CLI in a subprocess, wall
  time from start to exit (start-up, checking, reports and all), as plans/s and as a ratio to
  the floor of the same N measured in the same run, right before it.
- peak RSS: the largest sum of the resident set sizes of the audit's whole process tree (the
  command, the forkserver, the workers), sampled from /proc every 10 ms. Pages shared between
  processes are counted once per process, so this overstates real use a little.
- split: per-plan milliseconds of load (read + YAML), validate, facts, rules (engine), findings,
  and report (the audit's view model and rendering), timed in this process with the same
  functions the audit calls, over a sample of the portfolio.
- cache: the same audit (--jobs 2) with an empty cache directory, then again unchanged (same
  as-of date), and again the next day (as-of + 1: plans still cached, results not); the
  sequence is repeated --repeat times from an empty cache, the best of each counts.
- stages cost (--stages-cost N, on its own): the split with both built-in packs and with the
  Focus pack alone, alternated --repeat times (best of each step, in this process's CPU time),
  and the ratio of the totals: what the opportunity-stages pack adds to a plan.
- cold start: `ssm check PLAN` and `yamllint PLAN` in fresh processes, alternated, best of R.
  Each run checks a plan whose content ssm has not seen (a numbered comment is appended), so
  only the rule packs come from the cache, as in a pre-commit hook on a changed file.
  Byte-code is compiled first (as `pip install` does), so neither pays for compiling Python.

Wall times are the best of --repeat runs: on a busy machine the best run is the one least
disturbed by others. The machine, its load and every figure are printed.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from datetime import date, timedelta
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import generate  # noqa: E402  (bench/generate.py, beside this file)

AS_OF = generate.AS_OF
PAGE = os.sysconf("SC_PAGE_SIZE")

TARGETS = {
    "rss": 300.0,  # MB
    "rss_flat": 1.10,  # peak RSS at the largest N / at the smallest
    "cold": 1.5,  # ssm check / yamllint
    "stages": 1.25,  # per-plan split with both built-in packs / with the Focus pack alone
}
# The throughput and cache targets of each portfolio profile (bench/generate.py --profile), judged
# at the largest N: audit --jobs 2 / floor, --jobs 1 / floor, unchanged re-run / first, next-day
# re-run / first (None: no target). Small plans are mostly fixed costs, which is why their
# targets against the parse floor are looser.
PROFILE_TARGETS = {
    "small": {"jobs2": 1.5, "jobs1": 2.5, "second": 0.3, "next_day": 0.5},
    "large": {"jobs2": 1.0, "jobs1": 2.0, "second": 0.3, "next_day": None},
    "mixed": {"jobs2": None, "jobs1": None, "second": 0.3, "next_day": None},
}


# ---- the machine ----------------------------------------------------------------------------

def machine() -> dict:
    model = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:
        cores = os.cpu_count() or 1
    return {"nproc": cores, "cpu": model, "python": platform.python_version(),
            "system": f"{platform.system()} {platform.release()}", "load": os.getloadavg()}


# ---- tools ----------------------------------------------------------------------------------

def tool(name: str) -> str:
    """The console script installed beside this Python (the venv's), else on PATH."""
    beside = Path(sys.executable).parent / name
    if beside.exists():
        return str(beside)
    found = shutil.which(name)
    if not found:
        sys.exit(f"bench: `{name}` is not installed (pip install -e '.[test]')")
    return found


def child_env() -> dict:
    env = dict(os.environ)
    env.pop("PYTHONDONTWRITEBYTECODE", None)  # an installed package has its byte-code
    env.pop("SSM_CACHE_DIR", None)
    return env


def compile_bytecode() -> None:
    import compileall

    package = HERE.parent / "ssm_rules"
    compileall.compile_dir(str(package), quiet=1)


# ---- running a command and watching its process tree ----------------------------------------

def _children(pid: int) -> list[int]:
    found = []
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return found
    for task in tasks:
        try:
            found += [int(c) for c in Path(f"/proc/{pid}/task/{task}/children").read_text().split()]
        except OSError:
            pass
    return found


def _rss(pid: int) -> int:
    try:
        return int(Path(f"/proc/{pid}/statm").read_text().split()[1]) * PAGE
    except (OSError, IndexError, ValueError):
        return 0


def tree_rss(pid: int) -> int:
    total, pending = 0, [pid]
    while pending:
        current = pending.pop()
        total += _rss(current)
        pending += _children(current)
    return total


class Run:
    """One command in a subprocess: wall time, CPU time, peak RSS of its tree."""

    def __init__(self, command: list[str], cwd: str, sample: bool = True):
        self.command = command
        start = time.perf_counter()
        process = subprocess.Popen(command, cwd=cwd, env=child_env(), stdout=subprocess.PIPE,
                                   stderr=subprocess.PIPE)
        self.peak = 0
        done = threading.Event()

        def watch():
            while not done.is_set():
                self.peak = max(self.peak, tree_rss(process.pid))
                done.wait(0.01)

        watcher = threading.Thread(target=watch, daemon=True) if sample else None
        if watcher:
            watcher.start()
        out, err = process.communicate()
        self.wall = time.perf_counter() - start
        done.set()
        if watcher:
            watcher.join()
        self.returncode = process.returncode
        self.stdout, self.stderr = out.decode(errors="replace"), err.decode(errors="replace")

    def check(self, allowed=(0, 1)) -> Run:
        if self.returncode not in allowed:
            sys.exit(f"bench: {' '.join(self.command)} failed ({self.returncode}):\n{self.stderr[-2000:]}")
        return self


# ---- the figures ----------------------------------------------------------------------------

def portfolio(data: Path, count: int, seed: int, profile: str = "large") -> tuple[Path, list[str]]:
    folder = data / f"plans-{profile}-{count}-seed-{seed}"
    stamp = folder / ".complete"
    signature = f"{count} {seed} {AS_OF} {profile} {hash_file(HERE / 'generate.py')}\n"
    if not (stamp.exists() and stamp.read_text() == signature):
        print(f"  generating {count:,} {profile} plans in {folder} ...", file=sys.stderr, flush=True)
        shutil.rmtree(folder, ignore_errors=True)
        generate.generate(folder, count, seed, AS_OF, profile)
        stamp.write_text(signature)
    files = sorted(str(p) for p in folder.rglob("*.yaml"))
    return folder, files


def hash_file(path: Path) -> str:
    import hashlib

    return hashlib.sha256(path.read_bytes()).hexdigest()[:16]


def floor(files: list[str]) -> float:
    import yaml

    loader = yaml.CSafeLoader
    start = time.perf_counter()
    for file in files:
        with open(file, "rb") as stream:
            yaml.load(stream.read(), Loader=loader)
    return time.perf_counter() - start


def audit(ssm: str, folder: Path, work: Path, jobs: int, cache: str | None, as_of: date = AS_OF) -> Run:
    out = work / "report"
    command = [ssm, "audit", str(folder), "--out", str(out), "--as-of", as_of.isoformat(), "--jobs", str(jobs)]
    command += ["--no-cache"] if cache is None else ["--cache-dir", cache]
    return Run(command, cwd=str(work)).check()


def split(files: list[str], sample: int, packs: list | None = None, clock=time.perf_counter) -> dict:
    """Per-plan ms of each step, in this process, with the functions `ssm audit` calls (the
    steps of pipeline.Checker.check_loaded, then the audit's report). `packs`: the rule packs
    (default: the built-in ones); `clock`: wall time, or this process's CPU time."""
    from ssm_rules import loader, plan_shape
    from ssm_rules.audit import report, runner
    from ssm_rules.audit.spool import Spool
    from ssm_rules.audit.view import build_view
    from ssm_rules.errors import PlanError
    from ssm_rules.facts import plan_facts
    from ssm_rules.findings import build_findings, outcome
    from ssm_rules.pipeline import Checker, PlanResult

    step = max(1, len(files) // sample)
    chosen = files[::step][:sample]
    checker = Checker() if packs is None else Checker(packs=packs)
    times = dict.fromkeys(("load", "validate", "facts", "rules", "findings", "report"), 0.0)
    plans = []
    for file in chosen:
        t0 = clock()
        document = loader.load_path(file)
        t1 = clock()
        try:
            plan = plan_shape.validate(document)
        except PlanError:
            continue  # the generator writes valid plans only
        t2 = clock()
        facts = plan_facts(plan, AS_OF)
        t3 = clock()
        result = checker.engine.run(facts)
        t4 = clock()
        findings = build_findings(checker.compiled, facts, result, document.locate, file)
        met = outcome(checker.packs, result.derived)
        t5 = clock()
        times["load"] += t1 - t0
        times["validate"] += t2 - t1
        times["facts"] += t3 - t2
        times["rules"] += t4 - t3
        times["findings"] += t5 - t4
        plans.append(runner.AuditedPlan.from_plan_result(PlanResult(
            file=file, account=plan.account.id, findings=findings, outcome=met,
            account_owner=plan.account.owner, document=document)))
    t0 = clock()
    with tempfile.TemporaryDirectory() as scratch, Spool(Path(scratch) / "spool.sqlite") as spool:
        for seq, plan in enumerate(plans):  # what the audit's parent does as results arrive
            spool.add(seq, plan)
        spool.finish()
        view = build_view(AS_OF, spool, runner.rule_catalog(checker), guidance=runner.guidance_catalog(checker))
        for name, content in report.render_all(view, AS_OF, spool).items():
            with open(Path(scratch) / name, "w", encoding="utf-8") as stream:
                content(stream) if callable(content) else stream.write(content)
    times["report"] = clock() - t0
    return {name: 1000 * seconds / len(plans) for name, seconds in times.items()}


STEPS = ("load", "validate", "facts", "rules", "findings", "report")


def stages_cost(data: Path, count: int, seed: int, repeat: int, profile: str = "large") -> int:
    """The split with both built-in packs and with the Focus pack alone, on one portfolio."""
    from ssm_rules.rulepack import builtin_pack_dir, load_packs

    _, files = portfolio(data, count, seed, profile)
    configurations = {"focus + stages": None,
                      "focus only": load_packs([builtin_pack_dir("focus")], include_builtin=False)}
    best: dict[str, dict[str, float]] = {}
    for _ in range(repeat):
        for name, packs in configurations.items():  # alternated: a busy minute hurts both alike
            # CPU time of this process: other processes on a shared machine slow both alike
            # in wall time, but not evenly between two configurations measured minutes apart.
            steps = split(files, count, packs, clock=time.process_time)
            best[name] = {k: min(v, best.get(name, steps)[k]) for k, v in steps.items()}
    table = Table()
    for name, steps in best.items():
        table.add(f"N={count:,} {name}, per plan ms: {'/'.join(STEPS)}",
                  " / ".join(f"{steps[k]:.2f}" for k in STEPS) + f" = {sum(steps.values()):.2f}")
    both, focus = (sum(best[name].values()) for name in configurations)
    table.add("per plan, focus + stages / focus only", f"{both / focus:.2f}", f"<= {TARGETS['stages']:.2f}",
              both / focus <= TARGETS["stages"])
    rules = best["focus + stages"]["rules"] / best["focus only"]["rules"]
    table.add("rules step alone, focus + stages / focus only", f"{rules:.2f}")
    print()
    table.print()
    return 0


def cold_start(ssm: str, yamllint: str, plan: str, work: Path, runs: int) -> dict:
    """Best wall time of `ssm check` and `yamllint` on one plan, each run on content new to ssm."""
    text = Path(plan).read_text(encoding="utf-8")
    cache = str(work / "cold-cache")
    shutil.rmtree(cache, ignore_errors=True)
    variants = work / "cold"
    variants.mkdir(exist_ok=True)

    def variant(number: int) -> str:
        path = variants / f"plan-{number}.yaml"
        path.write_text(f"{text}# run {number} {time.time_ns()}\n", encoding="utf-8")
        return str(path)

    as_of = ["--as-of", AS_OF.isoformat()]
    Run([ssm, "check", variant(-1), *as_of, "--cache-dir", cache], cwd=str(work), sample=False).check()
    Run([yamllint, variant(-2)], cwd=str(work), sample=False)
    walls: dict[str, list[float]] = {"ssm": [], "ssm_no_cache": [], "yamllint": []}
    for number in range(runs):
        file = variant(number)
        walls["yamllint"].append(Run([yamllint, file], cwd=str(work), sample=False).wall)
        walls["ssm"].append(Run([ssm, "check", file, *as_of, "--cache-dir", cache], cwd=str(work),
                                sample=False).check().wall)
        walls["ssm_no_cache"].append(Run([ssm, "check", file, *as_of, "--no-cache"], cwd=str(work),
                                         sample=False).check().wall)
    return {name: {"best": min(values), "median": statistics.median(values)} for name, values in walls.items()}


# ---- the table ------------------------------------------------------------------------------

class Table:
    def __init__(self):
        self.rows: list[tuple[str, str, str, str]] = []

    def add(self, figure: str, value: str, target: str = "", met: bool | None = None) -> None:
        self.rows.append((figure, value, target, "" if met is None else ("yes" if met else "NO")))

    def print(self) -> None:
        header = ("figure", "value", "target", "met?")
        widths = [max(len(row[i]) for row in [header, *self.rows]) for i in range(4)]
        line = "  ".join("{:<%d}" % w for w in widths)
        print(line.format(*header))
        print(line.format(*("-" * w for w in widths)))
        for row in self.rows:
            print(line.format(*row).rstrip())


def measure(args, profile: str, count: int, ssm: str, work: Path, data: Path) -> dict:
    """Every figure of one portfolio: floor, audits, peak RSS, cache runs, the per-step split."""
    folder, files = portfolio(data, count, args.seed, profile)
    print(f"{profile} N = {count:,}: floor, audits (--jobs 1, --jobs 2), cache ...", file=sys.stderr, flush=True)
    best: dict[str, float] = {}
    peaks: dict[str, int] = {}
    for _ in range(args.repeat):
        for name, run in (("floor", lambda: floor(files)),
                          ("jobs1", lambda: audit(ssm, folder, work, 1, None)),
                          ("jobs2", lambda: audit(ssm, folder, work, 2, None))):
            outcome = run()
            seconds = outcome if name == "floor" else outcome.wall
            best[name] = min(best.get(name, seconds), seconds)
            if name != "floor":
                peaks[name] = max(peaks.get(name, 0), outcome.peak)
    cached: dict[str, float] = {}
    cache = str(work / f"cache-{profile}-{count}")
    for _ in range(args.repeat):
        shutil.rmtree(cache, ignore_errors=True)  # the first run starts from nothing
        for name, as_of in (("cache_first_s", AS_OF), ("cache_second_s", AS_OF),
                            ("cache_next_day_s", AS_OF + timedelta(days=1))):
            seconds = audit(ssm, folder, work, 2, cache, as_of).wall
            cached[name] = min(cached.get(name, seconds), seconds)
    shutil.rmtree(cache, ignore_errors=True)
    print(f"{profile} N = {count:,}: per-step split ...", file=sys.stderr, flush=True)
    steps = split(files, min(args.split_sample, count))
    return {"floor_s": best["floor"], "jobs1_s": best["jobs1"], "jobs2_s": best["jobs2"],
            "peak_rss_jobs1": peaks["jobs1"], "peak_rss_jobs2": peaks["jobs2"], "split_ms": steps,
            "first_file": files[0], "load": os.getloadavg()[0], **cached}


def judge(table: Table, profile: str, sizes: list[int], figures: dict) -> None:
    """The table's rows of one profile; targets are judged at the largest N."""
    targets = PROFILE_TARGETS[profile]
    largest, smallest = max(sizes), min(sizes)

    def target(key: str, value: float, judged: bool) -> tuple[str, bool | None]:
        limit = targets.get(key)
        if limit is None:
            return "", None
        return f"<= {limit:.1f}" + ("" if judged else f" (at {largest:,})"), (value <= limit if judged else None)

    for count in sizes:
        r = figures[count]
        judged = count == largest
        n = f"{profile} N={count:,}"
        table.add(f"{n} floor: read + CSafeLoader parse, 1 process",
                  f"{r['floor_s']:.2f} s ({count / r['floor_s']:,.0f} plans/s)")
        for jobs, key in ((1, "jobs1"), (2, "jobs2")):
            ratio = r[f"{key}_s"] / r["floor_s"]
            table.add(f"{n} ssm audit --jobs {jobs}", f"{r[f'{key}_s']:.2f} s ({count / r[f'{key}_s']:,.0f} plans/s)")
            table.add(f"{n} ssm audit --jobs {jobs} / floor", f"{ratio:.2f}", *target(key, ratio, judged))
        s = r["split_ms"]
        table.add(f"{n} per plan, ms: {'/'.join(STEPS)}",
                  " / ".join(f"{s[k]:.2f}" for k in STEPS) + f" = {sum(s.values()):.2f}")
        for key, jobs in (("peak_rss_jobs1", 1), ("peak_rss_jobs2", 2)):
            mb = r[key] / 2**20
            table.add(f"{n} peak RSS, audit --jobs {jobs} (process tree)", f"{mb:.0f} MB",
                      f"<= {TARGETS['rss']:.0f} MB", mb <= TARGETS["rss"])
        table.add(f"{n} audit --jobs 2, empty cache -> unchanged re-run -> next day",
                  f"{r['cache_first_s']:.2f} s -> {r['cache_second_s']:.2f} s -> {r['cache_next_day_s']:.2f} s")
        ratio = r["cache_second_s"] / r["cache_first_s"]
        table.add(f"{n} unchanged re-run / first", f"{ratio:.2f}", *target("second", ratio, judged))
        table.add(f"{n} unchanged re-run / audit --jobs 2 --no-cache", f"{r['cache_second_s'] / r['jobs2_s']:.2f}")
        ratio = r["cache_next_day_s"] / r["cache_first_s"]
        table.add(f"{n} next day (as-of + 1) re-run / first", f"{ratio:.2f}", *target("next_day", ratio, judged))
    if largest != smallest:
        for jobs in (1, 2):
            flat = figures[largest][f"peak_rss_jobs{jobs}"] / figures[smallest][f"peak_rss_jobs{jobs}"]
            table.add(f"{profile} peak RSS --jobs {jobs}, N={largest:,} / N={smallest:,}", f"{flat:.2f}",
                      f"<= {TARGETS['rss_flat']:.2f}", flat <= TARGETS["rss_flat"])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default=None, help="comma-separated portfolio sizes (default 1000,10000)")
    parser.add_argument("--profiles", default="small,large",
                        help="comma-separated portfolio profiles: small, large, mixed (default small,large)")
    parser.add_argument("--quick", action="store_true", help="N = 300 and 1,000, fewer cold-start runs")
    parser.add_argument("--repeat", type=int, default=1, help="runs of each timing; the best counts")
    parser.add_argument("--cold-runs", type=int, default=None, help="cold-start runs of each command (default 10)")
    parser.add_argument("--split-sample", type=int, default=1000, help="plans timed step by step (default 1000)")
    parser.add_argument("--seed", type=int, default=generate.SEED)
    parser.add_argument("--data", default=os.path.join(tempfile.gettempdir(), "ssm-bench"),
                        help="where portfolios are generated and kept between runs")
    parser.add_argument("--json", metavar="FILE", help="also write every figure to FILE")
    parser.add_argument("--stages-cost", type=int, metavar="N",
                        help="only the per-plan split of N plans, with both built-in packs and with the Focus "
                             "pack alone (target: at most 1.25x)")
    args = parser.parse_args(argv)
    profiles = [p.strip() for p in args.profiles.split(",") if p.strip()]
    unknown = [p for p in profiles if p not in PROFILE_TARGETS]
    if unknown or not profiles:
        parser.error(f"--profiles: unknown profile {', '.join(unknown) or '(none)'}; "
                     f"choose from {', '.join(PROFILE_TARGETS)}")
    if args.stages_cost:
        data = Path(args.data)
        data.mkdir(parents=True, exist_ok=True)
        return stages_cost(data, args.stages_cost, args.seed, args.repeat, profiles[0])
    sizes = [int(s) for s in (args.sizes or ("300,1000" if args.quick else "1000,10000")).split(",")]
    cold_runs = args.cold_runs or (4 if args.quick else 10)

    info = machine()
    print(f"machine: {info['nproc']} cores, {info['cpu']}, Python {info['python']}, {info['system']}")
    print(f"load average at start: {', '.join(f'{x:.2f}' for x in info['load'])}", flush=True)
    data = Path(args.data)
    data.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="run-", dir=data))
    ssm, yamllint = tool("ssm"), tool("yamllint")
    compile_bytecode()
    results: dict = {"machine": info, "profiles": {}}
    table = Table()
    try:
        for profile in profiles:
            results["profiles"][profile] = {count: measure(args, profile, count, ssm, work, data) for count in sizes}
        print("cold start ...", file=sys.stderr, flush=True)
        # A plan of the largest profile asked for: the pre-commit hook's usual file.
        plan = results["profiles"][profiles[-1]][min(sizes)]["first_file"]
        cold = cold_start(ssm, yamllint, plan, work, cold_runs)
        results["cold_start"] = cold
    finally:
        shutil.rmtree(work, ignore_errors=True)
    results["machine"]["load_end"] = os.getloadavg()

    for profile in profiles:
        judge(table, profile, sizes, results["profiles"][profile])
    table.add("cold start: ssm check, 1 new plan (rules cached)",
              f"{cold['ssm']['best'] * 1000:.0f} ms (median {cold['ssm']['median'] * 1000:.0f})")
    table.add("cold start: ssm check --no-cache",
              f"{cold['ssm_no_cache']['best'] * 1000:.0f} ms (median {cold['ssm_no_cache']['median'] * 1000:.0f})")
    table.add("cold start: yamllint, same file",
              f"{cold['yamllint']['best'] * 1000:.0f} ms (median {cold['yamllint']['median'] * 1000:.0f})")
    ratio = cold["ssm"]["best"] / cold["yamllint"]["best"]
    table.add("cold start ssm check / yamllint", f"{ratio:.2f}", f"<= {TARGETS['cold']:.1f}", ratio <= TARGETS["cold"])
    print()
    table.print()
    loads = "; ".join(f"{profile} N={count:,} {figures['load']:.2f}"
                      for profile, by_size in results["profiles"].items() for count, figures in by_size.items())
    print(f"\nload average (1 min) after each portfolio: {loads}")
    print(f"load average at end: {', '.join(f'{x:.2f}' for x in results['machine']['load_end'])}")
    missed = [row[0] for row in table.rows if row[3] == "NO"]
    print(f"targets: {'all met' if not missed else f'{len(missed)} missed: ' + '; '.join(missed)}")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2, default=str) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
