"""The launcher that runs inside a grading sandbox, and the zip format a task travels in.

A task folder travels as zip bytes: on the launcher's standard input into the sandbox, and
its ``result/`` folder back on the launcher's standard output. Nothing of the teacher's file
system needs to be writable (or even visible) inside, and a task sent to a Dask worker on
another machine travels the same way. Standard library only: it runs before anything else
inside the sandbox.

Run as ``python -m refconv.course.inside [--loopback] [--workdir DIR] -- COMMAND...``: unpack
standard input into DIR (default: the current folder), run COMMAND there (its output goes
to ``sandbox-log.txt``, never to the zip stream), and write ``result/`` zipped to standard
output, with the log's end as ``result/sandbox-log.txt`` and the command's exit status, CPU
time and peak memory as ``result/sandbox-usage.json`` (measured inside: a report, not a grade).
"""

import io
import json
import os
import resource
import subprocess
import sys
import zipfile
from pathlib import Path

__all__ = ["pack", "unpack", "main", "RESULT", "LOG", "USAGE"]

RESULT = "result"
LOG = "sandbox-log.txt"
USAGE = "sandbox-usage.json"
LOG_TAIL = 20_000          # characters of the command's own output kept with the result


def pack(folder, under=None, extra=None):
    """Zip bytes of every plain file below ``folder`` (or below ``folder/under``), and of
    ``extra`` ({name: bytes}, replacing files of the same name).

    Paths inside the zip are relative to ``folder``; links and special files are left out,
    so a submission cannot smuggle a link to a teacher's file back out.
    """
    extra = extra or {}
    folder = Path(folder)
    top = folder / under if under else folder
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for path in sorted(top.rglob("*")) if top.is_dir() else []:
            name = path.relative_to(folder).as_posix()
            if path.is_file() and not path.is_symlink() and name not in extra:
                archive.write(path, name)
        for name, data in extra.items():
            archive.writestr(name, data)
    return buffer.getvalue()


def unpack(data, folder, max_bytes):
    """Write the files of zip bytes ``data`` below ``folder``: the bytes written.

    Refuses (ValueError) a name that leaves ``folder`` and stops (ValueError) once more than
    ``max_bytes`` would be written, whatever sizes the zip's headers claim: the bytes may
    come from a submission.
    """
    folder = Path(folder).resolve()
    written = 0
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        for info in archive.infolist():
            target = (folder / info.filename).resolve()
            if folder not in target.parents:
                raise ValueError(f"zip entry {info.filename!r} would land outside {folder}")
            if info.is_dir():
                target.mkdir(parents=True, exist_ok=True)
                continue
            target.parent.mkdir(parents=True, exist_ok=True)
            with archive.open(info) as source, open(target, "wb") as sink:
                while chunk := source.read(1 << 16):
                    written += len(chunk)
                    if written > max_bytes:
                        raise ValueError(f"the zip holds more than {max_bytes} bytes")
                    sink.write(chunk)
    return written


def loopback_up():
    """Bring up ``lo`` in a fresh network namespace (``unshare --net`` leaves it down).

    A Jupyter kernel talks to its client over 127.0.0.1, so the namespace needs its own
    loopback; nothing else is reachable from it.
    """
    import fcntl
    import socket
    import struct
    SIOCGIFFLAGS, SIOCSIFFLAGS, IFF_UP = 0x8913, 0x8914, 0x1
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        request = struct.pack("16sH14x", b"lo", 0)
        flags = struct.unpack("16sH14x", fcntl.ioctl(sock, SIOCGIFFLAGS, request))[1]
        fcntl.ioctl(sock, SIOCSIFFLAGS, struct.pack("16sH14x", b"lo", flags | IFF_UP))


def main(argv=None):
    argv = list(sys.argv[1:] if argv is None else argv)
    if "--" not in argv:
        print("usage: python -m refconv.course.inside [--loopback] [--workdir DIR] "
              "-- COMMAND...", file=sys.stderr)
        return 2
    split = argv.index("--")
    options, command = argv[:split], argv[split + 1:]
    workdir = Path(options[options.index("--workdir") + 1]) if "--workdir" in options else Path()
    if "--loopback" in options:
        loopback_up()
    stream = os.fdopen(os.dup(1), "wb")      # the zip goes here; fd 1 itself goes to the log
    workdir.mkdir(parents=True, exist_ok=True)
    unpack(sys.stdin.buffer.read(), workdir, max_bytes=int(os.environ.get("REFCONV_DISK", 1 << 40)))
    log_path = workdir / LOG
    with open(log_path, "wb") as log, open(os.devnull, "rb") as nothing:
        os.dup2(log.fileno(), 1)
        os.dup2(log.fileno(), 2)
        code = subprocess.call(command, cwd=workdir, stdin=nothing, stdout=log, stderr=log)
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    free = os.statvfs(workdir)
    tail = log_path.read_bytes()[-LOG_TAIL:] if log_path.is_file() else b""
    # kept in memory, not written: on a full disk they still go back
    extra = {f"{RESULT}/{LOG}": tail + f"\n[command exit status {code}]\n".encode(),
             f"{RESULT}/{USAGE}": json.dumps({
                 "exit": code, "cpu_seconds": round(usage.ru_utime + usage.ru_stime, 3),
                 "peak_memory": usage.ru_maxrss * 1024,
                 "disk_free": free.f_bavail * free.f_frsize}).encode()}
    stream.write(pack(workdir, RESULT, extra))
    stream.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
