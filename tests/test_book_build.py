"""The website builds from scratch with no Sphinx warning, and every chapter page is there.

This runs the build command of README.md into a temporary folder:

    jupyter-book build . --all -W -n --keep-going

`-W` turns warnings (a broken cross-reference, a missing citation key, bad math,
an unknown directive) into a failure, `-n` also reports every unresolved
reference, and `--keep-going` reports all of them at once. `--all` matters: an
incremental build would skip unchanged pages and miss their warnings.
"""

from __future__ import annotations

import html
import re
import subprocess
import sys

import nbformat
import pytest

from tools.execute import ROOT, colab_url, toc_files

TOC_CHAPTERS = [name for name in toc_files() if name.startswith("chapters/")]
ANSI = re.compile(r"\x1b\[[0-9;]*m")
# `python -m jupyter_book` does not exist; call its command-line entry point
# with this interpreter, so the test does not depend on PATH
JUPYTER_BOOK = [sys.executable, "-c", "import sys; from jupyter_book.cli.main import main; sys.exit(main())"]


@pytest.fixture(scope="module")
def build(tmp_path_factory):
    """Build the book once into a fresh folder; returns (returncode, log, html_dir)."""
    out = tmp_path_factory.mktemp("book")
    args = ["build", str(ROOT), "--path-output", str(out), "--all", "-W", "-n", "--keep-going"]
    proc = subprocess.run(
        JUPYTER_BOOK + args, capture_output=True, text=True, encoding="utf-8", errors="replace",
        timeout=600,
    )
    log = ANSI.sub("", proc.stdout + proc.stderr)
    return proc.returncode, log, out / "_build" / "html"


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
