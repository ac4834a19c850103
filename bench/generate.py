"""Generate a synthetic portfolio of valid SSM account plans, deterministically.

    python bench/generate.py OUT_DIR --count 1000 [--seed 2026] [--as-of 2026-12-01]

Plan `i` depends only on (seed, i), never on --count: the 1,000-plan portfolio is the first
1,000 plans of the 10,000-plan one. Every plan is valid (`ssm validate` passes).

Sizes follow real accounts: 3-10 opportunities, 5-30 contacts, 2-6 initiatives, 2-5 client
issues, a buying unit of 5-8 roles per opportunity, prose in the insight sections, and for
each opportunity its owner, dates, next step and the verifiable outcomes of its stage. A plan
starts clean (no finding at the as-of date); about one in eight stays clean, the others get
1-7 of the gaps real teams leave (a stale review, an unowned relationship, no key decision
leader, route shares that do not add up, ...), most of them 2-3, and 0-3 gaps in their
pipeline (a stage claimed ahead of its outcomes, an overdue next step, ...). The stage data
comes from a random stream of its own, so the rest of plan `i` is what it was before plans
had stage data. With --as-of different from the generation date, review and contact ages
move, as they would in real life.
"""

from __future__ import annotations

import argparse
import os
import random
import sys
from datetime import date, timedelta
from pathlib import Path
from typing import NamedTuple

import yaml

AS_OF = date(2026, 12, 1)


class _Dumper(getattr(yaml, "CSafeDumper", yaml.SafeDumper)):  # libyaml's emitter: ~10x faster
    """Never writes an anchor and an alias: people do not write them in plans (a stage date
    shared with its outcome's date would otherwise come out as `&id001` ... `*id001`)."""

    def ignore_aliases(self, data) -> bool:
        return True


class _CompactDumper(_Dumper):
    """Lists of names, dates and numbers inline (`by: [ana-maric]`), and short mappings of them
    (`interest: {date: 2026-09-24, by: [ana-maric], evidence: Signed minutes}`), as short plans
    are written."""


def _scalar(value) -> bool:
    return not isinstance(value, (dict, list))


def _represent_list(dumper: yaml.SafeDumper, data: list) -> yaml.Node:
    return dumper.represent_sequence("tag:yaml.org,2002:seq", data, flow_style=all(map(_scalar, data)))


def _represent_dict(dumper: yaml.SafeDumper, data: dict) -> yaml.Node:
    flat = all(_scalar(v) or (isinstance(v, list) and all(map(_scalar, v))) for v in data.values())
    inline = flat and sum(len(str(k)) + len(str(v)) + 4 for k, v in data.items()) <= 96
    return dumper.represent_mapping("tag:yaml.org,2002:map", data.items(), flow_style=inline)


_CompactDumper.add_representer(list, _represent_list)
_CompactDumper.add_representer(dict, _represent_dict)


SEED = 2026

FIRST = ("Ana", "Ivana", "Dario", "Petra", "Marko", "Hannah", "Gregor", "Mirela", "Tomislav", "Sofia",
         "Lukas", "Elena", "Jonas", "Marta", "Pavel", "Ingrid", "Kenji", "Aisha", "Tariq", "Chloe",
         "Oliver", "Nadia", "Rafael", "Greta", "Mateo", "Yuki", "Amara", "Henrik", "Lucia", "Farid",
         "Beatriz", "Niels", "Olga", "Samuel", "Leila", "Viktor", "Camille", "Emeka", "Freya", "Joao")
LAST = ("Maric", "Kovacevic", "Zupan", "Babic", "Kranjc", "Petrovic", "Juric", "Berger", "Lopez",
        "Novak", "Schmidt", "Rossi", "Nilsson", "Dubois", "Tanaka", "Okafor", "Haddad", "Silva",
        "Andersen", "Moreau", "Fischer", "Costa", "Ivanova", "Khan", "Larsen", "Moretti", "Sato",
        "Mensah", "Horvat", "Weber", "Lindqvist", "Ferreira", "Nowak", "Yilmaz", "Brandt", "Varga")
