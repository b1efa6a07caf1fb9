"""Execute chapters in place, in the reference environment, so that their outputs can be committed.

Usage (from anywhere)::

    python tools/execute.py                                   # every notebook listed in _toc.yml
    python tools/execute.py chapters/boltzmann.ipynb          # one chapter
    python tools/execute.py chapters/boltzmann.ipynb --check-determinism

What it does to each notebook, in order:

1. rewrites the first code cell to the canonical install cell (see ``bootstrap_source``),
   tagged ``remove-cell`` (hidden on the website; Colab still runs it);
2. sets the kernelspec to ``python3``, drops stale outputs, widget state and
   per-cell ``metadata.execution`` timestamps;
3. runs every cell top to bottom with nbclient in a fresh kernel whose working
   directory is the notebook's folder, under the environment of
   ``tools/reference_env.py`` (the same one pytest uses to check the outputs),
   saving the widget state so that widgets render on the website;
4. renames the widgets' random model ids after their order of creation, so
   that re-executing an unchanged chapter gives an unchanged file;
5. writes the notebook back and prints the wall time.

With ``--check-determinism`` the notebook is then executed a second time, in a
scratch copy, and every code cell whose outputs differ between the two runs is
listed, compared text for text (after the sanitizers of ``nbval_sanitize.cfg``;
images and widget ids are left out; cells tagged ``nbval-ignore-output`` or
``nbval-skip`` are not compared): on one machine even a trained number must repeat.

With ``--check`` nothing is written: each notebook is executed in a scratch copy and
compared with its committed outputs under the rules of the tests
(tools/nbcompare.py: numbers masked in cells tagged ``nbval-mask-numbers``, and in
every cell off the reference platform), so an author sees locally what CI will see.

The exit status is 1 when a cell raises or a check finds differences.
"""

from __future__ import annotations

import argparse
import copy
import difflib
import re
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import nbformat  # noqa: E402
import yaml  # noqa: E402
from nbclient import NotebookClient  # noqa: E402
from nbclient.exceptions import CellExecutionError, CellTimeoutError, DeadKernelError  # noqa: E402
from nbformat.v4.nbbase import random_cell_id  # noqa: E402

from tools import nbcompare, reference_env  # noqa: E402

BOOTSTRAP_TAG = "remove-cell"
KERNELSPEC = {"name": "python3", "display_name": "Python 3 (ipykernel)", "language": "python"}
TIMEOUT_S = 600
WIDGET_STATE = "application/vnd.jupyter.widget-state+json"
# What nbval leaves out of its comparison, plus every image type
SKIPPED_KEYS = {
    "metadata",
    "traceback",
    "prompt_number",
    "output_type",
    "execution_count",
    "application/vnd.jupyter.widget-view+json",
}


# ---------------------------------------------------------------- configuration


def book_config(root: Path = ROOT) -> dict:
    """The parsed _config.yml."""
    return yaml.safe_load((root / "_config.yml").read_text(encoding="utf-8"))


def repository(root: Path = ROOT) -> dict:
    """The repository block of _config.yml: url, branch, path_to_book."""
    repo = dict(book_config(root)["repository"])
    repo["url"] = repo["url"].rstrip("/")
    repo["path_to_book"] = (repo.get("path_to_book") or "").strip("/")
    return repo


def package_version(root: Path = ROOT) -> str:
    """ebmbook.__version__, read from the source text (importing would need torch)."""
    text = (root / "ebmbook" / "__init__.py").read_text(encoding="utf-8")
    match = re.search(r"""^__version__\s*=\s*["']([^"']+)["']""", text, flags=re.MULTILINE)
    if match is None:
        raise ValueError("no __version__ = '...' line found in ebmbook/__init__.py")
    return match.group(1)


def bootstrap_source(root: Path = ROOT) -> str:
    """The canonical first code cell of every chapter.

    It installs the ebmbook release that matches the book (a git tag ``v<version>``
    of the repository named in _config.yml) when the package is missing, as it is
    in a fresh Colab runtime. Where ebmbook is installed it does nothing and prints
    nothing.
    """
    url = repository(root)["url"]
    version = package_version(root)
    return (
        "# Colab or a fresh environment: install ebmbook when it is missing\n"
        "try:\n"
        "    import ebmbook\n"
        "except ImportError:\n"
        f'    %pip install -q "ebmbook @ git+{url}@v{version}"\n'
        "    import importlib\n"
        "    importlib.invalidate_caches()  # let this kernel see the new package\n"
        "    import ebmbook"
    )


