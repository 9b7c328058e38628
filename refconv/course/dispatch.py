"""Run many grading tasks: ONE function, :func:`execute_tasks`, that a class's grading calls.

Here: one task after another, each ``python -m refconv.course.run TASK_DIR --timeout S``
in its own process (:mod:`.run`), with a progress bar. A pool of workers, a Dask
cluster or a sandbox around each task replaces this function and nothing else:
each task is a folder in, the same folder with ``result/`` out, and the grading
process reads only ``result/`` (it never runs student code).
"""

import json
import pathlib
import subprocess
import sys

__all__ = ["execute_tasks", "wall_limit"]


def wall_limit(timeout, cells=60):
    """Seconds a whole task may take: every cell at its limit, and the kernel's start."""
    return timeout * cells + 120


def execute_tasks(task_dirs, timeout=120, progress=True):
    """Run each task folder's notebook; return each task's ``result.json`` content, in order.

    A task whose process does not write ``result.json`` (killed past
    :func:`wall_limit`, or crashed) gets one written here: status timeout or error.
    """
    from tqdm.auto import tqdm
    results = []
    bar = tqdm(list(task_dirs), desc="grading", unit="notebook", disable=not progress,
               file=sys.stderr)
    for task_dir in bar:
        task_dir = pathlib.Path(task_dir)
        bar.set_postfix_str(f"{task_dir.parent.name}/{task_dir.name}")
        result_file = task_dir / "result" / "result.json"
        command = [sys.executable, "-m", "refconv.course.run", str(task_dir),
                   "--timeout", str(timeout)]
        try:
            done = subprocess.run(command, capture_output=True, text=True,
                                  timeout=wall_limit(timeout))
            problem = None if result_file.is_file() else (
                f"the runner wrote no result (exit {done.returncode}): "
                f"{done.stderr.strip().splitlines()[-1:] or ''}")
            status = "error"
        except subprocess.TimeoutExpired:
            problem, status = f"the notebook ran past {wall_limit(timeout)} s in all", "timeout"
        if problem is not None:
            result_file.parent.mkdir(parents=True, exist_ok=True)
            result_file.write_text(json.dumps({"status": status, "message": problem,
                                               "timed_out_cells": [], "dead_cell": None}))
        results.append(json.loads(result_file.read_text()))
    return results
