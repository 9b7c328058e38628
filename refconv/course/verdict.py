"""The verdict, in the grading process: each graded cell's record replayed against refconv.

This module never runs student code. For each graded code cell of the reference
notebook it reads the record its checker wrote in the kernel
(``result/records/GRADE_ID.npz``: the values the student's function returned on
the hidden cases), draws the same hidden cases again from the seed the teacher's
secret gives, and lets the checker compare the record with refconv's own
answers: the :class:`refconv.exercises.Report` and its points are computed here.
The checker is the one the reference cell calls (read from its source), not one
the record names. Whatever the kernel printed or returned as the cell's value
does not count.

Points: ``report.points(max)``, the share of hidden cases passed, rounded to 2
decimals. A graded cell without a record scores 0, and says why (the function
raised before the checker ran, the kernel died, a timeout, no checker called).
Written answers (graded Markdown cells) are graded by a person.
"""

import json
import pathlib
import re
from dataclasses import dataclass, field

from ..exercises import record

__all__ = ["Grade", "judge", "format_grades", "nbgrader_meta", "checker_of", "STATUSES"]

FEEDBACK_LINES = 12          # of the report, per exercise, in the short feedback
STATUSES = ("graded", "missing", "error", "timeout", "by hand")


@dataclass
class Grade:
    """One graded cell: ``points`` of ``max_points`` (None: graded by hand).

    ``status``: graded, missing (no notebook), error (no run, or the kernel died
    before the cell ran), timeout (a cell ran past the limit before the record),
    by hand (a written answer). ``report`` is the full report text; ``answer``
    the written answer (a question's).
    """
    grade_id: str
    points: object
    max_points: float
    feedback: list = field(default_factory=list)
    status: str = "graded"
    report: str = ""
    answer: str = ""

    @property
    def by_hand(self):
        """Whether a person grades this cell (a written answer: ``points`` is None)."""
        return self.points is None


def nbgrader_meta(cell):
    return cell.get("metadata", {}).get("nbgrader", {})


def checker_of(source):
    """The recordable checker a graded cell's source calls, or None."""
    for name in re.findall(r"\b(check_\w+)\s*\(", source):
        if name in record.CHECKERS:
            return name
    return None


def _cell_errors(cell):
    return [f"{o.get('ename')}: {o.get('evalue')}" for o in cell.get("outputs", [])
            if o.get("output_type") == "error"]


def _short(text):
    lines = text.splitlines()
    if len(lines) > FEEDBACK_LINES:
        lines = lines[:FEEDBACK_LINES] + [f"... ({len(lines) - FEEDBACK_LINES} more lines)"]
    return lines


def _code_grade(grade_id, max_points, source, executed, records, run, secret):
    checker = checker_of(source)
    if checker is None:
        return Grade(grade_id, 0.0, max_points, ["this graded cell calls no refconv checker: "
                                                 "refconv course grade scores only checkers' "
                                                 "records"], "error")
    path = records / f"{grade_id}.npz"
    if path.is_file():
        try:
            meta, calls, answer = record.load_record(path)
            if meta.get("grade_id") != grade_id or meta.get("checker") != checker:
                raise ValueError(f"the record is {meta.get('checker')}'s for "
                                 f"{meta.get('grade_id')}, not {checker}'s for {grade_id}")
            report = record.replay(checker, meta, calls, answer,
                                   record.derive_seed(secret, grade_id))
        except ValueError as error:
            return Grade(grade_id, 0.0, max_points, [f"unusable record: {error}"], "error")
        text = str(report)
        return Grade(grade_id, report.points(max_points), max_points, _short(text), "graded",
                     report=text)
    # no record: say why, from the run and the cell
    index = next((n for n, c in enumerate(executed.cells)
                  if nbgrader_meta(c).get("grade_id") == grade_id), None)
    if index is None:
        return Grade(grade_id, 0.0, max_points, ["this graded cell was deleted"], "graded")
    errors = _cell_errors(executed.cells[index])
    timed_out = [n for n in run.get("timed_out_cells", []) if n is not None and n <= index]
    if timed_out:
        return Grade(grade_id, 0.0, max_points,
                     [f"cell {timed_out[0]} ran past the time limit and was interrupted, so "
                      f"this exercise was not checked", *errors], "timeout")
    dead = run.get("dead_cell")
    if (run.get("status") == "dead" and dead is not None and dead <= index) or (
            run.get("status") in ("error", "timeout")
            and executed.cells[index].get("execution_count") is None):
        return Grade(grade_id, 0.0, max_points, [run.get("message") or "the cell did not run"],
                     "timeout" if run["status"] == "timeout" else "error")
    return Grade(grade_id, 0.0, max_points,
                 errors or [f"{checker} was not called: nothing recorded"], "graded")


def judge(task_dir, reference, secret):
    """``(grades, executed notebook)`` of a run task folder, against the ``reference`` notebook."""
    import nbformat
    task_dir = pathlib.Path(task_dir)
    result = task_dir / "result"
    run = {"status": "error", "message": "the notebook was not run"}
    if (result / "result.json").is_file():
        run = json.loads((result / "result.json").read_text())
    executed_path = result / "executed.ipynb"
    task = json.loads((task_dir / "task.json").read_text())
    if executed_path.is_file():
        executed = nbformat.read(str(executed_path), as_version=4)
    else:
        executed = nbformat.read(str(task_dir / "work" / task["notebook"]), as_version=4)
    answers = {nbgrader_meta(c).get("grade_id"): c.source for c in executed.cells}
    grades = []
    for cell in reference.cells:
        meta = nbgrader_meta(cell)
        if not meta.get("grade"):
            continue
        grade_id, max_points = meta["grade_id"], float(meta["points"])
        if cell.cell_type != "code":
            grades.append(Grade(grade_id, None, max_points, ["a written answer: graded by hand"],
                                "by hand", answer=answers.get(grade_id, "")))
            continue
        grades.append(_code_grade(grade_id, max_points, cell.source, executed,
                                  result / "records", run, secret))
    return grades, executed


def format_grades(grades):
    """The feedback, one block per exercise, and ``score: X / Y`` as the last line."""
    lines = []
    auto = [g for g in grades if not g.by_hand]
    for g in grades:
        mark = "graded by hand" if g.by_hand else f"{g.points:g} / {g.max_points:g}"
        if g.status not in ("graded", "by hand"):
            mark += f" ({g.status})"
        lines.append(f"{g.grade_id}: {mark}")
        lines.extend("    " + line for line in g.feedback if not g.by_hand)
    by_hand = sum(g.max_points for g in grades if g.by_hand)
    if by_hand:
        lines.append(f"({by_hand:g} points of written answers are graded by hand, not below)")
    lines.append(f"score: {sum(g.points for g in auto):g} / {sum(g.max_points for g in auto):g}")
    return "\n".join(lines)
