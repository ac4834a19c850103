"""Languages: which one a run speaks, the catalogs that speak it, and what never changes with it."""

from __future__ import annotations

import json
import subprocess
import sys
import xml.etree.ElementTree as ElementTree
from pathlib import Path

import pytest

from conftest import FACTS, ROOT, dedent
from ssm_rules import catalogs, i18n
from ssm_rules.cli import main

AS_OF = "2026-11-27"
PLAN = str(FACTS / "adriatel.yaml")


def run(runner, *args, env=None, cwd=None):
    environment = {"SSM_LANG": None, "LC_ALL": None, "LC_MESSAGES": None, "LANG": None, **(env or {})}
    if cwd is not None:
        import os

        previous = os.getcwd()
        os.chdir(cwd)
        try:
            return runner.invoke(main, list(args), env=environment)
        finally:
            os.chdir(previous)
    return runner.invoke(main, list(args), env=environment)


def check_json(runner, *extra, env=None, cwd=None) -> dict:
    result = run(runner, "check", PLAN, "--as-of", AS_OF, "--format", "json", "--no-cache", "--isolated", *extra,
                 env=env, cwd=cwd)
    assert result.exit_code == 1, result.output
    return json.loads(result.stdout)


def first_message(document: dict) -> str:
    return document["plans"][0]["findings"][0]["message"]


# ---- choosing the language ----------------------------------------------------------------------


@pytest.mark.parametrize("tag, language", [
    ("zh_Hant", "zh_Hant"), ("zh-TW", "zh_Hant"), ("zh_HK.UTF-8", "zh_Hant"), ("zh-Hant-TW", "zh_Hant"),
    ("zh_Hans", "zh_Hans"), ("zh_CN.UTF-8", "zh_Hans"), ("zh", "zh_Hans"), ("zh-Hans-SG", "zh_Hans"),
    ("en_US.UTF-8", "en"), ("C", "en"), ("POSIX", "en"), ("C.UTF-8", "en"),
    ("fr_FR.UTF-8", None), ("", None), ("klingon", None),
])
def test_language_tags_are_normalized(tag, language):
    assert i18n.normalize(tag) == language


def test_lang_option_then_ssm_lang_then_configuration_then_locale(runner, tmp_path):
    english = first_message(check_json(runner))
    hant = first_message(check_json(runner, "--lang", "zh_Hant"))
    hans = first_message(check_json(runner, "--lang", "zh_Hans"))
    assert len({english, hant, hans}) == 3
    assert first_message(check_json(runner, env={"LANG": "zh_TW.UTF-8"})) == hant
    assert first_message(check_json(runner, env={"LANG": "zh_TW.UTF-8", "LC_ALL": "en_US.UTF-8"})) == english
    assert first_message(check_json(runner, env={"LANG": "fr_FR.UTF-8"})) == english  # unknown locale: English
    assert first_message(check_json(runner, env={"SSM_LANG": "zh_CN", "LANG": "zh_TW.UTF-8"})) == hans
    assert first_message(check_json(runner, "--lang", "en", env={"SSM_LANG": "zh_Hant"})) == english
    # The configuration's `lang` wins over the locale, loses to SSM_LANG and --lang.
    (tmp_path / ".ssm.toml").write_text('lang = "zh_Hant"\n')
    result = run(runner, "check", PLAN, "--as-of", AS_OF, "--format", "json", "--no-cache",
                 env={"LANG": "zh_CN.UTF-8"}, cwd=tmp_path)
    assert first_message(json.loads(result.stdout)) == hant
    result = run(runner, "check", PLAN, "--as-of", AS_OF, "--format", "json", "--no-cache",
                 env={"SSM_LANG": "en"}, cwd=tmp_path)
    assert first_message(json.loads(result.stdout)) == english


