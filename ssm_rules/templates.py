"""Message templates: `{NAME.FIELD}`, `{settings.NAME}`, fallbacks `{a.b|c.d|"text"}`.

The only place that renders a rule's `message`, `next_action` and `location`. Rendering is a
regular-expression walk over the template, never `str.format`: nothing is evaluated, no
attribute is looked up, and a plan value is inserted as plain text (a value that itself looks
like `{o.name}` stays as it is).

Grammar, inside one pair of braces: alternatives separated by `|`, each `NAME.FIELD`,
`settings.NAME` or `"text"` (text without quotes or braces). The first alternative that has a
value wins; a field has a value when the fact has it (facts never hold empty text or lists).
`{{` and `}}` are literal braces. A placeholder where no alternative has a value renders as
nothing.
"""

from __future__ import annotations

import functools

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

# One token of a template: an escaped brace, a placeholder, or a stray brace (an error).
_TOKEN = re.compile(r"\{\{|\}\}|\{([^{}]*)\}|[{}]")
_IDENTIFIER = r"[A-Za-z_][A-Za-z0-9_]*"
_ALTERNATIVE = re.compile(rf'\s*(?:"(?P<text>[^"{{}}]*)"|(?P<name>{_IDENTIFIER})\.(?P<field>{_IDENTIFIER}))\s*\Z')

SETTINGS = "settings"


class TemplateError(ValueError):
    """A template that cannot be parsed; `offset` is the character where the problem is."""

    def __init__(self, message: str, offset: int):
        super().__init__(message)
        self.offset = offset


@dataclass(frozen=True)
class Reference:
    """`NAME.FIELD` (a field of the fact bound to NAME) or `settings.NAME` (name == "settings")."""

    name: str
    field: str


@dataclass(frozen=True)
class Text:
    text: str


Alternative = Reference | Text


@dataclass(frozen=True)
class Placeholder:
    alternatives: tuple[Alternative, ...]


@dataclass(frozen=True)
class Template:
    source: str
    parts: tuple[str | Placeholder, ...]

    def references(self) -> list[Reference]:
        return [alt for part in self.parts if isinstance(part, Placeholder)
                for alt in part.alternatives if isinstance(alt, Reference)]


def parse(source: str) -> Template:
    """Split a template into literal text and placeholders; raise TemplateError if malformed."""
    parts: list[str | Placeholder] = []
    literal: list[str] = []
    position = 0
    for match in _TOKEN.finditer(source):
        literal.append(source[position:match.start()])
        position = match.end()
        token = match.group(0)
        if token in ("{{", "}}"):
            literal.append(token[0])
        elif token == "{":
            raise TemplateError("`{` without a matching `}` (write `{{` for a literal brace)", match.start())
        elif token == "}":
            raise TemplateError("`}` without a matching `{` (write `}}` for a literal brace)", match.start())
        else:
            if literal:
                parts.append("".join(literal))
                literal = []
            parts.append(_placeholder(match.group(1), match.start()))
    literal.append(source[position:])
    if "".join(literal):
        parts.append("".join(literal))
    return Template(source, tuple(parts))


def _placeholder(body: str, offset: int) -> Placeholder:
    alternatives: list[Alternative] = []
    for piece in body.split("|"):
        match = _ALTERNATIVE.match(piece)
        if not match:
            raise TemplateError(
                f"`{{{body}}}` is not a placeholder: use {{NAME.FIELD}}, {{settings.NAME}} or "
                f'fallbacks like {{a.b|c.d|"text"}}', offset)
        if match.group("name") is not None:
            alternatives.append(Reference(match.group("name"), match.group("field")))
        else:
            alternatives.append(Text(match.group("text")))
    return Placeholder(tuple(alternatives))


# A rule's message is rendered once per finding: a plan with thousands of findings parsed the
# same few templates thousands of times (a third of the time it took to build the findings).
_parse_once = functools.lru_cache(maxsize=4096)(parse)


# A fact's field value -> the value a reader of another language sees (findings.translator).
Translate = Callable[[Mapping[str, Any], str, Any], Any]


def render(template: Template | str, bindings: Mapping[str, Mapping[str, Any]],
           settings: Mapping[str, Any] | None = None, translate: Translate | None = None) -> str:
    """The template with every placeholder replaced by the text of its first value.

    `translate(fact, field, value)`, when given, turns a fact's value into the run's language
    (settings, quoted text and a placeholder inside a plan path are left as they are)."""
    if isinstance(template, str):
        template = _parse_once(template)
    settings = settings or {}
    out: list[str] = []
    for part in template.parts:
        if isinstance(part, str):
            out.append(part)
            continue
        for alternative in part.alternatives:
            if isinstance(alternative, Text):
                out.append(alternative.text)
                break
            if alternative.name == SETTINGS:
                value = settings.get(alternative.field)
            else:
                fact = bindings.get(alternative.name)
                value = fact.get(alternative.field) if fact is not None else None
                if translate is not None and has_value(value) and not _in_a_path(out):
                    value = translate(fact, alternative.field, value)
            if has_value(value):
                out.append(value_text(value))
                break
    return "".join(out)


def _in_a_path(out: list[str]) -> bool:
    """Whether the placeholder continues a plan path or code (`outcomes.{v.outcome}.by`, a
    backquoted name): a key the reader types stays as the plan spells it."""
    return bool(out) and out[-1].endswith((".", "`"))


def has_value(value: Any) -> bool:
    return value is not None and value != "" and value != [] and value != ()


# A message names the items of a list up to LIST_WHOLE of them; a longer list (2,000
# opportunities sharing a priority) shows its first LIST_SHOWN and how many more there are:
# a finding is read in a terminal line, a SARIF result, a pull-request annotation.
LIST_WHOLE = 7
LIST_SHOWN = 5


def value_text(value: Any) -> str:
    """How a value reads in a message: lists joined with ", " (a long one cut short), booleans
    as yes/no."""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, (list, tuple)):
        items = [value_text(item) for item in value if has_value(item)]
        if len(items) > LIST_WHOLE:
            return f"{', '.join(items[:LIST_SHOWN])} and {len(items) - LIST_SHOWN:,} more"
        return ", ".join(items)
    return str(value)
