"""Build refconv's documentation site, with every warning an error.

    python docs/make_site.py            # build into build/site/html
    python docs/make_site.py --check    # ... then open every page in Chromium (docs/check_site.py)
    python docs/make_site.py --serve    # ... then serve it on http://127.0.0.1:8000 until Ctrl-C

What goes in, all found at build time so that a new notebook or a new public
name needs no edit here:

* the pages in ``docs/`` (landing page, maths, course);
* every notebook ``notebooks/NN_*.ipynb`` in its STUDENT version
  (``docs/student.py``: ``refconv.course.student``'s, no solution, no hidden graded
  case, no answer key, no maintainer's note; the checkers stay; the outputs no
  answer made kept), rendered from its committed outputs (never executed here),
  each with a link that downloads that student version; figures get their alt
  text from the PNG (``refconv.viz.to_png`` writes it) and open full size on a click;
* ``notebooks/COURSE.md`` when it exists; the repository files that it and the
  notebooks link to become downloads (folders and other Markdown files: links to the
  forge, ``project.urls.Source``);
* an API reference generated from ``__all__`` of the modules in ``API_PAGES``
  (grouped as a reader looks for them; every name of ``refconv.__all__`` must land
  on a page), with each class's inherited public methods, and from the argparse
  parsers of every console script in ``pyproject.toml``; a public name (or a
  public method or property of a public class) without a docstring fails the build;
  a module whose optional dependencies (onnx, torch, ...) are not installed is
  documented with those dependencies mocked, never imported;
* MathJax 3 from the npm package pinned in ``docs/package-lock.json``, served by
  the site itself, so formulas render without the network.

Sphinx runs with ``-W --keep-going -n``: a broken cross-reference, a broken link
between pages, a missing image or a docstring Sphinx cannot parse fails the build
(conf.py's ``_reference`` says which references to non-public or other libraries'
names are accepted). It needs only ``pip install -e ".[docs]"`` and npm; anything
missing ends the build with one line that names it.
"""

import argparse
import ast
import base64
import contextlib
import importlib
import importlib.util
import inspect
import io
import json
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

DOCS = Path(__file__).resolve().parent
REPO = DOCS.parent
OUT = REPO / "build" / "site"
SRC = OUT / "src"          # the staged sources Sphinx reads
HTML = OUT / "html"        # the site
STATIC = OUT / "static"    # html_static_path: MathJax
NOTEBOOK_GLOB = "[0-9][0-9]_*.ipynb"
COURSE = REPO / "notebooks" / "COURSE.md"
# The API reference: (group, page, module, title, which names of the module's __all__).
# A page of ``refconv`` itself takes the names defined in the listed modules; every name
# of ``refconv.__all__`` must be on one of them (the build fails otherwise).
CELLS = ("refconv.lstm", "refconv.gru", "refconv.rnn", "refconv.stream", "refconv.conv",
         "refconv.layer_norm", "refconv.activations")
GRADIENTS = ("refconv.bptt", "refconv.gradcheck")
ORACLE = ("refconv.golden", "refconv.compare")
API_PAGES = (
    ("Cells and time loops", "refconv", "refconv", "Cells, steps and time loops", CELLS),
    ("Cells and time loops", "refconv_fast", "refconv.fast", None, None),
    ("Gradients", "refconv_gradients", "refconv", "Gradients", GRADIENTS),
    ("Oracle: golden vectors, comparison, importers", "refconv_oracle", "refconv",
     "Golden vectors and comparison", ORACLE),
    ("Oracle: golden vectors, comparison, importers", "refconv_interop", "refconv.interop",
     None, None),
    ("Conformance", "refconv_conformance", "refconv.conformance", None, None),
    ("Conformance", "refconv_conformance_onnx_torch", "refconv.conformance.onnx_torch",
     None, None),
    ("Conformance", "refconv_conformance_tflite_keras", "refconv.conformance.tflite_keras",
     None, None),
    ("Teaching", "refconv_exercises", "refconv.exercises", None, None),
    ("Teaching", "refconv_viz", "refconv.viz", None, None),
    ("Teaching", "refconv_tasks", "refconv.tasks", None, None),
    ("Teaching", "refconv_data", "refconv.data", None, None),
    ("Teaching", "refconv_diagram", "refconv.diagram", None, None),
    ("Teaching", "refconv_vocabulary", "refconv.vocabulary", None, None),
    ("Teaching", "refconv_course", "refconv.course", None, None),
)
API_MODULES = tuple(dict.fromkeys(module for _, _, module, _, _ in API_PAGES))
# From the MathJax package: the TeX-to-SVG bundle (SVG: no web fonts to fetch) and the
# TeX extensions it loads on demand.
MATHJAX_FILES = ("tex-svg.js", "input/tex/extensions")

