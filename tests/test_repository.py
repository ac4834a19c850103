"""The repository stands on its own: a clone holds every document it refers to, and the
documents keep up with the code they describe."""

from __future__ import annotations

import os
import re
import subprocess
import tomllib
import typing

import pytest
from pydantic import BaseModel

from conftest import ROOT
from ssm_rules.model import Outcomes, Plan

# Places outside the repository that files were once written against (split so that this file
# does not hold them): a clone does not have them.
OUTSIDE = ("../" + "shared", "shared" + "/spec", "shared" + "/notes", "shared" + "/")
SKIPPED_DIRECTORIES = {"build", "dist", "__pycache__"}


def repository_files() -> list[str]:
    """Every file a commit would hold: tracked, or new and not ignored (relative paths)."""
    try:
        listed = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
                                cwd=ROOT, capture_output=True, check=True).stdout
        return [name for name in listed.decode("utf-8").split("\0") if name and (ROOT / name).is_file()]
    except (OSError, subprocess.CalledProcessError):  # not a git checkout (an unpacked sdist)
        files = []
        for folder, directories, names in os.walk(ROOT):
            directories[:] = [d for d in directories if not d.startswith(".") and d not in SKIPPED_DIRECTORIES
                              and not d.endswith(".egg-info")]
            files += [os.path.relpath(os.path.join(folder, name), ROOT) for name in names]
        return files


FILES = repository_files()


def test_no_file_refers_to_places_outside_the_repository():
    assert len(FILES) > 100 and "README.md" in FILES
    found = []
    for name in FILES:
        text = (ROOT / name).read_bytes().decode("utf-8", errors="replace")
        for number, line in enumerate(text.splitlines(), start=1):
            if any(outside in line for outside in OUTSIDE):
                found.append(f"{name}:{number}: {line.strip()}")
    assert found == [], "\n".join(found)


def test_the_license_is_the_one_pyproject_declares():
    declared = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]["license"]
    assert "Apache-2.0" in str(declared)
    text = (ROOT / "LICENSE").read_text(encoding="utf-8")
    assert "Apache License" in text and "Version 2.0, January 2004" in text
    assert "END OF TERMS AND CONDITIONS" in text and len(text.split()) > 1500  # the full text, not a pointer


MARKDOWN_LINK = re.compile(r"\]\(([^)\s]+)\)")


@pytest.mark.parametrize("page", sorted(name for name in FILES if name.endswith(".md")))
def test_relative_links_in_the_documents_lead_to_files(page):
    broken = []
    for target in MARKDOWN_LINK.findall((ROOT / page).read_text(encoding="utf-8")):
        if re.match(r"[a-z]+:", target) or target.startswith("#"):
            continue  # a web address, or a place on the same page
        path = (ROOT / page).parent / target.split("#")[0]
        if not path.exists():
            broken.append(target)
    assert broken == []


def field_paths(model: type[BaseModel], prefix: str = "") -> list[str]:
    """Every key of the plan format that holds a value (not more keys), as docs/plan-format.md
    writes it: `opportunities[].name`."""
    paths = []
    for name, field in model.model_fields.items():
        path = f"{prefix}{name}"
        inner = _model_in(field.annotation)
        if inner is None:
            paths.append(path)
            continue
        is_list = "list[" in str(field.annotation)
        if model is Outcomes:  # the six outcomes have the same keys: documented once, as <outcome>
            path = f"{prefix}<outcome>"
        paths += field_paths(inner, f"{path}[]." if is_list else f"{path}.")
    return paths


def _model_in(annotation) -> type[BaseModel] | None:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for argument in typing.get_args(annotation):
        found = _model_in(argument)
        if found is not None:
            return found
    return None


def test_every_field_of_the_plan_format_is_documented():
    page = (ROOT / "docs" / "plan-format.md").read_text(encoding="utf-8")
    paths = [path for path in field_paths(Plan) if path != "format"]
    assert "account.owner" in paths and "opportunities[].outcomes.<outcome>.by" in paths
    missing = [path for path in paths if f"| `{path}` |" not in page]
    assert missing == [], "document these keys in docs/plan-format.md's tables: " + ", ".join(missing)
