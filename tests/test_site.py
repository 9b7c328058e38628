"""The documentation site: built with every warning an error, then read in a real browser.

What the tests trust: the files on disk (the notebooks, their PNG outputs), refconv's
own ``__all__`` and parsers, and Chromium. The site must hold every notebook (byte for
byte as a download) and every public name; the build must fail on a broken
cross-reference, a missing image and an undocumented public name; the browser check
must pass on the site and fail on a page that is broken in each way it looks for.

Needs the ``docs`` extra, npm (for MathJax) and Debian's Chromium; without them the
tests are skipped, unless ``REFCONV_REQUIRE_SITE=1`` (as in CI), which makes a missing
tool a failure.
"""

import base64
import html
import importlib.util
import json
import os
import re
import shutil
import sys
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "docs"))

import check_site  # noqa: E402
import make_site  # noqa: E402

MISSING = [name for name in ("sphinx", "myst_nb", "sphinx_book_theme", "playwright")
           if importlib.util.find_spec(name) is None]
if shutil.which("npm") is None and not (REPO / "docs" / "node_modules" / "mathjax").exists():
    MISSING.append("npm")
if not Path(check_site.CHROMIUM).exists():
    MISSING.append(f"Chromium at {check_site.CHROMIUM}")
if MISSING:
    if os.environ.get("REFCONV_REQUIRE_SITE") == "1":
        raise RuntimeError(f"REFCONV_REQUIRE_SITE=1 but missing: {', '.join(MISSING)} (pip "
                           f"install -e '.[docs]'; apt-get install chromium npm)")
    pytest.skip(f"the site's tools are missing: {', '.join(MISSING)}", allow_module_level=True)

# A 1x1 PNG, for the hand-made pages below.
PIXEL = base64.b64decode("iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQ"
                         "DwAEhQGAhKmMIQAAAABJRU5ErkJggg==")


@pytest.fixture(scope="module")
def site():
    """The site, built once for this module; its build time is printed (pytest -s)."""
    seconds = make_site.build()
    files, size = make_site.site_size()
    print(f"\nsite built in {seconds:.1f} s: {files} files, {size / 1e6:.1f} MB")
    return make_site.HTML


def test_every_notebook_is_a_page_with_its_figures_and_its_download(site):
    notebooks = sorted((REPO / "notebooks").glob("[0-9][0-9]_*.ipynb"))
    assert len(notebooks) >= 6
    for path in notebooks:
        page = (site / "notebooks" / f"{path.stem}.html").read_text(encoding="utf-8")
        # Every PNG output is an image on the page, and each image file is there.
        outputs = sum("image/png" in output.get("data", {})
                      for cell in json.loads(path.read_text(encoding="utf-8"))["cells"]
                      for output in cell.get("outputs", []))
        images = re.findall(r'<img[^>]+src="([^"]+\.png)"', page)
        assert outputs > 0 and len(images) >= outputs, (path.name, outputs, len(images))
        for src in images:
            assert (site / "notebooks" / src).resolve().is_file(), (path.name, src)
        # The download link gives the notebook as committed, byte for byte.
        downloads = re.findall(rf'href="([^"]*_downloads/[^"]*/{re.escape(path.name)})"', page)
        assert downloads, f"{path.name}: no download link on its page"
        downloaded = (site / "notebooks" / downloads[0]).resolve()
        assert downloaded.read_bytes() == path.read_bytes(), path.name


def test_the_api_reference_has_every_public_name(site):
    for module_name in make_site.API_MODULES:
        page = (site / "api" / f"{module_name.replace('.', '_')}.html").read_text("utf-8")
        names = make_site.public_names(module_name)
        assert names
        for name, _ in names:
            assert f'id="{module_name}.{name}"' in page or f'id="{name}"' in page or \
                f"<span class=\"pre\">{name}</span>" in page, f"{module_name}.{name} not on its page"


def test_the_cli_page_has_every_command(site):
    page = (site / "api" / "cli.html").read_text(encoding="utf-8")
    parsers = make_site.console_parsers()
    assert parsers
    for script, parser in parsers:
        commands = [name for name, _ in make_site._subparsers(parser)]
        assert commands, script
        for command in commands:
            assert f"{script} {command}" in page, f"{script} {command} not on the CLI page"


def test_the_maths_page_and_the_landing_page(site):
    maths = (site / "maths.html").read_text(encoding="utf-8")
    for name in ("z_i", "z_f", "z_o", "sequence_length"):
        assert name in maths
    landing = (site / "index.html").read_text(encoding="utf-8")
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    text = " ".join(html.unescape(re.sub(r"<[^>]+>", "", landing)).split())
    for command in re.findall(r"```bash\n(.*?)```", readme, re.DOTALL)[:2]:  # the two commands
        assert ".venv/bin/pip install" in command
        assert " ".join(command.split()) in text, command
    # MathJax is the site's own copy, never a CDN.
    assert re.search(r'<script[^>]+src="_static/mathjax/tex-svg\.js', landing)
    assert "cdn" not in "".join(re.findall(r"<script[^>]+src=\"([^\"]+)\"", landing)).lower()


