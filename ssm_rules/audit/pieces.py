"""The page's small pieces that repeat on every row, made in Python: a severity badge, the
counts by severity, an outcome's progress bar, a finding's age.

They were Jinja macros. A macro call costs tens of microseconds, and the page of 10,000 small
plans made about 100,000 of them (a badge on every finding and action row, counts on every
account card): a third of the time it took to write the page. Each piece here prints exactly
what its macro printed, and escapes every value it is given, as the autoescaped template does.

`for_page()` gives the template these pieces and its `_()` for one rendering, in the run's
language: the language is looked up once (i18n reads the environment each time it is asked),
and each text is translated once.
"""

from __future__ import annotations

from typing import Any, Callable

from markupsafe import Markup, escape

from ssm_rules.audit.view import day_text

_COUNTED = ("error", "warning", "info")
_MISSING = Markup('<span class="muted">–</span>')


def translator() -> Callable[[str], Markup]:
    """The template's `_("text")`: the catalog's text in the run's language, trusted (it ships
    with ssm); `.format()` on it escapes what is filled in."""
    from ssm_rules import i18n

    texts: dict[str, Markup] = {}

    def translate(text: str) -> Markup:
        try:
            return texts[text]
        except KeyError:
            texts[text] = translated = Markup(i18n._(text))
            return translated

    return translate


class Pieces:
    def __init__(self, translate: Callable[[str], Markup]):
        self._ = translate
        self._badges: dict[Any, Markup] = {}

    def badge(self, severity: str) -> Markup:
        """`<span class="badge error">error</span>`, the severity's name translated."""
        try:
            return self._badges[severity]
        except (KeyError, TypeError):
            badge = Markup('<span class="badge {}">{}</span>').format(severity, self._(severity))
            if isinstance(severity, str):
                self._badges[severity] = badge
            return badge

    def counts(self, counts) -> Markup:
        """An account's or owner's findings by severity, a zero greyed out."""
        parts = ['<span class="counts">']
        for severity in _COUNTED:
            count = counts[severity]
            if count:
                count = escape(count)
                parts.append(f'<span class="count {severity}" title="{count} {self._(severity)}">{count}</span>')
            else:
                parts.append('<span class="count zero">0</span>')
        parts.append("</span>\n")  # (the macro's body ended with a line break; the page keeps it)
        return Markup("".join(parts))

    def progress(self, outcome) -> Markup:
        """The outcome evidence met (a bar and met/total), its items in the title; – without one."""
        if not outcome:
            return _MISSING
        items = ", ".join(map(str, outcome["met"])) or self._("none")
        title = self._("outcome evidence met: {items}").format(items=items)
        return Markup(f'<span class="progress" title="{title}"><span class="bar"><span style="width: '
                      f'{escape(outcome["pct"])}%"></span></span><span class="num">{escape(outcome["met_count"])}/'
                      f'{escape(outcome["total"])}</span></span>')

    def age(self, finding) -> Markup:
        """How long a finding has been open (with history): new, N d (stale when old), or –."""
        if finding["is_new"]:
            return Markup(f'<span class="tag new">{self._("new")}</span>')
        days = finding["days_open"]
        if days is None:
            return _MISSING
        first_seen = finding["first_seen"]
        title = self._("first seen {day}").format(day=day_text(first_seen) if first_seen else "")
        stale = " stale" if finding["is_stale"] else ""
        return Markup(f'<span class="age{stale}" title="{title}">{self._("{days} d").format(days=days)}</span>')


def for_page() -> dict[str, Callable]:
    """What index.html.j2 calls, for one rendering: `_`, `badge`, `counts`, `progress`, `age`."""
    pieces = Pieces(translator())
    return {"_": pieces._, "badge": pieces.badge, "counts": pieces.counts, "progress": pieces.progress,
            "age": pieces.age}
