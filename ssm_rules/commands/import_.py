"""`ssm import salesforce`: one plan per account from a Salesforce export, merged on re-import.

The logic lives in ssm_rules.importers.salesforce; this module only parses options, prints
and writes. Diffs (--dry-run) go to standard output, everything else to standard error.
"""

from __future__ import annotations

import codecs
import sys
from pathlib import Path

import click

from ssm_rules.commands.common import exit_on_usage_error
from ssm_rules.errors import UsageError

MAX_LISTED = 20  # problems listed per kind before "... and N more"


@click.group("import")
def import_group() -> None:
    """Import account plans from a CRM export.

    Creates one plan per account from what the CRM knows (the account, its contacts,
    opportunities and buying units) and, on re-import, refreshes only those fields:
    everything a person wrote in the plans is kept. See docs/import-salesforce.md.
    """


def _encoding(ctx: click.Context, param: click.Parameter, value: str) -> str:
    try:
        codecs.lookup(value)
    except LookupError:
        raise click.BadParameter(f"unknown encoding {value!r} (try utf-8, cp1252 or latin-1)") from None
    return value


def _csv_option(name: str, file_name: str, what: str):
    return click.option(f"--{name}", type=click.Path(dir_okay=False), metavar=file_name, help=what)


@import_group.command("salesforce", short_help="Create or update one plan per account from a Salesforce export.")
@click.option("--from", "from_dir", type=click.Path(file_okay=False, exists=True), metavar="DIR",
              help="An export directory holding Account.csv, Contact.csv, Opportunity.csv, "
                   "OpportunityContactRole.csv and (if there) User.csv; the options below override.")
@_csv_option("accounts", "Account.csv", "Accounts: Id, Name (Industry, OwnerId read if there).")
@_csv_option("contacts", "Contact.csv", "Contacts: Id, AccountId, FirstName+LastName or Name (Title, OwnerId).")
@_csv_option("opportunities", "Opportunity.csv", "Opportunities: Id, AccountId, Name, StageName (Amount, OwnerId, "
                                                  "CloseDate, NextStep, LastStageChangeDate).")
@_csv_option("contact-roles", "OpportunityContactRole.csv", "Contact roles: OpportunityId, ContactId, Role.")
@_csv_option("users", "User.csv", "Users: Id, Email. Optional: owners are then e-mail local parts, not user IDs.")
@click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False), metavar="DIR",
              help="Directory of plans: new plans are written here as <account-slug>.yaml, existing "
                   "ones (found by their `# sf:` tag, account name or file name) are updated. Only "
                   "files with `format: ssm-plan/1` are; other files and links are left as they are.")
@click.option("--mapping", "mapping_file", type=click.Path(dir_okay=False, exists=True), metavar="FILE.toml",
              help="Role and stage mapping overrides: [salesforce.roles] and [salesforce.stages] "
                   "(or [tool.ssm.salesforce.*] in a pyproject.toml), merged over the defaults.")
@click.option("--account", "accounts_selected", multiple=True, metavar="ID|NAME",
              help="Import only this account (Salesforce Id, exact name or slug); repeatable.")
@click.option("--encoding", default="utf-8", show_default=True, callback=_encoding, metavar="NAME",
              help="Encoding of the CSV files (a UTF-8 BOM is always accepted).")
