"""The Chinese catalogs use the method's terms as docs/glossary.md lists them."""

from __future__ import annotations

import re

import pytest

from conftest import ROOT
from ssm_rules import i18n

GLOSSARY = ROOT / "docs" / "glossary.md"
CATALOGS = sorted(ROOT.glob("rules/*/locale/*/LC_MESSAGES/rules.po"))


def glossary() -> list[tuple[str, str, str, bool]]:
    text = GLOSSARY.read_text(encoding="utf-8")
    table = text.split("<!-- glossary table")[1].split("<!-- end of glossary table -->")[0]
    rows = []
    for line in table.splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if len(cells) == 4 and cells[0] not in ("English", "---"):
            english = re.sub(r"\s*\(.*?\)", "", cells[0])
            # "勢在必得(的商機)": the part in full-width brackets is optional.
            hant, hans = (re.sub(r"[(\uff08].*?[)\uff09]", "", cell) for cell in cells[1:3])
            rows.append((english, hant, hans, cells[3] == "yes"))
    return rows


def english_words(text: str) -> str:
    """The English of a catalog entry without its code and placeholders (they stay English)."""
    return re.sub(r"`[^`]*`|\{[^}]*\}", "", text)


def test_the_glossary_lists_the_seed_terms():
    terms = {english: (hant, hans) for english, hant, hans, _ in glossary()}
    assert terms["key decision leader"] == ("關鍵決策負責人", "关键决策负责人")
    assert terms["approver"] == ("批準者", "批准者") and terms["sponsor"] == ("贊助者", "赞助者")
    assert {terms[t][0] for t in ("benefit owner", "evaluator", "influencer")} == {"受益人", "評估者", "影響者"}
    assert sum(checked for *_, checked in glossary()) >= 15
    assert all(english and hant and hans for english, hant, hans, _ in glossary())
    assert terms["must-win"] == ("勢在必得", "势在必得")


@pytest.mark.parametrize("po", CATALOGS, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_translation_uses_the_glossary_terms(po):
    language = po.parent.parent.name
    assert language in ("zh_Hant", "zh_Hans")
    catalog = i18n.read_po(po)
    missing = []
    for english, hant, hans, checked in glossary():
        if not checked:
            continue
        chinese = hant if language == "zh_Hant" else hans
        pattern = re.compile(rf"\b{re.escape(english)}(s|'s)?\b", re.IGNORECASE)
        for message in catalog:
            if message.id and message.string and pattern.search(english_words(message.id)) \
                    and chinese not in message.string:
                missing.append(f"{message.context}: {english!r} is not {chinese!r} in {message.string[:60]!r}")
    assert missing == []


@pytest.mark.parametrize("pack", ["focus", "stages"])
def test_both_packs_are_translated_completely_into_both_scripts(pack):
    from ssm_rules import catalogs
    from ssm_rules.rulepack import load_packs

    loaded = next(p for p in load_packs([]) if p.name == pack)
    messages = catalogs.pack_messages(loaded)
    found = dict(catalogs.pack_catalogs(loaded.directory))
    assert set(found) == {"zh_Hant", "zh_Hans"}
    for language, po in found.items():
        report = catalogs.check_catalog(po, messages)
        # A rule whose English changed needs its entry in both .po files updated: `ssm rules
        # --check-translations` names them; docs/glossary.md says how.
        assert report.untranslated == 0 and report.problems == [], (language, [str(p) for p in report.problems])


def test_simplified_catalogs_hold_no_traditional_only_characters():
    # A handful of characters that exist only in Traditional text: one of them in a zh_Hans
    # catalog means a translation was copied without being converted.
    traditional = set("關鍵決負責贊獲評確認規劃戶機會門這裡說們幫")
    for po in CATALOGS:
        if po.parent.parent.name == "zh_Hans":
            leaked = sorted(traditional & set(po.read_text(encoding="utf-8")))
            assert leaked == [], (po, leaked)
