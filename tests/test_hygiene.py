"""Hygiene of the committed chapters: structure, stored outputs, metadata.

nbval (run by the same `python -m pytest`) checks that the stored outputs are the
ones the code produces today; these tests check everything nbval does not: that
every chapter is in the book, starts the way every chapter starts, was executed
top to bottom by tools/execute.py, and carries what the website needs.

Cells are numbered as nbval numbers them: code cells only, from 0 ("Cell 3" is
the fourth code cell). Most failures are fixed by re-executing the chapter:

    python tools/execute.py chapters/<name>.ipynb
"""

from __future__ import annotations

import re
from pathlib import Path

import nbformat
import pytest

from tools.execute import BOOTSTRAP_TAG, ROOT, bootstrap_source, colab_url, toc_files

CHAPTER_DIR = ROOT / "chapters"
CHAPTERS = sorted(CHAPTER_DIR.glob("*.ipynb"))
TOC = toc_files()
TOC_CHAPTERS = [name for name in TOC if name.startswith("chapters/")]

WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"
WIDGET_STATE = "application/vnd.jupyter.widget-state+json"
SETUP_MUST_CONTAIN = [
    "import ebmbook as eb",
    "eb.plotting.use_book_style()",
    "eb.pick_device()",
    "eb.make_generator(",
]
EXPLAINED_TAGS = {"nbval-ignore-output", "nbval-skip"}
REQUIRED_SECTIONS = ["## Summary", "## Exercises", "## References"]
REEXECUTE = "re-execute it: python tools/execute.py {path}"


def _load(path: Path):
    return nbformat.read(path, as_version=4)


def _code_cells(nb):
    return [cell for cell in nb.cells if cell.cell_type == "code"]


def _tags(cell) -> set[str]:
    return set(cell.get("metadata", {}).get("tags", []))


def _rel(path: Path) -> str:
    return path.relative_to(ROOT).as_posix()


chapter = pytest.mark.parametrize("path", CHAPTERS, ids=lambda p: p.stem)


# ------------------------------------------------------------------ the book


def test_the_book_has_chapters():
    assert TOC_CHAPTERS, "_toc.yml lists no chapters"
    assert CHAPTERS, "chapters/ holds no notebooks"


@chapter
def test_chapter_is_listed_in_toc(path):
    name = f"chapters/{path.stem}"
    assert name in TOC, f"{_rel(path)} is not in _toc.yml; add `- file: {name}` where it belongs"


@pytest.mark.parametrize("name", TOC)
def test_toc_file_exists(name):
    candidates = [ROOT / f"{name}{suffix}" for suffix in (".ipynb", ".md")]
    assert any(p.exists() for p in candidates), f"_toc.yml names {name}, but neither .ipynb nor .md exists"


@pytest.mark.parametrize("name", TOC_CHAPTERS)
def test_intro_links_chapter(name):
    intro = (ROOT / "intro.md").read_text(encoding="utf-8")
    assert f"<{name}>" in intro or f"({name}.ipynb)" in intro, (
        f"the chapter map in intro.md does not link {name}; "
        f"write {{doc}}`Title <{name}>` in its entry"
    )


# ------------------------------------------------------------------ opening cells


@chapter
def test_title_comes_first(path):
    first = _load(path).cells[0]
    assert first.cell_type == "markdown" and first.source.startswith("# "), (
        "the first cell must be markdown starting with the chapter title ('# Title')"
    )


# Chapters that profit from a GPU carry the shared note of reference/snippets/gpu-tip.md as a
# markdown cell of their own (Colab shows a notebook's cells, not the website's includes)
GPU_CHAPTERS = ["sampling", "contrastive_divergence", "cd_pathologies", "improved_cd", "digits", "score_matching"]
GPU_TIP = ROOT / "reference" / "snippets" / "gpu-tip.md"