def test_the_group_option_and_commands_without_configuration_follow_it(runner, tmp_path):
    result = run(runner, "--lang", "zh_Hant", "explain", "SSM-BDU-001")
    assert result.exit_code == 0 and "關鍵決策負責人" in result.output
    result = run(runner, "explain", "G60", "--lang", "zh_Hans")  # a guidance item: its title, labels, rules
    assert result.output.startswith("G60: 确认关键决策负责人\n") and "规则：" in result.output
    assert "商机没有关键决策负责人" in result.output
    (tmp_path / ".ssm.toml").write_text('lang = "zh_Hans"\n')
    result = run(runner, "explain", "SSM-BDU-001", cwd=tmp_path)
    assert result.exit_code == 0 and "关键决策负责人" in result.output


@pytest.mark.parametrize("args, env, named", [
    (["--lang", "fr"], {}, "--lang: ssm does not speak 'fr'"),
    ([], {"SSM_LANG": "de_DE"}, "SSM_LANG: ssm does not speak 'de_DE'"),
])
def test_a_language_asked_for_by_name_that_ssm_does_not_speak_stops_the_run(runner, args, env, named):
    result = run(runner, "check", PLAN, *args, env=env)
    assert result.exit_code == 2
    assert named in result.output and "en, zh_Hant, zh_Hans" in result.output
    assert "Traceback" not in result.output


def test_an_unknown_language_in_the_configuration_names_the_file_and_key(runner, tmp_path):
    (tmp_path / ".ssm.toml").write_text('lang = "fr"\n')
    result = run(runner, "check", PLAN, cwd=tmp_path)
    assert result.exit_code == 2
    assert ".ssm.toml" in result.output and "lang" in result.output and "zh_Hant" in result.output


def test_every_command_takes_lang(runner):
    for command in (["validate"], ["check"], ["rules"], ["explain"], ["schema"], ["pipeline"], ["audit"],
                    ["history"], ["history", "prune"], ["import", "salesforce"]):
        result = run(runner, *command, "--help")
        assert result.exit_code == 0, command
        assert "--lang LANG" in result.output, command


# ---- what never changes with the language --------------------------------------------------------


HUMAN_TEXT = {"message", "text", "markdown", "description", "body"}  # gitlab: description, content.body


def skeleton(value, key=None):
    """The document with every human-readable text replaced by a marker: what must not change."""
    if isinstance(value, dict):
        return {k: skeleton(v, k) for k, v in value.items()}
    if isinstance(value, list):
        return [skeleton(item) for item in value]
    if isinstance(value, str) and key in HUMAN_TEXT:
        return "<text>"
    return value


def formatted(runner, output_format: str, language: str) -> str:
    result = run(runner, "check", str(FACTS), "--as-of", AS_OF, "--format", output_format, "--no-cache",
                 "--isolated", "--lang", language)
    assert result.exit_code == 1, result.output
    return result.stdout


def test_json_and_sarif_keep_their_structure_ids_and_fingerprints_across_languages(runner):
    for output_format in ("json", "sarif", "gitlab"):
        documents = {language: json.loads(formatted(runner, output_format, language)) for language in i18n.LANGUAGES}
        english = documents["en"]
        for language in ("zh_Hant", "zh_Hans"):
            assert skeleton(documents[language]) == skeleton(english), (output_format, language)
            assert documents[language] != english  # and the text did change
    json_document = json.loads(formatted(runner, "json", "zh_Hant"))
    findings = [f for result in json_document["plans"] for f in result["findings"]]
    assert any("商機" in f["message"] for f in findings)
    assert all(f["rule"].startswith("SSM-") and f["severity"] in ("error", "warning", "info") for f in findings)


def test_junit_keeps_its_structure_across_languages(runner):
    def shape(element):
        attributes = {k: v for k, v in element.attrib.items() if k != "message"}
        return (element.tag, attributes, [shape(child) for child in element])

    trees = {language: ElementTree.fromstring(formatted(runner, "junit", language).encode())
             for language in i18n.LANGUAGES}
    assert shape(trees["zh_Hant"]) == shape(trees["en"]) == shape(trees["zh_Hans"])


