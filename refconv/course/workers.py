"""Run many grading tasks at once: on this machine's cores, or on a Dask distributed cluster.

A task is a folder (a prepared submission); running it means running a command in it,
sandboxed (``sandbox.py``), that writes ``TASK/result/`` (``result.json`` first of all).
This module never looks inside a result: the grading process scores it afterwards, so a
worker (or a submission that escapes its sandbox) cannot change a score.

- Local pool: one thread per worker, each starting one sandboxed process at a time. Each
  task has its own HOME, Jupyter runtime folder and (with bwrap or unshare) its own
  network namespace, so kernels never share a port or a connection file.
- Dask: the task folder goes to the worker as zip bytes with the task, the result comes back
  the same way (no shared file system); a worker that dies has its task run again on
  another (Dask's own rescheduling), and an error of the worker's machinery is retried.
- Resumable: a task whose ``result/result.json`` exists is not run again, and a result is
  written whole (renamed into place) or not at all.
"""

import os
import shutil
import socket
import sys
import uuid
from concurrent.futures import ThreadPoolExecutor, as_completed
from pathlib import Path

from .inside import RESULT, pack, unpack
from .sandbox import Limits, detect, run_task, stop_all

__all__ = ["execute_tasks", "default_workers", "notice", "runner_command"]

REPORT = "sandbox.json"


def default_workers():
    """The cores this process may use (its CPU affinity, not the machine's count)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:                     # not Linux
        return os.cpu_count() or 1


def runner_command(timeout):
    """The command that runs one prepared submission (``refconv.course.run``) in its folder
    (the working folder of the sandbox: a copy of the task folder)."""
    return [sys.executable, "-m", "refconv.course.run", ".", "--timeout", str(timeout)]


def notice(mechanism):
    """The one line a teacher reads about the protection in force (None for bwrap)."""
    if mechanism == "unshare":
        return ("note: sandbox 'unshare': no network, own process tree and limits, but the "
                "file system stays visible and writable (install bubblewrap to hide it)")
    if mechanism == "rlimits":
        return ("warning: grading WITHOUT a sandbox (no bubblewrap, no unshare): only limits; "
                "a submission can read and write your files and reach the network")
    if mechanism == "none":
        return ("warning: grading WITHOUT a sandbox (--sandbox none): no limits; a submission "
                "can read and write your files, reach the network and exhaust the machine")
    return None


def _pending(task_dirs):
    done, todo = [], []
    for task in map(Path, task_dirs):
        if not task.is_dir():
            raise FileNotFoundError(f"task folder {task} does not exist")
        (done if (task / RESULT / "result.json").is_file() else todo).append(task)
    return done, todo


def _task_bytes(task):
    """The task folder as zip bytes, without an old partial result."""
    shutil.rmtree(task / RESULT, ignore_errors=True)
    shutil.rmtree(task / f"{RESULT}.partial", ignore_errors=True)
    return pack(task)


def _store(task, result, report, limits):
    """Write the task's result folder whole: unpacked beside it, then renamed into place."""
    partial = task / f"{RESULT}.partial"
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir()
    if result is not None:
        try:
            unpack(result, partial, max_bytes=limits.disk)
        except ValueError as error:
            report["reason"] = report.get("reason") or f"unreadable result: {error}"
            shutil.rmtree(partial)
            partial.mkdir()
    inner = partial / RESULT                   # the zip's names start with result/
    if inner.is_dir():
        for path in inner.iterdir():
            path.rename(partial / path.name)
        inner.rmdir()
    answer = partial / "result.json"
    if not _valid(answer):          # none, or cut short (a full disk, a kill while writing)
        status = "timeout" if report.get("killed") == "timeout" else "dead"
        answer.write_text(_json({"status": status, "message": report.get("reason")
                                 or "the sandbox returned no result", "timed_out_cells": [],
                                 "dead_cell": None}))
    (partial / REPORT).write_text(_json(report))
    partial.rename(task / RESULT)


def _valid(answer):
    import json
    try:
        return isinstance(json.loads(answer.read_text()).get("status"), str)
    except (OSError, ValueError, AttributeError):
        return False


def _json(data):
    import json
    return json.dumps(data, indent=1, sort_keys=True) + "\n"


def _run_here(data, command, sandbox, limits, timeout, running=None):
    """One task on this machine (a pool thread or a Dask worker): (result bytes, report)."""
    mechanism = detect(sandbox)
    result, report = run_task(data, command or runner_command(timeout), limits, mechanism,
                              running=running)
    report["worker"] = f"{socket.gethostname()}:{os.getpid()}"
    return result, report


