"""Open every page of the built site in a real browser and check what a reader would see.

    python docs/check_site.py                  # checks build/site/html (docs/make_site.py builds it)
    python docs/check_site.py --site DIR       # another built site

Chromium is Debian's (``/usr/bin/chromium``, or ``$REFCONV_CHROMIUM``), driven by
Playwright from PyPI, so nothing is downloaded. The site is served from
127.0.0.1; every page must show:

* no console error and no uncaught exception;
* no failed request (a network error, or an HTTP status of 400 or more);
* no request leaving 127.0.0.1 (each one is blocked, and reported);
* every image loaded (``naturalWidth > 0``);
* every formula typeset by MathJax (each ``.math`` element holds an ``mjx-container``,
  none holds a MathJax error), and some formulas somewhere on the site;
* every link into the site pointing at a file that exists, and at an anchor that exists.

Screenshots of the landing page and of the first notebook's page are written to
``build/site/screenshots/`` (ignored by git). Exit status 1 when anything is wrong.
"""

import argparse
import contextlib
import functools
import html.parser
import http.server
import os
import sys
import threading
import time
from pathlib import Path
from urllib.parse import unquote, urldefrag, urlsplit

DOCS = Path(__file__).resolve().parent
REPO = DOCS.parent
SITE = REPO / "build" / "site" / "html"
SCREENSHOTS = REPO / "build" / "site" / "screenshots"
CHROMIUM = os.environ.get("REFCONV_CHROMIUM", "/usr/bin/chromium")
# Headless, and nothing a browser does on its own behind the page's back.
CHROMIUM_ARGS = ["--no-sandbox", "--headless", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run",
                 "--disable-quic", "--disable-default-apps", "--disable-extensions"]
PAGE_TIMEOUT_MS = 30_000

# Loads every image (lazy ones too) and reports those that failed.
BROKEN_IMAGES_JS = """async () => {
    const images = Array.from(document.images);
    for (const image of images) { image.loading = "eager"; }
    await Promise.all(images.map(image => image.decode().catch(() => null)));
    return images.filter(image => !(image.complete && image.naturalWidth > 0))
                 .map(image => image.getAttribute("src"));
}"""
# Waits for MathJax, then counts formulas and lists those not typeset or typeset with an error.
MATHS_JS = """async () => {
    const formulas = Array.from(document.querySelectorAll(".math"));
    if (formulas.length === 0) { return {formulas: 0, untypeset: [], errors: []}; }
    if (!window.MathJax || !window.MathJax.startup) {
        return {formulas: formulas.length, untypeset: ["MathJax did not load"], errors: []};
    }
    await window.MathJax.startup.promise;
    const text = element => element.textContent.trim().slice(0, 80);
    return {
        formulas: formulas.length,
        untypeset: formulas.filter(f => !f.querySelector("mjx-container")).map(text),
        errors: formulas.filter(f => f.querySelector("[data-mjx-error], mjx-merror")).map(text),
    };
}"""
LINKS_JS = """() => Array.from(document.querySelectorAll("a[href]"), a => a.href)"""


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format, *args):
        pass


@contextlib.contextmanager
def serve(site):
    """Serve ``site`` on 127.0.0.1 (a free port) in a thread; yield its base URL."""
    handler = functools.partial(_QuietHandler, directory=str(site))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


class _Anchors(html.parser.HTMLParser):
    def __init__(self):
        super().__init__()
        self.ids = set()

    def handle_starttag(self, tag, attrs):
        for name, value in attrs:
            if name == "id" or (tag == "a" and name == "name"):
                self.ids.add(value)


@functools.lru_cache(maxsize=None)
def anchors(path):
    """The ids (and ``<a name>``) of an HTML file."""
    parser = _Anchors()
    parser.feed(Path(path).read_text(encoding="utf-8", errors="replace"))
    return frozenset(parser.ids)


def broken_links(site, base, links):
    """The links into the site (same origin) whose file or anchor does not exist."""
    broken = []
    for link in links:
        url, fragment = urldefrag(link)
        if not url.startswith(base):
            continue  # another site: never fetched here, and not ours to check
        path = site / unquote(urlsplit(url).path[len(urlsplit(base).path):])
        if path.is_dir():
            path = path / "index.html"
        if not path.is_file():
            broken.append(f"{link} (no file {path.relative_to(site)})")
        elif fragment and path.suffix == ".html" and unquote(fragment) not in anchors(path):
            broken.append(f"{link} (no anchor #{fragment} in {path.relative_to(site)})")
    return sorted(set(broken))


