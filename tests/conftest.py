"""Fixtures shared by the tests: generators and grids for the package tests, and
one build of the website for the build and browser tests."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch

import ebmbook as eb


@pytest.fixture
def gen():
    return eb.make_generator(seed=1234)


@pytest.fixture
def box2d():
    """The book's standard 2-D box: [−5, 5]² with 256 cells per side."""
    return eb.grid.make_grid(-5, 5, 256, dim=2, dtype=torch.float64)


@pytest.fixture
def bins2d():
    """Coarse histogram bins on the same box."""
    return eb.grid.make_grid(-5, 5, 40, dim=2)


# ------------------------------------------------------------------ the website
#
# tests/test_book_build.py and tests/test_browser.py check the same build, so the
# book is built once per pytest run. Under pytest-xdist every worker has its own
# session, so the workers share one build folder (in the run's temporary
# directory) and a lock: the first one to get there builds, the others wait and
# read its result.

# `python -m jupyter_book` does not exist; call its command-line entry point with
# this interpreter, so the build does not depend on PATH
JUPYTER_BOOK = [sys.executable, "-c", "import sys; from jupyter_book.cli.main import main; sys.exit(main())"]
ANSI = re.compile(r"\x1b\[[0-9;]*m")
BUILD_TIMEOUT_S = 600


@dataclass(frozen=True)
class BookBuild:
    """One build of the book: `jupyter-book build . --all -W -n --keep-going`."""

    returncode: int
    log: str          # stdout and stderr, without colour codes
    html: Path        # the site (`_build/html` of the build folder)
    seconds: float    # wall time of the build command


@pytest.fixture(scope="session")
def book_build(tmp_path_factory) -> BookBuild:
    from filelock import FileLock

    from tools.execute import ROOT

    base = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        base = base.parent  # shared by the workers of this run
    out = base / "book"
    record = base / "book-build.json"
    with FileLock(str(base / "book-build.lock")):
        if not record.exists():
            args = ["build", str(ROOT), "--path-output", str(out), "--all", "-W", "-n", "--keep-going"]
            start = time.perf_counter()
            proc = subprocess.run(
                JUPYTER_BOOK + args, capture_output=True, text=True, encoding="utf-8", errors="replace",
                timeout=BUILD_TIMEOUT_S,
            )
            seconds = time.perf_counter() - start
            log = ANSI.sub("", proc.stdout + proc.stderr)
            record.write_text(json.dumps({"returncode": proc.returncode, "log": log, "seconds": seconds}))
        data = json.loads(record.read_text())
    return BookBuild(data["returncode"], data["log"], out / "_build" / "html", data["seconds"])


# Numbers that the website tests report with record_property(); the controller
# (or the only process, without xdist) collects them from the test reports.
_site: dict = {"build_s": None, "browser_call_s": 0.0, "launch_s": 0.0, "pages": {}}


def pytest_runtest_logreport(report):
    for name, value in getattr(report, "user_properties", ()):
        if name == "book_build_s":
            _site["build_s"] = value
        elif name == "browser_launch_s":
            _site["launch_s"] = max(_site["launch_s"], value)
        elif name == "browser_pages":
            _site["pages"].update(value)
    if report.when == "call" and report.nodeid.startswith("tests/test_browser.py"):
        _site["browser_call_s"] += report.duration


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    if hasattr(config, "workerinput") or (_site["build_s"] is None and not _site["pages"]):
        return
    write = terminalreporter.write_line
    terminalreporter.section("website")
    if _site["build_s"] is not None:
        write(f"book build: {_site['build_s']:.1f} s (one build for the whole run)")
    pages = _site["pages"]
    if pages:
        loads = sum(p["load_s"] for p in pages.values())
        total = _site["launch_s"] + _site["browser_call_s"]  # pages are opened inside the tests
        external = sum(p["external"] for p in pages.values())
        checked = {name.removesuffix(" (reloaded)") for name in pages}
        write(
            f"browser tests: {total:.1f} s (Chromium start {_site['launch_s']:.1f} s, "
            f"tests {_site['browser_call_s']:.1f} s, of which {len(pages)} page loads {loads:.1f} s)"
        )
        write(f"pages checked: {len(checked)}; external requests attempted (all blocked): {external}")
