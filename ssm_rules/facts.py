"""Plan + as-of date -> the flat facts the rule engine matches.

The only place that computes derived plan values (days since the last review, the sum of
route shares, whether a meeting lies ahead, ...): rules compare them, they never compute them.
A fact has a field only when the plan gives it a value (empty text or lists count as absent),
so a rule asks "is it missing?" with `exists: false`. Counts and booleans are always present.
Domain IDs live in `key`; `id` is left to the engine adapter.
"""

from __future__ import annotations

import math
from datetime import date
from functools import lru_cache
from typing import Any

from ssm_rules.plan_format import ACTIVITIES, MILESTONES, OPEN_STAGES, ROLES, STAGE_RANKS, STAGES, Record

# The buying-unit roles that give verifiable outcomes: a rule asks one of them, by name, for the
# next outcome of a deal (the stages guide's "who must give it").
NAMED_ROLES = ("key_decision_leader", "sponsor", "benefit_owner", "approver")

# What a fact field holds. Dates are ISO text (`2026-11-27`), compared as text; a list is
# compared as its items joined with ", ".
TEXT, NUMBER, DATE, BOOLEAN, LIST = "text", "number", "date", "boolean", "list"
FIELD_TYPES = (TEXT, NUMBER, DATE, BOOLEAN, LIST)

