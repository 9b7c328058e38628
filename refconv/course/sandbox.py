"""Run one grading task (a submission's folder) sandboxed, with limits, and say which limit it hit.

The mechanisms, strongest first (``detect`` picks the first that works on this machine):

- ``bwrap`` (bubblewrap): own user, process, network, IPC and host-name namespaces; a file
  system made of read-only binds of the system folders, this Python and refconv's package,
  and size-capped tmpfs as the working folder, HOME and /tmp: the teacher's home, the
  instructor build, the secret and the other students' folders are not there at all.
- ``unshare``: own network namespace (loopback only) and process tree; the file system
  stays visible and writable as the teacher.
- ``rlimits``: limits only.
- ``none``: nothing (a warning says so).

Every mechanism gets the same limits: ``setrlimit`` on address space, CPU time, processes,
file size and core dumps, a control group (``cgroup.py``) on the task's processes and
memory where this process may make one, and a wall-clock limit enforced from outside.
The task goes in and its ``result/`` comes out as zip bytes (``inside.py``).
"""

import io
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import zipfile
from dataclasses import asdict, dataclass
from pathlib import Path

from .cgroup import Cgroup
from .inside import LOG, RESULT, USAGE

__all__ = ["Limits", "MECHANISMS", "detect", "command_line", "run_task", "explain", "size_text",
           "stop_all"]

MECHANISMS = ("bwrap", "unshare", "rlimits", "none")
ADDRESS_SPACE = 4             # a process's address space, in memory limits, under a control group
SANDBOX = "/sandbox"                                       # bwrap's tmpfs: HOME and cwd
ETC = ("ld.so.cache", "ld.so.conf", "ld.so.conf.d", "localtime", "alternatives", "fonts",
       "passwd", "group", "nsswitch.conf", "mime.types")
SYSTEM = ("/usr", "/bin", "/sbin", "/lib", "/lib64", "/lib32", "/libx32", "/opt")


@dataclass(frozen=True)
class Limits:
    """What one task may use. memory: bytes the task's processes may fill together (a control
    group, where this process may make one; elsewhere the address space of each process);
    cpu: CPU seconds per process; processes: processes and threads; disk: bytes written;
    wall: seconds for the whole task."""
    memory: int = 2 << 30
    cpu: int = 900
    processes: int = 256
    disk: int = 512 << 20
    wall: float = 1800.0

    def __post_init__(self):
        for name, value in asdict(self).items():
            if not isinstance(value, (int, float)) or isinstance(value, bool) or value <= 0:
                raise ValueError(f"Limits.{name} must be a positive number, got {value!r}")


def size_text(n):
    """2147483648 -> '2 GiB', 536870912 -> '512 MiB'."""
    for unit, shift in (("GiB", 30), ("MiB", 20), ("KiB", 10)):
        if n >= 1 << shift:
            return f"{n / (1 << shift):.3g} {unit}"
    return f"{n} B"


# Sets the limits, joins the control group, asks to be killed when its parent (a pool
# thread, a Dask worker) dies, then becomes the rest of its arguments. Run with
# "python -S" outside the sandbox: nothing to import but the standard library.
LIMIT_CODE = """
import ctypes, os, resource, signal, sys
try:
    ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)   # PR_SET_PDEATHSIG
except (OSError, AttributeError):
    pass
as_, cpu, nproc, fsize, n = map(int, sys.argv[1:6])
for path in sys.argv[6:6 + n]:
    with open(path, "w") as f: f.write(str(os.getpid()))
for what, value in ((resource.RLIMIT_AS, as_), (resource.RLIMIT_CPU, cpu),
                    (resource.RLIMIT_NPROC, nproc), (resource.RLIMIT_FSIZE, fsize),
                    (resource.RLIMIT_CORE, 0)):
    resource.setrlimit(what, (value, value))
os.execvp(sys.argv[6 + n], sys.argv[6 + n:])
"""


def _package_dir():
    return Path(__file__).resolve().parents[1]         # .../refconv


def _python_dirs():
    """The folders this Python needs, read-only: its install, its venv, refconv's package."""
    dirs = {Path(sys.base_prefix), Path(sys.prefix), Path(sys.exec_prefix), _package_dir(),
            Path(sys.executable).parent}
    dirs = {d.resolve() for d in dirs if d.exists()}
    system = [Path(s) for s in SYSTEM]
    return sorted(d for d in dirs if not any(s == d or s in d.parents for s in system)
                  and not any(other in d.parents for other in dirs))