def test_a_baseline_written_in_english_matches_a_run_in_chinese(runner, tmp_path):
    baseline = tmp_path / "baseline.json"
    result = run(runner, "check", str(FACTS), "--as-of", AS_OF, "--no-cache", "--isolated",
                 "--write-baseline", str(baseline))
    assert baseline.exists(), result.output
    for language in ("zh_Hant", "zh_Hans"):
        result = run(runner, "check", str(FACTS), "--as-of", AS_OF, "--no-cache", "--isolated", "--format", "json",
                     "--baseline", str(baseline), "--lang", language)
        assert result.exit_code == 0, result.output
        assert all(r["findings"] == [] for r in json.loads(result.stdout)["plans"])


def test_the_cache_never_serves_one_language_to_another(runner, tmp_path):
    cache = str(tmp_path / "cache")
    outputs = {}
    for language in ("en", "zh_Hant", "en", "zh_Hans", "zh_Hant"):
        result = run(runner, "check", PLAN, "--as-of", AS_OF, "--format", "json", "--cache-dir", cache,
                     "--isolated", "--lang", language)
        message = first_message(json.loads(result.stdout))
        assert outputs.setdefault(language, message) == message
    assert len(set(outputs.values())) == 3


# ---- catalogs ----------------------------------------------------------------------------------------


def test_an_english_run_reads_no_catalog_and_imports_no_babel(tmp_path):
    code = ("import sys\nfrom ssm_rules.cli import main\n"
            "try:\n    main(['check', sys.argv[1], '--as-of', '2026-11-27', '--no-cache', '--isolated'])\n"
            "except SystemExit:\n    pass\n"
            "loaded = sorted(m for m in sys.modules if m == 'ssm_rules.catalogs' or m.split('.')[0] == 'babel')\n"
            "print('LOADED', loaded, file=sys.stderr)\n")
    environment = {"PATH": "/usr/bin:/bin", "SSM_LANG": "en", "HOME": str(tmp_path)}
    result = subprocess.run([sys.executable, "-c", code, PLAN], capture_output=True, text=True, env=environment,
                            cwd=tmp_path)
    assert "LOADED []" in result.stderr, result.stderr
    environment["SSM_LANG"] = "zh_Hant"  # and a Chinese run reads the compiled .mo, without Babel either
    result = subprocess.run([sys.executable, "-c", code, PLAN], capture_output=True, text=True, env=environment,
                            cwd=tmp_path)
    assert "LOADED []" in result.stderr and "商機" in result.stdout


def test_the_compiled_catalog_reads_back_as_gettext_reads_it(tmp_path):
    import gettext

    po = ROOT / "rules" / "focus" / "locale" / "zh_Hant" / "LC_MESSAGES" / "rules.po"
    data = catalogs.compile_mo(po)
    (tmp_path / "rules.mo").write_bytes(data)
    with open(tmp_path / "rules.mo", "rb") as stream:
        translations = gettext.GNUTranslations(stream)
    ours = i18n.read_mo(data)
    assert ours and all(translations.pgettext(context, msgid) == text for (context, msgid), text in ours.items())


PACK = """\
name: team
title: Our team's rules
"""
RULE = """\
id: TEAM-001
title: Account has no owner
severity: warning
when:
  - plan: p
message: "The plan for {p.account_name} names no owner."
next_action: "Name the owner of {p.account_name}."
"""


def team_pack(tmp_path: Path, translation: str | None = None) -> Path:
    pack = tmp_path / "team-rules"
    pack.mkdir()
    (pack / "pack.yaml").write_text(PACK)
    (pack / "team-001.yaml").write_text(RULE)
    if translation is not None:
        po = pack / "locale" / "zh_Hant" / "LC_MESSAGES" / "rules.po"
        po.parent.mkdir(parents=True)
        po.write_bytes(dedent(f'''
            msgid ""
            msgstr ""
            "Language: zh_Hant\\n"
            "Content-Type: text/plain; charset=UTF-8\\n"
            "Plural-Forms: nplurals=1; plural=0;\\n"

            msgctxt "TEAM-001"
            msgid "The plan for {{p.account_name}} names no owner."
            msgstr "{translation}"
            '''))
    return pack


