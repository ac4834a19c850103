"""`ssm rules` (list every rule) and `ssm explain RULE` (one rule's documentation, like `ruff rule`).

Both read the rule packs with `rulepack.load_packs`; neither runs the engine. What a guidance
ID means comes from the catalogue a pack ships beside its pack.yaml (`guidance.yaml`: the
Focus items G01-G87 in rules/focus/, the stage items S01-S31 in rules/stages/).
"""

from __future__ import annotations

import json
import os
import re
import textwrap
from collections.abc import Sequence

import click

from ssm_rules import display
from ssm_rules.commands.common import exit_on_usage_error, rule_pack_options
from ssm_rules.errors import UsageError
from ssm_rules.i18n import _, ngettext, pack_text, rule_text
from ssm_rules.suggestions import closest

WIDTH = 88


def _load(rule_dirs: Sequence[str], no_builtin: bool):
    from ssm_rules.rulepack import load_packs

    if no_builtin and not rule_dirs:
        raise UsageError("--no-builtin leaves no rules: add a pack with --rules DIR")
    return load_packs(list(rule_dirs), include_builtin=not no_builtin)


def _rules_in_order(packs) -> list:
    """Every rule, pack by pack, in the order of the guidance catalogue (then by ID)."""
    ordered = []
    for pack in packs:
        ordered += sorted(pack.rules, key=lambda r: (min(r.guidance) if r.guidance else "~", r.id))
    return ordered


def _count(number: int, noun: str) -> str:
    return f"{number} {noun}{'' if number == 1 else 's'}"


def _rules_count(number: int) -> str:
    return ngettext("{count} rule", "{count} rules", number).format(count=number)


def _severity_label(rule) -> str:
    return rule.severity if rule.has_finding else "derive"


# ---- ssm rules ------------------------------------------------------------------------------


@click.command()
@click.option("--format", "output_format", type=click.Choice(["text", "json", "markdown"]), default="text",
              show_default=True,
              help="text: one line per rule; json: every rule with its pack, severity, title, guidance, "
                   "and the guidance catalogue with the rules that enforce each item; "
                   "markdown: a reference page with every rule's documentation (docs/rules.md).")
@click.option("--check-examples", is_flag=True,
              help="Run every rule's fail and pass examples through the engine and report the ones "
                   "that do not behave as they say (exit 1). For authors of rule packs.")
@click.option("--extract-messages", is_flag=True,
              help="Write LOCALE/rules.pot beside each --rules pack: the template a translator starts from "
                   "(msginit, pybabel init, Poedit). For authors of rule packs.")
@click.option("--check-translations", is_flag=True,
              help="Check every loaded pack's catalogs (locale/LANG/LC_MESSAGES/rules.po): placeholders kept, "
                   "no text the pack no longer has, .mo files up to date; exit 1 on an error.")
@click.option("--compile-translations", is_flag=True,
              help="Compile each --rules pack's .po catalogs into the .mo files ssm reads (without a .mo, "
                   "ssm reads the .po, more slowly).")
