"""Build the notebooks from their sources, run them top to bottom, and write them with outputs.

Usage (from the repository root, with the ``notebooks`` extra installed:
``pip install -e ".[notebooks]"``)::

    python notebooks/run.py            # every numbered notebook, in order, rewritten in place
    python notebooks/run.py 02 04      # only those whose names start with 02 or 04
    python notebooks/run.py --check    # run them all, write nothing (what tests/test_notebooks.py does)
    python notebooks/run.py --students # only write notebooks/student/ from the sources (no kernel)

Every run also writes ``notebooks/student/NN_name.ipynb``: the student version
(:func:`refconv.course.student.student_notebook` of the source: no solution, answer
key, hidden test or output), what the wheel ships and ``refconv notebooks`` hands
out; ``tests/test_course.py`` fails when one is stale.

It prints each notebook's run time and size, and exits non-zero when a cell
fails (the notebook is then left as it was).

Sources. Each notebook ``NN_name.ipynb`` is written from ``src/NN_name.py``,
a plain Python file in the "percent" format, read with jupytext (which VS Code
and Spyder also understand): ``# %%`` starts a code cell, ``# %% [markdown]`` a
Markdown cell whose lines are comments (``# text``); a cell's nbgrader metadata
(exercises, graded cells) sits on its marker line. Each notebook's first cell
says it is generated and from which source. Edit the source, not the
notebook, then run this script: the code reviews as code, and
``tests/test_notebooks.py`` fails when a notebook no longer matches its
source. (A notebook without a source is run as it is.)

How a notebook is run, so that the same checkout always gives the same file:

* in a fresh kernel of *the Python running this script* (``sys.executable``),
  whatever "python3" kernel Jupyter may have registered elsewhere, with the
  repository first on ``PYTHONPATH`` (so ``import refconv`` is this checkout's)
  and ``notebooks/`` as the working directory;
* every notebook seeds its own random numbers; figures are palette PNGs made by
  ``refconv.viz.to_png``, which gives the same bytes for the same figure;
* no timing is recorded in the cells' metadata, the Python version is dropped
  from the notebook's metadata, and the kernelspec is always the plain
  "python3": re-running an unchanged notebook gives an unchanged file.
"""

import argparse
import hashlib
import os
import pathlib
import sys

import nbformat
from nbclient.exceptions import CellExecutionError

NOTEBOOKS = pathlib.Path(__file__).resolve().parent
REPO = NOTEBOOKS.parent
sys.path.insert(0, str(REPO))          # this checkout's refconv, whatever is installed
from refconv.course.execute import execute as run_notebook  # noqa: E402
CELL_TIMEOUT = 300       # seconds any one cell may take before the run fails: a hang guard, not a speed bar
KERNELSPEC = {"name": "python3", "display_name": "Python 3 (ipykernel)", "language": "python"}


# Notebooks that import frameworks beyond the ``notebooks`` extra, and the extra of each.
NEEDS = {"06_oracle": ["torch", "keras"]}
NEEDS["08_deployment"] = ["torch", "onnx", "onnxruntime"]
EXTRA = {"torch": "crosscheck", "keras": "crosscheck", "onnx": "deploy", "onnxruntime": "deploy"}


def missing_frameworks(path):
    """The frameworks the notebook at ``path`` imports that are not installed."""
    import importlib.util
    return [name for name in NEEDS.get(pathlib.Path(path).stem, [])
            if importlib.util.find_spec(name) is None]


def install_hint(missing):
    """The pip command that installs the ``missing`` frameworks: their extras, in one install."""
    extras = sorted({EXTRA[name] for name in missing})
    hint = f"pip install -e \".[{','.join(extras)}]\""
    if "crosscheck" in extras:  # tf-keras without its dependencies (see README)
        hint += " && pip install --no-deps \"tf-keras==2.21.*\""
    return hint


