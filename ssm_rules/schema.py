"""The plan format's JSON Schema, generated from the model (one source of truth)."""

from __future__ import annotations



def plan_schema() -> dict:
    from ssm_rules.model import Plan

    schema = Plan.model_json_schema(mode="validation")
    return {"$schema": "https://json-schema.org/draft/2020-12/schema", **schema}
