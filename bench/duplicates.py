"""Plans whose opportunities all share one priority: the built-in rules must stay near-linear.

The duplicate-priority rule (SSM-OPP-003) used to pair opportunities: 2,000 sharing a priority
made 4 million engine matches, 207 s and 4.5 GB. It now reads a per-priority count from the
facts. This runs the real `ssm check` on such plans and prints the time and the peak memory
for each size; doubling the opportunities should roughly double the time.

    .venv/bin/python bench/duplicates.py [--sizes 250,500,1000,2000]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def plan(count: int) -> str:
    lines = ["format: ssm-plan/1", "account: {id: acme, name: Acme, owner: jane.doe}", "opportunities:"]
    lines += [f"  - {{id: o{i}, name: Opportunity {i}, priority: 1}}" for i in range(count)]
    return "\n".join(lines) + "\n"


def run(path: Path) -> tuple[float, float]:
    """Wall seconds and peak RSS (MB) of one `ssm check`, without the cache."""
    start = time.perf_counter()
    child = subprocess.Popen([sys.executable, "-m", "ssm_rules", "check", str(path), "--no-cache", "--isolated",
                              "--as-of", "2026-11-27", "--format", "json"], stdout=subprocess.DEVNULL)
    _, status, usage = os.wait4(child.pid, 0)
    seconds = time.perf_counter() - start
    if os.waitstatus_to_exitcode(status) not in (0, 1):
        raise SystemExit(f"ssm check failed on {path}")
    return seconds, usage.ru_maxrss / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="250,500,1000,2000", help="opportunities per plan, comma-separated")
    sizes = [int(size) for size in parser.parse_args().sizes.split(",")]
    with tempfile.TemporaryDirectory() as directory:
        print(f"{'opportunities':>13}  {'seconds':>8}  {'peak MB':>8}  {'s / 1,000 opp.':>14}")
        for size in sizes:
            path = Path(directory) / f"shared-priority-{size}.yaml"
            path.write_text(plan(size), encoding="utf-8")
            seconds, peak = run(path)
            print(f"{size:>13,}  {seconds:>8.2f}  {peak:>8.0f}  {1000 * seconds / size:>14.2f}")


if __name__ == "__main__":
    main()
