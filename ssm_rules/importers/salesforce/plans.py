"""The export -> plan texts: every account matched to its plan in the output directory, merged
into it or written as a new plan. Reads the directory; writes nothing (`write_atomic` does)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from ssm_rules.importers.salesforce.ids import slugify, unique_slug
from ssm_rules.importers.salesforce.join import Export
from ssm_rules.importers.salesforce.mapping import folded
from ssm_rules.importers.salesforce.matching import match_plans, not_a_plan, parse_plan, scan_output_dir
from ssm_rules.importers.salesforce.merge import (
    Merge, MergeError, PlanOutput, check_reads_back, new_document, update_plan)
from ssm_rules.importers.salesforce.problems import Problem
from ssm_rules.importers.salesforce.roundtrip import emit, layout_new, round_trip_yaml


@dataclass
class ImportResult:
    outputs: list[PlanOutput]
    problems: list[Problem]  # export rows and plans left out or not understood (exit 1)
    notes: list[str]


def build_plans(export: Export, out_dir: str | os.PathLike) -> ImportResult:
    """Match every account to its plan in `out_dir` (by `# sf:` tag, then by name, ID or file
    name), merge or create, and render. Reads `out_dir`; writes nothing."""
    out = Path(out_dir)
    existing = scan_output_dir(out)
    # A plan can concern the import only by one of its accounts' tags, names or slugs: only
    # those are parsed for the merge (an import of a few accounts into a directory of
    # thousands of plans does not read them all with ruamel).
    keys = {account.key for account in export.accounts}
    names = {folded(account.name) for account in export.accounts}
    slugs = {slugify(account.name) for account in export.accounts} - {""}
    for plan in existing:
        if plan.kind == "plan" and (plan.mentions & keys or plan.path.stem.lower() in slugs
                                    or plan.account_id in slugs
                                    or (plan.account_name is not None and folded(plan.account_name) in names)):
            parse_plan(plan)
    problems: list[Problem] = list(export.problems)
    notes = list(export.notes)
    outputs: list[PlanOutput] = []
    matched, skipped = match_plans(existing, export.accounts, problems)
    # A new plan never takes the name of anything already in the directory (whatever its case:
    # macOS and Windows file systems ignore it) nor the ID of another plan.
    taken = {plan.path.stem.lower() for plan in existing}
    taken |= {plan.account_id.lower() for plan in existing if plan.account_id}
    by_stem = {plan.path.stem.lower(): plan for plan in existing}
    for account in export.accounts:
        if account.key in skipped:
            continue
        plan = matched.get(account.key)
        if plan is None:
            slug = slugify(account.name) or f"account-{account.sf_id.lower()}"
            account_id = unique_slug(slug, taken)
            path = out / f"{account_id}.yaml"
            blocker = by_stem.get(slug) if account_id != slug else None
            doc = new_document(account_id, account.sf_id)
            merge = Merge(doc, account, export.fields)
            merge.run()
            layout_new(doc)
            text = emit(round_trip_yaml(2, 4, 2), doc)
            try:
                check_reads_back(text, doc, None)
            except MergeError as error:
                problems.append(Problem(str(path), f"cannot write the plan of account {account.name!r}: {error}"))
                continue
            if blocker is not None and blocker.kind in {"other", "special"}:
                notes.append(f"{blocker.path} {not_a_plan(blocker)}: left as it is; the plan of account "
                             f"{account.name!r} is {path}")
            outputs.append(PlanOutput(account, path, "new", None, text,
                                      [f"{len(account.contacts)} contact(s), "
                                       f"{len(account.opportunities)} opportunity(ies)", *merge.notes]))
            continue
        try:
            output = update_plan(plan, account, export.fields)
        except MergeError as error:
            problems.append(Problem(str(plan.path), f"cannot update this plan of account {account.name!r}: "
                                                    f"{error}; fix it, then import again"))
            continue
        outputs.append(output)
    return ImportResult(outputs, problems, notes)


def write_atomic(path: str | os.PathLike, text: str) -> None:
    """Write a plan atomically (temporary file in the same directory, fsync, rename): a reader
    sees the old plan or the new one, never half of one. An existing file keeps its mode."""
    from ssm_rules.atomic import write_text_atomic

    write_text_atomic(path, text)

