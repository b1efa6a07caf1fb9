"""Sphinx extension of the book: the website serves MathJax and the widget scripts itself.

By default Sphinx loads MathJax, and myst-nb loads RequireJS and the ipywidgets
renderer (``@jupyter-widgets/html-manager``), from public CDNs. A reader who is
offline, or behind a proxy that blocks those hosts, would then see raw TeX and no
widgets. This extension points both at copies inside the built site instead:

* ``npm ci`` (in the repository root) installs the pinned packages of
  ``package.json`` / ``package-lock.json`` into ``node_modules/``; the build runs it
  by itself when ``node_modules/`` is missing or was installed from another lock file;
* when the configuration is read, ``mathjax_path`` and ``nb_ipywidgets_js`` are
  set to ``_static/site-assets/...`` (paths relative to ``_static``, so the pages work
  under any base URL);
* after an HTML build, the files the pages load (and the licences) are copied
  from ``node_modules/`` into ``<site>/_static/site-assets/``.

The copy happens after the build on purpose: Jupyter Book adds every ``*.js`` it
finds in the source ``_static`` folder to every page, which would load MathJax's
dozens of lazily loaded components eagerly.

Loaded through ``sphinx.local_extensions`` in _config.yml. Without npm (Node.js) the
build stops with an error that says so, because the site it would produce would show
raw TeX and empty widget outputs.
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
from pathlib import Path

from sphinx.errors import ExtensionError
from sphinx.util import logging

ROOT = Path(__file__).resolve().parents[1]
NODE_MODULES = ROOT / "node_modules"
VENDOR = "site-assets"  # under the site's _static folder (the theme has its own vendor/)

# (folder inside node_modules, folder under _static/site-assets, what to copy from it)
MATHJAX = ("mathjax", "mathjax", [
    "es5/tex-mml-chtml.js",   # the component the pages load
    "es5/input",              # TeX extensions loaded on demand (\require, ...)
    "es5/output/chtml",       # the web fonts of the CommonHTML output
    "es5/a11y",               # accessibility components the context menu switches on
    "es5/sre",                # speech rule engine, used by those components
    "es5/ui",                 # context menu, safe mode
    "es5/adaptors",
    "LICENSE",
])
REQUIREJS = ("requirejs", "requirejs", ["require.js", "package.json"])  # licence in both
HTML_MANAGER = ("@jupyter-widgets/html-manager", "html-manager", [
    "dist/embed-amd.js",
    # the widget icons (FontAwesome), referenced by embed-amd.js's stylesheet
    *[f"dist/{name}" for name in ("*.woff2", "*.woff", "*.ttf", "*.eot", "*.svg")],
    "package.json",  # version and licence (BSD-3-Clause)
])
PACKAGES = [MATHJAX, REQUIREJS, HTML_MANAGER]

# Where the pages look for them (relative to _static); "es5/" and "dist/" are dropped
MATHJAX_PATH = f"{VENDOR}/mathjax/tex-mml-chtml.js"
REQUIRE_CONFIG = "require-config.js"
IPYWIDGETS_JS = {
    f"{VENDOR}/requirejs/require.js": {},
    f"{VENDOR}/{REQUIRE_CONFIG}": {},
    f"{VENDOR}/html-manager/embed-amd.js": {},
}
# html-manager finds its icon fonts next to the URL that RequireJS gives its module
# name; by default that is <page folder>/@jupyter-widgets/..., which does not exist.
# Map the name to the copy in this folder (this file's own URL, so any base URL works).
REQUIRE_CONFIG_JS = """\
// Written by tools/site_assets.py: where RequireJS finds the widget renderer's files.
(function () {
  var here = document.currentScript.src.replace(/[^/]*$/, "");
  window.require.config({paths: {"@jupyter-widgets/html-manager/dist": here + "html-manager"}});
})();
"""

logger = logging.getLogger(__name__)


def _target(relative: str) -> str:
    """The path under the vendor folder: the leading es5/ or dist/ is dropped."""
    first, _, rest = relative.partition("/")
    return rest if first in ("es5", "dist") and rest else relative


def _sources(node_modules: Path = NODE_MODULES) -> list[tuple[Path, Path]]:
    """(source in node_modules, destination relative to _static) for every file to copy.

    Raises ExtensionError naming the fix when a package or one of its files is missing.
    """
    pairs = []
    for package, folder, patterns in PACKAGES:
        base = node_modules / package
        if not base.is_dir():
            raise ExtensionError(
                f"the website's local copy of {package!r} is missing ({base} does not exist); "
                "run `npm ci` in the repository root (it installs the pinned versions of "
                "package-lock.json; needs Node.js and npm)"
            )
        for pattern in patterns:
            matches = sorted(base.glob(pattern))
            if not matches:
                raise ExtensionError(
                    f"{package}: nothing matches {pattern!r} in {base}; the installed version differs "
                    "from package-lock.json, run `npm ci` in the repository root"
                )
            for path in matches:
                pairs.append((path, Path(VENDOR) / folder / _target(path.relative_to(base).as_posix())))
    return pairs


def set_local_paths(app, config):
    config.mathjax_path = MATHJAX_PATH
    config.nb_ipywidgets_js = dict(IPYWIDGETS_JS)


LOCK = ROOT / "package-lock.json"
STAMP = NODE_MODULES / ".ebmbook-lock-sha256"   # the lock file node_modules was installed from


def _lock_digest() -> str:
    return hashlib.sha256(LOCK.read_bytes()).hexdigest()


def ensure_installed() -> None:
    """Run ``npm ci`` unless node_modules/ was installed from the current package-lock.json."""
    digest = _lock_digest()
    if STAMP.is_file() and STAMP.read_text().strip() == digest:
        return
    npm = shutil.which("npm")
    if npm is None:
        raise ExtensionError(
            "the website serves its own MathJax and widget scripts, installed with npm from "
            "package-lock.json, and npm was not found; install Node.js (it includes npm), "
            "e.g. `sudo apt-get install npm` or https://nodejs.org, then build again"
        )
    logger.info("site_assets: installing the website's scripts with `npm ci` (package-lock.json)")
    done = subprocess.run([npm, "ci", "--no-audit", "--no-fund"], cwd=ROOT, capture_output=True, text=True)
    if done.returncode != 0:
        raise ExtensionError(f"`npm ci` failed in {ROOT} (exit status {done.returncode}):\n{done.stderr[-2000:]}")
    STAMP.write_text(digest + "\n")


def check_installed(app):
    if app.builder.format == "html":
        ensure_installed()
        _sources()  # fail before reading any page, not after the whole build


def copy_assets(app, exception):
    if exception is not None or app.builder.format != "html":
        return
    static = Path(app.outdir) / "_static"
    count = 0
    for source, relative in _sources():
        target = static / relative
        if source.is_dir():
            shutil.copytree(source, target, dirs_exist_ok=True)
            count += sum(1 for p in source.rglob("*") if p.is_file())
        else:
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target)
            count += 1
    (static / VENDOR / REQUIRE_CONFIG).write_text(REQUIRE_CONFIG_JS, encoding="utf-8")
    logger.info(f"site_assets: copied {count} files of MathJax and the widget scripts into _static/{VENDOR}/")


def setup(app):
    app.connect("config-inited", set_local_paths)
    app.connect("builder-inited", check_installed)
    app.connect("build-finished", copy_assets)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