def notebook_paths(selection=()):
    """The numbered notebooks (``NN_name.ipynb``, or a source ``src/NN_name.py`` for a
    notebook not yet written), in order; ``selection`` filters by name prefix."""
    stems = {p.stem for p in NOTEBOOKS.glob("[0-9][0-9]_*.ipynb")}
    stems |= {p.stem for p in (NOTEBOOKS / "src").glob("[0-9][0-9]_*.py")}
    paths = [NOTEBOOKS / f"{stem}.ipynb" for stem in sorted(stems)]
    if selection:
        chosen = [p for p in paths if any(p.name.startswith(s) for s in selection)]
        unknown = [s for s in selection if not any(p.name.startswith(s) for p in paths)]
        if unknown:
            raise SystemExit(f"run.py: no notebook starts with {unknown}; "
                             f"there are {[p.name for p in paths]}")
        paths = chosen
    return paths


def source_path(path):
    """The percent-format source of the notebook at ``path``."""
    path = pathlib.Path(path)
    return path.parent / "src" / (path.stem + ".py")


def read_source(path):
    """The cells of a percent-format file, read by jupytext: a list of ``(cell_type, source, nbgrader)``.

    ``nbgrader`` is the cell's nbgrader metadata (``{}`` for a plain cell),
    written in the source on the cell's marker line
    (``# %% nbgrader={"grade": true, ...}``). The comment lines before the first
    ``# %%`` (the source's header) are not a cell. In a Markdown cell every
    line is ``# text``, a bare ``#`` or empty.
    """
    import jupytext

    text = pathlib.Path(path).read_text()
    kind = None
    for number, line in enumerate(text.splitlines(), start=1):
        if line.startswith("# %%"):
            kind = "markdown" if "[markdown]" in line else "code"
        elif kind == "markdown" and line not in ("#", "") and not line.startswith("# "):
            raise ValueError(f"{path}:{number}: a Markdown cell's lines must start "
                             f"with '# ', got {line!r}")
    nb = jupytext.reads(text, fmt="py:percent")
    cells = [(cell.cell_type, cell.source, dict(cell.metadata.get("nbgrader", {})))
             for cell in nb.cells]
    if not text.startswith("# %%") and cells and cells[0][0] == "code":
        cells = cells[1:]                      # the header comment
    return cells


def generated_note(path):
    """The first cell of every notebook: where it comes from."""
    source = source_path(path)
    return (f"*This notebook is generated from [`src/{source.name}`](src/{source.name}) by "
            f"`python notebooks/run.py {path.name[:2]}`: edit the source, not the notebook.*")


def build(path):
    """A new, unexecuted notebook from the source of ``path``.

    Each cell's id is a hash of its content, so editing one cell changes
    only that cell's id; a cell's nbgrader metadata (solution, graded cell,
    points) comes from the source.
    """
    nb = nbformat.v4.new_notebook()
    seen = {}
    cells = [("markdown", generated_note(path), {})] + read_source(source_path(path))
    for kind, source, nbgrader in cells:
        digest = hashlib.sha1(f"{kind}\n{source}".encode()).hexdigest()[:10]
        seen[digest] = seen.get(digest, 0) + 1
        cell_id = digest if seen[digest] == 1 else f"{digest}-{seen[digest]}"
        new = nbformat.v4.new_markdown_cell if kind == "markdown" else nbformat.v4.new_code_cell
        cell = new(source, id=cell_id)
        if nbgrader:
            cell.metadata["nbgrader"] = nbgrader
        nb.cells.append(cell)
    nb.metadata["kernelspec"] = dict(KERNELSPEC)
    nb.metadata["language_info"] = {"name": "python"}
    return nb


def load(path):
    """The notebook at ``path``, built afresh from its source when it has one."""
    return build(path) if source_path(path).exists() else nbformat.read(path, as_version=4)


def cells_of(nb):
    """``(cell_type, source, nbgrader metadata)`` of each cell: what must match the source."""
    return [(cell.cell_type, cell.source, dict(cell.metadata.get("nbgrader", {})))
            for cell in nb.cells]


