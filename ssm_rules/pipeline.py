"""Wires the steps for one plan: file -> document -> plan -> facts -> engine -> findings.

The commands call this; it has no output formatting and no engine syntax of its own.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from typing import Any

from ssm_rules.errors import PlanError, PlanProblem


@dataclass
class PlanResult:
    """What one plan file came to: either validation errors or findings and the outcome."""

    file: str
    account: str | None = None
    errors: list[PlanProblem] = field(default_factory=list)
    findings: list[Any] = field(default_factory=list)  # ssm_rules.findings.Finding
    outcome: dict | None = None
    account_owner: str | None = None
    account_name: str | None = None  # the account's name, for reports that list accounts by name
    document: Any = None  # the loaded Document (absent when the whole result came from the cache)
    suppressions: list = field(default_factory=list)  # ssm_rules.suppressions.Suppression, read at load
    team: tuple[str, ...] = ()  # every team member the plan names (ssm_rules.owners)
    opportunities: list[dict] = field(default_factory=list)  # the pipeline review's view of each (ssm_rules.stages)

    @property
    def valid(self) -> bool:
        return not self.errors

    def to_json(self) -> dict:
        result: dict[str, Any] = {"file": self.file, "account": self.account}
        if self.errors:
            result["errors"] = [problem.to_json(self.file) for problem in self.errors]
            result["findings"] = []
            return result
        if self.outcome is not None:
            result["outcome"] = self.outcome
        result["findings"] = [finding.to_json() for finding in self.findings]
        return result


@dataclass
class LoadedPlan:
    file: str
    document: Any = None
    plan: Any = None  # ssm_rules.plan_shape.Record when valid
    problems: list[PlanProblem] = field(default_factory=list)
    suppressions: list = field(default_factory=list)  # its `# ssm: ignore` comments, when valid
    key: str | None = None  # the cache key of the file's content, when a cache is used


def load_plan(file: str, raw: bytes | None = None, cache: Any = None, key: str | None = None) -> LoadedPlan:
    """Read and validate one plan file (or `raw` bytes named `file`, e.g. from stdin).

    The file is read once: its bytes are parsed, scanned for suppression comments and (with a
    `cache`, an ssm_rules.cache.Cache) hashed, unless the caller already did (`key`, the
    cache.plan_key of `raw`). A file whose bytes were loaded before is not parsed or validated
    again: what it came to does not depend on anything else.
    """
    from ssm_rules import loader
    from ssm_rules.discovery import display_name

    loaded = LoadedPlan(display_name(file))  # the name reports show; `file` is what is read
    try:
        raw = loader.read_path(file) if raw is None else raw
    except PlanError as error:  # missing, unreadable, too big: nothing to cache
        loaded.problems = error.problems
        return loaded
    if cache is None:
        _load_and_validate(loaded, raw)
        return loaded
    from ssm_rules.cache import plan_key

    loaded.key = key or plan_key(raw, loaded.file)
    entry = cache.get("plan", loaded.key)
    if isinstance(entry, tuple) and len(entry) == 4:
        loaded.document, loaded.plan, loaded.problems, loaded.suppressions = entry
        return loaded
    _load_and_validate(loaded, raw)
    cache.put("plan", loaded.key, (loaded.document, loaded.plan, loaded.problems, loaded.suppressions))
    return loaded


def _load_and_validate(loaded: LoadedPlan, raw: bytes) -> None:
    from ssm_rules import loader, plan_shape, suppressions

    try:
        loaded.document = loader.load_bytes(raw, loaded.file)
        loaded.plan = plan_shape.validate(loaded.document)
    except PlanError as error:
        loaded.problems = error.problems
        return
    loaded.suppressions = suppressions.read(raw, loaded.file)


def account_id_of(loaded: LoadedPlan) -> str | None:
    """The account ID even of an invalid plan, when the file gives one: reports name it."""
    return _account_field(loaded, "id")


def _account_field(loaded: LoadedPlan, name: str) -> str | None:
    if loaded.plan is not None:
        return getattr(loaded.plan.account, name)
    data = getattr(loaded.document, "data", None)
    account = data.get("account") if isinstance(data, dict) else None
    value = account.get(name) if isinstance(account, dict) else None
    return value if isinstance(value, str) else None


def validation_result(loaded: LoadedPlan) -> PlanResult:
    return PlanResult(file=loaded.file, account=account_id_of(loaded), errors=list(loaded.problems),
                      account_name=_account_field(loaded, "name"), document=loaded.document,
                      suppressions=loaded.suppressions)


class _Unplaced(Exception):
    """A finding of a re-dated check whose place the earlier check did not record."""


@dataclass
class _Earlier:
    """What a plan's check on another as-of date kept (its result entry) for checking it again."""

    result: PlanResult
    record: Any  # ssm_rules.replay.EngineRecord
    facts: list[dict]  # the plan's facts (of some date), re-dated in place by Checker._check_again
    packed_facts: bytes  # the same as the entry keeps them: an unchanged plan's are kept as they are
    refused: bool = False  # the rules told the dates apart: the engine must run
    _places: dict | None = None

    def new_result(self) -> PlanResult:
        """A result for the same file with what does not depend on the date, findings to come."""
        before = self.result
        return PlanResult(file=before.file, account=before.account, account_name=before.account_name,
                          suppressions=before.suppressions)

    def locate(self, path: str) -> tuple[int, int]:
        """Where the earlier findings placed `path` in the file (the same bytes, so the same place)."""
        if self._places is None:
            self._places = {finding.path: (finding.line, finding.column) for finding in self.result.findings}
        place = self._places.get(path)
        if place is None:  # a path no earlier finding had (a location naming a moving value)
            raise _Unplaced(path)
        return place