@click.option("--dry-run", is_flag=True, help="Print what would change as a unified diff; write nothing.")
@exit_on_usage_error
def salesforce(from_dir: str | None, accounts: str | None, contacts: str | None, opportunities: str | None,
               contact_roles: str | None, users: str | None, out_dir: str, mapping_file: str | None,
               accounts_selected: tuple[str, ...], encoding: str, dry_run: bool) -> None:
    """Create or update one plan per account from a Salesforce export.

    Reads the CSV files of Salesforce's data export or Data Loader (API field names, any
    header case, UTF-8 with or without BOM) and writes DIR/<account-slug>.yaml per account:
    the account, its contacts (name, title, owner), its opportunities (name, owner, value
    from Amount, stage, stage_since from LastStageChangeDate, close_date, next_step action)
    and each opportunity's buying unit from its contact roles.

    Re-import merges: Salesforce refreshes the fields it owns (account name, industry,
    owner; contact name, title, owner; opportunity name, owner, value, stage, stage_since,
    close_date, buying unit, next_step action) and everything a person wrote is kept
    (outcomes, next_step due, lost_reason, ...), comments and key order included. An empty
    value in Salesforce never erases a value in the plan. Contacts and opportunities that
    are gone from Salesforce are reported, not deleted. Files in DIR that are not plans are
    never touched: an account whose file name one of them has gets <slug>-2.yaml.

    \b
    Default mappings (override with --mapping, or [tool.ssm.salesforce.roles] and
    [tool.ssm.salesforce.stages] in the configuration that `ssm check` finds):
      roles:
        Decision Maker, Economic Decision Maker -> key_decision_leader;
        Economic Buyer -> approver; Executive Sponsor -> sponsor;
        Evaluator, Technical Buyer -> evaluator; Influencer -> influencer;
        Business User -> benefit_owner; Other -> no role
      stages:
        Prospecting -> identified; Qualification, Needs Analysis -> validated;
        Value Proposition, Id. Decision Makers, Perception Analysis -> qualified;
        Proposal/Price Quote, Negotiation/Review -> proposed;
        Closed Won -> won; Closed Lost -> lost
    An unknown stage or role is reported with its file and row and left out.

    \b
    Exit codes:
      0  every row was imported (deleted rows and contacts without an account
         are skipped by design; contacts/opportunities gone from Salesforce are
         only listed)
      1  plans were written, but rows were left out, or a plan could not be
         updated (its account is then not imported) or does not validate (all
         listed on stderr)
      2  nothing was written: a file is missing, unreadable or not UTF-8, a
         required column is missing, the CSV is malformed, --out cannot be a
         directory, or an option or the mapping is wrong
    """
    from ssm_rules.importers import salesforce as sf

    files = _export_files(from_dir, accounts, contacts, opportunities, contact_roles, users)
    mapping = sf.load_mapping_file(mapping_file) if mapping_file else _mapping_from_configuration(sf)
    out = Path(out_dir)
    if (out.exists() or out.is_symlink()) and not out.is_dir():
        raise UsageError(f"--out {out_dir}: not a directory" + (" (a symbolic link to nothing)"
                                                              if out.is_symlink() and not out.exists() else ""))
    export = sf.read_export(files, mapping, encoding, accounts_selected)
    result = sf.build_plans(export, out)
    problems = list(result.problems)
    changed = [output for output in result.outputs if output.status != "unchanged"]

    if dry_run:
        for output in changed:
            click.echo(output.diff(), nl=False)
    else:
        if changed:
            try:
                out.mkdir(parents=True, exist_ok=True)
            except OSError as error:
                raise UsageError(f"--out {out_dir}: cannot create the directory: {error.strerror or error}; "
                                 f"nothing was written") from None
        for output in changed:
            try:
                sf.write_atomic(output.path, output.new_text)
            except OSError as error:
                problems.append(sf.Problem(str(output.path), f"cannot write it: {error.strerror or error}"))
                output.status = "failed"
    invalid = _validate(changed, dry_run)

    _summary(result, problems, invalid, out_dir, dry_run)
    sys.exit(1 if problems or invalid else 0)


def _export_files(from_dir, accounts, contacts, opportunities, contact_roles, users):
    from ssm_rules.importers.salesforce import EXPORT_FILE_NAMES, ExportFiles

    given = {"accounts": accounts, "contacts": contacts, "opportunities": opportunities,
             "contact_roles": contact_roles, "users": users}
    if from_dir:
        for kind, file_name in EXPORT_FILE_NAMES.items():
            if given[kind] is None:
                found = _find(Path(from_dir), file_name)
                if found is not None:
                    given[kind] = str(found)
    missing = [kind for kind in ("accounts", "contacts", "opportunities", "contact_roles") if given[kind] is None]
    if missing:
        options = ", ".join(f"--{kind.replace('_', '-')} {EXPORT_FILE_NAMES[kind]}" for kind in missing)
        where = f" (not found in {from_dir})" if from_dir else ""
        raise UsageError(f"missing export files{where}: give {options}, or --from DIR")
    return ExportFiles(**given)


