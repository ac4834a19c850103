"""Rule packs: directories of YAML files -> validated `Pack` and `Rule` models.

The only place that reads rule files. A pack is a directory with a `pack.yaml`, optionally a
`guidance.yaml` beside it (the catalogue of guidance items its rules cite), and one rule a
file in every other `*.yaml` below it (sorted by path). Every mistake an author can make is
reported as `FILE:LINE: what is wrong (how to fix it)`, all of them at once, in one
`RulePackError` (a `UsageError`: the tool cannot run with a broken pack). A typo must never
switch a check off, so unknown keys, kinds, fields, names and settings are all errors.

YAML is read with the safe loader only, composed to nodes first so that every error can
point at the line of the offending key.

The package, a module a step: `model` (the data classes and the rule language's names),
`source` (YAML with positions, `Problems`), `reader` (pack.yaml, guidance.yaml, one rule a
file), `checks` (what needs more than one file), `strata` (the order rules run in). This module
is the API: `load_packs`, `load_catalogue`, the built-in packs, and the names other modules use.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path

from ssm_rules.errors import UsageError
from ssm_rules.rulepack.checks import check_across_packs
from ssm_rules.rulepack.model import (ACCOUNT_OWNER, BUDGET_SETTINGS, MAX_RULE_FILE_BYTES, OWNER_KINDS, Catalogue,
                                      Const, Derive, FieldRef, GuidanceItem, Operand, Outcome, Pack, Pattern, Rule,
                                      RulePackError, Setting, SettingRef, Test, all_rules, guidance_items)
from ssm_rules.rulepack.reader import display_path, load_pack, parse_catalogue
from ssm_rules.rulepack.source import Problems, read_yaml
from ssm_rules.rulepack.strata import derived_fields, recursive_kinds, rule_strata

__all__ = [
    "ACCOUNT_OWNER",
    "BUDGET_SETTINGS",
    "BUILTIN_PACKS",
    "MAX_RULE_FILE_BYTES",
    "OWNER_KINDS",
    "Catalogue",
    "Const",
    "Derive",
    "FieldRef",
    "GuidanceItem",
    "Operand",
    "Outcome",
    "Pack",
    "Pattern",
    "Rule",
    "RulePackError",
    "Setting",
    "SettingRef",
    "Test",
    "all_rules",
    "builtin_pack_dir",
    "builtin_pack_dirs",
    "builtin_rules_dir",
    "derived_fields",
    "guidance_items",
    "load_catalogue",
    "load_packs",
    "recursive_kinds",
    "rule_strata",
]

# The built-in packs, in the order they load: SSM Phase 1 (Focus), then the opportunity stages.
BUILTIN_PACKS = ("focus", "stages")


def builtin_rules_dir() -> Path:
    """The directory of the built-in packs: inside an installed wheel, or `rules/` of a source
    checkout (an editable install, or running from the tree)."""
    package = Path(__file__).resolve().parent.parent  # ssm_rules
    installed = package / "builtin_rules"
    checkout = package.parent / "rules"
    for candidate in (installed, checkout):
        if all((candidate / name).is_dir() for name in BUILTIN_PACKS):
            return candidate
    raise UsageError(f"the built-in rule packs are missing (looked in {installed} and {checkout}); "
                     f"reinstall ssm-rules")


def builtin_pack_dirs() -> list[Path]:
    return [builtin_rules_dir() / name for name in BUILTIN_PACKS]


def builtin_pack_dir(name: str = "focus") -> Path:
    """One built-in pack's directory."""
    return builtin_rules_dir() / name


def load_packs(dirs: Sequence[str | os.PathLike], include_builtin: bool = True, *,
               fact_fields: Mapping[str, Mapping[str, tuple[str, str]]] | None = None) -> list[Pack]:
    """Load and check rule packs (the built-in ones first); raise RulePackError on any mistake.

    `fact_fields` (kind -> field -> (type, description)) is the catalogue of base facts; by
    default `ssm_rules.facts.FACT_FIELDS`.
    """
    if fact_fields is None:
        from ssm_rules.facts import FACT_FIELDS

        fact_fields = FACT_FIELDS
    directories: list[str] = [str(d) for d in builtin_pack_dirs()] if include_builtin else []
    directories += [os.fspath(d) for d in dirs]
    problems = Problems()
    base = {kind: {name: spec[0] for name, spec in fields.items()} for kind, fields in fact_fields.items()}
    packs = [pack for directory in directories if (pack := load_pack(directory, problems, base))]
    if not problems:
        check_across_packs(packs, base, problems)
    if problems:
        raise RulePackError(problems.in_order())
    return packs


def load_catalogue(path: str | os.PathLike, pack: str) -> Catalogue:
    """Read and check one `guidance.yaml` on its own; raise RulePackError on any mistake."""
    problems = Problems()
    source = read_yaml(display_path(os.fspath(path)), problems)
    catalogue = parse_catalogue(source, pack, problems) if source else None
    if problems or catalogue is None:
        raise RulePackError(problems.lines or [f"{path}:1: cannot read the guidance catalogue"])
    return catalogue
