"""Build refconv's documentation site, with every warning an error.

    python docs/make_site.py            # build into build/site/html
    python docs/make_site.py --check    # ... then open every page in Chromium (docs/check_site.py)
    python docs/make_site.py --serve    # ... then serve it on http://127.0.0.1:8000 until Ctrl-C

What goes in, all found at build time so that a new notebook or a new public
name needs no edit here:

* the pages in ``docs/`` (landing page, maths, course);
* every notebook ``notebooks/NN_*.ipynb``, rendered from its committed outputs
  (never executed here: the site and the notebooks cannot disagree), each with a
  link that downloads the notebook as committed;
* ``notebooks/COURSE.md`` when it exists; the repository files that it and the
  notebooks link to become downloads (folders and other Markdown files: links to the
  forge, ``project.urls.Source``);
* an API reference generated from ``__all__`` of ``refconv``, ``refconv.interop``
  and ``refconv.exercises``, and from the argparse parsers of every console
  script in ``pyproject.toml``; a public name (or a public method or property of
  a public class) without a docstring fails the build;
* MathJax 3 from the npm package pinned in ``docs/package-lock.json``, served by
  the site itself, so formulas render without the network.

Sphinx runs with ``-W --keep-going -n``: a broken cross-reference, a broken link
between pages, a missing image or a docstring Sphinx cannot parse fails the build
(conf.py's ``_reference`` says which references to non-public or other libraries'
names are accepted).
"""

import argparse
import contextlib
import importlib
import importlib.util
import inspect
import io
import json
import pkgutil
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
# The modules whose __all__ is the public API, in the order the reference shows them.
API_MODULES = ("refconv", "refconv.interop", "refconv.exercises")
# From the MathJax package: the TeX-to-SVG bundle (SVG: no web fonts to fetch) and the
# TeX extensions it loads on demand.
MATHJAX_FILES = ("tex-svg.js", "input/tex/extensions")

sys.path.insert(0, str(REPO))  # document the refconv beside this file, not an installed one


class SiteError(Exception):
    """The site cannot be built as it stands; the message says why."""


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
    """Copy each notebook to ``notebooks/`` with a download link; return the landing page's list."""
    pages, originals = SRC / "notebooks", SRC / "_notebook_files"
    pages.mkdir()
    originals.mkdir()
    lines = []
    for path in notebooks():
        shutil.copy2(path, originals / path.name)  # downloaded as committed, byte for byte
        notebook = json.loads(path.read_text(encoding="utf-8"))
        title = notebook_title(notebook, path)
        link = (f"{{download}}`Download this notebook </_notebook_files/{path.name}>` "
                f"(`{path.name}`, with its outputs) to run it yourself: {{doc}}`how </course>`.")
        add_below_title(notebook, link)
        for cell in notebook["cells"]:
            if cell["cell_type"] == "markdown":
                cell["source"] = stage_links("".join(cell["source"]), path.parent, pages)
        (pages / path.name).write_text(json.dumps(notebook, indent=1), encoding="utf-8")
        lines.append(f"1. {{doc}}`{title} </notebooks/{path.stem}>` "
                     f"({{download}}`download </_notebook_files/{path.name}>`)")
    return "\n".join(lines) + "\n"


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
    """The README's two commands (run the demo, run the tests), as the README gives them."""
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    blocks = re.findall(r"```bash\n(.*?)```", readme, re.DOTALL)
    tests = re.search(r"<!-- ci: tests -->\s*```bash\n(.*?)```", readme, re.DOTALL)
    if len(blocks) < 2 or tests is None:
        raise SiteError("README.md: expected the demo command as its first ```bash block and "
                        "the test command after '<!-- ci: tests -->'")
    return ("**Run the demo** (a fresh machine with Python 3.10+; about a minute):\n\n"
            f"```bash\n{blocks[0]}```\n\n"
            "**Run the tests** (what CI runs):\n\n"
            f"```bash\n{tests.group(1)}```\n")


# --- the API reference -------------------------------------------------------------------

def public_names(module_name):
    """``[(name, object)]`` for a module's ``__all__``, in its order."""
    module = importlib.import_module(module_name)
    if not hasattr(module, "__all__"):
        raise SiteError(f"{module_name} has no __all__: the API reference lists __all__")
    return [(name, getattr(module, name)) for name in module.__all__]


def undocumented():
    """Public names without a docstring: each name of the API modules' ``__all__``, and each
    public method or property of their classes (a dataclass field or attribute counts as
    documented when the class docstring names it)."""
    missing = []
    for module_name in API_MODULES:
        module = importlib.import_module(module_name)
        if not inspect.getdoc(module):
            missing.append(module_name)
        for name, obj in public_names(module_name):
            if not (inspect.isclass(obj) or callable(obj)):
                continue  # a constant: its value is what the reference shows
            if not (obj.__doc__ or "").strip():
                missing.append(f"{module_name}.{name}")
            if inspect.isclass(obj):
                missing += [f"{module_name}.{name}.{member}"
                            for member in undocumented_members(obj)]
    return missing


def undocumented_members(cls):
    """Public methods and properties of ``cls`` (defined by refconv) without a docstring."""
    class_doc = cls.__doc__ or ""
    missing = []
    for klass in cls.__mro__:
        if not klass.__module__.startswith("refconv"):
            continue
        for member, value in vars(klass).items():
            if member.startswith("_") or member in missing:
                continue
            if isinstance(value, (staticmethod, classmethod)):
                value = value.__func__
            if not (inspect.isfunction(value) or isinstance(value, property)):
                continue  # a field: documented when the class docstring names it
            named = re.search(rf"``(\w+)?\.?{member}``|^\s+{member}:", class_doc, re.MULTILINE)
            if not inspect.getdoc(getattr(cls, member, value)) and not named:
                missing.append(member)
    return missing


