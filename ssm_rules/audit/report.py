"""The audit's reports: a view model of the portfolio, rendered to HTML, Markdown and JSON.

`build_view` turns the results in the spool (and the history delta) into what the templates
show: counts, accounts, owners' action lists, what is new and resolved, and the charts. The
lists that grow with the portfolio are queries on the spool (`spool.Rows`), read while the
page is streamed to its file, so memory stays flat however many plans there are; audit.json
is likewise written plan by plan. The templates only lay it out: `templates/index.html.j2` (Jinja2, autoescaped: every value taken from a plan is shown
as text) and `templates/summary.md.j2` (every value escaped for Markdown). Charts are pygal
SVG, inlined in the page with pygal's script removed, so the page works offline and runs no
code.
"""

from __future__ import annotations

import json
import re
import sqlite3
from datetime import date, datetime
from functools import lru_cache
from json.encoder import encode_basestring
from typing import Any, TextIO

from markupsafe import Markup

from ssm_rules import __version__
from ssm_rules.audit.spool import NO_OWNER, Rows
from ssm_rules.severity import SEVERITIES

SEVERITY_COLOURS = {"error": "#dc2626", "warning": "#f59e0b", "info": "#3b82f6"}
STALE_DAYS = 28  # an open finding this old is "open for weeks"
FONT_STACK = ('-apple-system, BlinkMacSystemFont, "Segoe UI", Roboto, "Helvetica Neue", Arial, '
              '"Liberation Sans", "DejaVu Sans", sans-serif')


# --- view model -------------------------------------------------------------------------------
#
# The view is plain data for the templates, except that every list as long as the portfolio is
# a `Rows`: a query on the spool, run while the template iterates it. Each query's ORDER BY
# reproduces a stable sort of the plans in input order (hence the final `seq`/`pos` keys):
#
#   accounts      by name (lower case), then file
#   findings      worst first, then by rule and place: `pos`, fixed when spooled
#   actions       worst first, then oldest, then by account (lower case) and rule
#   attention     invalid first, then by errors, warnings, info (most first), then by name

_FINDINGS = """
    SELECT f.*, p.name AS account_name FROM audit_findings f JOIN audit_plans p ON p.seq = f.plan_seq"""
# Each owner's actions: the findings, and an invalid plan as an action for its account owner.
_ACTIONS = """
    SELECT f.plan_seq, f.pos, f.sev_rank, f.severity, f.rule, f.guidance, f.message, f.path, f.line, f.action,
           f.owner, f.owner_lower, f.first_seen, f.is_new, p.name AS account_name, p.name_lower,
           NULL AS errors, NULL AS file
    FROM audit_findings f JOIN audit_plans p ON p.seq = f.plan_seq
    UNION ALL
    SELECT seq, 0, 0, 'error', 'invalid plan', '[]', NULL, NULL, NULL, NULL, owner_label, owner_label_lower,
           invalid_since, invalid_since = :as_of, name, name_lower, errors, file
    FROM audit_plans WHERE NOT valid"""
_ACTION_ORDER = "sev_rank, coalesce(first_seen, :as_of), name_lower, rule, plan_seq, pos"


