"""The reference pages of the website say true things about the package.

* Every ```python block of reference/homework.md runs, in order, in one namespace, as a
  reader would run them one after the other (they contain their own asserts).
* The homework page lists every checker of ``ebmbook.checks``.
* The API reference has a page for every module of ``ebmbook`` (which chapter uses each
  function is checked by tests/test_package_shape.py).
* tools/sphinx_ebmbook.py renders the shape notation of the docstrings as written.
"""

from __future__ import annotations

import inspect
import re
import sys

import pytest

import ebmbook as eb
from tools.execute import ROOT

HOMEWORK = ROOT / "reference" / "homework.md"
API_DIR = ROOT / "reference" / "api"
MODULES = [name for name in eb.__all__ if inspect.ismodule(getattr(eb, name))]


def _python_blocks(path) -> list[str]:
    text = path.read_text(encoding="utf-8")
    return re.findall(r"^```python\n(.*?)^```", text, flags=re.MULTILINE | re.DOTALL)


def test_homework_examples_run(monkeypatch):
    blocks = _python_blocks(HOMEWORK)
    assert len(blocks) >= 5, f"expected the code blocks of {HOMEWORK.name}, found {len(blocks)}"
    monkeypatch.setenv("MPLBACKEND", "Agg")
    namespace: dict = {"__name__": "__homework__"}
    for i, block in enumerate(blocks):
        try:
            exec(compile(block, f"{HOMEWORK.name}, python block {i}", "exec"), namespace)
        except Exception as err:
            raise AssertionError(f"python block {i} of {HOMEWORK.name} failed:\n{block}") from err


def test_homework_lists_every_checker():
    text = HOMEWORK.read_text(encoding="utf-8")
    checkers = [name for name in eb.checks.__all__ if name.startswith("check_")]
    assert checkers
    missing = [name for name in checkers if f"`{name}(" not in text]
    assert not missing, (
        f"{HOMEWORK.relative_to(ROOT)} does not list the checkers {missing}; add a row "
        "to the table in 'Checking your own code'"
    )


@pytest.mark.parametrize("module", MODULES)
def test_api_page_per_module(module):
    page = API_DIR / f"{module}.md"
    assert page.exists(), f"no API page for ebmbook.{module}; add {page.relative_to(ROOT)} and list it in _toc.yml"
    assert f".. automodule:: ebmbook.{module}" in page.read_text(encoding="utf-8")
    toc = (ROOT / "_toc.yml").read_text(encoding="utf-8")
    assert f"reference/api/{module}" in toc, f"_toc.yml does not list reference/api/{module}"


def test_docstring_escapes():
    sys.path.insert(0, str(ROOT / "tools"))
    try:
        from sphinx_ebmbook import _escape_line
    finally:
        sys.path.remove(str(ROOT / "tools"))
    assert _escape_line("x: points, shape (n, *event_shape).") == r"x: points, shape (n, \*event_shape)."
    assert _escape_line("f(*args, **kw)") == r"f(\*args, \*\*kw)"
    assert _escape_line("is *normalized*: it") == "is *normalized*: it"              # emphasis stays
    assert _escape_line("``(n, *shape)`` then") == "``(n, *shape)`` then"            # literals stay
    assert _escape_line("on ``refine``ᵈ cells") == "on ``refine``\\ ᵈ cells"
    assert _escape_line("``randn(x.shape)``, then ``rand(n)``") == "``randn(x.shape)``, then ``rand(n)``"
    assert _escape_line("with ρ = |x|, p(x | r)") == r"with ρ = \|x\|, p(x \| r)"
    assert _escape_line("``a | b`` |E|") == r"``a | b`` \|E\|"