def kernel_env():
    """The environment of the kernel: ours, with the repository first on PYTHONPATH."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO), env.get("PYTHONPATH")) if p)
    env.setdefault("PYDEVD_DISABLE_FILE_VALIDATION", "1")   # no debugger warning on stderr
    # refconv's fast path runs its own thread per core; OpenBLAS's threads on top of them
    # spin against each other (a training step of notebook 5 took 4x as long on a busy
    # machine). One BLAS thread each: the cores are used once, by refconv's pool.
    env.setdefault("OPENBLAS_NUM_THREADS", "1")
    return env


def execute(path, timeout=CELL_TIMEOUT):
    """Run the notebook at ``path`` (from its source) in a fresh kernel: ``(notebook, seconds)``.

    The kernel is this Python's (``refconv.course.execute``), with the
    repository first on ``PYTHONPATH``. Raises
    ``nbclient.exceptions.CellExecutionError`` (with the failing cell's
    traceback) when a cell raises, and ``CellTimeoutError`` when one runs
    longer than ``timeout`` seconds.
    """
    nb = load(path)
    seconds = run_notebook(nb, NOTEBOOKS, timeout=timeout, env=kernel_env())
    return normalise(nb), seconds


def normalise(nb):
    """Drop what changes from run to run or machine to machine, and nothing else."""
    nb.metadata["kernelspec"] = dict(KERNELSPEC)
    nb.metadata.get("language_info", {}).pop("version", None)
    nb.metadata.pop("widgets", None)
    for cell in nb.cells:
        cell.metadata.pop("execution", None)
        cell.metadata.pop("ExecuteTime", None)
        if cell.cell_type == "code":
            cell.outputs = merge_streams(cell.outputs)
    return nb


def merge_streams(outputs):
    """Join consecutive prints to the same stream into one output.

    How a cell's printing is cut into messages depends on timing; merged, the
    same prints always give the same output.
    """
    merged = []
    for output in outputs:
        if (output.output_type == "stream" and merged and merged[-1].output_type == "stream"
                and merged[-1].name == output.name):
            merged[-1].text += output.text
        else:
            merged.append(output)
    return merged


def write(nb, path):
    nbformat.validate(nb)
    nbformat.write(nb, str(path))


STUDENT = NOTEBOOKS / "student"


def write_student(path):
    """Write ``notebooks/student/<name>``: the student version of the notebook's source."""
    from refconv.course.student import student_notebook
    STUDENT.mkdir(exist_ok=True)
    write(student_notebook(load(path)), STUDENT / pathlib.Path(path).name)


def main(argv=None):
    parser = argparse.ArgumentParser(
        prog="python notebooks/run.py",
        description="Re-run the numbered notebooks and rewrite them with their outputs.")
    parser.add_argument("names", nargs="*", metavar="NN",
                        help="run only the notebooks whose names start with these (e.g. 02)")
    parser.add_argument("--check", action="store_true",
                        help="run, but write nothing back")
    parser.add_argument("--students", action="store_true",
                        help="only write the student versions (notebooks/student/), no run")
    parser.add_argument("--timeout", type=int, default=CELL_TIMEOUT, metavar="S",
                        help="seconds one cell may take (default: %(default)s)")
    args = parser.parse_args(argv)

    failed = []
    for path in notebook_paths(args.names):
        if not args.check:
            write_student(path)
        if args.students:
            print(f"student/{path.name}: written", flush=True)
            continue
        missing = missing_frameworks(path)
        if missing:   # say what to install, rather than fail in the kernel with a bare import error
            print(f"{path.name}: skipped, needs {', '.join(missing)}: {install_hint(missing)}",
                  file=sys.stderr)
            continue
        try:
            nb, seconds = execute(path, timeout=args.timeout)
        except CellExecutionError as error:
            print(f"{path.name}: FAILED\n{error}", file=sys.stderr)
            failed.append(path.name)
            continue
        if not args.check:
            write(nb, path)
        size = path.stat().st_size / 1024
        note = "checked" if args.check else "rewritten"
        print(f"{path.name}: {seconds:5.1f} s, {size:6.0f} KB ({note})", flush=True)
    if failed:
        print(f"run.py: {len(failed)} notebook(s) failed: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