def test_extract_messages_writes_the_template_a_translator_starts_from(runner, tmp_path):
    pack = team_pack(tmp_path)
    result = run(runner, "rules", "--rules", str(pack), "--no-builtin", "--extract-messages")
    assert result.exit_code == 0, result.output
    pot = (pack / "locale" / "rules.pot").read_text()
    assert 'msgctxt "TEAM-001"\nmsgid "The plan for {p.account_name} names no owner."\nmsgstr ""' in pot
    assert 'msgid "Name the owner of {p.account_name}."' in pot and "#. TEAM-001: next action" in pot
    assert "Generated-By" not in pot
    result = run(runner, "rules", "--extract-messages")
    assert result.exit_code == 2 and "--rules DIR" in result.output


def test_a_pack_ships_po_files_alone_and_its_findings_speak_them(runner, tmp_path):
    pack = team_pack(tmp_path, "{p.account_name} 的客戶規劃沒有負責人。")
    plan = tmp_path / "plan.yaml"
    plan.write_bytes(dedent("""
        format: ssm-plan/1
        account:
          id: acme
          name: Acme
          owner: ana
        """))
    result = run(runner, "check", str(plan), "--rules", str(pack), "--no-builtin", "--lang", "zh_Hant",
                 "--no-cache", "--isolated", "--fail-on", "never")
    assert "Acme 的客戶規劃沒有負責人。" in result.output, result.output
    assert "Name the owner of Acme." in result.output  # untranslated: English
    result = run(runner, "rules", "--rules", str(pack), "--no-builtin", "--compile-translations")
    assert result.exit_code == 0 and (pack / "locale" / "zh_Hant" / "LC_MESSAGES" / "rules.mo").exists()
    result = run(runner, "rules", "--rules", str(pack), "--no-builtin", "--check-translations")
    assert result.exit_code == 0, result.output
    assert "1 of 4 texts translated, 3 shown in English" in result.output


@pytest.mark.parametrize("translation, problem", [
    ("客戶規劃沒有負責人。", "placeholders (none) differ from the English {p.account_name}"),
    ("{p.name} 沒有負責人。", "placeholders {p.name} differ"),
    ("{p.account_name} {p.owner} 沒有負責人。", "placeholders {p.account_name, p.owner} differ"),
])
def test_check_translations_finds_a_dropped_or_added_placeholder(runner, tmp_path, translation, problem):
    pack = team_pack(tmp_path, translation)
    result = run(runner, "rules", "--rules", str(pack), "--no-builtin", "--check-translations")
    assert result.exit_code == 1
    assert "rules.po:8: error: TEAM-001 'The plan for {p.account_name} names no …': the translation's " \
           in result.output, result.output
    assert problem in result.output


def test_check_translations_finds_a_stale_mo_and_a_vanished_english_text(runner, tmp_path):
    pack = team_pack(tmp_path, "{p.account_name} 沒有負責人。")
    run(runner, "rules", "--rules", str(pack), "--no-builtin", "--compile-translations")
    po = pack / "locale" / "zh_Hant" / "LC_MESSAGES" / "rules.po"
    po.write_text(po.read_text().replace("沒有負責人", "尚無負責人"))
    result = run(runner, "rules", "--rules", str(pack), "--no-builtin", "--check-translations")
    assert result.exit_code == 1 and "rules.mo:1: error: is older than rules.po" in result.output
    (pack / "team-001.yaml").write_text(RULE.replace("names no owner", "has no owner"))
    po.with_suffix(".mo").unlink()
    result = run(runner, "rules", "--rules", str(pack), "--no-builtin", "--check-translations")
    assert result.exit_code == 0
    assert "warning: TEAM-001 'The plan for {p.account_name} names no …' translates a text the pack no longer has" \
        in result.output


def test_a_broken_catalog_is_a_warning_and_english_not_a_traceback(runner, tmp_path):
    pack = team_pack(tmp_path, "x")
    po = pack / "locale" / "zh_Hant" / "LC_MESSAGES" / "rules.po"
    po.write_bytes(b'msgid "unterminated\n')
    plan = tmp_path / "plan.yaml"
    plan.write_bytes(b"format: ssm-plan/1\naccount:\n  id: acme\n  name: Acme\n  owner: ana\n")
    result = run(runner, "check", str(plan), "--rules", str(pack), "--no-builtin", "--lang", "zh_Hant",
                 "--no-cache", "--isolated", "--fail-on", "never")
    assert result.exit_code == 0
    assert "cannot read the zh_Hant catalog" in result.output and "names no owner" in result.output


