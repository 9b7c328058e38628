"""The mutation check: plant each bug of tools/mutations.toml in a scratch copy, and see a test fail.

Each mutation replaces a short piece of text that must occur exactly once in
one file of refconv/ (or tests/) with a wrong one, one line's worth. For each
mutation this script copies the tree the tests read (refconv/, tests/, notebooks/,
docs/, benchmarks/, tools/, pyproject.toml, README.md...; :data:`COPIED`) into
a fresh temporary folder (the real tree is never edited), applies the
mutation there, and runs::

    python -m pytest -x -q -p no:cacheprovider <the mutation's tests>

in that folder, with ``PYTHONPATH`` pointing at it (so the copy's refconv is the
one imported: checked once, before the mutants run). The mutant is *killed* when
pytest reports a failing test (exit status 1); *survived* when the tests pass.
An exit status other than 0 or 1 (a collection error, a usage error) is an
*error*: the tests did not run, which proves nothing.

It prints a table (mutant, killed?, the first failing test, seconds) and exits
non-zero when any mutant survived or errored, and when any mutation's original
text no longer occurs exactly once in its file: the list cannot rot silently
when the code it patches is rewritten. Such a mutation must be updated (new
text, same bug) or replaced by another, never dropped to make the check pass.

Every module of refconv/ is held: the full check (no ids given) also fails when
a module has no entry, and names it. The modules are read from the tree at run
time, so a module added later is caught the day it lands. The rule: every
``.py`` file under ``refconv/`` needs at least one entry, except

* files under a symbolic link (``refconv/_notebooks`` is a link to
  ``notebooks/``, shipped as package data, not a module of refconv), and
* files that define no function and no class (an ``__init__.py`` that only
  imports and re-exports, ``__main__.py``): they hold no behaviour of their own
  for a one-line bug to break. An ``__init__.py`` that defines a function needs
  entries like any module.

``--coverage`` lists every module with its number of entries (the gaps first)
and exits non-zero when there is a gap.

Usage::

    python tools/mutation_check.py                 # every mutation, cores + 2 at a time
    python tools/mutation_check.py glorot-fan-out  # only these ids
    python tools/mutation_check.py --list          # the list, without running it
    python tools/mutation_check.py --coverage      # each module and its entries; the gaps
    python tools/mutation_check.py --jobs 1 --timeout 300

The tests run on ``sys.executable``: run this script with the Python that has
refconv's test dependencies.
"""

import argparse
import ast
import concurrent.futures
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LIST = Path(__file__).resolve().parent / "mutations.toml"
# The tree as tests see it: refconv/_notebooks is a link to notebooks/ (kept a link, as in
# the repository: a copied folder would turn the notebooks' sources into modules of
# refconv), and the tests read notebooks/, docs/, benchmarks/ and tools/. A copy missing
# any of them fails tests whatever the mutant: a false kill.
COPIED = ["refconv", "tests", "notebooks", "docs", "benchmarks", "tools", "pyproject.toml",
          "README.md", "LICENSE", "CITATION.cff"]
FIELDS = {"id", "file", "original", "mutated", "breaks", "tests"}
IGNORED = shutil.ignore_patterns("__pycache__", ".pytest_cache", ".hypothesis", "*.pyc",
                                 ".ipynb_checkpoints", "_build", "build", "dist", "*.egg-info",
                                 "node_modules")


def load(path=LIST):
    """The mutations of ``path``, each a dict with :data:`FIELDS`; raises on a malformed entry."""
    with open(path, "rb") as f:
        entries = tomllib.load(f).get("mutation", [])
    if not entries:
        raise SystemExit(f"{path}: no [[mutation]] entries")
    seen = set()
    for i, m in enumerate(entries):
        where = f"{path.name}: mutation {i + 1} ({m.get('id', 'no id')})"
        if set(m) != FIELDS:
            raise SystemExit(f"{where}: expected the fields {sorted(FIELDS)}, got {sorted(m)}")
        if m["id"] in seen:
            raise SystemExit(f"{where}: id {m['id']!r} appears twice")
        seen.add(m["id"])
        if m["original"] == m["mutated"]:
            raise SystemExit(f"{where}: 'mutated' equals 'original'")
        if not m["tests"] or not all(t.startswith("tests/") for t in m["tests"]):
            raise SystemExit(f"{where}: tests: expected test files or node ids under tests/")
    return entries


def needs_entries(path):
    """Whether the module at ``path`` defines a function or a class (see the module's rule)."""
    tree = ast.parse(path.read_text(), filename=str(path))
    return any(isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))
               for node in ast.walk(tree))


