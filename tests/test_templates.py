"""Message templates: `{NAME.FIELD}`, fallbacks, settings, literal braces, and nothing else."""

from __future__ import annotations

import pytest

from ssm_rules import templates
from ssm_rules.templates import Reference, TemplateError, parse, render

OPPORTUNITY = {"kind": "opportunity", "key": "omni", "name": "Omnichannel platform", "value": 1200000}
SPONSOR = {"kind": "contact", "key": "ana", "name": "Ana López"}


@pytest.mark.parametrize(("template", "expected"), [
    ("Opportunity '{o.name}' has no key decision leader.",
     "Opportunity 'Omnichannel platform' has no key decision leader."),
    ("Ask {sponsor.name} about {o.name}", "Ask Ana López about Omnichannel platform"),
    ("{o.title|o.name}", "Omnichannel platform"),  # first alternative with a value wins
    ("{o.title|o.key}", "omni"),
    ('{o.title|"an opportunity"}', "an opportunity"),
    ('{ o.title | "spaces are fine" }', "spaces are fine"),
    ("{o.title}", ""),  # no value and no fallback: nothing
    ("worth {o.value}", "worth 1200000"),
    ("{{literal}} and }}", "{literal} and }"),
    ("every {settings.review_days} days", "every 92 days"),
    ("no placeholders", "no placeholders"),
    ("", ""),
])
def test_render(template, expected):
    bindings = {"o": OPPORTUNITY, "sponsor": SPONSOR}
    assert render(template, bindings, {"review_days": 92}) == expected


def test_plan_values_are_inserted_as_text_never_evaluated():
    hostile = {"kind": "contact", "name": "{o.name} {0.__class__} {settings.x} %s {{"}
    assert render("Hello {c.name}!", {"c": hostile, "o": OPPORTUNITY}, {"x": 1}) == \
        "Hello {o.name} {0.__class__} {settings.x} %s {{!"


@pytest.mark.parametrize(("value", "text"), [
    (["FreshCart", "QuickBasket"], "FreshCart, QuickBasket"),
    (True, "yes"),
    (False, "no"),
    (70.0, "70"),
    (2.5, "2.5"),
    (0, "0"),
    # every item of a short list (S01 names up to six missing outcomes); a long one cut short
    (["a", "b", "c", "d", "e", "f", "g"], "a, b, c, d, e, f, g"),
    (["a", "b", "c", "d", "e", "f", "g", "h"], "a, b, c, d, e and 3 more"),
    ([f"deal {n}" for n in range(2000)], "deal 0, deal 1, deal 2, deal 3, deal 4 and 1,995 more"),
])
def test_value_text(value, text):
    assert render("{f.v}", {"f": {"v": value}}) == text


def test_absent_values_fall_through():
    fact = {"empty": "", "none": None, "nothing": []}
    assert render('{f.empty|f.none|f.nothing|"fallback"}', {"f": fact}) == "fallback"


def test_unbound_name_renders_nothing():
    assert render("[{x.name}]", {}) == "[]"


def test_references_lists_what_a_template_uses():
    template = parse('{o.name|o.key} for {sponsor.name|"?"} after {settings.review_days}')
    assert template.references() == [Reference("o", "name"), Reference("o", "key"),
                                     Reference("sponsor", "name"), Reference("settings", "review_days")]


@pytest.mark.parametrize(("template", "offset", "needle"), [
    ("Hello {o.name", 6, "without a matching `}`"),
    ("Hello o.name}", 12, "without a matching `{`"),
    ("{o}", 0, "is not a placeholder"),
    ("{o.name.first}", 0, "is not a placeholder"),
    ("{o.__class__.x}", 0, "is not a placeholder"),
    ("{0.name}", 0, "is not a placeholder"),
    ("{o.name|}", 0, "is not a placeholder"),
    ("{}", 0, "is not a placeholder"),
    ('{"unterminated}', 0, "is not a placeholder"),
    ("x {o.name()}", 2, "is not a placeholder"),
])
def test_parse_errors(template, offset, needle):
    with pytest.raises(TemplateError) as info:
        parse(template)
    assert needle in str(info.value)
    assert info.value.offset == offset


def test_has_value():
    assert not templates.has_value(None)
    assert not templates.has_value("")
    assert not templates.has_value([])
    assert templates.has_value(0)
    assert templates.has_value(False)