TITLES = ("Chief Executive Officer", "Chief Financial Officer", "Chief Technology Officer",
          "Chief Information Officer", "Chief Digital Officer", "Chief Operating Officer",
          "Head of Procurement", "Head of Network Operations", "Chief Enterprise Architect",
          "Director, Enterprise Sales", "Head of Customer Experience", "VP Infrastructure",
          "Head of Data and Analytics", "Chief Risk Officer", "Head of IT Security",
          "Director of Application Development", "Head of Shared Services", "Programme Director")
TEAM = ("sebastian.klein", "filip.novak", "nkechi.adeyemi", "jane.doe", "raj.patel", "mia.schulz",
        "tomas.berg", "lina.haddad", "omar.farouk", "ellen.voss", "keiko.mori", "paul.dupont")
INDUSTRIES = ("Telecommunications", "Banking", "Insurance", "Healthcare", "Retail", "Manufacturing",
              "Public sector", "Energy and utilities", "Transport and logistics", "Higher education")
NAME_PARTS = ("Nord", "Adria", "Valda", "Kessler", "Levante", "Alpen", "Baltic", "Meridian", "Orion",
              "Helios", "Danube", "Atlas", "Borealis", "Cascade", "Lumen", "Vertex", "Aurora", "Tagus")
NAME_KINDS = ("Retail", "Insurance", "Bank", "Hospitals", "Telecom", "Energy", "Logistics", "Foods",
              "Pharma", "Motors", "Airlines", "Steel", "Water", "Media", "University", "Rail")
VERBS = ("Cut", "Grow", "Launch", "Consolidate", "Automate", "Modernise", "Secure", "Move", "Replace")
OBJECTS = ("operating cost per transaction", "digital revenue", "claims handling time",
           "the legacy core platform", "customer onboarding", "field service dispatch",
           "the data centre estate", "regulatory reporting", "the partner channel", "billing systems")
TARGETS = ("by 30% by 2028", "to 35% of revenue by 2029", "from weeks to days by 2027",
           "from three platforms to one by 2028", "within two years", "before the 2027 audit")
COMPONENTS = ("strategy_design", "applications", "middleware", "platform", "infrastructure", "deployment")
STAGES = ("identified", "validated", "qualified", "proposed")
# The verifiable outcome of each stage, in order, and who gives it (the buying-unit role).
OUTCOMES = (("interest", "sponsor"), ("need_confirmed", "sponsor"), ("go_forward", "key_decision_leader"),
            ("conditional_approval", "key_decision_leader"))
EVIDENCE = ("Mail from the client asking for a proposal", "Signed workshop summary", "Steering committee minutes",
            "Conditional approval letter", "Notes of the executive briefing, confirmed by mail")
ROUTES = ("direct", "business_partner", "telesales", "marketplace", "system_integrator")
SOURCES = ("client", "internal", "partner")
ACTIVITIES = ("align", "plan", "articulate_value", "thought_leadership")
PROSE = ("The market is consolidating and margins are under pressure from new digital entrants;",
         "regulators ask for more transparency on data residency and operational resilience;",
         "the board expects measurable savings from automation within two budget cycles;",
         "a multi-year transformation programme is under way with a new leadership team;",
         "procurement runs formal tenders above EUR 500,000 reviewed by the group;",
         "the estate mixes mainframe, VMware private cloud and two public clouds;",
         "capex is capped by the parent group, so managed services with outcome-based fees are preferred;",
         "the IT organisation is short of engineers and relies on three system integrators;")


def sentence(rng: random.Random, parts: int = 2) -> str:
    return " ".join(rng.sample(PROSE, parts)).rstrip(";") + "."


def goal(rng: random.Random) -> str:
    return f"{rng.choice(VERBS)} {rng.choice(OBJECTS)} {rng.choice(TARGETS)}"


def days_before(as_of: date, low: int, high: int, rng: random.Random) -> date:
    return as_of - timedelta(days=rng.randint(low, high))


class Profile(NamedTuple):
    """How large a profile's plans are: (low, high) counts, both included."""

    initiatives: tuple[int, int]
    actions: tuple[int, int]
    projects: tuple[int, int]
    contacts: tuple[int, int]
    opportunities: tuple[int, int]
    priorities: tuple[int, int]
    issues: tuple[int, int]
    competitors: tuple[int, int]
    informal: tuple[int, int]
    strategies: tuple[int, int]
    topics: tuple[int, int]
    prose: int  # sentences in the longest texts (industry research, the formal organisation)


