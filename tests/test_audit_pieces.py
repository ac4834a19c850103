"""The page's pieces made in Python (ssm_rules/audit/pieces.py) print exactly what the template's
macros and loops they replaced printed, escaping every value, in every language and with and
without history: each is compared with its Jinja reference, kept here, over hostile values."""

from __future__ import annotations

import itertools
from datetime import date

import pytest
from jinja2 import Environment, StrictUndefined
from markupsafe import Markup

from ssm_rules import i18n
from ssm_rules.audit import pieces
from ssm_rules.audit.view import day_text

HOSTILE = "<script>alert('x')</script> & \"q\" {{ 7*7 }} {line} {0} %s"  # markup, quotes, template and format directives

# What index.html.j2 had before the pieces moved to Python (the macros, and the loops' bodies).
REFERENCE = """\
{% macro badge(severity) %}<span class="badge {{ severity }}">{{ _(severity) }}</span>{% endmacro %}
{% macro age(f) %}
{% if f.is_new %}<span class="tag new">{{ _("new") }}</span>{% elif f.days_open is not none %}<span class="age{% if f.is_stale %} stale{% endif %}" title="{{ _('first seen {day}').format(day=f.first_seen | day) }}">{{ _('{days} d').format(days=f.days_open) }}</span>{% else %}<span class="muted">–</span>{% endif %}
{% endmacro %}
{% macro counts(c) %}
<span class="counts">{% for s in ("error", "warning", "info") %}{% if c[s] %}<span class="count {{ s }}" title="{{ c[s] }} {{ _(s) }}">{{ c[s] }}</span>{% else %}<span class="count zero">0</span>{% endif %}{% endfor %}</span>
{% endmacro %}
{% macro progress(outcome) %}
{% if outcome %}<span class="progress" title="{{ _('outcome evidence met: {items}').format(items=outcome.met | join(', ') or _('none')) }}"><span class="bar"><span style="width: {{ outcome.pct }}%"></span></span><span class="num">{{ outcome.met_count }}/{{ outcome.total }}</span></span>{% else %}<span class="muted">–</span>{% endif %}
{% endmacro %}
{% if piece == "badge" %}{{ badge(value) }}{% elif piece == "age" %}{{ age(value) }}{% elif piece == "counts" %}{{ counts(value) }}{% elif piece == "progress" %}{{ progress(value) }}{% endif %}
{% if piece == "finding_row" %}
      {% for f in [value] %}
        <tr>
          <td class="sev">{{ badge(f.severity) }}</td>
          <td><span class="rule" title="{{ f.rule_title }}">{{ f.rule }}</span>{% if f.guidance %} <span class="chips">{% for g in f.guidance %}<span class="chip"{% if g in guidance %} title="{{ guidance[g].title }}"{% endif %}>{{ g }}</span>{% endfor %}</span>{% endif %}<div class="message">{{ f.message }}</div></td>
          <td class="action">{{ f.action }}</td>
          <td>{{ f.owner }}</td>
          <td class="mono where">{{ f.path or "" }}{% if f.line %}<div>{{ _("line {line}").format(line=f.line) }}</div>{% endif %}</td>
          {% if history %}<td class="num">{{ age(f) }}</td>{% endif %}
        </tr>
      {% endfor %}
{% elif piece == "action_row" %}
        {% for f in [value] %}
          <tr>
            <td class="sev">{{ badge(f.severity) }}</td>
            <td><div class="action">{{ f.action or f.message }}</div><div class="message"><span class="rule">{{ f.rule }}</span> {{ f.message }}</div></td>
            <td><a href="#{{ f.anchor }}">{{ f.account }}</a></td>
            {% if history %}<td class="num">{{ age(f) }}</td>{% endif %}
          </tr>
        {% endfor %}
{% elif piece == "evidence" %}
    {% set a = {"outcome": value} %}
    <div class="outcome">
      <span class="chips">{% for key in evidence %}<span class="chip {{ 'met' if key in a.outcome.met else 'missing' }}" title="{{ evidence[key] }}">{{ key }}</span>{% endfor %}</span>
      {% if a.outcome.missing %}<span class="muted">{{ _("missing:") }} {% for key in a.outcome.missing %}{{ evidence.get(key, key) }}{{ ", " if not loop.last }}{% endfor %}</span>{% endif %}
    </div>
{% endif %}
"""

# The same, from the pieces.
PIECES = """\
{% if piece == "badge" %}{{ badge(value) }}{% elif piece == "age" %}{{ age(value) }}{% elif piece == "counts" %}{{ counts(value) }}{% elif piece == "progress" %}{{ progress(value) }}{% endif %}
{% if piece == "finding_row" %}
      {% for f in [value] %}{{ finding_row(f) }}{% endfor %}
{% elif piece == "action_row" %}
        {% for f in [value] %}{{ action_row(f) }}{% endfor %}
{% elif piece == "evidence" %}
    {% set a = {"outcome": value} %}
    <div class="outcome">
      {{ evidence_chips(a.outcome) }}
      {% if a.outcome.missing %}{{ missing_evidence(a.outcome) }}{% endif %}
    </div>
{% endif %}
"""

