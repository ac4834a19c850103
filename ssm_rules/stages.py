"""Each opportunity's claimed and supported stage, as the check leaves them for the pipeline review.

The supported stage is the engine's answer, never computed here: the `stages` rule pack derives
one `supported` fact per level an opportunity's verifiable outcomes reach (rank 0 `none`, then
1 `identified` up to 6 `completed`, each level from the one below), carrying the outcome keys
the claimed stage still lacks (`missing`). The highest one is the supported stage. Everything
else (owner, value, days in stage, next step) is the opportunity fact of ssm_rules.facts, the
one place that computes such values.

`opportunity_views` keeps, per opportunity, what `ssm pipeline` and the audit show: plain data,
kept in the result cache and sent from the audit's worker processes.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

SUPPORTED = "supported"  # the kind of the derived facts
WEIGHTS_SETTING = "stage_weights"


def derives_support(compiled) -> bool:
    """Whether the compiled rules derive `supported` facts (the built-in stages pack does)."""
    return any(rule.rule.derive is not None and rule.rule.derive.kind == SUPPORTED
               for rule in compiled.rules.values())


def stage_weights(compiled) -> dict[str, Any]:
    """The `stage_weights` setting of the pack that derives the supported stage, with the
    configuration's overrides (the compiled rules hold each pack's resolved settings)."""
    for rule in compiled.rules.values():
        if rule.rule.derive is not None and rule.rule.derive.kind == SUPPORTED and WEIGHTS_SETTING in rule.settings:
            return dict(rule.settings[WEIGHTS_SETTING])
    for rule in compiled.rules.values():
        if WEIGHTS_SETTING in rule.settings:
            return dict(rule.settings[WEIGHTS_SETTING])
    return {}


def opportunity_views(facts: Iterable[Mapping[str, Any]], derived: Iterable[Mapping[str, Any]]) -> list[dict]:
    """One dict per opportunity, in plan order: its fact's fields the review shows, and its
    highest `supported` fact's stage and missing outcomes (None and [] when no rule derived
    one: the stages pack is not loaded)."""
    highest: dict[str, Mapping[str, Any]] = {}
    for fact in derived:
        if fact.get("kind") != SUPPORTED:
            continue
        key, rank = fact.get("opportunity"), fact.get("rank")
        if isinstance(rank, int) and (key not in highest or rank > highest[key]["rank"]):
            highest[key] = fact
    views = []
    for fact in facts:
        if fact.get("kind") != "opportunity":
            continue
        support = highest.get(fact["key"])
        step = None
        if fact.get("next_step") is not None:
            step = {"action": fact["next_step"], "due": fact.get("next_step_due"), "owner": fact.get("next_step_owner"),
                    "days_since_due": fact.get("days_since_next_step_due")}
        views.append({
            "id": fact["key"], "name": fact.get("name"), "owner": fact.get("owner"),
            "must_win": bool(fact.get("must_win")), "value": fact.get("value"), "stage": fact.get("stage"),
            "close_date": fact.get("close_date"), "days_in_stage": fact.get("days_in_stage"), "next_step": step,
            "supported": support is not None,
            "supported_stage": None if support is None or not support["rank"] else support.get("stage"),
            "missing_outcomes": list(_as_list(support.get("missing"))) if support is not None else [],
        })
    return views


def _as_list(value: Any) -> list[str]:
    if value is None:
        return []
    return [str(item) for item in value] if isinstance(value, (list, tuple)) else [str(value)]
