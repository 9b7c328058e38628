"""Two builds from one source, and the teacher's secret the hidden cases are drawn from.

``build(out, source, secret)`` writes ``out/student/`` (:func:`.student.student_notebook`
of each notebook: what ``nbgrader generate_assignment`` makes) and ``out/instructor/``:
the instructor notebooks (solutions, answer keys, outputs) when ``source`` holds
them (a checkout's ``notebooks/``, or a teacher's edited copy), and always
``instructor/secret.txt`` (mode 600), the secret every hidden case of this build is
drawn from. The wheel ships the student versions only, so from a wheel the
instructor folder holds the secret alone.
"""

import os
import pathlib
import secrets
import shutil
import sys

from .shipped import instructor_dir, notebook_dir, notebook_paths
from .student import student_notebook

__all__ = ["build", "student_version", "instructor_version", "require_nbgrader", "read_secret",
           "SECRET_FILE", "PUBLIC_SECRET"]

SECRET_FILE = "secret.txt"
# Used only when no secret is given: anyone can know the cases it draws (a warning says so).
PUBLIC_SECRET = "refconv public cases"


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
    """The notebook as an instructor gets it (nbgrader's metadata checks run on it)."""
    nbformat, p = require_nbgrader()
    nb = nbformat.from_dict(nb)
    return _run(nb, [p.CheckCellMetadata()])


def student_version(nb):
    """The notebook as ``nbgrader generate_assignment`` makes it, by nbgrader's own preprocessors.

    (:func:`refconv.course.student.student_notebook` gives the same cells without
    nbgrader; this one is kept to check it against.)
    """
    nbformat, p = require_nbgrader()
    nb = nbformat.from_dict(nb)
    return _run(nb, [p.LockCells(), p.ClearSolutions(), p.ClearOutput(), p.CheckCellMetadata(),
                     p.ComputeChecksums(), p.ClearHiddenTests(), p.ClearMarkScheme(),
                     p.ComputeChecksums(), p.CheckCellMetadata()])


def read_secret(secret=None, secret_file=None, source=None, warn=True):
    """The teacher's secret: given, from a file, from ``source/secret.txt``, or the public one."""
    if secret is not None:
        return str(secret)
    if secret_file is not None:
        path = pathlib.Path(secret_file)
        if not path.is_file():
            raise FileNotFoundError(f"secret_file: no file {path}")
        return path.read_text().strip()
    if source is not None and (pathlib.Path(source) / SECRET_FILE).is_file():
        return (pathlib.Path(source) / SECRET_FILE).read_text().strip()
    if warn:
        print("refconv course: no secret (--secret-file, or --source a build's instructor "
              "folder): the hidden cases are the public ones, which a student can know",
              file=sys.stderr)
    return PUBLIC_SECRET


def _has_solutions(path):
    return "BEGIN SOLUTION" in pathlib.Path(path).read_text()


def build(out, source=None, secret=None):
    """Write ``out/student/`` and ``out/instructor/`` (with ``secret.txt``).

    Args:
        out: the folder to write into (made when missing).
        source: the folder of the instructor notebooks (default: a checkout's
            ``notebooks/``; from a wheel, the shipped student versions).
        secret: the text the hidden cases are drawn from (default: a random one).

    Returns:
        ``{"instructor": [paths], "student": [paths], "secret": path}``.
    """
    import nbformat
    if source is None:
        source = instructor_dir() or notebook_dir()
    source = pathlib.Path(source)
    paths = notebook_paths(source)
    if not paths:
        raise FileNotFoundError(f"source: no numbered notebooks (NN_name.ipynb) in {source}")
    out = pathlib.Path(out)
    written = {"instructor": [], "student": []}
    for kind in ("instructor", "student"):
        (out / kind).mkdir(parents=True, exist_ok=True)
        if (source / "data").is_dir():
            shutil.copytree(source / "data", out / kind / "data", dirs_exist_ok=True,
                            ignore=shutil.ignore_patterns("__pycache__"))
    full = any(_has_solutions(path) for path in paths)     # else: the wheel's student copies
    for path in paths:
        nb = nbformat.read(str(path), as_version=4)
        if full:
            nbformat.write(instructor_version(nb), str(out / "instructor" / path.name))
            written["instructor"].append(out / "instructor" / path.name)
        nbformat.write(student_notebook(nb), str(out / "student" / path.name))
        written["student"].append(out / "student" / path.name)
    secret_path = out / "instructor" / SECRET_FILE
    secret_path.touch(mode=0o600, exist_ok=True)
    os.chmod(secret_path, 0o600)
    secret_path.write_text((secret if secret is not None else secrets.token_urlsafe(24)) + "\n")
    written["secret"] = secret_path
    return written