GUIDANCE = {"G60": {"title": f"Key decision leader {HOSTILE}", "label": "KDL"}, "G80": {"title": "Outcome", "label": None}}
EVIDENCE = {"G80": "business need", "G81": f"value {HOSTILE}", "G82": "G82"}


def environment() -> Environment:
    env = Environment(autoescape=True, undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True,
                      keep_trailing_newline=True)
    env.filters["day"] = lambda d: day_text(d) if d else ""
    return env


def finding(**changes) -> dict:
    value = {"severity": "error", "rule": "SSM-BDU-001", "rule_title": f"Title {HOSTILE}", "guidance": ["G60", "G99"],
             "message": f"Contact {HOSTILE}", "path": f"contacts[0].{HOSTILE}", "line": 12, "action": f"Call {HOSTILE}",
             "owner": f"jane {HOSTILE}", "account": f"Acme {HOSTILE}", "anchor": "account-3", "first_seen": date(2026, 10, 1),
             "days_open": 61, "is_new": False, "is_stale": True}
    value.update(changes)
    return value


FINDINGS = [finding(), finding(severity="warning", guidance=[], line=None, path=None, is_stale=False, days_open=3),
            finding(severity="info", is_new=True, action=""), finding(days_open=None, first_seen=None, is_stale=False),
            finding(severity=HOSTILE, guidance=[HOSTILE], line=0, message="", owner="(no owner)")]
OUTCOMES = [None, {"met": [], "missing": ["G80", "G81"], "met_count": 0, "total": 2, "pct": 0},
            {"met": ["G80", HOSTILE], "missing": ["G81", "G83"], "met_count": 2, "total": 4, "pct": 50},
            {"met": ["G80", "G81", "G82"], "missing": [], "met_count": 3, "total": 3, "pct": 100}]
COUNTS = [{"error": 0, "warning": 0, "info": 0}, {"error": 3, "warning": 0, "info": 12}, {"error": None, "warning": 1, "info": 1}]


@pytest.fixture(params=["en", "zh_Hant"])
def language(request):
    i18n.reset()
    i18n.request(request.param)
    yield request.param
    i18n.reset()


@pytest.mark.parametrize("history", [False, True])
def test_pieces_print_what_the_template_printed(language, history):
    env = environment()
    reference, made = env.from_string(REFERENCE), env.from_string(PIECES)
    translate = lambda text: Markup(i18n._(text))  # noqa: E731  (words.install's `_`)
    cases = [("badge", severity) for severity in ("error", "warning", "info", HOSTILE)]
    cases += [(piece, f) for piece, f in itertools.product(("age", "finding_row", "action_row"), FINDINGS)]
    cases += [("counts", counts) for counts in COUNTS]
    cases += [("progress", outcome) for outcome in OUTCOMES]
    cases += [("evidence", outcome) for outcome in OUTCOMES if outcome]
    view = {"history": {"runs": 2} if history else None, "guidance": GUIDANCE, "evidence": EVIDENCE}
    for piece, value in cases:
        context = {"piece": piece, "value": value, "history": view["history"], "guidance": GUIDANCE,
                   "evidence": EVIDENCE}
        got = made.render(**context, **pieces.for_page(view))
        assert "<script" not in got, (piece, value)
        severity = value if piece == "badge" else (value or {}).get("severity") if isinstance(value, dict) else None
        if severity != HOSTILE:  # (an unknown severity is now escaped: see the next test)
            assert got == reference.render(**context, _=translate), (piece, value)


def test_a_badge_shows_an_unknown_severity_as_text():
    # The template's badge passed any severity through _(), whose catalog text is trusted.
    badge = pieces.for_page({})["badge"](HOSTILE)
    assert "<script" not in badge and "&lt;script&gt;" in badge


def test_pieces_are_reused_not_shared_between_languages():
    # A badge is made once per severity and page; a page in another language gets its own.
    i18n.reset()
    english = pieces.for_page({})
    assert english["badge"]("error") == '<span class="badge error">error</span>'
    i18n.request("zh_Hant")
    try:
        chinese = pieces.for_page({})
        assert english["badge"]("error") is english["badge"]("error")
        assert chinese["badge"]("error") == '<span class="badge error">錯誤</span>'
    finally:
        i18n.reset()


def test_directive_looking_text_is_printed_as_it_is():
    row = pieces.for_page({"history": {"runs": 2}})["finding_row"](finding(line=7))
    assert "{{ 7*7 }} {line} {0} %s" in row and "49" not in row
