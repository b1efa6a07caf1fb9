"""The built website as a reader sees it, in a real headless Chromium, offline.

The site built by the `book_build` fixture (tests/conftest.py, the same build that
tests/test_book_build.py checks) is served on 127.0.0.1, and every page of _toc.yml
is opened in Debian's Chromium, driven by Playwright. Every request to any other
host is blocked and counted: the site must load nothing from the network (MathJax
and the widget scripts are served from the site itself, see tools/site_assets.py).

On each page: the title; every formula typeset by MathJax, no raw TeX left; every
image loaded, with alt text; no failed request, no script error. On each chapter
(a notebook) also: the Colab launch link, the exercises with collapsed solutions,
citations that resolve to the reference list on the page, and the widgets that the
notebook saved, rendered; a frame slider, dragged with the mouse, shows another
frame. A full-page screenshot of every page goes to _build/browser-screenshots/.

Needs `apt-get install chromium` (Debian/Ubuntu; the browser is never downloaded
by Playwright) and `pip install -r requirements.txt` (Playwright for Python).
Without them these tests are skipped, unless EBMBOOK_REQUIRE_BROWSER=1 (as in CI),
when they fail instead. EBMBOOK_CHROMIUM names another Chromium executable.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import http.server
import os
import re
import shutil
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import nbformat
import pytest

from tools.execute import ROOT, colab_url, toc_files

CHROMIUM = os.environ.get("EBMBOOK_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
REQUIRED = os.environ.get("EBMBOOK_REQUIRE_BROWSER") == "1"
INSTALL_HINT = (
    "install Chromium with `apt-get install -y chromium` (Debian/Ubuntu, as root or with sudo) and "
    "Playwright with `python -m pip install -r requirements.txt`; set EBMBOOK_CHROMIUM to use "
    "another Chromium executable"
)
SCREENSHOTS = ROOT / "_build" / "browser-screenshots"
TIMEOUT_MS = 180_000  # pages load while two notebooks run on the two cores (106 s seen once); a missing element fails after this long
WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"
WIDGET_STATE = "application/vnd.jupyter.widget-state+json"
# Script errors that a page may raise without harm, with the reason
HARMLESS_PAGE_ERRORS = {
    # Jupyter Book 1 writes sphinx-thebe's inline settings twice into every page; the
    # second copy fails to redeclare the constant, and the first one is used
    "Identifier 'THEBE_JS_URL' has already been declared",
    # html-manager asks MathJax 2's API (MathJax.Hub.Queue) to typeset widget labels
    # after it has set their text; with MathJax 3 that call fails and the plain text
    # stays (test_no_raw_tex checks that no label holds TeX)
    "Cannot read properties of undefined (reading 'Queue')",
}


def _browser_missing() -> str | None:
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "Playwright for Python is not installed"
    if not Path(CHROMIUM).exists():
        return f"no Chromium at {CHROMIUM}"
    return None


MISSING = _browser_missing()
if MISSING and not REQUIRED:
    pytest.skip(f"{MISSING}: {INSTALL_HINT}", allow_module_level=True)


# ------------------------------------------------------------------ what the sources say


PAGES = toc_files()
CHAPTERS = [name for name in PAGES if (ROOT / f"{name}.ipynb").exists()]
MATH_IN_SOURCE = re.compile(r"\$[^$\n]+\$|\$\$|\\begin\{|\{math\}|:math:")
# Inline code (not a role such as {cite:p}`key`), which may hold a $ that is not math
INLINE_CODE = re.compile(r"(?<![}`])`[^`\n]+`(?!`)")
FENCE_LINE = re.compile(r"^\s*(`{3,}|~{3,}|:{3,})(.*)$")


def _source(name: str) -> Path:
    for suffix in (".ipynb", ".md"):
        if (ROOT / f"{name}{suffix}").exists():
            return ROOT / f"{name}{suffix}"
    raise FileNotFoundError(f"_toc.yml names {name}, but neither {name}.ipynb nor {name}.md exists")


def _without_code_blocks(text: str) -> str:
    """The lines of MyST markdown outside code blocks; directives (```{name}) and their bodies stay."""
    kept, fences = [], []  # fences: (marker, is_code) of the blocks we are in
    for line in text.splitlines():
        match = FENCE_LINE.match(line)
        if match:
            marker, info = match.groups()
            closing = fences and not info.strip() and marker[0] == fences[-1][0][0] and len(marker) >= len(fences[-1][0])
            if closing:
                _, was_code = fences.pop()
                if was_code:
                    continue
            elif not any(code for _, code in fences):
                fences.append((marker, not info.strip().startswith("{")))
                if fences[-1][1]:
                    continue
            else:
                continue
        if not any(code for _, code in fences):
            kept.append(line)
    return "\n".join(kept)


@functools.cache
def _prose(name: str) -> str:
    """The page's markdown (a notebook's markdown cells, or the .md file), without code blocks."""
    path = _source(name)
    if path.suffix == ".ipynb":
        nb = nbformat.read(path, as_version=4)
        text = "\n\n".join(c.source for c in nb.cells if c.cell_type == "markdown")
    else:
        text = path.read_text(encoding="utf-8")
    return _without_code_blocks(text)


def _markdown(name: str) -> str:
    """The prose without inline code either: what math and citations are searched in."""
    return INLINE_CODE.sub("", _prose(name))


def _title(name: str) -> str | None:
    match = re.search(r"^# (.+)$", _prose(name), flags=re.M)
    return match.group(1).strip() if match else None


def _directives(name: str, directive: str) -> int:
    """How many times the page's source opens the directive (``{exercise}`` or its gated ``-start`` form)."""
    return len(re.findall(rf"^(```+|:::+)\{{{directive}(-start)?\}}", _markdown(name), flags=re.M))