def build_view(as_of: date, spool, rules: dict[str, dict], *, guidance: dict[str, dict] | None = None,
               delta=None, generated_at: datetime | None = None, charts: bool = True, pipeline=None,
               owner: str | None = None) -> dict[str, Any]:
    """Everything the templates show: plain data, chart SVG (Markup), and spool queries (Rows).

    `rules` and `guidance` are `runner.rule_catalog` and `runner.guidance_catalog`: what the
    report says about each rule and each guidance item (from the packs' guidance.yaml).
    `pipeline` is the open pipeline's `review.deals.Totals` (None: no stage pack, no pipeline
    section); `owner` names the seller of a one-seller report (`ssm audit --owner`)."""
    generated_at = generated_at or datetime.now().astimezone()
    views = _Views(spool.db, as_of, rules, delta)
    rows = views.rows
    summary = _summary(spool.db, as_of, delta)
    history = None
    if delta is not None:
        history = {
            "previous_run": delta.previous_run,
            "previous_run_text": _day(delta.previous_run) if delta.previous_run else None,
            "runs": len(delta.trend),
            "newly_invalid": rows("SELECT * FROM audit_plans WHERE NOT valid AND invalid_since = :as_of"
                                  " AND :has_history ORDER BY seq", views.account),
            "repaired": rows("SELECT plan_key FROM audit_repaired ORDER BY plan_key", lambda row: row[0]),
            "resolved": rows("""SELECT r.*, p.seq, p.name FROM audit_resolved r LEFT JOIN audit_plans p
                                ON p.seq = (SELECT min(seq) FROM audit_plans WHERE account = r.account AND r.account <> '')
                                ORDER BY r.rowid""", views.resolved),
            "new": rows(_FINDINGS + " WHERE f.is_new AND :has_history ORDER BY f.sev_rank, f.rule, f.location,"
                        " f.plan_seq, f.pos", views.finding),
            "trend": delta.trend,
        }
    view = {
        "title": "Account plan audit" + (f": {owner}" if owner else ""),
        "owner": owner,
        "as_of": as_of,
        "as_of_text": f"{as_of:%A} {_day(as_of)}",
        "generated_at": generated_at.strftime("%Y-%m-%d %H:%M %Z").strip(),
        "version": __version__,
        "summary": summary,
        "history": history,
        "accounts": rows("SELECT * FROM audit_plans ORDER BY name_lower, file", views.account),
        "attention": rows("SELECT * FROM audit_plans WHERE NOT valid OR findings ORDER BY valid, error DESC,"
                          " warning DESC, info DESC, name_lower, seq", views.account)[:15],
        # An owner's "new" counts new findings, as the New card does; a newly broken plan has its own tag.
        "owners": rows(f"""SELECT *, row_number() OVER (ORDER BY owner = :no_owner, first_lower, first_seq) AS number
                           FROM (SELECT owner, min(owner_lower) AS first_lower, min(plan_seq * 1048576 + pos) AS first_seq,
                                        sum(severity = 'error') AS error, sum(severity = 'warning') AS warning,
                                        sum(severity = 'info') AS info, sum(is_new AND :has_history AND errors IS NULL) AS new,
                                        count(DISTINCT plan_seq) AS accounts, count(*) AS actions
                                 FROM ({_ACTIONS}) GROUP BY owner)
                           ORDER BY number""", views.owner),
        "invalid": rows("SELECT * FROM audit_plans WHERE NOT valid ORDER BY seq", views.account),
        "rules": rules,
        "top_actions": rows(_FINDINGS + " ORDER BY f.sev_rank, coalesce(f.first_seen, :as_of), p.name_lower, f.rule,"
                            " f.plan_seq, f.pos", views.finding)[:10],
        "stale_days": STALE_DAYS,
        "evidence": _outcome_evidence(spool.db, guidance or {}),
        "guidance": guidance or {},
        "pipeline": _pipeline(views, pipeline),
    }
    view["charts"] = make_charts(view, spool.db) if charts else {}
    return view


PIPELINE_ROWS = 50  # deals claimed past their evidence listed on the page; the rest are counted


def _pipeline(views: _Views, totals) -> dict[str, Any] | None:
    """The pipeline section: the totals of `ssm pipeline` over every open opportunity, and the
    deals claimed past their evidence, largest first."""
    if totals is None:
        return None
    from ssm_rules.review.deals import NO_SUPPORT, STAGES

    claimed_past = views.rows("""SELECT d.*, p.name AS account_name, p.name_lower FROM audit_deals d
                                 JOIN audit_plans p ON p.seq = d.plan_seq WHERE d.unsupported
                                 ORDER BY d.value IS NULL, d.value DESC, p.name_lower, d.plan_seq, d.idx""", views.deal)
    return {
        "totals": totals,
        "share_pct": round(100 * totals.unsupported_value / totals.value) if totals.value else None,
        "stages": [stage for stage in (NO_SUPPORT, *STAGES)
                   if totals.claimed.get(stage) or totals.supported.get(stage)],
        "claimed_past": claimed_past[:PIPELINE_ROWS],
        "claimed_past_count": totals.unsupported_count,
        "limit": PIPELINE_ROWS,
    }


