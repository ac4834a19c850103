"""The rule engine: durable-rules 2.0.28, carried in this package with our patches.

Upstream (MIT; see LICENSE and NOTICE) has not been released since 2020, and its source
distribution no longer builds on Python 3.13 or on current C compilers. `engine` is
upstream's `durable.engine` and `_core` its C extension `durable_rules_engine`, both renamed
into this package so that they never meet a durable-rules installed from PyPI. PATCHES.md
says what we changed and why; `PATCHES` names the same patches for `ssm --version`.
"""

from __future__ import annotations

import logging

VERSION = "2.0.28"
PATCHES = ("python-3.13", "namespaced", "no-utcfromtimestamp", "join-short-circuit", "state-context-init",
           "batch-errors", "json-exponent", "list-limits", "regex-number-buffer", "number-text-length")  # as in PATCHES.md

logger = logging.getLogger(__name__)  # upstream's `durable.logger`, which engine.py uses


def describe() -> str:
    """The engine build in use, for `ssm --version` and bug reports (never raises): two lines,
    the version with its patches and the C core's file (or why it cannot load)."""
    label = f"durable-rules {VERSION} (bundled, patched: {', '.join(PATCHES)})"
    try:
        from ssm_rules._durable import _core
    except ImportError as error:
        return f"{label}\n  C core: cannot load ({error})"
    return f"{label}\n  C core: {_core.__file__}"