def test_every_page_passes_in_chromium(site, tmp_path):
    pages = check_site.site_pages(site)
    assert len(pages) >= 10
    shots = ["index.html", "notebooks/01_convolution.html"]
    start = time.perf_counter()
    problems, formulas = check_site.check_pages(site, pages, check_site.SCREENSHOTS, shots)
    print(f"\n{len(pages)} pages checked in Chromium in {time.perf_counter() - start:.1f} s")
    assert problems == {}
    assert formulas > 50  # the maths page alone has dozens
    for shot in ("index.png", "notebooks_01_convolution.png"):
        assert (check_site.SCREENSHOTS / shot).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def _tiny_site(tmp_path, page):
    """Stage a one-page site (with a real image beside it) and build it as the site is built."""
    source = tmp_path / "src"
    source.mkdir(parents=True)
    (source / "figure.png").write_bytes(PIXEL)
    (source / "index.md").write_text(page, encoding="utf-8")
    make_site.sphinx(source, tmp_path / "html", capture=True)
    return tmp_path / "html"


# Resolvable: a label, an existing refconv object that no __all__ lists, another library's name.
GOOD_PAGE = ("# A page\n\n(a-part)=\n## A part\n\n"
             "{ref}`a-part`, {py:func}`refconv.lstm.lstm_gates`, {py:class}`numpy.ndarray`, "
             "$z_f$ and ![a figure](figure.png)\n")
# Each broken line, and the warning that must name it (Sphinx's --keep-going reports all).
BROKEN = {
    "{py:func}`refconv.no_such_function`": "reference target not found: refconv.no_such_function",
    "{py:func}`no_such_helper`": "reference target not found: no_such_helper",
    "![a figure](no_such_figure.png)": "no_such_figure.png",
    "[a page](no_such_page.md)": "no_such_page",
    "{ref}`no-such-part`": "no-such-part",
}


def test_the_build_fails_on_a_broken_page(site, tmp_path):
    with pytest.raises(make_site.SiteError) as failure:
        _tiny_site(tmp_path, GOOD_PAGE + "\n\n".join(BROKEN) + "\n")
    for line, warning in BROKEN.items():
        assert warning in str(failure.value), (line, str(failure.value))


def test_the_same_page_unbroken_builds(site, tmp_path):
    """The control for the test above: what fails there is the broken lines."""
    page = (_tiny_site(tmp_path, GOOD_PAGE) / "index.html").read_text(encoding="utf-8")
    assert 'href="#a-part"' in page and 'src="_images/figure.png"' in page


def test_links_to_repository_files_become_downloads_or_forge_links(monkeypatch, tmp_path):
    monkeypatch.setattr(make_site, "SRC", tmp_path / "src")
    staged = tmp_path / "src" / "notebooks"
    staged.mkdir(parents=True)
    (staged / "01_convolution.ipynb").write_text("{}")
    source_url = make_site._pyproject()["project"]["urls"]["Source"].rstrip("/")
    text = ("[a page](01_convolution.ipynb) [a script](run.py) [a folder](src/) "
            "[a guide](README.md#running-them) [nothing](no_such_file.py) [web](https://x.org/a.py)")
    fixed = make_site.stage_links(text, REPO / "notebooks", staged)
    assert (staged / "run.py").read_bytes() == (REPO / "notebooks" / "run.py").read_bytes()
    assert fixed == ("[a page](01_convolution.ipynb) [a script](run.py) "
                     f"[a folder]({source_url}/tree/main/notebooks/src) "
                     f"[a guide]({source_url}/blob/main/notebooks/README.md#running-them) "
                     "[nothing](no_such_file.py) [web](https://x.org/a.py)")


def test_the_build_fails_on_an_undocumented_public_name(monkeypatch):
    import refconv

    assert make_site.undocumented() == []

    def undocumented_function(x):
        return x

    class Documented:
        """A class with a docstring, and a public method without one."""

        def method(self):
            return None

    Documented.__module__ = "refconv.somewhere"  # only refconv's own classes are held to it

    monkeypatch.setattr(refconv, "undocumented_function", undocumented_function, raising=False)
    monkeypatch.setattr(refconv, "Documented", Documented, raising=False)
    monkeypatch.setattr(refconv, "__all__", refconv.__all__ + ["undocumented_function",
                                                                "Documented"])
    assert make_site.undocumented() == ["refconv.undocumented_function",
                                        "refconv.Documented.method"]


def test_the_browser_check_fails_on_a_broken_page(tmp_path):
    (tmp_path / "figure.png").write_bytes(PIXEL)
    (tmp_path / "good.html").write_text(
        '<html><body><img src="figure.png"><a href="good.html">me</a></body></html>')
    (tmp_path / "broken.html").write_text(
        "<html><body>"
        '<img src="no_such_figure.png">'
        '<img src="http://example.org/figure.png">'
        '<span class="math">\\(z_f\\)</span>'
        '<a href="no_such_page.html">a page</a> <a href="good.html#no_such_anchor">a part</a>'
        '<script>console.error("boom")</script>'
        "</body></html>")
    problems, formulas = check_site.check_pages(tmp_path, ["good.html", "broken.html"])
    assert list(problems) == ["broken.html"] and formulas == 0
    found = "\n".join(problems["broken.html"])
    for expected in ("image not loaded: no_such_figure.png", "HTTP 404",
                     "request leaving 127.0.0.1 (blocked): http://example.org/figure.png",
                     "console error: boom", "formula not typeset", "no_such_page.html",
                     "no anchor #no_such_anchor"):
        assert expected in found, (expected, found)
