"""Every generated file is what `tools/generate.py` makes from its source, and the tool's
`--check` (which .ci/run runs) names what is stale."""

from __future__ import annotations

import pytest

from conftest import ROOT, generate_tool

generate = generate_tool()


# The golden files have their own test in test_formats.py (SSM_UPDATE_GOLDEN=1 rewrites them).
@pytest.mark.parametrize("target", [t for t in generate.TARGETS if not t.path.startswith("tests/golden/")],
                         ids=lambda target: target.path)
def test_the_generated_file_is_up_to_date(target):
    path = ROOT / target.path
    current = path.read_bytes() if target.binary else path.read_text(encoding="utf-8")
    assert target.make(current) == current, (
        f"{target.path} is stale: run `.venv/bin/python tools/generate.py` and review the diff")


def test_every_generated_page_part_has_its_markers_once():
    for page, names in {"docs/guidance.md": ["focus catalogue", "stages catalogue"],
                        "docs/rule-language.md": ["facts table"], "docs/plan-format.md": ["complete example"]}.items():
        text = (ROOT / page).read_text(encoding="utf-8")
        for name in names:
            assert text.count(f"<!-- generated: {name} (") == 1 and text.count(f"<!-- end of generated: {name} -->") == 1


def test_only_the_part_between_the_markers_is_replaced():
    text = "# Page\nby hand\n<!-- generated: table (from x) -->\nold\nrows\n<!-- end of generated: table -->\nafter\n"
    assert generate.replace_generated(text, "table", "new\n") == (
        "# Page\nby hand\n<!-- generated: table (from x) -->\nnew\n<!-- end of generated: table -->\nafter\n")
    with pytest.raises(generate.StaleMarkers, match="found 0"):
        generate.replace_generated("no markers\n", "table", "new")


def test_check_names_the_stale_files_and_writes_nothing(tmp_path, monkeypatch, capsys):
    page = tmp_path / "page.md"
    page.write_text("<!-- generated: part (test) -->\nold\n<!-- end of generated: part -->\n")
    monkeypatch.setattr(generate, "ROOT", tmp_path)
    monkeypatch.setattr(generate, "TARGETS", [
        generate.Target("page.md", lambda current: generate.replace_generated(current, "part", "new")),
        generate.Target("same.txt", lambda current: current)])
    (tmp_path / "same.txt").write_text("unchanged\n")
    assert generate.main(["--check"]) == 1
    assert capsys.readouterr().err == "page.md: stale; run `python tools/generate.py` and review the diff\n"
    assert "old" in page.read_text()
    assert generate.main([]) == 0
    assert capsys.readouterr().out == "regenerated page.md\n"
    assert page.read_text() == "<!-- generated: part (test) -->\nnew\n<!-- end of generated: part -->\n"
    assert generate.main(["--check"]) == 0
    assert sorted(path.name for path in tmp_path.iterdir()) == ["page.md", "same.txt"]  # no scratch file left


def test_a_page_without_its_markers_is_named(tmp_path, monkeypatch, capsys):
    (tmp_path / "page.md").write_text("the markers were deleted\n")
    monkeypatch.setattr(generate, "ROOT", tmp_path)
    monkeypatch.setattr(generate, "TARGETS", [
        generate.Target("page.md", lambda current: generate.replace_generated(current, "part", "new"))])
    assert generate.main(["--check"]) == 2
    assert capsys.readouterr().err.startswith("tools/generate.py: page.md: expected one `<!-- generated: part")