def colab_url(docname: str, root: Path = ROOT) -> str:
    """The Colab link of a notebook page, as sphinx-book-theme builds it from _config.yml."""
    config = book_config(root)
    repo = repository(root)
    base = config["launch_buttons"]["colab_url"].rstrip("/")
    github = repo["url"].removeprefix("https://github.com/")
    path = f"{repo['path_to_book']}/{docname}" if repo["path_to_book"] else docname
    return f"{base}/github/{github}/blob/{repo['branch']}/{path}.ipynb"


def toc_files(root: Path = ROOT) -> list[str]:
    """Every file named in _toc.yml (root first), as written there (no suffix)."""
    toc = yaml.safe_load((root / "_toc.yml").read_text(encoding="utf-8"))
    found = [toc["root"]]

    def walk(node):
        if isinstance(node, dict):
            if "file" in node:
                found.append(node["file"])
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for item in node:
                walk(item)

    walk({k: v for k, v in toc.items() if k != "root"})
    return found


def toc_notebooks(root: Path = ROOT) -> list[Path]:
    """The notebooks listed in _toc.yml, in book order."""
    paths = [root / f"{name}.ipynb" for name in toc_files(root)]
    return [p for p in paths if p.exists()]


# ---------------------------------------------------------------- preparation


def code_cells(nb) -> list:
    return [cell for cell in nb.cells if cell.cell_type == "code"]


def is_bootstrap_cell(cell) -> bool:
    tags = cell.get("metadata", {}).get("tags", [])
    return BOOTSTRAP_TAG in tags or "%pip install" in cell.source


def prepare(nb, root: Path = ROOT):
    """Canonical install cell first, python3 kernelspec, no stale outputs or timestamps."""
    cells = code_cells(nb)
    if cells and is_bootstrap_cell(cells[0]):
        boot = cells[0]
        boot.source = bootstrap_source(root)
    else:
        boot = nbformat.v4.new_code_cell(bootstrap_source(root))
        first_code = nb.cells.index(cells[0]) if cells else len(nb.cells)
        nb.cells.insert(first_code, boot)
        print("  inserted the install cell before the first code cell")
    tags = boot.metadata.setdefault("tags", [])
    if BOOTSTRAP_TAG not in tags:
        tags.append(BOOTSTRAP_TAG)

    nb.metadata["kernelspec"] = dict(KERNELSPEC)
    nb.metadata.pop("widgets", None)
    for cell in nb.cells:
        cell.metadata.pop("execution", None)
        cell.metadata.pop("ExecuteTime", None)
        if cell.cell_type == "code":
            cell.outputs = []
            cell.execution_count = None
    if nb.nbformat_minor < 5:  # cell ids arrived with format 4.5
        nb.nbformat_minor = 5
    for cell in nb.cells:
        if "id" not in cell:
            cell["id"] = random_cell_id()
    return nb


# ---------------------------------------------------------------- execution


def run(nb, cwd: Path, allow_errors: bool = False):
    """Execute nb in memory in a fresh python3 kernel started in cwd; returns nb.

    With allow_errors, a cell that raises is recorded as an error output and the
    following cells still run.
    """
    client = NotebookClient(
        nb,
        timeout=TIMEOUT_S,
        allow_errors=allow_errors,
        kernel_name=KERNELSPEC["name"],
        store_widget_state=True,
        record_timing=False,
        coalesce_streams=True,  # one stream output per name, with \r progress updates resolved
        resources={"metadata": {"path": str(cwd)}},
    )
    client.execute()
    for cell in nb.cells:  # nothing should add them with record_timing off; be sure
        cell.metadata.pop("execution", None)
    return nb


def stable_widget_ids(nb, salt: str):
    """Replace the random widget model ids by ids derived from salt and creation order.

    The kernel names every widget with a fresh uuid4, so without this each
    re-execution would rewrite the whole saved widget state and every widget
    output, even when nothing changed.
    """
    state = nb.metadata.get("widgets", {}).get(WIDGET_STATE, {}).get("state", {})
    # nbclient records widgets in the order the kernel created them
    new_ids = {old: uuid.uuid5(uuid.NAMESPACE_URL, f"{salt}#{i}").hex for i, old in enumerate(state)}

    def rename(value):
        if isinstance(value, str):
            if value.startswith("IPY_MODEL_") and value[10:] in new_ids:
                return "IPY_MODEL_" + new_ids[value[10:]]
            return new_ids.get(value, value)
        if isinstance(value, list):
            return [rename(v) for v in value]
        if isinstance(value, dict):
            return type(value)((new_ids.get(k, k), rename(v)) for k, v in value.items())
        return value

    if new_ids:
        nb.metadata["widgets"] = rename(nb.metadata["widgets"])
        for cell in code_cells(nb):
            cell.outputs = rename(cell.outputs)
    return nb