def pipeline_totals(spool, weights: dict):
    """The totals of `ssm pipeline` over the spooled open opportunities, a row at a time."""
    from ssm_rules.review.deals import TotalsBuilder

    builder = TotalsBuilder(weights)
    for claimed, supported, value in spool.db.execute(
            "SELECT claimed_stage, supported_stage, value FROM audit_deals ORDER BY plan_seq, idx"):
        builder.add(claimed, supported, value)
    return builder.totals()


def known_owner(spool, owner: str) -> str:
    """`owner` as the plans write it; UsageError when no plan names such a team member."""
    from ssm_rules.owners import check_known

    names = {name for (team,) in spool.db.execute("SELECT team FROM audit_plans") for name in json.loads(team)}
    names.update(owner for (owner,) in spool.db.execute("SELECT DISTINCT owner FROM audit_plans WHERE owner IS NOT NULL"))
    return check_known(owner, names)


def _outcome_evidence(db, guidance: dict[str, dict]) -> dict[str, str]:
    """The pieces of outcome evidence the plans were judged on (G80-G85 for the Focus pack), in
    ID order, each with its short label from the guidance catalogue."""
    keys = sorted(key for (key,) in db.execute(
        """SELECT item.value FROM audit_plans, json_each(outcome, '$.met') AS item WHERE outcome IS NOT NULL
           UNION SELECT item.value FROM audit_plans, json_each(outcome, '$.missing') AS item
           WHERE outcome IS NOT NULL"""))
    return {key: (guidance.get(key) or {}).get("label") or (guidance.get(key) or {}).get("title") or key
            for key in keys}


def _summary(db, as_of: date, delta) -> dict[str, Any]:
    plans = _one(db, """SELECT count(*) AS plans, coalesce(sum(NOT valid), 0) AS invalid,
                               coalesce(sum(met_count), 0) AS outcome_met, coalesce(sum(outcome_total), 0) AS outcome_total,
                               coalesce(sum(outcome IS NOT NULL AND met_count = outcome_total), 0) AS complete,
                               coalesce(sum(valid AND NOT findings), 0) AS clean,
                               coalesce(sum(error OR NOT valid), 0) AS with_errors
                        FROM audit_plans""")
    findings = _one(db, """SELECT count(*) AS open, coalesce(sum(severity = 'error'), 0) AS error,
                                  coalesce(sum(severity = 'warning'), 0) AS warning,
                                  coalesce(sum(severity = 'info'), 0) AS info,
                                  coalesce(sum(julianday(:as_of) - julianday(first_seen) >= :stale), 0) AS stale
                           FROM audit_findings""", {"as_of": as_of.isoformat(), "stale": STALE_DAYS})
    total = plans["outcome_total"]
    return {
        "plans": plans["plans"],
        "valid": plans["plans"] - plans["invalid"],
        "invalid": plans["invalid"],
        "error": findings["error"],
        "warning": findings["warning"],
        "info": findings["info"],
        "open": findings["open"],
        "new": delta.new if delta is not None else None,
        "resolved": delta.resolved if delta is not None else None,
        "stale": findings["stale"] if delta is not None else None,
        "outcome_met": plans["outcome_met"],
        "outcome_total": total,
        "outcome_pct": round(100 * plans["outcome_met"] / total) if total else None,
        "complete": plans["complete"],
        "clean": plans["clean"],
        "with_errors": plans["with_errors"],
    }