# large: today's benchmark plans (325-885 lines, median ~590); small: the plans many teams keep
# (1-3 opportunities, 3-8 contacts, 100-200 lines), where the per-plan fixed costs decide the speed.
PROFILES = {
    "large": Profile(initiatives=(2, 6), actions=(1, 3), projects=(0, 2), contacts=(5, 30), opportunities=(3, 10),
                     priorities=(2, 4), issues=(2, 5), competitors=(2, 4), informal=(1, 3), strategies=(1, 3),
                     topics=(1, 3), prose=3),
    "small": Profile(initiatives=(1, 2), actions=(1, 1), projects=(0, 1), contacts=(3, 8), opportunities=(1, 3),
                     priorities=(1, 2), issues=(1, 2), competitors=(1, 2), informal=(1, 1), strategies=(1, 1),
                     topics=(1, 1), prose=1),
}
MIXED_SMALL = 0.7  # the share of small plans in the mixed profile


def profile_of(index: int, seed: int, profile: str) -> Profile:
    """Plan `index`'s profile; in `mixed`, small or large from a random stream of its own."""
    if profile == "mixed":
        profile = "small" if random.Random(f"{seed}:{index}:profile").random() < MIXED_SMALL else "large"
    return PROFILES[profile]


def _count(rng: random.Random, bounds: tuple[int, int]) -> int:
    return rng.randint(*bounds)