# kind -> field -> (type, description). The rule loader rejects any field not listed here, and
# any test whose value cannot have the field's type, so a typo in a rule can never silently
# switch a check off. Every fact also has `kind` and `path`.
FACT_FIELDS: dict[str, dict[str, tuple[str, str]]] = {
    "plan": {
        "key": (TEXT, "the account ID"),
        "account_name": (TEXT, "the account's name"),
        "owner": (TEXT, "the account owner (team member)"),
        "industry": (TEXT, "the client's industry"),
        "last_reviewed": (DATE, "date of the last full review"),
        "days_since_review": (NUMBER, "days from the last review to the as-of date"),
        "approved_by_client": (DATE, "date the client approved the plan"),
        "source_kinds": (NUMBER, "number of distinct kinds of source that validated the plan"),
        "phase_complete": (BOOLEAN, "the team claims Phase 1 complete"),
        "claims_complete": (BOOLEAN, "phase_complete, or an opportunity (not lost) past identified: at a later "
                                     "stage, or with an outcome of a later milestone recorded"),
        "completion_claim": (TEXT, "what claims Phase 1 complete, in words: `plan.phase_complete: true`, "
                                   "else the first opportunity past identified (absent when nothing does)"),
        "completion_claim_path": (TEXT, "the plan path of that claim (plan.phase_complete, opportunities[2].stage, "
                                        "opportunities[3].outcomes)"),
        "research_industry": (TEXT, "insight.research.industry"),
        "research_competitors": (LIST, "insight.research.competitors"),
        "research_business_direction": (TEXT, "insight.research.business_direction"),
        "it_environment": (TEXT, "insight.it_environment"),
        "pref_technology": (TEXT, "insight.preferences.technology"),
        "pref_finance": (TEXT, "insight.preferences.finance"),
        "pref_procurement": (TEXT, "insight.preferences.procurement"),
        "pref_vendor": (TEXT, "insight.preferences.vendor"),
        "org_formal": (TEXT, "insight.organization.formal"),
        "org_informal": (LIST, "insight.organization.informal"),
        "position_current": (TEXT, "insight.position.current"),
        "position_desired": (TEXT, "insight.position.desired"),
        "strategic_priority_count": (NUMBER, "number of strategic priorities"),
        "issue_count": (NUMBER, "number of client issues"),
        "initiative_count": (NUMBER, "number of client initiatives"),
        "opportunity_count": (NUMBER, "number of opportunities"),
        "must_win_count": (NUMBER, "number of must-win opportunities"),
        "route_count": (NUMBER, "number of routes to market"),
        "route_share_total": (NUMBER, "sum of the route shares (percent)"),
        "routes_agreed": (BOOLEAN, "routes and service approach agreed with the client"),
        "client_spend": (NUMBER, "what the client spends with the team a year"),
        "target": (NUMBER, "the team's sales target for the account"),
        "team_plan": (TEXT, "how the team will reach its target"),
        "strategy_count": (NUMBER, "number of objective-based strategy statements"),
        "thought_leadership_count": (NUMBER, "number of thought-leadership items"),
        "thought_leadership_confirmed_count": (NUMBER, "number of confirmed thought-leadership items"),
        "assessment_satisfied": (BOOLEAN, "the client is satisfied with the assessment plan and actions"),
    },
    "activity": {
        "key": (TEXT, "align, plan, articulate_value or thought_leadership"),
        "order": (NUMBER, "position in the order SSM sets (1-4)"),
        "status": (TEXT, "not_started, in_progress or done (not_started when absent)"),
    },
    "contact": {
        "key": (TEXT, "the contact's ID"),
        "name": (TEXT, "full name"),
        "title": (TEXT, "job title"),
        "attitude": (TEXT, "supporter, neutral, unsupportive or opposed"),
        "influence": (TEXT, "high, medium or low"),
        "owner": (TEXT, "team member who owns the relationship"),
        "goal": (TEXT, "goal to strengthen the relationship"),
        "last_contact": (DATE, "date of the last contact"),
        "days_since_contact": (NUMBER, "days from the last contact to the as-of date"),
        "next_meeting": (DATE, "date of the next planned meeting"),
        "meeting_ahead": (BOOLEAN, "next_meeting is on or after the as-of date"),
        "benefit": (TEXT, "what this person gains"),
        "has_plan": (BOOLEAN, "a conversion or containment plan is written down"),
        "external": (BOOLEAN, "consultant, analyst, supplier or shareholder"),
        "in_buying_unit": (BOOLEAN, "holds a buying-unit role in any opportunity"),
    },
    "opportunity": {
        "key": (TEXT, "the opportunity's ID"),
        "name": (TEXT, "the opportunity's name"),
        "owner": (TEXT, "the seller who owns it (the account owner when the plan names none)"),
        "initiative": (TEXT, "ID of the client initiative it serves"),
        "priority": (NUMBER, "rank, 1 = highest"),
        "must_win": (BOOLEAN, "a must-win opportunity"),
        "value": (NUMBER, "value in the account's currency"),
        "stage": (TEXT, "pipeline milestone (the claimed stage)"),
        "stage_rank": (NUMBER, "rank of the claimed stage: identified 1, validated 2, qualified 3, proposed 4, "
                               "won 5, completed 6 (absent when lost)"),
        "open": (BOOLEAN, "at identified, validated, qualified or proposed"),
        "past_identified": (BOOLEAN, "stage past identified, other than lost"),
        "component_count": (NUMBER, "number of solution components"),
        "priority_peers": (NUMBER, "number of other opportunities, not lost, with its priority "
                                   "(absent when it has no priority or is lost)"),
        "priority_peer_names": (LIST, "on the first (in plan order) of several opportunities, not lost, that "
                                      "share a priority: the names (else IDs) of the others"),
        "stage_since": (DATE, "date it reached its current stage"),
        "days_in_stage": (NUMBER, "days from stage_since to the as-of date"),
        "close_date": (DATE, "expected close date (the actual one once won or lost)"),
        "days_since_close": (NUMBER, "days from close_date to the as-of date (negative: the close date lies ahead)"),
        "next_step": (TEXT, "the next step's action"),
        "next_step_due": (DATE, "the next step's due date"),
        "days_since_next_step_due": (NUMBER, "days from next_step.due to the as-of date (negative: not yet due)"),
        "next_step_owner": (TEXT, "who does the next step (the opportunity's owner when the plan names none)"),
        "lost_reason": (TEXT, "why it was lost"),
        "claimed_outcomes": (LIST, "the outcome keys of the milestones up to the claimed stage, in order"),
        **{f"named_{role}": (TEXT, f"the first {role.replace('_', ' ')} of its buying unit, role and name "
                                   f"(`{role.replace('_', ' ')} Li Wei`)") for role in NAMED_ROLES},
    },
    "role": {
        "key": (TEXT, "opportunity/contact/role"),
        "opportunity": (TEXT, "the opportunity's ID"),
        "contact": (TEXT, "the contact's ID"),
        "role": (TEXT, "key_decision_leader, sponsor, benefit_owner, evaluator, approver or influencer"),
        "role_name": (TEXT, "the role in words: key decision leader, sponsor, benefit owner, ..."),
    },
    "outcome": {
        "key": (TEXT, "opportunity/outcome"),
        "opportunity": (TEXT, "the opportunity's ID"),
        "outcome": (TEXT, "interest, need_confirmed, go_forward, conditional_approval, contract_signed or "
                          "value_acknowledged"),
        "milestone": (TEXT, "the stage it proves: identified, validated, qualified, proposed, won or completed"),
        "rank": (NUMBER, "the rank of that stage (1-6)"),
        "date": (DATE, "when the client gave it"),
        "days_since": (NUMBER, "days from date to the as-of date (negative: dated in the future)"),
        "by": (LIST, "IDs of the contacts who gave it"),
        "by_names": (LIST, "the names (else IDs) of the contacts who gave it"),
        "by_count": (NUMBER, "number of contacts who gave it"),
        "by_key_decision_leader": (BOOLEAN, "one who gave it is a key decision leader (the power sponsor) of "
                                            "the opportunity"),
        "by_approver": (BOOLEAN, "one who gave it is an approver of the opportunity"),
        "evidence": (TEXT, "what the evidence is"),
        "latest_earlier": (TEXT, "the outcome key, of the milestones before this one, with the latest date "
                                 "(absent for the first recorded)"),
        "latest_earlier_date": (DATE, "that outcome's date"),
        "days_after_latest_earlier": (NUMBER, "days from latest_earlier_date to this outcome's date (negative: "
                                              "dated before an outcome of an earlier milestone)"),
        "days_after_stage_since": (NUMBER, "days from the opportunity's stage_since to this outcome's date "
                                           "(positive: dated after it)"),
        "outcomes_after": (LIST, "the outcome keys of the milestones after this one up to the opportunity's "
                                 "claimed stage, in order (absent when this one is the claimed stage's or later)"),
        **{f"named_{role}": (TEXT, f"as the opportunity's `named_{role}`") for role in NAMED_ROLES},
    },
    "initiative": {
        "key": (TEXT, "the initiative's ID"),
        "goal": (TEXT, "the strategic goal"),
        "action_count": (NUMBER, "number of actions"),
        "project_count": (NUMBER, "number of projects"),
    },
    "issue": {
        "key": (NUMBER, "position in insight.issues (0-based)"),
        "text": (TEXT, "the issue"),
        "priority": (NUMBER, "rank"),
        "confirmed_with_client": (BOOLEAN, "confirmed with the client"),
    },
    "route": {
        "key": (NUMBER, "position in routes_to_market.routes (0-based)"),
        "route": (TEXT, "the route (direct, business_partner, ...)"),
        "share": (NUMBER, "percent of opportunities through this route"),
    },
    "partner": {
        "key": (NUMBER, "position in plan.partners (0-based)"),
        "name": (TEXT, "the partner's name"),
        "participated": (BOOLEAN, "took part in developing the plan"),
    },
    "thought_leadership": {
        "key": (NUMBER, "position in thought_leadership (0-based)"),
        "topic": (TEXT, "the topic"),
        "confirmed": (BOOLEAN, "confirmed with the client and partners"),
    },
}

