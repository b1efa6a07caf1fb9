"""The first cell of a chapter installs ebmbook in a fresh environment, and only ebmbook.

This simulates a fresh Colab runtime without the network:

* **A fresh environment.** A new virtual environment sees every package of the running
  one (torch, numpy, IPython, pip, ...) through a .pth file that points at a folder of links
  to them, minus ebmbook itself, so ``import ebmbook`` fails there as it does in Colab.
* **The release tag.** The package files of this working tree are committed to a scratch git
  repository and tagged ``v<version>``; a later commit on top changes the version, so the
  test fails if the cell installs anything but the tag.
* **The cell itself.** The first code cell of a chapter runs in IPython (``%pip`` is an
  IPython magic), with only the repository URL swapped for the scratch repository. Where
  the environment's setuptools can build the package, ``--no-index --no-build-isolation`` is
  added: pip may then download nothing at all, which also proves that every dependency,
  torch included, is taken as it is. Otherwise pip fetches only its build backend from the
  package index, as it would in Colab.
* **Nothing else installed.** Afterwards the fresh environment holds exactly one new
  distribution, ebmbook: torch and the other dependencies were not reinstalled.
* Then the setup cell runs, and the second run of the install cell must print nothing.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import nbformat
import pytest

import ebmbook
from tools.execute import ROOT, repository, toc_notebooks

VERSION = ebmbook.__version__
PACKAGE_FILES = ["pyproject.toml", "README.md", "LICENSE"]
HIDDEN = re.compile(r"^(ebmbook|__editable__.*ebmbook|__editable___ebmbook).*", re.IGNORECASE)


def _run(cmd, *, cwd, env, timeout=600):
    proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    return proc.returncode, proc.stdout + proc.stderr


def _git(args, cwd):
    env = {**os.environ, "GIT_AUTHOR_NAME": "test", "GIT_AUTHOR_EMAIL": "test@example.org",
           "GIT_COMMITTER_NAME": "test", "GIT_COMMITTER_EMAIL": "test@example.org"}
    subprocess.run(["git", "-c", "init.defaultBranch=main", "-c", "commit.gpgsign=false", *args],
                   cwd=cwd, env=env, check=True, capture_output=True)


def _release_repository(dest: Path) -> Path:
    """A git repository with the package files, tagged v<version>, and one later commit."""
    dest.mkdir()
    for name in PACKAGE_FILES:
        shutil.copy2(ROOT / name, dest / name)
    shutil.copytree(ROOT / "ebmbook", dest / "ebmbook", ignore=shutil.ignore_patterns("__pycache__"))
    _git(["init", "-q"], dest)
    _git(["add", "-A"], dest)
    _git(["commit", "-q", "-m", f"release {VERSION}"], dest)
    _git(["tag", f"v{VERSION}"], dest)
    init = dest / "ebmbook" / "__init__.py"
    text = init.read_text(encoding="utf-8")
    init.write_text(text.replace(f'__version__ = "{VERSION}"', '__version__ = "999.0.0"'), encoding="utf-8")
    _git(["commit", "-q", "-am", "after the release"], dest)
    return dest


def _fresh_environment(tmp: Path) -> tuple[Path, Path]:
    """A venv that sees this environment's packages except ebmbook; returns (python, site-packages)."""
    base = tmp / "base-packages"
    base.mkdir()
    sources = {Path(sysconfig.get_paths()[key]) for key in ("purelib", "platlib")}
    for source in sources:
        for entry in source.iterdir():
            if HIDDEN.match(entry.name) or entry.suffix == ".pth" or (base / entry.name).exists():
                continue
            (base / entry.name).symlink_to(entry)
    env_dir = tmp / "fresh-env"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(env_dir)], check=True, capture_output=True)
    python = env_dir / ("Scripts/python.exe" if os.name == "nt" else "bin/python")
    site = Path(subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        check=True, capture_output=True, text=True).stdout.strip())
    (site / "zz_base_packages.pth").write_text(str(base) + "\n", encoding="utf-8")
    return python, site


def _installed(site: Path) -> set[str]:
    return {p.name.split("-")[0].lower() for p in site.glob("*.dist-info")}


def _cells() -> tuple[str, str]:
    notebooks = toc_notebooks()
    assert notebooks, "_toc.yml lists no chapter"
    cells = [c for c in nbformat.read(notebooks[0], as_version=4).cells if c.cell_type == "code"]
    return cells[0].source, cells[1].source


