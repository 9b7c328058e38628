"""The documentation site: built with every warning an error, then read in a real browser.

What the tests trust: the files on disk (the notebooks, their PNG outputs), refconv's
own ``__all__`` and parsers, refconv.course.student (the student version), and
Chromium. The site must hold every notebook in its student version (as a page and as
its download; no solution, hidden case or answer key anywhere) and every public name;
the build must fail on a broken cross-reference, a missing image and an undocumented
public name; the browser check must pass on the site and fail on a page that is broken
in each way it looks for.

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
import student  # noqa: E402

MISSING = [name for name in ("sphinx", "myst_nb", "sphinx_book_theme", "sphinx_copybutton",
                             "playwright")
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


def _solution_text(notebook):
    """The answer lines of an instructor notebook: each solution region's code lines and
    each written answer (a solution Markdown cell), stripped, 20 characters or more, that
    the notebook's other cells do not show (the tutorial may show a line an answer uses)."""
    lines = []
    shown = "\n".join("".join(cell["source"]) for cell in notebook["cells"]
                      if not cell.get("metadata", {}).get("nbgrader", {}).get("solution"))
    for cell in notebook["cells"]:
        if not cell.get("metadata", {}).get("nbgrader", {}).get("solution"):
            continue
        source = "".join(cell["source"])
        region = re.findall(r"BEGIN SOLUTION\n(.*?)\n[^\n]*END SOLUTION", source, re.DOTALL)
        for text in region or [source]:
            lines += [line.strip() for line in text.splitlines()
                      if len(line.strip()) >= 20 and line.strip() not in shown]
    return lines


def test_every_notebook_is_a_student_page_with_its_figures_and_its_download(site):
    notebooks = sorted((REPO / "notebooks").glob("[0-9][0-9]_*.ipynb"))
    assert len(notebooks) >= 6
    hidden = 0
    for path in notebooks:
        original = json.loads(path.read_text(encoding="utf-8"))
        shown = student.site_notebook(original)
        page = (site / "notebooks" / f"{path.stem}.html").read_text(encoding="utf-8")
        # Every PNG output the student version keeps is an image on the page, with its file.
        outputs = sum("image/png" in output.get("data", {})
                      for cell in shown["cells"] for output in cell.get("outputs", []))
        images = re.findall(r'<img[^>]+src="([^"]+\.png)"', page)
        assert outputs > 0 and len(images) >= outputs, (path.name, outputs, len(images))
        for src in images:
            assert (site / "notebooks" / src).resolve().is_file(), (path.name, src)
        # The download link gives the student version, as the page shows it.
        downloads = re.findall(rf'href="([^"]*_downloads/[^"]*/{re.escape(path.name)})"', page)
        assert downloads, f"{path.name}: no download link on its page"
        downloaded = json.loads((site / "notebooks" / downloads[0]).resolve().read_text("utf-8"))
        assert [c["source"] for c in downloaded["cells"]] == \
            [c["source"] for c in shown["cells"]], path.name
        # No answer anywhere: the markers, the solutions' own lines, the written answers.
        text = html.unescape(re.sub(r"<[^>]+>", "", page))
        download_text = json.dumps(downloaded)
        for marker in student.FORBIDDEN + ("edit the source, not the notebook",):
            assert marker not in page and marker not in download_text, (path.name, marker)
        for line in _solution_text(original):
            hidden += 1
            assert line not in text and json.dumps(line)[1:-1] not in download_text, \
                (path.name, line)
        # The checkers stay, so that a self-learner can check their work.
        checkers = [c for c in original["cells"]
                    if c.get("metadata", {}).get("nbgrader", {}).get("grade")
                    and c["cell_type"] == "code"]
        for cell in checkers:
            first = "".join(cell["source"]).splitlines()[0]
            assert first in download_text or json.dumps(first)[1:-1] in download_text, first
    assert hidden > 20  # the course has that many answer lines: the check checked them


def test_the_student_pages_keep_the_tutorial_outputs_and_drop_the_answers():
    """The outputs the site keeps: none of a solution or graded cell, or a cell that uses
    an answer; every other cell's, figures included."""
    notebook = {"cells": [
        {"id": "a", "cell_type": "code", "metadata": {}, "execution_count": 1,
         "source": "x = 2\nx", "outputs": [{"output_type": "stream", "text": "2"}]},
        {"id": "b", "cell_type": "code", "execution_count": 2,
         "metadata": {"nbgrader": {"solution": True, "grade": False, "grade_id": "f",
                                   "locked": False, "schema_version": 3}},
         "source": "def f(v):\n    ### BEGIN SOLUTION\n    return v * 21\n    ### END SOLUTION",
         "outputs": [{"output_type": "stream", "text": "defined"}]},
        {"id": "c", "cell_type": "code", "execution_count": 3, "metadata": {},
         "source": "print(f(x))", "outputs": [{"output_type": "stream", "text": "42"}]},
        {"id": "d", "cell_type": "code", "execution_count": 4, "metadata": {},
         "source": "print(x + 1)", "outputs": [{"output_type": "stream", "text": "3"}]}],
        "metadata": {"kernelspec": {"language": "python", "name": "python3",
                                    "display_name": "Python 3"}},
        "nbformat": 4, "nbformat_minor": 5}
    shown = student.site_notebook(notebook)
    kept = {cell["id"]: cell["outputs"] for cell in shown["cells"]}
    assert kept == {"a": notebook["cells"][0]["outputs"], "b": [], "c": [],
                    "d": notebook["cells"][3]["outputs"]}
    assert "return v * 21" not in json.dumps(shown) and "NotImplementedError" in json.dumps(shown)