class _Views:
    """Spool rows -> the dicts the templates show (one account, finding, action, owner at a time)."""

    def __init__(self, db, as_of: date, rules: dict, delta):
        self.db, self.as_of, self.rules = db, as_of, rules
        # One definition of "new", the history's: first seen in this run (on a first recorded run,
        # every finding). The cards, the account rows, the owners, "What changed" and audit.json
        # all count it; without a history nothing is called new.
        self.has_history = delta is not None
        self.params = {"as_of": as_of.isoformat(), "has_history": int(self.has_history), "no_owner": NO_OWNER}

    def rows(self, sql: str, make, **params) -> Rows:
        """A query on the spool, with the view's named parameters (sqlite3 ignores those it does not use)."""
        return Rows(self.db, sql, {**self.params, **params}, make)

    def account(self, row) -> dict:
        findings = [finding for finding in self.rows(_FINDINGS + " WHERE f.plan_seq = :seq ORDER BY f.pos",
                                                     self.finding, seq=row["seq"])]  # (list() would COUNT first)
        since = _date(row["invalid_since"])
        outcome = None
        if row["outcome"] is not None:
            data = json.loads(row["outcome"])
            met, missing = list(data.get("met", [])), list(data.get("missing", []))
            total = len(met) + len(missing)
            outcome = {"met": met, "missing": missing, "met_count": len(met), "total": total,
                       "pct": round(100 * len(met) / total) if total else 0}
        return {
            "anchor": f"account-{row['seq'] + 1}",
            "name": row["name"],
            "id": row["account"],
            "file": row["file"],
            "owner": row["owner"],
            "valid": bool(row["valid"]),
            "errors": json.loads(row["errors"]),
            "invalid_since": since,
            "invalid_days": (self.as_of - since).days if since else None,
            "newly_invalid": bool(since and since == self.as_of and self.has_history),
            "findings": findings,
            "counts": {severity: row[severity] for severity in SEVERITIES},
            "new": sum(1 for f in findings if f["is_new"]),
            "oldest_days": max((f["days_open"] for f in findings if f["days_open"] is not None), default=None),
            "outcome": outcome,
        }

    def finding(self, row) -> dict:
        first_seen = _date(row["first_seen"])
        days = (self.as_of - first_seen).days if first_seen else None
        return {
            "severity": row["severity"],
            "rule": row["rule"],
            "rule_title": self.rules.get(row["rule"], {}).get("title", ""),
            "guidance": json.loads(row["guidance"]),
            "message": row["message"],
            "path": row["path"],
            "line": row["line"],
            "action": row["action"],
            "owner": row["owner"],
            "account": row["account_name"],
            "anchor": f"account-{row['plan_seq'] + 1}",
            "first_seen": first_seen,
            "days_open": days,
            "is_new": bool(row["is_new"]) and self.has_history,
            "is_stale": days is not None and days >= STALE_DAYS,
        }

    def action(self, row) -> dict:
        if row["errors"] is None:
            return self.finding(row)
        # An invalid plan: fixing the file is the account owner's action.
        errors = json.loads(row["errors"])
        since = _date(row["first_seen"])
        days = (self.as_of - since).days if since else None
        problems = len(errors)
        return {
            "severity": "error", "rule": "invalid plan", "message": errors[0]["message"] if errors else "",
            "action": f"Fix the plan file {row['file']}: {problems} format problem{'s' if problems != 1 else ''}.",
            "owner": row["owner"], "account": row["account_name"], "anchor": f"account-{row['plan_seq'] + 1}",
            "first_seen": since, "days_open": days, "is_new": bool(since and since == self.as_of and self.has_history),
            "is_stale": (days or 0) >= STALE_DAYS,
        }

    def owner(self, row) -> dict:
        return {
            "name": row["owner"],
            "initials": _initials(row["owner"]),
            "anchor": f"owner-{row['number']}",
            "actions": self.rows(f"SELECT * FROM ({_ACTIONS}) WHERE owner = :owner ORDER BY {_ACTION_ORDER}",
                                 self.action, owner=row["owner"]),
            "action_count": row["actions"],
            "counts": {severity: row[severity] for severity in SEVERITIES},
            "new": row["new"],
            "accounts": row["accounts"],
        }

    def deal(self, row) -> dict:
        deal = json.loads(row["document"])
        return {
            "account": row["account_name"],
            "anchor": f"account-{row['plan_seq'] + 1}",
            "name": deal.get("name") or deal["opportunity"],
            "id": deal["opportunity"],
            "owner": deal.get("owner"),
            "must_win": deal.get("must_win"),
            "value": deal.get("value"),
            "close_date": deal.get("close_date"),
            "claimed": deal["claimed_stage"],
            "supported": deal.get("supported_stage") or "none",
            "missing": deal.get("missing_outcomes") or [],
            "worst": deal.get("worst"),
        }

    def resolved(self, row) -> dict:
        first_seen = _date(row["first_seen"])
        return {"severity": row["severity"], "rule": row["rule"], "message": row["message"],
                "account_name": row["name"] if row["seq"] is not None else (row["account"] or row["file"]),
                "anchor": f"account-{row['seq'] + 1}" if row["seq"] is not None else None,
                "days_open": (self.as_of - first_seen).days}


