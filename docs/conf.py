"""Sphinx configuration of refconv's site (Jupyter Book 1's stack: myst-nb, sphinx-book-theme).

Not used on its own: ``python docs/make_site.py`` stages the sources (these pages,
the notebooks, the generated API reference) into ``build/site/src`` and runs
``sphinx-build -W --keep-going -n -c docs`` on them.
"""

import builtins
import importlib.util
import inspect
import re
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import make_site  # noqa: E402  (its paths and the project's metadata: one place for each)

import refconv  # noqa: E402  (make_site put the repository first on sys.path)
from sphinx.util.nodes import make_refnode  # noqa: E402

_project = make_site._pyproject()["project"]

project = "refconv"
author = "refconv's authors"
copyright = f"refconv's authors; {_project['license']} licence"
release = version = refconv.__version__

extensions = [
    "myst_nb",                # Markdown pages and the notebooks, as Jupyter Book 1 does
    "sphinx.ext.autodoc",     # the API reference, from the docstrings
    "sphinx.ext.napoleon",    # the docstrings' Args:/Returns: sections
    "sphinx.ext.mathjax",     # formulas, typeset in the browser by the site's own MathJax
    "sphinx_copybutton",      # a copy button on every code block
]
# The copy button copies the commands, not the prompts of a doctest example.
copybutton_prompt_text = r">>> |\.\.\. |\$ "
copybutton_prompt_is_regexp = True

# --- warnings are errors (make_site passes -W --keep-going -n) -------------------------
nitpicky = True  # every reference must resolve; _reference below says how

# --- sources ------------------------------------------------------------------------------
root_doc = "index"
exclude_patterns = ["_notebook_files", "_generated"]  # downloads, and pages' included parts
myst_enable_extensions = ["dollarmath", "amsmath", "colon_fence", "deflist"]
myst_heading_anchors = 3
nb_execution_mode = "off"   # the committed outputs are the pages: site and notebooks agree
nb_merge_streams = True

# --- the API reference --------------------------------------------------------------------
autodoc_member_order = "bysource"
# Optional dependencies of the documented modules that are not installed (onnx, torch...
# for the conformance adapters): mocked, so that `pip install -e ".[docs]"` builds the site.
autodoc_mock_imports = make_site.mocked_packages()
autodoc_typehints = "none"  # shapes and types are written in the docstrings
napoleon_google_docstring = True
napoleon_numpy_docstring = False


def _field_comment(app, what, name, obj, options, lines):
    """A NamedTuple field's autodoc text is "Alias for field number N"; show the comment
    the class gives that field in its source instead (``LSTMCache``: one per field)."""
    if not (len(lines) == 1 and lines[0].startswith("Alias for field number")):
        return
    owner, _, field = name.rpartition(".")
    module_name, _, class_name = owner.rpartition(".")
    try:
        source = inspect.getsource(getattr(make_site.load(module_name), class_name))
    except (ImportError, AttributeError, OSError, TypeError, make_site.SiteError):
        source = ""
    match = re.search(rf"^\s+{re.escape(field)}\s*:[^#\n]*#\s*(.+)$", source, re.MULTILINE)
    # Without a comment the class docstring describes the field; "Alias for field
    # number N" would tell a reader nothing.
    lines[:] = [match.group(1).strip()] if match else []


def _reference(app, env, node, contnode):
    """Resolve what the Python domain could not; what stays unresolved fails the build.

    * A refconv object that exists but is public nowhere (``refconv.dispatch.choose``,
      or ``lstm_gates`` named from ``lstm_step``'s docstring: the one refconv module
      that defines it) links to its module on the modules page (or shows as code, for
      a private module).
    * Another library's name (``numpy.ndarray`` in a NamedTuple's annotations,
      ``dict``, ``typing``'s names) shows as code: those libraries' inventories would
      need the network.
    * Words with spaces, or numbers, are no name: napoleon took the prose before a
      colon on a ``Returns:`` section's first line for a type. Shown as written.
    * Anything else (a misspelt or removed name) is left to fail.
    """
    if node.get("refdomain") != "py":
        return None
    target = node["reftarget"].lstrip(".~")
    if re.search(r"\s", target.strip()) or re.fullmatch(r"[\d.]+", target):
        return contnode  # prose, or a number ("An array in [0, 1]:" read as types)
    context = node.get("py:module") or ""
    candidates = [target] if target.startswith("refconv.") else \
        [f"{context}.{target}"] + _defined_in_refconv(target)
    for name in candidates:
        module_name = _existing(name) if name.startswith("refconv.") else None
        if module_name is None:
            continue
        entry = env.domains["py"].modules.get(module_name)
        if entry is None:
            return contnode
        return make_refnode(app.builder, node["refdoc"], entry.docname, entry.node_id,
                            contnode, name)
    first = target.split(".")[0]
    if first != "refconv" and (hasattr(builtins, first) or first in _EXTERNAL
                               or importlib.util.find_spec(first) is not None):
        return contnode
    return None


_EXTERNAL = {"np": "numpy"}  # aliases the docstrings use


def _existing(name):
    """The module of the refconv object ``name`` (dotted), or None when there is none."""
    parts = name.split(".")
    for cut in range(len(parts), 0, -1):
        try:
            obj = make_site.load(".".join(parts[:cut]))
        except (ImportError, make_site.SiteError):
            continue
        module_name = obj.__name__
        for attribute in parts[cut:]:
            if not hasattr(obj, attribute):
                return None
            obj = getattr(obj, attribute)
        return module_name
    return None


def _defined_in_refconv(target):
    """``["refconv.module.target"]`` when exactly one refconv module defines ``target``
    (a function, class or constant of its own); else []."""
    first, _, rest = target.partition(".")
    found = []
    for module_name in make_site.modules():
        module = make_site.load(module_name)
        obj = getattr(module, first, None)
        if obj is None or inspect.ismodule(obj):
            continue
        if getattr(obj, "__module__", module_name) == module_name:
            found.append(f"{module_name}.{target}")
    return found if len(found) == 1 else []


def setup(app):
    app.connect("autodoc-process-docstring", _field_comment)
    app.connect("missing-reference", _reference)

# --- maths without the network ------------------------------------------------------------
# Sphinx's default MathJax comes from a CDN; the site serves MathJax 3 itself (the npm
# package pinned in docs/package-lock.json), with SVG output, so no web font is fetched.
mathjax_path = "mathjax/tex-svg.js"

# --- HTML -----------------------------------------------------------------------------------
html_theme = "sphinx_book_theme"
html_title = "refconv"
html_baseurl = _project["urls"]["Documentation"]
html_static_path = [str(make_site.STATIC), str(make_site.DOCS / "_static")]
html_css_files = ["site.css"]
html_favicon = str(make_site.DOCS / "_static" / "favicon.svg")
html_show_sourcelink = False
html_copy_source = False
html_scaled_image_link = True  # a sized figure links to its full-size file
html_theme_options = {
    "home_page_in_toc": True,
    "show_toc_level": 2,
    "use_download_button": False,  # each notebook page has its own download link
    "use_fullscreen_button": False,
    "navigation_with_keys": False,
    # The repository (pyproject's project.urls.Source), linked from every page's header.
    "repository_url": _project["urls"]["Source"],
    "use_repository_button": True,
    "repository_branch": "main",
}
html_context = {"default_mode": "light"}
