"""Layout of the chapters' code as the website shows it: short cells, lines that fit.

Pure Python on the committed .ipynb files (fast; nothing is executed). The limits
below keep every code block and every printed output on the website free of a
horizontal scrollbar; tests/test_browser.py::test_no_horizontal_scroll checks the
same in Chromium.

Cells are numbered as nbval numbers them: code cells only, from 0.
"""

from __future__ import annotations

import unicodedata
from pathlib import Path

import nbformat
import pytest

from tools.execute import ROOT

CHAPTERS = sorted((ROOT / "chapters").glob("*.ipynb"))

# Characters per line that fit without a horizontal scrollbar, measured with
# Playwright in Debian's Chromium at a 1280 x 800 viewport on the site built by
# `jupyter-book build . -W -n --keep-going`: code and output are set in 14 px
# monospace, 8.43 px per character (every non-ASCII character the chapters use has
# the same advance; combining accents have none), and `pre.clientWidth` minus its
# 2 x 16 px padding leaves 652 px for a code cell (77 characters), 634 px inside a
# collapsed "hide-input" box (75) and 630 px inside an exercise solution (74); an
# output has 656 px (77 characters), 634 px inside a solution (75).
CODE_LIMIT = 77
CODE_LIMIT_HIDE_INPUT = 75
CODE_LIMIT_SOLUTION = 74
OUTPUT_LIMIT = 77
OUTPUT_LIMIT_SOLUTION = 75
MAX_CELL_LINES = 20  # non-blank lines of a code cell (bootstrap, setup, Settings and solutions excepted)
SETUP_START = "# Setup: the same in every chapter"
# What the website shows of an output: the richest representation myst-nb renders
RICHER_THAN_TEXT = ("image/png", "image/svg+xml", "text/html", "text/latex",
                    "application/vnd.jupyter.widget-view+json")

chapter = pytest.mark.parametrize("path", CHAPTERS, ids=lambda p: p.stem)


def _rel(path: Path) -> str:
    return path.relative_to(ROOT).as_posix()


def _width(line: str) -> int:
    """Characters a monospace font gives an advance (combining accents take none)."""
    return sum(not unicodedata.combining(ch) for ch in line)


def _code_cells(path: Path):
    """(index, cell, in_solution) for every code cell, index counting code cells from 0.

    A cell is inside an exercise solution when it lies between a markdown cell holding
    ```{solution-start} and the next markdown cell holding ```{solution-end} (a markdown
    cell that closes one solution and opens the next counts by which comes last).
    """
    nb = nbformat.read(path, as_version=4)
    inside, index, found = False, 0, []
    for cell in nb.cells:
        if cell.cell_type == "markdown":
            start, end = cell.source.rfind("```{solution-start}"), cell.source.rfind("```{solution-end}")
            if start > end:
                inside = True
            elif end > start:
                inside = False
        elif cell.cell_type == "code":
            found.append((index, cell, inside))
            index += 1
    return found


def _tags(cell) -> set[str]:
    return set(cell.get("metadata", {}).get("tags", []))


def _shown(cells):
    """The code cells that the website shows (the bootstrap cell is removed)."""
    return [(i, c, s) for i, c, s in cells if "remove-cell" not in _tags(c)]


def _output_lines(cell):
    """The lines of stream and plain-text output that the website shows as text."""
    if {"remove-output", "remove-cell"} & _tags(cell):
        return
    for out in cell.get("outputs", []):
        if out.output_type == "stream":
            text = out.text
        elif out.output_type in ("execute_result", "display_data"):
            data = out.get("data", {})
            if any(mime in data for mime in RICHER_THAN_TEXT):
                continue
            text = data.get("text/plain", "")
        elif out.output_type == "error":
            text = "\n".join(out.get("traceback", []))
        else:
            continue
        yield from text.splitlines()


@chapter
def test_code_cells_are_short(path):
    cells = _code_cells(path)
    long = {
        i: n for i, cell, in_solution in cells[3:]
        if not in_solution and (n := sum(1 for ln in cell.source.splitlines() if ln.strip())) > MAX_CELL_LINES
    }
    assert not long, (
        f"code cells over {MAX_CELL_LINES} non-blank lines (cell: lines): {long}; split each into two "
        "consecutive code cells at a natural boundary (a function definition, then its use)"
    )


def test_setup_cell_is_identical_in_every_chapter():
    setups = {}
    for path in CHAPTERS:
        cells = _code_cells(path)
        assert len(cells) >= 2 and cells[1][1].source.startswith(SETUP_START), (
            f"{_rel(path)}: the second code cell must start with {SETUP_START!r}"
        )
        setups[_rel(path)] = cells[1][1].source
    variants = {}
    for name, source in setups.items():
        variants.setdefault(source, []).append(name)
    assert len(variants) == 1, (
        "the setup cell differs between chapters; make it byte-identical (the union of the imports): "
        + "; ".join(f"{names} has:\n{source}" for source, names in variants.items())
    )


@chapter
def test_code_lines_fit(path):
    bad = []
    for i, cell, in_solution in _shown(_code_cells(path)):
        limit = (CODE_LIMIT_SOLUTION if in_solution
                 else CODE_LIMIT_HIDE_INPUT if "hide-input" in _tags(cell) else CODE_LIMIT)
        for n, line in enumerate(cell.source.splitlines(), 1):
            if _width(line) > limit:
                bad.append(f"cell {i} line {n} ({_width(line)} > {limit}): {line.strip()[:60]}")
    assert not bad, (
        f"{len(bad)} code line(s) too wide for the website (a horizontal scrollbar at 1280 px); wrap "
        "inside brackets or move a comment to its own line:\n" + "\n".join(bad)
    )


@chapter
def test_output_lines_fit(path):
    bad = []
    for i, cell, in_solution in _shown(_code_cells(path)):
        limit = OUTPUT_LIMIT_SOLUTION if in_solution else OUTPUT_LIMIT
        for line in _output_lines(cell):
            if _width(line) > limit:
                bad.append(f"cell {i} ({_width(line)} > {limit}): {line[:60]}")
    assert not bad, (
        f"{len(bad)} output line(s) too wide for the website; shorten the format of the print and "
        f"re-execute: python tools/execute.py {_rel(path)}\n" + "\n".join(bad)
    )