def modules(root=ROOT):
    """The modules of ``root/refconv`` that need entries, as paths relative to ``root`` (sorted).

    Read from the tree each time: a module that lands later is held too. Folders
    reached through a symbolic link are not walked (``refconv/_notebooks``).
    """
    found = []
    for folder, subfolders, files in os.walk(root / "refconv"):  # os.walk never follows links
        subfolders[:] = sorted(d for d in subfolders if d != "__pycache__")
        for name in sorted(files):
            path = Path(folder) / name
            if name.endswith(".py") and not path.is_symlink() and needs_entries(path):
                found.append(path.relative_to(root).as_posix())
    return sorted(found)


def coverage(mutations, root=ROOT):
    """``{module: number of entries}`` for every module of :func:`modules` (0: a gap)."""
    counts = {module: 0 for module in modules(root)}
    for m in mutations:
        if m["file"] in counts:
            counts[m["file"]] += 1
    return counts


def report_gaps(counts):
    """Print the modules without an entry to stderr; return how many there are."""
    gaps = [module for module, n in counts.items() if n == 0]
    if gaps:
        print(f"mutation_check: {len(gaps)} module(s) of refconv/ have no entry in "
              f"{LIST.name} (each needs one-line bugs its tests kill):", file=sys.stderr)
        for module in gaps:
            print(f"  MISSING {module}", file=sys.stderr)
    return len(gaps)


def occurrences(m, root=ROOT):
    """How many times the mutation's original text occurs in its file (0 if the file is gone)."""
    path = root / m["file"]
    return path.read_text().count(m["original"]) if path.is_file() else 0


def scratch_copy():
    """A temporary folder holding a copy of the tree's :data:`COPIED` parts."""
    folder = Path(tempfile.mkdtemp(prefix="refconv-mutant-"))
    for name in COPIED:
        source = ROOT / name
        if source.is_dir():
            shutil.copytree(source, folder / name, symlinks=True, ignore=IGNORED)
        elif source.is_file():
            shutil.copy2(source, folder / name)
    return folder


def environment(folder):
    env = dict(os.environ, PYTHONPATH=str(folder), PYTHONDONTWRITEBYTECODE="1")
    env.pop("PYTEST_ADDOPTS", None)
    return env


def check_the_copy_is_imported():
    """The scratch copy's refconv must be the one its tests import (not an installed one)."""
    folder = scratch_copy()
    try:
        found = subprocess.run([sys.executable, "-c", "import refconv; print(refconv.__file__)"],
                               cwd=folder, env=environment(folder), capture_output=True,
                               text=True, timeout=120)
        where = Path(found.stdout.strip()).resolve() if found.returncode == 0 else None
        if where is None or folder.resolve() not in where.parents:
            raise SystemExit(f"mutation_check: the scratch copy's tests import refconv from "
                             f"{where or found.stderr.strip()!s}, not from the copy {folder}; "
                             f"mutants would not be tested")
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _pytest(command, folder, timeout):
    """Run ``command`` in ``folder``: ``(exit status or None on timeout, output, wall s, CPU s)``.

    CPU seconds (user + system, of pytest and its threads) are what the run costs on a
    quiet machine; wall seconds grow with whatever else the machine is doing.
    """
    with tempfile.TemporaryFile("w+") as out:
        start = time.perf_counter()
        process = subprocess.Popen(command, cwd=folder, env=environment(folder), stdout=out,
                                   stderr=subprocess.STDOUT, start_new_session=True)
        timer = threading.Timer(timeout, os.killpg, (process.pid, signal.SIGKILL))
        timer.start()
        try:
            _, wait_status, usage = os.wait4(process.pid, 0)
        finally:
            timer.cancel()
        seconds = time.perf_counter() - start
        process.returncode = os.waitstatus_to_exitcode(wait_status)
        out.seek(0)
        output = out.read()
    timed_out = process.returncode == -signal.SIGKILL and seconds >= timeout
    return (None if timed_out else process.returncode, output, seconds,
            usage.ru_utime + usage.ru_stime)


