"""The audit's reports: a view model of the portfolio, rendered to HTML, Markdown and JSON.

`build_view` turns the results (and the history delta) into plain data: counts, accounts,
owners' action lists, what is new and resolved, and the charts. The templates only lay it
out: `templates/index.html.j2` (Jinja2, autoescaped: every value taken from a plan is shown
as text) and `templates/summary.md.j2` (every value escaped for Markdown). Charts are pygal
SVG, inlined in the page with pygal's script removed, so the page works offline and runs no
code.
"""

from __future__ import annotations

import json
import re
from collections import Counter, defaultdict
from datetime import date, datetime
from functools import lru_cache
from typing import Any

from markupsafe import Markup

from ssm_rules import __version__

SEVERITIES = ("error", "warning", "info")
SEVERITY_COLOURS = {"error": "#dc2626", "warning": "#f59e0b", "info": "#3b82f6"}
STALE_DAYS = 28  # an open finding this old is "open for weeks"
NO_OWNER = "(no owner)"
OUTCOME_EVIDENCE = {
    "G80": "Client approved the plan",
    "G81": "Client satisfied with assessment",
    "G82": "Initiatives match priorities",
    "G83": "Ongoing talks with key contacts",
    "G84": "Routes to market agreed",
    "G85": "Thought leadership confirmed",
}
FONT_STACK = ('-apple-system, BlinkMacSystemFont, "Segoe UI", Roboto, "Helvetica Neue", Arial, '
              '"Liberation Sans", "DejaVu Sans", sans-serif')


# --- view model -------------------------------------------------------------------------------

def build_view(as_of: date, plans: list, rules: dict[str, dict], *, delta=None,
               generated_at: datetime | None = None, charts: bool = True) -> dict[str, Any]:
    """Everything the templates show, as plain data (plus chart SVG as Markup)."""
    generated_at = generated_at or datetime.now().astimezone()
    first_seen = delta.first_seen if delta is not None else {}
    # NEW tags only when there is a run to be new against (on the first run everything is).
    new_keys = ({(item["file"], item["index"]) for item in delta.new}
                if delta is not None and delta.previous_run is not None else set())
    invalid_since = delta.invalid_since if delta is not None else {}

    accounts = []
    for number, plan in enumerate(plans, 1):
        accounts.append(_account_view(number, plan, as_of, rules, first_seen, new_keys, invalid_since,
                                      delta.previous_run if delta is not None else None))
    all_findings = [finding for account in accounts for finding in account["findings"]]

    counts = Counter(finding["severity"] for finding in all_findings)
    outcome_met = sum(a["outcome"]["met_count"] for a in accounts if a["outcome"])
    outcome_total = sum(a["outcome"]["total"] for a in accounts if a["outcome"])
    invalid = [account for account in accounts if not account["valid"]]
    summary = {
        "plans": len(plans),
        "valid": len(plans) - len(invalid),
        "invalid": len(invalid),
        "error": counts["error"],
        "warning": counts["warning"],
        "info": counts["info"],
        "open": len(all_findings),
        "new": len(delta.new) if delta is not None else None,
        "resolved": len(delta.resolved) if delta is not None else None,
        "stale": sum(1 for f in all_findings if f["is_stale"]) if delta is not None else None,
        "outcome_met": outcome_met,
        "outcome_total": outcome_total,
        "outcome_pct": round(100 * outcome_met / outcome_total) if outcome_total else None,
        "complete": sum(1 for a in accounts if a["outcome"] and not a["outcome"]["missing"]),
        "clean": sum(1 for a in accounts if a["valid"] and not a["findings"]),
        "with_errors": sum(1 for a in accounts if a["counts"]["error"] or not a["valid"]),
    }
    owners = _owner_views(accounts)
    history = None
    if delta is not None:
        history = {
            "previous_run": delta.previous_run,
            "previous_run_text": _day(delta.previous_run) if delta.previous_run else None,
            "runs": len(delta.trend),
            "newly_invalid": [a for a in invalid if a["newly_invalid"]],
            "repaired": delta.repaired,
            "resolved": [_resolved_view(item, rules, accounts) for item in delta.resolved],
            "new": sorted((f for f in all_findings if f["is_new"]), key=_finding_order),
            "trend": delta.trend,
        }
    ranked = sorted(accounts, key=lambda a: (a["valid"], -a["counts"]["error"], -a["counts"]["warning"],
                                             -a["counts"]["info"], a["name"].lower()))
    view = {
        "title": "Account plan audit",
        "as_of": as_of,
        "as_of_text": f"{as_of:%A} {_day(as_of)}",
        "generated_at": generated_at.strftime("%Y-%m-%d %H:%M %Z").strip(),
        "version": __version__,
        "summary": summary,
        "history": history,
        "accounts": sorted(accounts, key=lambda a: (a["name"].lower(), a["file"])),
        "attention": [a for a in ranked if not a["valid"] or a["findings"]][:15],
        "owners": owners,
        "invalid": invalid,
        "rules": rules,
        "top_actions": sorted((f for f in all_findings), key=_action_order)[:10],
        "stale_days": STALE_DAYS,
        "evidence": OUTCOME_EVIDENCE,
    }
    view["charts"] = make_charts(view, all_findings) if charts else {}
    return view


