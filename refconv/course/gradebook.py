"""A whole class in one command: tasks for every student's notebooks, run, judged, written down.

``grade_class(submissions, out)`` finds one folder per student in ``submissions``
(``STUDENT/**.ipynb``, or nbgrader's ``submitted/STUDENT/ASSIGNMENT/*.ipynb``),
matches each notebook to a course notebook (by name, else by its graded cells),
makes a task folder for each (:func:`refconv.course.grade.prepare_task`), runs them
all through :func:`refconv.course.dispatch.execute_tasks` and judges each here
(:func:`refconv.course.verdict.judge`). It writes::

    OUT/grades.csv                     student, notebook, exercise, score, max_score, status, note
    OUT/feedback/STUDENT/NN_name.md    each exercise's points, report and hint; the answers
    OUT/answers/NN_name.md             each question, then every student's written answer
    OUT/tasks/STUDENT/NN_name/         what each run left (the executed notebook, the records)

Status: graded; by hand (a written answer, score left empty); missing (the student
handed in no such notebook); error (not a readable notebook, the kernel died before
the cell, no run); timeout (the cell, or one before it, ran past the limit).
"""

import csv
import pathlib
import shutil
from dataclasses import dataclass, field

from .build import read_secret
from .dispatch import execute_tasks
from .grade import graded_ids, prepare_task, read_notebook
from .shipped import notebook_dir, notebook_paths
from .verdict import Grade, judge, nbgrader_meta

__all__ = ["grade_class", "find_students", "Submission", "COLUMNS"]

COLUMNS = ("student", "notebook", "exercise", "score", "max_score", "status", "note")


@dataclass
class Submission:
    """One student's one notebook: where it is (None: missing), its grades once judged."""
    student: str
    notebook: str                 # the course notebook's file name
    path: object = None
    grades: list = field(default_factory=list)
    problem: str = ""
    task: object = None


def find_students(submissions):
    """``{student: folder}``: ``submitted/*`` in nbgrader's layout, else the folders of ``submissions``."""
    root = pathlib.Path(submissions)
    if not root.is_dir():
        raise FileNotFoundError(f"submissions: no folder {root}")
    if (root / "submitted").is_dir():
        root = root / "submitted"
    return {p.name: p for p in sorted(root.iterdir()) if p.is_dir() and not p.name.startswith(".")}


def _match(folder, references):
    """``{course notebook name: path}`` of a student's folder (by name, else by graded cells)."""
    found, others = {}, []
    for path in sorted(folder.rglob("*.ipynb")):
        if ".ipynb_checkpoints" in path.parts:
            continue
        (found.setdefault(path.name, path) if path.name in references else others.append(path))
    for path in others:
        try:
            ids = set(graded_ids(read_notebook(path)))
        except ValueError:
            continue
        for name, reference in references.items():
            if name not in found and ids and ids <= set(graded_ids(reference)):
                found[name] = path
    return found


def _missing_grades(reference, status, note):
    return [Grade(nbgrader_meta(c)["grade_id"], None if c.cell_type != "code" else 0.0,
                  float(nbgrader_meta(c)["points"]), [note], status)
            for c in reference.cells if nbgrader_meta(c).get("grade")]