def clean_plan(rng: random.Random, index: int, as_of: date, size: Profile = PROFILES["large"]) -> dict:
    """A plan with no finding at `as_of`: every rule of the built-in pack is satisfied."""
    owner = rng.choice(TEAM)
    name = f"{rng.choice(NAME_PARTS)} {rng.choice(NAME_KINDS)}"
    industry = rng.choice(INDUSTRIES)

    initiatives = []
    for number in range(_count(rng, size.initiatives)):
        initiatives.append({
            "id": f"init-{number + 1}-{rng.choice(OBJECTS).split()[-1].replace('-', '')}",
            "goal": goal(rng),
            "actions": [goal(rng) for _ in range(_count(rng, size.actions))],
            "projects": [f"{rng.choice(VERBS)} {rng.choice(OBJECTS)} pilot" for _ in range(_count(rng, size.projects))],
        })

    contacts, seen = [], set()
    for _ in range(_count(rng, size.contacts)):
        first, last = rng.choice(FIRST), rng.choice(LAST)
        contact_id = f"{first}-{last}".lower()
        while contact_id in seen:
            contact_id += f"-{rng.randint(2, 9)}"
        seen.add(contact_id)
        attitude = rng.choices(("supporter", "neutral", "unsupportive", "opposed"), (60, 25, 10, 5))[0]
        contact = {
            "id": contact_id, "name": f"{first} {last}", "title": rng.choice(TITLES),
            "attitude": attitude, "influence": rng.choice(("high", "medium", "low")),
            "owner": rng.choice(TEAM), "goal": f"Monthly call on {rng.choice(OBJECTS)}",
            "last_contact": days_before(as_of, 1, 25, rng),
            "benefit": f"Measured on {rng.choice(OBJECTS)}; {goal(rng).lower()}",
        }
        if attitude != "supporter":
            contact["plan"] = f"Share pilot results on {rng.choice(OBJECTS)} and offer a reference visit"
        if rng.random() < 0.1:
            contact["external"] = True
        contacts.append(contact)

    # Opposed contacts never decide or approve (that would be a finding); meetings are only
    # planned with people in a buying unit (a meeting with anyone else is one too).
    deciders = [c["id"] for c in contacts if c["attitude"] != "opposed"]
    if not deciders:  # a small plan whose few contacts are all opposed: its first is won over
        contacts[0]["attitude"] = "supporter"
        contacts[0].pop("plan", None)
        deciders = [contacts[0]["id"]]
    opportunities, in_unit = [], set()
    count = _count(rng, size.opportunities)
    must_win = rng.randint(1, min(2, count))
    for number in range(count):
        unit = {
            "key_decision_leader": [rng.choice(deciders)],
            "sponsor": [rng.choice(deciders)],
            "benefit_owner": [rng.choice(deciders)],
            "evaluator": rng.sample([c["id"] for c in contacts], rng.randint(1, 2)),
            "approver": [rng.choice(deciders)],
        }
        if rng.random() < 0.6:
            unit["influencer"] = rng.sample([c["id"] for c in contacts], rng.randint(1, 2))
        for ids in unit.values():
            in_unit.update(ids)
        opportunities.append({
            "id": f"opp-{number + 1}", "name": f"{rng.choice(VERBS)} {rng.choice(OBJECTS)}",
            "initiative": rng.choice(initiatives)["id"], "priority": number + 1,
            "must_win": number < must_win, "value": rng.randrange(100_000, 5_000_000, 50_000),
            "stage": rng.choice(STAGES),
            "components": rng.sample(COMPONENTS, rng.randint(2, 5)),
            "buying_unit": unit,
        })
    for contact in contacts:
        if contact["id"] in in_unit:
            contact["next_meeting"] = as_of + timedelta(days=rng.randint(1, 40))

    shares = sorted(rng.sample(range(5, 95, 5), rng.randint(0, 2)))
    cuts = [0, *shares, 100]
    routes = [{"route": route, "share": cuts[i + 1] - cuts[i]}
              for i, route in enumerate(rng.sample(ROUTES, len(cuts) - 1))]

    return {
        "format": "ssm-plan/1",
        "account": {"id": f"acct-{index:05d}", "name": name, "industry": industry, "owner": owner},
        "plan": {
            "last_reviewed": days_before(as_of, 5, 80, rng),
            "approved_by_client": days_before(as_of, 5, 60, rng),
            "sources": list(SOURCES),
            "partners": [{"name": f"{rng.choice(NAME_PARTS)} Systems", "participated": True}
                         for _ in range(rng.randint(1, 2))],
            "activities": {"align": "done", "plan": "done", "articulate_value": "done",
                           "thought_leadership": rng.choice(("in_progress", "done"))},
            "phase_complete": rng.random() < 0.3,
        },
        "insight": {
            "strategic_priorities": [goal(rng) for _ in range(_count(rng, size.priorities))],
            "issues": [{"text": sentence(rng, 1), "priority": i + 1, "confirmed_with_client": True}
                       for i in range(_count(rng, size.issues))],
            "research": {"industry": sentence(rng, size.prose),
                         "competitors": [f"{rng.choice(NAME_PARTS)} {rng.choice(NAME_KINDS)}"
                                         for _ in range(_count(rng, size.competitors))],
                         "business_direction": goal(rng)},
            "it_environment": sentence(rng, min(2, size.prose)),
            "preferences": {"technology": sentence(rng, 1), "finance": sentence(rng, 1),
                            "procurement": sentence(rng, 1), "vendor": sentence(rng, 1)},
            "position": {"current": sentence(rng, 1), "desired": goal(rng)},
            "organization": {"formal": sentence(rng, min(2, size.prose)),
                             "informal": [sentence(rng, 1) for _ in range(_count(rng, size.informal))]},
        },
        "initiatives": initiatives,
        "contacts": contacts,
        "opportunities": opportunities,
        "routes_to_market": {"agreed_with_client": True, "routes": routes},
        "team": {"client_spend": rng.randrange(500_000, 20_000_000, 100_000),
                 "target": rng.randrange(500_000, 20_000_000, 100_000),
                 "plan": goal(rng),
                 "strategies": [goal(rng) for _ in range(_count(rng, size.strategies))]},
        "thought_leadership": [{"topic": goal(rng), "confirmed": True} for _ in range(_count(rng, size.topics))],
        "outcome": {"assessment_satisfied": True},
    }


# ---- the gaps real teams leave: each makes one or a few rules fire -------------------------

def _review_overdue(plan, rng, as_of):
    plan["plan"]["last_reviewed"] = days_before(as_of, 100, 400, rng)


def _never_reviewed(plan, rng, as_of):
    del plan["plan"]["last_reviewed"]