def _one(db, sql: str, params: dict | tuple = ()) -> sqlite3.Row:
    cursor = db.cursor()
    cursor.row_factory = sqlite3.Row
    return cursor.execute(sql, params).fetchone()


@lru_cache(maxsize=1024)
def _date(text: str | None) -> date | None:
    return date.fromisoformat(text) if text else None


def _initials(name: str) -> str:
    words = [word for word in re.split(r"[^0-9A-Za-z\u00C0-\uFFFF]+", name) if word]
    if not words or name == NO_OWNER:
        return "?"
    return "".join(word[0] for word in words[:2]).upper()


def _day(day: date) -> str:
    return f"{day.day} {day:%B %Y}"


# --- charts -----------------------------------------------------------------------------------

HALF, WIDE = 550, 1130  # the charts' widths in CSS pixels on a wide screen: fonts show at their size


def make_charts(view: dict, db) -> dict[str, Markup | None]:
    """Inline SVG charts (pygal), keyed by name; a chart with nothing to show is None."""
    import pygal

    charts: dict[str, Markup | None] = {}
    summary = view["summary"]

    if summary["open"]:
        pie = pygal.Pie(**_config(320, 270, inner_radius=0.58, legend_at_bottom=True, legend_at_bottom_columns=3,
                                  print_values=False, margin=4, truncate_legend=-1))
        for severity in SEVERITIES:
            pie.add(f"{severity} {summary[severity]:,}", [{"value": summary[severity],
                                                          "color": SEVERITY_COLOURS[severity]}])
        charts["severity"] = _svg(pie)
    else:
        charts["severity"] = None

    top_rules = _top_15(db, "rule")
    charts["rules"] = _stacked_bars([_rule_label(row["rule"], view["rules"]) for row in top_rules],
                                    _by_severity(top_rules), WIDE, truncate=90) if top_rules else None
    top_owners = _top_15(db, "owner")
    charts["owners"] = _stacked_bars([row["owner"] for row in top_owners], _by_severity(top_owners), WIDE,
                                     truncate=40) if top_owners else None

    evidence = dict(db.execute("""SELECT met.value, count(*) FROM audit_plans, json_each(outcome, '$.met') AS met
                                  WHERE outcome IS NOT NULL GROUP BY met.value""").fetchall())
    with_outcome = db.execute("SELECT count(*) FROM audit_plans WHERE outcome IS NOT NULL").fetchone()[0]
    if with_outcome:
        ticks = [tick for tick in _ticks(with_outcome) if tick <= with_outcome]
        labels = view["evidence"]
        bar = pygal.HorizontalBar(**_config(HALF, 56 + 32 * len(labels), show_legend=False, print_values=True,
                                            range=(0, with_outcome), show_x_guides=False, show_y_guides=True,
                                            truncate_label=-1,
                                            style=_style(colors=("#0f766e",), value_colors=("#fff",),
                                                         value_font_size=11)))
        keys = list(reversed(labels))  # pygal draws the first label at the bottom
        bar.x_labels = [f"{key} {labels[key]}" if labels[key] != key else key for key in keys]
        bar.y_labels = ticks
        bar.add("accounts", [evidence.get(key, 0) for key in keys],
                formatter=lambda value: f"{value:g} of {with_outcome}")
        charts["outcome"] = _svg(bar)
    else:
        charts["outcome"] = None

    charts["pipeline"] = _pipeline_chart(view["pipeline"]) if view.get("pipeline") else None
    charts["pipeline_trend"] = _pipeline_trend((view["history"] or {}).get("trend") or [])

    trend = (view["history"] or {}).get("trend") or []
    if len(trend) >= 2:
        trend = trend[-60:]
        peak = max(run["error"] + run["warning"] + run["info"] for run in trend)
        line = pygal.StackedLine(**_config(WIDE, 280, fill=True, legend_at_bottom=True, legend_at_bottom_columns=3,
                                           show_minor_x_labels=False, x_labels_major_count=min(len(trend), 12),
                                           dots_size=3, show_x_guides=False,
                                           style=_style(opacity=".45", opacity_hover=".6")))
        line.x_labels = [run["as_of"] for run in trend]
        line.y_labels = _ticks(peak)
        for severity in SEVERITIES:
            line.add(severity, [run[severity] for run in trend])
        charts["trend"] = _svg(line)
    else:
        charts["trend"] = None
    return charts