def run(m, timeout):
    """Plant ``m`` in a scratch copy and run its tests:
    ``(status, first failing test, wall seconds, CPU seconds)``."""
    folder = scratch_copy()
    try:
        path = folder / m["file"]
        text = path.read_text()
        if text.count(m["original"]) != 1:
            return "STALE", f"original text occurs {text.count(m['original'])} times", 0.0, 0.0
        path.write_text(text.replace(m["original"], m["mutated"]))
        command = [sys.executable, "-m", "pytest", "-x", "-q", "-p", "no:cacheprovider",
                   "-o", "addopts=", *m["tests"]]
        status, output, seconds, cpu = _pytest(command, folder, timeout)
        if status is None:
            return "ERROR", f"timed out after {timeout:.0f} s", seconds, cpu
        if status == 0:
            return "SURVIVED", "-", seconds, cpu
        if status == 1:
            failed = re.search(r"^(?:FAILED|ERROR) (.+?)(?: - .*)?$", output, re.M)
            return "killed", failed.group(1) if failed else "(a failure)", seconds, cpu
        tail = " ".join(output.strip().splitlines()[-3:])
        return "ERROR", f"pytest exit {status}: {tail[:200]}", seconds, cpu
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("ids", nargs="*", help="run only these mutations (default: all)")
    parser.add_argument("--list", action="store_true", help="print the mutations and exit")
    parser.add_argument("--coverage", action="store_true",
                        help="print each module of refconv/ with its number of entries (gaps "
                             "first) and exit; non-zero when a module has none")
    parser.add_argument("--file", type=Path, default=LIST, help="the mutation list (TOML)")
    # Two more than the cores: a few mutants spend most of their time waiting (a grading
    # timeout, a sandbox starting), and a core must not idle behind them.
    jobs = (os.cpu_count() or 1) + 2
    parser.add_argument("--jobs", type=int, default=jobs,
                        help=f"mutants at a time (default: the cores + 2, here {jobs})")
    parser.add_argument("--timeout", type=float, default=300, help="seconds per mutant")
    args = parser.parse_args(argv)

    mutations = load(args.file)
    if args.coverage:
        counts = coverage(mutations)
        width = max(map(len, counts))
        for module, n in sorted(counts.items(), key=lambda item: (item[1] > 0, item[0])):
            print(f"{module:<{width}} {n:3d}{'  <- no entry' if n == 0 else ''}")
        print(f"{sum(n > 0 for n in counts.values())} of {len(counts)} modules have entries; "
              f"{len(mutations)} entries in all", flush=True)
        return 1 if report_gaps(counts) else 0
    unknown = set(args.ids) - {m["id"] for m in mutations}
    if unknown:
        raise SystemExit(f"mutation_check: no mutation with id {sorted(unknown)}")
    if args.ids:
        mutations = [m for m in mutations if m["id"] in args.ids]
    if args.list:
        for m in mutations:
            print(f"{m['id']:<28} {m['file']:<26} {m['breaks']}")
        return 0

    stale = [(m, occurrences(m)) for m in mutations]
    stale = [(m, n) for m, n in stale if n != 1]
    for m, n in stale:
        print(f"STALE {m['id']}: its original text occurs {n} times in {m['file']} (expected "
              f"once): update the mutation to today's code (same bug), do not drop it",
              file=sys.stderr)
    runnable = [m for m in mutations if all(m is not s for s, _ in stale)]
    # Only the full check judges coverage: a selection of ids is a partial run by intent.
    gaps = 0 if args.ids or args.file != LIST else report_gaps(coverage(mutations))

    check_the_copy_is_imported()
    start = time.perf_counter()
    with concurrent.futures.ThreadPoolExecutor(max(1, args.jobs)) as pool:
        futures = [pool.submit(run, m, args.timeout) for m in runnable]
        results = []
        for m, future in zip(runnable, futures):
            status, test, seconds, cpu = future.result()
            results.append((m, status, test, seconds, cpu))
            print(f"  {status:<8} {seconds:6.1f} s ({cpu:5.1f} s CPU)  {m['id']}",
                  file=sys.stderr, flush=True)
    wall = time.perf_counter() - start

    width = max(len(m["id"]) for m, *_ in results) if results else 10
    print(f"\n| {'mutant':<{width}} | file | breaks | result | first failing test "
          f"| wall s | CPU s |")
    print(f"|{'-' * (width + 2)}|---|---|---|---|---|---|")
    for m, status, test, seconds, cpu in results:
        print(f"| {m['id']:<{width}} | {m['file']} | {m['breaks']} | {status} | {test} "
              f"| {seconds:.1f} | {cpu:.1f} |")
    bad = [r for r in results if r[1] != "killed"]
    cpu = sum(r[4] for r in results)
    print(f"\n{len(results) - len(bad)} of {len(results)} mutants killed in {wall:.0f} s "
          f"({args.jobs} at a time; {cpu:.0f} CPU s in all); {len(stale)} stale, "
          f"{sum(r[1] == 'SURVIVED' for r in results)} survived, "
          f"{sum(r[1] not in ('killed', 'SURVIVED') for r in results)} errors")
    if gaps:
        report_gaps(coverage(mutations))  # again, after the table, where it is read
    if bad or stale or gaps:
        print("mutation_check: FAILED. A survivor is a bug the named tests let through: add or "
              "fix a test that fails with it. A stale entry patches code that changed: update "
              "its text. An error: its tests did not run. A missing module: add one-line bugs "
              "for it.", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