def _account_view(number, plan, as_of, rules, first_seen, new_keys, invalid_since, previous_run) -> dict:
    name = plan.account_name or plan.account or plan.file
    anchor = f"account-{number}"
    findings = []
    for index, finding in enumerate(plan.findings):
        seen = first_seen.get((plan.file, index))
        findings.append(_finding_view(finding, plan, name, anchor, rules, as_of, seen,
                                      (plan.file, index) in new_keys))
    findings.sort(key=_finding_order)
    outcome = None
    if plan.valid and plan.outcome is not None:
        met, missing = list(plan.outcome.get("met", [])), list(plan.outcome.get("missing", []))
        total = len(met) + len(missing)
        outcome = {"met": met, "missing": missing, "met_count": len(met), "total": total,
                   "pct": round(100 * len(met) / total) if total else 0}
    errors = [{"message": error.get("message", ""), "where": _where(error.get("location") or {}, plan.file)}
              for error in plan.errors]
    since = invalid_since.get(plan.file)
    return {
        "anchor": anchor,
        "name": name,
        "id": plan.account,
        "file": plan.file,
        "owner": plan.account_owner,
        "valid": plan.valid,
        "errors": errors,
        "invalid_since": since,
        "invalid_days": (as_of - since).days if since else None,
        "newly_invalid": bool(since and since == as_of and previous_run),
        "findings": findings,
        "counts": {severity: sum(1 for f in findings if f["severity"] == severity) for severity in SEVERITIES},
        "new": sum(1 for f in findings if f["is_new"]),
        "oldest_days": max((f["days_open"] for f in findings if f["days_open"] is not None), default=None),
        "outcome": outcome,
    }


def _finding_view(finding, plan, account_name, anchor, rules, as_of, first_seen, is_new) -> dict:
    location = finding.get("location") or {}
    action = finding.get("next_action") or {}
    rule = rules.get(finding.get("rule"), {})
    days = (as_of - first_seen).days if first_seen else None
    subject = finding.get("subject") or {}
    return {
        "severity": finding.get("severity", "info"),
        "rule": finding.get("rule", ""),
        "rule_title": rule.get("title", ""),
        "guidance": list(finding.get("guidance") or []),
        "message": finding.get("message", ""),
        "subject": f"{subject.get('kind')} {subject.get('id')}" if subject else "",
        "where": _where(location, plan.file),
        "path": location.get("path"),
        "line": location.get("line"),
        "action": action.get("text") or "",
        "owner": action.get("owner") or plan.account_owner or NO_OWNER,
        "account": account_name,
        "account_id": plan.account,
        "anchor": anchor,
        "first_seen": first_seen,
        "days_open": days,
        "is_new": is_new,
        "is_stale": days is not None and days >= STALE_DAYS,
    }


