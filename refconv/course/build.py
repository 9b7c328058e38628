"""Two builds from one source: the instructor's notebooks and the students', by nbgrader's preprocessors."""

import pathlib
import shutil

from .shipped import notebook_dir, notebook_paths

__all__ = ["build", "student_version", "instructor_version", "require_nbgrader"]


def require_nbgrader():
    """nbgrader's preprocessors and nbformat, or an error that says how to get them."""
    try:
        import nbformat
        from nbgrader import preprocessors
    except ImportError as error:
        raise ImportError(f"refconv course needs nbgrader ({error}): pip install "
                          f"\"refconv[course]\"") from None
    return nbformat, preprocessors


def _run(nb, steps):
    resources = {}
    for step in steps:
        nb, resources = step.preprocess(nb, resources)
    return nb


def instructor_version(nb):
    """The notebook as an instructor gets it: solutions, answer keys, hidden tests, outputs.

    nbgrader's checks run on it (every solution and graded cell well marked, ids unique).
    """
    nbformat, p = require_nbgrader()
    nb = nbformat.from_dict(nb)
    return _run(nb, [p.CheckCellMetadata()])


def student_version(nb):
    """The notebook as a student gets it, the way ``nbgrader generate_assignment`` makes it.

    Solution regions become ``raise NotImplementedError()`` stubs, written
    answers "YOUR ANSWER HERE", hidden tests go, every output is cleared (no
    figure or printout computed from a solution stays), graded and read-only
    cells are locked, and each graded cell's checksum is recorded.
    """
    nbformat, p = require_nbgrader()
    nb = nbformat.from_dict(nb)
    return _run(nb, [p.LockCells(), p.ClearSolutions(), p.ClearOutput(), p.CheckCellMetadata(),
                     p.ComputeChecksums(), p.ClearHiddenTests(), p.ClearMarkScheme(),
                     p.ComputeChecksums(), p.CheckCellMetadata()])


def build(out, source=None):
    """Write ``out/instructor/`` and ``out/student/``, one file per numbered notebook.

    Args:
        out: the folder to write into (made when missing).
        source: the folder of the notebooks (default: the ones refconv ships).

    Returns:
        ``{"instructor": [paths], "student": [paths]}``.
    """
    nbformat, _ = require_nbgrader()
    source = pathlib.Path(source) if source else notebook_dir()
    paths = notebook_paths(source)
    if not paths:
        raise FileNotFoundError(f"source: no numbered notebooks (NN_name.ipynb) in {source}")
    written = {"instructor": [], "student": []}
    for kind, make in (("instructor", instructor_version), ("student", student_version)):
        folder = pathlib.Path(out) / kind
        folder.mkdir(parents=True, exist_ok=True)
        for path in paths:
            nb = make(nbformat.read(str(path), as_version=4))
            nbformat.write(nb, str(folder / path.name))
            written[kind].append(folder / path.name)
        if (source / "data").is_dir():
            shutil.copytree(source / "data", folder / "data", dirs_exist_ok=True,
                            ignore=shutil.ignore_patterns("__pycache__"))
    return written