STAGES_PAST_IDENTIFIED = frozenset(STAGES[1:])


def plan_facts(plan: Record, as_of: date) -> list[dict[str, Any]]:
    """Every fact of one plan, in plan order (the order findings are reported in)."""
    contacts = plan.contacts or []
    opportunities = plan.opportunities or []
    roles = [
        (f"opportunities[{opportunity_index}].buying_unit.{role}[{position}]", opportunity.id, role, contact_id)
        for opportunity_index, opportunity in enumerate(opportunities)
        for role in ROLES
        for position, contact_id in enumerate(getattr(opportunity.buying_unit, role, None) or [])
    ]
    in_buying_unit = {contact_id for _, _, _, contact_id in roles}
    # Opportunities (not lost) by priority: counted in one pass, so that a rule about shared
    # priorities never has to pair opportunities (2,000 of them sharing one would make 4 million pairs).
    by_priority: dict[int, list[int]] = {}
    for index, opportunity in enumerate(opportunities):
        if opportunity.priority is not None and opportunity.stage != "lost":
            by_priority.setdefault(opportunity.priority, []).append(index)

    facts = [_plan_fact(plan)]
    activities = plan.plan.activities if plan.plan else None
    for order, name in enumerate(ACTIVITIES, start=1):
        status = getattr(activities, name, None) or "not_started"
        facts.append({"kind": "activity", "path": f"plan.activities.{name}", "key": name,
                      "order": order, "status": status})
    for index, issue in enumerate((plan.insight.issues if plan.insight else None) or []):
        facts.append(_compact("issue", f"insight.issues[{index}]", index, {
            "text": issue.text, "priority": issue.priority,
            "confirmed_with_client": bool(issue.confirmed_with_client)}))
    for index, initiative in enumerate(plan.initiatives or []):
        facts.append(_compact("initiative", f"initiatives[{index}]", initiative.id, {
            "goal": initiative.goal, "action_count": len(initiative.actions or []),
            "project_count": len(initiative.projects or [])}))
    for index, contact in enumerate(contacts):
        facts.append(_compact("contact", f"contacts[{index}]", contact.id, {
            "name": contact.name, "title": contact.title, "attitude": contact.attitude,
            "influence": contact.influence, "owner": contact.owner, "goal": contact.goal,
            "last_contact": _iso(contact.last_contact), "next_meeting": _iso(contact.next_meeting),
            "benefit": contact.benefit, "has_plan": bool(_present(contact.plan)),
            "external": bool(contact.external), "in_buying_unit": contact.id in in_buying_unit}))
    names = {contact.id: contact.name or contact.id for contact in contacts}
    named = [_named_roles(opportunity, names) for opportunity in opportunities]
    for index, opportunity in enumerate(opportunities):
        peers = by_priority.get(opportunity.priority, ()) if opportunity.stage != "lost" else ()
        facts.append(_compact("opportunity", f"opportunities[{index}]", opportunity.id, {
            "name": opportunity.name, "initiative": opportunity.initiative,
            "priority": opportunity.priority, "must_win": bool(opportunity.must_win),
            "value": opportunity.value, "stage": opportunity.stage,
            "past_identified": opportunity.stage in STAGES_PAST_IDENTIFIED,
            "component_count": len(set(opportunity.components or [])),
            "priority_peers": len(peers) - 1 if peers else None,
            "priority_peer_names": [_name(opportunities[other]) for other in peers[1:]]
            if peers and peers[0] == index else None,
            **_stage_fields(opportunity, plan.account.owner, named[index])}))
    for path, opportunity_id, role, contact_id in roles:
        facts.append({"kind": "role", "path": path, "key": f"{opportunity_id}/{contact_id}/{role}",
                      "opportunity": opportunity_id, "contact": contact_id, "role": role,
                      "role_name": role.replace("_", " ")})
    for index, opportunity in enumerate(opportunities):
        facts += _outcome_facts(opportunity, index, named[index], names)
    routes = (plan.routes_to_market.routes if plan.routes_to_market else None) or []
    for index, route in enumerate(routes):
        facts.append(_compact("route", f"routes_to_market.routes[{index}]", index,
                              {"route": route.route, "share": route.share}))
    for index, partner in enumerate((plan.plan.partners if plan.plan else None) or []):
        facts.append(_compact("partner", f"plan.partners[{index}]", index,
                              {"name": partner.name, "participated": bool(partner.participated)}))
    for index, item in enumerate(plan.thought_leadership or []):
        facts.append(_compact("thought_leadership", f"thought_leadership[{index}]", index,
                              {"topic": item.topic, "confirmed": bool(item.confirmed)}))
    date_facts(facts, as_of)
    return facts


