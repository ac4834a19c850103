"""Refresh the fields the CRM owns (`CRM_FIELDS`) in one plan, keeping everything a person
wrote: its words, comments and key order. The plan is re-emitted by patching only the lines
that changed (`three_way`), and never written unless the plan loader reads it back as exactly
the merged data (`check_reads_back`)."""

from __future__ import annotations

import difflib
from collections import Counter
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

from ssm_rules.importers.salesforce.ids import sf_tags, slugify, unique_slug
from ssm_rules.importers.salesforce.join import SfAccount, SfOpportunity
from ssm_rules.importers.salesforce.mapping import PLAN_ROLES, folded
from ssm_rules.importers.salesforce.matching import Existing
from ssm_rules.importers.salesforce.roundtrip import (
    append_block, best_indent, emit, flow_list, insert_key, is_map, items_separated, misquoted, reads_as,
    round_trip_yaml, set_tag, set_token, tag_item, tag_of, yaml_text)
from ssm_rules.plan_format import FORMAT


CRM_FIELDS = {
    "account": ("name", "industry", "owner"),
    "contact": ("name", "title", "owner"),
    "opportunity": ("name", "owner", "value", "stage", "stage_since", "close_date", "buying_unit",
                    "next_step.action"),
}


UNASSIGNED = "unassigned"


HEADER = """\
Imported from Salesforce by `ssm import salesforce`. On re-import, Salesforce refreshes the
account's name, industry and owner, contacts' name, title and owner, and opportunities' name,
owner, value, stage, stage_since, close_date, buying unit and next_step action; everything
else you write here (outcomes, next_step due, lost_reason, ...) is kept, comments included.
The `# sf:` comments link items to Salesforce records: keep them on the `id:` lines.
Next: run `ssm check` on this file to see what to fill in first.
"""


@dataclass
class PlanOutput:
    """What the import makes of one account: the file, its old and new text, what changed."""

    account: SfAccount
    path: Path
    status: str  # new | updated | unchanged
    old_text: str | None
    new_text: str
    changes: list[str] = field(default_factory=list)
    vanished: list[str] = field(default_factory=list)

    def diff(self) -> str:
        old = (self.old_text or "").splitlines(keepends=True)
        new = self.new_text.splitlines(keepends=True)
        before = str(self.path) if self.old_text is not None else "/dev/null"
        return "".join(difflib.unified_diff(old, new, before, str(self.path)))


class MergeError(Exception):
    """The plan's structure is not what the merge can work on (e.g. `contacts` not a list)."""


def update_plan(plan: Existing, account: SfAccount, fields: frozenset[str]) -> PlanOutput:
    doc = plan.doc
    if not hasattr(doc, "get") or not hasattr(doc, "insert"):
        raise MergeError("the file is not a mapping of keys to values")
    merge = Merge(doc, account, fields)
    merge.run()
    old = plan.original
    if not merge.changes:  # every modification is recorded: nothing to emit
        return PlanOutput(account, plan.path, "unchanged", old, old, [], merge.vanished)
    yaml, base = best_indent(round_trip_yaml(2, 4, 2).load(plan.text), plan.text)
    new = emit(yaml, doc)
    text = three_way(plan.text, base, new)
    if plan.crlf:
        text = text.replace("\n", "\r\n")
    if plan.bom:
        text = "\ufeff" + text
    check_reads_back(text, doc, plan.misread)
    status = "unchanged" if text == old else "updated"
    return PlanOutput(account, plan.path, status, old, text, merge.changes, merge.vanished)


