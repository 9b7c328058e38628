"""The notebooks that ship inside the package: the student versions, no answer in them.

``refconv/_notebooks`` is, in a checkout, a link to ``notebooks/student/`` (made by
``python notebooks/run.py`` with :func:`refconv.course.student.student_notebook`;
``tests/test_course.py`` fails when they are stale), and in a wheel a copy of it.
The instructor notebooks (solutions, answer keys, figures) are the repository's
``notebooks/``: :func:`instructor_dir` finds them in a checkout, and a wheel does
not carry them.
"""

import pathlib
import shutil

__all__ = ["notebook_dir", "notebook_paths", "copy_notebooks", "instructor_dir"]

PACKAGE = pathlib.Path(__file__).resolve().parent.parent
SHIPPED = PACKAGE / "_notebooks"
PATTERN = "[0-9][0-9]_*.ipynb"   # 01_convolution.ipynb ...: a notebook added later joins by its number


def notebook_dir():
    """The folder of the shipped (student) notebooks; a clear error when it is missing."""
    if not SHIPPED.is_dir() or not any(SHIPPED.glob(PATTERN)):
        raise FileNotFoundError(f"refconv's notebooks are not at {SHIPPED}: reinstall refconv "
                                f"(the wheel ships them) or run from a full checkout")
    return SHIPPED


def instructor_dir():
    """A checkout's ``notebooks/`` (the instructor versions), or None (a wheel has none)."""
    folder = PACKAGE.parent / "notebooks"
    if (folder / "src").is_dir() and any(folder.glob(PATTERN)):
        return folder
    return None


def notebook_paths(folder=None):
    """The numbered notebooks of ``folder`` (default: the shipped ones), in order."""
    return sorted(pathlib.Path(folder or notebook_dir()).glob(PATTERN))


def copy_notebooks(out, folder=None):
    """Copy the notebooks of ``folder`` (default: the shipped ones) and their data into ``out``."""
    folder = pathlib.Path(folder or notebook_dir())
    out = pathlib.Path(out)
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for path in notebook_paths(folder):
        written.append(pathlib.Path(shutil.copyfile(path, out / path.name)))
    if (folder / "data").is_dir():
        (out / "data").mkdir(exist_ok=True)
        for path in sorted((folder / "data").iterdir()):
            if path.is_file():
                shutil.copyfile(path, out / "data" / path.name)
    return written
