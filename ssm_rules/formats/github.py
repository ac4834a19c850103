"""`--format github`: GitHub Actions workflow commands, shown as annotations on the diff.

    ::error file=facts/x.yaml,line=88,col=5,title=SSM-BDU-001::Opportunity ... %0ANext: ... (owner: jane.doe)

Errors become `::error`, warnings `::warning`, info `::notice`; an invalid plan's problems are
`::error` with the title SSM-META-000. A last plain line sums up the run for the log.
GitHub shows at most 10 annotations of each level per step (50 per job) on the pull request;
upload the SARIF report to code scanning for the complete list.
"""

from __future__ import annotations

from ssm_rules.formats._common import plan_items, relative_path, summary_sentence

COMMANDS = {"error": "error", "warning": "warning", "info": "notice"}


def render(report, *, root: str | None = None, **_options) -> str:
    lines = []
    for result in report.results:
        for item in plan_items(result):
            properties = [f"file={_property(relative_path(item.file, root))}"]
            if item.line:
                properties.append(f"line={item.line}")
                if item.column:
                    properties.append(f"col={item.column}")
            properties.append(f"title={_property(item.rule)}")
            lines.append(f"::{COMMANDS[item.severity]} {','.join(properties)}::{_data(item.message_with_action)}")
    lines.append(f"ssm: {summary_sentence(report)}.")
    return "\n".join(lines) + "\n"


def _data(text: str) -> str:
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def _property(text: str) -> str:
    return _data(text).replace(":", "%3A").replace(",", "%2C")
