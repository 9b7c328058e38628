"""Sphinx configuration of refconv's site (Jupyter Book 1's stack: myst-nb, sphinx-book-theme).

Not used on its own: ``python docs/make_site.py`` stages the sources (these pages,
the notebooks, the generated API reference) into ``build/site/src`` and runs
``sphinx-build -W --keep-going -n -c docs`` on them.
"""

import importlib
import inspect
import re
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import make_site  # noqa: E402  (its paths and the project's metadata: one place for each)

import refconv  # noqa: E402  (make_site put the repository first on sys.path)

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
]

# --- warnings are errors (make_site passes -W --keep-going -n) -------------------------
nitpicky = True
# Other libraries' names (numpy.ndarray in a NamedTuple's annotations, typing's names)
# have no page here, and fetching their inventories would need the network. Every
# refconv name must resolve.
nitpick_ignore_regex = [(r"py:.*", r"(?!refconv\b).*")]

# --- sources ------------------------------------------------------------------------------
root_doc = "index"
exclude_patterns = ["_notebook_files", "_generated"]  # downloads, and pages' included parts
myst_enable_extensions = ["dollarmath", "amsmath", "colon_fence", "deflist"]
myst_heading_anchors = 3
nb_execution_mode = "off"   # the committed outputs are the pages: site and notebooks agree
nb_merge_streams = True

# --- the API reference --------------------------------------------------------------------
autodoc_member_order = "bysource"
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
        source = inspect.getsource(getattr(importlib.import_module(module_name), class_name))
    except (ImportError, AttributeError, OSError, TypeError):
        return
    match = re.search(rf"^\s+{re.escape(field)}\s*:[^#\n]*#\s*(.+)$", source, re.MULTILINE)
    if match:
        lines[:] = [match.group(1).strip()]


def setup(app):
    app.connect("autodoc-process-docstring", _field_comment)

# --- maths without the network ------------------------------------------------------------
# Sphinx's default MathJax comes from a CDN; the site serves MathJax 3 itself (the npm
# package pinned in docs/package-lock.json), with SVG output, so no web font is fetched.
mathjax_path = "mathjax/tex-svg.js"

# --- HTML -----------------------------------------------------------------------------------
html_theme = "sphinx_book_theme"
html_title = "refconv"
html_baseurl = _project["urls"]["Documentation"]
html_static_path = [str(make_site.STATIC)]
html_show_sourcelink = False
html_copy_source = False
html_theme_options = {
    "home_page_in_toc": True,
    "show_toc_level": 2,
    "use_download_button": False,  # each notebook page has its own download link
    "use_fullscreen_button": False,
    "navigation_with_keys": False,
}
html_context = {"default_mode": "light"}
