"""The audit reports' words in the run's language: the templates' `_()`, `plural` and `html_lang`.

`_("text")` in a template is the catalog's text, trusted (it ships with ssm); `.format()` on it
escapes what is filled in, for HTML (markupsafe.Markup) or for Markdown (MarkdownText), as every
other value the templates print is escaped.
"""

from __future__ import annotations

from ssm_rules import i18n
from ssm_rules.i18n import ngettext


def _counted(count: int) -> str:
    return f"{count:,}"


# The nouns the templates count, each with its forms: `{{ n | plural("account") }}`.
NOUNS = {
    "account": lambda n: ngettext("{count} account", "{count} accounts", n),
    "error": lambda n: ngettext("{count} error", "{count} errors", n),
    "warning": lambda n: ngettext("{count} warning", "{count} warnings", n),
    "plan": lambda n: ngettext("{count} plan", "{count} plans", n),
    "valid plan": lambda n: ngettext("{count} valid plan", "{count} valid plans", n),
    "invalid plan": lambda n: ngettext("{count} invalid plan", "{count} invalid plans", n),
    "open opportunity": lambda n: ngettext("{count} open opportunity", "{count} open opportunities", n),
    "deal": lambda n: ngettext("{count} deal", "{count} deals", n),
    "format problem": lambda n: ngettext("{count} format problem", "{count} format problems", n),
    "open finding": lambda n: ngettext("{count} open finding", "{count} open findings", n),
    "action": lambda n: ngettext("{count} action", "{count} actions", n),
}


def plural(count: int, word: str, plural_word: str | None = None) -> str:
    forms = NOUNS.get(word)
    if forms is not None:
        return forms(count).format(count=_counted(count))
    return f"{_counted(count)} {word if count == 1 else (plural_word or word + 's')}"


def _markdown_value(value):
    from ssm_rules.audit.report import markdown_escape

    return value if isinstance(value, MarkdownText) else markdown_escape(value)


class MarkdownText(str):
    """Catalog text for a Markdown template: printed as it is; what `.format()` fills in is
    escaped (ssm_rules.formats.markdown.markdown_text), as every other printed value is."""

    def format(self, *args, **kwargs) -> MarkdownText:
        return MarkdownText(str.format(self, *(_markdown_value(a) for a in args),
                                       **{k: _markdown_value(v) for k, v in kwargs.items()}))


def install(html, markdown) -> None:
    """Give both template environments the run's language."""
    from markupsafe import Markup

    for environment in (html, markdown):
        environment.filters["plural"] = plural
        environment.globals["html_lang"] = i18n.html_lang
    html.globals["_"] = lambda text: Markup(i18n._(text))
    markdown.globals["_"] = lambda text: MarkdownText(i18n._(text))
    # Set before any template is compiled: the catalog's text is printed as it is.
    markdown.finalize = _markdown_value
