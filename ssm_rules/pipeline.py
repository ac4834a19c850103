"""Wires the steps for one plan: file -> document -> plan -> facts -> engine -> findings.

The commands call this; it has no output formatting and no engine syntax of its own.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from typing import Any

from ssm_rules.errors import PlanError, PlanProblem


@dataclass
class PlanResult:
    """What one plan file came to: either validation errors or findings and the outcome."""

    file: str
    account: str | None = None
    errors: list[PlanProblem] = field(default_factory=list)
    findings: list[Any] = field(default_factory=list)  # ssm_rules.findings.Finding
    outcome: dict | None = None
    account_owner: str | None = None
    document: Any = None  # the loaded Document, for formats that quote the source (suppressions)

    @property
    def valid(self) -> bool:
        return not self.errors

    def to_json(self) -> dict:
        result: dict[str, Any] = {"file": self.file, "account": self.account}
        if self.errors:
            result["errors"] = [problem.to_json(self.file) for problem in self.errors]
            result["findings"] = []
            return result
        if self.outcome is not None:
            result["outcome"] = self.outcome
        result["findings"] = [finding.to_json() for finding in self.findings]
        return result


@dataclass
class LoadedPlan:
    file: str
    document: Any = None
    plan: Any = None  # ssm_rules.model.Plan when valid
    problems: list[PlanProblem] = field(default_factory=list)


def load_plan(file: str, raw: bytes | None = None) -> LoadedPlan:
    """Read and validate one plan file (or `raw` bytes named `file`, e.g. from stdin)."""
    from ssm_rules import loader, model

    loaded = LoadedPlan(file)
    try:
        loaded.document = loader.load_path(file) if raw is None else loader.load_bytes(raw, file)
        loaded.plan = model.validate(loaded.document)
    except PlanError as error:
        loaded.problems = error.problems
    return loaded


def account_id_of(loaded: LoadedPlan) -> str | None:
    """The account ID even of an invalid plan, when the file gives one: reports name it."""
    if loaded.plan is not None:
        return loaded.plan.account.id
    data = getattr(loaded.document, "data", None)
    account = data.get("account") if isinstance(data, dict) else None
    value = account.get("id") if isinstance(account, dict) else None
    return value if isinstance(value, str) else None


def validation_result(loaded: LoadedPlan) -> PlanResult:
    return PlanResult(file=loaded.file, account=account_id_of(loaded), errors=list(loaded.problems),
                      document=loaded.document)
