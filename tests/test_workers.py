"""Running a class's tasks: the local pool, a Dask cluster started with Dask's own commands
(a worker killed mid-run), resuming an interrupted run. The tasks are small scripts standing
for a notebook run (see test_sandbox.py); their results are deterministic, so every way of
running them must write the same result files."""

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from refconv.course.sandbox import Limits
from refconv.course.workers import default_workers, execute_tasks

ROOT = Path(__file__).resolve().parents[1]
TASK = r'''
import hashlib, json, os, time
spec = json.load(open("task.json"))
os.makedirs("result", exist_ok=True)
start = time.time()
time.sleep(spec["sleep"])
digest = hashlib.sha256(spec["student"].encode()).hexdigest()
json.dump({"status": "ok", "output": digest},
          open("result/result.json", "w"), sort_keys=True)
with open("result/when.json", "w") as f:            # not compared: the time it ran
    json.dump([start, time.time()], f)
'''
COMMAND = [sys.executable, "run.py"]
LIMITS = Limits(memory=768 << 20, cpu=60, processes=64, disk=32 << 20, wall=120)


def make_class(root, n, sleep=0.0):
    tasks = []
    for i in range(n):
        task = root / f"student{i:02d}"
        task.mkdir(parents=True)
        (task / "run.py").write_text(TASK)
        (task / "task.json").write_text(json.dumps({"student": f"s{i}", "sleep": sleep}))
        tasks.append(task)
    return tasks


def results(tasks):
    return {t.name: (t / "result" / "result.json").read_text() for t in tasks}


def test_one_worker_and_two_write_the_same_results(tmp_path):
    one = make_class(tmp_path / "one", 4)
    two = make_class(tmp_path / "two", 4, sleep=4)
    execute_tasks(one, command=COMMAND, workers=1, limits=LIMITS, progress=False)
    reports = execute_tasks(two, command=COMMAND, workers=2, limits=LIMITS, progress=False)
    assert results(one) == results(two)
    spans = sorted(json.loads((t / "result" / "when.json").read_text()) for t in two)
    assert any(b[0] < a[1] for a, b in zip(spans, spans[1:])), "two workers never overlapped"
    assert all(json.loads(r)["status"] == "ok" for r in results(two).values())
    for task in two:
        written = json.loads((task / "result" / "sandbox.json").read_text())
        assert written["peak_memory"] == reports[task]["peak_memory"] > 0


def test_an_interrupted_run_resumes_with_the_rest(tmp_path):
    tasks = make_class(tmp_path, 5)
    first = execute_tasks(tasks[:3], command=COMMAND, workers=2, limits=LIMITS, progress=False)
    assert sorted(t.name for t in first) == ["student00", "student01", "student02"]
    # an interrupted task leaves a partial folder, or a result folder without result.json
    (tasks[3] / "result.partial").mkdir()
    (tasks[3] / "result.partial" / "result.json").write_text("{}")
    (tasks[4] / "result").mkdir()
    before = {t: (t / "result" / "result.json").stat().st_mtime_ns for t in tasks[:3]}
    counts = []
    reports = execute_tasks(tasks, command=COMMAND, workers=2, limits=LIMITS, progress=False,
                            on_result=lambda task, report: counts.append(task.name))
    assert sorted(counts) == ["student03", "student04"]
    assert [reports[t].get("resumed", False) for t in tasks] == [True] * 3 + [False] * 2
    assert {t: (t / "result" / "result.json").stat().st_mtime_ns for t in tasks[:3]} == before
    assert results(tasks[3:]).keys() == {"student03", "student04"}
    assert not (tasks[3] / "result.partial").exists()



def test_two_classes_at_once_leave_each_other_alone(tmp_path):
    """Two calls in two threads (two teachers' classes, or two single notebooks): the one
    that ends first stops nothing of the other's."""
    from concurrent.futures import ThreadPoolExecutor
    quick = make_class(tmp_path / "quick", 1)
    slow = make_class(tmp_path / "slow", 1, sleep=6)
    with ThreadPoolExecutor(2) as pool:
        runs = [pool.submit(execute_tasks, tasks, command=COMMAND, workers=1, limits=LIMITS,
                            progress=False) for tasks in (slow, quick)]
        for run in runs:
            run.result()
    assert all(json.loads(r)["status"] == "ok" for r in results(quick + slow).values())


def _alive(marker):
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            if marker.encode() in cmdline.read_bytes():
                return True
        except OSError:
            pass
    return False


def test_an_interrupted_run_stops_its_sandboxes(tmp_path):
    tasks = make_class(tmp_path, 2)
    (tasks[1] / "task.json").write_text(json.dumps({"student": "s1", "sleep": 30}))
    marker = f"marker-{os.getpid()}-{tmp_path.name}"

    def interrupt(task, report):
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        execute_tasks(tasks, command=[*COMMAND, marker], workers=2, limits=LIMITS,
                      progress=False, on_result=interrupt)
    for _ in range(100):
        if not _alive(marker):
            break
        time.sleep(0.1)
    assert not _alive(marker), "the interrupted run left its sandbox running"
    assert not (tasks[1] / "result" / "result.json").exists()
    assert sorted(execute_tasks(tasks[:1], command=COMMAND, progress=False)) == [tasks[0]]

