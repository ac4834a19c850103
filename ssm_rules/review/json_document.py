"""`ssm pipeline --format json`: the document of docs/output-contract.md (`version` 1)."""

from __future__ import annotations

import json


def render(review, **_options) -> str:
    return json.dumps(review.to_json(), indent=2, ensure_ascii=False, allow_nan=False) + "\n"