sys.path.insert(0, str(REPO))  # document the refconv beside this file, not an installed one
sys.path.insert(0, str(DOCS))   # docs/student.py, docs/check_site.py


class SiteError(Exception):
    """The site cannot be built as it stands; the message says why."""


# Optional third-party packages a refconv module imports at its top and that are not
# installed here (onnx, torch, ai_edge_litert...): imported as Sphinx's mocks, so the
# module's docstrings can be read and documented without them.
MOCKED = []


def load(module_name):
    """Import a refconv module; its missing optional dependencies are mocked (``MOCKED``)."""
    from sphinx.ext.autodoc.mock import mock

    while True:
        try:
            with mock(list(MOCKED)):
                return importlib.import_module(module_name)
        except ModuleNotFoundError as error:
            top = (error.name or "").split(".")[0]
            if not top or top == "refconv" or top in MOCKED:
                raise SiteError(f"{module_name}: cannot import {error.name!r} ({error})") \
                    from None
            MOCKED.append(top)


def mocked_packages():
    """The optional packages any API module needs and this environment lacks (sorted)."""
    for module_name in API_MODULES:
        load(module_name)
    return sorted(MOCKED)


# --- staging ------------------------------------------------------------------------

def notebooks():
    """The notebooks ``notebooks/NN_*.ipynb``, in reading order."""
    found = sorted((REPO / "notebooks").glob(NOTEBOOK_GLOB))
    if not found:
        raise SiteError(f"no notebook matches notebooks/{NOTEBOOK_GLOB}")
    return found


def stage():
    """Lay out ``build/site/src``: the pages, the notebooks, the course and the API reference."""
    shutil.rmtree(SRC, ignore_errors=True)
    SRC.mkdir(parents=True)
    for page in DOCS.glob("*.md"):
        shutil.copy2(page, SRC / page.name)
    generated = SRC / "_generated"
    generated.mkdir()
    (generated / "commands.md").write_text(commands_page(), encoding="utf-8")
    (generated / "notebook_list.md").write_text(stage_notebooks(), encoding="utf-8")
    (generated / "course.md").write_text(stage_course(), encoding="utf-8")
    stage_api(SRC / "api")


def stage_notebooks():
    """Stage each notebook's student version as a page and as its download; return the
    landing page's list."""
    import student   # docs/student.py: refconv.course.student's version, outputs kept

    pages, downloads = SRC / "notebooks", SRC / "_notebook_files"
    pages.mkdir()
    downloads.mkdir()
    source_url = _pyproject()["project"]["urls"]["Source"].rstrip("/")
    lines = []
    for path in notebooks():
        try:
            notebook = student.site_notebook(json.loads(path.read_text(encoding="utf-8")))
        except ValueError as error:
            raise SiteError(f"notebooks/{path.name}: {error}") from None
        # The download is the student version too, as a notebook file.
        (downloads / path.name).write_text(json.dumps(notebook, indent=1, ensure_ascii=False)
                                           + "\n", encoding="utf-8")
        title = notebook_title(notebook, path)
        source = f"{source_url}/blob/main/notebooks/src/{path.stem}.py"
        link = (f"{{download}}`Download this notebook </_notebook_files/{path.name}>` "
                f"(`{path.name}`, the student version, with the outputs shown here) to run it "
                f"yourself: {{doc}}`how </course>`.")
        if any(student.nbgrader(cell).get("solution") for cell in
               json.loads(path.read_text(encoding="utf-8"))["cells"]):
            link += (f" The exercises show `YOUR CODE HERE` / `YOUR ANSWER HERE` and the "
                     f"checkers; once you have tried, the worked solutions are in "
                     f"[this notebook's source]({source}) in the repository "
                     f"({{doc}}`the course page </course>` says more).")
        add_below_title(notebook, link)
        for cell in notebook["cells"]:
            if cell["cell_type"] == "markdown":
                cell["source"] = stage_links(_text(cell["source"]), path.parent, pages)
            describe_figures(cell)
        (pages / path.name).write_text(json.dumps(notebook, indent=1), encoding="utf-8")
        lines.append(f"1. {{doc}}`{title} </notebooks/{path.stem}>` "
                     f"({{download}}`download </_notebook_files/{path.name}>`)")
    return "\n".join(lines) + "\n"