def _single_source(plan, rng, as_of):
    plan["plan"]["sources"] = ["internal"]


def _partner_absent(plan, rng, as_of):
    plan["plan"]["partners"][0]["participated"] = False


def _research_missing(plan, rng, as_of):
    del plan["insight"]["research"][rng.choice(("industry", "competitors", "business_direction"))]


def _preferences_missing(plan, rng, as_of):
    for key in rng.sample(("technology", "finance", "procurement", "vendor"), rng.randint(1, 4)):
        del plan["insight"]["preferences"][key]


def _organisation_missing(plan, rng, as_of):
    del plan["insight"]["organization"]["informal"]


def _activities_out_of_order(plan, rng, as_of):
    plan["plan"]["activities"].update(articulate_value="in_progress", thought_leadership="done")


def _issue_unconfirmed(plan, rng, as_of):
    issue = rng.choice(plan["insight"]["issues"])
    issue["confirmed_with_client"] = False
    if rng.random() < 0.5:
        del issue["priority"]


def _position_missing(plan, rng, as_of):
    del plan["insight"]["position"]["desired"]


def _initiative_vague(plan, rng, as_of):
    initiative = rng.choice(plan["initiatives"])
    del initiative["goal"]


def _opportunity_unranked(plan, rng, as_of):
    del rng.choice(plan["opportunities"])["priority"]


def _duplicate_priority(plan, rng, as_of):
    plan["opportunities"][-1]["priority"] = 1


def _opportunity_loose(plan, rng, as_of):
    opportunity = rng.choice(plan["opportunities"])
    del opportunity["initiative"]
    if rng.random() < 0.5:
        del opportunity["components"]


def _routes_off(plan, rng, as_of):
    route = plan["routes_to_market"]["routes"][0]
    change = rng.choice((-10, 5, 15))
    route["share"] += change if route["share"] + change >= 0 else 15  # a share below 0 is invalid


def _no_routes(plan, rng, as_of):
    del plan["routes_to_market"]["routes"]


def _unowned_relationship(plan, rng, as_of):
    contact = rng.choice(plan["contacts"])
    del contact["owner"]


def _owned_without_goal(plan, rng, as_of):
    del rng.choice(plan["contacts"])["goal"]


def _no_kdl(plan, rng, as_of):
    del rng.choice(plan["opportunities"])["buying_unit"]["key_decision_leader"]


def _no_sponsor(plan, rng, as_of):
    unit = rng.choice(plan["opportunities"])["buying_unit"]
    del unit["sponsor"]
    if rng.random() < 0.5:
        del unit["benefit_owner"]


def _thin_unit(plan, rng, as_of):
    unit = rng.choice(plan["opportunities"])["buying_unit"]
    del unit[rng.choice(("evaluator", "approver"))]


def _kdl_no_meeting(plan, rng, as_of):
    kdl = rng.choice(plan["opportunities"])["buying_unit"]["key_decision_leader"][0]
    contact = next(c for c in plan["contacts"] if c["id"] == kdl)
    contact["next_meeting"] = days_before(as_of, 3, 30, rng)


def _sponsor_no_benefit(plan, rng, as_of):
    sponsor = rng.choice(plan["opportunities"])["buying_unit"]["sponsor"][0]
    contact = next(c for c in plan["contacts"] if c["id"] == sponsor)
    contact.pop("benefit", None)


def _no_conversion_plan(plan, rng, as_of):
    contact = rng.choice(plan["contacts"])
    contact["attitude"] = rng.choice(("neutral", "unsupportive", "opposed"))
    contact.pop("plan", None)


def _opposed_decider(plan, rng, as_of):
    opportunity = rng.choice(plan["opportunities"])
    kdl = opportunity["buying_unit"]["key_decision_leader"][0]
    contact = next(c for c in plan["contacts"] if c["id"] == kdl)
    contact["attitude"] = "opposed"


def _meeting_outside_unit(plan, rng, as_of):
    outside = [c for c in plan["contacts"] if "next_meeting" not in c]
    if outside:
        rng.choice(outside)["next_meeting"] = as_of + timedelta(days=rng.randint(1, 20))
    else:
        _owned_without_goal(plan, rng, as_of)