def execute(path: Path, root: Path = ROOT) -> float:
    """Prepare and execute one notebook in place; returns the wall time in seconds."""
    nb = prepare(nbformat.read(path, as_version=4), root)
    start = time.perf_counter()
    run(nb, cwd=path.parent)
    elapsed = time.perf_counter() - start
    stable_widget_ids(nb, salt=path.name)
    nbformat.write(nb, path)
    return elapsed


# ---------------------------------------------------------------- determinism


def compared_outputs(cell, sanitizers, masked: bool = False) -> list[str]:
    """What nbval compares in a code cell, as one line per (key, value)."""
    def clean(value):
        if isinstance(value, list):
            value = "".join(value)
        value = str(value)
        for regex, replacement in sanitizers:
            value = re.sub(regex, replacement, value)
        return nbcompare.mask_numbers(value) if masked else value

    lines = []
    for out in cell.get("outputs", []):
        for key, value in out.items():
            if key in SKIPPED_KEYS:
                continue
            if key == "data":
                for mime, payload in value.items():
                    if mime in SKIPPED_KEYS or mime.startswith("image/"):
                        continue
                    lines.append(f"[{mime}] {clean(payload)}")
            else:
                lines.append(f"[{key}] {clean(value)}")
    return lines


def differing_cells(first, second, sanitizers, reference_platform: bool | None = None) -> list[tuple[int, str]]:
    """(code-cell index, diff) for every compared cell whose outputs differ.

    With reference_platform None every compared cell is compared text for text;
    otherwise numbers are masked where tools/nbcompare.py masks them on such a platform.
    """
    found = []
    for i, (a, b) in enumerate(zip(code_cells(first), code_cells(second))):
        if not nbcompare.is_compared(a):
            continue
        masked = reference_platform is not None and nbcompare.is_masked(a, reference_platform)
        out_a, out_b = compared_outputs(a, sanitizers, masked), compared_outputs(b, sanitizers, masked)
        if out_a != out_b:
            diff = difflib.unified_diff(
                "\n".join(out_a).splitlines(), "\n".join(out_b).splitlines(),
                "first", "second", lineterm="", n=1,
            )
            found.append((i, "\n".join(diff)))
    return found


def rerun_and_compare(path: Path, reference_platform: bool | None, what: str) -> bool:
    """Execute the notebook at path again in a scratch copy and report the cells that differ."""
    first = nbformat.read(path, as_version=4)
    second = copy.deepcopy(first)
    start = time.perf_counter()
    run(second, cwd=path.parent)
    elapsed = time.perf_counter() - start
    scratch = Path(tempfile.mkdtemp(prefix="ebmbook-rerun-")) / path.name
    nbformat.write(second, scratch)
    problems = differing_cells(first, second, nbcompare.load_sanitizers(), reference_platform)
    if not problems:
        print(f"  {what}: no differences ({elapsed:.1f} s)")
        return True
    print(f"  {what}: {len(problems)} code cell(s) differ (the new run: {scratch}):")
    for index, diff in problems:
        print(f"  --- code cell {index} (nbval 'Cell {index}')")
        print("      " + diff.replace("\n", "\n      "))
    return False


# ---------------------------------------------------------------- command line


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("notebooks", nargs="*", type=Path,
                        help="notebooks to execute (default: every notebook in _toc.yml)")
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--check-determinism", action="store_true",
                      help="execute, then execute a second time and list the cells whose outputs differ")
    mode.add_argument("--check", action="store_true",
                      help="write nothing: re-execute and compare with the committed outputs as the tests do")
    args = parser.parse_args(argv)

    paths = [p.resolve() for p in args.notebooks] or toc_notebooks()
    if not paths:
        print("no notebooks to execute")
        return 1
    env = reference_env.apply()
    print("reference environment: " + " ".join(f"{k}={v}" for k, v in env.items()))
    if args.check:
        print("outputs: " + reference_env.describe())

    status, total = 0, 0.0
    for path in paths:
        if path.suffix != ".ipynb" or not path.exists():
            print(f"{path}: not an existing .ipynb file")
            status = 1
            continue
        shown = path.relative_to(ROOT) if path.is_relative_to(ROOT) else path
        print(f"{shown}: {'checking' if args.check else 'executing'} ...", flush=True)
        try:
            if args.check:
                ok = rerun_and_compare(path, reference_env.is_reference_platform(), "against the committed outputs")
                status |= 0 if ok else 1
                continue
            elapsed = execute(path)
        except (CellExecutionError, CellTimeoutError, DeadKernelError) as error:
            print(f"{shown}: FAILED, the notebook was left unchanged\n{error}")
            status = 1
            continue
        total += elapsed
        print(f"{shown}: {elapsed:.1f} s")
        if args.check_determinism and not rerun_and_compare(path, None, "second run"):
            status = 1
    if not args.check:
        print(f"total: {total:.1f} s")
    return status


if __name__ == "__main__":
    sys.exit(main())