def _text(source):
    return "".join(source) if isinstance(source, list) else source


def describe_figures(cell):
    """Give a code cell's PNG outputs their alt text and their size.

    The alt text is what the figure shows, as ``refconv.viz.to_png`` wrote it into
    the PNG (its ``Description``), or "a figure" for a PNG without one. The width is
    the figure's own size in CSS pixels (96 per inch, from the PNG's dpi), so a
    150-dpi figure shows its text at the size it was drawn, or smaller when the page is
    narrower; Sphinx links a sized image to its full-size file (``html_scaled_image_link``).
    """
    if cell["cell_type"] != "code":
        return
    alts, widths = [], []
    for output in cell.get("outputs", []):
        data = output.get("data", {}).get("image/png")
        if data is None:
            continue
        text, width = png_facts(base64.b64decode(_text(data)))
        alts.append(text)
        if width:
            output.setdefault("metadata", {}).setdefault("image/png", {})["width"] = width
    if alts:
        options = cell.setdefault("metadata", {}).setdefault("mystnb", {})
        options.setdefault("image", {})["alt"] = "Figure: " + " | ".join(alts)


def png_facts(data):
    """``(description, css_width)`` of a PNG's bytes: its ``Description`` text (or "a
    figure") and its width in CSS pixels at 96 per inch (None without a dpi)."""
    from PIL import Image   # Pillow: a dependency of matplotlib, so of refconv

    with Image.open(io.BytesIO(data)) as image:
        text = " ".join(image.text.get("Description", "a figure").split())
        dpi = image.info.get("dpi", (None,))[0]
        width = round(image.width * 96 / dpi) if dpi else None
    return text, width


def add_below_title(notebook, paragraph):
    """Put ``paragraph`` just below the notebook's ``# title`` line (the first Markdown cell's)."""
    for cell in notebook["cells"]:
        lines = "".join(cell["source"]).split("\n")
        titles = [i for i, line in enumerate(lines) if re.match(r"#\s", line)]
        if cell["cell_type"] == "markdown" and titles:
            at = titles[0] + 1
            cell["source"] = "\n".join(lines[:at] + ["", paragraph, ""] + lines[at:])
            return


def notebook_title(notebook, path):
    """The first Markdown heading of a notebook (its page title)."""
    for cell in notebook["cells"]:
        if cell["cell_type"] == "markdown":
            match = re.search(r"^#\s+(.+)$", "".join(cell["source"]), re.MULTILINE)
            if match:
                return match.group(1).strip()
    raise SiteError(f"{path.relative_to(REPO)}: no '# title' heading in any Markdown cell; "
                    f"a notebook's page needs one")


def stage_course():
    """Stage notebooks/COURSE.md (and the repository files it links to) when it exists."""
    if not COURSE.exists():
        return ("The teacher's guide, `notebooks/COURSE.md`, is not in this build of the "
                "site.\n")
    text = stage_links(COURSE.read_text(encoding="utf-8"), COURSE.parent, SRC / "notebooks")
    (SRC / "notebooks" / "COURSE.md").write_text(text, encoding="utf-8")
    return "```{toctree}\n:maxdepth: 2\n\nnotebooks/COURSE\n```\n"


