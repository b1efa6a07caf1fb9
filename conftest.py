"""Pytest set-up shared by the package tests and the notebook checks (nbval).

* Every kernel that nbval starts inherits this process's environment, so the
  reference environment of tools/reference_env.py (the one tools/execute.py
  used to write the committed outputs) is forced here.
* The sanitize file named in pytest.ini is found from any working directory.
* Tests marked `gpu` are skipped when CUDA is not available.
* At the end of the session, a table gives each notebook's execution time.
"""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

import pytest

from tools import reference_env

# Per-notebook budget on one core of the reference machine (see DESIGN.md)
NOTEBOOK_BUDGET_S = 180

# Applied as soon as this file is imported, which is before tests/conftest.py
# imports torch: OpenMP reads its thread count once, when torch loads it.
reference_env.apply()

_notebook_seconds: dict[str, float] = defaultdict(float)
_notebook_cells: dict[str, set[str]] = defaultdict(set)


def pytest_configure(config):
    # Again here, in case something imported earlier changed os.environ
    reference_env.apply()

    # nbval opens --nbval-sanitize-with relative to the working directory;
    # the file lives next to pytest.ini
    option = config.option
    name = getattr(option, "nbval_sanitize_with", None)
    if name and not Path(name).is_absolute() and not Path(name).exists():
        anchored = config.rootpath / name
        if anchored.exists():
            option.nbval_sanitize_with = str(anchored)


def pytest_collection_modifyitems(config, items):
    gpu_items = [item for item in items if item.get_closest_marker("gpu")]
    if not gpu_items:
        return
    import torch  # only when a gpu test was collected

    if not torch.cuda.is_available():
        skip = pytest.mark.skip(reason="needs a CUDA device")
        for item in gpu_items:
            item.add_marker(skip)


def pytest_runtest_logreport(report):
    # Called on the controller for the reports of every xdist worker too. Setup
    # of a notebook's first cell includes starting its kernel.
    path = report.nodeid.split("::", 1)[0]
    if path.endswith(".ipynb"):
        _notebook_seconds[path] += report.duration
        _notebook_cells[path].add(report.nodeid)


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    if not _notebook_seconds or hasattr(config, "workerinput"):
        return
    write = terminalreporter.write_line
    terminalreporter.section("notebook execution times")
    width = max(len("total (core-seconds)"), *map(len, _notebook_seconds))
    write(f"{'notebook':<{width}}  {'cells':>5}  {'seconds':>8}")
    for path, seconds in sorted(_notebook_seconds.items(), key=lambda kv: -kv[1]):
        note = f"  over the {NOTEBOOK_BUDGET_S} s budget" if seconds > NOTEBOOK_BUDGET_S else ""
        write(f"{path:<{width}}  {len(_notebook_cells[path]):>5}  {seconds:>8.1f}{note}")
    total = sum(_notebook_seconds.values())
    write(f"{'total (core-seconds)':<{width}}  {sum(map(len, _notebook_cells.values())):>5}  {total:>8.1f}")