@rule_pack_options
@exit_on_usage_error
def rules(output_format: str, check_examples: bool, extract_messages: bool, check_translations: bool,
          compile_translations: bool, rule_dirs: tuple[str, ...], no_builtin: bool) -> None:
    """List every rule: ID, severity, title and the guidance it enforces.

    Rules are listed pack by pack, in the order of the SSM guidance catalogue. A rule whose
    severity reads `derive` produces no finding: it derives a fact other rules use (an
    at-risk opportunity, a piece of the phase's verifiable outcome).

    \b
    Examples:
      ssm rules
      ssm rules --format json | jq '.rules[] | select(.severity == "error") | .id'
      ssm rules --format json | jq '.guidance[] | select(.rules == []) | .id'
      ssm rules --rules my-team-rules/
      ssm rules --rules my-team-rules/ --no-builtin --check-examples
      ssm rules --rules my-team-rules/ --extract-messages
      ssm rules --rules my-team-rules/ --check-translations
      ssm explain SSM-BDU-001
    """
    from ssm_rules import i18n
    from ssm_rules.rulepack import guidance_items

    packs = _load(rule_dirs, no_builtin)
    i18n.use_packs(packs)
    if check_examples:
        _check_examples(packs)
        return
    if extract_messages or compile_translations:
        from ssm_rules.commands import translations

        translations.extract_or_compile(packs, rule_dirs, extract=extract_messages, compile_=compile_translations)
        return
    if check_translations:
        from ssm_rules.commands import translations

        translations.check(packs)
        return
    ordered = _rules_in_order(packs)
    if output_format == "json":
        document = {
            "version": 1,
            "packs": [{"name": p.name, "title": p.title, "directory": p.directory,
                       "settings": {name: {"default": s.default, "description": s.description}
                                    for name, s in p.settings.items()},
                       "rules": len(p.rules)} for p in packs],
            "rules": [{"id": r.id, "pack": r.pack, "severity": r.severity, "title": r.title,
                       "guidance": list(r.guidance), "derives": r.derive.kind if r.derive else None,
                       "file": r.file} for r in ordered],
            "guidance": [{"id": item.id, "pack": item.pack, "section": item.section, "title": item.title,
                          "looks_for": item.looks_for, "severity": list(item.severity), "no_rule": item.no_rule,
                          "rules": [r.id for r in ordered if item.id.upper() in (g.upper() for g in r.guidance)]}
                         for item in guidance_items(packs).values()],
        }
        click.echo(json.dumps(document, indent=2, ensure_ascii=False))
        return
    if output_format == "markdown":
        click.echo(rules_reference(packs, ordered), nl=False)
        return
    id_width = max((len(r.id) for r in ordered), default=2)
    for pack in packs:
        pack_rules = [r for r in ordered if r.pack == pack.name]
        click.echo(f"{pack.name}: {pack_text(pack.name, 'pack', pack.title)} "
                   f"({_rules_count(len(pack_rules))}, {pack.directory})")
        for rule in pack_rules:
            guidance = ", ".join(rule.guidance)
            click.echo(f"  {rule.id:<{id_width}}  {_severity_label(rule):<7}  {rule_text(rule, rule.title)}"
                       + (f"  [{guidance}]" if guidance else ""))
    click.echo(ngettext("{rules} in {count} pack.", "{rules} in {count} packs.", len(packs)).format(
        rules=_rules_count(len(ordered)), count=len(packs))
        + " " + _("`ssm explain RULE` shows one rule's documentation."))


def _check_examples(packs) -> None:
    import sys

    from ssm_rules import examples
    from ssm_rules.pipeline import Checker

    checker = Checker(packs=packs)
    cases = examples.cases(packs)
    failed = 0
    for case in cases:
        problems = examples.problems_of(case, checker)
        if problems:
            failed += 1
            for problem in problems:
                click.echo(f"{case.rule.file}: {case.name}: {problem}")
    untested = examples.without_examples(packs)
    for rule in untested:
        click.echo(f"{rule.source('examples' if rule.examples else 'id')}: warning: {rule.id} has no `fail` "
                   f"example, so nothing shows that it can fire; add `examples: {{fail: [{{plan: ...}}]}}`")
    rule_count = len({case.rule.id for case in cases})
    untested_note = f", {_count(len(untested), 'rule')} without a fail example" if untested else ""
    click.echo(f"{_count(len(cases), 'example')} of {_count(rule_count, 'rule')} checked "
               f"(as of {examples.AS_OF.isoformat()}): {failed} failed{untested_note}.")
    sys.exit(1 if failed else 0)


def rules_reference(packs, ordered) -> str:
    """Every rule's documentation on one Markdown page; `#ssm-bdu-001` anchors are what the
    SARIF report's `helpUri` links to."""
    out = ["# Rule reference", "",
           "Generated by `ssm rules --format markdown`; `ssm explain RULE` prints the same for one rule.", "",
           "| rule | severity | title | guidance |", "|---|---|---|---|"]
    for rule in ordered:
        out.append(f"| [{rule.id}](#{rule.id.lower()}) | {_severity_label(rule)} | {rule.title} | "
                   f"{', '.join(rule.guidance)} |")
    for rule in ordered:
        # The file relative to its pack, so the page reads the same wherever it is generated.
        pack = next(p for p in packs if p.name == rule.pack)
        shown = f"{pack.name}/{os.path.relpath(rule.file, pack.directory)}"
        out += ["", f'<a id="{rule.id.lower()}"></a>', "", *_demote_headings(explain_text(rule, packs, file_shown=shown))]
    return "\n".join(out) + "\n"


def _demote_headings(markdown: str) -> list[str]:
    """Headings one level down (the page keeps a single title); code blocks are left alone."""
    lines, in_code = [], False
    for line in markdown.rstrip("\n").splitlines():
        if line.startswith("```"):
            in_code = not in_code
        lines.append("#" + line if line.startswith("#") and not in_code else line)
    return lines


# ---- ssm explain ----------------------------------------------------------------------------


