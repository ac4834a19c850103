"""The audit's reports, rendered from the view (`view.py`): HTML, Markdown and JSON.

The templates only lay the view out: `templates/index.html.j2` (Jinja2, autoescaped: every value
taken from a plan is shown as text; the pieces it repeats on every row are made in Python by
`pieces.py`, which escapes alike) and `templates/summary.md.j2` (every value escaped for
Markdown). The page and audit.json are streamed to their files piece by piece from the spool
(audit.json plan by plan), so memory stays flat however many plans there are.
"""

from __future__ import annotations

import json
import re
from datetime import date
from functools import lru_cache
from json.encoder import encode_basestring
from typing import Any, TextIO

from ssm_rules.audit.view import day_text


_DICT_ATTRIBUTES = frozenset(dir(dict))


@lru_cache(maxsize=None)
def _environments():
    from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape

    class ViewEnvironment(Environment):
        """Looks `a.name` up in a dict without trying it as an attribute first.

        Jinja tries getattr(), then [name]; the view's rows are dicts, so on a large page most
        of the million lookups raised and caught an AttributeError. A name that is one of dict's
        own attributes (`items`, `get`) still goes Jinja's way: the same result in every case.
        """

        def getattr(self, obj, attribute):
            if type(obj) is dict and attribute not in _DICT_ATTRIBUTES:
                try:
                    return obj[attribute]
                except KeyError:
                    return self.undefined(obj=obj, name=attribute)
            return Environment.getattr(self, obj, attribute)

    common = dict(loader=PackageLoader("ssm_rules.audit", "templates"), undefined=StrictUndefined,
                  trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=True)
    html = ViewEnvironment(autoescape=select_autoescape(enabled_extensions=("html.j2",), default=True), **common)
    markdown = ViewEnvironment(autoescape=False, finalize=markdown_escape, **common)
    for environment in (html, markdown):
        environment.filters["day"] = lambda d: day_text(d) if d else ""
        environment.filters["num"] = lambda n: f"{n:,}" if isinstance(n, int) else n
        environment.filters["money"] = full_money
        environment.filters["compact"] = compact_money
    from ssm_rules.audit import words

    words.install(html, markdown)  # the run's language: _(), plural, html_lang
    return html, markdown


def full_money(value) -> str:
    from ssm_rules.review.markdown import full

    return full(value)


def compact_money(value) -> str:
    from ssm_rules.review.text import compact

    return compact(value)


def render_markdown(view: dict) -> str:
    _, markdown = _environments()
    text = markdown.get_template("summary.md.j2").render(**view)
    text = re.sub(r"\n*(^#+ )", r"\n\n\1", text, flags=re.M)  # a blank line before every heading
    return re.sub(r"\n{3,}", "\n\n", text).strip() + "\n"


def markdown_escape(value: Any) -> Any:
    """Every value a Markdown template prints: plan text cannot turn into links, HTML or markup;
    `code spans` of messages stay as they are (the check's Markdown format does the same)."""
    from ssm_rules.formats.markdown import markdown_text

    if value is None:
        return ""
    if isinstance(value, (int, float)):
        return value
    return markdown_text(str(value))


def write_audit_json(stream: TextIO, as_of: date, spool, *, delta=None, pipeline=None) -> None:
    """audit.json: the `ssm check --format json` document, plus the pipeline's totals (with the
    stage pack) and history (when there is some).

    Written plan by plan, exactly as `json.dump(document, stream, indent=2, ensure_ascii=False)`
    would write the whole document, but without ever holding it.
    """
    summary = {"plans": 0, "error": 0, "warning": 0, "info": 0}
    stream.write(f'{{\n  "version": 1,\n  "as_of": {encode_basestring(as_of.isoformat())},\n  "plans": [')
    separator = "\n    "
    for row in spool.db.execute(f"""SELECT document, valid, invalid_since, {_FIRST_SEEN if delta else 'NULL'}
                                    FROM audit_plans p ORDER BY seq"""):
        document, valid, invalid_since, first_seen = row
        document = json.loads(document)
        summary["plans"] += 1
        if not valid:
            summary["error"] += 1
        for finding in document["findings"]:
            summary[finding["severity"]] = summary.get(finding["severity"], 0) + 1
        if delta is not None:
            for finding, seen in zip(document["findings"], json.loads(first_seen)):
                finding["first_seen"] = seen or as_of.isoformat()
            if not valid and invalid_since:
                document["invalid_since"] = invalid_since
        stream.write(separator + _indented(document, 2))
        separator = ",\n    "
    stream.write("\n  ]" if summary["plans"] else "]")
    stream.write(',\n  "summary": ' + _indented(summary, 1))
    if pipeline is not None:
        stream.write(',\n  "pipeline": ' + _indented({"totals": pipeline.to_json()}, 1))
    if delta is not None:
        stream.write(',\n  "history": ' + _indented(delta.to_json(), 1))
    stream.write("\n}\n")