# The fields that depend on the as-of date, by fact kind: (field, the date field of the same fact
# it is counted from, how). Nothing else in a plan's facts moves from one day to the next, which
# lets a nightly run re-date an unchanged plan's facts of an earlier night (pipeline.Checker)
# instead of building them again; plan_facts sets them the same way, here.
DAYS_SINCE, AHEAD = "days since", "ahead"
AS_OF_FIELDS: dict[str, tuple[tuple[str, str, str], ...]] = {
    "plan": (("days_since_review", "last_reviewed", DAYS_SINCE),),
    "contact": (("days_since_contact", "last_contact", DAYS_SINCE), ("meeting_ahead", "next_meeting", AHEAD)),
    "opportunity": (("days_in_stage", "stage_since", DAYS_SINCE), ("days_since_close", "close_date", DAYS_SINCE),
                    ("days_since_next_step_due", "next_step_due", DAYS_SINCE)),
    "outcome": (("days_since", "date", DAYS_SINCE),),
}


def date_facts(facts: list[dict[str, Any]], as_of: date) -> list[dict[str, Any]]:
    """Set (in place) the fields of `facts` counted from `as_of` (AS_OF_FIELDS). Returns `facts`."""
    for fact in facts:
        fields = AS_OF_FIELDS.get(fact["kind"])
        if fields is None:
            continue
        for name, source, how in fields:
            value = as_of_value(fact.get(source), how, as_of)
            if value is None:
                fact.pop(name, None)
            else:
                fact[name] = value
    return facts


