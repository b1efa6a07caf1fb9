"""The rules by which the tests compare notebook outputs on every machine.

* tools/nbcompare.py: numbers masked in tagged cells (and everywhere off the
  reference platform); wording and layout still compared.
* tools/reference_env.py: which platform compares untagged cells exactly.
* Every tagged cell asserts, and the thresholds of those asserts cite the seed
  sweep of their chapter (chapters/seed_sweeps/), whose numbers the comments must
  quote correctly.
"""

from __future__ import annotations

import json
import math
import re

import nbformat
import pytest

from tools import calibrate, nbcompare, reference_env
from tools.execute import ROOT, compared_outputs, differing_cells
from tools.seed_sweep import SEED_LINE, sweep_file

CHAPTERS = sorted((ROOT / "chapters").glob("*.ipynb"))
MASKED_CHAPTERS = [p for p in CHAPTERS if any(
    nbcompare.MASK_TAG in nbcompare.tags(c) for c in nbformat.read(p, as_version=4).cells if c.cell_type == "code")]
MIN_SEEDS = 5
# A citation in a comment: sweep "quantity": mean ± std, range [min, max]
CITATION = re.compile(r'sweep "([^"]+)":\s*(?:#\s*)?([-+]?\d+(?:\.\d+)?) ± (\d+(?:\.\d+)?), '
                      r'range \[([-+]?\d+(?:\.\d+)?), ([-+]?\d+(?:\.\d+)?)\]')


# ------------------------------------------------------------------ masking


@pytest.mark.parametrize("a, b", [
    ("NLL − H = 0.107 nats", "NLL − H = 0.230 nats"),
    ("off the box  14.1%   modes 8/8", "off the box   0.0%   modes 7/8"),
    ("final -0.20 (samples +0.13)", "final +0.05 (samples -0.50)"),
    ("mass 1,437 of 2.3e-09", "mass 12,001 of 1e-05"),
    ("KL nan", "KL 3.5"),
])
def test_masking_hides_numbers_only(a, b):
    assert a != b and nbcompare.mask_numbers(a) == nbcompare.mask_numbers(b)


@pytest.mark.parametrize("a, b", [
    ("NLL − H = 0.107 nats", "NLL − H = 0.107 bits"),        # wording
    ("modes 8/8", "modes 8-8"),                               # layout
    ("ESS/step x1", "ESS/step x2"),                           # digits inside words are text
    ("a 8x8 image", "a 6x6 image"),
    ("row one\nrow two", "row one"),                          # lines
])
def test_masking_keeps_words_and_layout(a, b):
    assert nbcompare.mask_numbers(a) != nbcompare.mask_numbers(b)


def _cell(text, tags=()):
    cell = nbformat.v4.new_code_cell("print()")
    cell.metadata["tags"] = list(tags)
    cell.outputs = [nbformat.v4.new_output("stream", name="stdout", text=text)]
    return cell


def test_only_tagged_cells_are_masked_on_the_reference_platform():
    tagged = [_cell("gap 0.107\n", [nbcompare.MASK_TAG])]
    plain = [_cell("log Z 0.679926\n")]
    other_tagged, other_plain = [_cell("gap 0.230\n", [nbcompare.MASK_TAG])], [_cell("log Z 0.679927\n")]
    nb = lambda cells: nbformat.v4.new_notebook(cells=cells)
    assert differing_cells(nb(tagged), nb(other_tagged), [], reference_platform=True) == []
    assert [i for i, _ in differing_cells(nb(plain), nb(other_plain), [], reference_platform=True)] == [0]
    # off the reference platform every cell is masked; text for text (None) nothing is
    assert differing_cells(nb(plain), nb(other_plain), [], reference_platform=False) == []
    assert [i for i, _ in differing_cells(nb(tagged), nb(other_tagged), [], reference_platform=None)] == [0]


def test_ignored_cells_are_not_compared():
    a = _cell("1.2 s\n", ["nbval-ignore-output"])
    assert nbcompare.counts([a, _cell("x"), _cell("y", [nbcompare.MASK_TAG])], True) == {
        "exact": 1, "masked": 1, "not compared": 1}
    assert compared_outputs(_cell("0.5\n"), [], masked=True) == ["[name] stdout", "[text]  ▢\n"]


# ------------------------------------------------------------------ platform