def _words(text: str) -> list[str]:
    return re.findall(r"[A-Za-z0-9]+", text)


def _notebook(name: str):
    return nbformat.read(ROOT / f"{name}.ipynb", as_version=4)


def _widget_views(nb) -> list[str]:
    """Model ids of the widgets that the notebook's outputs display, in page order."""
    return [
        out.data[WIDGET_VIEW]["model_id"]
        for cell in nb.cells if cell.cell_type == "code"
        if not {"remove-cell", "remove-output"} & set(cell.metadata.get("tags", []))
        for out in cell.get("outputs", [])
        if WIDGET_VIEW in out.get("data", {})
    ]


@dataclass
class FrameSlider:
    labels: list[str]   # the slider's positions
    frames: list[str]   # SHA-256 of the PNG shown at each position


def _frame_sliders(nb) -> list[FrameSlider]:
    """Every slider whose index is jslink-ed to a Stack of images, as eb.plotting.frame_slider makes."""
    state = nb.metadata.get("widgets", {}).get(WIDGET_STATE, {}).get("state", {})
    found = []
    for model in state.values():
        if model["model_name"] != "LinkModel":
            continue
        (source, source_trait), (target, target_trait) = model["state"]["source"], model["state"]["target"]
        slider = state.get(source.removeprefix("IPY_MODEL_"), {})
        stack = state.get(target.removeprefix("IPY_MODEL_"), {})
        if stack.get("model_name") == "StackModel" and (source_trait, target_trait) == ("index", "selected_index"):
            frames = []
            for child in stack["state"]["children"]:
                frame = state[child.removeprefix("IPY_MODEL_")]
                if frame["model_name"] == "ImageModel":  # the PNG is a binary buffer
                    (png,) = [b["data"] for b in frame.get("buffers", []) if b["path"] == ["value"]]
                else:  # an HTML frame holds it as a data URL
                    (png,) = re.findall(r"data:image/png;base64,([A-Za-z0-9+/=]+)", frame["state"]["value"])
                frames.append(hashlib.sha256(base64.b64decode(png)).hexdigest())
            found.append(FrameSlider(list(slider["state"]["_options_labels"]), frames))
    return found