def as_of_value(when: str | None, how: str, as_of: date) -> int | bool | None:
    """The value of an as-of field whose date field holds `when` (ISO text, or None when the plan
    gives no date): a count of days (None, absent, without a date), or whether the date is still
    ahead (false without a date)."""
    if how == AHEAD:
        return when is not None and when >= as_of.isoformat()  # ISO dates (4-digit years) compare as text
    return None if when is None else (as_of - _from_iso(when)).days


@lru_cache(maxsize=4096)
def _from_iso(when: str) -> date:
    return date.fromisoformat(when)  # the same few dates recur across a portfolio's facts


def _named_roles(opportunity: Record, names: dict[str, str]) -> dict[str, str]:
    """`named_ROLE` -> "ROLE NAME" of the first contact holding each role that gives outcomes."""
    named = {}
    for role in NAMED_ROLES:
        holders = getattr(opportunity.buying_unit, role, None) or []
        if holders:
            named[f"named_{role}"] = f"{role.replace('_', ' ')} {names.get(holders[0], holders[0])}"
    return named


def _stage_fields(opportunity: Record, account_owner: str, named: dict[str, str]) -> dict[str, Any]:
    """The opportunity's stage data, as values: ranks, days, its next step, who owns it."""
    owner = opportunity.owner or account_owner
    stage_rank = STAGE_RANKS.get(opportunity.stage)
    next_step = opportunity.next_step
    return {
        "owner": owner, "stage_rank": stage_rank, "open": opportunity.stage in OPEN_STAGES,
        "stage_since": _iso(opportunity.stage_since), "close_date": _iso(opportunity.close_date),
        "next_step": next_step and next_step.action,
        "next_step_due": _iso(next_step.due) if next_step else None,
        "next_step_owner": (next_step.owner or owner) if next_step else None,
        "lost_reason": opportunity.lost_reason,
        "claimed_outcomes": [outcome for _, outcome in MILESTONES[:stage_rank or 0]],
        **named,
    }


