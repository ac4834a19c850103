"""Salesforce export -> account plans, merged into the plans a team already keeps.

Reads the CSV files that Salesforce's data export and Data Loader write (API field names;
header case does not matter; UTF-8 with or without a BOM), builds one record per account with
its contacts, opportunities and contact roles, and turns each into a plan (plan-format.md).

Re-import merges with ruamel.yaml's round-trip mode: only the fields the CRM owns are touched
(see `merge.CRM_FIELDS`), everything a person wrote keeps its words, comments and key order,
and the file is re-emitted by patching only the lines that changed (`merge.three_way`).

Identity: every item that came from Salesforce carries its record ID in an end-of-line comment
on its `id:` line (`- id: li-wei  # sf:0035g00000AbCdEAAX`). The plan format forbids unknown
keys, so the link lives in a comment, which validation ignores and ruamel keeps. Re-import
matches by that tag first, then (for items a person wrote before the first import) by name.

One module a step, each importing only the ones before it:

    problems    Problem, ExportError, MappingError
    mapping     picklist values -> plan roles and stages; the --mapping file
    ids         Salesforce IDs, `# sf:` tags, slugs
    tables      one CSV file -> Table (streamed, encodings, file-level errors)
    values      a cell's text -> text, date or amount
    join        the tables -> accounts with contacts, opportunities, contact roles
    roundtrip   ruamel.yaml documents: writing, quoting, tags, layout
    matching    the output directory: which file is which account's plan
    merge       refresh the CRM-owned fields of one plan; check it reads back
    plans       the export -> new and updated plan texts (build_plans), written atomically

No click here: the `ssm import salesforce` command (ssm_rules.commands.import_) wires it,
through the names below.
"""

from ssm_rules.importers.salesforce.ids import sf_key, slugify
from ssm_rules.importers.salesforce.join import Export, ExportFiles, read_export
from ssm_rules.importers.salesforce.mapping import (
    DEFAULT_ROLES, DEFAULT_STAGES, PLAN_ROLES, PLAN_STAGES, SalesforceMapping, load_mapping_file,
    parse_mapping_overrides)
from ssm_rules.importers.salesforce.merge import PlanOutput
from ssm_rules.importers.salesforce.plans import ImportResult, build_plans, write_atomic
from ssm_rules.importers.salesforce.problems import ExportError, MappingError, Problem
from ssm_rules.importers.salesforce.tables import COLUMNS, EXPORT_FILE_NAMES, read_table

__all__ = [
    "COLUMNS", "DEFAULT_ROLES", "DEFAULT_STAGES", "EXPORT_FILE_NAMES", "PLAN_ROLES", "PLAN_STAGES",
    "Export", "ExportError", "ExportFiles", "ImportResult", "MappingError", "PlanOutput", "Problem",
    "SalesforceMapping", "build_plans", "load_mapping_file", "parse_mapping_overrides", "read_export",
    "read_table", "sf_key", "slugify", "write_atomic",
]