def _not_assessed(plan, rng, as_of):
    contact = rng.choice(plan["contacts"])
    del contact[rng.choice(("attitude", "influence"))]
    contact.pop("plan", None)


def _team_thin(plan, rng, as_of):
    del plan["team"][rng.choice(("target", "plan", "strategies", "client_spend"))]


def _premature_claim(plan, rng, as_of):
    plan["plan"]["phase_complete"] = True
    rng.choice((lambda: plan["plan"].pop("approved_by_client"),
                lambda: plan["thought_leadership"][0].update(confirmed=False),
                lambda: plan["routes_to_market"].update(agreed_with_client=False),
                lambda: plan["outcome"].update(assessment_satisfied=False)))()


# (gap, weight): the common gaps are stale reviews, thin buying units and relationships.
GAPS = (
    (_review_overdue, 8), (_never_reviewed, 1), (_single_source, 3), (_partner_absent, 3),
    (_research_missing, 3), (_preferences_missing, 4), (_organisation_missing, 2),
    (_activities_out_of_order, 2), (_issue_unconfirmed, 4), (_position_missing, 2),
    (_initiative_vague, 2), (_opportunity_unranked, 2), (_duplicate_priority, 1),
    (_opportunity_loose, 3), (_routes_off, 2), (_no_routes, 1), (_unowned_relationship, 5),
    (_owned_without_goal, 3), (_no_kdl, 4), (_no_sponsor, 3), (_thin_unit, 3), (_kdl_no_meeting, 4),
    (_sponsor_no_benefit, 4), (_no_conversion_plan, 3), (_opposed_decider, 1),
    (_meeting_outside_unit, 3), (_not_assessed, 3), (_team_thin, 3), (_premature_claim, 2),
)
# How many gaps a plan gets: one in eight none, most two or three, a few many.
GAP_COUNTS = ((0, 12), (1, 20), (2, 25), (3, 20), (4, 10), (5, 7), (6, 4), (7, 2))


# ---- the pipeline: stage data, clean, then its gaps ---------------------------------------------


def add_stage_data(plan: dict, rng: random.Random, as_of: date) -> None:
    """Give every opportunity of a clean plan the stage data that keeps it clean: an owner,
    the outcomes of every milestone up to its stage (in order, dated, given by the right role,
    with evidence), the stage date of its last outcome, a close date and a next step ahead."""
    for opportunity in plan["opportunities"]:
        rank = STAGES.index(opportunity["stage"]) + 1
        unit = opportunity["buying_unit"]
        stage_since = day = days_before(as_of, 5, 80, rng)  # not stalled (S13)
        outcomes = {}
        for key, role in reversed(OUTCOMES[:rank]):  # the stage's own outcome on stage_since (S14)
            outcomes[key] = {"date": day, "by": [unit[role][0]], "evidence": rng.choice(EVIDENCE)}
            day -= timedelta(days=rng.randint(5, 40))
        opportunity["owner"] = rng.choice(TEAM)
        opportunity["stage_since"] = stage_since
        opportunity["close_date"] = as_of + timedelta(days=rng.randint(30, 300))
        opportunity["outcomes"] = {key: outcomes[key] for key, _ in OUTCOMES[:rank]}  # in milestone order
        opportunity["next_step"] = {"action": f"{rng.choice(VERBS)} {rng.choice(OBJECTS)}: workshop",
                                    "due": as_of + timedelta(days=rng.randint(1, 30))}


def _claim_ahead(plan, rng, as_of):
    opportunity = rng.choice([o for o in plan["opportunities"] if len(o["outcomes"]) > 1])
    del opportunity["outcomes"][rng.choice(list(opportunity["outcomes"])[1:])]


def _outcome_ahead(plan, rng, as_of):
    outcomes = rng.choice(plan["opportunities"])["outcomes"]
    outcomes[list(outcomes)[-1]]["date"] = as_of + timedelta(days=rng.randint(1, 20))


def _no_next_step(plan, rng, as_of):
    del rng.choice(plan["opportunities"])["next_step"]


def _next_step_overdue(plan, rng, as_of):
    rng.choice(plan["opportunities"])["next_step"]["due"] = days_before(as_of, 1, 60, rng)