def grade_class(submissions, out, source=None, secret=None, secret_file=None, timeout=120,
                progress=True):
    """Grade every student's notebooks; write ``out`` (see the module). The list of :class:`Submission`."""
    source = pathlib.Path(source) if source else notebook_dir()
    secret = read_secret(secret, secret_file, source)
    references = {p.name: read_notebook(p) for p in notebook_paths(source)}
    references = {name: nb for name, nb in references.items() if graded_ids(nb)}
    out = pathlib.Path(out)
    out.mkdir(parents=True, exist_ok=True)
    work = []
    for student, folder in find_students(submissions).items():
        found = _match(folder, references)
        for name, reference in references.items():
            item = Submission(student, name, found.get(name))
            work.append(item)
            if item.path is None:
                item.grades = _missing_grades(reference, "missing", "no such notebook handed in")
                continue
            try:
                nb = read_notebook(item.path)
            except ValueError as error:
                item.grades = _missing_grades(reference, "error", str(error))
                continue
            item.task = out / "tasks" / student / pathlib.Path(name).stem
            if item.task.exists():
                shutil.rmtree(item.task)
            prepare_task(nb, reference, item.task, name, secret, data=source / "data")
    execute_tasks([item.task for item in work if item.task is not None], timeout, progress)
    for item in work:
        if item.task is not None:
            item.grades, _ = judge(item.task, references[item.notebook], secret)
    _write_csv(out / "grades.csv", work)
    _write_feedback(out / "feedback", work)
    _write_answers(out / "answers", work, references)
    return work


def _write_csv(path, work):
    with open(path, "w", newline="") as file:
        writer = csv.writer(file, lineterminator="\n")
        writer.writerow(COLUMNS)
        for item in work:
            for g in item.grades:
                note = "" if g.status == "graded" else (g.feedback[0] if g.feedback else "")
                writer.writerow([item.student, item.notebook, g.grade_id,
                                 "" if g.points is None else f"{g.points:g}", f"{g.max_points:g}",
                                 g.status, note])


def _write_feedback(folder, work):
    for item in work:
        auto = [g for g in item.grades if not g.by_hand]
        score = sum(g.points for g in auto)
        lines = [f"# {item.student}: {item.notebook}", "",
                 f"**{score:g} / {sum(g.max_points for g in auto):g}** from the checkers; "
                 f"{sum(g.max_points for g in item.grades if g.by_hand):g} points of written "
                 f"answers are graded by hand.", ""]
        for g in item.grades:
            mark = "graded by hand" if g.by_hand else f"{g.points:g} / {g.max_points:g}"
            lines += [f"## {g.grade_id}: {mark}" + ("" if g.status in ("graded", "by hand")
                                                     else f" ({g.status})"), ""]
            if g.by_hand:
                lines += ["Your answer:", "", *["> " + line for line in
                                                 (g.answer or "(none)").splitlines()], ""]
            else:
                lines += ["```", g.report or "\n".join(g.feedback), "```", ""]
        target = folder / item.student / (pathlib.Path(item.notebook).stem + ".md")
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text("\n".join(lines))


def _question_of(reference, grade_id):
    """The Markdown cell right above a written answer: its question."""
    cells = reference.cells
    for n, cell in enumerate(cells):
        if nbgrader_meta(cell).get("grade_id") == grade_id:
            before = [c for c in cells[:n] if c.cell_type == "markdown"]
            return before[-1].source if before else ""
    return ""


def _write_answers(folder, work, references):
    folder.mkdir(parents=True, exist_ok=True)
    for name, reference in references.items():
        questions = [c for c in reference.cells
                     if nbgrader_meta(c).get("grade") and c.cell_type != "code"]
        if not questions:
            continue
        lines = [f"# Written answers: {name}", ""]
        for cell in questions:
            grade_id = nbgrader_meta(cell)["grade_id"]
            points = float(nbgrader_meta(cell)["points"])
            lines += [f"## {grade_id} ({points:g} point{'' if points == 1 else 's'})", "",
                      _question_of(reference, grade_id), ""]
            if "YOUR ANSWER HERE" not in cell.source:
                lines += ["**The key:**", "", *["> " + l for l in cell.source.splitlines()], ""]
            for item in work:
                if item.notebook != name:
                    continue
                answer = next((g.answer for g in item.grades if g.grade_id == grade_id), "")
                text = answer if item.path is not None else "(notebook missing)"
                lines += [f"### {item.student}", "",
                          *["> " + l for l in (text or "(none)").splitlines()], ""]
        (folder / (pathlib.Path(name).stem + ".md")).write_text("\n".join(lines))