def check_reads_back(text: str, doc, misread_before: Counter | None) -> None:
    """Never write a plan that `ssm validate` would not read as exactly the merged data: the
    text is read back with the plan loader itself. ruamel writes YAML 1.2 and the loader reads
    YAML 1.1, so a text value that the loader would read as another type (`no`, `12:30`) is
    tolerated only where the plan already had it (`misread_before`): a person's own line."""
    from ssm_rules import loader
    from ssm_rules.errors import PlanError

    try:
        loaded = loader.load_bytes(text.encode("utf-8"), "plan.yaml")
    except PlanError as error:
        raise MergeError(f"the updated plan would not be readable YAML ({error.problems[0].message}); "
                          f"left as it is, please report this") from None
    misread: Counter = Counter()
    if not reads_as(doc, loaded.data, misread):
        raise MergeError("the updated plan would not read back as the merged data; left as it is, "
                          "please report this")
    misread -= misread_before or Counter()
    if misread:
        values = ", ".join(repr(value) for value in sorted(misread))
        raise MergeError(f"`ssm validate` would not read {values} as text (please report this)")


def three_way(original: str, base: str, new: str) -> str:
    """Apply the change from `base` (ruamel's re-emission of the untouched plan) to `new` (its
    emission after the merge) to the `original` text, so that every line the merge did not
    change stays byte for byte as the person wrote it (ruamel normalizes a few things, such as
    `null`). Where the person's text and the change overlap, the merged emission is used there.
    Falls back to `new` whole if the patched text does not read back as the same data."""
    if base == original:
        return new
    o_lines = original.splitlines(keepends=True)
    b_lines = base.splitlines(keepends=True)
    n_lines = new.splitlines(keepends=True)
    norm_codes = difflib.SequenceMatcher(None, b_lines, o_lines, autojunk=False).get_opcodes()
    edit_codes = difflib.SequenceMatcher(None, b_lines, n_lines, autojunk=False).get_opcodes()
    normalized = [(i1, i2, "n") for tag, i1, i2, _, _ in norm_codes if tag != "equal"]
    edits = [(i1, i2, "e") for tag, i1, i2, _, _ in edit_codes if tag != "equal"]

    def overlaps(a: tuple[int, int], b: tuple[int, int]) -> bool:
        (s1, e1), (s2, e2) = a, b
        if s1 == e1 and s2 == e2:
            return s1 == s2
        if s1 == e1:
            return s2 < s1 < e2
        if s2 == e2:
            return s1 < s2 < e1
        return max(s1, s2) < min(e1, e2)

    groups: list[list[Any]] = []  # [start, end, kinds]
    for start, end, kind in sorted(normalized + edits, key=lambda hunk: (hunk[0], hunk[1])):
        if groups and overlaps((groups[-1][0], groups[-1][1]), (start, end)):
            group = groups[-1]
            group[0], group[1] = min(group[0], start), max(group[1], end)
            group[2].add(kind)
        else:
            groups.append([start, end, {kind}])

    def mapped(codes, position: int, end: bool) -> int:
        """A line position in `base` -> the same position on the other side of `codes`; a
        position inside a changed region maps to its start (or, for an end, its end)."""
        for tag, i1, i2, j1, j2 in (reversed(codes) if end else codes):
            if end and i2 == position:
                return j2
            if not end and i1 == position:
                return j1
            if i1 < position < i2:
                return j1 + (position - i1) if tag == "equal" else (j2 if end else j1)
        return codes[-1][4] if codes else 0  # the end of the file

    out: list[str] = []
    position = 0
    for start, end, kinds in groups:
        out.extend(b_lines[position:start])
        if kinds == {"n"}:
            out.extend(o_lines[mapped(norm_codes, start, False):mapped(norm_codes, end, True)])
        else:
            out.extend(n_lines[mapped(edit_codes, start, False):mapped(edit_codes, end, True)])
        position = end
    out.extend(b_lines[position:])
    merged = "".join(out)
    from ssm_rules import loader

    try:
        if (loader.load_bytes(merged.encode("utf-8"), "plan.yaml").data
                != loader.load_bytes(new.encode("utf-8"), "plan.yaml").data or sf_tags(merged) != sf_tags(new)):
            return new
    except Exception:  # noqa: BLE001 - whatever went wrong, ruamel's own emission is right
        return new
    return merged