def execute_tasks(task_dirs, *, command=None, workers=None, scheduler=None, sandbox="auto",
                  limits=None, timeout=120, progress=True, retries=2, on_result=None):
    """Run every task folder of ``task_dirs`` not yet run: {task folder: report}.

    command: the argv run in each task's folder (default ``runner_command(timeout)``);
    workers: parallel tasks on this machine (default ``default_workers()``);
    scheduler: a Dask scheduler's address ("tcp://HOST:PORT"): run there instead;
    sandbox: "auto" (the strongest that works), "bwrap", "unshare", "rlimits" or "none";
    limits: ``sandbox.Limits``; progress: a progress bar with the time left (tqdm);
    on_result(task, report): called as each task finishes.

    A report holds the sandbox's measurements (``sandbox.run_task``); the tasks that had a
    result already are reported as {"resumed": True}. Each result is also written to
    ``TASK/result/sandbox.json``.
    """
    limits = limits or Limits()
    workers = default_workers() if workers is None else workers
    if not isinstance(workers, int) or workers < 1:
        raise ValueError(f"workers must be a whole number >= 1, got {workers!r}")
    done, todo = _pending(task_dirs)
    reports = {task: {"resumed": True} for task in done}
    if not todo:
        return reports
    bar = _bar(len(todo), progress)

    def finish(task, result, report):
        _store(task, result, report, limits)
        reports[task] = report
        bar.update(1)
        if on_result:
            on_result(task, report)

    try:
        if scheduler:
            _on_dask(scheduler, todo, command, sandbox, limits, timeout, retries, finish)
        else:
            mechanism = detect(sandbox)
            line = notice(mechanism)
            if line:
                print(line, file=sys.stderr)
            pool, running = ThreadPoolExecutor(max_workers=workers), set()
            try:                   # each thread zips its task when it starts: memory stays small
                futures = {pool.submit(lambda t: _run_here(_task_bytes(t), command, mechanism,
                                                           limits, timeout, running), task): task
                           for task in todo}
                for future in as_completed(futures):
                    finish(futures[future], *future.result())
            except BaseException:  # Ctrl-C: no new task starts, this call's running ones die
                pool.shutdown(wait=False, cancel_futures=True)
                stop_all(running)
                raise
            pool.shutdown()
    finally:
        bar.close()
    return reports


def _on_dask(scheduler, todo, command, sandbox, limits, timeout, retries, finish):
    try:
        from distributed import Client, as_completed as dask_completed
    except ImportError:
        raise ImportError("--scheduler needs Dask: pip install 'refconv[course]' "
                          "(dask[distributed])") from None
    try:
        client = Client(scheduler, timeout="30s")
    except OSError as error:               # refused, unreachable, timed out
        raise RuntimeError(f"--scheduler {scheduler}: no Dask scheduler answered within 30 s "
                           f"({type(error).__name__}: {error})") from None
    with client:
        run = f"refconv-{uuid.uuid4().hex[:8]}"
        waiting, futures = list(enumerate(todo)), {}
        # a window of tasks in flight (a few per worker thread): the zipped notebooks of a
        # whole class are never all in this process's memory at once
        window = 4 * max(1, sum(client.nthreads().values()))

        def submit():
            i, task = waiting.pop(0)
            future = client.submit(_run_here, _task_bytes(task), command, sandbox, limits,
                                   timeout, key=f"{run}-{task.name}-{i}", pure=False,
                                   retries=retries)
            futures[future] = task
            return future

        running = dask_completed([submit() for _ in range(min(window, len(waiting)))])
        mechanisms = set()
        for future in running:
            if waiting:
                running.add(submit())
            try:
                result, report = future.result()
            except Exception as error:     # e.g. KilledWorker: its workers died again and again
                result, report = None, {"mechanism": None, "worker": None, "killed": None,
                                        "reason": f"on Dask: {type(error).__name__}: {error}"}
            if report["mechanism"] not in mechanisms:
                mechanisms.add(report["mechanism"])
                line = notice(report["mechanism"]) if report["mechanism"] else None
                if line:
                    print(f"{report['worker']}: {line}", file=sys.stderr)
            finish(futures[future], result, report)


def _bar(total, progress):
    class Quiet:
        def update(self, n):
            pass

        def close(self):
            pass

    if not progress:
        return Quiet()
    try:
        from tqdm import tqdm
    except ImportError:
        return Quiet()
    return tqdm(total=total, unit="task", desc="grading", file=sys.stderr, smoothing=0.1)