def environment(home):
    """The task's whole environment: nothing of the teacher's (tokens, paths) gets in."""
    home = str(home)
    return {"HOME": home, "TMPDIR": f"{home}/.tmp", "LANG": "C.UTF-8",
            "PATH": f"{Path(sys.executable).parent}:/usr/local/bin:/usr/bin:/bin",
            "PYTHONPATH": str(_package_dir().parent), "PYTHONDONTWRITEBYTECODE": "1",
            "JUPYTER_RUNTIME_DIR": f"{home}/.jupyter/runtime",
            "JUPYTER_DATA_DIR": f"{home}/.jupyter/data", "JUPYTER_CONFIG_DIR": f"{home}/.jupyter",
            "IPYTHONDIR": f"{home}/.ipython", "MPLCONFIGDIR": f"{home}/.matplotlib",
            "MPLBACKEND": "Agg", "MALLOC_ARENA_MAX": "2", "OPENBLAS_NUM_THREADS": "1",
            "OMP_NUM_THREADS": "1", "PYDEVD_DISABLE_FILE_VALIDATION": "1"}


def _bwrap_prefix(limits, env):
    argv = [shutil.which("bwrap"), "--unshare-all", "--die-with-parent", "--new-session", "--cap-drop", "ALL",
            "--uid", "65534", "--gid", "65534", "--hostname", "sandbox"]
    for folder in SYSTEM:
        if os.path.islink(folder):
            argv += ["--symlink", os.readlink(folder), folder]
        elif os.path.isdir(folder):
            argv += ["--ro-bind", folder, folder]
    for name in ETC:
        argv += ["--ro-bind-try", f"/etc/{name}", f"/etc/{name}"]
    # the disk limit is shared: 7/8 for the task's folder (and TMPDIR), 1/8 for /tmp
    scratch = max(1 << 20, limits.disk // 8)
    argv += ["--proc", "/proc", "--dev", "/dev",
             "--size", str(limits.disk - scratch), "--tmpfs", SANDBOX,
             "--dir", f"{SANDBOX}/task", "--dir", f"{SANDBOX}/task/.tmp",
             "--size", str(scratch), "--tmpfs", "/tmp"]
    for folder in _python_dirs():      # after /tmp: a Python or refconv under /tmp stays seen
        argv += ["--ro-bind", str(folder), str(folder)]
    argv += ["--remount-ro", "/", "--chdir", f"{SANDBOX}/task", "--clearenv"]
    for key, value in env.items():
        argv += ["--setenv", key, value]
    return argv + ["--"]


def command_line(mechanism, command, limits, workdir, cgroup_files=()):
    """The argv that runs ``command`` sandboxed by ``mechanism`` in ``workdir`` (unused by
    bwrap, whose working folder is its own tmpfs), and the environment to start it with."""
    if mechanism not in MECHANISMS:
        raise ValueError(f"sandbox must be one of {MECHANISMS} or 'auto', got {mechanism!r}")
    home = f"{SANDBOX}/task" if mechanism == "bwrap" else str(workdir)
    env = environment(home)
    env["REFCONV_DISK"] = str(limits.disk)
    inside = [sys.executable, "-m", "refconv.course.inside"]
    if mechanism != "bwrap":
        inside += ["--workdir", home]
    if mechanism == "unshare":
        inside += ["--loopback"]
    inside += ["--", *command]
    if mechanism == "none":
        return inside, env
    # Address space is not memory: PyTorch and TensorFlow together reserve 2 GB of it before
    # they use any. With a control group bounding the memory really used, the address space
    # of each process only backs it up (ADDRESS_SPACE times the limit); without one, it is
    # the only bound there is, and it is the limit itself.
    space = limits.memory * (ADDRESS_SPACE if cgroup_files else 1)
    limit = [sys.executable, "-S", "-c", LIMIT_CODE, str(space), str(int(limits.cpu)),
             str(limits.processes), str(limits.disk), str(len(cgroup_files)), *cgroup_files]
    if mechanism == "bwrap":
        return limit + _bwrap_prefix(limits, env) + inside, env
    if mechanism == "unshare":
        # a user namespace even for root: capabilities only over the new namespaces
        return limit + [shutil.which("unshare"), "--user", "--map-root-user", "--net", "--pid", "--fork", "--kill-child",
                        "--mount-proc", "--"] + inside, env
    return limit + inside, env


_detected = {}


def stop_all(running):
    """Kill the sandboxes whose process ids are in the set ``running`` (``run_task`` keeps
    it): on Ctrl-C, since each is in a session of its own, out of the terminal's reach."""
    for pid in list(running):
        try:
            os.killpg(pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass


def detect(wanted="auto"):
    """The mechanism to use: ``wanted`` if it works here, or (for "auto") the strongest
    that does. Each is tried once by running a task that does nothing."""
    if wanted != "auto" and wanted not in MECHANISMS:
        raise ValueError(f"sandbox must be 'auto' or one of {MECHANISMS}, got {wanted!r}")
    candidates = MECHANISMS if wanted == "auto" else (wanted,)
    for mechanism in candidates:
        if mechanism not in _detected:
            _detected[mechanism] = _works(mechanism)
        if _detected[mechanism]:
            return mechanism
    raise RuntimeError(f"sandbox {wanted!r} does not work on this machine (not installed, or "
                       f"the kernel refuses it user namespaces); try --sandbox auto")


def _works(mechanism):
    if mechanism == "bwrap" and shutil.which("bwrap") is None:
        return False
    if mechanism == "unshare" and shutil.which("unshare") is None:
        return False
    try:
        data, report = run_task(_empty_task(), [sys.executable, "-c", "pass"],
                                Limits(wall=60), mechanism, use_cgroup=False)
    except OSError:
        return False
    return data is not None and report.get("command_exit") == 0


def _empty_task():
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("task.txt", "probe")
    return buffer.getvalue()


def _read(data, name, limit=200_000):
    """The text of ``result/NAME`` in result zip bytes, '' if absent or unreadable."""
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            with archive.open(f"{RESULT}/{name}") as member:
                return member.read(limit).decode("utf-8", "replace")
    except (KeyError, zipfile.BadZipFile, OSError):
        return ""


def _cell_errors(data):
    """The errors the notebook's cells raised ("MemoryError: ..." a line each), if any."""
    try:
        cells = json.loads(_read(data, "executed.ipynb", limit=20 << 20)).get("cells", [])
        return "".join(f"\n{out.get('ename')}: {out.get('evalue')}" for cell in cells
                       for out in cell.get("outputs", []) if out.get("output_type") == "error")
    except (ValueError, AttributeError, TypeError):
        return ""


def run_task(data, command, limits=Limits(), mechanism="bwrap", use_cgroup=True, running=None):
    """Run ``command`` sandboxed in a folder holding the files of zip bytes ``data``.

    Returns ``(result, report)``: ``result`` is the zip bytes of the task's ``result/``
    (None when nothing came back), ``report`` a dict: mechanism, seconds, cpu_seconds,
    peak_memory (bytes), exit (the sandbox's exit status or -signal), killed ("timeout" or
    "disk" when this process stopped it, else None) and reason (``explain``). While it
    runs, the sandbox's process id is in the set ``running`` (if given).
    """
    running = set() if running is None else running
    workdir = Path(tempfile.mkdtemp(prefix="refconv-task-"))
    group = Cgroup.create(limits.processes, limits.memory + limits.disk) if use_cgroup else None
    files = group.procs_files() if group else ()
    argv, env = command_line(mechanism, command, limits, workdir / "task", files)
    chunks, killed, received = [], [], [0]
    start, proc = time.perf_counter(), None
    try:
        proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                stderr=subprocess.DEVNULL, env=env, cwd=workdir,
                                start_new_session=True)
        running.add(proc.pid)

        def stop(why):
            if not killed:
                killed.append(why)
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass

        def feed():
            try:
                proc.stdin.write(data)
                proc.stdin.close()
            except OSError:                # it died before reading: the report says why
                pass

        def drain():
            while chunk := proc.stdout.read(1 << 16):
                received[0] += len(chunk)
                if received[0] > limits.disk:
                    stop("disk")
                    return
                chunks.append(chunk)

        threads = [threading.Thread(target=feed, daemon=True),
                   threading.Thread(target=drain, daemon=True)]
        for thread in threads:
            thread.start()
        timer = threading.Timer(limits.wall, stop, args=("timeout",))
        timer.start()
        _, status, usage = os.wait4(proc.pid, 0)
        timer.cancel()
        proc.returncode = os.waitstatus_to_exitcode(status)
        for thread in threads:
            thread.join(5)
        report = {"mechanism": mechanism, "seconds": round(time.perf_counter() - start, 3),
                  "cpu_seconds": round(usage.ru_utime + usage.ru_stime, 3),
                  "peak_memory": usage.ru_maxrss * 1024, "exit": proc.returncode,
                  "killed": killed[0] if killed else None, "cgroup_hits": []}
        if group:
            report["cgroup_hits"] = sorted(group.hits())
            report["peak_memory"] = max(report["peak_memory"], group.peak_memory() or 0)
    finally:
        if proc is not None:
            running.discard(proc.pid)
        if group:
            group.remove()
        shutil.rmtree(workdir, ignore_errors=True)
    result = b"".join(chunks) if chunks and not killed else None
    if result is not None and not zipfile.is_zipfile(io.BytesIO(result)):
        result = None
    try:
        inside = json.loads(_read(result, USAGE)) if result else {}
        report["cpu_seconds"] = max(report["cpu_seconds"], float(inside["cpu_seconds"]))
        report["peak_memory"] = max(report["peak_memory"], int(inside["peak_memory"]))
        report["command_exit"] = int(inside["exit"])
        report["disk_free"] = int(inside["disk_free"])
    except (ValueError, KeyError, TypeError):
        pass
    answer = _read(result, "result.json") if result else ""
    try:
        status = json.loads(answer).get("status", "") if answer else ""
    except (ValueError, AttributeError):
        status = ""
    report["status"] = status
    text = answer + (_read(result, LOG) + _cell_errors(result) if result else "")
    report["reason"] = explain(report, text, limits)
    return result, report


MISSING = re.compile(r"No such file or directory: '(/[^']+)'")
NETWORK = ("Network is unreachable", "Connection refused", "Temporary failure in name resolution",
           "Name or service not known", "No route to host")


def explain(report, text, limits):
    """The limit a task hit, in words for its row ("memory limit 2 GiB reached"), or None.

    ``report`` is ``run_task``'s (its "status" that of the task's result.json); ``text`` the
    task's result.json and log. Measurements come first, then the errors the operating
    system gives when a limit refuses something.
    """
    status = report.get("status", "")
    memory = f"memory limit {size_text(limits.memory)} reached"
    cpu = f"CPU time limit {limits.cpu:g} s reached"
    processes = f"process limit {limits.processes} reached"
    disk = f"disk limit {size_text(limits.disk)} reached"
    if report.get("killed") == "timeout":
        return f"timeout {limits.wall:g} s"
    if status == "timeout":                          # a cell interrupted by the runner
        match = re.search(r"time limit of (\d+(?:\.\d+)?) s", text)
        return f"timeout {match.group(1)} s" if match else "timeout"
    if report.get("killed") == "disk" or (
            report.get("mechanism") == "bwrap" and report.get("disk_free", 1 << 20) < 1 << 16) \
            or "No space left on device" in text \
            or "File too large" in text or report.get("command_exit") == -signal.SIGXFSZ:
        return disk
    hits = set(report.get("cgroup_hits", ()))
    if "memory" in hits or "MemoryError" in text or "Cannot allocate memory" in text:
        return memory
    if "pids" in hits or "can't start new thread" in text \
            or "[Errno 11] Resource temporarily unavailable" in text:
        return processes
    if report.get("command_exit") == -signal.SIGXCPU or (
            status in ("dead", "error", "") and report.get("cpu_seconds", 0) >= 0.9 * limits.cpu):
        return cpu
    if status == "dead" and report.get("peak_memory", 0) >= 0.9 * limits.memory:
        return memory
    if any(marker in text for marker in NETWORK):
        return "no network in the sandbox"
    if "Read-only file system" in text:
        return "read-only outside the task folder"
    if report.get("mechanism") == "bwrap" and any(
            os.path.exists(path) for path in MISSING.findall(text)[:20]):
        return "a file outside the task folder: not visible in the sandbox"
    return None
