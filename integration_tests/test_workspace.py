"""Contracts every package keeps: declared dependencies match imports, public names are documented, each package
has a README and a docs page, and the dependency table of the design is respected."""

from __future__ import annotations

import ast
import importlib
import inspect
import re
from pathlib import Path

import pytest
import tomllib

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = sorted(p for p in (ROOT / "packages").iterdir() if (p / "pyproject.toml").is_file())
# Which ming packages each package may depend on (DESIGN.md's table); ming-testdata only through `test` extras.
ALLOWED = {
    "ming-videorope": set(),
    "ming-testdata": set(),
    "ming-moe": {"ming-videorope"},
    "ming-speech-tokenizer": set(),
    "ming-contextasr": set(),
    "ming-tts-head": set(),
    "ming-imagegen": set(),
    "ming-genseg": {"ming-imagegen"},
    "ming-omni": {
        "ming-videorope",
        "ming-moe",
        "ming-speech-tokenizer",
        "ming-contextasr",
        "ming-tts-head",
        "ming-imagegen",
        "ming-genseg",
    },
}


def _project(package: Path) -> dict:
    return tomllib.loads((package / "pyproject.toml").read_text())["project"]


def _name(requirement: str) -> str:
    return re.split(r"[\s\[<>=!~;]", requirement, maxsplit=1)[0].lower()


def _ming_imports(folder: Path) -> set[str]:
    found = set()
    for path in folder.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            names = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            found |= {n.split(".")[0].replace("_", "-") for n in names if n.startswith("ming_")}
    return found


@pytest.mark.parametrize("package", PACKAGES, ids=lambda p: p.name)
def test_package_declares_what_it_imports_and_nothing_forbidden(package):
    project = _project(package)
    assert project["name"] == package.name, "the folder is named after the distribution"
    runtime = {_name(r) for r in project.get("dependencies", []) if _name(r).startswith("ming-")}
    test_extra = {
        _name(r) for r in project.get("optional-dependencies", {}).get("test", []) if _name(r).startswith("ming-")
    }
    assert runtime <= ALLOWED[package.name], f"{package.name} depends on {runtime - ALLOWED[package.name]}"
    source_imports = _ming_imports(package / "src") - {package.name}
    assert source_imports <= runtime, f"{package.name} imports {source_imports - runtime} without declaring it"
    test_imports = _ming_imports(package / "tests") - {package.name}
    assert test_imports <= runtime | test_extra, f"tests import {test_imports - runtime - test_extra} undeclared"


@pytest.mark.parametrize("package", PACKAGES, ids=lambda p: p.name)
def test_public_names_exist_and_are_documented(package):
    module = importlib.import_module(package.name.replace("-", "_"))
    assert module.__doc__, f"{package.name} has no module docstring"
    exported = getattr(module, "__all__", None)
    assert exported, f"{package.name} has no __all__"
    undocumented = []
    for name in exported:
        obj = getattr(module, name)  # AttributeError if __all__ lists a missing name
        if (inspect.isfunction(obj) or inspect.isclass(obj)) and not inspect.getdoc(obj):
            undocumented.append(name)
    assert not undocumented, f"{package.name}: no docstring on {undocumented}"


@pytest.mark.parametrize("package", PACKAGES, ids=lambda p: p.name)
def test_every_package_has_a_readme_and_a_docs_page_in_the_nav(package):
    assert (package / "README.md").read_text().startswith(f"# {package.name}")
    page = ROOT / "docs" / "packages" / f"{package.name}.md"
    assert page.is_file(), f"missing docs page {page.relative_to(ROOT)}"
    assert f"packages/{package.name}.md" in (ROOT / "mkdocs.yml").read_text(), "docs page not in mkdocs nav"
    assert f"::: {package.name.replace('-', '_')}" in page.read_text(), "docs page has no API section"
