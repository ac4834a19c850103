"""`--format sarif`: SARIF 2.1.0, for GitHub code scanning and other SARIF viewers.

One run; `tool.driver.rules` describes every rule that has a result (short description =
the rule's title, full description = what it checks, `help` = what, why and example,
`helpUri` = its documentation, when its pack declares a `url:`); every result has a `level`, the rule's stable ID, a relative
`artifactLocation.uri` and `region.startLine`, and a `partialFingerprints` entry that does not
depend on the line (the baseline's fingerprint), so code scanning tracks a finding across edits.
"""

from __future__ import annotations

import json
from collections import Counter
from typing import Any

from ssm_rules import __version__
from ssm_rules.formats._common import PROJECT_URI, Item, relative_uri, report_items, rule_info

SCHEMA_URI = "https://docs.oasis-open.org/sarif/sarif/v2.1.0/errata01/os/schemas/sarif-schema-2.1.0.json"
INFORMATION_URI = PROJECT_URI

LEVELS = {"error": "error", "warning": "warning", "info": "note"}


def render(report, *, root: str | None = None, **_options) -> str:
    return json.dumps(sarif_log(report, root=root), indent=2, ensure_ascii=False) + "\n"


def sarif_log(report, *, root: str | None = None) -> dict[str, Any]:
    from ssm_rules.baseline import item_fingerprint

    items = report_items(report)
    rule_ids = sorted({item.rule for item in items})
    index = {rule_id: position for position, rule_id in enumerate(rule_ids)}
    occurrences: Counter[str] = Counter()
    results = []
    for item in items:
        fingerprint = item_fingerprint(item)
        occurrences[fingerprint] += 1
        results.append(_result(item, index[item.rule], root, f"{fingerprint}:{occurrences[fingerprint]}"))
    run: dict[str, Any] = {
        "tool": {
            "driver": {
                "name": "ssm",
                "fullName": "ssm-rules: Signature Selling Method account-plan checker",
                "version": __version__,
                "semanticVersion": __version__,
                "informationUri": INFORMATION_URI,
                "rules": [_descriptor(report, rule_id) for rule_id in rule_ids],
            }
        },
        "columnKind": "unicodeCodePoints",
        "results": results,
        "properties": {"as_of": report.as_of.isoformat()},
    }
    return {"$schema": SCHEMA_URI, "version": "2.1.0", "runs": [run]}


def _descriptor(report, rule_id: str) -> dict[str, Any]:
    info = rule_info(report, rule_id)
    what = info.what or info.title
    markdown = [f"**{info.title}**", "", what]
    text = [info.title, "", what]
    if info.why:
        markdown += ["", f"*Why:* {info.why}"]
        text += ["", f"Why: {info.why}"]
    if info.example:
        markdown += ["", "*Example:*", "", "```yaml", info.example, "```"]
        text += ["", "Example:", info.example]
    if info.guidance:
        markdown += ["", "Guidance: " + ", ".join(info.guidance)]
        text += ["", "Guidance: " + ", ".join(info.guidance)]
    descriptor: dict[str, Any] = {
        "id": rule_id,
        "name": _pascal(info.title) or rule_id,
        "shortDescription": {"text": info.title},
        "fullDescription": {"text": what},
        "help": {"text": "\n".join(text), "markdown": "\n".join(markdown)},
    }
    if info.url:  # a custom pack without `url:` has no page to link to; a made-up one would 404
        descriptor["helpUri"] = info.url
    tags = ["ssm", *info.guidance]
    descriptor["properties"] = {"tags": list(dict.fromkeys(tags))}
    return descriptor


def _result(item: Item, rule_index: int, root: str | None, fingerprint: str) -> dict[str, Any]:
    # A problem without a line (an unreadable file) is put on the first line: code scanning
    # shows results with a region best, and every result then has one.
    region: dict[str, Any] = {"startLine": int(item.line or 1)}
    if item.line and item.column:
        region["startColumn"] = int(item.column)
    physical: dict[str, Any] = {"artifactLocation": {"uri": relative_uri(item.file, root)}, "region": region}
    location: dict[str, Any] = {"physicalLocation": physical}
    logical = _logical_location(item)
    if logical:
        location["logicalLocations"] = [logical]
    result: dict[str, Any] = {
        "ruleId": item.rule,
        "ruleIndex": rule_index,
        "level": LEVELS[item.severity],
        "message": {"text": item.message_with_action.replace("\n", " ")},
        "locations": [location],
        "partialFingerprints": {"ssmFingerprint/v1": fingerprint},
    }
    properties: dict[str, Any] = {}
    if item.account:
        properties["account"] = item.account
    if item.subject_kind:
        properties["subject"] = {"kind": item.subject_kind, "id": item.subject_id}
    if item.guidance:
        properties["guidance"] = list(item.guidance)
    if item.next_action:
        properties["next_action"] = {"text": item.next_action, "owner": item.owner}
    if properties:
        result["properties"] = properties
    return result


def _logical_location(item: Item) -> dict[str, Any] | None:
    if not item.path:
        return None
    name = item.path.rsplit(".", 1)[-1]
    qualified = f"{item.account}/{item.path}" if item.account else item.path
    return {"name": name, "fullyQualifiedName": qualified, "kind": "object"}


def _pascal(title: str) -> str:
    return "".join(word[:1].upper() + word[1:] for word in "".join(
        c if c.isalnum() else " " for c in title).split())
