"""Grade a submission the way ``nbgrader autograde`` does, without nbgrader's database.

1. Find the instructor's version of the notebook among the shipped ones (by its
   graded cells' ids) and put back every locked and graded cell as the
   instructor wrote it, hidden tests included: what a student changed there
   does not count.
2. Run the notebook top to bottom in a fresh kernel, going on past errors (a
   cell that runs past the time limit is interrupted, and the run goes on).
3. Score each graded code cell with nbgrader's own rule
   (``nbgrader.utils.determine_grade``): an error gives 0, a number as the
   cell's value is partial credit (the checkers' ``report.points(n)``), anything
   else full marks. Written answers (graded Markdown cells) are left to a
   person and not in the score.
"""

import pathlib
import shutil
import tempfile
from dataclasses import dataclass, field

from .build import instructor_version, require_nbgrader
from .execute import execute
from .shipped import notebook_dir, notebook_paths

__all__ = ["Grade", "grade", "grade_notebook", "format_grades"]

FEEDBACK_LINES = 12          # of a graded cell's printout, per exercise


@dataclass
class Grade:
    """One graded cell: ``points`` of ``max_points`` (None: graded by hand)."""
    grade_id: str
    points: object
    max_points: float
    feedback: list = field(default_factory=list)

    @property
    def by_hand(self):
        """Whether a person grades this cell (a written answer: ``points`` is None)."""
        return self.points is None


def _nbgrader(cell):
    return cell.metadata.get("nbgrader", {})


def _graded_ids(nb):
    return [_nbgrader(c)["grade_id"] for c in nb.cells if _nbgrader(c).get("grade")]


def _instructor_for(nb, path, source):
    """The instructor notebook with the submission's graded cells (or its file name)."""
    nbformat, _ = require_nbgrader()
    ids = set(_graded_ids(nb))
    candidates = notebook_paths(source)
    for candidate in candidates:
        reference = nbformat.read(str(candidate), as_version=4)
        if ids and ids <= set(_graded_ids(reference)):
            return candidate, reference
    for candidate in candidates:
        if candidate.name == pathlib.Path(path).name:
            return candidate, nbformat.read(str(candidate), as_version=4)
    raise ValueError(f"{path}: not one of refconv's course notebooks (no notebook in "
                     f"{source} has its graded cells {sorted(ids)} or its name)")


def _restore_locked_cells(nb, reference):
    """Put back the instructor's locked and graded cells (what nbgrader's OverwriteCells does)."""
    originals = {_nbgrader(c)["grade_id"]: c for c in reference.cells
                 if _nbgrader(c).get("grade_id")}
    for cell in nb.cells:
        meta = _nbgrader(cell)
        original = originals.get(meta.get("grade_id"))
        if original is None or meta.get("solution"):
            continue
        if meta.get("grade") or meta.get("locked"):
            cell.source = original.source
            cell.cell_type = original.cell_type
            cell.metadata["nbgrader"] = dict(_nbgrader(original))
    return nb


def _feedback(cell):
    lines = []
    for output in cell.get("outputs", []):
        if output.output_type == "stream":
            lines.extend(output.text.rstrip("\n").splitlines())
        elif output.output_type == "error":
            lines.append(f"{output.ename}: {output.evalue}")
    if len(lines) > FEEDBACK_LINES:
        lines = lines[:FEEDBACK_LINES] + [f"... ({len(lines) - FEEDBACK_LINES} more lines)"]
    return lines


def grade(path, source=None, timeout=120):
    """Grade the notebook at ``path``: a list of :class:`Grade`, one per graded cell, in order.

    (:func:`grade_notebook` also returns the executed notebook.)

    Args:
        path: the submission (``.ipynb``).
        source: the folder of the instructor notebooks (default: the shipped ones).
        timeout: seconds one cell may run before it is interrupted.

    Raises:
        ValueError: the file is not a notebook, or not one of the course's.
    """
    return grade_notebook(path, source, timeout)[0]


def grade_notebook(path, source=None, timeout=120):
    """``(grades, executed notebook)``: :func:`grade`, and what the run left in each cell."""
    nbformat, _ = require_nbgrader()
    from nbgrader.utils import determine_grade

    path = pathlib.Path(path)
    try:
        nb = nbformat.read(str(path), as_version=4)
    except Exception as error:   # nbformat raises several kinds for a file that is not a notebook
        raise ValueError(f"{path}: not a readable notebook ({type(error).__name__}: {error})") \
            from None
    source = pathlib.Path(source) if source else notebook_dir()
    _, reference = _instructor_for(nb, path, source)
    reference = instructor_version(reference)
    nb = _restore_locked_cells(nb, reference)
    with tempfile.TemporaryDirectory(prefix="refconv-grade-") as work:
        if (source / "data").is_dir():
            shutil.copytree(source / "data", pathlib.Path(work) / "data",
                            ignore=shutil.ignore_patterns("__pycache__"))
        execute(nb, work, timeout=timeout, allow_errors=True, interrupt_on_timeout=True)
    graded = {_nbgrader(c)["grade_id"]: c for c in nb.cells if _nbgrader(c).get("grade")}
    grades = []
    for grade_id in _graded_ids(reference):
        original = next(c for c in reference.cells if _nbgrader(c).get("grade_id") == grade_id)
        max_points = float(_nbgrader(original)["points"])
        cell = graded.get(grade_id)
        if cell is None:
            grades.append(Grade(grade_id, 0.0, max_points, ["this graded cell was deleted"]))
        elif original.cell_type != "code":
            grades.append(Grade(grade_id, None, max_points, ["a written answer: graded by hand"]))
        else:
            points, _ = determine_grade(cell)
            grades.append(Grade(grade_id, float(points or 0.0), max_points, _feedback(cell)))
    return grades, nb


def format_grades(grades):
    """The feedback, one block per exercise, and ``score: X / Y`` as the last line."""
    lines = []
    auto = [g for g in grades if not g.by_hand]
    for g in grades:
        mark = "graded by hand" if g.by_hand else f"{g.points:g} / {g.max_points:g}"
        lines.append(f"{g.grade_id}: {mark}")
        lines.extend("    " + line for line in g.feedback if not g.by_hand)
    by_hand = sum(g.max_points for g in grades if g.by_hand)
    if by_hand:
        lines.append(f"({by_hand:g} points of written answers are graded by hand, not below)")
    lines.append(f"score: {sum(g.points for g in auto):g} / {sum(g.max_points for g in auto):g}")
    return "\n".join(lines)
