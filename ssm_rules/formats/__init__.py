"""Output formats: each a module with `render(report, **options) -> str`, imported when used.

Formats are pure functions of a `Report`; writing the text somewhere is the command's job.
"""

from __future__ import annotations

import importlib

FORMATS: dict[str, str] = {
    "text": "ssm_rules.formats.text",
    "json": "ssm_rules.formats.json_report",
    "sarif": "ssm_rules.formats.sarif",
    "junit": "ssm_rules.formats.junit",
    "github": "ssm_rules.formats.github",
    "gitlab": "ssm_rules.formats.gitlab",
    "markdown": "ssm_rules.formats.markdown",
}


def render(report, output_format: str, **options) -> str:
    module = importlib.import_module(FORMATS[output_format])
    return module.render(report, **options)
