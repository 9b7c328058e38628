"""The course kit's parts without running a whole class (issue 29): restoring graded and locked
cells on nbformat objects, the task folder, finding the reference, the shipped notebooks, the
dispatch of tasks, the command line's checks, and the kernel's set-up (one short kernel).
"""

import argparse
import copy
import json
import pathlib
import sys

import pytest

nbformat = pytest.importorskip("nbformat", reason="nbformat (the course extra)")

from refconv.course import shipped                                     # noqa: E402
from refconv.course.commands import register                           # noqa: E402
from refconv.course.grade import (graded_ids, prepare_task, read_notebook,  # noqa: E402
                                  reference_for, _restore_locked_cells)
from refconv.course.verdict import nbgrader_meta                      # noqa: E402
from refconv.exercises.record import cell_key, derive_seed             # noqa: E402

ROOT = pathlib.Path(__file__).resolve().parent.parent


def cell(kind, source, **meta):
    make = nbformat.v4.new_code_cell if kind == "code" else nbformat.v4.new_markdown_cell
    c = make(source)
    if meta:
        c.metadata["nbgrader"] = {"schema_version": 3, "grade": False, "solution": False,
                                  "locked": False, **meta}
    return c


def reference_notebook():
    nb = nbformat.v4.new_notebook()
    nb.cells = [cell("markdown", "# intro"),
                cell("code", "import numpy as np\nSETUP = 3", grade_id="setup", locked=True),
                cell("code", "def f(x):\n    raise NotImplementedError", grade_id="f",
                     solution=True),
                cell("code", "report = check(f)\nreport.points(2)", grade_id="check_f",
                     grade=True, locked=True, points=2),
                cell("markdown", "YOUR ANSWER HERE", grade_id="q_why", grade=True,
                     solution=True, points=1)]
    return nb


def student_edits(nb):
    nb = copy.deepcopy(nb)
    nb.cells[1].source = "SETUP = 0"                       # a locked cell edited
    nb.cells[2].source = "def f(x):\n    return 2 * x"     # the solution
    nb.cells[3].source = "2"                               # the graded check overwritten
    nb.cells[3].metadata["nbgrader"]["points"] = 99
    nb.cells[4].source = "Because the kernel is even."     # the written answer
    return nb


def test_graded_and_locked_cells_are_put_back_and_the_students_own_are_kept():
    reference = reference_notebook()
    restored = _restore_locked_cells(student_edits(reference), reference)
    assert restored.cells[1].source == "import numpy as np\nSETUP = 3"
    assert restored.cells[3].source == reference.cells[3].source
    assert nbgrader_meta(restored.cells[3])["points"] == 2
    assert restored.cells[2].source == "def f(x):\n    return 2 * x"
    assert restored.cells[4].source == "Because the kernel is even."
    assert restored.cells[0].source == "# intro"


def test_a_shipped_notebooks_overwritten_check_cells_are_put_back():
    path = shipped.notebook_paths()[0]
    reference = read_notebook(path)
    nb = copy.deepcopy(reference)
    graded = [c for c in nb.cells if nbgrader_meta(c).get("grade") and c.cell_type == "code"]
    assert graded
    for c in graded:
        c.source = "2"
    restored = _restore_locked_cells(nb, reference)
    originals = {nbgrader_meta(c)["grade_id"]: c.source for c in reference.cells
                 if nbgrader_meta(c).get("grade_id")}
    for c in restored.cells:
        if nbgrader_meta(c).get("grade") and c.cell_type == "code":
            assert c.source == originals[nbgrader_meta(c)["grade_id"]] != "2"


def test_the_task_folder_holds_the_restored_notebook_and_seeds_from_the_secret(tmp_path):
    reference = reference_notebook()
    submission = student_edits(reference)
    submission.cells[2].outputs = [nbformat.v4.new_output("stream", text="fake: 2/2")]
    submission.cells[2].execution_count = 7
    prepare_task(submission, reference, tmp_path / "a", "nb.ipynb", "s3cret")
    prepare_task(student_edits(reference), reference, tmp_path / "b", "nb.ipynb", "other")
    task = json.loads((tmp_path / "a" / "task.json").read_text())
    assert task["notebook"] == "nb.ipynb"
    assert task["seeds"] == {"check_f": derive_seed("s3cret", "check_f")}
    other = json.loads((tmp_path / "b" / "task.json").read_text())
    assert other["seeds"]["check_f"] != task["seeds"]["check_f"]
    assert task["cells"] == {cell_key(reference.cells[3].source): "check_f"}
    written = nbformat.read(str(tmp_path / "a" / "work" / "nb.ipynb"), as_version=4)
    assert written.cells[3].source == reference.cells[3].source
    assert written.cells[1].source == reference.cells[1].source
    assert all(c.outputs == [] and c.execution_count is None
               for c in written.cells if c.cell_type == "code")


def test_the_reference_is_found_by_graded_ids_then_by_name(tmp_path):
    paths = shipped.notebook_paths()
    third = read_notebook(paths[2])
    found, _ = reference_for(third, tmp_path / "renamed.ipynb", shipped.notebook_dir())
    assert found == paths[2]
    empty = nbformat.v4.new_notebook()
    found, _ = reference_for(empty, tmp_path / paths[4].name, shipped.notebook_dir())
    assert found == paths[4]
    with pytest.raises(ValueError, match="not one of refconv's course notebooks"):
        reference_for(empty, tmp_path / "mine.ipynb", shipped.notebook_dir())
    ids = graded_ids(third)
    assert ids and all(nbgrader_meta(c).get("grade") for c in third.cells
                       if nbgrader_meta(c).get("grade_id") in ids)