def _local_cell(bootstrap: str, local_url: str, offline_build: bool) -> str:
    url = repository()["url"]
    pattern = rf'%pip install -q "ebmbook @ git\+{re.escape(url)}@v{re.escape(VERSION)}"'
    assert len(re.findall(pattern, bootstrap)) == 1, f"the install cell does not install v{VERSION}:\n{bootstrap}"
    flags = "--no-index --no-build-isolation " if offline_build else ""
    return re.sub(pattern, f'%pip install -q {flags}"ebmbook @ git+{local_url}@v{VERSION}"', bootstrap)


def _can_build_offline() -> bool:
    """Whether this environment's setuptools meets pyproject.toml's build requirement."""
    import tomllib

    from packaging.requirements import Requirement

    build = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["build-system"]
    try:
        import setuptools
    except ImportError:
        return False
    return all(Requirement(req).specifier.contains(setuptools.__version__)
               for req in build["requires"] if Requirement(req).name == "setuptools")


@pytest.fixture(scope="module")
def fresh(tmp_path_factory):
    if shutil.which("git") is None:
        pytest.skip("git is needed to install from a git URL, as the install cell does")
    tmp = tmp_path_factory.mktemp("bootstrap")
    repo = _release_repository(tmp / "release")
    python, site = _fresh_environment(tmp)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "PIP_", "VIRTUAL_ENV"))}
    env.update(PYTHONNOUSERSITE="1", PIP_DISABLE_PIP_VERSION_CHECK="1", PIP_NO_INPUT="1",
               MPLBACKEND="Agg", EBMBOOK_DEVICE="cpu")
    return python, site, repo, env, tmp


def test_dependencies_are_lower_bounds():
    # A pin or an upper bound that Colab's preinstalled torch does not meet would make the
    # install cell download and replace torch, which then needs a runtime restart
    import tomllib

    from packaging.requirements import Requirement

    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    bad = [dep for dep in project["dependencies"]
           if any(spec.operator != ">=" for spec in Requirement(dep).specifier)]
    assert not bad, f"pyproject.toml dependencies must be lower bounds only (name>=version): {bad}"


@pytest.mark.slow  # about 30-60 s: a git clone, a wheel build, three interpreters that import torch
def test_install_cell_installs_the_release_and_nothing_else(fresh):
    python, site, repo, env, tmp = fresh
    # Before the cell: everything but ebmbook is importable, as in a fresh Colab runtime
    code, out = _run([str(python), "-c", "import torch, numpy, IPython, pip; import ebmbook"], cwd=tmp, env=env)
    assert code != 0 and "No module named 'ebmbook'" in out, f"the fresh environment should lack only ebmbook:\n{out}"
    assert _installed(site) == set(), f"the fresh environment already has {_installed(site)}"
    bootstrap, setup = _cells()
    # file://localhost/... rather than file:///...: pip before 23.3 (the pip that Python 3.11's
    # venv installs) takes "name @ git+file:///..." for a path and refuses it
    local_url = repo.as_uri().replace("file://", "file://localhost", 1)
    cell = _local_cell(bootstrap, local_url, _can_build_offline())
    script = tmp / "first_cells.ipy"
    script.write_text(cell + "\nprint('--- setup cell ---')\n" + setup + "\n"
                      "print('ebmbook from', ebmbook.__file__)\n", encoding="utf-8")
    ipython = [str(python), "-m", "IPython", "--quick", "--no-banner", "--colors=NoColor"]
    code, out = _run(ipython + [str(script)], cwd=tmp, env=env)
    assert code == 0 and f"ebmbook {VERSION} on cpu" in out, f"the first cells failed in a fresh environment:\n{out}"
    assert "Traceback" not in out and "Error" not in out, out

    # Only ebmbook was installed: torch and every other dependency were taken as they were
    assert _installed(site) == {"ebmbook"}, f"the install cell installed {sorted(_installed(site))}, not only ebmbook"
    assert not (site / "torch").exists()
    located = re.search(r"ebmbook from (.+)", out).group(1).strip()
    assert Path(located).is_relative_to(site), f"ebmbook was imported from {located}, not from the fresh environment"

    # The tag was installed, not the newer commit on top of it
    code, out = _run([str(python), "-c", "import importlib.metadata as m, ebmbook; "
                      "print(ebmbook.__version__, m.version('ebmbook'))"], cwd=tmp, env=env)
    assert code == 0 and out.split() == [VERSION, VERSION], out

    # Where ebmbook is installed, the cell does nothing and prints nothing
    again = tmp / "install_cell_again.ipy"
    again.write_text(cell + "\n", encoding="utf-8")
    code, out = _run(ipython + [str(again)], cwd=tmp, env=env)
    assert code == 0 and out.strip() == "", f"a second run of the install cell printed:\n{out}"
