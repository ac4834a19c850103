"""`--format junit`: JUnit XML, one test case per plan, for Jenkins, GitLab and friends.

A plan's test case fails when the plan is invalid or has a finding at or above the failing
severity (`--fail-on`, default error); the failure lists all its findings, one per line as
`file:line:column: severity RULE message`, each followed by its next action. Findings below
the failing severity of a passing plan go to the test case's `system-out`, so they are still
visible in the CI's test view.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET

from ssm_rules.formats._common import Item, plan_items, plural, relative_path
from ssm_rules.severity import SEVERITIES, failing_severities

_INVALID_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")


def render(report, *, fail_on: str = "error", root: str | None = None, **_options) -> str:
    failing = failing_severities(fail_on)
    suites = ET.Element("testsuites", name="ssm")
    suite = ET.SubElement(suites, "testsuite", name=f"ssm {getattr(report, 'command', 'check')}")
    properties = ET.SubElement(suite, "properties")
    ET.SubElement(properties, "property", name="as_of", value=report.as_of.isoformat())
    ET.SubElement(properties, "property", name="fail_on", value=fail_on)
    failures = 0
    for result in report.results:
        file = relative_path(result.file, root)
        case = ET.SubElement(suite, "testcase", name=_clean(file), classname=_classname(result.account),
                             file=_clean(file), time="0")
        items = list(plan_items(result))
        if not items:
            continue
        body = "\n".join(_line(item, root) for item in items) + "\n"
        if not result.valid or any(item.severity in failing for item in items):
            failures += 1
            failure = ET.SubElement(case, "failure", message=_clean(_failure_message(result, items)),
                                    type="invalid-plan" if not result.valid else _worst(items))
            failure.text = _clean(body)
        else:
            ET.SubElement(case, "system-out").text = _clean(body)
    count = str(len(report.results))
    for element in (suites, suite):
        element.set("tests", count)
        element.set("failures", str(failures))
        element.set("errors", "0")
        element.set("skipped", "0")
        element.set("time", "0")
    ET.indent(suites)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(suites, encoding="unicode") + "\n"


def _line(item: Item, root: str | None) -> str:
    where = ":".join(str(part) for part in (relative_path(item.file, root), item.line, item.column) if part)
    text = f"{where}: {item.severity} {item.rule} {item.message}"
    if item.next_action:
        owner = f" (owner: {item.owner})" if item.owner else ""
        text += f"\n    next: {item.next_action}{owner}"
    return text


def _failure_message(result, items: list[Item]) -> str:
    if not result.valid:
        return f"invalid plan: {plural(len(result.errors), 'problem')}"
    counts = {severity: sum(1 for item in items if item.severity == severity) for severity in SEVERITIES}
    return ", ".join([plural(counts["error"], "error"), plural(counts["warning"], "warning"), f"{counts['info']} info"])


def _worst(items: list[Item]) -> str:
    for severity in SEVERITIES:
        if any(item.severity == severity for item in items):
            return severity
    return "info"


def _classname(account: str | None) -> str:
    # Jenkins splits the class name at dots into package and class: keep account IDs whole.
    return "ssm." + (account or "unknown").replace(".", "_")


def _clean(text: str) -> str:
    """XML 1.0 cannot carry most control characters, whatever the escaping."""
    return _INVALID_XML.sub("\ufffd", text)
