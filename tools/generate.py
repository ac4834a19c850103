"""Regenerate every generated file of the repository, or check that none is stale.

    .venv/bin/python tools/generate.py           # rewrite the stale files and name them
    .venv/bin/python tools/generate.py --check   # write nothing; exit 1 naming the stale files

Each generated file (or generated part of a hand-written page) and where it comes from:

    ssm_rules/plan_shape.json        the pydantic model (ssm_rules/model.py): the plain path's shape
    schema/ssm-plan-1.schema.json    the pydantic model: the JSON Schema (`ssm schema`)
    docs/rules.md                    the rule packs (`ssm rules --format markdown`)
    docs/rule-language.md            its facts table: ssm_rules/facts.py FACT_FIELDS
    docs/guidance.md                 its catalogue tables: rules/*/guidance.yaml
    docs/plan-format.md              its complete example: docs/example-plan.yaml
    tests/golden/facts.*             `ssm check facts/` in every output format, as of 2026-11-27
    tests/golden/pipeline.*          `ssm pipeline facts/` in every output format, as of 2026-11-27
    rules/*/locale/rules.pot         each built-in pack's translatable texts (ssm_rules.catalogs)
    ssm_rules/locale/ssm.pot         the program's `_()` texts, from ssm_rules/**.py and the templates
    */LC_MESSAGES/*.mo               compiled from the `.po` beside them (committed: a clone installs,
                                     and the wheel carries them, without Babel at build time)

A generated part of a page sits between `<!-- generated: NAME ... -->` and
`<!-- end of generated: NAME -->`; everything outside the markers is written by hand. The test
suite runs the same check (tests/test_generated.py), and so does .ci/run.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
GOLDEN_AS_OF = "2026-11-27"
# --format -> extension of its golden file
GOLDEN_FORMATS = {"text": "txt", "json": "json", "sarif": "sarif", "junit": "xml", "github": "txt",
                  "gitlab": "json", "markdown": "md"}
GOLDEN_PIPELINE_FORMATS = {"text": "txt", "json": "json", "markdown": "md", "csv": "csv"}


@dataclass(frozen=True)
class Target:
    """One generated file: `make(current_text)` returns what the file should hold."""

    path: str
    make: Callable[[str], str] | Callable[[bytes], bytes]
    binary: bool = False


# ---- the producers ------------------------------------------------------------------------------


def plan_shape(_current: str) -> str:
    from ssm_rules import model

    return model.shape_json()


def plan_schema(_current: str) -> str:
    from ssm_rules.schema import plan_schema as schema

    return json.dumps(schema(), indent=2) + "\n"  # as `ssm schema` prints it


def rules_reference(_current: str) -> str:
    return _ssm("rules", "--format", "markdown", expect_exit=0)


def golden_output(output_format: str) -> str:
    """`ssm check facts` in one format, as the golden file holds it (the samples have errors on
    purpose, so it exits 1)."""
    return _ssm("check", "facts", "--as-of", GOLDEN_AS_OF, "--format", output_format, "--isolated",
                "--no-cache", expect_exit=1)


def golden_pipeline(output_format: str) -> str:
    """`ssm pipeline facts` in one format, as the golden file holds it (the text at its default
    width, 120 columns: `_ssm` runs without $COLUMNS)."""
    return _ssm("pipeline", "facts", "--as-of", GOLDEN_AS_OF, "--format", output_format, "--isolated",
                "--no-cache", expect_exit=0, stdout_only=True)


def facts_table(current: str) -> str:
    from ssm_rules.facts import FACT_FIELDS

    lines = ["| kind | field | type | what it holds |", "|---|---|---|---|"]
    for kind, fields in FACT_FIELDS.items():
        for index, (name, (field_type, meaning)) in enumerate(fields.items()):
            shown = "true/false" if field_type == "boolean" else field_type
            lines.append(f"| {f'`{kind}`' if index == 0 else ''} | `{name}` | {shown} | {_cell(meaning)} |")
    return replace_generated(current, "facts table", "\n".join(lines))


def guidance_tables(current: str) -> str:
    from ssm_rules.rulepack import load_catalogue

    for path in sorted((ROOT / "rules").glob("*/guidance.yaml")):
        catalogue = load_catalogue(path, path.parent.name)
        out: list[str] = []
        section = None
        for item in catalogue.items:
            if item.section != section:
                section = item.section
                out += ["" if out else None, f"### {section}", "",
                        "| ID | guidance | what the rules look for | default |", "|---|---|---|---|"]
            default = " / ".join(item.severity) or ("no rule: " + item.no_rule if item.no_rule else "–")
            out.append(f"| {item.id} | {_cell(item.title)} | {_cell(item.looks_for or '')} | {_cell(default)} |")
        current = replace_generated(current, f"{path.parent.name} catalogue",
                                    "\n".join(line for line in out if line is not None))
    return current


def example_plan(current: str) -> str:
    example = (ROOT / "docs" / "example-plan.yaml").read_text(encoding="utf-8")
    return replace_generated(current, "complete example", f"```yaml\n{example.rstrip()}\n```")


def pack_template(name: str) -> Callable[[str], str]:
    def make(_current: str) -> str:
        from ssm_rules import catalogs
        from ssm_rules.rulepack import load_packs

        (pack,) = [p for p in load_packs([]) if p.name == name]
        return catalogs.template(catalogs.pack_messages(pack), pack.name).decode("utf-8")

    return make


def program_template(_current: str) -> str:
    from ssm_rules import catalogs

    # Paths relative to the package, whichever checkout runs this.
    return catalogs.program_template().decode("utf-8").replace(str(ROOT / "ssm_rules") + "/", "")


def compiled_catalog(po: Path) -> Callable[[bytes], bytes]:
    def make(_current: bytes) -> bytes:
        from ssm_rules import catalogs

        return catalogs.compile_mo(po)

    return make


def catalog_targets() -> list[Target]:
    targets = [Target(f"rules/{pack.name}/locale/rules.pot", pack_template(pack.name))
               for pack in sorted((ROOT / "rules").glob("*/pack.yaml"))
               for pack in [pack.parent]]
    targets.append(Target("ssm_rules/locale/ssm.pot", program_template))
    for po in sorted([*ROOT.glob("rules/*/locale/*/LC_MESSAGES/rules.po"),
                      *ROOT.glob("ssm_rules/locale/*/LC_MESSAGES/ssm.po")]):
        targets.append(Target(str(po.with_suffix(".mo").relative_to(ROOT)), compiled_catalog(po), binary=True))
    return targets


TARGETS = [
    Target("ssm_rules/plan_shape.json", plan_shape),
    Target("schema/ssm-plan-1.schema.json", plan_schema),
    Target("docs/rules.md", rules_reference),
    Target("docs/rule-language.md", facts_table),
    Target("docs/guidance.md", guidance_tables),
    Target("docs/plan-format.md", example_plan),
    *(Target(f"tests/golden/facts.{name}.{extension}", lambda _current, name=name: golden_output(name))
      for name, extension in GOLDEN_FORMATS.items()),
    *(Target(f"tests/golden/pipeline.{name}.{extension}", lambda _current, name=name: golden_pipeline(name))
      for name, extension in GOLDEN_PIPELINE_FORMATS.items()),
    *catalog_targets(),
]


# ---- helpers --------------------------------------------------------------------------------------


class StaleMarkers(Exception):
    """A page lacks the markers of a generated part (or holds them twice)."""


def replace_generated(text: str, name: str, content: str) -> str:
    """`text` with the part between the markers of `name` replaced by `content`."""
    pattern = re.compile(rf"(<!-- generated: {re.escape(name)} .*?-->\n)(.*?)(<!-- end of generated: "
                         rf"{re.escape(name)} -->)", re.DOTALL)
    found = pattern.findall(text)
    if len(found) != 1:
        raise StaleMarkers(f"expected one `<!-- generated: {name} (...) -->` ... `<!-- end of generated: "
                           f"{name} -->` pair, found {len(found)}")
    return pattern.sub(lambda match: match.group(1) + content.rstrip("\n") + "\n" + match.group(3), text)


def _cell(text: str) -> str:
    """Text for one Markdown table cell."""
    return " ".join(text.split()).replace("|", "\\|")


def _ssm(*args: str, expect_exit: int, stdout_only: bool = False) -> str:
    """The output of `ssm ARGS`, run in this process from the repository's root without colour;
    `stdout_only`: standard output alone, byte for byte (click's `output` turns CRLF into LF)."""
    from click.testing import CliRunner

    from ssm_rules.cli import main

    previous = os.getcwd()
    os.chdir(ROOT)
    try:
        result = CliRunner().invoke(main, list(args), env={"NO_COLOR": None, "FORCE_COLOR": None, "COLUMNS": None,
                                                           "SSM_LANG": "en"})
    finally:
        os.chdir(previous)
    if result.exception and not isinstance(result.exception, SystemExit):
        raise result.exception
    if result.exit_code != expect_exit:
        raise RuntimeError(f"`ssm {' '.join(args)}` exited {result.exit_code}, not {expect_exit}:\n{result.output}")
    return result.stdout_bytes.decode("utf-8") if stdout_only else result.output


def stale(targets: list[Target] | None = None) -> dict[str, str | bytes]:
    """Path -> the text (bytes) it should hold, for every target whose file differs (or is missing)."""
    out: dict[str, str | bytes] = {}
    for target in TARGETS if targets is None else targets:
        path = ROOT / target.path
        if target.binary:
            current = path.read_bytes() if path.exists() else b""
        else:
            # Bytes, not read_text: that would turn the CSV's CRLF (RFC 4180) into LF.
            current = path.read_bytes().decode("utf-8") if path.exists() else ""
        try:
            wanted = target.make(current)
        except StaleMarkers as error:
            raise StaleMarkers(f"{target.path}: {error}") from None
        if wanted != current:
            out[target.path] = wanted
    return out


def _write(path: Path, text: str | bytes) -> None:
    """Atomically: a reader never sees half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    scratch = path.with_name(f".{path.name}.generating")
    scratch.write_bytes(text if isinstance(text, bytes) else text.encode("utf-8"))
    os.replace(scratch, path)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Regenerate every generated file of the repository.",
                                     epilog="Run it after changing the model, a rule, FACT_FIELDS, a "
                                            "guidance catalogue, the example plan or an output format.")
    parser.add_argument("--check", action="store_true",
                        help="write nothing; exit 1 and name the stale files (for CI)")
    args = parser.parse_args(argv)
    try:
        changes = stale()
    except StaleMarkers as error:
        print(f"tools/generate.py: {error}", file=sys.stderr)
        return 2
    if args.check:
        for path in changes:
            print(f"{path}: stale; run `python tools/generate.py` and review the diff", file=sys.stderr)
        if not changes:
            print(f"{len(TARGETS)} generated files are up to date.", file=sys.stderr)
        return 1 if changes else 0
    for path, text in changes.items():
        _write(ROOT / path, text)
        print(f"regenerated {path}")
    if not changes:
        print(f"{len(TARGETS)} generated files are up to date.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