PIPELINE_COLOURS = ("#1e3a8a", "#0f766e")  # claimed, supported: the page's accent and teal


def _pipeline_chart(pipeline: dict) -> Markup | None:
    """Open pipeline value by stage: as claimed beside as supported by verifiable outcomes."""
    import pygal

    from ssm_rules.review.text import compact

    totals, stages = pipeline["totals"], pipeline["stages"]
    if not stages:
        return None
    chart = pygal.Bar(**_config(HALF, 300, legend_at_bottom=True, legend_at_bottom_columns=2, show_x_guides=False,
                                show_y_guides=True, value_formatter=compact, print_values=False, truncate_legend=-1,
                                style=_style(colors=PIPELINE_COLOURS)))
    chart.x_labels = stages
    chart.add("claimed stage", [totals.claimed.get(stage, 0) for stage in stages])
    chart.add("supported stage", [totals.supported.get(stage, 0) for stage in stages])
    return _svg(chart)


def _pipeline_trend(trend: list[dict]) -> Markup | None:
    """The open pipeline value and the unsupported value of the runs that recorded them."""
    import pygal

    from ssm_rules.review.text import compact

    runs = [run for run in trend if run.get("pipeline_value") is not None][-60:]
    if len(runs) < 2:
        return None
    # From zero: pygal fits the axis to the values, which draws 11M of unsupported value on a
    # 12M-to-30M axis as nothing at all.
    chart = pygal.Line(**_config(WIDE, 260, legend_at_bottom=True, legend_at_bottom_columns=2, show_x_guides=False,
                                 show_minor_x_labels=False, x_labels_major_count=min(len(runs), 12), dots_size=3,
                                 include_x_axis=True, max_scale=6, value_formatter=compact,
                                 style=_style(colors=(PIPELINE_COLOURS[0], "#dc2626"))))
    chart.x_labels = [run["as_of"] for run in runs]
    chart.add("open pipeline", [run["pipeline_value"] for run in runs])
    chart.add("unsupported", [run["unsupported_value"] for run in runs])
    return _svg(chart)


def _top_15(db, column: str) -> list[sqlite3.Row]:
    """The 15 rules or owners with the most open findings (most first, then by name), by severity."""
    cursor = db.cursor()
    cursor.row_factory = sqlite3.Row
    return cursor.execute(f"""SELECT {column}, count(*) AS total, sum(severity = 'error') AS error,
                                     sum(severity = 'warning') AS warning, sum(severity = 'info') AS info
                              FROM audit_findings GROUP BY {column} ORDER BY total DESC, {column} LIMIT 15""").fetchall()


def _by_severity(rows: list[sqlite3.Row]) -> list[list[int]]:
    return [[row[severity] for row in rows] for severity in SEVERITIES]


def _stacked_bars(labels: list[str], series: list[list[int]], width: int, *, truncate: int) -> Markup:
    import pygal

    chart = pygal.HorizontalStackedBar(**_config(width, 64 + 28 * len(labels), legend_at_bottom=True,
                                                 legend_at_bottom_columns=3, show_x_guides=False, show_y_guides=True,
                                                 truncate_label=truncate, truncate_legend=-1))
    chart.x_labels = list(reversed(labels))  # pygal draws the first label at the bottom
    ticks = _ticks(max(sum(values) for values in zip(*series)))
    chart.y_labels = ticks
    chart.range = (0, ticks[-1])
    for severity, values in zip(SEVERITIES, series):
        chart.add(severity, list(reversed(values)))
    return _svg(chart)