def stage_links(text, folder, staged_folder):
    """Make the relative links of Markdown ``text`` (from ``folder`` in the repository,
    staged in ``staged_folder``) work on the site; return the text.

    A link to a page of the site (a notebook, a staged Markdown file) stays. A link to
    another repository file (a notebook's source, a script) becomes a download: the file
    is copied where the link points. A link to a repository folder or to a Markdown file
    that is not a page goes to the repository on the forge. A link to nothing stays
    broken, and Sphinx fails the build on it.
    """
    source_url = _pyproject()["project"]["urls"]["Source"].rstrip("/")

    def fix(match):
        label, target, anchor = match.group(1), match.group(2), match.group(3) or ""
        if re.match(r"[a-z][a-z0-9+.-]*:", target) or target.startswith(("#", "/")):
            return match.group(0)
        source = (folder / target).resolve()
        staged = (staged_folder / target).resolve()
        if REPO not in source.parents or not source.exists() or staged.exists() \
                or source.suffix == ".ipynb":
            return match.group(0)
        if source.is_file() and source.suffix != ".md" and SRC in staged.parents:
            staged.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, staged)
            return match.group(0)
        kind = "tree" if source.is_dir() else "blob"
        return f"[{label}]({source_url}/{kind}/main/{source.relative_to(REPO).as_posix()}{anchor})"

    return re.sub(r"\[([^\]]*)\]\(([^)\s#]+)(#[^)\s]*)?\)", fix, text)


def commands_page():
    """The README's two commands (run the demo, run the tests), with the README's own words
    about the demo (what it does, how long it took), so that the two never disagree."""
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    demo = re.search(r"\*\*Run the demo\*\* \((.*?)\):\s*```bash\n(.*?)```", readme, re.DOTALL)
    tests = re.search(r"<!-- ci: tests -->\s*```bash\n(.*?)```", readme, re.DOTALL)
    if demo is None or tests is None:
        raise SiteError("README.md: expected '**Run the demo** (...):' and its ```bash block, "
                        "and the test command after '<!-- ci: tests -->'")
    about = " ".join(demo.group(1).split())
    return (f"**Run the demo** ({about}):\n\n"
            f"```{{code-block}} bash\n:class: wrap-long\n\n{demo.group(2)}```\n\n"
            "**Run the tests** (what CI runs):\n\n"
            f"```{{code-block}} bash\n:class: wrap-long\n\n{tests.group(1)}```\n")


# --- the API reference -------------------------------------------------------------------

def public_names(module_name, defined_in=None):
    """``[(name, object)]`` for a module's ``__all__``, in its order; with ``defined_in``
    (module names), only the names whose object one of those modules (or their
    sub-modules) defines."""
    module = load(module_name)
    if not hasattr(module, "__all__"):
        raise SiteError(f"{module_name} has no __all__: the API reference lists __all__")
    names = [(name, getattr(module, name)) for name in module.__all__]
    if defined_in is not None:
        names = [(name, obj) for name, obj in names
                 if _home(obj, module_name).startswith(tuple(defined_in))]
    return names


def _home(obj, default):
    """The module that defines ``obj`` (``default`` for a constant)."""
    home = getattr(obj, "__module__", None)
    return home if isinstance(home, str) and (inspect.isclass(obj) or callable(obj)) \
        else default


def page_names():
    """``{page: [(name, object)]}`` for each page of ``API_PAGES``; a SiteError when a
    name of ``refconv.__all__`` is on no page (say, a new module not in CELLS...)."""
    found = {page: public_names(module, defined_in)
             for _, page, module, _, defined_in in API_PAGES}
    placed = {name for _, page, module, _, _ in API_PAGES if module == "refconv"
              for name, _ in found[page]}
    lost = [name for name in load("refconv").__all__ if name not in placed]
    if lost:
        raise SiteError(f"refconv.__all__ names on no API page (add their module to "
                        f"docs/make_site.py's CELLS, GRADIENTS or ORACLE): {', '.join(lost)}")
    return found


def undocumented():
    """Public names without a docstring: each name of the API modules' ``__all__``, and each
    public method or property of their classes (a dataclass field or attribute counts as
    documented when the class docstring names it)."""
    missing = []
    for module_name in API_MODULES:
        module = load(module_name)
        if not inspect.getdoc(module):
            missing.append(module_name)
        for name, obj in public_names(module_name):
            if not (inspect.isclass(obj) or callable(obj)) or _is_mock(obj):
                continue  # a constant: its value is what the reference shows
            if not (obj.__doc__ or "").strip():
                missing.append(f"{module_name}.{name}")
            if inspect.isclass(obj):
                missing += [f"{module_name}.{name}.{member}"
                            for member in undocumented_members(obj)]
    return missing


def _is_mock(obj):
    return type(obj).__module__ == "sphinx.ext.autodoc.mock"


