"""Hand the notebooks out as a course and grade them, so that the grade cannot be gamed.

Every numbered notebook marks its exercises the nbgrader way (cell metadata
``nbgrader``, ``### BEGIN SOLUTION`` / ``### END SOLUTION`` in solution cells), so an
instructor who runs nbgrader drops the notebooks into ``source/<assignment>/``
unchanged. refconv's own course kit, one module a stage:

* :mod:`.student`: :func:`student_notebook`, the student version with nbformat alone
  (what ``nbgrader generate_assignment`` makes, cell for cell);
* :mod:`.build`: ``refconv course build``: ``OUT/student/`` and ``OUT/instructor/``
  with the teacher's secret the hidden cases are drawn from;
* :mod:`.run`: one submission in a fresh kernel, in its task folder
  (``python -m refconv.course.run TASK_DIR``): the graded cells record the student's
  outputs on the hidden cases (:mod:`refconv.exercises.record`);
* :mod:`.verdict`: the points, computed in the grading process from the records
  against refconv's own answers (no student code runs there);
* :mod:`.gradebook`: a whole class: grades.csv, feedback, written answers;
  :mod:`.dispatch`: :func:`~refconv.course.dispatch.execute_tasks`, the one function that runs the tasks;
* :mod:`.workers`: the tasks on this machine's cores (``--workers``) or a Dask cluster
  (``--scheduler``), resumable; :mod:`.sandbox` (with :mod:`.inside` and :mod:`.cgroup`):
  each task confined (bubblewrap, else unshare, else limits) with limits on memory, CPU
  time, processes, disk and time, the limit a task hit named in its row.

Command line: ``refconv course build --out DIR``, ``refconv course grade
NOTEBOOK.ipynb | SUBMISSIONS --out GRADES``, ``refconv notebooks --out DIR``
(see :mod:`.commands`). Needs the ``course`` extra (nbclient, ipykernel, tqdm;
nbgrader for the instructor build's checks); refconv itself never imports it.
"""

from .build import build, student_version
from .grade import Grade, grade
from .shipped import copy_notebooks, notebook_dir, notebook_paths
from .student import student_notebook

__all__ = ["build", "student_version", "student_notebook", "grade", "Grade", "copy_notebooks",
           "notebook_dir", "notebook_paths"]