@pytest.mark.parametrize("name", GPU_CHAPTERS)
def test_gpu_chapters_carry_the_shared_gpu_note(name):
    tip = GPU_TIP.read_text(encoding="utf-8").strip()
    cells = [c.source.strip() for c in _load(CHAPTER_DIR / f"{name}.ipynb").cells if c.cell_type == "markdown"]
    assert tip in cells, (
        f"chapters/{name}.ipynb must have a markdown cell with exactly the text of {_rel(GPU_TIP)} "
        "(copy the file into a markdown cell after the overview)"
    )


@chapter
def test_first_code_cell_is_the_bootstrap_cell(path):
    cells = _code_cells(_load(path))
    assert cells, "the chapter has no code cells"
    first = cells[0]
    assert first.source == bootstrap_source(), (
        "the first code cell differs from the canonical install cell "
        "(rendered from _config.yml and ebmbook.__version__); " + REEXECUTE.format(path=_rel(path))
    )
    assert BOOTSTRAP_TAG in _tags(first), f"the install cell must be tagged {BOOTSTRAP_TAG!r}"


@chapter
def test_second_code_cell_is_the_setup_cell(path):
    cells = _code_cells(_load(path))
    assert len(cells) >= 2, "the chapter has no setup cell"
    missing = [s for s in SETUP_MUST_CONTAIN if s not in cells[1].source]
    assert not missing, f"the setup cell (second code cell) lacks: {missing}"


@chapter
def test_third_code_cell_is_the_settings_cell(path):
    cells = _code_cells(_load(path))
    assert len(cells) >= 3, "the chapter has no Settings cell"
    first_line = cells[2].source.lstrip().splitlines()[0] if cells[2].source.strip() else ""
    assert first_line.startswith("# Settings"), (
        f"the third code cell must start with '# Settings'; it starts with {first_line!r}"
    )


# ------------------------------------------------------------------ stored outputs


@chapter
def test_notebook_is_valid(path):
    nbformat.validate(_load(path))


@chapter
def test_executed_top_to_bottom(path):
    cells = _code_cells(_load(path))
    empty = [i for i, c in enumerate(cells) if not c.source.strip()]
    assert not empty, f"empty code cells (code-cell indices {empty}); delete them"
    counts = [c.execution_count for c in cells]
    assert counts == list(range(1, len(cells) + 1)), (
        f"execution counts are {counts}, not 1..{len(cells)}: the stored outputs do not come "
        "from one run from the top; " + REEXECUTE.format(path=_rel(path))
    )


@chapter
def test_outputs_are_stored(path):
    cells = _code_cells(_load(path))
    assert any(c.outputs for c in cells), "no code cell has outputs; " + REEXECUTE.format(path=_rel(path))


@chapter
def test_no_error_outputs(path):
    bad = [
        i for i, c in enumerate(_code_cells(_load(path)))
        if any(o.output_type == "error" for o in c.outputs) and "raises-exception" not in _tags(c)
    ]
    assert not bad, f"error outputs in code cells {bad} (tag a cell 'raises-exception' if the error is the lesson)"


@chapter
def test_no_execution_timestamps(path):
    stamped = [i for i, c in enumerate(_load(path).cells) if "execution" in c.get("metadata", {})]
    assert not stamped, (
        f"cells {stamped} carry metadata.execution timestamps (noise in every diff); "
        + REEXECUTE.format(path=_rel(path))
    )


def _model_refs(value) -> set[str]:
    """Model ids that a saved widget state refers to ("IPY_MODEL_<id>" strings)."""
    if isinstance(value, str):
        return {value.removeprefix("IPY_MODEL_")} if value.startswith("IPY_MODEL_") else set()
    if isinstance(value, dict):
        return set().union(*map(_model_refs, value.values())) if value else set()
    if isinstance(value, list):
        return set().union(*map(_model_refs, value)) if value else set()
    return set()


@chapter
def test_widget_state_is_saved(path):
    nb = _load(path)
    shown = {
        o.data[WIDGET_VIEW]["model_id"]
        for c in _code_cells(nb) for o in c.outputs
        if o.get("data", {}).get(WIDGET_VIEW)
    }
    if not shown:
        return
    state = nb.metadata.get("widgets", {}).get(WIDGET_STATE, {}).get("state", {})
    missing = sorted((shown | _model_refs(state)) - set(state))
    assert not missing, (
        f"{len(missing)} widget model(s) shown in outputs or used by other widgets have no saved "
        "state, so the website would show nothing for them (JupyterLab saves the state only with "
        "'Save Widget State Automatically'); " + REEXECUTE.format(path=_rel(path))
    )