def undocumented_members(cls):
    """Public methods and properties of ``cls`` (defined by refconv) without a docstring."""
    class_doc = cls.__doc__ or ""
    missing = []
    for member, value in refconv_members(cls):
        named = re.search(rf"``(\w+)?\.?{member}``|^\s+{member}:", class_doc, re.MULTILINE)
        if not inspect.getdoc(getattr(cls, member, value)) and not named:
            missing.append(member)
    return missing


def refconv_members(cls):
    """``[(name, value)]``: the public methods and properties of ``cls`` that refconv
    defines, its own and inherited (``__call__`` counts as public), in the order of
    the class's MRO (the class first), each once."""
    found = {}
    for klass in cls.__mro__:
        if not klass.__module__.startswith("refconv"):
            continue
        for member, value in vars(klass).items():
            if (member.startswith("_") and member != "__call__") or member in found:
                continue
            if isinstance(value, (staticmethod, classmethod)):
                value = value.__func__
            if inspect.isfunction(value) or isinstance(value, property):
                found[member] = value
    return list(found.items())


def stage_api(folder):
    """Write the API reference pages (one per entry of ``API_PAGES``), the modules' map
    and the command line, and the index that groups them."""
    folder.mkdir()
    missing = undocumented()
    if missing:
        raise SiteError("public names without a docstring (the API reference is made of "
                        "them):\n  " + "\n  ".join(missing))
    seen, groups, described = {}, {}, set()
    for group, page, module_name, title, defined_in in API_PAGES:
        groups.setdefault(group, []).append(page)
        names = page_names()[page] if module_name == "refconv" else public_names(module_name)
        lines = api_page(module_name, title, names, seen, first=module_name not in described)
        described.add(module_name)
        (folder / f"{page}.md").write_text("\n".join(lines), encoding="utf-8")
    (folder / "modules.md").write_text(modules_page(), encoding="utf-8")
    (folder / "cli.md").write_text(cli_page(), encoding="utf-8")
    toc = []
    for group, pages in list(groups.items()) + [("The source and the command line",
                                                 ["modules", "cli"])]:
        toc += [f"```{{toctree}}\n:caption: {group}\n:maxdepth: 1\n", *pages, "```", ""]
    (folder / "index.md").write_text(
        "# API reference\n\nGenerated from the docstrings of every public name (each module's "
        "`__all__`), grouped as you would look for them: the cells and their time loops, "
        "their gradients, the oracle that checks a framework against refconv, deployment "
        "conformance, and what the notebooks teach with. Classes list every public method "
        "they have, inherited ones included. The command line is documented from its own "
        "parsers.\n\n" + "\n".join(toc), encoding="utf-8")


def api_page(module_name, title, names, seen, first):
    """The Markdown of one API page: the module's summary, then each name."""
    module = load(module_name)
    summary = inspect.getdoc(module).split("\n\n")[0]
    heading = f"`{module_name}`" + (f": {title.lower()}" if title else "")
    lines = [f"# {heading}", "", summary, ""]
    optional = sorted({top for top in MOCKED if top in _top_imports(module_name)})
    if optional:
        lines += [f"This module needs {', '.join(f'`{name}`' for name in optional)} "
                  "(an optional extra), which it imports when it is imported.", ""]
    lines += ["```{eval-rst}"]
    lines += [f".. module:: {module_name}", ""] if first else []
    lines += [f".. currentmodule:: {module_name}", ""]
    for name, obj in names:
        if id(obj) in seen:  # one object, two public names: one description, one link
            lines += [f".. py:data:: {name}", "   :no-index:", "",
                      f"   The same object as :py:obj:`{seen[id(obj)]}`.", ""]
            continue
        seen[id(obj)] = f"{module_name}.{name}"
        if inspect.isclass(obj) and not _is_mock(obj):
            directive = "autoexception" if issubclass(obj, BaseException) else "autoclass"
            members = [member for member, _ in refconv_members(obj)]
            lines += [f".. {directive}:: {name}"]
            if members:
                lines += [f"   :members: {', '.join(members)}"]
                if "__call__" in members:
                    lines += ["   :special-members: __call__"]
            lines += [""]
        elif callable(obj):
            lines += [f".. autofunction:: {name}", ""]
        else:  # a constant: the comment above its assignment, and its value
            lines += [f".. py:data:: {name}", ""]
            lines += [f"   {line}" for line in constant_comment(module_name, name)] + [""]
            lines += ["   .. code-block:: python", "", f"      {name} = {short_repr(obj)}", ""]
    return lines + ["```", ""]