def test_the_api_reference_has_every_public_name_with_its_methods(site):
    for _, page, module_name, _, _ in make_site.API_PAGES:
        text = (site / "api" / f"{page}.html").read_text("utf-8")
        names = make_site.page_names()[page] if module_name == "refconv" else \
            make_site.public_names(module_name)
        assert names, page
        for name, obj in names:
            assert f'id="{module_name}.{name}"' in text or f'id="{name}"' in text or \
                f"<span class=\"pre\">{name}</span>" in text, f"{module_name}.{name} not on {page}"
    # A class shows every public method it has, inherited ones too: ConvCell's build and
    # __call__ on ConvLSTMCell's entry, as a reader of the README's first example needs.
    cells = (site / "api" / "refconv.html").read_text("utf-8")
    for cell in ("ConvLSTMCell", "ConvGRUCell"):
        for member in ("build", "__call__", "zero_state", "output_size", "state_size"):
            assert f'id="refconv.{cell}.{member}"' in cells, (cell, member)
    # A page for each module the notebooks import.
    for module in ("viz", "tasks", "data", "diagram", "vocabulary", "conformance",
                   "exercises", "interop"):
        assert (site / "api" / f"refconv_{module}.html").is_file(), module


def test_every_name_of_refconv_is_on_an_api_page(monkeypatch):
    import refconv

    assert make_site.page_names()  # every name placed, as the site stands
    monkeypatch.setattr(refconv, "somewhere_new", lambda: None, raising=False)
    refconv.somewhere_new.__module__ = "refconv.somewhere"
    monkeypatch.setattr(refconv, "__all__", refconv.__all__ + ["somewhere_new"])
    with pytest.raises(make_site.SiteError, match="names on no API page.*somewhere_new"):
        make_site.page_names()


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
    # The backward pass, in the article's names, as lstm_step_backward computes it.
    for line in (r"\delta z_o &amp;= \delta h_t \odot \phi(c_t)",
                 r"\delta c_{t-1} &amp;= \delta c^{\text{in}} \odot z_f",
                 r"\delta z_f &amp;= \delta c^{\text{in}} \odot c_{t-1}"):
        assert line in maths, line
    glossary = html.unescape(re.sub(r"<[^>]+>", "", (site / "glossary.html").read_text("utf-8")))
    for word in ("seed", "forget gate", "SAME padding", "sequence_length", "golden vectors"):
        assert word in glossary, word
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
    assert check_site.check_files(site) == []
    pages = check_site.site_pages(site)
    assert len(pages) >= 10
    start = time.perf_counter()
    sizes = []
    problems, formulas = check_site.check_pages(site, pages, tmp_path, "SHOTS", sizes)
    print(f"\n{len(pages)} pages checked in Chromium in {time.perf_counter() - start:.1f} s")
    assert problems == {}
    assert formulas > 50  # the maths page alone has dozens
    assert len(sizes) >= 40   # every notebook figure was measured
    for width in check_site.SHOT_WIDTHS:
        for name, _, _ in check_site.SHOTS:
            assert (tmp_path / f"{name}_{width}.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # The published folder holds no build cache and no source map.
    assert not list(site.rglob("*.map")) and not list(site.rglob("*.doctree"))
    assert 'rel="icon"' in (site / "index.html").read_text("utf-8")


def test_the_file_check_finds_answers_caches_and_source_maps(tmp_path):
    (tmp_path / "index.html").write_text('<html><link rel="icon" href="f.svg"></html>')
    assert check_site.check_files(tmp_path) == []
    (tmp_path / "_downloads").mkdir()
    (tmp_path / "_downloads" / "01.ipynb").write_text('{"source": "### BEGIN HIDDEN TESTS"}')
    (tmp_path / "page.html").write_text("<p>### END SOLUTION</p>")
    (tmp_path / ".doctrees").mkdir()
    (tmp_path / "theme.css").write_text("a{}\n/*# sourceMappingURL=theme.css.map*/")
    (tmp_path / "theme.css.map").write_text("{}")
    found = "\n".join(check_site.check_files(tmp_path))
    for expected in ("_downloads/01.ipynb: holds BEGIN HIDDEN TESTS", "page.html: holds END "
                     "SOLUTION", ".doctrees: Sphinx's cache", "theme.css.map: a source map",
                     "theme.css: points to a source map"):
        assert expected in found, (expected, found)


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
        '<html><body><img src="figure.png" alt="a pixel"><a href="good.html">me</a></body></html>')
    (tmp_path / "broken.html").write_text(
        "<html><body>"
        '<img src="no_such_figure.png">'
        '<img src="http://example.org/figure.png">'
        '<span class="math">\\(z_f\\)</span>'
        '<a href="no_such_page.html">a page</a> <a href="good.html#no_such_anchor">a part</a>'
        '<script>console.error("boom")</script>'
        '<div class="cell_output"><img src="figure.png" alt="figure.png"></div>'
        "</body></html>")
    problems, formulas = check_site.check_pages(tmp_path, ["good.html", "broken.html"])
    assert list(problems) == ["broken.html"] and formulas == 0
    found = "\n".join(problems["broken.html"])
    for expected in ("image not loaded: no_such_figure.png", "HTTP 404",
                     "request leaving 127.0.0.1 (blocked): http://example.org/figure.png",
                     "console error: boom", "formula not typeset", "no_such_page.html",
                     "no anchor #no_such_anchor", "image without a useful alt text: figure.png",
                     "figure not linked to its full size: figure.png",
                     "figure without its smallest text size and dpi"):
        assert expected in found, (expected, found)
