"""The rendered book as a reader sees it: every page of a fresh build, served on 127.0.0.1 and opened in
headless Chromium (Debian's chromium, driven by Playwright). Checks: no page errors of the book's own
making, every image decodes, internal links and anchors resolve, math is typeset (MathJax 3 served from
a local copy of the npm package, never from the network), no figure is scaled below a legible size, no
output block, display equation or shown code needs a horizontal scroll at a desktop width, no request
fails (a 404, an abort), the latent explorer on the page redraws when a slider is dragged, and the
ELBO playground's bar adds up. A screenshot of every page is saved for a person to look at.

Skipped, with the reason, where Chromium, Playwright or the MathJax copy is missing; .ci/run installs all
three (apt-get chromium, requirements.txt, npm mathjax@3 into ~/.cache/vae_book/npm).
"""

from __future__ import annotations

import functools
import http.server
import math
import os
import re
import shutil
import subprocess
import sys
import threading
from pathlib import Path
from urllib.parse import urljoin, urlparse

import pytest

ROOT = Path(__file__).resolve().parents[1]
MATHJAX = Path(os.environ.get("VAE_MATHJAX_DIR", Path.home() / ".cache/vae_book/npm/node_modules/mathjax"))
MATHJAX_CDN = "https://cdn.jsdelivr.net/npm/mathjax@3/"
WIDTH, HEIGHT = 1280, 900            # a desktop window
MIN_FIGURE_SCALE = 0.6               # a figure shown at 60 % of its pixels keeps 10-point text about 8 px tall
# None: sphinx-thebe's configuration script, which declared THEBE_JS_URL twice on every page, is now
# added once (_ext/dedupe_scripts.py), so a page error of any kind fails the test.
ALLOWED_ERRORS: tuple[str, ...] = ()
PAGES_SKIPPED = {"genindex.html", "search.html", "py-modindex.html"}


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    if not shutil.which("chromium"):
        pytest.skip("Debian's chromium is not installed here (apt-get install chromium)")
    pytest.importorskip("playwright.sync_api", reason="the Playwright package is not installed")
    if not (MATHJAX / "es5" / "tex-mml-chtml.js").exists():
        pytest.skip(f"no local MathJax 3 at {MATHJAX} (npm install --prefix ~/.cache/vae_book/npm mathjax@3)")
    out = tmp_path_factory.mktemp("book")
    jb = Path(sys.executable).with_name("jupyter-book")
    build = subprocess.run([str(jb) if jb.exists() else "jupyter-book", "build", str(ROOT), "--path-output", str(out)],
                           capture_output=True, text=True, timeout=600)
    assert build.returncode == 0, build.stdout[-3000:]
    html = out / "_build" / "html"
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(html))
    handler.log_message = lambda *a, **k: None
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield html, f"http://127.0.0.1:{server.server_address[1]}/"
    server.shutdown()




def _route(route, base: str) -> None:
    url = route.request.url
    if url.startswith(MATHJAX_CDN):
        path = MATHJAX / url[len(MATHJAX_CDN):].split("?")[0]
        if path.is_file():
            return route.fulfill(path=str(path))
    if url.startswith(base):
        return route.continue_()
    return route.abort()   # a reader offline: nothing else may be fetched (fonts, trackers, CDNs)


def pages(html: Path) -> list[Path]:
    return sorted(p for p in html.rglob("*.html") if p.name not in PAGES_SKIPPED and "_static" not in p.parts
                  and "_sources" not in p.parts and "_modules" not in p.parts)


