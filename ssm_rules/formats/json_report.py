"""`--format json`: the document of docs/output-contract.md."""

from __future__ import annotations

import json


def render(report, **_options) -> str:
    return json.dumps(report.to_json(), indent=2, ensure_ascii=False) + "\n"
