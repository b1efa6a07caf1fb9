"""The website builds from scratch with no Sphinx warning, and every chapter page is there.

This runs the build command of README.md into a temporary folder (once per pytest
run: the `book_build` fixture of tests/conftest.py, shared with tests/test_browser.py):

    jupyter-book build . --all -W -n --keep-going

`-W` turns warnings (a broken cross-reference, a missing citation key, bad math,
an unknown directive) into a failure, `-n` also reports every unresolved
reference, and `--keep-going` reports all of them at once. `--all` matters: an
incremental build would skip unchanged pages and miss their warnings.
"""

from __future__ import annotations

import html
import re

import nbformat
import pytest

from tools.execute import ROOT, colab_url, toc_files

TOC_CHAPTERS = [name for name in toc_files() if name.startswith("chapters/")]


@pytest.fixture
def build(book_build, record_property):
    """The session's one build (tests/conftest.py); returns (returncode, log, html_dir)."""
    record_property("book_build_s", book_build.seconds)
    return book_build.returncode, book_build.log, book_build.html


def _words(text: str) -> list[str]:
    return re.findall(r"[A-Za-z0-9]+", text)


def _title(notebook_path) -> str:
    first = nbformat.read(notebook_path, as_version=4).cells[0].source
    return first.splitlines()[0].removeprefix("# ").strip()


def test_book_builds_without_warnings(build):
    returncode, log, _ = build
    warnings = [line for line in log.splitlines() if "WARNING" in line]
    assert returncode == 0 and not warnings, (
        f"jupyter-book build exited with {returncode} and {len(warnings)} warning(s):\n"
        + "\n".join(warnings) + "\n\n--- full log ---\n" + log
    )


def test_landing_page(build):
    _, log, site = build
    page = site / "intro.html"
    assert page.exists(), f"no intro.html in the build\n{log}"
    text = page.read_text(encoding="utf-8")
    assert "Energy-Based Models" in text
    assert 'id="bibliography"' in text, "the landing page lost its bibliography"


@pytest.mark.parametrize("name", TOC_CHAPTERS)
def test_chapter_page(build, name):
    _, log, site = build
    page = site / f"{name}.html"
    assert page.exists(), f"no page {page.relative_to(site)} in the build\n{log}"
    text = page.read_text(encoding="utf-8")

    match = re.search(r"<h1[^>]*>(.*?)</h1>", text, flags=re.S)
    assert match, "the page has no <h1>"
    heading = html.unescape(re.sub(r"<[^>]+>", " ", match.group(1)))
    title = _title(ROOT / f"{name}.ipynb")
    assert _words(title) == _words(heading), f"page title {heading.strip()!r} is not the chapter title {title!r}"

    link = colab_url(name)
    assert link in text, f"no Colab link {link} on the page (it comes from _config.yml's repository block)"


@pytest.mark.parametrize("name", toc_files())
def test_page_loads_no_remote_scripts(build, name):
    # The site serves MathJax and the widget scripts itself (tools/site_assets.py), so a
    # reader offline still gets typeset math and widgets; tests/test_browser.py checks
    # the same in a browser, this catches it without one
    _, log, site = build
    page = site / f"{name}.html"
    assert page.exists(), f"no page {page.relative_to(site)} in the build\n{log}"
    text = page.read_text(encoding="utf-8")
    remote = re.findall(r"<script[^>]*\ssrc=\"((?:https?:)?//[^\"]+)\"", text)
    remote += re.findall(r"<link[^>]*\srel=\"stylesheet\"[^>]*\shref=\"((?:https?:)?//[^\"]+)\"", text)
    assert not remote, f"the page loads scripts or styles from other hosts: {remote}"
    for src in re.findall(r"<script[^>]*\ssrc=\"([^\"]*site-assets/[^\"?]+)", text):
        assert (page.parent / src).resolve().is_file(), f"the page loads {src}, which is not in the site"