def test_every_page_reads_well(site, browser):
    html, base = site
    shots = ROOT / "_build" / "screenshots"
    shots.mkdir(parents=True, exist_ok=True)
    problems: list[str] = []
    anchors_cache: dict[Path, set[str]] = {}

    def anchors(path: Path) -> set[str]:
        if path not in anchors_cache:
            anchors_cache[path] = set(re.findall(r'id="([^"]+)"', path.read_text(errors="replace")))
        return anchors_cache[path]

    # index.html only redirects to the introduction, which is checked as itself
    checked = [p for p in pages(html) if 'http-equiv="Refresh"' not in p.read_text(errors="replace")]
    assert len(checked) >= 12, [p.name for p in checked]
    for page_path in checked:
        rel = page_path.relative_to(html).as_posix()
        page = browser.new_page(viewport={"width": WIDTH, "height": HEIGHT})
        errors: list[str] = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        failed: list[str] = []   # no request of the page's own may fail: a 404 (a font, a widget script) or an abort
        page.on("requestfailed", lambda r: failed.append(f"{r.url} ({r.failure})"))
        page.on("response", lambda r: failed.append(f"{r.url} (HTTP {r.status})") if r.status >= 400 else None)
        page.route("**/*", lambda route: _route(route, base))
        page.goto(base + rel, wait_until="load")
        if page_path.read_text(errors="replace").count('class="math') > 0:
            # MathJax loads deferred: before it has started, window.MathJax is only the page's configuration
            # object, so wait for its startup promise itself (a race a loaded machine used to lose)
            page.wait_for_function("() => Boolean(window.MathJax && MathJax.startup && MathJax.startup.promise)", timeout=60000)
            page.evaluate("() => MathJax.startup.promise")
        errors = [e for e in errors if not any(a in e for a in ALLOWED_ERRORS)]
        problems += [f"{rel}: page error: {e}" for e in errors]

        broken = page.evaluate("() => Array.from(document.images).filter(i => !i.complete || i.naturalWidth === 0)"
                               ".map(i => i.src)")
        problems += [f"{rel}: image does not decode: {src}" for src in broken]

        if page_path.read_text(errors="replace").count('class="math') > 0:
            typeset = page.evaluate("() => document.querySelectorAll('mjx-container').length")
            if typeset == 0:
                problems.append(f"{rel}: math is not typeset")
        raw_tex = page.evaluate(r"() => (document.querySelector('main') || document.body).innerText.match(/\\(frac|mathbf|mathcal)\{/g)")
        if raw_tex:
            problems.append(f"{rel}: raw TeX on the page: {raw_tex[:3]}")

        small = page.evaluate(f"""() => Array.from(document.querySelectorAll('.cell_output img'))
            .filter(i => i.naturalWidth > 0 && i.getBoundingClientRect().width / i.naturalWidth < {MIN_FIGURE_SCALE})
            .map(i => [i.getBoundingClientRect().width / i.naturalWidth, i.naturalWidth])""")
        problems += [f"{rel}: a {w}px-wide figure is shown at {s:.0%}" for s, w in small]

        scrolled = page.evaluate("""() => Array.from(document.querySelectorAll(
              '.cell_output pre, .cell_output .output, div.math, mjx-container[display="true"], .cell_output table'))
            .filter(e => e.scrollWidth > e.clientWidth + 2 && e.clientWidth > 0)
            .map(e => e.tagName + ': ' + (e.innerText || '').slice(0, 60).replace(/\\n/g, ' '))""")
        problems += [f"{rel}: needs a horizontal scroll: {what}" for what in scrolled]

        # code the page shows (cells, literalincludes) fits the column; folded cells count once unfolded
        wide_code = page.evaluate("""() => Array.from(document.querySelectorAll('.cell_input pre, div.highlight pre'))
            .filter(e => !(e.closest('details') && !e.closest('details').open) && e.clientWidth > 0
                         && e.scrollWidth > e.clientWidth + 2)
            .map(e => (e.innerText || '').split('\\n').sort((a, b) => b.length - a.length)[0].slice(0, 60))""")
        problems += [f"{rel}: code needs a horizontal scroll: {what}" for what in wide_code]

        clipped = page.evaluate("""() => {
            const column = document.querySelector('article.bd-article') || document.querySelector('main');
            if (!column) return [];
            const right = column.getBoundingClientRect().right;
            return Array.from(document.querySelectorAll('.cell_output table, .cell_output img'))
              .filter(e => e.getBoundingClientRect().width > 0 && e.getBoundingClientRect().right > right + 2)
              .map(e => e.tagName + ': ' + (e.innerText || e.getAttribute('alt') || '').slice(0, 60).replace(/\\n/g, ' '));
        }""")
        problems += [f"{rel}: wider than the content column (cut off on the page): {what}" for what in clipped]

        for href in page.evaluate("() => Array.from(document.querySelectorAll('a[href]')).map(a => a.getAttribute('href'))"):
            if href.startswith(("http:", "https:", "mailto:", "javascript:")) or href.startswith("#") and len(href) == 1:
                continue
            target = urlparse(urljoin(base + rel, href))
            if not (base + target.path.lstrip("/")).startswith(base):
                continue
            file = html / target.path.lstrip("/")
            if file.is_dir():
                file = file / "index.html"
            if not file.exists():
                problems.append(f"{rel}: link to a missing page: {href}")
            elif target.fragment and file.suffix == ".html" and target.fragment not in anchors(file):
                problems.append(f"{rel}: link to a missing anchor: {href}")

        # plumbing hidden: parameter checks show no code; folded (hide-input) code stays folded until asked for
        shown = page.evaluate(r"""() => Array.from(document.querySelectorAll('.cell_input'))
            .filter(e => !(e.closest('details') && !e.closest('details').open) && /check_(number|path|choice|list)\(|= quick_mode\(quick\)/.test(e.textContent))
            .map(e => e.innerText.slice(0, 60).replace(/\n/g, ' '))""")
        problems += [f"{rel}: parameter-check code shown on the page: {t}" for t in shown]
        unfolded = page.evaluate("""() => Array.from(document.querySelectorAll('.cell.tag_hide-input .cell_input'))
            .filter(e => !(e.closest('details') && !e.closest('details').open)).length""")
        if unfolded:
            problems.append(f"{rel}: {unfolded} hide-input cell(s) shown unfolded")

        for k in range(page.locator(".vae-explorer").count()):   # the kernel-free explorers: drag, and the picture changes
            explorer = page.locator(".vae-explorer").nth(k)
            canvas = explorer.locator("canvas")
            grab = "(c) => Array.from(c.getContext('2d').getImageData(0, 0, c.width, c.height).data).join(',')"
            before = canvas.evaluate(grab)
            slider = explorer.locator("input[type=range]").first
            slider.scroll_into_view_if_needed()
            box = slider.bounding_box()
            page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
            page.mouse.down()
            page.mouse.move(box["x"] + box["width"] * 0.9, box["y"] + box["height"] / 2, steps=6)
            page.mouse.up()
            if canvas.evaluate(grab) == before:
                problems.append(f"{rel}: explorer {k} did not redraw when its slider was dragged")

        for k in range(page.locator(".vae-playground").count()):   # the ELBO playground computes once in view
            playground = page.locator(".vae-playground").nth(k)
            playground.scroll_into_view_if_needed()
            api = f"window.vaePlaygrounds[{playground.get_attribute('id')!r}]"
            page.wait_for_function(f"() => {api} && {api}.readout() !== null", timeout=60000)
            r = page.evaluate(f"() => {api}.readout()")
            if not (r["elbo"] <= r["log_px"] + 1e-9 and r["kl"] >= 0 and all(map(math.isfinite, (r["elbo"], r["log_px"])))):
                problems.append(f"{rel}: playground {k} reads ELBO {r['elbo']}, log p(x) {r['log_px']}, KL {r['kl']}")
            if r["resolved"] and abs(r["log_px"] - r["elbo"] - r["kl"]) > 0.02:   # Eq. 1, with the KL from the grid
                problems.append(f"{rel}: playground {k}: log p(x) − ELBO − KL = {r['log_px'] - r['elbo'] - r['kl']:.4f}")
            slider = playground.locator("input[data-q='0']")                # the stacked bar moves with a slider
            box = slider.bounding_box()
            page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
            page.mouse.down()
            page.mouse.move(box["x"] + box["width"] * 0.8, box["y"] + box["height"] / 2, steps=6)
            page.mouse.up()
            moved = page.evaluate(f"() => {api}.readout()")
            if moved["bar"]["elbo"] == r["bar"]["elbo"]:
                problems.append(f"{rel}: playground {k}: the ELBO's bar did not move when μ[0] was dragged")

        problems += [f"{rel}: a request failed: {what}" for what in failed]
        page.screenshot(path=str(shots / (rel.replace("/", "__") + ".png")), full_page=True)
        page.close()
    assert not problems, "\n".join(problems)
