"""The package keeps the shape the chapters can copy (DESIGN.md, "Layout"; CONVENTIONS.md §1).

* Size: at most 2,500 lines of code for the whole package at seven chapters, counted as the
  lines that hold Python tokens other than docstrings and comments; no module over 500 lines.
  The test prints the count per module.
* Imports flow one way, along the data flow of DESIGN.md: no module imports a later one, and
  none imports another module's private name (except the argument contracts).
* Every "See chapter" line names a chapter whose code uses that function or class (a class: or a
  function that returns or raises it), and everything a chapter calls has such a line.
"""

from __future__ import annotations

import ast
import inspect
import io
import re
import tokenize
from pathlib import Path

import nbformat
import pytest

import ebmbook as eb
from tools.execute import ROOT

PACKAGE = ROOT / "ebmbook"
MODULES = sorted(p for p in PACKAGE.rglob("*.py"))
CODE_BUDGET = 2500
MODULE_LINES = 500
# The one direction of imports: a module may import only modules earlier in this list
ORDER = ["_contracts", "device", "data", "energies", "nets", "grid", "samplers", "tempering", "diagnostics",
         "buffers", "losses", "score_matching", "training", "plotting", "checks", "__init__"]
SEE_CHAPTER = re.compile(r'See chapter: "([^"]+)" \(chapters/([\w-]+)\.ipynb\)')


def code_lines(path: Path) -> int:
    """Lines holding a token that is not a comment or a docstring."""
    tokens = list(tokenize.generate_tokens(io.StringIO(path.read_text(encoding="utf-8")).readline))
    layout = {tokenize.NEWLINE, tokenize.INDENT, tokenize.DEDENT, tokenize.ENCODING}
    blank = {tokenize.COMMENT, tokenize.NL}
    lines = set()
    for i, tok in enumerate(tokens):
        if tok.type in blank | layout | {tokenize.ENDMARKER}:
            continue
        if tok.type == tokenize.STRING:  # a string that is a statement of its own is a docstring
            before = next((t for t in reversed(tokens[:i]) if t.type not in blank), None)
            after = next((t for t in tokens[i + 1:] if t.type not in blank), None)
            if (before is None or before.type in layout) and (after is None or after.type in
                                                                 (tokenize.NEWLINE, tokenize.ENDMARKER)):
                continue
        lines.update(range(tok.start[0], tok.end[0] + 1))
    return len(lines)


def _rank(path: Path) -> int:
    rel = path.relative_to(PACKAGE)
    name = rel.parts[0].removesuffix(".py") if len(rel.parts) > 1 else rel.stem
    return ORDER.index(name)


def test_package_size_budget(capsys):
    counts = {p.relative_to(ROOT).as_posix(): code_lines(p) for p in MODULES}
    with capsys.disabled():
        print("\npackage code lines (no docstrings, comments or blank lines):")
        for name, n in counts.items():
            print(f"  {name:<36} {n:5d}")
        print(f"  {'total':<36} {sum(counts.values()):5d}  (budget {CODE_BUDGET})")
    assert sum(counts.values()) <= CODE_BUDGET
    long = {p.name: n for p in MODULES if (n := len(p.read_text(encoding="utf-8").splitlines())) > MODULE_LINES}
    assert not long, f"modules over {MODULE_LINES} lines: {long}; split them by concept"


@pytest.mark.parametrize("path", MODULES, ids=lambda p: p.relative_to(PACKAGE).as_posix())
def test_imports_flow_one_way(path):
    tree = ast.parse(path.read_text(encoding="utf-8"))
    rank = _rank(path)
    inside = len(path.relative_to(PACKAGE).parts) > 1          # a module of a subpackage (checks/)
    for node in ast.walk(tree):
        if not isinstance(node, ast.ImportFrom) or node.level == 0:
            continue
        if inside and node.level == 1:                       # a sibling inside the same subpackage
            continue
        targets = [node.module.split(".")[0]] if node.module else [a.name for a in node.names]
        for target in targets:
            assert target in ORDER, f"{path.name} imports an unknown module {target!r}"
            assert ORDER.index(target) < rank, (
                f"{path.relative_to(ROOT)} imports ebmbook.{target}, which comes later in the data flow")
            if node.module and target != "_contracts":
                private = [a.name for a in node.names if a.name.startswith("_")]
                assert not private, f"{path.relative_to(ROOT)} imports private names {private} of {target}"


def _chapter_code(stem: str) -> str:
    nb = nbformat.read(ROOT / "chapters" / f"{stem}.ipynb", as_version=4)
    return "\n".join(c.source for c in nb.cells if c.cell_type == "code")


def _public_objects():
    for module_name in eb.__all__:
        module = getattr(eb, module_name)
        if not inspect.ismodule(module):
            continue
        for name in getattr(module, "__all__", []):
            obj = getattr(module, name)
            if inspect.isfunction(obj) or inspect.isclass(obj):
                yield f"{module_name}.{name}", name, obj


def _producers(name: str) -> set[str]:
    """The class itself and the public functions that return it (annotation) or raise it (docstring)."""
    found = {name}
    for _, fname, obj in _public_objects():
        if inspect.isfunction(obj):
            returns = str(inspect.signature(obj).return_annotation)
            raises = (inspect.getdoc(obj) or "").partition("Raises:")[2]
            if re.search(rf"\b{name}\b", returns) or re.search(rf"^\s+{name}:", raises, re.M):
                found.add(fname)
    return found


@pytest.mark.parametrize("qualname, name, obj", list(_public_objects()), ids=lambda v: v if isinstance(v, str) else "")
def test_see_chapter_names_a_chapter_that_uses_it(qualname, name, obj):
    # a class counts as used where the chapter calls a function that returns or raises it
    doc = inspect.getdoc(obj) or ""
    uses = _producers(name) if inspect.isclass(obj) else {name}
    for title, stem in SEE_CHAPTER.findall(doc):
        path = ROOT / "chapters" / f"{stem}.ipynb"
        assert path.exists(), f"ebmbook.{qualname} names chapters/{stem}.ipynb, which does not exist"
        first = nbformat.read(path, as_version=4).cells[0].source
        assert title in first, f"ebmbook.{qualname}: chapters/{stem}.ipynb is not titled {title!r}"
        code = _chapter_code(stem)
        assert any(re.search(rf"\.{re.escape(u)}\b", code) for u in uses), (
            f"ebmbook.{qualname} names chapter {stem!r}, whose code never uses {' or '.join(sorted(uses))}")


@pytest.mark.parametrize("stem", sorted(p.stem for p in (ROOT / "chapters").glob("*.ipynb")))
def test_what_a_chapter_calls_points_back_to_a_chapter(stem):
    # every eb.<module>.<name> in a chapter's code has a See-chapter line (helpers no chapter calls need none)
    public = {qualname: obj for qualname, _, obj in _public_objects()}
    used = set(re.findall(r"\beb\.(\w+\.\w+)", _chapter_code(stem))) & public.keys()
    missing = sorted(q for q in used if not SEE_CHAPTER.search(inspect.getdoc(public[q]) or ""))
    assert not missing, f"chapters/{stem}.ipynb uses {missing}, whose docstrings name no chapter"
