"""The audit's view model: what the report shows, as plain data and spool queries.

`build_view` turns the results in the spool (and the history delta) into what the templates
show: counts, accounts, owners' action lists, what is new and resolved, the pipeline section and
the charts (`charts.py`). The lists that grow with the portfolio are queries on the spool
(`spool.Rows`), read while the page is streamed to its file, so memory stays flat however many
plans there are. `report.py` renders the view.
"""

from __future__ import annotations

import json
import re
import sqlite3
from datetime import date, datetime
from functools import lru_cache
from typing import Any, Callable, Iterable, Iterator

from ssm_rules import __version__
from ssm_rules.audit.charts import make_charts
from ssm_rules.audit.spool import NO_OWNER, Rows
from ssm_rules.i18n import _
from ssm_rules.severity import SEVERITIES

STALE_DAYS = 28  # an open finding this old is "open for weeks"


# The view is plain data for the templates, except that every list as long as the portfolio is
# a `Rows`: a query on the spool, run while the template iterates it. Each query's ORDER BY
# reproduces a stable sort of the plans in input order (hence the final `seq`/`pos` keys):
#
#   accounts      by name (lower case), then file (seq: to walk the findings beside them)
#   findings      worst first, then by rule and place: `pos`, fixed when spooled
#   actions       worst first, then oldest, then by account (lower case) and rule
#   attention     invalid first, then by errors, warnings, info (most first), then by name

# (the columns `_Views.finding` reads, not f.*: a page reads 80,000 findings, and each column
# read is a Python object made)
_FINDINGS = """
    SELECT f.plan_seq, f.severity, f.rule, f.guidance, f.message, f.path, f.line, f.action, f.owner, f.first_seen,
           f.is_new, p.name AS account_name
    FROM audit_findings f JOIN audit_plans p ON p.seq = f.plan_seq"""
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
_ACTION_COLUMNS = "plan_seq, severity, rule, guidance, message, path, line, action, owner, first_seen, is_new, account_name, errors, file"
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
            "previous_run_text": day_text(delta.previous_run) if delta.previous_run else None,
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
        "title": _("Account plan audit") + (f": {owner}" if owner else ""),
        "owner": owner,
        "as_of": as_of,
        "as_of_text": f"{as_of:%A} {day_text(as_of)}",
        "generated_at": generated_at.strftime("%Y-%m-%d %H:%M %Z").strip(),
        "version": __version__,
        "summary": summary,
        "history": history,
        # The account cards (a plan with findings, or an invalid one), then the clean accounts' list.
        "accounts": views.accounts_with_findings(),
        "clean_accounts": rows("SELECT * FROM audit_plans WHERE valid AND NOT findings ORDER BY name_lower, file",
                               views.clean_account),
        "attention": rows("SELECT * FROM audit_plans WHERE NOT valid OR findings ORDER BY valid, error DESC,"
                          " warning DESC, info DESC, name_lower, seq", views.account)[:15],
        # An owner's "new" counts new findings, as the New card does; a newly broken plan has its own tag.
        "owners": rows(f"""SELECT *, row_number() OVER (ORDER BY owner = :no_owner, first_lower, first_seq) AS number
                           FROM (SELECT owner, min(owner_lower) AS first_lower, min(plan_seq * 1048576 + pos) AS first_seq,
                                        sum(severity = 'error') AS error, sum(severity = 'warning') AS warning,
                                        sum(severity = 'info') AS info, sum(is_new AND :has_history AND errors IS NULL) AS new,
                                        count(DISTINCT plan_seq) AS accounts, count(*) AS actions
                                 FROM ({_ACTIONS}) GROUP BY owner)
                           ORDER BY number""", views.owner, whole=True),  # one row per person
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

    def rows(self, sql: str, make, whole: bool = False, **params) -> Rows:
        """A query on the spool, with the view's named parameters (sqlite3 ignores those it does not use)."""
        return Rows(self.db, sql, {**self.params, **params}, make, whole=whole)

    def accounts_with_findings(self) -> Iterable[dict]:
        """The accounts with findings or an invalid plan, each with its findings.

        Two queries in the same order, walked side by side (a merge): the plans, and every
        finding of them; not one findings query per account."""
        plans = self.rows("SELECT * FROM audit_plans WHERE NOT valid OR findings ORDER BY name_lower, file, seq",
                          lambda row: row)
        findings = self.rows(_FINDINGS + " ORDER BY p.name_lower, p.file, p.seq, f.pos",
                             lambda row: (row["plan_seq"], self.finding(row)))
        return _Merged(plans, findings, self.account)

    def clean_account(self, row) -> dict:
        return self.account(row, [])

    def account(self, row, findings: list[dict] | None = None) -> dict:
        if findings is None:
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
            "guidance": _guidance_ids(row["guidance"]),
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
            "actions": self.rows(f"SELECT {_ACTION_COLUMNS} FROM ({_ACTIONS}) WHERE owner = :owner ORDER BY {_ACTION_ORDER}",
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


class _Merged:
    """Plan rows and (seq, finding) pairs, both in the same order -> each plan's account, with
    its findings; read again each time it is iterated, as `Rows` is."""

    def __init__(self, plans: Rows, findings: Rows, account: Callable[[sqlite3.Row, list[dict]], dict]):
        self.plans, self.findings, self.account = plans, findings, account

    def __iter__(self) -> Iterator[dict]:
        findings = iter(self.findings)
        pending = next(findings, None)
        for plan in self.plans:
            own = []
            while pending is not None and pending[0] == plan["seq"]:
                own.append(pending[1])
                pending = next(findings, None)
            yield self.account(plan, own)


def _one(db, sql: str, params: dict | tuple = ()) -> sqlite3.Row:
    cursor = db.cursor()
    cursor.row_factory = sqlite3.Row
    return cursor.execute(sql, params).fetchone()


@lru_cache(maxsize=1024)
def _guidance_ids(text: str) -> tuple[str, ...]:
    """A finding's guidance IDs (a JSON list in the spool): a portfolio repeats a few lists."""
    return tuple(json.loads(text))


@lru_cache(maxsize=1024)
def _date(text: str | None) -> date | None:
    return date.fromisoformat(text) if text else None


def _initials(name: str) -> str:
    words = [word for word in re.split(r"[^0-9A-Za-z\u00C0-\uFFFF]+", name) if word]
    if not words or name == NO_OWNER:
        return "?"
    return "".join(word[0] for word in words[:2]).upper()


def day_text(day: date) -> str:
    return f"{day.day} {day:%B %Y}"
