"""A control group per sandboxed task, where this process may make one: a hard cap on the
processes (and threads) and on the memory of the whole task, and a record of whether it hit them.

Resource limits (``setrlimit``) are per process and the process count is not enforced for
root at all; a control group counts the whole tree. Creating one needs root or a delegated
cgroup-v2 subtree; elsewhere ``Cgroup.create`` returns None and the rlimits stand alone.
"""

import itertools
import os
import time
from pathlib import Path

__all__ = ["Cgroup"]

ROOT = Path("/sys/fs/cgroup")
_serial = itertools.count()

# controller -> (limit file, events file and the line that counts hits, peak file), per version
V1 = {"pids": ("pids.max", ("pids.events", "max"), None),
      "memory": ("memory.limit_in_bytes", ("memory.oom_control", "oom_kill"),
                 "memory.max_usage_in_bytes")}
V2 = {"pids": ("pids.max", ("pids.events", "max"), None),
      "memory": ("memory.max", ("memory.events", "oom_kill"), "memory.peak")}


class Cgroup:
    """The folders of one task's control group, one per controller (cgroup v1) or one (v2)."""

    def __init__(self, folders, table):
        self.folders, self.table = folders, table     # controller -> folder

    @classmethod
    def create(cls, processes, memory):
        """A new group capped at ``processes`` tasks and ``memory`` bytes, or None."""
        name = f"refconv-{os.getpid()}-{next(_serial)}"
        if (ROOT / "cgroup.controllers").exists():               # cgroup v2: one tree
            enabled = (ROOT / "cgroup.subtree_control").read_text().split()
            if not {"pids", "memory"} <= set(enabled) or not os.access(ROOT, os.W_OK):
                return None
            folder = ROOT / name
            folders, table = {"pids": folder, "memory": folder}, V2
        elif all(os.access(ROOT / c, os.W_OK) for c in V1):      # cgroup v1: a tree each
            folders, table = {c: ROOT / c / name for c in V1}, V1
        else:
            return None
        group = cls(folders, table)
        try:
            for controller, folder in folders.items():
                folder.mkdir(exist_ok=True)
            group._write("pids", str(processes))
            group._write("memory", str(memory))
        except OSError:
            group.remove()
            return None
        return group

    def _write(self, controller, value):
        (self.folders[controller] / self.table[controller][0]).write_text(value)

    def procs_files(self):
        """The ``cgroup.procs`` files a process writes its pid into to join the group."""
        return sorted({str(folder / "cgroup.procs") for folder in self.folders.values()})

    def hits(self):
        """The controllers whose limit stopped something: a subset of {"pids", "memory"}."""
        hit = set()
        for controller, folder in self.folders.items():
            events, key = self.table[controller][1]
            try:
                for line in (folder / events).read_text().splitlines():
                    word, _, count = line.partition(" ")
                    if word == key and int(count) > 0:
                        hit.add(controller)
            except (OSError, ValueError):
                pass
        return hit

    def peak_memory(self):
        """The group's highest memory use in bytes (None where the kernel does not say)."""
        peak = self.table["memory"][2]
        try:
            return int((self.folders["memory"] / peak).read_text())
        except (OSError, ValueError):
            return None

    def remove(self):
        """Remove the group's folders (they empty once the sandbox's processes are gone)."""
        for folder in set(self.folders.values()):
            for _ in range(50):
                try:
                    folder.rmdir()
                    break
                except FileNotFoundError:
                    break
                except OSError:              # a process of the task is still exiting
                    time.sleep(0.05)