def _find(directory: Path, file_name: str) -> Path | None:
    exact = directory / file_name
    if exact.is_file():
        return exact
    for candidate in sorted(directory.iterdir()):
        if candidate.name.lower() == file_name.lower() and candidate.is_file():
            return candidate
    return None


def _validate(outputs, dry_run: bool) -> dict[str, list[str]]:
    """Validate every plan written (or that would be): file -> problems."""
    from ssm_rules.pipeline import load_plan

    invalid: dict[str, list[str]] = {}
    for output in outputs:
        if output.status == "failed":
            continue
        name = str(output.path)
        loaded = load_plan(name, raw=output.new_text.encode("utf-8")) if dry_run else load_plan(name)
        if loaded.problems:
            invalid[name] = [f"{name}:{problem.line or 1}:{problem.column or 1}: {problem.message}"
                             for problem in loaded.problems]
    return invalid


def _summary(result, problems, invalid, out_dir: str, dry_run: bool) -> None:
    def echo(text: str = "") -> None:
        click.echo(text, err=True)

    counts = {status: sum(1 for output in result.outputs if output.status == status)
              for status in ("new", "updated", "unchanged", "failed")}
    verb = "would write" if dry_run else "wrote"
    written = counts["new"] + counts["updated"]
    echo(f"ssm import salesforce: {len(result.outputs)} plan(s) in {out_dir}: {verb} {written} "
         f"({counts['new']} new, {counts['updated']} updated), {counts['unchanged']} unchanged"
         + (f", {counts['failed']} failed" if counts["failed"] else "") + ".")
    for output in result.outputs:
        if output.status == "unchanged":
            continue
        echo(f"  {output.status:<8} {output.path}  ({output.account.name})")
        details = output.changes
        for change in details[:MAX_LISTED]:
            echo(f"             {change}")
        if output.status == "updated" and len(details) > MAX_LISTED:
            echo(f"             ... and {len(details) - MAX_LISTED} more")
    vanished = [(output, item) for output in result.outputs for item in output.vanished]
    if vanished:
        echo(f"Gone from Salesforce, kept in the plan ({len(vanished)}): delete them by hand if they "
             f"are really gone:")
        for output, item in vanished:
            echo(f"  {output.path}: {item}")
    if problems:
        echo(f"Left out or not understood ({len(problems)}):")
        by_kind: dict[str, int] = {}
        for problem in problems:
            kind = problem.file
            by_kind[kind] = by_kind.get(kind, 0) + 1
            if by_kind[kind] <= MAX_LISTED:
                echo(f"  {problem}")
        for kind, count in by_kind.items():
            if count > MAX_LISTED:
                echo(f"  ... and {count - MAX_LISTED} more in {kind}")
    if invalid:
        echo(f"Plans that do not validate ({len(invalid)}): run `ssm validate` on them:")
        for lines in invalid.values():
            for line in lines[:MAX_LISTED]:
                echo(f"  {line}")
    for note in result.notes:
        echo(f"Note: {note}.")
    if written and not dry_run:
        echo(f"Next: `ssm check {out_dir}` shows what to fill in first.")
    if dry_run:
        echo("Dry run: nothing was written.")


def _mapping_from_configuration(sf):
    """The `salesforce` table of the nearest `[tool.ssm]` / `.ssm.toml`, merged over the defaults."""
    from ssm_rules import config

    configuration = config.load()
    if not configuration.salesforce:
        return sf.SalesforceMapping()
    source = f"{configuration.path}: [tool.ssm.salesforce]" if configuration.path else "[tool.ssm.salesforce]"
    return sf.parse_mapping_overrides(dict(configuration.salesforce), source)
