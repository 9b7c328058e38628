"""Run ONE submission in a fresh kernel, in its task folder: the unit a class is graded in.

A task folder (made by :func:`refconv.course.grade.prepare_task`) holds::

    TASK_DIR/task.json        {"notebook": NAME, "seeds": {grade_id: seed}, "cells": {key: grade_id}}
    TASK_DIR/work/NAME        the submission, the instructor's graded and locked cells put back
    TASK_DIR/work/data/       what the notebook reads

and after a run::

    TASK_DIR/result/executed.ipynb     the notebook with what each cell printed
    TASK_DIR/result/records/*.npz      each graded call's outputs (refconv.exercises.record)
    TASK_DIR/result/result.json        {"status": "ok" | "error" | "timeout" | "dead",
                                        "message": ..., "timed_out_cells": [...],
                                        "dead_cell": index or null, "seconds": ...}

The kernel runs with ``REFCONV_GRADING=TASK_DIR`` (seeds derived from the
teacher's secret, never the secret) and ``work/`` as its working directory; this
process only drives it and computes no score (:mod:`.verdict` does, elsewhere).

Command line (what a process pool, a Dask worker or a sandbox runs)::

    python -m refconv.course.run TASK_DIR [--timeout S]

exits 0 whenever ``result.json`` was written, whatever happened in the kernel;
non-zero only when the task folder itself is unusable.
"""

import argparse
import json
import os
import pathlib
import sys
import time

__all__ = ["run_task", "main", "RESULT", "TIMEOUT_NAME"]

RESULT = "result"
TIMEOUT_NAME = "CellTimeout"


def _client(nb, cwd, timeout, started, timed_out):
    from nbclient import NotebookClient

    from .execute import kernel_manager_class

    class GradingClient(NotebookClient):
        async def _async_handle_timeout(self, timeout, cell=None):
            timed_out.append(started[-1] if started else None)
            return await super()._async_handle_timeout(timeout, cell)

    def on_start(cell, cell_index):
        started.append(cell_index)

    return GradingClient(
        nb, timeout=timeout, kernel_name="python3",
        kernel_manager_class=kernel_manager_class(cwd),
        resources={"metadata": {"path": str(cwd)}}, record_timing=False, allow_errors=True,
        interrupt_on_timeout=True, on_cell_start=on_start,
        error_on_timeout={"ename": TIMEOUT_NAME,
                          "evalue": f"this cell ran past the time limit of {timeout} s and "
                                    f"was interrupted"},
        extra_arguments=["--IPKernelApp.log_level=ERROR"])


def run_task(task_dir, timeout=120):
    """Run the task's notebook; write and return ``result/result.json``'s content (a dict)."""
    import nbformat
    from nbclient.exceptions import DeadKernelError

    task_dir = pathlib.Path(task_dir).resolve()
    task = json.loads((task_dir / "task.json").read_text())
    work = task_dir / "work"
    result_dir = task_dir / RESULT
    result_dir.mkdir(exist_ok=True)
    nb = nbformat.read(str(work / task["notebook"]), as_version=4)
    env = dict(os.environ)
    env["REFCONV_GRADING"] = str(task_dir)
    env.setdefault("PYDEVD_DISABLE_FILE_VALIDATION", "1")
    env.setdefault("OPENBLAS_NUM_THREADS", "1")
    started, timed_out = [], []
    result = {"status": "ok", "message": "", "timed_out_cells": timed_out, "dead_cell": None}
    start = time.perf_counter()
    try:
        _client(nb, work, timeout, started, timed_out).execute(env=env)
    except DeadKernelError:
        cell = started[-1] if started else None
        result.update(status="dead", dead_cell=cell,
                      message=f"the kernel died while running cell {cell} (a crash, os._exit, "
                              f"or memory exhausted); the cells after it did not run")
    except Exception as error:      # the kernel did not start, the notebook is not runnable...
        result.update(status="error", message=f"{type(error).__name__}: {error}")
    result["seconds"] = round(time.perf_counter() - start, 2)
    if timed_out and result["status"] == "ok":
        result.update(status="timeout", message=f"cell(s) {timed_out} ran past the time limit "
                                                f"of {timeout} s and were interrupted")
    nbformat.write(nb, str(result_dir / "executed.ipynb"))
    (result_dir / "result.json").write_text(json.dumps(result, indent=1))
    return result


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m refconv.course.run",
                                     description="Run one grading task's notebook in a fresh "
                                                 "kernel; write TASK_DIR/result/.")
    parser.add_argument("task_dir", metavar="TASK_DIR")
    parser.add_argument("--timeout", type=int, default=120, metavar="S",
                        help="seconds one cell may run before it is interrupted "
                             "(default: %(default)s)")
    args = parser.parse_args(argv)
    if not (pathlib.Path(args.task_dir) / "task.json").is_file():
        print(f"{args.task_dir}: no task.json: not a grading task folder", file=sys.stderr)
        return 2
    result = run_task(args.task_dir, args.timeout)
    print(f"{args.task_dir}: {result['status']} ({result['seconds']} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
