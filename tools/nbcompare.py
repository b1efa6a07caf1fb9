"""What the tests compare in a chapter's outputs: one set of rules for pytest and tools/execute.py.

* Every code cell's text outputs are compared after the sanitizers of
  nbval_sanitize.cfg (addresses, cell paths, progress-bar timings).
* A cell tagged ``nbval-mask-numbers`` prints numbers that follow a training run
  (or another chaotic amplification of rounding): one last-bit difference between
  two CPUs grows into other digits. Its numbers are masked before the comparison,
  so its wording and layout are still compared, and the asserts in the cell check
  its claims (tests/test_hygiene.py checks that such a cell asserts).
* Off the reference platform (tools/reference_env.py) every cell is compared that way.
* Cells tagged ``nbval-ignore-output`` (timings) or ``nbval-skip`` are not compared.
"""

from __future__ import annotations

import re
from pathlib import Path

MASK_TAG = "nbval-mask-numbers"
IGNORE_TAGS = frozenset({"nbval-ignore-output", "nbval-skip"})
SANITIZE_FILE = Path(__file__).resolve().parents[1] / "nbval_sanitize.cfg"

# A number as Python prints it, with its sign and the padding before it: 3, -0.107,
# +4.73, 1,437, 2.3e-09, 14.1 (of 14.1%), nan, inf. The padding goes with it because a
# number of another width moves what follows; words that contain digits (x2, 8x8,
# log1p) are left alone.
_NUMBER = re.compile(r"[ \t]*(?:[-+−]?(?<![\w.])(?:(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?"
                     r"|(?<![\w])[-+−]?(?:nan|inf))(?![\w])")
MASK = " ▢"


def mask_numbers(text: str) -> str:
    """The text with every number replaced by one placeholder (and its padding by one space)."""
    return _NUMBER.sub(MASK, text)


def load_sanitizers(path: Path = SANITIZE_FILE) -> list[tuple[str, str]]:
    """The (regex, replacement) pairs of an nbval sanitize file."""
    if not path.exists():
        return []
    return re.findall(r"^regex: (.*)$\n^replace: (.*)$", path.read_text(encoding="utf-8"), flags=re.M)


def tags(cell) -> set[str]:
    return set(cell.get("metadata", {}).get("tags", []))


def is_masked(cell, reference_platform: bool) -> bool:
    """Whether the numbers of this cell's outputs are masked before comparison."""
    return not reference_platform or MASK_TAG in tags(cell)


def is_compared(cell) -> bool:
    return not IGNORE_TAGS & tags(cell)


def counts(cells, reference_platform: bool) -> dict[str, int]:
    """How many code cells are compared exactly, with numbers masked, or not at all."""
    found = {"exact": 0, "masked": 0, "not compared": 0}
    for cell in cells:
        if not is_compared(cell):
            found["not compared"] += 1
        elif is_masked(cell, reference_platform):
            found["masked"] += 1
        else:
            found["exact"] += 1
    return found
