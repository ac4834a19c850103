"""Hand-made findings and reports for the CI-format, suppression, baseline and config tests.

`FakeFinding` has exactly the contract's `to_json()` shape; the real `ssm_rules.findings.Finding`
is exercised by the golden tests on facts/.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from types import SimpleNamespace

from ssm_rules.errors import PlanProblem
from ssm_rules.pipeline import PlanResult
from ssm_rules.report import Report

AS_OF = date(2026, 11, 27)


@dataclass(frozen=True)
class FakeFinding:
    rule: str
    severity: str
    message: str
    line: int | None
    file: str = "plans/northwind.yaml"
    column: int | None = 5
    path: str | None = "opportunities[0]"
    subject: dict = field(default_factory=lambda: {"kind": "opportunity", "id": "omni-platform"})
    guidance: tuple = ("G60",)
    action: str = "Ask the sponsor for an introduction."
    owner: str | None = "jane.doe"

    def to_json(self) -> dict:
        return {
            "rule": self.rule,
            "severity": self.severity,
            "guidance": list(self.guidance),
            "message": self.message,
            "subject": dict(self.subject),
            "location": {"file": self.file, "line": self.line, "column": self.column, "path": self.path},
            "next_action": {"text": self.action, "owner": self.owner},
        }


def rule(rule_id: str, title: str, severity: str = "error", guidance=("G60",)):
    return SimpleNamespace(id=rule_id, title=title, severity=severity, guidance=list(guidance),
                           description={"what": f"Checks that {title.lower()} does not happen.",
                                        "why": "The method says so.", "example": "Add it."})


RULES = {
    "SSM-BDU-001": rule("SSM-BDU-001", "Opportunity has no key decision leader"),
    "SSM-REL-002": rule("SSM-REL-002", "Owned contact has no goal", "warning", ("G70",)),
    "SSM-PLAN-012": rule("SSM-PLAN-012", "No vendor preference", "info", ("G12",)),
}


def sample_report(**overrides) -> Report:
    """Three plans: one with an error, a warning and an info; one invalid; one clean."""
    northwind = PlanResult(
        file="plans/northwind.yaml", account="northwind-retail", account_owner="jane.doe",
        outcome={"met": ["G80"], "missing": ["G81"]},
        findings=[
            FakeFinding("SSM-BDU-001", "error", "Opportunity 'Omni | platform' has no key decision leader.", 88),
            FakeFinding("SSM-REL-002", "warning", "Contact 'Li Wei' has no goal, 100% sure.", 40, column=5,
                        path="contacts[0]", subject={"kind": "contact", "id": "li-wei"}, guidance=("G70",),
                        owner="raj.patel"),
            FakeFinding("SSM-PLAN-012", "info", "No vendor preference.", 20, column=3, path="insight.preferences",
                        subject={"kind": "plan", "id": "northwind-retail"}, guidance=("G12",)),
        ],
    )
    broken = PlanResult(file="plans/broken.yaml", account="broken", errors=[
        PlanProblem("unknown key `ownr` in account: did you mean `owner`?", 5, 3, "account.ownr"),
        PlanProblem("missing required key `name` in account", 3, 1, "account"),
    ])
    clean = PlanResult(file="plans/clean.yaml", account="clean", outcome={"met": ["G80"], "missing": []})
    values = {"as_of": AS_OF, "results": [northwind, broken, clean], "rules": dict(RULES)}
    values.update(overrides)
    return Report(**values)