# Each finding's first_seen, in the plan's order (one query for all plans, not one per plan).
_FIRST_SEEN = "(SELECT json_group_array(first_seen) FROM (SELECT first_seen FROM audit_findings WHERE plan_seq = p.seq ORDER BY idx))"


def _indented(value: Any, level: int) -> str:
    """`json.dumps(value, indent=2, ensure_ascii=False)` as nested `level` deep in a document.

    json's own indenting encoder is pure Python and slow; this one formats the structure itself
    and leaves the strings to json's C escaper, for the same bytes. `value` comes from
    json.loads (str keys; str, int, float, bool, None, list and dict values). Strings and
    the other scalars are written where they are met, not in a call of their own: a plan's
    document is mostly short strings, and audit.json of 10,000 plans has a million of them.
    """
    kind = type(value)
    if kind is dict:
        if not value:
            return "{}"
        inner = _BREAKS[level + 1] if level + 1 < len(_BREAKS) else "\n" + "  " * (level + 1)
        parts = []
        for key, item in value.items():
            kind = type(item)
            parts.append(inner + encode_basestring(key) + ": " + (
                encode_basestring(item) if kind is str else
                _indented(item, level + 1) if kind is dict or kind is list else _other(item, level + 1)))
        return "{" + ",".join(parts) + (_BREAKS[level] if level < len(_BREAKS) else "\n" + "  " * level) + "}"
    if kind is list:
        if not value:
            return "[]"
        inner = _BREAKS[level + 1] if level + 1 < len(_BREAKS) else "\n" + "  " * (level + 1)
        parts = []
        for item in value:
            kind = type(item)
            parts.append(inner + (encode_basestring(item) if kind is str else
                                  _indented(item, level + 1) if kind is dict or kind is list else _other(item, level + 1)))
        return "[" + ",".join(parts) + (_BREAKS[level] if level < len(_BREAKS) else "\n" + "  " * level) + "]"
    return _other(value, level)


_BREAKS = tuple("\n" + "  " * level for level in range(16))  # a line break and a level's indentation


def _other(value: Any, level: int) -> str:
    """A value that is not exactly a str, dict or list: a scalar, or a subclass of those."""
    if isinstance(value, str):
        return encode_basestring(value)
    if isinstance(value, dict):
        return _indented(dict(value), level)
    if isinstance(value, list):
        return _indented(list(value), level)
    if value is None:
        return "null"
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, int):
        return int.__repr__(value)
    return json.dumps(value)  # a float: its repr, or NaN and Infinity as json spells them


def render_all(view: dict, as_of: date, spool, *, delta=None, pipeline=None) -> dict:
    """The report directory's files: name -> text, or a function that streams it to a file.

    The page and the JSON of a large portfolio run to tens of megabytes: they are written
    piece by piece from the spool instead of being built first.
    """
    from ssm_rules.audit import pieces

    html, _markdown = _environments()
    page = html.get_template("index.html.j2")
    return {
        # (generate(), not stream().dump(): the page is a few million small pieces, and the
        # stream's own __next__ in Python cost a tenth of the rendering)
        "index.html": lambda stream: stream.writelines(page.generate(**view, **pieces.for_page(view))),
        "summary.md": render_markdown(view),
        "audit.json": lambda stream: write_audit_json(stream, as_of, spool, delta=delta, pipeline=pipeline),
    }
