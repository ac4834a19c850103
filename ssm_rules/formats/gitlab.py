"""`--format gitlab`: a GitLab Code Quality report (a JSON array of Code Climate issues).

Save it as a `codequality` artifact and GitLab shows the findings in the merge request's
widget and diff. Severities: error -> major, warning -> minor, info -> info. Each issue's
`fingerprint` is the baseline's line-independent fingerprint (account, rule, subject, plan
path) plus its occurrence number, so GitLab sees a finding as the same one after lines move
and reports only what a merge request really adds or fixes.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter

from ssm_rules.formats._common import relative_path, report_items, rule_info

SEVERITIES = {"error": "major", "warning": "minor", "info": "info"}


def render(report, *, root: str | None = None, **_options) -> str:
    from ssm_rules.baseline import item_fingerprint

    issues = []
    occurrences: Counter[str] = Counter()
    for item in report_items(report):
        base = item_fingerprint(item)
        occurrences[base] += 1
        info = rule_info(report, item.rule)
        issue = {
            "type": "issue",
            "check_name": item.rule,
            "description": f"{item.rule}: {item.message}",
            "content": {"body": _body(item, info)},
            "categories": ["Style"],
            "severity": SEVERITIES[item.severity],
            "fingerprint": hashlib.sha256(f"{base}:{occurrences[base]}".encode()).hexdigest(),
            "location": {"path": relative_path(item.file, root), "lines": {"begin": int(item.line or 1)}},
            "engine_name": "ssm",
        }
        issues.append(issue)
    return json.dumps(issues, indent=2, ensure_ascii=False) + "\n"


def _body(item, info) -> str:
    parts = []
    if item.next_action:
        owner = f" (owner: {item.owner})" if item.owner else ""
        parts.append(f"**Next:** {item.next_action}{owner}")
    if info.title != item.rule:
        parts.append(f"**{item.rule}** {info.title}" + (f": {info.what}" if info.what else ""))
    if info.why:
        parts.append(f"*Why:* {info.why}")
    if item.guidance:
        parts.append("Guidance: " + ", ".join(item.guidance))
    return "\n\n".join(parts)