def _owner_views(accounts: list[dict]) -> list[dict]:
    actions: dict[str, list[dict]] = defaultdict(list)
    for account in accounts:
        for finding in account["findings"]:
            actions[finding["owner"]].append(finding)
        if not account["valid"]:
            problems = len(account["errors"])
            first = account["errors"][0]["message"] if account["errors"] else ""
            actions[account["owner"] or NO_OWNER].append({
                "severity": "error", "rule": "invalid plan", "rule_title": "The plan file does not follow the format",
                "guidance": [], "message": first, "subject": "plan", "where": account["file"],
                "action": f"Fix the plan file {account['file']}: {problems} format problem{'s' if problems != 1 else ''}.",
                "owner": account["owner"] or NO_OWNER, "account": account["name"], "account_id": account["id"],
                "anchor": account["anchor"], "first_seen": account["invalid_since"],
                "days_open": account["invalid_days"], "is_new": account["newly_invalid"],
                "is_stale": (account["invalid_days"] or 0) >= STALE_DAYS,
            })
    owners = []
    for number, (owner, items) in enumerate(sorted(actions.items(), key=lambda kv: (kv[0] == NO_OWNER, kv[0].lower())), 1):
        items.sort(key=_action_order)
        owners.append({
            "name": owner,
            "initials": _initials(owner),
            "anchor": f"owner-{number}",
            "actions": items,
            "counts": {severity: sum(1 for f in items if f["severity"] == severity) for severity in SEVERITIES},
            "new": sum(1 for f in items if f["is_new"]),
            "accounts": len({f["anchor"] for f in items}),
        })
    return owners


def _initials(name: str) -> str:
    words = [word for word in re.split(r"[^0-9A-Za-z\u00C0-\uFFFF]+", name) if word]
    if not words or name == NO_OWNER:
        return "?"
    return "".join(word[0] for word in words[:2]).upper()


def _resolved_view(item: dict, rules: dict, accounts: list[dict]) -> dict:
    account = next((a for a in accounts if item["account"] and a["id"] == item["account"]), None)
    return {**item, "rule_title": rules.get(item["rule"], {}).get("title", ""),
            "account_name": account["name"] if account else (item["account"] or item["file"]),
            "anchor": account["anchor"] if account else None}


def _severity_rank(severity: str) -> int:
    return SEVERITIES.index(severity) if severity in SEVERITIES else len(SEVERITIES)


def _finding_order(finding: dict):
    return (_severity_rank(finding["severity"]), finding["rule"], finding["where"])


def _action_order(finding: dict):
    """Worst first; among equals the oldest first, then by account."""
    return (_severity_rank(finding["severity"]), -(finding["days_open"] or 0), finding["account"].lower(),
            finding["rule"])


def _where(location: dict, file: str) -> str:
    parts = [str(location.get("file") or file)]
    for key in ("line", "column"):
        if location.get(key):
            parts.append(str(location[key]))
    return ":".join(parts)


def _day(day: date) -> str:
    return f"{day.day} {day:%B %Y}"


# --- charts -----------------------------------------------------------------------------------

HALF, WIDE = 550, 1130  # the charts' widths in CSS pixels on a wide screen: fonts show at their size