class Checker:
    """Checks plans against compiled rule packs; build one per process and reuse it.

    Compiling the packs and registering them with the engine costs tens of milliseconds, so a
    portfolio run builds one Checker and feeds it every plan.
    """

    def __init__(self, *, rule_dirs=(), include_builtin: bool = True, packs=None,
                 settings: dict | None = None, severity: dict | None = None, selected=None, cache=None):
        """`cache` (an ssm_rules.cache.Cache, or None for none) keeps loaded packs, compiled
        rules, validated plans and results between runs."""
        from ssm_rules import cache as caching, i18n
        from ssm_rules.engine import RuleEngine
        from ssm_rules.replay import Replayer

        self.cache = cache
        self.packs = list(packs) if packs is not None else caching.load_packs(cache, rule_dirs, include_builtin)
        self.compiled, self._rules_key = caching.compile_packs(cache, self.packs, settings, severity, selected)
        self.engine = RuleEngine(self.compiled)
        self.replayer = Replayer(self.compiled)
        self.replayed = 0  # plans whose engine run was reused from another as-of date
        i18n.use_packs(self.packs)  # findings speak the run's language, from the packs' catalogs
        self.rules = {rule_id: compiled.rule for rule_id, compiled in self.compiled.rules.items()
                      if compiled.rule.has_finding}

    def check_file(self, file: str, as_of: date, raw: bytes | None = None) -> PlanResult:
        key = earlier = None
        if self.cache is not None and self._rules_key is not None:
            # A re-run on the same day: the result alone answers, without the (larger) plan entry.
            from ssm_rules import loader
            from ssm_rules.cache import plan_key

            from ssm_rules.discovery import display_name

            try:
                raw = loader.read_path(file) if raw is None else raw
            except PlanError:
                pass  # load_plan reports it
            else:
                key = plan_key(raw, display_name(file))
                known, earlier = self._cached_result(display_name(file), key, as_of)
                if known is not None:
                    return known
                if earlier is not None:
                    known = self._check_again(earlier, key, as_of)
                    if known is not None:
                        return known
                    earlier = None if earlier.refused else earlier.record
        return self.check_loaded(load_plan(file, raw, self.cache, key), as_of, earlier=earlier)

    def _result_key(self, plan_key: str, file: str) -> str:
        from ssm_rules.cache import digest
        from ssm_rules.i18n import language

        # Findings hold their text in the run's language: a Chinese run is not served English.
        return digest("result", plan_key, self._rules_key, file, language())

    def _cached_result(self, file: str, plan_key: str, as_of: date) -> tuple[PlanResult | None, _Earlier | None]:
        """Same file content, rules, name and as-of date: the same result (ssm_rules.cache).
        Another as-of date: (None, what that date's check kept for ssm_rules.replay, or None)."""
        from ssm_rules.cache import unpack
        from ssm_rules.replay import EngineRecord

        entry = self.cache.get("result", self._result_key(plan_key, file))
        if not (isinstance(entry, tuple) and len(entry) == 10):
            return None, None
        day, account, account_name, account_owner, suppressions, findings, outcome, team, opportunities, run = entry
        result = PlanResult(file=file, account=account, account_name=account_name, account_owner=account_owner,
                            suppressions=suppressions, findings=findings, outcome=outcome, team=team,
                            opportunities=opportunities)
        if day == as_of.isoformat():
            return result, None
        packed_record, packed_facts = run if isinstance(run, tuple) and len(run) == 2 else (None, None)
        record = unpack(packed_record) if isinstance(packed_record, bytes) else None
        facts = unpack(packed_facts) if isinstance(record, EngineRecord) and isinstance(packed_facts, bytes) else None
        if not isinstance(facts, list):
            return None, None
        return None, _Earlier(result, record, facts, packed_facts)

    def _check_again(self, earlier: _Earlier, key: str, as_of: date) -> PlanResult | None:
        """Check an unchanged plan from what its check on another as-of date kept, without loading
        it: its facts moved to `as_of` (facts.date_facts), the engine run reused (ssm_rules.replay),
        the findings placed where that check placed them. None (with `earlier.refused` when the
        rules tell the dates apart) when the plan must be loaded and checked."""
        from ssm_rules.facts import date_facts

        facts = date_facts(earlier.facts, as_of)
        replayed = self.replayer.replay(facts, earlier.record, as_of)
        if replayed is None:
            earlier.refused = True
            return None
        engine_result, record = replayed
        result = earlier.new_result()
        try:
            self._complete(result, facts, engine_result, earlier.locate, earlier.result.account_owner)
        except _Unplaced:
            return None
        self.replayed += 1
        self._keep(result, key, as_of, record, facts, earlier.packed_facts)
        return result

    def check_data(self, data: dict, file: str, as_of: date) -> PlanResult:
        """Check a plan given as data (rule examples, tests): dumped to YAML so locations exist."""
        import yaml

        return self.check_file(file, as_of, raw=yaml.safe_dump(data, sort_keys=False).encode("utf-8"))

    def check_loaded(self, loaded: LoadedPlan, as_of: date, earlier=None) -> PlanResult:
        """`earlier`: the ssm_rules.replay.EngineRecord of this plan's run on another as-of
        date (from the result cache), reused when no rule can tell the dates apart."""
        from ssm_rules.facts import plan_facts

        result = validation_result(loaded)
        if loaded.plan is None:
            return result
        facts = plan_facts(loaded.plan, as_of)
        keep = loaded.key is not None and self._rules_key is not None
        replayed = self.replayer.replay(facts, earlier, as_of) if earlier is not None else None
        if replayed is not None:
            engine_result, record = replayed
            self.replayed += 1
        else:
            engine_result = self.engine.run(facts)
            record = self.replayer.record(facts, engine_result, as_of) if keep else None
        if engine_result.errors:
            # A rule that could not be evaluated must never look like a clean plan.
            result.errors = [PlanProblem(f"the rules could not be checked: {error}") for error in engine_result.errors]
            return result
        self._complete(result, facts, engine_result, loaded.document.locate, loaded.plan.account.owner)
        if keep:
            self._keep(result, loaded.key, as_of, record, facts)
        return result

    def _complete(self, result: PlanResult, facts: list[dict], engine_result, locate, owner: str | None) -> None:
        """Fill in what an error-free engine run of `facts` says of the plan: findings (placed by
        `locate`), outcome, owner, team and the pipeline's view of each opportunity."""
        from ssm_rules.findings import build_findings, outcome
        from ssm_rules.owners import team_members
        from ssm_rules.stages import opportunity_views

        result.findings = build_findings(self.compiled, facts, engine_result, locate, result.file)
        result.outcome = outcome(self.packs, engine_result.derived)
        result.account_owner = owner
        result.team = team_members(facts)
        result.opportunities = opportunity_views(facts, engine_result.derived)

    def _keep(self, result: PlanResult, key: str, as_of: date, record, facts: list[dict],
              packed_facts: bytes | None = None) -> None:
        """Write the result entry `_cached_result` reads. One entry per file version, holding the
        last as-of date checked: re-runs on the same day find it, and a nightly audit overwrites it
        instead of adding one a night, checking the plan again from the entry's facts and engine
        run when it can (`_check_again`). The run's record and facts are packed apart: a re-run on
        the same day, which needs neither, never decodes them, and a plan's facts, the same on
        every date but for the fields `_check_again` sets, are packed once (`packed_facts`: as an
        earlier entry kept them)."""
        from ssm_rules.cache import pack

        run = None
        if record is not None:
            run = (pack(record), packed_facts or pack(facts))
        self.cache.put("result", self._result_key(key, result.file),
                       (as_of.isoformat(), result.account, result.account_name, result.account_owner,
                        result.suppressions, result.findings, result.outcome, result.team,
                        result.opportunities, run))