def _close_date_passed(plan, rng, as_of):
    rng.choice(plan["opportunities"])["close_date"] = days_before(as_of, 1, 90, rng)


def _stalled(plan, rng, as_of):
    opportunity = rng.choice(plan["opportunities"])
    opportunity["stage_since"] = opportunity["outcomes"]["interest"]["date"] = days_before(as_of, 91, 200, rng)


def _evidence_thin(plan, rng, as_of):
    outcome = rng.choice(list(rng.choice(plan["opportunities"])["outcomes"].values()))
    del outcome["evidence"]
    if rng.random() < 0.3:
        del outcome["by"]


PIPELINE_GAPS = ((_claim_ahead, 4), (_outcome_ahead, 1), (_no_next_step, 3), (_next_step_overdue, 4),
                 (_close_date_passed, 3), (_stalled, 2), (_evidence_thin, 3))
PIPELINE_GAP_COUNTS = ((0, 30), (1, 40), (2, 20), (3, 10))  # for plans with other gaps: the clean stay clean


def make_plan(index: int, seed: int = SEED, as_of: date = AS_OF, profile: str = "large") -> dict:
    rng = random.Random(f"{seed}:{index}")
    plan = clean_plan(rng, index, as_of, profile_of(index, seed, profile))
    count = rng.choices([c for c, _ in GAP_COUNTS], [w for _, w in GAP_COUNTS])[0]
    functions = [g for g, _ in GAPS]
    weights = [w for _, w in GAPS]
    gaps = rng.choices(functions, weights, k=count)
    # The pipeline's own stream: the stage data does not change the rest of the plan.
    stages_rng = random.Random(f"{seed}:{index}:stages")
    add_stage_data(plan, stages_rng, as_of)
    if gaps:
        count = stages_rng.choices([c for c, _ in PIPELINE_GAP_COUNTS], [w for _, w in PIPELINE_GAP_COUNTS])[0]
        gaps += stages_rng.choices([g for g, _ in PIPELINE_GAPS], [w for _, w in PIPELINE_GAPS], k=count)
    for gap in gaps:
        try:
            gap(plan, stages_rng if gap in dict(PIPELINE_GAPS) else rng, as_of)
        except (KeyError, IndexError, StopIteration):
            pass  # an earlier gap removed what this one changes: the plan keeps that one
    return plan


def plan_text(index: int, seed: int = SEED, as_of: date = AS_OF, profile: str = "large") -> str:
    plan = make_plan(index, seed, as_of, profile)
    dumper = _CompactDumper if profile_of(index, seed, profile) is PROFILES["small"] else _Dumper
    body = yaml.dump(plan, Dumper=dumper, sort_keys=False, allow_unicode=True, width=100, default_flow_style=False)
    return f"# Synthetic account plan {index} (bench/generate.py, seed {seed})\n{body}"


def generate(out_dir: str | os.PathLike, count: int, seed: int = SEED, as_of: date = AS_OF,
             profile: str = "large") -> list[Path]:
    """Write plans 0..count-1 as OUT_DIR/NNN/acct-NNNNN.yaml (100 plans a folder); keep files
    that already hold the same text, so a re-run does not touch their modification time."""
    out = Path(out_dir)
    paths = []
    for index in range(count):
        path = out / f"{index // 100:03d}" / f"acct-{index:05d}.yaml"
        text = plan_text(index, seed, as_of, profile)
        try:
            unchanged = path.read_text(encoding="utf-8") == text
        except OSError:
            unchanged = False
        if not unchanged:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")
        paths.append(path)
    return paths


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out_dir")
    parser.add_argument("--count", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=SEED)
    parser.add_argument("--as-of", type=date.fromisoformat, default=AS_OF)
    parser.add_argument("--profile", choices=(*PROFILES, "mixed"), default="large",
                        help="large: 3-10 opportunities, 5-30 contacts (the default); small: 1-3 opportunities, "
                             "3-8 contacts, 100-200 lines; mixed: 7 plans in 10 small, the others large")
    args = parser.parse_args(argv)
    paths = generate(args.out_dir, args.count, args.seed, args.as_of, args.profile)
    print(f"{len(paths)} plans in {args.out_dir}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