def _outcome_facts(opportunity: Record, index: int, named: dict[str, str],
                   names: dict[str, str]) -> list[dict[str, Any]]:
    """One fact per recorded verifiable outcome, in milestone order."""
    facts: list[dict[str, Any]] = []
    unit = opportunity.buying_unit
    claimed_rank = STAGE_RANKS.get(opportunity.stage, 0)
    deciders = set(getattr(unit, "key_decision_leader", None) or [])
    approvers = set(getattr(unit, "approver", None) or [])
    latest: tuple[date, str] | None = None  # (date, key) of the latest outcome of the milestones so far
    for rank, (milestone, key) in enumerate(MILESTONES, start=1):
        outcome = getattr(opportunity.outcomes, key, None)
        if outcome is None:
            continue
        path = f"opportunities[{index}].outcomes.{key}"
        by = outcome.by or []
        facts.append(_compact("outcome", path, f"{opportunity.id}/{key}", {
            "opportunity": opportunity.id, "outcome": key, "milestone": milestone, "rank": rank,
            "date": _iso(outcome.date),
            "by": by, "by_names": [names.get(contact, contact) for contact in by], "by_count": len(set(by)), "by_key_decision_leader": not deciders.isdisjoint(by),
            "by_approver": not approvers.isdisjoint(by), "evidence": outcome.evidence,
            "latest_earlier": latest and latest[1], "latest_earlier_date": latest and _iso(latest[0]),
            "days_after_latest_earlier": latest and (outcome.date - latest[0]).days,
            "days_after_stage_since": _days_between(opportunity.stage_since, outcome.date),
            # What a claim at the opportunity's stage misses when the support stops at this
            # outcome: the rules deriving the supported stage carry it into S01's message.
            "outcomes_after": [later for _, later in MILESTONES[rank:claimed_rank]], **named}))
        if latest is None or outcome.date > latest[0]:
            latest = (outcome.date, key)
    return facts


def _plan_fact(plan: Record) -> dict[str, Any]:
    section = plan.plan
    insight = plan.insight
    research = insight.research if insight else None
    preferences = insight.preferences if insight else None
    position = insight.position if insight else None
    organization = insight.organization if insight else None
    opportunities = plan.opportunities or []
    routes = (plan.routes_to_market.routes if plan.routes_to_market else None) or []
    team = plan.team
    thought_leadership = plan.thought_leadership or []
    phase_complete = bool(section and section.phase_complete)
    last_reviewed = section.last_reviewed if section else None
    claim, claim_path = _completion_claim(phase_complete, opportunities)
    return _compact("plan", "", plan.account.id, {
        "account_name": plan.account.name,
        "owner": plan.account.owner,
        "industry": plan.account.industry,
        "last_reviewed": _iso(last_reviewed),
        "approved_by_client": _iso(section.approved_by_client if section else None),
        "source_kinds": len(set(section.sources or [])) if section else 0,
        "phase_complete": phase_complete,
        "claims_complete": claim is not None,
        "completion_claim": claim,
        "completion_claim_path": claim_path,
        "research_industry": research and research.industry,
        "research_competitors": research and research.competitors,
        "research_business_direction": research and research.business_direction,
        "it_environment": insight and insight.it_environment,
        "pref_technology": preferences and preferences.technology,
        "pref_finance": preferences and preferences.finance,
        "pref_procurement": preferences and preferences.procurement,
        "pref_vendor": preferences and preferences.vendor,
        "org_formal": organization and organization.formal,
        "org_informal": organization and organization.informal,
        "position_current": position and position.current,
        "position_desired": position and position.desired,
        "strategic_priority_count": len((insight.strategic_priorities if insight else None) or []),
        "issue_count": len((insight.issues if insight else None) or []),
        "initiative_count": len(plan.initiatives or []),
        "opportunity_count": len(opportunities),
        "must_win_count": sum(1 for o in opportunities if o.must_win),
        "route_count": len(routes),
        "route_share_total": _share_total(routes),
        "routes_agreed": bool(plan.routes_to_market and plan.routes_to_market.agreed_with_client),
        "client_spend": team and team.client_spend,
        "target": team and team.target,
        "team_plan": team and team.plan,
        "strategy_count": len((team.strategies if team else None) or []),
        "thought_leadership_count": len(thought_leadership),
        "thought_leadership_confirmed_count": sum(1 for item in thought_leadership if item.confirmed),
        "assessment_satisfied": bool(plan.outcome and plan.outcome.assessment_satisfied),
    })