def configured_checker(configuration, cache, rule_dirs=(), include_builtin: bool = True):
    """A Checker wired as `ssm check` and `ssm audit` both wire it: the configuration's packs and
    settings, checked against the rules actually loaded. Returns (checker, known_rules), where
    known_rules maps every rule ID a suppression or selector may name to its guidance."""
    from ssm_rules import suppressions
    from ssm_rules.cache import load_packs

    packs = load_packs(cache, [*configuration.packs, *rule_dirs], configuration.builtin and include_builtin)
    known_rules = {rule.id: rule.guidance for pack in packs for rule in pack.rules}
    known_rules.update({rule_id: () for rule_id in suppressions.META_RULES})
    rule_packs = {rule.id: pack.name for pack in packs for rule in pack.rules}
    declared = {name: s.default for pack in packs for name, s in pack.settings.items()}
    declared.update({f"{pack.name}.{name}": s.default for pack in packs for name, s in pack.settings.items()})
    bounds = {name: (s.minimum, s.maximum) for pack in packs for name, s in pack.settings.items()}
    bounds.update({f"{pack.name}.{name}": (s.minimum, s.maximum) for pack in packs for name, s in pack.settings.items()})
    settings = configuration.check_against(known_rules, declared, rule_packs, bounds)
    _check_something_is_checked(configuration, packs)
    return Checker(packs=packs, settings=settings, cache=cache), known_rules


