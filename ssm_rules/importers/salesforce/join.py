"""The export's tables joined into account records: each account with its contacts, its
opportunities and their contact roles, mapped to plan roles and stages. A row that cannot be
used is left out and reported (`Export.problems`); what is skipped by design is noted."""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date

from ssm_rules.errors import UsageError
from ssm_rules.importers.salesforce.ids import SF_ID, sf_key, slugify
from ssm_rules.importers.salesforce.mapping import SalesforceMapping, folded
from ssm_rules.importers.salesforce.problems import ExportError, Problem
from ssm_rules.importers.salesforce.tables import Row, Table, read_table
from ssm_rules.importers.salesforce.values import AmountOutOfRange, clean_text, parse_amount, parse_date
from ssm_rules.plan_format import MAX_WHOLE


@dataclass
class SfContact:
    sf_id: str
    key: str
    name: str
    title: str | None
    owner: str | None


@dataclass
class SfOpportunity:
    sf_id: str
    key: str
    name: str
    value: int | float | None
    stage: str
    owner: str | None = None
    close_date: date | None = None
    stage_since: date | None = None
    next_step: str | None = None  # the action of the plan's next_step
    roles: dict[str, list[str]] = field(default_factory=dict)  # plan role -> contact keys
    uncertain: set[str] = field(default_factory=set)  # contact keys whose role row was left out


@dataclass
class SfAccount:
    sf_id: str
    key: str
    name: str
    industry: str | None
    owner: str | None
    row: Row
    contacts: list[SfContact] = field(default_factory=list)
    opportunities: list[SfOpportunity] = field(default_factory=list)
    # Every record the export has under this account, imported or left out: the plan's items
    # tagged with any other ID have vanished from the CRM (or moved to another account).
    seen_contacts: set[str] = field(default_factory=set)
    seen_opportunities: set[str] = field(default_factory=set)


@dataclass
class Export:
    accounts: list[SfAccount]
    problems: list[Problem]  # rows left out, values not understood: warnings (exit 1)
    notes: list[str]  # what was skipped by design (deleted rows, private contacts): no warning
    fields: frozenset[str]  # optional CRM-owned columns the export carries ("contact.title", ...)


@dataclass(frozen=True)
class ExportFiles:
    accounts: str | os.PathLike
    contacts: str | os.PathLike
    opportunities: str | os.PathLike
    contact_roles: str | os.PathLike
    users: str | os.PathLike | None = None


def read_export(files: ExportFiles, mapping: SalesforceMapping | None = None, encoding: str = "utf-8",
                select: Iterable[str] = ()) -> Export:
    """Read and join the export files. File-level problems raise ExportError (all of them,
    across files); row-level problems leave the row out and are listed in `Export.problems`.

    `select` limits the import to the accounts given by Salesforce ID, name or slug; rows of
    other accounts are then skipped without a word. A selector that matches nothing raises.
    """
    mapping = mapping or SalesforceMapping()
    tables: dict[str, Table] = {}
    fatal: list[Problem] = []
    for kind in ("accounts", "contacts", "opportunities", "contact_roles", "users"):
        path = getattr(files, kind)
        if path is None:
            continue
        try:
            tables[kind] = read_table(path, kind, encoding)
        except ExportError as error:
            fatal.extend(error.problems)
    if fatal:
        raise ExportError(fatal)
    return _Joiner(tables, mapping, list(select)).run()


def _deleted(row: Row) -> bool:
    return row.get("IsDeleted").lower() in {"true", "1"}


