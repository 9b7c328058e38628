"""``refconv course grade SUBMISSIONS --out GRADES``: a class with every kind of trouble in it.

Notebook 1 only (a build from a folder holding it), six students: the instructor's
version (full marks), a kernel that dies (os._exit) in the second exercise, a cell
that never ends, graded cells edited to hand out points (put back), a file that is
not a notebook, and no notebook at all. Every row must be there with its status,
every other exercise graded, and the exit status 1.
"""

import csv
import pathlib
import shutil
import subprocess
import sys

import nbformat
import pytest

from refconv.course import build

REPO = pathlib.Path(__file__).resolve().parents[1]
NAME = "01_convolution.ipynb"


def _notebook(path, solutions):
    nb = nbformat.read(str(path), as_version=4)
    for cell in nb.cells:
        grade_id = cell.metadata.get("nbgrader", {}).get("grade_id")
        if grade_id in solutions:
            cell.source = solutions[grade_id]
    return nb


def test_a_class_is_graded_whatever_one_submission_does(tmp_path):
    pytest.importorskip("nbgrader", reason="refconv course build needs nbgrader: pip install -e \".[course]\"")
    source = tmp_path / "source"
    source.mkdir()
    shutil.copy(REPO / "notebooks" / NAME, source / NAME)
    shutil.copytree(REPO / "notebooks" / "data", source / "data")
    course = tmp_path / "course"
    build(course, source=source, secret="class secret")
    instructor, student = course / "instructor" / NAME, course / "student" / NAME
    subs = tmp_path / "submitted"                         # nbgrader's layout
    plan = {"alice": _notebook(instructor, {}),
            "dave": _notebook(instructor, {"conv1d": "import os\nos._exit(1)"}),
            "erin": _notebook(instructor, {"same_padding": "import time\ntime.sleep(10**6)"}),
            "heidi": _notebook(student, {"check_same_padding": "report = None\n2.0",
                                         "check_conv1d": "2.0"})}
    for who, nb in plan.items():
        (subs / who / "ps1").mkdir(parents=True)
        nbformat.write(nb, str(subs / who / "ps1" / NAME))
    (subs / "grace" / "ps1").mkdir(parents=True)
    (subs / "grace" / "ps1" / NAME).write_text("not a notebook")
    (subs / "bob" / "ps1").mkdir(parents=True)             # handed in nothing
    grades = tmp_path / "grades"
    result = subprocess.run([sys.executable, "-m", "refconv", "course", "grade", str(tmp_path),
                             "--out", str(grades), "--source", str(course / "instructor"),
                             "--timeout", "60"], capture_output=True, text=True, timeout=1500)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "6 students" in result.stdout and "no secret" not in result.stderr
    with open(grades / "grades.csv") as file:
        rows = {(r["student"], r["exercise"]): r for r in csv.DictReader(file)}
    assert len(rows) == 6 * 4                              # 2 exercises, 2 questions each

    def row(who, exercise):
        r = rows[(who, exercise)]
        return r["score"], r["status"]
    assert row("alice", "check_same_padding") == ("2", "graded")
    assert row("alice", "check_conv1d") == ("2", "graded")
    assert row("alice", "q_even_kernel_shift") == ("", "by hand")
    assert row("dave", "check_same_padding") == ("2", "graded")    # before the kernel died
    assert row("dave", "check_conv1d") == ("0", "error")
    assert "kernel died" in rows[("dave", "check_conv1d")]["note"]
    assert row("erin", "check_same_padding") == ("0", "timeout")
    assert "time limit" in rows[("erin", "check_same_padding")]["note"]
    assert row("erin", "check_conv1d") == ("2", "graded")          # the run went on
    assert row("heidi", "check_same_padding") == ("0", "graded")   # the edit was undone
    assert row("heidi", "check_conv1d") == ("0", "graded")
    assert row("grace", "check_conv1d") == ("0", "error")
    assert "not a readable notebook" in rows[("grace", "check_conv1d")]["note"]
    assert row("bob", "check_conv1d") == ("0", "missing")

    feedback = (grades / "feedback" / "alice" / "01_convolution.md").read_text()
    assert "PASSED" in feedback and "**4 / 4**" in feedback
    assert "was interrupted" in (grades / "feedback" / "erin" / "01_convolution.md").read_text()
    answers = (grades / "answers" / "01_convolution.md").read_text()
    assert all(f"### {who}" in answers for who in ("alice", "bob", "dave", "erin", "grace"))
    assert "**The key:**" in answers and "(notebook missing)" in answers