def test_forced_kernel_family_is_not_the_reference_platform(monkeypatch):
    monkeypatch.setenv(reference_env.KERNELS_OVERRIDE, "default")
    assert not reference_env.is_reference_platform()
    assert "masked" in reference_env.describe()
    if reference_env.has_avx2():
        assert reference_env.reference_env()["ATEN_CPU_CAPABILITY"] == "default"
        monkeypatch.setenv(reference_env.KERNELS_OVERRIDE, "avx2")
        assert reference_env.is_reference_platform()


def test_platform_without_avx2_is_not_the_reference(monkeypatch):
    monkeypatch.delenv(reference_env.KERNELS_OVERRIDE, raising=False)
    monkeypatch.setattr(reference_env, "has_avx2", lambda: False)
    assert not reference_env.is_reference_platform()
    assert "ATEN_CPU_CAPABILITY" not in reference_env.reference_env()


def test_calibration_factor_is_a_ratio():
    assert calibrate.factor(calibrate.REFERENCE_SECONDS) == 1.0
    assert math.isclose(calibrate.factor(2 * calibrate.REFERENCE_SECONDS), 0.5)


# ------------------------------------------------------------------ tagged cells and their sweeps


@pytest.mark.parametrize("path", CHAPTERS, ids=lambda p: p.stem)
def test_every_masked_cell_asserts(path):
    cells = [c for c in nbformat.read(path, as_version=4).cells if c.cell_type == "code"]
    bad = [i for i, c in enumerate(cells) if nbcompare.MASK_TAG in nbcompare.tags(c)
           and not re.search(r"^\s*(assert\b|torch\.testing\.assert_close)", c.source, flags=re.M)]
    assert not bad, (f"code cells {bad} are tagged {nbcompare.MASK_TAG} but assert nothing: their numbers "
                     "are not compared, so an assert must check what they print")


def _sweep(path):
    target = sweep_file(path)
    assert target.exists(), f"{target.relative_to(ROOT)} is missing: run python tools/seed_sweep.py {path.relative_to(ROOT)}"
    return json.loads(target.read_text(encoding="utf-8"))


@pytest.mark.parametrize("path", MASKED_CHAPTERS, ids=lambda p: p.stem)
def test_chapter_with_trained_numbers_has_a_seed_sweep(path):
    nb = nbformat.read(path, as_version=4)
    assert sum(bool(SEED_LINE.search(c.source)) for c in nb.cells if c.cell_type == "code") == 1, \
        "the settings cell must define SEED = <integer>, from which every random draw derives"
    record = _sweep(path)
    assert len(record.get("seeds", [])) >= MIN_SEEDS, f"the sweep needs at least {MIN_SEEDS} seeds"
    missing = {name: s["values"] for name, s in record["summary"].items()
               if any(v is None for v in s["values"].values())}
    assert not missing, f"quantities not computed for every seed: {missing}"
    assert set(record["summary"]) == set(record["quantities"]), "re-run the sweep: its quantities changed"


@pytest.mark.parametrize("path", MASKED_CHAPTERS, ids=lambda p: p.stem)
def test_sweep_citations_quote_the_sweep(path):
    summary = _sweep(path)["summary"]
    nb = nbformat.read(path, as_version=4)
    cited = [(i, m) for i, c in enumerate(c for c in nb.cells if c.cell_type == "code")
             for m in CITATION.finditer(c.source)]
    assert cited, "a chapter with trained numbers cites its sweep where it sets thresholds"
    for i, m in cited:
        name = m.group(1)
        assert name in summary, f"code cell {i} cites an unknown sweep quantity {name!r}"
        for k, label in enumerate(("mean", "std", "min", "max"), start=2):
            text, actual = m.group(k), summary[name][label]
            decimals = len(text.split(".")[1]) if "." in text else 0
            assert abs(float(text) - actual) <= 0.51 * 10 ** -decimals, (
                f"code cell {i}: sweep {name!r} {label} is {actual:.4g} in the file, quoted as {text}")
    # every tagged cell that sets a threshold on a trained number cites the sweep (or a standard error)
    cells = [c for c in nb.cells if c.cell_type == "code"]
    uncited = [i for i, c in enumerate(cells) if nbcompare.MASK_TAG in nbcompare.tags(c)
               and "assert" in c.source and not CITATION.search(c.source)
               and "identity" not in c.source and "standard error" not in c.source]
    assert not uncited, (f"code cells {uncited} assert on trained numbers without citing the sweep "
                         '(# sweep "name": mean ± std, range [min, max]), deriving the threshold from a '
                         "standard error, or saying the assert is an identity")