@chapter
def test_kernelspec_is_python3(path):
    name = _load(path).metadata.get("kernelspec", {}).get("name")
    assert name == "python3", f"kernelspec name is {name!r}; nbval and Colab expect 'python3'"


# ------------------------------------------------------------------ tags, figures, text


@chapter
def test_ignored_outputs_are_explained(path):
    bad = [
        i for i, c in enumerate(_code_cells(_load(path)))
        if _tags(c) & EXPLAINED_TAGS and not c.source.lstrip().startswith("#")
    ]
    assert not bad, (
        f"code cells {bad} are tagged nbval-ignore-output/nbval-skip but do not start with a "
        "comment saying why their output cannot repeat"
    )


@chapter
def test_no_trailing_semicolons(path):
    # nbval runs cells without IPython's history, so a trailing ';' does not hide the
    # value and the fresh output (e.g. "[<matplotlib.lines.Line2D at 0x...>]") differs
    bad = []
    for i, c in enumerate(_code_cells(_load(path))):
        lines = [ln for ln in c.source.rstrip().splitlines() if ln.strip() and not ln.lstrip().startswith("#")]
        if lines and re.sub(r"\s+#.*$", "", lines[-1]).rstrip().endswith(";"):
            bad.append(i)
    assert not bad, f"code cells {bad} end with ';'; write `_ = ...` or end the cell with plt.show()"


@chapter
def test_figures_have_caption_and_alt_text(path):
    bad = []
    for i, c in enumerate(_code_cells(_load(path))):
        if not any("image/png" in o.get("data", {}) for o in c.outputs):
            continue
        mystnb = c.metadata.get("mystnb", {})
        caption = mystnb.get("figure", {}).get("caption", "")
        alt = mystnb.get("image", {}).get("alt", "")
        if not (caption.strip() and alt.strip()):
            bad.append(i)
    assert not bad, (
        f"code cells {bad} show a figure without a caption and alt text; add to the cell metadata "
        '"mystnb": {"figure": {"caption": "...", "name": "fig-..."}, "image": {"alt": "..."}}'
    )


@chapter
def test_one_figure_per_cell(path):
    bad = [
        i for i, c in enumerate(_code_cells(_load(path)))
        if sum("image/png" in o.get("data", {}) for o in c.outputs) > 1
    ]
    assert not bad, f"code cells {bad} show more than one figure (a caption belongs to one figure)"


@chapter
def test_summary_exercises_references(path):
    headings = [
        line.strip()
        for c in _load(path).cells if c.cell_type == "markdown"
        for line in c.source.splitlines() if line.startswith("## ")
    ]
    positions = []
    for section in REQUIRED_SECTIONS:
        assert section in headings, f"no '{section}' heading in a markdown cell"
        positions.append(headings.index(section))
    assert positions == sorted(positions), f"the sections must come in the order {REQUIRED_SECTIONS}"


# ------------------------------------------------------------------ repository


def test_ci_runs_the_readme_test_command():
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    match = re.search(r"^TEST_COMMAND='([^']+)'$", ci, flags=re.MULTILINE)
    assert match, ".ci/run must define TEST_COMMAND='...'"
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert match.group(1) in readme, f"README.md does not show the test command that CI runs: {match.group(1)}"


def test_readme_colab_links_follow_config():
    # _config.yml is the one place that names the repository; README only shows it
    expected = colab_url("chapters/NAME").removesuffix("chapters/NAME.ipynb")
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    links = re.findall(r"https://colab\.research\.google\.com/[^\s)>\]]+", readme)
    assert links, "README.md shows no Colab link"
    stale = [link for link in links if not link.startswith(expected)]
    assert not stale, f"README.md Colab links do not start with {expected} (from _config.yml): {stale}"