def _source_of(module_name):
    """The source file of a refconv module (``refconv/...``), found without importing it."""
    parts = module_name.split(".")
    package = REPO.joinpath(*parts, "__init__.py")
    if package.is_file():
        return package
    if len(parts) > 1 and REPO.joinpath(*parts).with_suffix(".py").is_file():
        return REPO.joinpath(*parts).with_suffix(".py")
    raise SiteError(f"{module_name}: no source file {'/'.join(parts)}.py under {REPO}")


def _top_imports(module_name):
    """The top-level packages a module imports in its own top-level code (from its source)."""
    tree = ast.parse(_source_of(module_name).read_text(encoding="utf-8"))
    found = set()
    for node in tree.body:
        if isinstance(node, ast.Import):
            found |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.add(node.module.split(".")[0])
    return found


def module_doc(module_name):
    """A module's docstring, read from its source with ``ast`` (nothing imported)."""
    return ast.get_docstring(ast.parse(_source_of(module_name).read_text(encoding="utf-8")))


def modules():
    """Every module of the refconv package (private ones, ``_name``, left out), sorted;
    found from the files (each folder on the way a package), nothing imported."""
    root = REPO / "refconv"
    names = []
    for path in root.rglob("*.py"):
        parts = path.relative_to(REPO).with_suffix("").parts
        packages = [REPO.joinpath(*parts[:i]) for i in range(1, len(parts))]
        if all((folder / "__init__.py").is_file() for folder in packages):
            names.append(".".join(parts[:-1] if parts[-1] == "__init__" else parts))
    return sorted(set(name for name in names
                      if not any(part.startswith("_") for part in name.split("."))))


def modules_page():
    """One entry per module, with its docstring: the reader's map of the source."""
    lines = ["# Modules", "",
             "refconv has a module per subject; the names of the other pages are defined "
             "in them. What each module is about, from its docstring:", "", "```{eval-rst}"]
    pages = {module: page for _, page, module, _, _ in API_PAGES}
    for name in modules():
        doc = module_doc(name)
        if not doc:
            raise SiteError(f"{name} has no module docstring (the reference's map of the "
                            f"modules is made of them)")
        if name in pages:
            lines += [f"``{name}``", f"   {_escape_rst(doc.splitlines()[0])} "
                                     f"See :doc:`{pages[name]}`.", ""]
            continue
        summary = doc.split("\n\n")[0]
        # A module named like a public function (refconv.compare, refconv.layer_norm) is
        # listed, but the name's reference target stays the function.
        parent, _, leaf = name.rpartition(".")
        clash = _attribute_in_source(parent, leaf)
        lines += [f".. py:module:: {name}"] + (["   :no-index:"] if clash else []) + [""]
        # The docstring's relative references (:mod:`.run`) are relative to its package.
        lines += [f".. py:currentmodule:: {parent}", ""]
        lines += [f"``{name}``"] + [f"   {line}" for line in summary.splitlines()] + [""]
    return "\n".join(lines + ["```", ""])


def _attribute_in_source(module_name, name):
    """Whether ``module_name``'s source imports a ``name`` from one of its modules (a
    function that shadows the module of the same name: ``from .compare import compare``)."""
    tree = ast.parse(_source_of(module_name).read_text(encoding="utf-8"))
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module is not None and any(
                (alias.asname or alias.name) == name for alias in node.names):
            return True
    return False


def constant_comment(module_name, name):
    """The ``#`` comment lines just above ``name = ...`` in the module or its package's
    modules (where the constant is defined), as text lines; [] when there is none."""
    for candidate in [module_name] + [m for m in modules() if m.startswith(module_name + ".")]:
        source = _source_of(candidate).read_text(encoding="utf-8").splitlines()
        for i, line in enumerate(source):
            if re.match(rf"{re.escape(name)}\s*(:[^=]*)?=", line):
                comment = []
                while i > 0 and source[i - 1].lstrip().startswith("#"):
                    i -= 1
                    comment.insert(0, source[i].lstrip()[1:].strip())
                return [_escape_rst(" ".join(comment))] if comment else []
    return []