def site_pages(site):
    """Every HTML page of the site, relative to it; ``_static/`` holds the themes' template
    fragments (Jinja macros), not pages."""
    return sorted(path.relative_to(site).as_posix() for path in site.rglob("*.html")
                  if path.relative_to(site).parts[0] != "_static")


def check_pages(site, pages=None, screenshots=None, shots=()):
    """Open each page (paths relative to ``site``; default every ``*.html``) in Chromium.

    Returns ``(problems, formulas)``: ``problems`` maps a page to its list of
    problems (pages without any are left out), ``formulas`` counts the typeset
    formulas over all pages. ``shots`` are pages to screenshot into ``screenshots``.
    """
    from playwright.sync_api import sync_playwright

    site = Path(site)
    pages = site_pages(site) if pages is None else list(pages)
    if not pages:
        raise ValueError(f"site: no HTML page under {site}: nothing to check")
    if not Path(CHROMIUM).exists():
        raise FileNotFoundError(f"Chromium: expected Debian's browser at {CHROMIUM} (apt-get "
                                f"install chromium, or set REFCONV_CHROMIUM); not found")
    problems, formulas = {}, 0
    with serve(site) as base, sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True,
                                             args=CHROMIUM_ARGS)
        context = browser.new_context(viewport={"width": 1280, "height": 900})
        found = []  # the current page's problems, filled by the handlers below

        def route(route_):
            if route_.request.url.startswith(base) or route_.request.url.startswith("data:"):
                route_.continue_()
            else:
                found.append(f"request leaving 127.0.0.1 (blocked): {route_.request.url}")
                route_.abort()

        context.route("**/*", route)
        page = context.new_page()
        page.set_default_timeout(PAGE_TIMEOUT_MS)
        page.on("console", lambda message: message.type == "error" and found.append(
            f"console error: {message.text} ({message.location.get('url', '')})"))
        page.on("pageerror", lambda error: found.append(f"uncaught exception: {error}"))
        page.on("requestfailed", lambda request: request.url.startswith(base) and found.append(
            f"request failed: {request.url} ({request.failure})"))
        page.on("response", lambda response: response.status >= 400 and found.append(
            f"HTTP {response.status}: {response.url}"))
        for name in pages:
            found.clear()
            page.goto(base + name, wait_until="load")
            page.wait_for_load_state("networkidle")
            found.extend(f"image not loaded: {src}" for src in page.evaluate(BROKEN_IMAGES_JS))
            maths = page.evaluate(MATHS_JS)
            formulas += maths["formulas"] - len(maths["untypeset"])
            found.extend(f"formula not typeset: {text}" for text in maths["untypeset"])
            found.extend(f"MathJax error in: {text}" for text in maths["errors"])
            found.extend(f"broken link: {link}"
                         for link in broken_links(site, base, page.evaluate(LINKS_JS)))
            if name in shots:
                screenshots.mkdir(parents=True, exist_ok=True)
                page.screenshot(path=str(screenshots / (name.replace("/", "_")[:-5] + ".png")),
                                full_page=True)
            if found:
                problems[name] = list(dict.fromkeys(found))
        browser.close()
    return problems, formulas


def main(argv=None):
    """Check the built site; print what is wrong; return the exit status."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--site", type=Path, default=SITE, help="the built site (default: "
                        "build/site/html)")
    parser.add_argument("--screenshots", type=Path, default=SCREENSHOTS,
                        help="where the screenshots go (default: build/site/screenshots)")
    args = parser.parse_args(argv)
    notebook_pages = sorted(p.relative_to(args.site).as_posix()
                            for p in (args.site / "notebooks").glob("[0-9][0-9]_*.html"))
    shots = ["index.html"] + notebook_pages[:1]
    start = time.perf_counter()
    problems, formulas = check_pages(args.site, screenshots=args.screenshots, shots=shots)
    seconds = time.perf_counter() - start
    pages = len(site_pages(args.site))
    for name, found in problems.items():
        print(f"{name}:", *(f"  {problem}" for problem in found), sep="\n", file=sys.stderr)
    if formulas == 0:
        print("no formula typeset on any page: the maths check checked nothing", file=sys.stderr)
    status = 1 if problems or formulas == 0 else 0
    print(f"check_site: {pages} pages in Chromium in {seconds:.1f} s, {formulas} formulas "
          f"typeset, {sum(map(len, problems.values()))} problems on {len(problems)} pages; "
          f"screenshots: " + ", ".join(str((args.screenshots / (s.replace('/', '_')[:-5] + '.png'))
                                          .relative_to(REPO)) for s in shots))
    return status


if __name__ == "__main__":
    sys.exit(main())
