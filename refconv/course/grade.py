"""Grade one submission: make its task folder, run it (:mod:`.run`), judge it (:mod:`.verdict`).

1. Find the course notebook the submission is (by its graded cells' ids, else by
   its file name) among the reference notebooks (``--source``, default the ones
   refconv ships) and put back every locked and graded cell as the reference
   has it: what a student changed there does not count.
2. Write the task folder: the notebook, its ``data/``, and ``task.json`` with
   each graded exercise's seed, derived from the teacher's secret (the secret
   itself never goes into the task).
3. Run it in a fresh kernel (:func:`refconv.course.run.run_task`): each graded
   cell's checker records the student function's outputs on the hidden cases.
4. Judge it here (:func:`refconv.course.verdict.judge`): the checker replays the
   record against refconv's own answers and computes the points.
"""

import json
import pathlib
import shutil
import tempfile

from ..exercises.record import cell_key, derive_seed
from .build import read_secret
from .shipped import notebook_dir, notebook_paths
from .verdict import Grade, format_grades, judge, nbgrader_meta

__all__ = ["Grade", "grade", "grade_notebook", "format_grades", "prepare_task",
           "reference_for", "read_notebook", "graded_ids"]


def read_notebook(path):
    """An nbformat notebook; ValueError when the file is not one."""
    import nbformat
    try:
        return nbformat.read(str(path), as_version=4)
    except Exception as error:   # nbformat raises several kinds for a file that is not a notebook
        raise ValueError(f"{path}: not a readable notebook ({type(error).__name__}: {error})") \
            from None


def graded_ids(nb):
    return [nbgrader_meta(c)["grade_id"] for c in nb.cells if nbgrader_meta(c).get("grade")]


def reference_for(nb, path, source):
    """``(path, notebook)`` of the reference notebook the submission ``nb`` is."""
    ids = set(graded_ids(nb))
    candidates = notebook_paths(source)
    for candidate in candidates:
        reference = read_notebook(candidate)
        if ids and ids <= set(graded_ids(reference)):
            return candidate, reference
    for candidate in candidates:
        if candidate.name == pathlib.Path(path).name:
            return candidate, read_notebook(candidate)
    raise ValueError(f"{path}: not one of refconv's course notebooks (no notebook in "
                     f"{source} has its graded cells {sorted(ids)} or its name)")


def _restore_locked_cells(nb, reference):
    """Put back the reference's locked and graded cells (what nbgrader's OverwriteCells does)."""
    originals = {nbgrader_meta(c)["grade_id"]: c for c in reference.cells
                 if nbgrader_meta(c).get("grade_id")}
    for cell in nb.cells:
        meta = nbgrader_meta(cell)
        original = originals.get(meta.get("grade_id"))
        if original is None or meta.get("solution"):
            continue
        if meta.get("grade") or meta.get("locked"):
            cell.source = original.source
            cell.cell_type = original.cell_type
            cell.metadata["nbgrader"] = dict(nbgrader_meta(original))
    return nb


def prepare_task(nb, reference, task_dir, name, secret, data=None):
    """Write a task folder for :mod:`.run`: the restored notebook, ``data``, ``task.json``."""
    task_dir = pathlib.Path(task_dir)
    work = task_dir / "work"
    work.mkdir(parents=True, exist_ok=True)
    nb = _restore_locked_cells(nb, reference)
    for cell in nb.cells:           # what the student's file shows is never what the run did
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
    import nbformat
    nbformat.write(nb, str(work / name))
    if data is not None and pathlib.Path(data).is_dir():
        shutil.copytree(data, work / "data", dirs_exist_ok=True,
                        ignore=shutil.ignore_patterns("__pycache__"))
    code = [c for c in reference.cells if nbgrader_meta(c).get("grade") and c.cell_type == "code"]
    task = {"notebook": name,
            "seeds": {nbgrader_meta(c)["grade_id"]: derive_seed(secret, nbgrader_meta(c)["grade_id"])
                      for c in code},
            "cells": {cell_key(c.source): nbgrader_meta(c)["grade_id"] for c in code}}
    (task_dir / "task.json").write_text(json.dumps(task, indent=1))
    return task_dir


def grade(path, source=None, timeout=120, secret=None):
    """Grade the notebook at ``path``: a list of :class:`Grade`, one per graded cell, in order.

    Args:
        path: the submission (``.ipynb``).
        source: the folder of the reference notebooks (default: the shipped ones; a
            build's ``instructor/`` folder, whose secret is then used).
        timeout: seconds one cell may run before it is interrupted.
        secret: the teacher's secret (default: ``source``'s, else the public default).

    Raises:
        ValueError: the file is not a notebook, or not one of the course's.
    """
    return grade_notebook(path, source, timeout, secret)[0]


def grade_notebook(path, source=None, timeout=120, secret=None):
    """``(grades, executed notebook)``: :func:`grade`, and what the run left in each cell."""
    from .run import run_task
    path = pathlib.Path(path)
    nb = read_notebook(path)
    source = pathlib.Path(source) if source else notebook_dir()
    secret = read_secret(secret=secret, source=source)
    _, reference = reference_for(nb, path, source)
    with tempfile.TemporaryDirectory(prefix="refconv-grade-") as task_dir:
        prepare_task(nb, reference, task_dir, path.name, secret, data=source / "data")
        run_task(task_dir, timeout)
        return judge(task_dir, reference, secret)