# ------------------------------------------------------------------ the shipped notebooks

def test_the_shipped_notebooks_are_the_numbered_ones_in_order(tmp_path, monkeypatch):
    names = [p.name for p in shipped.notebook_paths()]
    assert names == sorted(p.name for p in (ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
    assert len(names) == 8 and names[0].startswith("01_")
    written = shipped.copy_notebooks(tmp_path / "out")
    assert [p.name for p in written] == names
    data = sorted(p.name for p in (shipped.notebook_dir() / "data").iterdir() if p.is_file())
    assert data and sorted(p.name for p in (tmp_path / "out" / "data").iterdir()) == data
    assert shipped.instructor_dir() == ROOT / "notebooks"
    empty = tmp_path / "empty"
    empty.mkdir()
    monkeypatch.setattr(shipped, "SHIPPED", empty)
    with pytest.raises(FileNotFoundError, match="reinstall refconv"):
        shipped.notebook_dir()


# ------------------------------------------------------------------ dispatch

def test_dispatch_runs_every_task_with_the_wall_limit_and_reads_each_result(tmp_path, monkeypatch):
    from refconv.course import dispatch, workers
    seen = {}

    def fake(task_dirs, **options):
        seen.update(options, dirs=list(task_dirs))
        for n, t in enumerate(task_dirs):
            (t / "result").mkdir(parents=True)
            (t / "result" / "result.json").write_text(json.dumps({"task": n}))

    monkeypatch.setattr(workers, "execute_tasks", fake)
    dirs = [tmp_path / "a", tmp_path / "b", tmp_path / "c"]
    results = dispatch.execute_tasks([str(d) for d in dirs], timeout=7, progress=False,
                                     workers=2, sandbox="none")
    assert results == [{"task": 0}, {"task": 1}, {"task": 2}]
    assert seen["dirs"] == dirs and seen["timeout"] == 7 and seen["workers"] == 2
    assert seen["sandbox"] == "none"
    assert seen["limits"].wall == dispatch.wall_limit(7) == seen["limits"].cpu
    assert dispatch.wall_limit(7) >= 7 * 60 and dispatch.wall_limit(7, cells=3) >= 21
    assert dispatch.wall_limit(100) > dispatch.wall_limit(7)


# ------------------------------------------------------------------ the command line

def parse(*argv):
    parser = argparse.ArgumentParser(prog="refconv")
    register(parser.add_subparsers(dest="command"))
    return parser, parser.parse_args(list(argv))


def test_the_course_commands_parse_and_refuse_bad_options(tmp_path, capsys):
    parser, args = parse("course", "grade", str(tmp_path))
    assert args.timeout == 120 and args.sandbox == "auto" and args.memory == 2048
    assert args.run(args, parser) == 2
    assert "needs --out" in capsys.readouterr().err
    parser, args = parse("course", "grade", str(tmp_path), "--out", str(tmp_path / "g"),
                         "--memory", "32")
    assert args.run(args, parser) == 2
    assert "--memory must be at least 64" in capsys.readouterr().err
    parser, args = parse("course", "grade", str(tmp_path), "--out", str(tmp_path / "g"),
                         "--workers", "0")
    assert args.run(args, parser) == 2
    assert "--workers must be at least 1" in capsys.readouterr().err
    parser, args = parse("course", "grade", str(tmp_path / "nothing.ipynb"))
    assert args.run(args, parser) == 2
    with pytest.raises(SystemExit):
        parse("course", "grade", "x.ipynb", "--sandbox", "docker")


def test_refconv_notebooks_writes_the_student_or_the_instructor_versions(tmp_path, capsys):
    parser, args = parse("notebooks", "--out", str(tmp_path / "s"))
    assert args.run(args, parser) == 0
    parser, args = parse("notebooks", "--out", str(tmp_path / "i"), "--instructor")
    assert args.run(args, parser) == 0
    assert "8 notebooks" in capsys.readouterr().out
    for path in sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb")):
        assert (tmp_path / "i" / path.name).read_bytes() == path.read_bytes()
        assert (tmp_path / "s" / path.name).read_bytes() == \
            (ROOT / "notebooks" / "student" / path.name).read_bytes()


# ------------------------------------------------------------------ the kernel (one, short)

def test_execute_runs_in_this_python_in_the_folder_with_the_environment(tmp_path):
    pytest.importorskip("nbclient", reason="nbclient (the course extra)")
    pytest.importorskip("ipykernel", reason="ipykernel (the course extra)")
    from nbclient.exceptions import CellExecutionError
    from refconv.course.execute import execute, kernel_manager_class
    assert kernel_manager_class(tmp_path)().kernel_spec.argv[0] == sys.executable
    (tmp_path / "here.txt").write_text("found")
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(
        "import os, sys\nprint(open('here.txt').read(), os.environ['REFCONV_T'], "
        "os.environ['OPENBLAS_NUM_THREADS'], sys.executable)"),
        nbformat.v4.new_code_cell("raise ValueError('the student')")]
    env = {key: value for key, value in __import__("os").environ.items()
           if key != "OPENBLAS_NUM_THREADS"}
    env["REFCONV_T"] = "42"
    execute(nb, tmp_path, timeout=60, allow_errors=True, env=env)
    assert nb.cells[0].outputs[0]["text"].split() == ["found", "42", "1", sys.executable]
    assert nb.cells[1].outputs[0]["ename"] == "ValueError"
    nb.cells = nb.cells[1:]
    with pytest.raises(CellExecutionError):
        execute(nb, tmp_path, timeout=60, env=env)