@click.command()
@click.argument("rule_id", metavar="RULE")
@rule_pack_options
@exit_on_usage_error
def explain(rule_id: str, rule_dirs: tuple[str, ...], no_builtin: bool) -> None:
    """Print a rule's full documentation: what it checks, why it matters, examples.

    RULE is a rule ID (any case), e.g. SSM-BDU-001. A guidance ID of the SSM catalogues
    (G01-G87 for the Focus phase, S01-S31 for the opportunity stages) prints what the method
    asks, what the rules look for and which rules enforce it.

    \b
    Examples:
      ssm explain SSM-BDU-001
      ssm explain ssm-plan-002
      ssm explain G69
      ssm explain S01
    """
    from ssm_rules.rulepack import guidance_items

    from ssm_rules import i18n

    packs = _load(rule_dirs, no_builtin)
    i18n.use_packs(packs)
    ordered = _rules_in_order(packs)
    by_id = {rule.id.upper(): rule for rule in ordered}
    catalogue = guidance_items(packs)
    wanted = rule_id.strip().upper()
    if wanted in by_id:
        click.echo(explain_text(by_id[wanted], packs), nl=False)
        return
    enforcing = [rule for rule in ordered if wanted in (g.upper() for g in rule.guidance)]
    if wanted in catalogue or enforcing:
        click.echo(_guidance_text(wanted, catalogue.get(wanted), enforcing), nl=False)
        return
    names = {**{key: item.id for key, item in catalogue.items()}, **{key: rule.id for key, rule in by_id.items()}}
    close = closest(wanted, names, n=3)
    hint = f"; did you mean {', '.join(names[c] for c in close)}?" if close else ""
    raise UsageError(f"unknown rule or guidance ID `{rule_id}`{hint} (`ssm rules` lists them all)")


def _guidance_text(guidance_id: str, item, enforcing: list) -> str:
    """A guidance item: what the method asks, what the rules look for, the rules that do."""
    if item is None:  # cited by a custom pack's rules, in no loaded catalogue
        lines = [guidance_id, ""]
    else:
        lines = [f"{item.id}: {pack_text(item.pack, item.id, item.title)}",
                 _("Section: {section} ({file})").format(section=item.section, file=item.file)]
        if item.looks_for:
            heading = _("What it is about:") if item.no_rule else _("What the rules look for:")
            lines += ["", heading, *_wrap(item.looks_for, indent="  ")]
        if item.severity:
            lines.append(_("Default severity: {severity}").format(severity=" / ".join(item.severity)))
        if item.no_rule:
            lines += ["", _("No rule enforces it:"), *_wrap(item.no_rule, indent="  ")]
        lines.append("")
    if enforcing:
        lines.append(_("Rules:") if item is not None else _("Rules that cite it:"))
        id_width = max(len(r.id) for r in enforcing)
        for rule in enforcing:
            lines.append(f"  {rule.id:<{id_width}}  {_severity_label(rule):<7}  {rule_text(rule, rule.title)}")
        lines += ["", _("`ssm explain RULE` shows one rule's documentation.")]
    elif not (item and item.no_rule):
        lines.append(_("No loaded rule enforces it."))
    return "\n".join(lines).rstrip("\n") + "\n"


