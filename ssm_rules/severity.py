"""A finding's severities and the `--fail-on` rule: the one place that lists them and orders them."""

from __future__ import annotations

SEVERITIES = ("error", "warning", "info")  # the most severe first
FAIL_ON = (*SEVERITIES, "never")  # `--fail-on` / `fail-on`: a severity, or never on findings
SEVERITY_RANK = {severity: rank for rank, severity in enumerate(SEVERITIES)}  # error 0, warning 1, info 2
SEVERITY_COLOURS = {"error": "red", "warning": "yellow", "info": "blue"}  # on a terminal (click's names)


def severity_rank(severity: object) -> int:
    """The severity's place in SEVERITIES; anything else ranks after them all."""
    return SEVERITY_RANK.get(severity, len(SEVERITIES))  # type: ignore[call-overload]


def failing_severities(fail_on: str) -> tuple[str, ...]:
    """The severities a finding must have to fail a run with this `--fail-on`: it and those above
    it (none for `never`)."""
    return () if fail_on == "never" else SEVERITIES[: SEVERITIES.index(fail_on) + 1]
