"""A run's results, the one input every output format takes."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from typing import Any

from ssm_rules.pipeline import PlanResult


@dataclass
class Report:
    as_of: date
    results: list[PlanResult]
    rules: dict[str, Any] = field(default_factory=dict)  # rule ID -> Rule, for formats that describe rules
    command: str = "check"  # "check" or "validate"
    owner: str | None = None  # --owner: only this team member's findings are in the results

    def summary(self) -> dict[str, int]:
        """The contract's summary: an invalid plan counts as an error."""
        counts = {"plans": len(self.results), "error": 0, "warning": 0, "info": 0}
        for result in self.results:
            if not result.valid:
                counts["error"] += 1
            for finding in result.findings:
                counts[finding.severity] += 1
        return counts

    def to_json(self) -> dict:
        return {
            "version": 1,
            "as_of": self.as_of.isoformat(),
            "plans": [result.to_json() for result in self.results],
            "summary": self.summary(),
        }
