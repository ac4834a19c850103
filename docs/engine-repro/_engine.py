"""Picks the engine a reproduction script runs against: the bundled, patched copy (default)
or, with --upstream, a durable-rules 2.0.28 installed from PyPI (`pip install durable-rules`
in a Python 3.11 or 3.12 virtual environment; it is not a dependency of ssm-rules)."""

from __future__ import annotations

import sys


def host():
    """A Host that runs actions in-line and starts no timer threads, and the engine module."""
    if "--upstream" in sys.argv:
        from durable import engine
    else:
        from ssm_rules._durable import engine

    class QuietHost(engine.Host):
        def _run(self):
            pass

    return QuietHost(), engine


def outcome(ok: bool, what: str) -> None:
    print(("ok: " if ok else "WRONG: ") + what, flush=True)
    if not ok:
        sys.exit(1)