def _escape_rst(text):
    """Plain text for a reST paragraph: no markup characters taken as markup."""
    return re.sub(r"([*`_|\\])", r"\\\1", text)


def short_repr(value, limit=300):
    """The value as Python, or its type and keys/length when that is longer than ``limit``."""
    text = repr(value)
    if len(text) <= limit:
        return text
    if isinstance(value, dict):
        keys = ", ".join(repr(key) for key in value)
        return f"{{...}}  # a dict with {len(value)} keys: {keys}"[:limit * 2]
    return f"...  # a {type(value).__name__} of length {len(value)}" if hasattr(value, "__len__") \
        else f"...  # a {type(value).__name__}"


class _ParserFound(Exception):
    def __init__(self, parser):
        self.parser = parser


def console_parsers():
    """``[(script name, argparse parser)]`` for each console script in pyproject.toml.

    Each script's ``main`` is called with no arguments and stopped at its
    ``parse_args``, so the parser documented is the one the command uses.
    """
    scripts = _pyproject()["project"].get("scripts", {})
    found = []
    original = argparse.ArgumentParser.parse_args

    def capture(parser, *args, **kwargs):
        raise _ParserFound(parser)

    for script, target in scripts.items():
        module_name, _, function = target.partition(":")
        main = getattr(load(module_name), function)
        argparse.ArgumentParser.parse_args = capture
        try:
            with contextlib.redirect_stdout(io.StringIO()):
                try:
                    main([])
                except TypeError:  # a main() that reads sys.argv itself
                    with _argv([script]):
                        main()
        except _ParserFound as stop:
            found.append((script, stop.parser))
        else:
            raise SiteError(f"{script} = {target}: its main([]) never called parse_args, so "
                            f"its options cannot be documented")
        finally:
            argparse.ArgumentParser.parse_args = original
    return found


@contextlib.contextmanager
def _argv(argv):
    saved, sys.argv = sys.argv, argv
    try:
        yield
    finally:
        sys.argv = saved


def _subparsers(parser):
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return list(action.choices.items())
    return []


def cli_page():
    """The command line: every script and sub-command, with its own ``--help``."""
    lines = ["# Command line", "",
             "Every command and its options, as `--help` prints them (generated from the "
             "parsers the commands use).", ""]

    def describe(prog, parser, depth):
        lines.extend([f"{'#' * depth} `{prog}`", ""])
        if parser.description:
            lines.extend([parser.description, ""])
        lines.extend(["```text", parser.format_help().rstrip(), "```", ""])
        for name, sub in _subparsers(parser):
            describe(f"{prog} {name}", sub, min(depth + 1, 4))

    for script, parser in console_parsers():
        parser.prog = script
        describe(script, parser, 2)
    return "\n".join(lines)


def _pyproject():
    try:
        import tomllib
    except ModuleNotFoundError:  # Python 3.10: Sphinx brings tomli
        import tomli as tomllib
    return tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))


# --- MathJax --------------------------------------------------------------------------------

def stage_mathjax():
    """Copy MathJax from the npm package (installed with ``npm ci`` when missing or stale)."""
    package = DOCS / "node_modules" / "mathjax"
    wanted = json.loads((DOCS / "package-lock.json").read_text())["packages"][
        "node_modules/mathjax"]["version"]
    installed = package / "package.json"
    if not installed.exists() or json.loads(installed.read_text())["version"] != wanted:
        npm = shutil.which("npm")
        if npm is None:
            raise SiteError("npm not found: the site bundles MathJax from the npm package "
                            "(install Node.js and npm)")
        result = subprocess.run([npm, "ci", "--no-audit", "--no-fund", "--loglevel=error"],
                                cwd=DOCS, capture_output=True, text=True)
        if result.returncode != 0:
            said = (result.stderr or result.stdout).strip().splitlines()
            raise SiteError(f"npm ci (MathJax, docs/package-lock.json) failed: "
                            f"{said[-1] if said else 'exit ' + str(result.returncode)}")
    shutil.rmtree(STATIC, ignore_errors=True)
    for name in MATHJAX_FILES:
        source, target = package / "es5" / name, STATIC / "mathjax" / name
        target.parent.mkdir(parents=True, exist_ok=True)
        if source.is_dir():
            shutil.copytree(source, target)
        else:
            shutil.copy2(source, target)


# --- build ----------------------------------------------------------------------------------

