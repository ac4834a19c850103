"""The page's small pieces that repeat on every row, made in Python: a severity badge, the
counts by severity, an outcome's progress bar, a finding's age.

They were Jinja macros. A macro call costs tens of microseconds, and the page of 10,000 small
plans made about 100,000 of them (a badge on every finding and action row, counts on every
account card): a third of the time it took to write the page. Each piece here prints exactly
what its macro printed, and escapes every value it is given, as the autoescaped template does.

`for_page()` gives the template these pieces and its `_()` for one rendering, in the run's
language: each text is translated once, when the page first shows it (i18n looks the language
up in the environment each time it is asked), and each badge made once.
"""

from __future__ import annotations

from typing import Any, Callable

from markupsafe import Markup, escape

from ssm_rules.audit.view import day_text
from ssm_rules.severity import SEVERITIES

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


def _escaped(value: Any) -> str:
    """`markupsafe.escape(value)` as text: a str's five characters replaced in C, without the
    Markup object escape() makes (a row escapes about ten values)."""
    if type(value) is not str:
        return str(escape(value))  # None, a number, Markup: as markupsafe does it
    return (value.replace("&", "&amp;").replace(">", "&gt;").replace("<", "&lt;")
            .replace("'", "&#39;").replace('"', "&#34;"))


def _fill(text: Markup, **values) -> str:
    """`text.format(**values)` for values that need no format spec: each value escaped, as
    Markup.format does, without its formatter written in Python (a row calls this)."""
    return str.format(text, **{name: escape(value) for name, value in values.items()})


class Pieces:
    """The pieces for one page: `history` says whether the rows have an "Open" column;
    `guidance` is the guidance catalogue (ID -> {title, label}) the chips' titles come from."""

    def __init__(self, translate: Callable[[str], Markup], *, history: bool = False,
                 guidance: dict[str, dict] | None = None, evidence: dict[str, str] | None = None):
        self._ = translate
        self.history, self.guidance, self.evidence = history, guidance or {}, evidence or {}
        self._badges: dict[Any, Markup] = {}
        self._chips: dict[tuple, str] = {}
        self._evidence_chips: dict[tuple, Markup] = {}
        self._missing: dict[tuple, Markup] = {}

    def badge(self, severity: str) -> Markup:
        """`<span class="badge error">error</span>`, the severity's name translated (a name that
        is no severity is shown as text: the catalog's text is trusted, it is not)."""
        try:
            return self._badges[severity]
        except (KeyError, TypeError):
            name = self._(severity) if severity in SEVERITIES else severity
            badge = Markup('<span class="badge {}">{}</span>').format(severity, name)
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
                name = self._(severity)
                parts.append(f'<span class="count {severity}" title="{count} {name}">{count}</span>')
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
            new = self._("new")  # (no _() inside an f-string: Babel on Python 3.12+ would extract it)
            return Markup(f'<span class="tag new">{new}</span>')
        days = finding["days_open"]
        if days is None:
            return _MISSING
        first_seen = finding["first_seen"]
        title = _fill(self._("first seen {day}"), day=day_text(first_seen) if first_seen else "")
        stale = " stale" if finding["is_stale"] else ""
        open_for = _fill(self._("{days} d"), days=days)
        return Markup(f'<span class="age{stale}" title="{title}">{open_for}</span>')


    def evidence_chips(self, outcome) -> Markup:
        """Every piece of outcome evidence the portfolio was judged on, as a chip: met or missing."""
        met = tuple(outcome["met"])
        try:
            return self._evidence_chips[met]
        except KeyError:
            pass
        chips = "".join(f'<span class="chip {"met" if key in met else "missing"}" title="{escape(label)}">'
                        f'{escape(key)}</span>' for key, label in self.evidence.items())
        self._evidence_chips[met] = text = Markup(f'<span class="chips">{chips}</span>')
        return text

    def missing_evidence(self, outcome) -> Markup:
        """`missing: ` and the labels of the evidence the plan lacks."""
        missing = tuple(outcome["missing"])
        try:
            return self._missing[missing]
        except KeyError:
            pass
        labels = ", ".join(str(escape(self.evidence.get(key, key))) for key in missing)
        heading = self._("missing:")
        self._missing[missing] = text = Markup(f'<span class="muted">{heading} {labels}</span>')
        return text

    # The two tables that have a row per finding: an account's findings, an owner's actions.
    # (40,000 rows each on the page of 10,000 small plans; as template loops, they were half of
    # its time.) Each row is the text the template's loop printed, indentation included.

    def finding_row(self, finding) -> Markup:
        """An account's finding: severity, rule (its title as the tooltip) and guidance chips,
        message, next action, owner, where in the plan, and how long it is open (with history)."""
        line = finding["line"]
        where = _fill(self._("line {line}"), line=line) if line else ""
        return Markup(
            f'        <tr>\n'
            f'          <td class="sev">{self.badge(finding["severity"])}</td>\n'
            f'          <td><span class="rule" title="{_escaped(finding["rule_title"])}">{_escaped(finding["rule"])}</span>'
            f'{self.chips(finding["guidance"])}<div class="message">{_escaped(finding["message"])}</div></td>\n'
            f'          <td class="action">{_escaped(finding["action"])}</td>\n'
            f'          <td>{_escaped(finding["owner"])}</td>\n'
            f'          <td class="mono where">{_escaped(finding["path"] or "")}{f"<div>{where}</div>" if where else ""}</td>\n'
            f'{self._open(finding)}'
            f'        </tr>\n')

    def action_row(self, action) -> Markup:
        """An owner's action: severity, the next action over the finding, the account (a link
        to its card), and how long it is open (with history)."""
        return Markup(
            f'          <tr>\n'
            f'            <td class="sev">{self.badge(action["severity"])}</td>\n'
            f'            <td><div class="action">{_escaped(action["action"] or action["message"])}</div><div class="message">'
            f'<span class="rule">{_escaped(action["rule"])}</span> {_escaped(action["message"])}</div></td>\n'
            f'            <td><a href="#{_escaped(action["anchor"])}">{_escaped(action["account"])}</a></td>\n'
            f'{self._open(action)}'
            f'          </tr>\n')

    def _open(self, finding) -> str:
        return f'<td class="num">{self.age(finding)}</td>' if self.history else ""

    def chips(self, guidance) -> str:
        """A finding's guidance IDs as chips, each titled from the catalogue (one text per list)."""
        key = tuple(guidance or ())
        try:
            return self._chips[key]
        except KeyError:
            pass
        chips = "".join(f'<span class="chip"{self._chip_title(g)}>{escape(g)}</span>' for g in key)
        self._chips[key] = text = f' <span class="chips">{chips}</span>' if key else ""
        return text

    def _chip_title(self, guidance_id) -> str:
        if guidance_id not in self.guidance:
            return ""
        return f' title="{escape(self.guidance[guidance_id]["title"])}"'


def for_page(view: dict) -> dict[str, Callable]:
    """What index.html.j2 calls, for one rendering of `view` (view.build_view)."""
    pieces = Pieces(translator(), history=bool(view.get("history")), guidance=view.get("guidance"),
                    evidence=view.get("evidence"))
    return {"_": pieces._, "badge": pieces.badge, "counts": pieces.counts, "progress": pieces.progress,
            "age": pieces.age, "evidence_chips": pieces.evidence_chips, "missing_evidence": pieces.missing_evidence,
            "finding_row": pieces.finding_row, "action_row": pieces.action_row}
