"""Salesforce picklist values -> the plan's roles and stages: the defaults and a team's overrides
(`--mapping` file, or `[tool.ssm.salesforce]` in the configuration `ssm check` reads)."""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ssm_rules.importers.salesforce.problems import MappingError
from ssm_rules.plan_format import ALL_STAGES, ROLES
from ssm_rules.suggestions import closest

# What a Salesforce value may map to: the plan format's own names.
PLAN_ROLES = ROLES
PLAN_STAGES = ALL_STAGES


DEFAULT_ROLES: dict[str, str | None] = {
    "Decision Maker": "key_decision_leader",
    "Economic Decision Maker": "key_decision_leader",
    "Economic Buyer": "approver",
    "Executive Sponsor": "sponsor",
    "Evaluator": "evaluator",
    "Technical Buyer": "evaluator",
    "Influencer": "influencer",
    "Business User": "benefit_owner",
    "Other": None,
}


DEFAULT_STAGES: dict[str, str | None] = {
    "Prospecting": "identified",
    "Qualification": "validated",
    "Needs Analysis": "validated",
    "Value Proposition": "qualified",
    "Id. Decision Makers": "qualified",
    "Perception Analysis": "qualified",
    "Proposal/Price Quote": "proposed",
    "Negotiation/Review": "proposed",
    "Closed Won": "won",
    "Closed Lost": "lost",
}


def folded(value: str) -> str:
    """Picklist values match case-insensitively, with runs of white space as one space."""
    return " ".join(value.split()).casefold()


@dataclass(frozen=True)
class SalesforceMapping:
    """Salesforce picklist value -> plan value; None means "deliberately none" (no role / skip)."""

    roles: Mapping[str, str | None] = field(default_factory=lambda: dict(DEFAULT_ROLES))
    stages: Mapping[str, str | None] = field(default_factory=lambda: dict(DEFAULT_STAGES))

    def role(self, value: str) -> tuple[bool, str | None]:
        """(known, plan role or None)."""
        return _lookup(self.roles, value)

    def stage(self, value: str) -> tuple[bool, str | None]:
        """(known, plan stage or None)."""
        return _lookup(self.stages, value)


def _lookup(table: Mapping[str, str | None], value: str) -> tuple[bool, str | None]:
    wanted = folded(value)
    for label, target in table.items():
        if folded(label) == wanted:
            return True, target
    return False, None


def parse_mapping_overrides(section: Mapping[str, Any], source: str = "[salesforce]") -> SalesforceMapping:
    """Validate `{"roles": {...}, "stages": {...}}` and merge it over the default mappings.

    A target of "" means: a role that puts the contact in no buying-unit role (like `Other`), a
    stage whose opportunities are not imported. Raises MappingError naming the offending key.
    """
    if not isinstance(section, Mapping):
        raise MappingError(f"{source} must be a table with `roles` and/or `stages`")
    known_keys = ("roles", "stages")
    for key in section:
        if key not in known_keys:
            close = closest(key, known_keys)
            hint = f": did you mean `{close[0]}`?" if close else f"; known keys: {', '.join(known_keys)}"
            raise MappingError(f"unknown key `{key}` in {source}{hint}")
    roles = _merge_table(DEFAULT_ROLES, section.get("roles"), PLAN_ROLES, f"{source[:-1]}.roles]", "role")
    stages = _merge_table(DEFAULT_STAGES, section.get("stages"), PLAN_STAGES, f"{source[:-1]}.stages]", "stage")
    return SalesforceMapping(roles=roles, stages=stages)


def _merge_table(defaults: Mapping[str, str | None], overrides: Any, targets: tuple[str, ...],
                 where: str, what: str) -> dict[str, str | None]:
    merged = dict(defaults)
    if overrides is None:
        return merged
    if not isinstance(overrides, Mapping):
        raise MappingError(f"{where} must be a table of Salesforce {what} = plan {what}")
    for label, target in overrides.items():
        if not isinstance(label, str) or not label.strip():
            raise MappingError(f"{where}: an empty Salesforce {what} name cannot be mapped")
        if not isinstance(target, str):
            raise MappingError(f"{where} {label!r} must be text: a plan {what} or \"\" (got {target!r})")
        target = target.strip()
        if target and target not in targets:
            close = closest(target, targets)
            hint = f"did you mean `{close[0]}`? " if close else ""
            nothing = "no role" if what == "role" else "do not import"
            raise MappingError(f"{where} {label!r} = {target!r}: unknown plan {what}; {hint}"
                               f"use one of {', '.join(targets)}, or \"\" for {nothing}")
        for existing in list(merged):  # an override replaces the default whatever its case
            if folded(existing) == folded(label):
                del merged[existing]
        merged[label.strip()] = target or None
    return merged


def load_mapping_file(path: str | os.PathLike) -> SalesforceMapping:
    """Read overrides from a TOML file: a `[salesforce]` table, or `[tool.ssm.salesforce]`."""
    name = os.fspath(path)
    try:
        with open(path, "rb") as handle:
            data = tomllib.load(handle)
    except OSError as error:
        raise MappingError(f"cannot read the mapping file {name}: {error.strerror or error}") from None
    except tomllib.TOMLDecodeError as error:
        raise MappingError(f"{name}: not valid TOML: {error}") from None
    except UnicodeDecodeError:
        raise MappingError(f"{name}: not UTF-8 text; save the mapping file as UTF-8") from None
    except RecursionError:
        raise MappingError(f"{name}: not valid TOML: nested too deeply") from None
    if "salesforce" in data:
        return parse_mapping_overrides(data["salesforce"], f"{name}: [salesforce]")
    tool = data.get("tool", {}).get("ssm", {}) if isinstance(data.get("tool"), dict) else {}
    if isinstance(tool, dict) and "salesforce" in tool:
        return parse_mapping_overrides(tool["salesforce"], f"{name}: [tool.ssm.salesforce]")
    raise MappingError(f"{name}: no [salesforce] table (with `roles` and/or `stages`) in the mapping file")