def new_document(account_id: str, sf_id: str):
    from ruamel.yaml.comments import CommentedMap

    doc = CommentedMap()
    doc["format"] = FORMAT
    account = CommentedMap()
    account["id"] = yaml_text(account_id)
    set_tag(account, "id", sf_id)
    doc["account"] = account
    set_token(doc, "format", "\n" + "".join(f"# {line}\n" if line else "#\n"
                                             for line in HEADER.splitlines()) + "\n")
    return doc


def _canonical(model_name: str) -> list[str]:
    from ssm_rules import model

    return list(getattr(model, model_name).model_fields)


def _show(value: Any) -> str:
    """A value in the summary: text quoted, dates as written in a plan."""
    return value.isoformat() if isinstance(value, date) else repr(value)


def _same(old: Any, new: Any) -> bool:
    if isinstance(new, date):  # a datetime is a date too: `2027-03-31T10:00` is not the date
        return type(old) is date and old == new
    if isinstance(new, (int, float)) and not isinstance(new, bool):
        # `==` compares an int and a float exactly; float() of a 400-digit int would overflow
        return isinstance(old, (int, float)) and not isinstance(old, bool) and old == new
    return isinstance(old, str) and str(old) == new and not misquoted(old)


class Merge:
    """Refresh the CRM-owned fields of one plan document in place; record what changed."""

    def __init__(self, doc, account: SfAccount, fields: frozenset[str]):
        self.doc = doc
        self.account = account
        self.fields = fields
        self.changes: list[str] = []
        self.vanished: list[str] = []
        self.contact_ids: dict[str, str] = {}  # contact key -> plan contact ID
        self.tracked_contacts: set[str] = set()  # plan contact IDs refreshed from the CRM this time
        self.separated = True  # blank lines between list items, unless the plan's lists have none
        self.notes: list[str] = []  # what a person should know about this plan

    def run(self) -> None:
        from ruamel.yaml.comments import CommentedMap

        doc = self.doc
        for key in ("contacts", "opportunities"):
            evidence = items_separated(doc.get(key))
            if evidence is not None:
                self.separated = evidence
                break
        account_map = doc.get("account")
        if account_map is None:
            account_map = CommentedMap()
            insert_key(doc, "account", account_map, _canonical("Plan"), separate=True)
        if not is_map(account_map):
            raise MergeError("`account` is not a mapping")
        if not isinstance(account_map.get("id"), str):
            account_id = slugify(self.account.name) or f"account-{self.account.sf_id.lower()}"
            insert_key(account_map, "id", yaml_text(account_id), _canonical("Account"))
            self.changes.append(f"account: id set to `{account_id}`")
        if tag_of(account_map, "id") is None:
            set_tag(account_map, "id", self.account.sf_id)
            self.changes.append(f"account: linked to Salesforce (sf:{self.account.sf_id})")
        self.set(account_map, "name", self.account.name, "Account", "account")
        if "account.industry" in self.fields:
            self.set(account_map, "industry", self.account.industry, "Account", "account")
        owner = self.account.owner if "account.owner" in self.fields else None
        if owner is None and not isinstance(account_map.get("owner"), str):
            owner = UNASSIGNED  # required by the format; `ssm check` routes its findings to it
            self.notes.append(f"account owner written as `{UNASSIGNED}`: Salesforce gave none; set it")
        self.set(account_map, "owner", owner, "Account", "account")
        self.merge_contacts()
        self.merge_opportunities()

    def set(self, mapping, key: str, value: Any, model_name: str, what: str, label: str | None = None) -> None:
        """Refresh one CRM-owned field. An empty CRM value never erases what the plan has."""
        if value is None:
            return
        label = label or key
        if key in mapping:
            old = mapping[key]
            if _same(old, value):
                return
            mapping[key] = yaml_text(value) if isinstance(value, str) else value
            if isinstance(old, str) and str(old) == value:
                self.changes.append(f"{what}: {label} {value!r} quoted, to be read as text")
            else:
                self.changes.append(f"{what}: {label} {_show(old)} -> {_show(value)}")
        else:
            insert_key(mapping, key, yaml_text(value) if isinstance(value, str) else value,
                        _canonical(model_name))
            if what != "new":
                self.changes.append(f"{what}: {label} set to {_show(value)}")

    def section(self, key: str):
        from ruamel.yaml.comments import CommentedSeq

        items = self.doc.get(key)
        if items is None:
            items = CommentedSeq()
            if key in self.doc:
                self.doc[key] = items
            else:
                insert_key(self.doc, key, items, _canonical("Plan"), separate=True)
        if not isinstance(items, list):
            raise MergeError(f"`{key}` is not a list")
        return items

    def match(self, items: list, records: list, seen: set[str]) -> tuple[dict[str, Any], list[Any]]:
        """CRM key -> plan item, by `# sf:` tag first, then (untagged items) by name or ID."""
        tagged: dict[str, Any] = {}
        untagged = []
        for item in items:
            if not is_map(item):
                continue
            key = tag_of(item, "id")
            if key is not None and key not in tagged:
                tagged[key] = item
            elif key is None:
                untagged.append(item)
        matched: dict[str, Any] = {}
        for record in records:
            if record.key in tagged:
                matched[record.key] = tagged.pop(record.key)
        for record in records:
            if record.key in matched:
                continue
            slug = slugify(record.name)
            for item in untagged:
                name, item_id = item.get("name"), item.get("id")
                if (isinstance(name, str) and folded(name) == folded(record.name)) or (slug and item_id == slug):
                    matched[record.key] = item
                    untagged.remove(item)
                    break
        vanished = [item for key, item in tagged.items() if key not in seen]
        return matched, vanished

    def merge_contacts(self) -> None:
        def refresh(item, record, what: str) -> None:
            self.set(item, "name", record.name, "Contact", what)
            if "contact.title" in self.fields:
                self.set(item, "title", record.title, "Contact", what)
            if "contact.owner" in self.fields:
                self.set(item, "owner", record.owner, "Contact", what)
            self.contact_ids[record.key] = item["id"]
            self.tracked_contacts.add(item["id"])

        self.merge_items("contacts", "contact", "a contact", self.account.contacts, self.account.seen_contacts,
                         refresh)

    def merge_opportunities(self) -> None:
        def refresh(item, record, what: str) -> None:
            self.set(item, "name", record.name, "Opportunity", what)
            for name in ("owner", "value"):
                if f"opportunity.{name}" in self.fields:
                    self.set(item, name, getattr(record, name), "Opportunity", what)
            self.set(item, "stage", record.stage, "Opportunity", what)
            for name in ("stage_since", "close_date"):
                if f"opportunity.{name}" in self.fields:
                    self.set(item, name, getattr(record, name), "Opportunity", what)
            self.merge_buying_unit(item, record, what)
            if "opportunity.next_step" in self.fields:
                self.merge_next_step(item, record, what)

        self.merge_items("opportunities", "opportunity", "an opportunity", self.account.opportunities,
                         self.account.seen_opportunities, refresh)

    def merge_next_step(self, item, record: SfOpportunity, what: str) -> None:
        """Salesforce's NextStep is the action of the plan's next step; its `due` and `owner`
        are the team's and stay as they are."""
        from ruamel.yaml.comments import CommentedMap

        if record.next_step is None:
            return
        step = item.get("next_step")
        if step is None:
            step = CommentedMap()
            step["action"] = yaml_text(record.next_step)
            if "next_step" in item:
                item["next_step"] = step
            else:
                insert_key(item, "next_step", step, _canonical("Opportunity"))
            if what != "new":
                self.changes.append(f"{what}: next_step.action set to {record.next_step!r}")
            return
        if not is_map(step):
            raise MergeError(f"the next_step of {what} is not a mapping")
        self.set(step, "action", record.next_step, "NextStep", what, label="next_step.action")

    def merge_items(self, section: str, noun: str, a_noun: str, records, seen, refresh) -> None:
        """Match the CRM's records to the plan's items (by `# sf:` tag, then name or ID), add new
        ones at the end, let `refresh` update the fields the CRM owns, report vanished ones."""
        from ruamel.yaml.comments import CommentedMap

        if not records:
            items = self.doc.get(section)
            if isinstance(items, list):
                self.report_vanished(self.match(items, [], seen)[1], noun)
            return
        items = self.section(section)
        matched, vanished = self.match(items, records, seen)
        taken = {item.get("id") for item in items if is_map(item) and isinstance(item.get("id"), str)}
        for record in records:
            item = matched.get(record.key)
            if item is None:
                item = CommentedMap()
                item["id"] = yaml_text(unique_slug(slugify(record.name) or f"{noun}-{record.sf_id.lower()}", taken))
                set_tag(item, "id", record.sf_id)
                what = "new"
                self.changes.append(f"{noun} `{item['id']}` added ({record.name})")
            else:
                if not isinstance(item.get("id"), str):
                    raise MergeError(f"{a_noun} ({record.name}) has no `id`")
                what = f"{noun} `{item['id']}`"
                if tag_of(item, "id") is None:
                    tag_item(items, item, record.sf_id)
                    self.changes.append(f"{what}: linked to Salesforce (sf:{record.sf_id})")
            refresh(item, record, what)
            if what == "new":
                append_block(items, item, self.separated)
        self.report_vanished(vanished, noun)

    def report_vanished(self, items: list, what: str) -> None:
        for item in items:
            self.vanished.append(f"{what} `{item.get('id')}` ({item.get('name') or 'no name'}, "
                                 f"sf:{tag_of(item, 'id', raw=True)})")

    def merge_buying_unit(self, item, record: SfOpportunity, what: str) -> None:
        """Per role: contacts from Salesforce follow its contact roles; contacts a person added
        (not from Salesforce) and contacts whose role row was left out stay where they are."""
        from ruamel.yaml.comments import CommentedMap

        crm = {role: [self.contact_ids[key] for key in keys if key in self.contact_ids]
               for role, keys in record.roles.items()}
        keep = {self.contact_ids[key] for key in record.uncertain if key in self.contact_ids}
        unit = item.get("buying_unit")
        if unit is None:
            if not any(crm.values()):
                return
            unit = CommentedMap()
            for role in PLAN_ROLES:
                if crm.get(role):
                    unit[role] = flow_list(crm[role])
                    if what != "new":
                        self.changes.append(f"{what}: buying unit {role} + {', '.join(crm[role])}")
            if "buying_unit" in item:
                item["buying_unit"] = unit
            else:
                insert_key(item, "buying_unit", unit, _canonical("Opportunity"))
            return
        if not is_map(unit):
            raise MergeError(f"the buying_unit of {what} is not a mapping")
        for role in PLAN_ROLES:
            wanted = crm.get(role, [])
            members = unit.get(role)
            if members is None:
                if wanted:
                    if role in unit:
                        unit[role] = flow_list(wanted)
                    else:
                        insert_key(unit, role, flow_list(wanted), list(PLAN_ROLES))
                    if what != "new":
                        self.changes.append(f"{what}: buying unit {role} + {', '.join(wanted)}")
                continue
            if not isinstance(members, list):
                raise MergeError(f"buying_unit.{role} of {what} is not a list")
            removed = [index for index, member in enumerate(members)
                       if member in self.tracked_contacts and member not in wanted and member not in keep]
            for index in reversed(removed):
                self.changes.append(f"{what}: buying unit {role} - {members[index]} "
                                    f"(no such contact role in Salesforce)")
                del members[index]
            if not members and wanted and hasattr(members, "fa"):
                members.fa.set_flow_style()  # `[]` grows as `[a, b]`, not as a block list
            for member in wanted:
                if member not in members:
                    members.append(yaml_text(member))
                    if what != "new":
                        self.changes.append(f"{what}: buying unit {role} + {member}")

