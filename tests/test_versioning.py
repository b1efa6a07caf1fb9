"""The book and the package carry one version number, everywhere it is written.

The version is declared once, as ``__version__`` in ebmbook/__init__.py. These tests check
that everything else that names a version agrees with it: the installed package metadata,
pyproject.toml (which must read the version from ebmbook, not repeat it), the top release of
CHANGELOG.md, the citation on the landing page, and the git tag that the first cell of every
chapter installs. (tests/test_hygiene.py checks the rest of that cell's text.)
"""

from __future__ import annotations

import importlib.metadata
import re
import tomllib

import nbformat
import pytest

import ebmbook
from tools.execute import ROOT, package_version

VERSION_RE = r"\d+\.\d+\.\d+"
CHAPTERS = sorted((ROOT / "chapters").glob("*.ipynb"))


def test_version_is_semantic():
    assert re.fullmatch(VERSION_RE, ebmbook.__version__), (
        f"ebmbook.__version__ = {ebmbook.__version__!r} is not MAJOR.MINOR.PATCH"
    )
    assert package_version() == ebmbook.__version__


def test_pyproject_reads_the_version_from_the_package():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    if "version" in project["project"]:
        assert project["project"]["version"] == ebmbook.__version__, (
            "pyproject.toml and ebmbook.__version__ name different versions; keep the version "
            "only in ebmbook/__init__.py and declare it dynamic in pyproject.toml"
        )
    else:
        assert "version" in project["project"].get("dynamic", []), "pyproject.toml declares no version"
        attr = project["tool"]["setuptools"]["dynamic"]["version"]["attr"]
        assert attr == "ebmbook.__version__", f"pyproject.toml reads the version from {attr}"


def test_installed_metadata_matches():
    installed = importlib.metadata.version("ebmbook")
    assert installed == ebmbook.__version__, (
        f"the installed package metadata says {installed}, the source says {ebmbook.__version__}: "
        "reinstall with `python -m pip install -e .`"
    )


def _changelog_versions() -> list[str]:
    text = (ROOT / "CHANGELOG.md").read_text(encoding="utf-8")
    return re.findall(rf"^## \[({VERSION_RE})\] - \d{{4}}-\d{{2}}-\d{{2}}$", text, flags=re.MULTILINE)


def test_changelog_top_release_is_the_package_version():
    versions = _changelog_versions()
    assert versions, "CHANGELOG.md has no '## [X.Y.Z] - YYYY-MM-DD' release heading"
    assert versions[0] == ebmbook.__version__, (
        f"the newest release in CHANGELOG.md is {versions[0]}, the package is {ebmbook.__version__}; "
        "move the Unreleased entries under a heading for the new version"
    )
    as_tuples = [tuple(map(int, v.split("."))) for v in versions]
    assert as_tuples == sorted(as_tuples, reverse=True), f"CHANGELOG.md releases are not newest first: {versions}"
    text = (ROOT / "CHANGELOG.md").read_text(encoding="utf-8")
    assert f"[{versions[0]}]: " in text, f"CHANGELOG.md has no link reference for [{versions[0]}]"


def test_landing_page_cites_the_package_version():
    intro = (ROOT / "intro.md").read_text(encoding="utf-8")
    cited = set(re.findall(rf"version ({VERSION_RE})", intro)) | set(re.findall(rf"edition\s*=\s*\{{({VERSION_RE})\}}", intro))
    assert cited == {ebmbook.__version__}, (
        f"intro.md names the versions {sorted(cited)}; the package is {ebmbook.__version__}"
    )


@pytest.mark.parametrize("path", CHAPTERS, ids=lambda p: p.stem)
def test_chapter_installs_the_package_version(path):
    cells = [c for c in nbformat.read(path, as_version=4).cells if c.cell_type == "code"]
    assert cells, f"{path.name} has no code cell"
    tags = re.findall(r'%pip install[^\n]*"ebmbook @ git\+[^"@]+@v([^"#]+)"', cells[0].source)
    assert tags == [ebmbook.__version__], (
        f"the first cell of {path.name} installs the tags {tags}, not v{ebmbook.__version__}; "
        f"re-execute it: python tools/execute.py chapters/{path.name}"
    )
