"""Pytest set-up shared by the package tests and the notebook checks (nbval).

* Every kernel that nbval starts inherits this process's environment, so the
  reference environment of tools/reference_env.py (the one tools/execute.py
  used to write the committed outputs) is forced here.
* The sanitize file named in pytest.ini is found from any working directory.
* nbval compares outputs by the rules of tools/nbcompare.py: numbers masked in
  cells tagged ``nbval-mask-numbers``, and in every cell off the reference platform.
* Tests marked `gpu` are skipped when CUDA is not available.
* At the end of the session, a table gives each notebook's cells (compared exactly,
  with numbers masked, not compared) and its cost: the wall time of its cells, and the
  CPU seconds of its kernel process (one thread, so core-seconds; they do not grow when
  the machine is busy with other work), normalized to the machine that wrote the
  outputs (tools/calibrate.py). The budgets of DESIGN.md apply to the normalized
  CPU seconds.
"""

from __future__ import annotations

import os
from collections import defaultdict
from pathlib import Path

import nbformat
import pytest

from tools import calibrate, nbcompare, reference_env

# Budgets on one core of the machine that wrote the outputs (see DESIGN.md)
NOTEBOOK_BUDGET_S = 180
BOOK_BUDGET_S = 20 * 60

# Applied as soon as this file is imported, which is before tests/conftest.py
# imports torch: OpenMP reads its thread count once, when torch loads it.
reference_env.apply()
REFERENCE_PLATFORM = reference_env.is_reference_platform()

_notebook_seconds: dict[str, float] = defaultdict(float)
_notebook_cells: dict[str, set[str]] = defaultdict(set)
_kernel_cpu: dict[str, float] = {}


def _mask_numbers_in_nbval():
    """Make nbval's per-string sanitizer mask numbers where tools/nbcompare.py says so.

    nbval applies ``IPyNbCell.sanitize`` to the committed and to the fresh outputs
    of a cell before comparing them, and has no per-cell hook of its own.
    """
    from nbval.plugin import IPyNbCell

    if getattr(IPyNbCell.sanitize, "_ebmbook", False):
        return
    plain = IPyNbCell.sanitize

    def sanitize(self, s):
        s = plain(self, s)
        if isinstance(s, str) and nbcompare.is_masked(self.cell, REFERENCE_PLATFORM):
            s = nbcompare.mask_numbers(s)
        return s

    sanitize._ebmbook = True
    IPyNbCell.sanitize = sanitize


def pytest_configure(config):
    # Again here, in case something imported earlier changed os.environ
    reference_env.apply()
    _mask_numbers_in_nbval()

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


def _kernel_cpu_seconds(item) -> float | None:
    """CPU seconds used so far by the kernel that runs this notebook cell (Linux), else None."""
    try:
        pid = item.parent.kernel.km.provisioner.pid
        with open(f"/proc/{pid}/stat", encoding="ascii") as f:
            fields = f.read().rsplit(")", 1)[1].split()       # from the state field (3rd) on
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")   # utime + stime
    except (AttributeError, OSError, ValueError, IndexError):
        return None


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    if call.when == "call" and str(item.path).endswith(".ipynb"):
        seconds = _kernel_cpu_seconds(item)
        if seconds is not None:  # user_properties travel from xdist workers to the controller
            outcome.get_result().user_properties.append(("kernel_cpu_s", seconds))


def pytest_runtest_logreport(report):
    # Called on the controller for the reports of every xdist worker too. Setup
    # of a notebook's first cell includes starting its kernel.
    path = report.nodeid.split("::", 1)[0]
    if path.endswith(".ipynb"):
        _notebook_seconds[path] += report.duration
        _notebook_cells[path].add(report.nodeid)
        for key, value in report.user_properties:
            if key == "kernel_cpu_s":
                _kernel_cpu[path] = max(_kernel_cpu.get(path, 0.0), value)


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    if not _notebook_seconds or hasattr(config, "workerinput"):
        return
    write = terminalreporter.write_line
    terminalreporter.section("notebook cells and execution times")
    write("notebook outputs: " + reference_env.describe())
    try:
        here = calibrate.measure_in_reference_env()
        factor = calibrate.factor(here)
        write(f"calibration workload: {here:.2f} s here, {calibrate.REFERENCE_SECONDS:.2f} s on "
              f"the machine that wrote the outputs ({calibrate.REFERENCE_MACHINE}): "
              f"normalized = seconds here x {factor:.2f}")
    except Exception as error:  # noqa: BLE001 - the report must not fail the run
        factor = None
        write(f"calibration workload failed ({error}); times are not normalized")
    width = max(len("total"), *map(len, _notebook_seconds))
    write(f"{'notebook':<{width}}  {'exact':>5}  {'masked':>6}  {'not compared':>12}  "
          f"{'wall s':>7}  {'CPU s':>7}  {'normalized CPU s':>16}")
    totals = [0.0, 0.0, 0.0]
    for path, seconds in sorted(_notebook_seconds.items(), key=lambda kv: -kv[1]):
        nb = nbformat.read(config.rootpath / path, as_version=4)
        n = nbcompare.counts([c for c in nb.cells if c.cell_type == "code"], REFERENCE_PLATFORM)
        cpu = _kernel_cpu.get(path, seconds)          # the wall time where the kernel's CPU time is unknown
        normalized = cpu * factor if factor else float("nan")
        note = f"  over the {NOTEBOOK_BUDGET_S} s budget" if factor and normalized > NOTEBOOK_BUDGET_S else ""
        write(f"{path:<{width}}  {n['exact']:>5}  {n['masked']:>6}  {n['not compared']:>12}  "
              f"{seconds:>7.1f}  {cpu:>7.1f}  {normalized:>16.1f}{note}")
        totals = [a + b for a, b in zip(totals, (seconds, cpu, normalized))]
    note = f"  over the {BOOK_BUDGET_S} s budget" if factor and totals[2] > BOOK_BUDGET_S else ""
    write(f"{'total':<{width}}  {'':>5}  {'':>6}  {'':>12}  {totals[0]:>7.1f}  {totals[1]:>7.1f}  "
          f"{totals[2]:>16.1f}{note}")
