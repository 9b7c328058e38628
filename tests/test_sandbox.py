"""The grading sandbox against submissions that attack: each gets its row with the reason,
the teacher's files stay unread and unchanged, and every other task of the class runs.

The tasks here are small Python scripts standing for a submission's notebook run (the
real runner is ``refconv.course.run``): each tries one thing, catches what the sandbox
does to it and writes ``result/result.json`` as the runner would.
"""

import hashlib
import json
import os
import shutil
import socket
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from refconv.course import sandbox
from refconv.course.sandbox import Limits, explain, size_text
from refconv.course.workers import execute_tasks

# A fake run: does the attack named in task.json, records what happened as the runner would.
TASK = r'''
import json, os, socket, sys, time, traceback
spec = json.load(open("task.json"))
os.makedirs("result", exist_ok=True)
def record(status, **more):
    with open("result/result.json", "w") as f:
        json.dump({"status": status, **more}, f)
kind, output = spec["kind"], None
try:
    if kind == "ordinary":
        output = sum(range(spec["n"]))
    failures, done = [], []
    for path in spec.get("paths", []) if kind in ("read", "write") else []:
        try:                                          # every path, not only the first
            if kind == "read":
                print(open(path).read())
            else:
                with open(path, "a") as f:
                    f.write("defaced")
            done.append(path)
        except OSError as error:
            failures.append(f"{type(error).__name__}: {error}")
    if failures:
        raise OSError("\n".join(failures) + f"\ndone: {done}")
    if kind == "listdir":
        print(os.listdir(spec["paths"][0]))
    if kind == "network":
        socket.create_connection(("127.0.0.1", spec["port"]), timeout=5).sendall(b"stolen")
    if kind == "memory":                              # one block, larger than any limit
        block = bytearray(spec["bytes"])
    if kind == "memory-touch":                        # a MiB at a time, each page written
        blocks = [bytearray(b"x" * (1 << 20)) for _ in range(spec["bytes"] >> 20)]
    if kind == "fork":
        children = []
        for _ in range(spec["count"]):               # bounded: never more than count
            pid = os.fork()
            if pid == 0:
                time.sleep(3)
                os._exit(0)
            children.append(pid)
    if kind == "disk":
        with open("big.bin", "wb") as f:
            for _ in range(spec["mib"]):
                f.write(b"x" * (1 << 20))
    if kind == "sleep":
        time.sleep(spec["seconds"])
    if kind == "cpu":
        while True:
            pass
    record("ok", output=output)
except BaseException:
    record("error", error=traceback.format_exc())
'''


def make_task(folder, kind, **spec):
    folder.mkdir(parents=True)
    (folder / "run.py").write_text(TASK)
    (folder / "task.json").write_text(json.dumps({"kind": kind, **spec}))
    return folder


COMMAND = [sys.executable, "run.py"]
SMALL = Limits(memory=768 << 20, cpu=4, processes=40, disk=32 << 20, wall=20)


def digest(path):
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