# ------------------------------------------------------------------ server and browser


@pytest.fixture(scope="module")
def site(book_build):
    """The built site on http://127.0.0.1:PORT/ (a thread of this process); yields the base URL."""
    if not (book_build.html / "index.html").exists():
        pytest.fail(f"the book build produced no site (exit status {book_build.returncode}):\n{book_build.log}")

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), functools.partial(Quiet, directory=str(book_build.html))
    )
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/"
    server.shutdown()
    server.server_close()


_launch_s = 0.0


@pytest.fixture(scope="module")
def browser():
    global _launch_s
    if MISSING:
        pytest.fail(f"EBMBOOK_REQUIRE_BROWSER=1 and {MISSING}: {INSTALL_HINT}")
    from playwright.sync_api import sync_playwright

    start = time.perf_counter()
    with sync_playwright() as p:
        chromium = p.chromium.launch(
            executable_path=CHROMIUM,
            args=["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync"],
        )
        _launch_s = time.perf_counter() - start
        yield chromium
        chromium.close()


@dataclass
class Visit:
    """One page opened in its own browser context, and what happened while it loaded."""

    name: str
    page: object
    external: list[str] = field(default_factory=list)   # blocked requests to other hosts
    failed: list[str] = field(default_factory=list)     # local requests answered with an error
    errors: list[str] = field(default_factory=list)     # uncaught script errors
    unsettled: list[str] = field(default_factory=list)  # what did not finish loading
    load_s: float = 0.0


