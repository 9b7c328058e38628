"""Hand the notebooks out as a course and grade them, with nbgrader underneath.

Every numbered notebook marks its exercises the nbgrader way (cell metadata
``nbgrader``, ``### BEGIN SOLUTION`` / ``### END SOLUTION`` in solution cells,
``### BEGIN HIDDEN TESTS`` in graded cells), so an instructor who runs nbgrader
drops the notebooks into ``source/<assignment>/`` unchanged. For everyone else
this package is a thin front door over nbgrader's own preprocessors:

* :func:`build` writes ``OUT/instructor/`` (solutions, answer keys, hidden tests)
  and ``OUT/student/`` (solutions replaced by stubs, answers by "YOUR ANSWER
  HERE", hidden tests and every output removed, checksums recorded), as
  ``nbgrader generate_assignment`` does;
* :func:`grade` runs a submission in a fresh kernel after putting back the
  instructor's graded cells (hidden tests included), as ``nbgrader autograde``
  does, and scores each graded cell with nbgrader's own rule;
* :func:`copy_notebooks` copies the notebooks that ship inside the package.

Command line: ``refconv course build --out DIR``, ``refconv course grade
NOTEBOOK.ipynb``, ``refconv notebooks --out DIR`` (see :mod:`.commands`).
Needs the ``course`` extra (nbgrader, nbclient, ipykernel); refconv itself
never imports it.
"""

from .build import build, student_version
from .grade import Grade, grade
from .shipped import copy_notebooks, notebook_dir, notebook_paths

__all__ = ["build", "student_version", "grade", "Grade", "copy_notebooks", "notebook_dir",
           "notebook_paths"]