def test_the_built_in_catalogs_keep_every_placeholder():
    for pack in ("focus", "stages"):
        messages = catalogs.pack_messages(next(p for p in _packs() if p.name == pack))
        for language, po in catalogs.pack_catalogs(ROOT / "rules" / pack):
            report = catalogs.check_catalog(po, messages)
            assert report.problems == [], [str(p) for p in report.problems]
    for language, po in catalogs.program_catalogs():
        report = catalogs.check_catalog(po, None)
        assert report.problems == [], [str(p) for p in report.problems]


def _packs():
    from ssm_rules.rulepack import load_packs

    return load_packs([])


# ---- the audit's pages ---------------------------------------------------------------------------


@pytest.mark.parametrize("jobs", ["1", "2"])  # in this process, and in worker processes
def test_the_audit_pages_speak_the_language_and_declare_it(runner, tmp_path, jobs):
    out = tmp_path / "report"
    result = run(runner, "audit", str(FACTS), "--out", str(out), "--as-of", AS_OF, "--jobs", jobs, "--no-cache",
                 "--isolated", "--lang", "zh_Hans")
    assert result.exit_code in (0, 1), result.output
    page = (out / "index.html").read_text(encoding="utf-8")
    summary = (out / "summary.md").read_text(encoding="utf-8")
    assert '<html lang="zh-Hans">' in page
    assert "客户规划稽核" in page and "最重要的行动" in page and "各负责人的行动清单" in page
    assert "没有关键决策负责人" in page  # the findings too, written by the workers
    assert summary.startswith("## SSM 客户规划稽核") and "个错误" in summary and "商机" in summary
    english = tmp_path / "english"
    run(runner, "audit", str(FACTS), "--out", str(english), "--as-of", AS_OF, "--jobs", jobs, "--no-cache",
        "--isolated")
    page = (english / "index.html").read_text(encoding="utf-8")
    assert '<html lang="en">' in page and "Action lists by owner" in page and "商机" not in page


def test_catalog_text_is_trusted_and_what_fills_it_is_escaped():
    from ssm_rules.audit.words import MarkdownText, plural

    text = MarkdownText("{owner} owns it").format(owner="*evil* [link](x)")
    assert text == "\\*evil\\* \\[link\\](x) owns it"  # as markdown_escape escapes any printed value
    assert plural(1, "account") == "1 account" and plural(1234, "account") == "1,234 accounts"
    assert plural(2, "widget") == "2 widgets"  # a noun without a catalog entry: English


def test_a_quoted_text_alternative_is_translated_but_keeps_its_place():
    assert catalogs.placeholders('{c.owner|"the account team"}') == catalogs.placeholders('{c.owner|"客戶團隊"}')
    assert catalogs.placeholders('{c.owner|"the account team"}') != catalogs.placeholders("{c.owner}")
    assert catalogs.placeholders('{a.b|"x"}') != catalogs.placeholders('{"x"|a.b}')


@pytest.mark.parametrize("damage", ["truncated", "fifo"])
def test_a_damaged_or_special_mo_is_a_warning_and_english(runner, tmp_path, damage):
    import os

    pack = team_pack(tmp_path, "{p.account_name} 的客戶規劃沒有負責人。")
    mo = pack / "locale" / "zh_Hant" / "LC_MESSAGES" / "rules.mo"
    if damage == "truncated":  # the tables point past the end of the file
        mo.write_bytes(catalogs.compile_mo(mo.with_suffix(".po"))[:40])
    else:  # a FIFO would block a reader waiting for a writer
        os.mkfifo(mo)
    plan = tmp_path / "plan.yaml"
    plan.write_bytes(b"format: ssm-plan/1\naccount:\n  id: acme\n  name: Acme\n  owner: ana\n")
    result = run(runner, "check", str(plan), "--rules", str(pack), "--no-builtin", "--lang", "zh_Hant",
                 "--no-cache", "--isolated", "--fail-on", "never")
    assert result.exit_code == 0, result.output
    assert "cannot read the zh_Hant catalog" in result.output and "names no owner" in result.output