class Server:
    """A TCP server on 127.0.0.1 (loopback only) that records whether anyone connected."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen()
        self.sock.settimeout(0.2)
        self.port, self.connections, self.running = self.sock.getsockname()[1], [], True
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self):
        while self.running:
            try:
                connection, _ = self.sock.accept()
                self.connections.append(connection.recv(100))
                connection.close()
            except OSError:
                pass

    def close(self):
        self.running = False
        self.thread.join()
        self.sock.close()


def all_output(root):
    """Every byte any task wrote back."""
    return b"".join(p.read_bytes() for p in Path(root).rglob("*") if p.is_file()
                    and "result" in p.parts)


@pytest.fixture(scope="module")
def mechanism():
    return sandbox.detect("auto")


def test_the_strongest_mechanism_is_used(mechanism):
    if shutil.which("bwrap"):
        assert mechanism == "bwrap", "bubblewrap is installed but does not work here"
    print(f"sandbox mechanism on this machine: {mechanism}")


@pytest.mark.skipif(not shutil.which("bwrap"), reason="needs bubblewrap (apt-get install bubblewrap)")
def test_a_class_of_attacks_in_bubblewrap(tmp_path):
    teacher = tmp_path / "teacher"                      # the teacher's own files: home, build, secret
    teacher.mkdir()
    secret = teacher / "secret.txt"
    token = os.urandom(16).hex()
    secret.write_text(f"the course secret {token}\n")
    home = Path.home() / f".refconv-test-{token[:8]}"   # a file in the real home folder
    home.write_text(f"ssh key {token}\n")
    work = tmp_path / "work"
    other = make_task(work / "zz-other-student", "ordinary", n=7)
    (other / "submission.ipynb").write_text(f"other student's answer {token}")
    protected = [secret, home, other / "submission.ipynb"]
    before = {p: digest(p) for p in protected}
    server = Server()
    try:
        tasks = {
            "read": make_task(work / "read", "read", paths=[str(p) for p in protected]),
            "listdir": make_task(work / "listdir", "listdir", paths=[str(work)]),
            "write": make_task(work / "write", "write", paths=[str(p) for p in protected] + [
                "/usr/refconv-defaced", "/refconv-defaced", f"{sys.prefix}/refconv-defaced"]),
            "network": make_task(work / "network", "network", port=server.port),
            "memory": make_task(work / "memory", "memory", bytes=16 * SMALL.memory),
            "memory-touch": make_task(work / "memory-touch", "memory-touch",
                                      bytes=2 * SMALL.memory),
            "fork": make_task(work / "fork", "fork", count=200),
            "disk": make_task(work / "disk", "disk", mib=64),
            "sleep": make_task(work / "sleep", "sleep", seconds=120),
            "ordinary": make_task(work / "ordinary", "ordinary", n=10),
        }
        reports = execute_tasks(list(tasks.values()) + [other], command=COMMAND, workers=2,
                                sandbox="bwrap", limits=SMALL, progress=False)
    finally:
        server.close()
        after = {p: digest(p) for p in protected}
        home.unlink()
    rows = {}
    for name, task in tasks.items():
        answer = json.loads((task / "result" / "result.json").read_text())
        rows[name] = (answer["status"], reports[task]["reason"])
    print("\n".join(f"{name:9s} {status:8s} {reason}" for name, (status, reason) in rows.items()))
    assert after == before, "a protected file changed"
    assert server.connections == [], "a submission reached the teacher's loopback"
    assert token.encode() not in all_output(work), "a protected file's content came back"
    assert rows["ordinary"] == ("ok", None)
    assert json.loads((other / "result" / "result.json").read_text())["output"] == 21
    assert rows["read"] == ("error", "a file outside the task folder: not visible in the sandbox")
    assert rows["listdir"] == rows["read"]
    assert rows["write"] == ("error", "read-only outside the task folder")
    assert "done: []" in (tasks["write"] / "result" / "result.json").read_text()
    assert rows["network"] == ("error", "no network in the sandbox")
    assert rows["memory"] == ("error", "memory limit 768 MiB reached")
    # refused (MemoryError) where only the address space bounds it; killed by the control group
    assert rows["memory-touch"][1] == "memory limit 768 MiB reached"
    assert rows["fork"] == ("error", "process limit 40 reached")
    assert rows["disk"][1] == "disk limit 32 MiB reached"      # "dead": no room for its result
    assert rows["sleep"] == ("timeout", "timeout 20 s")
    assert all(reports[t]["mechanism"] == "bwrap" for t in tasks.values())


@pytest.mark.skipif(not shutil.which("bwrap"), reason="needs bubblewrap (apt-get install bubblewrap)")
def test_a_busy_loop_meets_the_cpu_limit(tmp_path):
    task = make_task(tmp_path / "cpu", "cpu")
    limits = Limits(memory=768 << 20, cpu=2, processes=40, disk=32 << 20, wall=300)
    report = execute_tasks([task], command=COMMAND, workers=1, sandbox="bwrap", limits=limits,
                           progress=False)[task]
    assert report["reason"] == "CPU time limit 2 s reached"
    assert report["cpu_seconds"] >= 0.9 * 2
    assert json.loads((task / "result" / "result.json").read_text())["status"] == "dead"


def test_the_fallbacks_still_limit(tmp_path, mechanism):
    """Without bubblewrap: limits (and with unshare, no network) still hold."""
    server, ran = Server(), []
    try:
        for fallback in ("unshare", "rlimits"):
            try:
                sandbox.detect(fallback)
            except RuntimeError:
                continue
            ran.append(fallback)
            root = tmp_path / fallback
            tasks = {"memory": make_task(root / "memory", "memory", bytes=16 * SMALL.memory),
                     "sleep": make_task(root / "sleep", "sleep", seconds=120),
                     "network": make_task(root / "network", "network", port=server.port),
                     "ordinary": make_task(root / "ordinary", "ordinary", n=4)}
            reports = execute_tasks(list(tasks.values()), command=COMMAND, workers=2,
                                    sandbox=fallback, limits=SMALL, progress=False)
            reasons = {name: reports[task]["reason"] for name, task in tasks.items()}
            assert reasons["memory"] == "memory limit 768 MiB reached"
            assert reasons["sleep"] == "timeout 20 s"
            assert reasons["ordinary"] is None
            if fallback == "unshare":
                assert reasons["network"] == "no network in the sandbox"
    finally:
        server.close()
    assert "rlimits" in ran                                 # setrlimit works everywhere
    if "unshare" in ran:
        assert len(server.connections) == 1                 # only the rlimits task got through


def test_zips_carry_no_link_and_land_nowhere_else(tmp_path):
    from refconv.course.inside import pack, unpack
    secret = tmp_path / "secret.txt"
    secret.write_text("teacher only")
    task = tmp_path / "task"
    (task / "result").mkdir(parents=True)
    (task / "result" / "result.json").write_text('{"status": "ok"}')
    (task / "result" / "link").symlink_to(secret)
    data = pack(task, "result")
    assert b"teacher only" not in data
    unpack(data, tmp_path / "out", max_bytes=1000)
    assert sorted(p.name for p in (tmp_path / "out" / "result").iterdir()) == ["result.json"]
    import io
    import zipfile
    for name, size, message in (("../escaped.txt", 10, "would land outside"),
                                ("big.bin", 5000, "more than 1000 bytes")):
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
            archive.writestr(name, b"x" * size)
        with pytest.raises(ValueError, match=message):
            unpack(buffer.getvalue(), tmp_path / "in", max_bytes=1000)
    assert not (tmp_path / "escaped.txt").exists()


def test_a_control_group_counts_the_whole_tree(tmp_path):
    """Where this process may make control groups (root, or a delegated cgroup v2), the
    processes of a task count together: a fork loop stops at the cap."""
    from refconv.course.cgroup import Cgroup
    group = Cgroup.create(processes=8, memory=256 << 20)
    if group is None:
        pytest.skip("no control group can be made here (not root, no delegated cgroup v2)")
    folders = set(group.folders.values())
    try:
        code = ("import os, sys, time\n"
                "for path in sys.argv[1:]:\n    open(path, 'w').write(str(os.getpid()))\n"
                "made = 0\n"
                "for _ in range(30):\n"
                "    try:\n        pid = os.fork()\n    except OSError:\n        break\n"
                "    if pid == 0:\n        time.sleep(2)\n        os._exit(0)\n"
                "    made += 1\n"
                "print(made)\n")
        done = subprocess.run([sys.executable, "-c", code, *group.procs_files()],
                              capture_output=True, text=True, timeout=60)
        assert int(done.stdout) < 8, done.stdout
        assert group.hits() == {"pids"}
        assert group.peak_memory() is None or group.peak_memory() > 0
    finally:
        group.remove()
    assert not any(folder.exists() for folder in folders)


def test_explain_names_the_limit():
    limits = Limits(memory=2 << 30, cpu=60, processes=64, disk=512 << 20, wall=120)
    report = {"killed": None, "cgroup_hits": [], "cpu_seconds": 1.0, "peak_memory": 10 << 20,
              "status": "error"}
    assert explain({**report, "killed": "timeout"}, "", limits) == "timeout 120 s"
    assert explain({**report, "killed": "disk"}, "", limits) == "disk limit 512 MiB reached"
    assert explain(report, "OSError: [Errno 28] No space left on device", limits) \
        == "disk limit 512 MiB reached"
    assert explain(report, "MemoryError", limits) == "memory limit 2 GiB reached"
    assert explain({**report, "cgroup_hits": ["pids"]}, "", limits) == "process limit 64 reached"
    assert explain({**report, "status": "dead", "cpu_seconds": 59.5}, "", limits) \
        == "CPU time limit 60 s reached"
    assert explain({**report, "status": "dead", "peak_memory": 2 << 30}, "", limits) \
        == "memory limit 2 GiB reached"
    assert explain(report, "ConnectionRefusedError: [Errno 111] Connection refused", limits) \
        == "no network in the sandbox"
    assert explain(report, "ZeroDivisionError: division by zero", limits) is None
    assert explain({**report, "status": "ok"}, "", limits) is None


def test_limits_and_mechanisms_are_checked():
    with pytest.raises(ValueError, match="Limits.memory must be a positive number, got -1"):
        Limits(memory=-1)
    with pytest.raises(ValueError, match="sandbox must be 'auto' or one of .* got 'docker'"):
        sandbox.detect("docker")
    assert size_text(2 << 30) == "2 GiB" and size_text(512 << 20) == "512 MiB"


def test_bubblewrap_shows_no_teacher_folder(tmp_path):
    if not shutil.which("bwrap"):
        pytest.skip("needs bubblewrap")
    task = make_task(tmp_path / "look", "listdir", paths=["/"])
    (task / "run.py").write_text(
        "import os, json\nos.makedirs('result')\n"
        "seen = {p: sorted(os.listdir(p)) if os.path.isdir(p) else None for p in "
        "['/', '/root', '/home', '/tmp', os.environ['HOME'], '/work']}\n"
        "json.dump({'status': 'ok', 'seen': seen, 'home': os.environ['HOME'], "
        "'env': sorted(os.environ)}, open('result/result.json', 'w'))\n")
    execute_tasks([task], command=COMMAND, workers=1, sandbox="bwrap", progress=False)
    answer = json.loads((task / "result" / "result.json").read_text())
    seen = answer["seen"]
    assert not any(name.startswith("pytest-") for name in seen["/tmp"])   # not the machine's
    assert seen["/home"] is None
    assert set(seen[answer["home"]]) >= {"run.py", "task.json"}
    assert str(tmp_path.name) not in json.dumps(seen)      # the task's real folder is not there
    allowed = set(sandbox.environment("/x")) | {"PWD", "REFCONV_DISK"}
    assert set(answer["env"]) <= allowed, "the teacher's environment leaked in"
    for entry in seen["/root"] or []:                      # only what Python needs, if anything
        assert entry in {".pyenv", ".local"}, f"/root/{entry} is visible in the sandbox"