def explain_text(rule, packs, *, file_shown: str | None = None) -> str:
    """One rule's documentation as plain text (Markdown-flavoured, like `ruff rule`)."""
    from ssm_rules.rulepack import all_rules, guidance_items

    everything = all_rules(packs)
    catalogue = guidance_items(packs)
    pack = next((p for p in packs if p.name == rule.pack), None)
    out: list[str] = [f"# {rule_text(rule, rule.title)} ({rule.id})", ""]
    if rule.has_finding:
        out.append(_("Severity: {severity}").format(severity=rule.severity))
    else:
        fields = ", ".join(rule.derive.fields)
        out.append(_("Derives: `{kind}` facts ({fields}); no finding of its own").format(
            kind=rule.derive.kind, fields=fields))
    out.append(_("Pack: {pack} ({file})").format(pack=rule.pack, file=file_shown or rule.file))
    if rule.guidance:
        out += ["", _("Guidance:")]
        width = max(len(g) for g in rule.guidance)
        out += [f"  {g:<{width}}  {_guidance_title(catalogue, g)}".rstrip() for g in rule.guidance]
    description = rule.description
    if description and description.what:
        out += ["", _("## What it does"), *_wrap(rule_text(rule, description.what))]
    if description and description.why:
        heading = _("## Why is this bad?") if rule.has_finding else _("## Why it matters")
        out += ["", heading, *_wrap(rule_text(rule, description.why))]
    if description and description.example:
        out += ["", _("## Example"), "```yaml", *description.example.rstrip("\n").splitlines(), "```"]
    if rule.has_finding:
        owner = _owner_text(rule)
        labels = [_("Message:"), _("Next action:"), _("Owner:"), _("Location:")]
        size = max(display.width(label) for label in labels) + 1
        message, next_action, owner_label, location = (display.pad(label, size) for label in labels)
        out += ["", _("## Finding"), f"{message}{rule_text(rule, rule.message)}",
                f"{next_action}{rule_text(rule, rule.next_action)}", f"{owner_label}{owner}"]
        if rule.location:
            out.append(f"{location}{rule.location}")
    out += _chaining(rule, everything)
    used = sorted(_settings_used(rule))
    if used and pack is not None:
        out += ["", "## Settings"]
        for name in used:
            setting = pack.settings.get(name)
            if setting is not None:
                out.append(f"  {name} = {setting.default}" + (f"  ({setting.description})" if setting.description else ""))
    if rule.examples and (rule.examples.fail or rule.examples.pass_):
        out += ["", "## Examples (checked by the test suite; `format` and `account` are filled in)"]
        verb = "fires" if rule.has_finding else "derives"
        for which, examples in (("fail", rule.examples.fail), ("pass", rule.examples.pass_)):
            for index, example in enumerate(examples, start=1):
                if which == "fail":
                    head = f"It {verb} on ({index}/{len(examples)})"
                    if example.subjects:
                        head += ": " + ", ".join(str(s) for s in example.subjects)
                else:
                    head = f"It does not {verb.rstrip('s')} on ({index}/{len(examples)})"
                out += ["", f"{head}:", "```yaml", *_yaml(example.plan), "```"]
    return "\n".join(out) + "\n"


def _owner_text(rule) -> str:
    if rule.owner == "account":
        return "the account owner"
    names = rule.names
    if rule.owner:
        return f"the owner of {names.get(rule.owner, 'contact')} `{rule.owner}` (else the account owner)"
    if names.get(rule.subject) in ("contact", "opportunity"):
        return f"the {names[rule.subject]}'s owner (else the account owner)"
    return "the account owner"


def _chaining(rule, everything) -> list[str]:
    """Forward chaining: which rules use what this one derives, and what it uses from others."""
    lines: list[str] = []
    if rule.derive:
        users = [r.id for r in everything if rule.derive.kind in r.kinds_used]
        if users:
            lines.append(f"Used by: {', '.join(users)}")
    derivers = {}
    for other in everything:
        if other.derive and other.id != rule.id:
            derivers.setdefault(other.derive.kind, []).append(other.id)
    for kind in sorted(rule.kinds_used):
        if kind in derivers:
            lines.append(f"Uses `{kind}` facts derived by: {', '.join(derivers[kind])}")
    return ["", "## Forward chaining", *lines] if lines else []


def _settings_used(rule) -> set[str]:
    from ssm_rules.rulepack import SettingRef

    used: set[str] = set()
    for pattern in rule.when:
        for test in pattern.tests():
            used |= {o.setting for o in test.operands if isinstance(o, SettingRef)}
    for text in (rule.message, rule.next_action, rule.location):
        used |= set(re.findall(r"\{settings\.([A-Za-z_][A-Za-z0-9_]*)", text or ""))
    return used


def _guidance_title(catalogue: dict, guidance_id: str) -> str:
    item = catalogue.get(guidance_id.upper())
    return pack_text(item.pack, item.id, item.title) if item else ""


def _wrap(text: str, indent: str = "") -> list[str]:
    text = " ".join(text.split())
    if not text.isascii():  # Chinese has no spaces to break at, and takes two columns a character
        return display.wrap(text, WIDTH, indent=indent) or [""]
    return textwrap.wrap(text, width=WIDTH, initial_indent=indent, subsequent_indent=indent,
                         break_on_hyphens=False) or [""]


def _yaml(data: dict) -> list[str]:
    import yaml

    class Dumper(yaml.SafeDumper):
        def increase_indent(self, flow: bool = False, indentless: bool = False):
            return super().increase_indent(flow, False)

    def sequence(dumper: yaml.SafeDumper, items: list):
        flow = all(isinstance(item, (str, int, float, bool)) for item in items)  # [a, b] as in the rule files
        return dumper.represent_sequence("tag:yaml.org,2002:seq", items, flow_style=flow)

    Dumper.add_representer(list, sequence)
    Dumper.add_representer(tuple, sequence)
    text = yaml.dump(data, Dumper=Dumper, sort_keys=False, allow_unicode=True, default_flow_style=False,
                     width=WIDTH)
    return text.rstrip("\n").splitlines()