def sphinx(source, html, quiet=True, capture=False):
    """Run Sphinx on staged ``source`` with this folder's conf.py, every warning an error
    (``-W --keep-going -n``: nitpicky, so a reference to nothing fails too). With
    ``capture``, Sphinx's output goes into the SiteError's message instead of the terminal."""
    shutil.rmtree(html, ignore_errors=True)
    doctrees = Path(html).parent / "doctrees"   # Sphinx's cache: never in the published folder
    command = [sys.executable, "-m", "sphinx", "-b", "html", "-W", "--keep-going", "-n", "-E",
               "-d", str(doctrees), "-c", str(DOCS), str(source), str(html)] + \
        (["-q"] if quiet else [])
    result = subprocess.run(command, cwd=REPO, capture_output=capture, text=True)
    if result.returncode != 0:
        said = f":\n{result.stdout}{result.stderr}" if capture else ": the warnings above"
        raise SiteError(f"sphinx-build failed (exit {result.returncode}); every warning is "
                        f"an error{said}")


def build(quiet=True):
    """Stage and build the site; return the seconds it took. Raise SiteError on any warning."""
    start = time.perf_counter()
    require("sphinx", "myst_nb", "sphinx_book_theme", "sphinx_copybutton")
    stage_mathjax()
    stage()
    sphinx(SRC, HTML, quiet)
    publish(HTML)
    return time.perf_counter() - start


def require(*modules):
    """A SiteError naming the first of ``modules`` that is not installed."""
    for name in modules:
        if importlib.util.find_spec(name) is None:
            raise SiteError(f"{name} is not installed: pip install -e \".[docs]\"")


def publish(html):
    """Leave in the site only what a reader's browser uses: the themes' source maps
    (``*.map``, and the comments that point to them) go; Sphinx's build info too."""
    for path in list(html.rglob("*.map")):
        path.unlink()
    for path in html.rglob("*"):
        if path.suffix in (".js", ".css") and path.is_file():
            text = path.read_text(encoding="utf-8", errors="surrogateescape")
            cleaned = re.sub(r"\n?(//# sourceMappingURL=\S+|/\*# sourceMappingURL=[^*]*\*/)\s*$",
                             "\n", text)
            if cleaned != text:
                path.write_text(cleaned, encoding="utf-8", errors="surrogateescape")
    (html / ".buildinfo").unlink(missing_ok=True)
    with contextlib.suppress(OSError):   # html_copy_source=False leaves it empty
        (html / "_sources").rmdir()


def site_size():
    """``(files, bytes)`` of the built site."""
    files = [path for path in HTML.rglob("*") if path.is_file()]
    return len(files), sum(path.stat().st_size for path in files)


def serve(port):
    """Serve the site on 127.0.0.1 until interrupted."""
    import functools
    import http.server

    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(HTML))
    with http.server.ThreadingHTTPServer(("127.0.0.1", port), handler) as server:
        print(f"serving the site on http://127.0.0.1:{port}/ (Ctrl-C stops)")
        with contextlib.suppress(KeyboardInterrupt):
            server.serve_forever()


def main(argv=None):
    """Build the site; then check it in Chromium, or serve it, when asked."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true",
                        help="then open every page in Chromium and check it (docs/check_site.py)")
    parser.add_argument("--serve", action="store_true", help="then serve it on 127.0.0.1")
    parser.add_argument("--port", type=int, default=8000, help="for --serve (default: 8000)")
    parser.add_argument("--verbose", action="store_true", help="show Sphinx's progress")
    args = parser.parse_args(argv)
    try:
        seconds = build(quiet=not args.verbose)
    except SiteError as error:
        print(f"make_site: {error}", file=sys.stderr)
        return 1
    except ModuleNotFoundError as error:   # refconv's own dependencies, say numpy
        print(f"make_site: {error.name} is not installed: pip install -e \".[docs]\"",
              file=sys.stderr)
        return 1
    files, size = site_size()
    print(f"make_site: built {HTML.relative_to(REPO)} in {seconds:.1f} s: "
          f"{files} files, {size / 1e6:.1f} MB")
    if args.check:
        import check_site
        status = check_site.main([])
        if status:
            return status
    if args.serve:
        serve(args.port)
    return 0


if __name__ == "__main__":
    sys.exit(main())