class _Joiner:
    def __init__(self, tables: dict[str, Table], mapping: SalesforceMapping, select: list[str]):
        self.tables = tables
        self.mapping = mapping
        self.select = select
        self.problems: list[Problem] = []
        self.deleted = 0
        self.private_contacts = 0
        self.cascaded = {"contacts": 0, "opportunities": 0}
        self.skipped_stages: dict[str, int] = {}
        self.users: dict[str, str] | None = None
        self.unknown_users: set[str] = set()
        self.accounts: dict[str, SfAccount] = {}
        self.left_out_accounts: set[str] = set()  # reported, or not selected: dependents skipped
        self.contacts: dict[str, tuple[str, SfContact | None]] = {}  # key -> (account key, record or None)
        self.opportunities: dict[str, tuple[str, SfOpportunity | None]] = {}

    def warn(self, table: Table, row: Row, column: str | None, message: str) -> None:
        self.problems.append(table.problem(row, column, message))

    def run(self) -> Export:
        if "users" in self.tables:
            self.read_users(self.tables["users"])
        self.read_accounts(self.tables["accounts"])
        self.read_contacts(self.tables["contacts"])
        self.read_opportunities(self.tables["opportunities"])
        self.read_contact_roles(self.tables["contact_roles"])
        return Export(list(self.accounts.values()), self.problems, self.notes(), self.fields())

    def fields(self) -> frozenset[str]:
        present = set()
        for kind, column, name in (("accounts", "Industry", "account.industry"),
                                   ("accounts", "OwnerId", "account.owner"),
                                   ("contacts", "Title", "contact.title"),
                                   ("contacts", "OwnerId", "contact.owner"),
                                   ("opportunities", "Amount", "opportunity.value"),
                                   ("opportunities", "OwnerId", "opportunity.owner"),
                                   ("opportunities", "CloseDate", "opportunity.close_date"),
                                   ("opportunities", "LastStageChangeDate", "opportunity.stage_since"),
                                   ("opportunities", "NextStep", "opportunity.next_step")):
            if self.tables[kind].has(column):
                present.add(name)
        return frozenset(present)

    def notes(self) -> list[str]:
        notes = []
        if self.deleted:
            notes.append(f"{self.deleted} deleted row(s) (IsDeleted = true) skipped")
        if self.private_contacts:
            notes.append(f"{self.private_contacts} contact(s) without an account (AccountId empty) skipped")
        if any(self.cascaded.values()):
            notes.append(f"{self.cascaded['contacts']} contact(s) and {self.cascaded['opportunities']} "
                         f"opportunity(ies) of left-out accounts skipped with them")
        for stage, count in sorted(self.skipped_stages.items()):
            notes.append(f"{count} opportunity(ies) in stage {stage!r} skipped: the mapping imports none")
        return notes

    # -- a record's Id, duplicates ------------------------------------------------------------

    def record_id(self, table: Table, row: Row, column: str, seen: dict[str, Row] | None) -> str | None:
        value = row.get(column)
        if not value:
            self.warn(table, row, column, f"empty {column}: row left out")
            return None
        if not SF_ID.match(value):
            self.warn(table, row, column, f"{value!r} is not a Salesforce ID (15 or 18 letters and "
                                          f"digits): row left out")
            return None
        if seen is not None:
            key = sf_key(value)
            if key in seen:
                self.warn(table, row, column, f"duplicate Id {value} (first at row {seen[key].number}): "
                                              f"row left out")
                return None
            seen[key] = row
        return value

    def live_records(self, table: Table):
        """(row, Salesforce Id) of every row that is not deleted and has a usable, new `Id`
        (deleted rows are counted; a missing or duplicate Id is reported by `record_id`)."""
        seen: dict[str, Row] = {}
        for row in table.rows:
            if _deleted(row):
                self.deleted += 1
                continue
            sf_id = self.record_id(table, row, "Id", seen)
            if sf_id is not None:
                yield row, sf_id

    # -- users ----------------------------------------------------------------------------------

    def read_users(self, table: Table) -> None:
        self.users = {}
        for row, sf_id in self.live_records(table):
            email = row.get("Email")
            local = clean_text(email.rpartition("@")[0]).lower()
            if not local:
                self.warn(table, row, "Email", f"user {sf_id} has no usable e-mail address ({email!r}): "
                                               f"owners of their records are written as the user ID")
                continue
            self.users[sf_key(sf_id)] = local

    def owner(self, table: Table, row: Row) -> str | None:
        """The owner of a record: the user's e-mail local part when User.csv is given, else the
        user ID. None when the record has no OwnerId (or the column is absent)."""
        user_id = row.get("OwnerId")
        if not user_id:
            return None
        if not SF_ID.match(user_id):
            if user_id not in self.unknown_users:
                self.unknown_users.add(user_id)
                self.warn(table, row, "OwnerId", f"{user_id!r} is not a Salesforce user ID: no owner taken "
                                                 f"from it (reported once per value)")
            return None
        if self.users is None:
            return user_id
        name = self.users.get(sf_key(user_id))
        if name is None:
            if sf_key(user_id) not in self.unknown_users:
                self.unknown_users.add(sf_key(user_id))
                self.warn(table, row, "OwnerId", f"owner {user_id} is not in the users file: written as "
                                                 f"the user ID (reported once per user)")
            return user_id
        return name

    # -- accounts -------------------------------------------------------------------------------

    def read_accounts(self, table: Table) -> None:
        wanted = {value: False for value in self.select}
        for row, sf_id in self.live_records(table):
            key = sf_key(sf_id)
            name = clean_text(row.get("Name"))
            if self.select:
                hits = [value for value in wanted if _selects(value, sf_id, name)]
                for value in hits:
                    wanted[value] = True
                if not hits:
                    self.left_out_accounts.add(key)
                    continue
            if not name:
                self.warn(table, row, "Name", f"account {sf_id} has no name: left out with its contacts "
                                              f"and opportunities")
                self.left_out_accounts.add(key)
                continue
            industry = clean_text(row.get("Industry")) or None
            owner = self.owner(table, row)
            self.accounts[key] = SfAccount(sf_id, key, name, industry, owner, row)
        unmatched = [value for value, hit in wanted.items() if not hit]
        if unmatched:
            raise UsageError(f"--account {', '.join(repr(value) for value in unmatched)}: no such account "
                             f"in {table.file} (give a Salesforce Account Id, the exact name or its slug)")

    def account_of(self, table: Table, row: Row, kind: str) -> SfAccount | None:
        """The account a contact/opportunity row belongs to; None (reported or skipped) if none."""
        value = row.get("AccountId")
        if not value:
            return None
        if not SF_ID.match(value):
            self.warn(table, row, "AccountId", f"{value!r} is not a Salesforce ID: row left out")
            return None
        key = sf_key(value)
        if key in self.left_out_accounts:
            if not self.select:
                self.cascaded[kind] += 1
            return None
        account = self.accounts.get(key)
        if account is None:
            self.warn(table, row, "AccountId", f"unknown account {value}: it is not in "
                                               f"{self.tables['accounts'].file}; row left out")
        return account

    # -- contacts -------------------------------------------------------------------------------

    def read_contacts(self, table: Table) -> None:
        for row, sf_id in self.live_records(table):
            key = sf_key(sf_id)
            if not row.get("AccountId"):
                self.private_contacts += 1
                self.contacts[key] = ("", None)
                continue
            account = self.account_of(table, row, "contacts")
            if account is None:
                self.contacts[key] = ("", None)
                continue
            account.seen_contacts.add(key)
            name = clean_text(" ".join(part for part in (row.get("FirstName"), row.get("LastName")) if part))
            name = name or clean_text(row.get("Name"))
            if not name:
                column = "LastName" if table.has("LastName") else "Name"
                self.warn(table, row, column, f"contact {sf_id} has no name: left out")
                self.contacts[key] = (account.key, None)
                continue
            contact = SfContact(sf_id, key, name, clean_text(row.get("Title")) or None, self.owner(table, row))
            account.contacts.append(contact)
            self.contacts[key] = (account.key, contact)

    # -- opportunities --------------------------------------------------------------------------

    def read_opportunities(self, table: Table) -> None:
        known_stages = ", ".join(label for label, target in self.mapping.stages.items())
        for row, sf_id in self.live_records(table):
            key = sf_key(sf_id)
            account = self.account_of(table, row, "opportunities")
            if account is None:
                if not row.get("AccountId") and not self.select:
                    self.warn(table, row, "AccountId", f"opportunity {sf_id} has no account: left out")
                self.opportunities[key] = ("", None)
                continue
            account.seen_opportunities.add(key)
            self.opportunities[key] = (account.key, None)
            name = clean_text(row.get("Name"))
            if not name:
                self.warn(table, row, "Name", f"opportunity {sf_id} has no name: left out")
                continue
            stage_name = clean_text(row.get("StageName"))
            known, stage = self.mapping.stage(stage_name)
            if not stage_name:
                self.warn(table, row, "StageName", f"opportunity {name!r} has no stage: left out")
                continue
            if not known:
                self.warn(table, row, "StageName",
                          f"unknown stage {stage_name!r} of opportunity {name!r}: left out, not guessed; "
                          f"map it under [salesforce.stages] in a --mapping file (known: {known_stages})")
                continue
            if stage is None:
                self.skipped_stages[stage_name] = self.skipped_stages.get(stage_name, 0) + 1
                continue
            value = None
            amount = row.get("Amount")
            if amount:
                try:
                    value = parse_amount(amount)
                except AmountOutOfRange:
                    self.warn(table, row, "Amount", f"{amount!r} is beyond what a plan's value may be "
                                                    f"(0 to {MAX_WHOLE:,}): the value of opportunity {name!r} is left out")
                except ValueError:
                    self.warn(table, row, "Amount", f"{amount!r} is not a number: the value of "
                                                    f"opportunity {name!r} is left out")
            opportunity = SfOpportunity(sf_id, key, name, value, stage, owner=self.owner(table, row),
                                        next_step=clean_text(row.get("NextStep")) or None)
            for column, attribute, label in (("CloseDate", "close_date", "close date"),
                                             ("LastStageChangeDate", "stage_since", "stage date")):
                text = row.get(column)
                if text:
                    try:
                        setattr(opportunity, attribute, parse_date(text))
                    except ValueError:
                        self.warn(table, row, column, f"{text!r} is not a date (YYYY-MM-DD): the {label} of "
                                                      f"opportunity {name!r} is left out")
            account.opportunities.append(opportunity)
            self.opportunities[key] = (account.key, opportunity)

    # -- contact roles --------------------------------------------------------------------------

    def read_contact_roles(self, table: Table) -> None:
        seen: dict[str, Row] | None = {} if table.has("Id") else None
        for row in table.rows:
            if _deleted(row):
                self.deleted += 1
                continue
            if seen is not None and row.get("Id") and self.record_id(table, row, "Id", seen) is None:
                continue
            opportunity_id = self.record_id(table, row, "OpportunityId", None)
            contact_id = self.record_id(table, row, "ContactId", None)
            if opportunity_id is None or contact_id is None:
                continue
            if sf_key(opportunity_id) not in self.opportunities:
                self.warn(table, row, "OpportunityId", f"unknown opportunity {opportunity_id}: it is not in "
                                                       f"{self.tables['opportunities'].file}; row left out")
                continue
            opportunity_account, opportunity = self.opportunities[sf_key(opportunity_id)]
            if opportunity is None:
                continue  # the opportunity itself was left out (and reported) or skipped
            if sf_key(contact_id) not in self.contacts:
                self.warn(table, row, "ContactId", f"unknown contact {contact_id}: it is not in "
                                                   f"{self.tables['contacts'].file}; row left out")
                continue
            contact_account, contact = self.contacts[sf_key(contact_id)]
            if contact is None:
                opportunity.uncertain.add(sf_key(contact_id))
                continue  # the contact was left out (and reported) or skipped
            if contact_account != opportunity_account:
                other = self.accounts.get(contact_account)
                self.warn(table, row, "ContactId",
                          f"contact {contact.name!r} belongs to account {other.name if other else contact_account!r}, "
                          f"not to the account of opportunity {opportunity.name!r}: row left out")
                continue
            role_name = clean_text(row.get("Role"))
            if not role_name:
                continue  # a contact role without a role puts the contact in no buying-unit role
            known, role = self.mapping.role(role_name)
            if not known:
                opportunity.uncertain.add(contact.key)
                self.warn(table, row, "Role",
                          f"unknown role {role_name!r} of {contact.name!r} on {opportunity.name!r}: left out, "
                          f"not guessed; map it under [salesforce.roles] in a --mapping file")
                continue
            if role is None:
                continue
            members = opportunity.roles.setdefault(role, [])
            if contact.key not in members:
                members.append(contact.key)


def _selects(value: str, sf_id: str, name: str) -> bool:
    if SF_ID.match(value) and sf_key(value) == sf_key(sf_id):
        return True
    return folded(value) == folded(name) or (bool(slugify(value)) and value == slugify(name))

