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
* every link into the site pointing at a file that exists, and at an anchor that exists;
* every image with an alt text that says something (not empty, not a file name);
* every figure of a notebook linked to its full-size file, drawn at 150 dpi or more,
  and its smallest text (as ``refconv.viz.to_png`` recorded it in the PNG) at least
  9 pt both at full size and AS SHOWN in the page in a 1280 px window: the text's
  points times the image's shown width over its natural width (in CSS pixels, 96 an
  inch). The site shows a figure at its physical size but never wider than the
  content column, 688 CSS px (7.17 in) at 1280 px, so a figure at most
  ``refconv.viz.WIDTH`` (7 in) wide with no text under ``refconv.viz.SMALLEST``
  (9 pt) passes. Measured in Chromium, the column holds 7 in (672 px) in windows
  of 720 to 1160 px and of 1260 px or more (790 px at most); in windows of 1200 to
  1259 px (where the contents sidebar appears) it is 624 to 671 px, so 9 pt shows
  as 8.4 to 9 pt there; below 720 px (a tablet, a phone: 368 px at 400) figures
  are scaled down further, and a click opens the full-size figure, which this check
  holds to 9 pt too. The shown sizes are printed (least, median, how many under 9 pt).

And in the files, before any browser: no answer marker (``BEGIN SOLUTION``,
``BEGIN HIDDEN TESTS``, a mark scheme) in any page or download, no Sphinx cache
(``.doctrees``), no source map, a favicon.

Screenshots of the landing page, of a notebook's page with figures and of
``ConvLSTMCell``'s API entry, each 1400 and 400 px wide, are written to
``build/site/screenshots/`` (ignored by git). Exit status 1 when anything is wrong.
"""

import argparse
import contextlib
import functools
import html.parser
import http.server
import os
import re
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
# Every image: its src, alt, shown width and natural width, whether a notebook's output
# and the link around it.
IMAGES_JS = """() => Array.from(document.images, image => ({
    src: image.getAttribute("src"), alt: image.getAttribute("alt") || "",
    shown: image.getBoundingClientRect().width, natural: image.naturalWidth,
    output: !!image.closest(".cell_output"),
    link: image.closest("a") ? image.closest("a").getAttribute("href") : null}))"""
# Points of CSS per pixel of CSS (96 px per inch, 72 pt per inch), and the least
# text size a reader should get.
PT_PER_PX = 0.75
VIEWPORT = 1280   # CSS px: the window the pages are checked in (a laptop)
COLUMN = 688      # CSS px: the content column there (measured in Chromium; 368 at 400 px)
MIN_TEXT_PT = 9
MIN_DPI = 149.5   # 150 dpi, as the PNG stores it (pixels per metre, rounded)
ROUNDING = 0.02   # pt: a page gives a figure a whole number of CSS px, so 9 pt may show as 8.99
# What a built site must not hold: answers, a build cache, source maps.
FORBIDDEN_MARKERS = ("BEGIN SOLUTION", "END SOLUTION", "BEGIN HIDDEN TESTS",
                     "END HIDDEN TESTS", "BEGIN MARK SCHEME", "END MARK SCHEME")
TEXT_SUFFIXES = (".html", ".ipynb", ".js", ".txt", ".json", ".py", ".md", ".css")
# Screenshots: (name, page, element to scroll to or None); each at every width.
SHOTS = (("home", "index.html", None),
         ("notebook", "notebooks/02_convlstm_gates.html",
          ".cell_output img[alt*='forget gate and output over time']"),
         ("convlstmcell", "api/refconv.html", "dt[id='refconv.ConvLSTMCell']"))
SHOT_WIDTHS = (1400, 400)


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


def check_files(site):
    """Problems found in the site's files, without a browser: ``[str]``."""
    site = Path(site)
    problems = []
    for path in sorted(site.rglob("*")):
        name = path.relative_to(site).as_posix()
        if path.is_dir() and path.name in (".doctrees", "doctrees"):
            problems.append(f"{name}: Sphinx's cache in the published folder")
        elif path.suffix == ".map":
            problems.append(f"{name}: a source map in the published folder")
        elif path.is_file() and path.suffix in TEXT_SUFFIXES:
            text = path.read_text(encoding="utf-8", errors="replace")
            found = [marker for marker in FORBIDDEN_MARKERS if marker in text]
            if found:
                problems.append(f"{name}: holds {', '.join(found)} (an answer region)")
            if path.suffix in (".js", ".css") and "sourceMappingURL=" in text:
                problems.append(f"{name}: points to a source map")
    if (site / "index.html").is_file() and 'rel="icon"' not in \
            (site / "index.html").read_text(encoding="utf-8"):
        problems.append("index.html: no favicon")
    return problems


@functools.lru_cache(maxsize=None)
def figure_facts(path):
    """``(smallest text in pt, dpi)`` that ``refconv.viz.to_png`` wrote into a PNG, each
    None when it is not there."""
    from PIL import Image

    try:
        with Image.open(path) as image:
            text = getattr(image, "text", {})
            dpi = image.info.get("dpi", (None,))[0]
    except OSError:
        return None, None
    match = re.match(r"([\d.]+) pt", text.get("Smallest text", ""))
    return (float(match.group(1)) if match else None), (float(dpi) if dpi else None)


