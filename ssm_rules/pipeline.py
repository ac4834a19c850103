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


class Checker:
    """Checks plans against compiled rule packs; build one per process and reuse it.

    Compiling the packs and registering them with the engine costs tens of milliseconds, so a
    portfolio run builds one Checker and feeds it every plan.
    """

    def __init__(self, *, rule_dirs=(), include_builtin: bool = True, packs=None,
                 settings: dict | None = None, severity: dict | None = None, selected=None):
        from ssm_rules.compiler import compile_packs
        from ssm_rules.engine import RuleEngine
        from ssm_rules.rulepack import load_packs

        self.packs = list(packs) if packs is not None else load_packs(list(rule_dirs), include_builtin)
        self.compiled = compile_packs(self.packs, settings=settings, severity_overrides=severity, selected=selected)
        self.engine = RuleEngine(self.compiled)
        self.rules = {rule_id: compiled.rule for rule_id, compiled in self.compiled.rules.items()
                      if compiled.rule.has_finding}

    def check_file(self, file: str, as_of: date, raw: bytes | None = None) -> PlanResult:
        return self.check_loaded(load_plan(file, raw), as_of)

    def check_data(self, data: dict, file: str, as_of: date) -> PlanResult:
        """Check a plan given as data (rule examples, tests): dumped to YAML so locations exist."""
        import yaml

        return self.check_file(file, as_of, raw=yaml.safe_dump(data, sort_keys=False).encode("utf-8"))

    def check_loaded(self, loaded: LoadedPlan, as_of: date) -> PlanResult:
        from ssm_rules.facts import plan_facts
        from ssm_rules.findings import build_findings, outcome

        result = validation_result(loaded)
        if loaded.plan is None:
            return result
        facts = plan_facts(loaded.plan, as_of)
        engine_result = self.engine.run(facts)
        if engine_result.errors:
            # A rule that could not be evaluated must never look like a clean plan.
            result.errors = [PlanProblem(f"the rules could not be checked: {error}") for error in engine_result.errors]
            return result
        result.findings = build_findings(self.compiled, facts, engine_result, loaded.document.locate, loaded.file)
        result.outcome = outcome(self.packs, engine_result.derived)
        result.account_owner = loaded.plan.account.owner
        return result
