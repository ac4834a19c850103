"""Where a next-day check of an unchanged plan goes: each step `Checker.check_file` runs, timed.

A nightly audit checks plans it checked the night before. With the cache, an unchanged plan is
checked from its result entry alone: the facts it kept are moved to the new date
(facts.date_facts), the engine run of the last date is reused when no rule can tell the dates
apart (ssm_rules.replay), and the findings are placed where that run placed them. What is left is
reading the entry, re-dating the facts, the replay's check, the findings and writing the new entry. This checks a portfolio once on an as-of date (filling a fresh cache), then times
each step of the next day's check of every plan, in this process's CPU time, and says how many
plans reused their run.

    .venv/bin/python bench/nextday.py [--count 500] [--profile small|large]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import generate  # noqa: E402 - bench/generate.py, beside this file

STEPS = ("read", "result entry", "re-date facts", "replay", "findings", "write")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=500, help="plans (default 500)")
    parser.add_argument("--profile", default="small", choices=("small", "large", "mixed"))
    options = parser.parse_args()

    from ssm_rules import loader
    from ssm_rules.cache import Cache, plan_key
    from ssm_rules.facts import date_facts
    from ssm_rules.pipeline import Checker

    with tempfile.TemporaryDirectory() as scratch:
        folder = Path(scratch) / "plans"
        folder.mkdir()
        files = []
        for index in range(options.count):
            path = folder / f"plan-{index}.yaml"
            path.write_text(generate.plan_text(index, profile=options.profile), encoding="utf-8")
            files.append(str(path))
        checker = Checker(cache=Cache(Path(scratch) / "cache", os.urandom(32)))  # a throwaway cache
        first, next_day = generate.AS_OF, generate.AS_OF + timedelta(days=1)
        for file in files:
            checker.check_file(file, first)

        times = dict.fromkeys(STEPS, 0.0)
        reused = 0
        clock = time.process_time
        for file in files:
            t0 = clock()
            raw = loader.read_path(file)
            key = plan_key(raw, file)
            t1 = clock()
            _, earlier = checker._cached_result(file, key, next_day)
            t2 = clock()
            facts = date_facts(earlier.facts, next_day)
            t3 = clock()
            replayed = checker.replayer.replay(facts, earlier.record, next_day)
            if replayed is None:  # a threshold crossed overnight: the engine runs (not timed here)
                continue
            reused += 1
            engine_result, record = replayed
            t4 = clock()
            result = earlier.new_result()
            checker._complete(result, facts, engine_result, earlier.locate, earlier.result.account_owner)
            t5 = clock()
            checker._keep(result, key, next_day, record, facts, earlier.packed_facts)
            t6 = clock()
            for step, start, end in zip(STEPS, (t0, t1, t2, t3, t4, t5), (t1, t2, t3, t4, t5, t6)):
                times[step] += end - start
    if not reused:
        print("no plan reused its engine run")
        return 1
    per_plan = {step: 1000 * seconds / reused for step, seconds in times.items()}
    print(f"{options.profile} plans: {reused} of {options.count} reused their engine run the next day")
    print("next-day check, CPU ms a plan: " + " / ".join(f"{step} {value:.2f}" for step, value in per_plan.items())
          + f" = {sum(per_plan.values()):.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