def image_problems(site, page_url, images, sizes):
    """Problems of a page's images; the smallest shown text of each figure is appended to
    ``sizes`` as ``(pt, page, src)``."""
    problems = []
    for image in images:
        src, alt = image["src"] or "", " ".join(image["alt"].split())
        if not alt or re.fullmatch(r"\S+\.(png|svg|jpe?g|gif)", alt) or alt == src:
            problems.append(f"image without a useful alt text: {src} (alt={alt!r})")
        if not image["output"] or not src.endswith(".png"):
            continue
        if image["link"] is None:
            problems.append(f"figure not linked to its full size: {src}")
        file = (site / unquote(urlsplit(page_url).path.lstrip("/"))).parent / unquote(src)
        smallest, dpi = figure_facts(str(file.resolve()))
        if smallest is None or dpi is None:
            problems.append(f"figure without its smallest text size and dpi "
                            f"(refconv.viz.to_png writes them): {src}")
            continue
        if dpi < MIN_DPI:
            problems.append(f"figure drawn at {dpi:g} dpi (under {MIN_DPI}): {src}")
        full = smallest * dpi / 72 * PT_PER_PX   # at full size: one image pixel, one CSS pixel
        if full < MIN_TEXT_PT:
            problems.append(f"figure text {full:.1f} pt at full size (under {MIN_TEXT_PT}): {src}")
        if image["natural"] and image["shown"]:   # (a hidden image is shown at no size)
            shown = full * image["shown"] / image["natural"]
            sizes.append((shown, page_url, src))
            if shown < MIN_TEXT_PT - ROUNDING:
                problems.append(f"figure text {shown:.1f} pt as shown in the page (under "
                                f"{MIN_TEXT_PT}; drawn {smallest:g} pt in a figure "
                                f"{image['natural'] / dpi:.1f} in wide, shown "
                                f"{image['shown']:.0f} px wide): {src}")
    return problems


def screenshot(page, base, screenshots):
    """The ``SHOTS`` at each of ``SHOT_WIDTHS``, into ``screenshots``; the paths written."""
    screenshots.mkdir(parents=True, exist_ok=True)
    written = []
    for width in SHOT_WIDTHS:
        page.set_viewport_size({"width": width, "height": 1000})
        for name, url, element in SHOTS:
            page.goto(base + url, wait_until="load")
            page.wait_for_load_state("networkidle")
            if element is not None:
                page.evaluate(f"document.querySelector({element!r}).scrollIntoView()")
            path = screenshots / f"{name}_{width}.png"
            page.screenshot(path=str(path))
            written.append(path)
    return written


def check_pages(site, pages=None, screenshots=None, shots=(), sizes=None):
    """Open each page (paths relative to ``site``; default every ``*.html``) in Chromium.

    Returns ``(problems, formulas)``: ``problems`` maps a page to its list of
    problems (pages without any are left out), ``formulas`` counts the typeset
    formulas over all pages. ``shots`` are pages to screenshot into ``screenshots``
    (``SHOTS`` at each width when ``shots`` is ``"SHOTS"``). ``sizes``, a list, gets
    ``(pt, page, figure)``: each notebook figure's smallest text as shown.
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
        context = browser.new_context(viewport={"width": VIEWPORT, "height": 900})
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
            found.extend(image_problems(site, base + name, page.evaluate(IMAGES_JS),
                                        [] if sizes is None else sizes))
            if shots != "SHOTS" and name in shots:
                screenshots.mkdir(parents=True, exist_ok=True)
                page.screenshot(path=str(screenshots / (name.replace("/", "_")[:-5] + ".png")),
                                full_page=True)
            if found:
                problems[name] = list(dict.fromkeys(found))
        if shots == "SHOTS":
            screenshot(page, base, screenshots)
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
    start = time.perf_counter()
    file_problems = check_files(args.site)
    sizes = []
    try:
        problems, formulas = check_pages(args.site, screenshots=args.screenshots,
                                         shots="SHOTS", sizes=sizes)
    except (FileNotFoundError, ModuleNotFoundError, ValueError) as error:
        print(f"check_site: {error}", file=sys.stderr)
        return 1
    if file_problems:
        problems["(files)"] = file_problems
    seconds = time.perf_counter() - start
    pages = len(site_pages(args.site))
    for name, found in problems.items():
        print(f"{name}:", *(f"  {problem}" for problem in found), sep="\n", file=sys.stderr)
    if formulas == 0:
        print("no formula typeset on any page: the maths check checked nothing", file=sys.stderr)
    status = 1 if problems or formulas == 0 else 0
    if sizes:
        small = sorted(sizes)
        under = sum(pt < MIN_TEXT_PT - ROUNDING for pt, _, _ in small)
        print(f"check_site: figures' smallest text as shown at {VIEWPORT} px: {small[0][0]:.1f} to "
              f"{small[-1][0]:.1f} pt (median {small[len(small) // 2][0]:.1f}); {under} of "
              f"{len(small)} figures under {MIN_TEXT_PT} pt inline")
    shots = [str((args.screenshots / f"{name}_{width}.png").relative_to(REPO))
             if args.screenshots.is_relative_to(REPO) else f"{name}_{width}.png"
             for width in SHOT_WIDTHS for name, _, _ in SHOTS]
    print(f"check_site: {pages} pages in Chromium in {seconds:.1f} s, {formulas} formulas "
          f"typeset, {sum(map(len, problems.values()))} problems on {len(problems)} pages; "
          f"screenshots: " + ", ".join(shots))
    return status


if __name__ == "__main__":
    sys.exit(main())