def _settle(visit: Visit, what: str, wait) -> None:
    """Run a wait; a timeout is recorded (and reported by test_loads_offline), not raised."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    try:
        wait()
    except PlaywrightTimeout:
        visit.unsettled.append(f"{what}: not done after {TIMEOUT_MS / 1000:.0f} s")


_stats: dict[str, dict] = {}


def _open(browser, base: str, name: str, *, screenshot: bool) -> Visit:
    """Open a page, wait until MathJax and the widgets are done, optionally screenshot it."""
    context = browser.new_context(viewport={"width": 1280, "height": 900}, service_workers="block")
    page = context.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    visit = Visit(name, page)
    local = urlsplit(base).netloc

    def route(route):
        url = route.request.url
        if urlsplit(url).netloc == local:
            route.continue_()
        else:
            visit.external.append(url)
            route.abort("blockedbyclient")

    context.route("**/*", route)
    page.on("pageerror", lambda error: visit.errors.append(str(error)))
    page.on("response", lambda r: visit.failed.append(f"{r.status} {r.url}")
            if r.status >= 400 and not r.url.endswith("/favicon.ico") else None)

    start = time.perf_counter()
    page.goto(base + f"{name}.html", wait_until="load")
    # MathJax and the widget scripts run before the load event (deferred or plain
    # scripts); when one of them did not load, say so at once instead of waiting
    if page.locator(".math").count():
        if page.evaluate("() => !!(window.MathJax && MathJax.startup && MathJax.startup.promise)"):
            page.evaluate("() => { MathJax.startup.promise.then(() => { window.ebmbookTypeset = true; }); }")
            _settle(visit, "MathJax typesetting", lambda: page.wait_for_function("() => window.ebmbookTypeset"))
        else:
            visit.unsettled.append("MathJax did not load")
    if page.locator(f'script[type="{WIDGET_VIEW}"]').count():
        if page.evaluate("() => typeof window.require === 'function' && !!require.defined"):
            # html-manager puts each view (or an error box) just before its script tag
            _settle(visit, "widget rendering", lambda: page.wait_for_function(
                f"""() => [...document.querySelectorAll('script[type="{WIDGET_VIEW}"]')]
                      .every(s => s.parentElement.querySelector('.jupyter-widgets'))"""
            ))
        else:
            visit.unsettled.append("RequireJS, needed by the widget renderer, did not load")
    _settle(visit, "network idle", lambda: page.wait_for_load_state("networkidle"))
    if screenshot:
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SCREENSHOTS / f"{name.replace('/', '__')}.png"), full_page=True)
    visit.load_s = time.perf_counter() - start
    key = name if screenshot else f"{name} (reloaded)"
    _stats[key] = {"load_s": round(visit.load_s, 3), "external": len(visit.external)}
    return visit


@pytest.fixture(scope="module")
def visits(browser, site):
    """Pages opened once each, shared by the read-only checks below."""
    opened: dict[str, Visit] = {}

    def visit(name: str) -> Visit:
        if name not in opened:
            opened[name] = _open(browser, site, name, screenshot=True)
        return opened[name]

    yield visit
    for v in opened.values():
        v.page.context.close()


@pytest.fixture(autouse=True)
def _report(record_property, book_build):
    yield
    record_property("book_build_s", book_build.seconds)
    record_property("browser_launch_s", _launch_s)
    record_property("browser_pages", dict(_stats))


page_names = pytest.mark.parametrize("name", PAGES)
chapter_names = pytest.mark.parametrize("name", CHAPTERS)


# ------------------------------------------------------------------ every page


@page_names
def test_loads_offline(visits, name):
    v = visits(name)
    assert not v.external, (
        f"{len(v.external)} request(s) to other hosts (blocked here; readers offline would miss them): "
        f"{v.external}. Serve the file from the site (tools/site_assets.py) instead of a CDN"
    )
    assert not v.failed, f"requests that failed on the site itself: {v.failed}"
    assert not v.unsettled, f"the page did not finish loading: {v.unsettled}"
    errors = [e for e in v.errors if not any(ok in e for ok in HARMLESS_PAGE_ERRORS)]
    assert not errors, f"script errors on the page: {errors}"


@page_names
def test_title(visits, name):
    heading = visits(name).page.locator("main h1").first.inner_text().strip()
    assert heading, "the page shows no <h1> title"
    title = _title(name)
    if title is not None:
        assert _words(title) == _words(heading), f"the page shows the title {heading!r}, the source says {title!r}"
    assert _words(heading)[0] in _words(visits(name).page.title()), "the browser tab does not show the title"


@page_names
def test_math_is_typeset(visits, name):
    page = visits(name).page
    untypeset = page.evaluate(
        """() => [...document.querySelectorAll('.math')]
             .filter(e => !e.querySelector('mjx-container')).map(e => e.textContent.slice(0, 80))"""
    )
    assert not untypeset, f"{len(untypeset)} formula(s) not typeset by MathJax: {untypeset[:5]}"
    containers = page.locator("mjx-container").count()
    if MATH_IN_SOURCE.search(_markdown(name)):
        assert containers > 0, "the source has math, but MathJax typeset nothing on the page"


@page_names
def test_no_raw_tex(visits, name):
    # The reader-visible prose (code and program output are left out, they may hold $ or \()
    text = visits(name).page.evaluate(
        """() => {
            const main = document.querySelector('main').cloneNode(true);
            main.querySelectorAll('pre, code, script, style, svg, mjx-container, .highlight')
                .forEach(e => e.remove());
            return main.innerText;
        }"""
    )
    raw = re.findall(r"\\\(|\\\)|\\\[|\\\]|\$\$|\\begin\{|\$[^$\s][^$\n]{0,80}\$", text)
    assert not raw, f"raw TeX left in the text: {raw[:10]}"


@page_names
def test_images_load_with_alt_text(visits, name):
    images = visits(name).page.evaluate(
        """() => [...document.querySelectorAll('img')].map(i => ({
              src: i.currentSrc.slice(0, 100), ok: i.complete && i.naturalWidth > 0,
              alt: (i.getAttribute('alt') || '').trim()}))"""
    )
    broken = [i["src"] for i in images if not i["ok"]]
    assert not broken, f"images that did not load: {broken}"
    no_alt = [i["src"] for i in images if not i["alt"]]
    assert not no_alt, f"images without alt text: {no_alt}"


@page_names
def test_citations_resolve_on_the_page(visits, name):
    page = visits(name).page
    text = page.locator("main").inner_text()
    assert "??" not in text, "'??' on the page: a reference that Sphinx could not resolve"
    links = page.evaluate(
        """() => [...document.querySelectorAll('main .bibtex-citation a[href]')]
             .map(a => {
                const id = decodeURIComponent(a.getAttribute('href') || '').replace(/^#/, '');
                const target = id && document.getElementById(id);
                return {text: a.innerText, id,
                        entry: !!(target && target.matches('.citation, [role="doc-biblioentry"]'))};
             })"""
    )
    cited = len(re.findall(r"\{cite(?::[a-z]+)?\}`([^`]+)`", _markdown(name)))
    if cited:
        assert links, f"the source cites {cited} time(s), but the page has no citation links"
    dangling = [(link["text"], link["id"]) for link in links if not link["entry"]]
    assert not dangling, f"citations whose link does not lead to a reference-list entry on the page: {dangling}"


# ------------------------------------------------------------------ chapters (notebooks)


@chapter_names
def test_colab_link(visits, name):
    page = visits(name).page
    expected = colab_url(name)
    hrefs = page.evaluate(
        """() => [...document.querySelectorAll('a[href*="colab.research.google.com"]')].map(a => a.href)"""
    )
    assert hrefs == [expected], f"Colab launch links {hrefs}, expected exactly [{expected}] (from _config.yml)"
    # the rocket menu of the header opens and shows it
    link = page.locator(f'a[href="{expected}"]')
    page.locator(".dropdown-launch-buttons button").first.click()
    link.wait_for(state="visible")
    page.keyboard.press("Escape")


@pytest.mark.parametrize("name", [name for name in CHAPTERS if _directives(name, "exercise")])
def test_exercises_with_collapsed_solutions(browser, site, name):
    exercises, solutions = _directives(name, "exercise"), _directives(name, "solution")
    v = _open(browser, site, name, screenshot=False)  # a fresh page: this test opens solutions
    try:
        page = v.page
        assert page.locator(".exercise.admonition").count() == exercises, "not every exercise is on the page"
        boxes = page.locator(".solution.admonition")
        assert boxes.count() == solutions, f"{boxes.count()} solutions on the page, {solutions} in the source"
        for i in range(boxes.count()):
            box = boxes.nth(i)
            assert "dropdown" in (box.get_attribute("class") or ""), (
                f"solution {i + 1} is not a dropdown; give it `:class: dropdown`"
            )
            title = box.locator(":scope > .admonition-title")
            body = box.locator(":scope > .admonition-title ~ *").first
            assert title.is_visible(), f"solution {i + 1} has no visible title"
            assert not body.is_visible(), f"solution {i + 1} is shown open; it must start collapsed"
            title.click()
            body.wait_for(state="visible")
    finally:
        v.page.context.close()


@chapter_names
def test_widgets_render(visits, name):
    expected = _widget_views(_notebook(name))
    page = visits(name).page
    shown = page.evaluate(
        f"""() => [...document.querySelectorAll('script[type="{WIDGET_VIEW}"]')]
              .map(s => JSON.parse(s.textContent).model_id)"""
    )
    assert shown == expected, f"widget views on the page {shown}, in the notebook {expected}"
    if not expected:
        return
    errors = page.locator(".jupyter-widgets-error-widget")
    if errors.count():
        errors.first.click()  # the error box shows the JavaScript error when clicked
        detail = errors.first.inner_text()
        pytest.fail(f"{errors.count()} widget(s) failed to render on the static page:\n{detail}")
    empty = page.evaluate(
        f"""() => [...document.querySelectorAll('script[type="{WIDGET_VIEW}"]')]
              .filter(s => {{
                  const w = s.parentElement.querySelector('.jupyter-widgets');
                  return !w || w.getBoundingClientRect().height < 5;
              }}).map(s => JSON.parse(s.textContent).model_id)"""
    )
    assert not empty, f"widgets rendered with no height: {empty}"


def _frame_state(box):
    """The slider's readout and the SHA-256 of every image visible in the box."""
    return box.evaluate(
        """async b => {
            const images = [...b.querySelectorAll('img')].filter(i => i.checkVisibility());
            const hashes = [];
            for (const image of images) {
                const bytes = await (await fetch(image.currentSrc)).arrayBuffer();
                const digest = new Uint8Array(await crypto.subtle.digest('SHA-256', bytes));
                hashes.push([...digest].map(x => x.toString(16).padStart(2, '0')).join(''));
            }
            return {readout: b.querySelector('.widget-readout').innerText.trim(), frames: hashes};
        }"""
    )


def _drag(page, box, fraction: float):
    """Drag the slider's handle with the mouse to `fraction` of its track."""
    handle = box.locator(".noUi-handle").first
    track = box.locator(".noUi-target").first.bounding_box()
    h = handle.bounding_box()
    y = h["y"] + h["height"] / 2
    page.mouse.move(h["x"] + h["width"] / 2, y)
    page.mouse.down()
    page.mouse.move(track["x"] + fraction * track["width"], y, steps=8)
    page.mouse.up()


def _wait_for_readout(page, box, label: str):
    page.wait_for_function(
        "([b, label]) => b.querySelector('.widget-readout').innerText.trim() === label",
        arg=[box.element_handle(), label],
    )


@pytest.mark.parametrize("name", [name for name in CHAPTERS if _frame_sliders(_notebook(name))])
def test_frame_sliders_change_the_frame(browser, site, name):
    sliders = _frame_sliders(_notebook(name))
    v = _open(browser, site, name, screenshot=False)  # a fresh page: this test moves sliders
    try:
        page = v.page
        # A frame slider renders as a box holding a slider and a Stack that shows one frame
        boxes = page.locator(".widget-vbox:has(> .widget-slider .noUi-handle):has(> .widget-box img)")
        assert boxes.count() == len(sliders), (
            f"{len(sliders)} frame slider(s) in the notebook, {boxes.count()} rendered on the page"
        )
        for i, slider in enumerate(sliders):
            box = boxes.nth(i)
            box.scroll_into_view_if_needed()
            for fraction, position in ((0.0, 0), (1.05, -1), (-0.05, 0)):  # start, past the end, back
                if fraction:
                    _drag(page, box, fraction)
                label = slider.labels[position]
                _wait_for_readout(page, box, label)
                shown = _frame_state(box)
                assert shown["frames"] == [slider.frames[position]], (
                    f"slider {i + 1} at {label}: the page shows {len(shown['frames'])} image(s) "
                    f"{[h[:12] for h in shown['frames']]}, expected the saved frame {slider.frames[position][:12]}"
                )
        assert not v.external, f"moving the sliders requested other hosts: {v.external}"
    finally:
        v.page.context.close()


@chapter_names
def test_no_horizontal_scroll(visits, name):
    # At the 1280 px viewport of every visit no code cell and no printed output may need a
    # scrollbar; tests/test_notebook_layout.py checks the line widths behind this in the sources
    wide = visits(name).page.evaluate(
        """() => [...document.querySelectorAll('div.cell_input pre, div.cell_output pre')]
             .filter(pre => pre.scrollWidth > pre.clientWidth)
             .map(pre => {
                const lines = pre.textContent.split('\\n');
                return {kind: pre.closest('div.cell_input') ? 'code' : 'output',
                        over: pre.scrollWidth - pre.clientWidth,
                        first: (lines.find(l => l.trim()) || '').slice(0, 80),
                        widest: lines.reduce((a, b) => b.length > a.length ? b : a, '').slice(0, 100)};
             })"""
    )
    assert not wide, (
        f"{len(wide)} block(s) scroll horizontally at 1280 px (wrap the code, or shorten the print "
        "and re-execute):\n" + "\n".join(
            f"{w['kind']} block starting {w['first']!r} (+{w['over']} px; widest line {w['widest']!r})"
            for w in wide)
    )