def make_charts(view: dict, findings: list[dict]) -> dict[str, Markup | None]:
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

    by_rule = Counter(f["rule"] for f in findings)
    top_rules = [rule for rule, _ in sorted(by_rule.items(), key=lambda kv: (-kv[1], kv[0]))[:15]]
    charts["rules"] = _stacked_bars(
        [_rule_label(rule, view["rules"]) for rule in top_rules],
        [[sum(1 for f in findings if f["rule"] == rule and f["severity"] == severity) for rule in top_rules]
         for severity in SEVERITIES], WIDE, truncate=90) if top_rules else None

    by_owner = Counter(f["owner"] for f in findings)
    top_owners = [owner for owner, _ in sorted(by_owner.items(), key=lambda kv: (-kv[1], kv[0]))[:15]]
    charts["owners"] = _stacked_bars(
        top_owners, [[sum(1 for f in findings if f["owner"] == owner and f["severity"] == severity)
                      for owner in top_owners] for severity in SEVERITIES], WIDE, truncate=40) if top_owners else None

    evidence = Counter(item for account in view["accounts"] if account["outcome"] for item in account["outcome"]["met"])
    with_outcome = sum(1 for account in view["accounts"] if account["outcome"])
    if with_outcome:
        ticks = [tick for tick in _ticks(with_outcome) if tick <= with_outcome]
        bar = pygal.HorizontalBar(**_config(HALF, 56 + 32 * len(OUTCOME_EVIDENCE), show_legend=False, print_values=True,
                                            range=(0, with_outcome), show_x_guides=False, show_y_guides=True,
                                            truncate_label=-1,
                                            style=_style(colors=("#0f766e",), value_colors=("#fff",),
                                                         value_font_size=11)))
        keys = list(reversed(OUTCOME_EVIDENCE))  # pygal draws the first label at the bottom
        bar.x_labels = [f"{key} {OUTCOME_EVIDENCE[key]}" for key in keys]
        bar.y_labels = ticks
        bar.add("accounts", [evidence.get(key, 0) for key in keys],
                formatter=lambda value: f"{value:g} of {with_outcome}")
        charts["outcome"] = _svg(bar)
    else:
        charts["outcome"] = None

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
    return html, markdown


def render_html(view: dict) -> str:
    html, _ = _environments()
    return html.get_template("index.html.j2").render(**view)


def render_markdown(view: dict) -> str:
    _, markdown = _environments()
    text = markdown.get_template("summary.md.j2").render(**view)
    text = re.sub(r"\n*(^#+ )", r"\n\n\1", text, flags=re.M)  # a blank line before every heading
    return re.sub(r"\n{3,}", "\n\n", text).strip() + "\n"


_MARKDOWN_SPECIAL = re.compile(r"([\\`*_\[\]<>|~])")  # what could make links, HTML, emphasis, code, tables


def markdown_escape(value: Any) -> Any:
    """Every value a Markdown template prints: plan text cannot turn into links, HTML or markup."""
    if value is None:
        return ""
    if isinstance(value, (int, float)):
        return value
    text = str(value).replace("\r", " ").replace("\n", " ")
    return _MARKDOWN_SPECIAL.sub(r"\\\1", text)


def audit_json(as_of: date, plans: list, *, delta=None) -> dict:
    """audit.json: the `ssm check --format json` document, plus history when there is some."""
    summary = {"plans": len(plans), "error": 0, "warning": 0, "info": 0}
    documents = []
    for plan in plans:
        document = plan.to_json()
        if not plan.valid:
            summary["error"] += 1
        if plan.account_owner is not None:
            document["account_owner"] = plan.account_owner
        findings = []
        for index, finding in enumerate(plan.findings):
            summary[finding["severity"]] = summary.get(finding["severity"], 0) + 1
            if delta is not None:
                seen = delta.first_seen.get((plan.file, index))
                finding = {**finding, "first_seen": seen.isoformat() if seen else as_of.isoformat()}
            findings.append(finding)
        document["findings"] = findings
        if delta is not None and not plan.valid and plan.file in delta.invalid_since:
            document["invalid_since"] = delta.invalid_since[plan.file].isoformat()
        documents.append(document)
    result: dict[str, Any] = {"version": 1, "as_of": as_of.isoformat(), "plans": documents, "summary": summary}
    if delta is not None:
        result["history"] = delta.to_json()
    return result


def render_all(view: dict, as_of: date, plans: list, *, delta=None) -> dict:
    """The report directory's files: name -> text, or a function that streams it to a file.

    The page and the JSON of a large portfolio run to tens of megabytes: they are written
    piece by piece instead of being built as strings first.
    """
    html, _ = _environments()
    page = html.get_template("index.html.j2")
    document = audit_json(as_of, plans, delta=delta)

    def write_json(stream) -> None:
        json.dump(document, stream, indent=2, ensure_ascii=False)
        stream.write("\n")

    return {
        "index.html": lambda stream: page.stream(**view).dump(stream),
        "summary.md": render_markdown(view),
        "audit.json": write_json,
    }
