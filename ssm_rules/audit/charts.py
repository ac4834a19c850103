"""The audit page's charts: pygal SVG, inlined in the page with pygal's script removed, so the page
works offline and runs no code. Each chart reads the view (`view.py`) and the spool."""

from __future__ import annotations

import hashlib
import sqlite3
from functools import lru_cache

from markupsafe import Markup

from ssm_rules.severity import SEVERITIES

SEVERITY_COLOURS = {"error": "#dc2626", "warning": "#f59e0b", "info": "#3b82f6"}
FONT_STACK = ('-apple-system, BlinkMacSystemFont, "Segoe UI", Roboto, "Helvetica Neue", Arial, '
              '"Liberation Sans", "DejaVu Sans", sans-serif')


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
    # pygal names each chart with a random UUID (its CSS is scoped to that id): named after its
    # content instead, the same portfolio gives the same page, byte for byte, every night.
    svg = chart.render(is_unicode=True)
    name = hashlib.sha256(svg.replace(chart.uuid, "").encode("utf-8")).hexdigest()[:16]
    return Markup(svg.replace(chart.uuid, name))


def _strip_active_content(root):
    for parent in list(root.iter()):
        for child in list(parent):
            tag = child.tag if isinstance(child.tag, str) else ""
            if not tag or tag.rsplit("}", 1)[-1] in ("script", "foreignObject"):
                parent.remove(child)  # comments and processing instructions have no string tag
    return root
