"""Run many grading tasks: ONE function, :func:`~refconv.course.dispatch.execute_tasks`, that a class's grading calls.

Each task is ``python -m refconv.course.run . --timeout S`` run in (a copy of) its folder,
sandboxed, on this machine's cores or on a Dask cluster (:mod:`.workers`, :mod:`.sandbox`):
each task is a folder in, the same folder with ``result/`` out, and the grading process
reads only ``result/`` (it never runs student code).
"""

import json
import pathlib

__all__ = ["execute_tasks", "wall_limit"]


def wall_limit(timeout, cells=60):
    """Seconds a whole task may take: every cell at its limit, and the kernel's start."""
    return timeout * cells + 120


def execute_tasks(task_dirs, timeout=120, progress=True, workers=None, scheduler=None,
                  sandbox="auto", limits=None, on_result=None):
    """Run each task folder's notebook; return each task's ``result.json`` content, in order.

    A task whose run wrote no ``result.json`` (killed past :func:`wall_limit` or by a
    limit, or crashed) gets one written: status timeout or dead, the limit in its message.
    A task that has a ``result.json`` already is not run again (an interrupted class
    resumes). ``workers``, ``scheduler``, ``sandbox``, ``limits``, ``on_result``: see
    :func:`refconv.course.workers.execute_tasks`.
    """
    from .sandbox import Limits
    from .workers import execute_tasks as run_all
    task_dirs = [pathlib.Path(t) for t in task_dirs]
    limits = limits or Limits(wall=wall_limit(timeout), cpu=wall_limit(timeout))
    run_all(task_dirs, workers=workers, scheduler=scheduler, sandbox=sandbox, limits=limits,
            timeout=timeout, progress=progress, on_result=on_result)
    return [json.loads((t / "result" / "result.json").read_text()) for t in task_dirs]