def test_no_translation_call_inside_an_f_string():
    """Babel extracts `_()` inside an f-string on Python 3.12+ but not on 3.11 (3.12 tokenizes
    f-strings into parts): the committed .pot then depends on the Python that generated it, and
    `tools/generate.py --check` failed on 3.13. Hoist the call out of the f-string."""
    import ast

    package = Path(__file__).resolve().parent.parent / "ssm_rules"
    calls = {"_", "N_", "ngettext"}
    found = []
    for module in sorted(package.rglob("*.py")):
        if "_durable" in module.parts:
            continue
        tree = ast.parse(module.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.JoinedStr):
                for inner in ast.walk(node):
                    if isinstance(inner, ast.Call) and isinstance(inner.func, ast.Name) and inner.func.id in calls:
                        found.append(f"{module.relative_to(package.parent)}:{inner.lineno}")
    assert found == []


# Words of the plan format's vocabulary and the constant text of `derive:` blocks: a Chinese run
# showed them in English inside Chinese sentences ("只支持 only qualified", "態度是 neutral").
ENGLISH_VALUES = ("key decision leader", "sponsor Ivana", "only qualified", "only identified", " neutral", "in_progress", "the power sponsor",
                  " approver ", "the client states", "conditional_approval 結果", "need_confirmed 結果",
                  "處於 qualified", "处于 qualified", "處於 identified", "处于 identified")


@pytest.mark.parametrize("language", ["zh_Hant", "zh_Hans"])
def test_vocabulary_words_and_derived_text_are_shown_in_the_run_language(runner, language):
    result = run(runner, "check", str(FACTS), "--as-of", AS_OF, "--no-cache", "--isolated", "--lang", language)
    assert result.exit_code == 1, result.output
    output = result.stdout
    assert [word for word in ENGLISH_VALUES if word in output] == []
    assert ("進行中" if language == "zh_Hant" else "进行中") in output
    # A key the reader types into the plan stays as the plan spells it.
    assert "outcomes.go_forward" in output and "outcomes.need_confirmed.by" in output


def test_only_vocabulary_fields_and_derived_constants_are_translated():
    from ssm_rules import templates

    def translate(fact, field, value):
        return f"<{value}>"

    bindings = {"o": {"kind": "opportunity", "stage": "qualified", "outcome": "go_forward"}}
    text = templates.render("at {o.stage}; see outcomes.{o.outcome}.by and `{o.outcome}`", bindings,
                            translate=translate)
    assert text == "at <qualified>; see outcomes.go_forward.by and `go_forward`"


def test_a_plan_s_own_text_is_never_translated_even_when_it_is_a_vocabulary_word(monkeypatch):
    from ssm_rules import findings
    from ssm_rules.compiler import compile_packs
    from ssm_rules.rulepack import load_packs

    monkeypatch.setenv("SSM_LANG", "zh_Hant")
    i18n.reset()
    try:
        translate = findings.value_translator(compile_packs(load_packs([])))
        contact = {"kind": "contact", "name": "neutral", "attitude": "neutral"}
        assert translate(contact, "name", "neutral") == "neutral"
        assert translate(contact, "attitude", "neutral") == "中立"
        assert translate({"kind": "supported"}, "missing", ["interest", "go_forward"]) == ["客戶興趣", "同意推進"]
        # facts.py's role phrases, also when a derived fact copies them (`ask: $v.named_sponsor`).
        assert translate({"kind": "supported"}, "ask", "sponsor neutral") == "贊助者 neutral"
        assert translate({"kind": "opportunity"}, "named_key_decision_leader", "key decision leader Ana") == "關鍵決策負責人 Ana"
    finally:
        i18n.reset()


def test_an_english_run_translates_nothing(monkeypatch):
    from ssm_rules import findings
    from ssm_rules.compiler import compile_packs
    from ssm_rules.rulepack import load_packs

    monkeypatch.setenv("SSM_LANG", "en")
    i18n.reset()
    assert findings.value_translator(compile_packs(load_packs([]))) is None
