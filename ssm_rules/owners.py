"""`--owner NAME`: one team member's share of a run (`ssm check`, `ssm pipeline`, `ssm audit`).

Team members are named in the plans as free text (`account.owner`, a contact's `owner`, an
opportunity's `owner`, a next step's `owner`), so NAME matches a name written in any case and
with any spacing: `--owner Raj.Patel` is `raj.patel`.

What `--owner` keeps:

- `ssm check`, `ssm audit`: the findings whose next action NAME owns. An invalid plan is always
  reported: what it would find is unknown, and some of it may be NAME's.
- `ssm pipeline`: the opportunities NAME owns (an opportunity without `owner` is the account
  owner's).

A NAME that nobody in the plans is called is a usage error (exit 2) with the closest name
found, never an empty and therefore clean report: a typo must not look like a seller with
nothing to do.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace

from ssm_rules.errors import UsageError
from ssm_rules.suggestions import closest


def person_key(name: str | None) -> str:
    """How names are compared: case-folded, spaces collapsed ('' for no one)."""
    return " ".join(str(name).split()).casefold() if name else ""


def same_person(name: str | None, wanted: str) -> bool:
    return bool(name) and person_key(name) == person_key(wanted)


def check_known(wanted: str, team: Iterable[str | None]) -> str:
    """`wanted` as the plans write it, if it is one of `team` (every team member the plans
    name); otherwise UsageError."""
    names = {person_key(name): name for name in sorted(name for name in team if name)}
    if not person_key(wanted):
        raise UsageError("--owner: give the name of a team member, as the plans write it (e.g. `jane.doe`)")
    if person_key(wanted) in names:
        return names[person_key(wanted)]
    close = closest(person_key(wanted), names)
    hint = f"; did you mean `{names[close[0]]}`?" if close else ""
    known = sorted(names.values(), key=person_key)
    listed = ", ".join(known[:10]) + (f" and {len(known) - 10} more" if len(known) > 10 else "")
    raise UsageError(f"--owner {wanted}: nobody of that name owns an account, contact, opportunity, next step or "
                     f"finding in these plans{hint} (names found: {listed or 'none'})")


# Fact fields that name a team member: the account's, a contact's and an opportunity's `owner`,
# and who does an opportunity's next step.
_TEAM_FIELDS = ("owner", "next_step_owner")


def team_members(facts: Iterable[dict]) -> tuple[str, ...]:
    """Every team member a plan's facts name, sorted."""
    return tuple(sorted({value for fact in facts for name in _TEAM_FIELDS
                         if isinstance(value := fact.get(name), str) and value.strip()}))


def team_of(results: Iterable) -> set[str]:
    """Every team member the results name: plans' `team` and the owners of their findings."""
    team: set[str] = set()
    for result in results:
        team.update(name for name in (getattr(result, "team", None) or ()) if name)
        if result.account_owner:
            team.add(result.account_owner)
        team.update(owner for finding in result.findings if (owner := action_owner(finding.to_json())))
    return team


def action_owner(finding: dict) -> str | None:
    """Who owns a finding's next action (a finding in the output contract's shape)."""
    return (finding.get("next_action") or {}).get("owner")


def owned_findings(result, wanted: str):
    """The PlanResult with only the findings whose next action `wanted` owns (an invalid plan
    as it is)."""
    if not result.valid:
        return result
    return replace(result, findings=[finding for finding in result.findings if same_person(finding.owner, wanted)])
