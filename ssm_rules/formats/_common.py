"""What the CI formats (sarif, junit, github, gitlab, markdown) share.

Every format reports two kinds of item per plan: the findings of the rules, and, for a plan
that fails validation, its validation problems. The CI systems have no notion of the latter,
so they are reported as items of the tool's own rule `SSM-META-000`, always an error. The
suppression meta rules (`SSM-META-001`, `SSM-META-002`) are described in `ssm_rules.suppressions`.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any, Iterator
from urllib.parse import quote

INVALID_PLAN_RULE = "SSM-META-000"

# ID -> title, what, why: the tool's own rules, described like a pack's rules.
META_RULES: dict[str, tuple[str, str, str]] = {
    INVALID_PLAN_RULE: (
        "Plan does not follow the plan format",
        "The file could not be read as a plan of format ssm-plan/1: a YAML syntax error, an "
        "unknown key, a wrong type or a reference to an ID that does not exist.",
        "A plan the tool cannot read cannot be checked: every rule is silently off for it. "
        "`ssm validate` reports the same problems; `ssm schema` gives editors the format.",
    ),
}


@dataclass(frozen=True)
class Item:
    """One thing to report: a finding, or one validation problem of an invalid plan."""

    file: str
    account: str | None
    rule: str
    severity: str
    message: str
    line: int | None = None
    column: int | None = None
    path: str | None = None
    subject_kind: str | None = None
    subject_id: str | None = None
    guidance: tuple[str, ...] = ()
    next_action: str | None = None
    owner: str | None = None
    invalid: bool = False

    @property
    def where(self) -> str:
        """`file:line:column`, as far as known."""
        return ":".join(str(part) for part in (self.file, self.line, self.column) if part)

    @property
    def message_with_action(self) -> str:
        if not self.next_action:
            return self.message
        owner = f" (owner: {self.owner})" if self.owner else ""
        return f"{self.message}\nNext: {self.next_action}{owner}"


def plan_items(result) -> Iterator[Item]:
    """The items of one PlanResult, validation problems first, then findings in their order."""
    for problem in result.errors:
        yield Item(file=result.file, account=result.account, rule=INVALID_PLAN_RULE, severity="error",
                   message=problem.message, line=problem.line, column=problem.column, path=problem.path,
                   subject_kind="plan", subject_id=result.account, invalid=True)
    for finding in result.findings:
        data = finding.to_json()
        location = data.get("location") or {}
        subject = data.get("subject") or {}
        action = data.get("next_action") or {}
        yield Item(
            file=location.get("file") or result.file,
            account=result.account,
            rule=str(data["rule"]),
            severity=str(data["severity"]),
            message=str(data.get("message") or ""),
            line=location.get("line"),
            column=location.get("column"),
            path=location.get("path"),
            subject_kind=subject.get("kind"),
            subject_id=None if subject.get("id") is None else str(subject.get("id")),
            guidance=tuple(str(g) for g in data.get("guidance") or ()),
            next_action=action.get("text"),
            owner=None if action.get("owner") is None else str(action.get("owner")),
        )


def report_items(report) -> list[Item]:
    return [item for result in report.results for item in plan_items(result)]


# Where the tool's own rules are documented: sections of the README.
PROJECT_URI = "https://github.com/ssm-rules/ssm-rules"
_META_DOCS = {INVALID_PLAN_RULE: PROJECT_URI + "#the-plan-format-in-brief"}
_SUPPRESSION_DOCS = PROJECT_URI + "#suppressing-a-finding-in-the-plan"


@dataclass(frozen=True)
class RuleInfo:
    id: str
    title: str
    what: str
    why: str
    example: str
    guidance: tuple[str, ...]
    severity: str | None
    url: str | None = None  # its documentation, when its pack (or the tool) says where


def rule_info(report, rule_id: str) -> RuleInfo:
    """A rule's documentation from the report's rules, the tool's meta rules, or just its ID."""
    rule = (getattr(report, "rules", None) or {}).get(rule_id)
    if rule is not None:
        description = _get(rule, "description") or {}
        return RuleInfo(
            id=rule_id,
            title=str(_get(rule, "title") or rule_id),
            what=_text(_get(description, "what")),
            why=_text(_get(description, "why")),
            example=str(_get(description, "example") or "").strip("\n").rstrip(),  # keeps its lines
            guidance=tuple(str(g) for g in (_get(rule, "guidance") or ())),
            severity=_get(rule, "severity"),
            url=_get(rule, "url"),
        )
    meta = _meta_rules().get(rule_id)
    if meta is not None:
        title, what, why = meta
        return RuleInfo(rule_id, title, what, why, "", (), None, _META_DOCS.get(rule_id, _SUPPRESSION_DOCS))
    return RuleInfo(rule_id, rule_id, "", "", "", (), None)


def _meta_rules() -> dict[str, tuple[str, str, str]]:
    from ssm_rules.suppressions import META_RULES as SUPPRESSION_RULES

    return {**META_RULES, **SUPPRESSION_RULES}


def _get(obj: Any, name: str) -> Any:
    if obj is None:
        return None
    if isinstance(obj, dict):
        return obj.get(name)
    return getattr(obj, name, None)


def _text(value: Any) -> str:
    return "" if value is None else " ".join(str(value).split())


def relative_path(file: str, root: str | os.PathLike | None = None) -> str:
    """`file` as a forward-slash path relative to `root` (default: the current directory)
    when it lies under it; otherwise as given (forward slashes)."""
    if file in ("-", "") or file.startswith("<"):
        return file
    path = Path(file)
    if path.is_absolute():
        base = Path(root) if root is not None else Path.cwd()
        try:
            return PurePosixPath(*path.relative_to(base).parts).as_posix()
        except ValueError:
            return path.as_posix()
    normal = os.path.normpath(file).replace(os.sep, "/").replace("\\", "/")
    return normal


def relative_uri(file: str, root: str | os.PathLike | None = None) -> str:
    """A URI reference for `file`: relative (percent-encoded) under `root`, else a file: URI."""
    relative = relative_path(file, root)
    if Path(relative).is_absolute():
        return Path(relative).as_uri()
    return quote(relative, safe="/")


def plural(count: int, noun: str, plural_noun: str | None = None) -> str:
    return f"{count} {noun if count == 1 else (plural_noun or noun + 's')}"


def summary_sentence(report) -> str:
    """`5 plans: 1 invalid, 3 errors, 2 warnings, 0 info` (findings only; invalid plans apart)."""
    counts = report.summary()
    invalid = sum(1 for result in report.results if not result.valid)
    errors = counts["error"] - invalid
    return (f"{plural(counts['plans'], 'plan')}: {invalid} invalid, {plural(errors, 'error')}, "
            f"{plural(counts['warning'], 'warning')}, {counts['info']} info")