def _ticks(peak: int) -> list[int]:
    """Whole-number axis ticks from 0 to at least `peak`, about five of them."""
    peak = max(int(peak), 1)
    step = 1
    for candidate in (1, 2, 5, 10, 20, 25, 50, 100, 200, 250, 500, 1000, 2000, 5000, 10000):
        step = candidate
        if peak / candidate <= 6:
            break
    top = -(-peak // step) * step
    return list(range(0, top + 1, step))


def _rule_label(rule: str, rules: dict) -> str:
    title = rules.get(rule, {}).get("title")
    return f"{rule}  {title}" if title else rule


@lru_cache(maxsize=None)
def _base_style():
    return _style()


def _style(**overrides):
    from pygal.style import Style

    settings = dict(
        background="transparent", plot_background="transparent",
        foreground="#334155", foreground_strong="#0f172a", foreground_subtle="#e2e8f0",
        colors=tuple(SEVERITY_COLOURS[s] for s in SEVERITIES), font_family=FONT_STACK,
        label_font_size=12, major_label_font_size=12, value_font_size=11, legend_font_size=12,
        title_font_size=14, tooltip_font_size=12, opacity=".9", opacity_hover="1", transition="0s",
        guide_stroke_dasharray="0", major_guide_stroke_dasharray="0", guide_stroke_color="#e2e8f0",
        major_guide_stroke_color="#cbd5e1", stroke_width="2",
    )
    settings.update(overrides)
    return Style(**settings)


def _config(width: int, height: int, **options) -> dict:
    config = dict(width=width, height=height, explicit_size=False, js=[], style=options.pop("style", None) or _base_style(),
                  margin=12, spacing=10, show_legend=True, disable_xml_declaration=True, print_zeroes=False,
                  allow_interruptions=False, no_data_text="No data")
    config.update(options)
    return config


def _svg(chart) -> Markup:
    """The chart as inline SVG without pygal's script and comments.

    Text in the SVG (labels from plans, such as owner names) is escaped by the XML serializer.
    """
    chart.add_xml_filter(_strip_active_content)
    return Markup(chart.render(is_unicode=True))


def _strip_active_content(root):
    for parent in list(root.iter()):
        for child in list(parent):
            tag = child.tag if isinstance(child.tag, str) else ""
            if not tag or tag.rsplit("}", 1)[-1] in ("script", "foreignObject"):
                parent.remove(child)  # comments and processing instructions have no string tag
    return root


# --- rendering --------------------------------------------------------------------------------

@lru_cache(maxsize=None)
def _environments():
    from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape

    common = dict(loader=PackageLoader("ssm_rules.audit", "templates"), undefined=StrictUndefined,
                  trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=True)
    html = Environment(autoescape=select_autoescape(enabled_extensions=("html.j2",), default=True), **common)
    markdown = Environment(autoescape=False, finalize=markdown_escape, **common)
    for environment in (html, markdown):
        environment.filters["day"] = lambda d: _day(d) if d else ""
        environment.filters["plural"] = lambda n, word, plural=None: (
            f"{n:,} {word if n == 1 else (plural or word + 's')}")
        environment.filters["num"] = lambda n: f"{n:,}" if isinstance(n, int) else n
        environment.filters["money"] = full_money
        environment.filters["compact"] = compact_money
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
    json.loads (str keys; str, int, float, bool, None, list and dict values).
    """
    if isinstance(value, str):
        return encode_basestring(value)
    if isinstance(value, dict):
        if not value:
            return "{}"
        inner = "\n" + "  " * (level + 1)
        items = ",".join(inner + encode_basestring(key) + ": " + _indented(item, level + 1)
                           for key, item in value.items())
        return "{" + items + "\n" + "  " * level + "}"
    if isinstance(value, list):
        if not value:
            return "[]"
        inner = "\n" + "  " * (level + 1)
        return "[" + ",".join(inner + _indented(item, level + 1) for item in value) + "\n" + "  " * level + "]"
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
    html, _ = _environments()
    page = html.get_template("index.html.j2")
    return {
        "index.html": lambda stream: page.stream(**view).dump(stream),
        "summary.md": render_markdown(view),
        "audit.json": lambda stream: write_audit_json(stream, as_of, spool, delta=delta, pipeline=pipeline),
    }