def _completion_claim(phase_complete: bool, opportunities: list) -> tuple[str | None, str | None]:
    """What claims that Phase 1 is complete, in words and as a plan path: the plan's own flag, or
    else an opportunity that has moved past `identified` (SSM's Focus phase comes first)."""
    if phase_complete:
        return "`plan.phase_complete: true`", "plan.phase_complete"
    past = [index for index, o in enumerate(opportunities) if o.stage in STAGES_PAST_IDENTIFIED]
    if not past:
        # An outcome past `interest` in the plan says the deal moved on, whatever its stage
        # says: lowering the stage must not hide that Phase 1 is claimed.
        evidence = [index for index, o in enumerate(opportunities)
                    if o.stage != "lost" and _records_outcome_past_interest(o)]
        if not evidence:
            return None, None
        first = opportunities[evidence[0]]
        return (f"opportunity '{_name(first)}' (its recorded outcomes go past 'identified')",
                f"opportunities[{evidence[0]}].outcomes")
    first = opportunities[past[0]]
    more = f" (and {len(past) - 1} more past 'identified')" if len(past) > 1 else ""
    return f"opportunity '{_name(first)}' at stage '{first.stage}'{more}", f"opportunities[{past[0]}].stage"


def _records_outcome_past_interest(opportunity) -> bool:
    outcomes = opportunity.outcomes
    return outcomes is not None and any(getattr(outcomes, key) is not None for _, key in MILESTONES[1:])


def _name(opportunity) -> str:
    return opportunity.name if opportunity.name and opportunity.name.strip() else opportunity.id


def _compact(kind: str, path: str, key: Any, fields: dict[str, Any]) -> dict[str, Any]:
    fact: dict[str, Any] = {"kind": kind, "path": path, "key": key}
    for name, value in fields.items():
        # The common types inline (this runs for every field of every fact of every plan);
        # the same rules as `_present` and `_number`, which handle the rest.
        if value is None:
            continue
        cls = type(value)
        if cls is str:
            if not value or value.isspace():  # blank text is absent, like `not value.strip()`
                continue
        elif cls is not bool and cls is not int:
            value = _present(value)
            if value is None:
                continue
            if isinstance(value, float):
                value = _number(value)
        fact[name] = value
    return fact


def _present(value: Any) -> Any:
    """None for what the plan leaves out: missing, blank text, empty lists."""
    if value is None:
        return None
    if isinstance(value, str) and not value.strip():
        return None
    if isinstance(value, (list, tuple)):
        items = [item for item in value if not (isinstance(item, str) and not item.strip())]
        return list(items) if items else None
    return value


def _number(value: float) -> int | float:
    # 70.0 -> 70: shares and money read naturally in messages, and compare the same in the engine.
    # Only where the float is exact: past 2**53 an int would claim digits the float never had.
    value = float(value)
    return int(value) if value.is_integer() and abs(value) <= _EXACT_WHOLE else value


_EXACT_WHOLE = 2**53
# Shares are written in decimal and added in binary: 10.1 + 64.1 + 25.8 is 99.99999999999999.
# The total is rounded to this many decimals, which no share a person writes needs, so that
# it compares (and reads in a message) as the 100 it is.
_SHARE_DECIMALS = 6


def _share_total(routes: list) -> int | float:
    return _number(round(math.fsum(route.share or 0 for route in routes), _SHARE_DECIMALS))


def _iso(value: date | None) -> str | None:
    return value.isoformat() if value else None


def _days_between(earlier: date | None, as_of: date) -> int | None:
    return (as_of - earlier).days if earlier else None