def test_bad_arguments_say_what_is_wrong(tmp_path):
    with pytest.raises(ValueError, match="workers must be a whole number >= 1, got 0"):
        execute_tasks([], workers=0)
    with pytest.raises(FileNotFoundError, match="task folder .*nowhere does not exist"):
        execute_tasks([tmp_path / "nowhere"], command=COMMAND, progress=False)
    assert default_workers() == len(os.sched_getaffinity(0))
    (tmp_path / "subs" / "alice").mkdir(parents=True)
    for option, message in ((["--workers", "0"], "--workers must be at least 1, got 0"),
                            (["--memory", "0"], "--memory must be at least 64 (MiB), got 0")):
        done = subprocess.run([sys.executable, "-m", "refconv", "course", "grade", "subs",
                               "--out", "grades", *option], cwd=tmp_path, capture_output=True,
                              text=True, timeout=300, env={**os.environ, "PYTHONPATH": str(ROOT)})
        assert done.returncode == 2 and message in done.stderr, done.stderr


def _free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def cluster(tmp_path):
    """A Dask scheduler and two workers on localhost, started with Dask's own commands."""
    pytest.importorskip("distributed")
    dask = str(Path(sys.executable).parent / "dask")
    port = _free_port()
    address = f"tcp://127.0.0.1:{port}"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    log = open(tmp_path / "dask.log", "w")
    start = dict(env=env, stdout=log, stderr=log, start_new_session=True, cwd=tmp_path)
    scheduler = subprocess.Popen([dask, "scheduler", "--host", "127.0.0.1", "--port", str(port),
                                  "--no-dashboard"], **start)
    workers = [subprocess.Popen([dask, "worker", address, "--nworkers", "1", "--nthreads", "1",
                                 "--no-dashboard", "--name", f"w{i}"], **start) for i in range(2)]
    try:
        from distributed import Client
        with Client(address, timeout="60s") as client:
            client.wait_for_workers(2, timeout=120)
        yield address, workers
    finally:
        for process in workers + [scheduler]:
            try:
                os.killpg(process.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            process.wait()
        log.close()


def test_a_dask_cluster_writes_the_same_results_and_survives_a_dead_worker(tmp_path, cluster):
    from distributed import Client
    address, workers = cluster
    local = make_class(tmp_path / "local", 6, sleep=3)
    remote = make_class(tmp_path / "remote", 6, sleep=3)
    execute_tasks(local, command=COMMAND, workers=2, limits=LIMITS, progress=False)
    killed = []

    def kill_w0(task, report):
        """At the first result, wait until worker w0 runs a task, then kill it."""
        if killed:
            return
        with Client(address, timeout="30s") as watcher:
            w0 = next(a for a, w in watcher.scheduler_info()["workers"].items()
                      if w["name"] == "w0")
            for _ in range(200):
                running = watcher.processing(workers=[w0])[w0]
                if running:
                    break
                time.sleep(0.05)
        killed.append(list(running))
        os.killpg(workers[0].pid, signal.SIGKILL)

    reports = execute_tasks(remote, command=COMMAND, scheduler=address, limits=LIMITS,
                            progress=False, on_result=kill_w0)
    assert killed and killed[0], "w0 was running no task when it was killed"
    assert workers[0].wait(10) is not None
    assert results(remote) == results(local)
    assert len(reports) == 6 and all(r["status"] == "ok" for r in reports.values())


def test_a_class_resumes_and_grades_one_student_again(tmp_path):
    """The real runner, sandboxed, through ``refconv course grade``: a rerun runs nothing,
    ``--student`` runs only that student's notebook, and grades.csv is the same each time."""
    pytest.importorskip("nbclient")
    pytest.importorskip("nbgrader", reason="refconv course build needs nbgrader: pip install -e \".[course]\"")

    def refconv(*args):
        done = subprocess.run([sys.executable, "-m", "refconv", *map(str, args)], cwd=tmp_path,
                              capture_output=True, text=True, timeout=900,
                              env={**os.environ, "PYTHONPATH": str(ROOT)})
        assert done.returncode in (0, 1), done.stderr
        return done

    refconv("course", "build", "--out", "build", "--secret", "a teacher's secret")
    name = "01_convolution.ipynb"
    for student, kind in (("alice", "instructor"), ("bob", "student")):
        (tmp_path / "subs" / student).mkdir(parents=True)
        shutil.copy(tmp_path / "build" / kind / name, tmp_path / "subs" / student / name)
    grade = ("course", "grade", "subs", "--out", "grades", "--source", "build/instructor",
             "--workers", "2")
    refconv(*grade)
    csv = (tmp_path / "grades" / "grades.csv").read_text()
    scores = {line.split(",")[0]: line.split(",")[3] for line in csv.splitlines()
              if "check_conv1d" in line}
    assert scores == {"alice": "2", "bob": "0"}
    ran = {s: tmp_path / "grades" / "tasks" / s / "01_convolution" / "result" / "sandbox.json"
           for s in ("alice", "bob")}
    stamps = {s: path.stat().st_mtime_ns for s, path in ran.items()}
    again = refconv(*grade)
    assert "resuming: 2 of 2 notebooks already run" in again.stderr and "0 to run" in again.stderr
    assert {s: path.stat().st_mtime_ns for s, path in ran.items()} == stamps
    late = refconv(*grade, "--student", "bob")
    assert "resuming: 1 of 2 notebooks already run" in late.stderr, late.stderr
    assert ran["alice"].stat().st_mtime_ns == stamps["alice"]
    assert ran["bob"].stat().st_mtime_ns != stamps["bob"]
    assert (tmp_path / "grades" / "grades.csv").read_text() == csv
    unknown = subprocess.run([sys.executable, "-m", "refconv", *grade, "--student", "zoe"],
                             cwd=tmp_path, capture_output=True, text=True, timeout=300,
                             env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert unknown.returncode == 2 and "--student zoe: no such student" in unknown.stderr