def stage_api(folder):
    """Write the API reference pages: one per module, one for the command line."""
    folder.mkdir()
    missing = undocumented()
    if missing:
        raise SiteError("public names without a docstring (the API reference is made of "
                        "them):\n  " + "\n  ".join(missing))
    toc, seen = [], {}
    for module_name in API_MODULES:
        page = module_name.replace(".", "_")
        toc.append(page)
        module = importlib.import_module(module_name)
        summary = inspect.getdoc(module).split("\n\n")[0]
        lines = [f"# `{module_name}`", "", summary, "",
                 "```{eval-rst}", f".. module:: {module_name}", "",
                 f".. currentmodule:: {module_name}", ""]
        for name, obj in public_names(module_name):
            if id(obj) in seen:  # one object, two public names: one description, one link
                lines += [f".. py:data:: {name}", "   :no-index:", "",
                          f"   The same object as :py:obj:`{seen[id(obj)]}`.", ""]
                continue
            seen[id(obj)] = f"{module_name}.{name}"
            if inspect.isclass(obj):
                directive = "autoexception" if issubclass(obj, BaseException) else "autoclass"
                lines += [f".. {directive}:: {name}", "   :members:", ""]
            elif callable(obj):
                lines += [f".. autofunction:: {name}", ""]
            else:  # a constant: the comment above its assignment, and its value
                lines += [f".. py:data:: {name}", ""]
                lines += [f"   {line}" for line in constant_comment(module_name, name)] + [""]
                lines += ["   .. code-block:: python", "", f"      {name} = {short_repr(obj)}", ""]
        lines += ["```", ""]
        (folder / f"{page}.md").write_text("\n".join(lines), encoding="utf-8")
    toc += ["modules", "cli"]
    (folder / "modules.md").write_text(modules_page(), encoding="utf-8")
    (folder / "cli.md").write_text(cli_page(), encoding="utf-8")
    (folder / "index.md").write_text(
        "# API reference\n\nGenerated from the docstrings of every public name (each module's "
        "`__all__`) and from the command line's own parsers.\n\n"
        "```{toctree}\n:maxdepth: 2\n\n" + "\n".join(toc) + "\n```\n", encoding="utf-8")


def modules():
    """Every module of the refconv package (private ones, ``_name``, left out), sorted."""
    package = importlib.import_module("refconv")
    names = ["refconv"] + [info.name for info in pkgutil.walk_packages(package.__path__, "refconv.")]
    return sorted(name for name in names
                  if not any(part.startswith("_") for part in name.split(".")))


def modules_page():
    """One entry per module, with its docstring: the reader's map of the source."""
    lines = ["# Modules", "",
             "refconv has a module per subject; the names above are re-exported from them. "
             "What each module is about, from its docstring:", "", "```{eval-rst}"]
    for name in modules():
        module = importlib.import_module(name)
        doc = inspect.getdoc(module)
        if not doc:
            raise SiteError(f"{name} has no module docstring (the reference's map of the "
                            f"modules is made of them)")
        if name in API_MODULES:
            lines += [f"``{name}``", f"   {doc.splitlines()[0]} See :doc:`{name.replace('.', '_')}`.", ""]
            continue
        summary = doc.split("\n\n")[0]
        # A module named like a public function (refconv.compare, refconv.layer_norm) is
        # listed, but the name's reference target stays the function.
        parent, _, leaf = name.rpartition(".")
        clash = getattr(importlib.import_module(parent), leaf, module) is not module
        lines += [f".. py:module:: {name}"] + (["   :no-index:"] if clash else []) + [""]
        lines += [f"``{name}``"] + [f"   {line}" for line in summary.splitlines()] + [""]
    return "\n".join(lines + ["```", ""])


def constant_comment(module_name, name):
    """The ``#`` comment lines just above ``name = ...`` in the module or its package's
    modules (where the constant is defined), as text lines; [] when there is none."""
    for candidate in [module_name] + [m for m in modules() if m.startswith(module_name + ".")]:
        spec = importlib.util.find_spec(candidate)
        if spec is None or not spec.origin or not spec.origin.endswith(".py"):
            continue
        source = Path(spec.origin).read_text(encoding="utf-8").splitlines()
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
        main = getattr(importlib.import_module(module_name), function)
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
        subprocess.run([npm, "ci", "--no-audit", "--no-fund", "--loglevel=error"],
                       cwd=DOCS, check=True)
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
    command = [sys.executable, "-m", "sphinx", "-b", "html", "-W", "--keep-going", "-n", "-E",
               "-c", str(DOCS), str(source), str(html)] + (["-q"] if quiet else [])
    result = subprocess.run(command, cwd=REPO, capture_output=capture, text=True)
    if result.returncode != 0:
        said = f":\n{result.stdout}{result.stderr}" if capture else ": the warnings above"
        raise SiteError(f"sphinx-build failed (exit {result.returncode}); every warning is "
                        f"an error{said}")


def build(quiet=True):
    """Stage and build the site; return the seconds it took. Raise SiteError on any warning."""
    start = time.perf_counter()
    stage_mathjax()
    stage()
    sphinx(SRC, HTML, quiet)
    return time.perf_counter() - start


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
    files, size = site_size()
    print(f"make_site: built {HTML.relative_to(REPO)} in {seconds:.1f} s: "
          f"{files} files, {size / 1e6:.1f} MB")
    if args.check:
        sys.path.insert(0, str(DOCS))
        import check_site
        status = check_site.main([])
        if status:
            return status
    if args.serve:
        serve(args.port)
    return 0


if __name__ == "__main__":
    sys.exit(main())