def apply_suppressions_and_configuration(result: PlanResult, configuration, known_rules) -> PlanResult:
    """A checked result as every command reports it: the plan's `# ssm: ignore[...]` comments
    first (an unused or unknown one is itself a finding), then the configuration's `select`,
    `ignore`, `severity` and `per-file-ignores`. `known_rules` as `configured_checker` returns it."""
    from ssm_rules import suppressions

    return configuration.apply_to_result(suppressions.apply_to_result(result, known_rules=known_rules))


def _check_something_is_checked(configuration, packs) -> None:
    """A run with no rule to report must not look like a clean portfolio (exit 2, like eslint)."""
    from ssm_rules.errors import UsageError

    reporting = [rule for pack in packs for rule in pack.rules if rule.has_finding]
    if not packs:
        raise UsageError("no rule pack to check with: the built-in packs are left out (--no-builtin or "
                         "`builtin = false`) and no other is given (--rules DIR or `packs`)")
    if not reporting:
        names = ", ".join(pack.name for pack in packs)
        raise UsageError(f"no rule to check with: the rule packs loaded ({names}) have no rule with a finding")
    if not any(configuration.is_enabled(rule.id, rule.guidance, rule.pack) for rule in reporting):
        why = "`select` is empty" if not configuration.select else "`ignore` turns off every rule `select` selects"
        raise configuration.error("select", f"no rule is selected ({why}): the run would check nothing")
