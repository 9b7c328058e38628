"""Grading a synthetic class with 1 worker and with several: time, throughput, a projection.

    python benchmarks/grade_class.py                          # 24 students, 1 and all workers
    python benchmarks/grade_class.py --students 48 --workers 1 2 --notebook 02

Builds the course (``refconv course build``, a fixed secret) and a class of ``--students``
students handing in ``--notebook``, in turn: right (the instructor's version), wrong (the
student version as handed out: stubs that raise) and broken (a cell that kills the
kernel). Each run grades the whole class from nothing (a fresh GRADES folder), sandboxed
as ``refconv course grade`` does, with ``--workers`` tasks at once: the time, notebooks per
minute, the speed-up over the first worker count, and whether grades.csv is the same
byte for byte. Last, a projection for a course of 300 students and 6 notebooks on a
32-core machine from the measured cost of one notebook per worker (a projection, assuming
the cores scale as measured here; the notebooks of a real course differ in length).

The machine should be quiet: other processes take cores from the workers and the
speed-up shrinks. The load average is printed before and after each run.
"""

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

from refconv.course.build import build
from refconv.course.gradebook import grade_class
from refconv.course.workers import default_workers

KINDS = ("right", "wrong", "broken")


def make_class(folder, built, notebook, students):
    """``students`` folders with ``notebook``: right, wrong, broken in turn."""
    import nbformat
    name = next(p.name for p in (built / "student").glob(f"{notebook}_*.ipynb"))
    for i in range(students):
        kind = KINDS[i % len(KINDS)]
        target = folder / f"student{i:03d}_{kind}"
        target.mkdir(parents=True)
        source = built / ("instructor" if kind == "right" else "student") / name
        nb = nbformat.read(str(source), as_version=4)
        if kind == "broken":      # the kernel dies a few cells in: a crash, an out-of-memory kill
            nb.cells.insert(4, nbformat.v4.new_code_cell("import os\nos._exit(1)"))
        nbformat.write(nb, str(target / name))
    return name


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--students", type=int, default=24)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, default_workers()],
                        metavar="N", help="worker counts to time (default: 1 and all cores)")
    parser.add_argument("--notebook", default="01", help="the course notebook handed in")
    parser.add_argument("--timeout", type=int, default=300, metavar="S")
    parser.add_argument("--sandbox", default="auto")
    args = parser.parse_args(argv)
    if args.students < 1 or any(w < 1 for w in args.workers):
        parser.error("--students and --workers must be at least 1")
    root = Path(tempfile.mkdtemp(prefix="refconv-bench-class-"))
    try:
        built = root / "build"
        build(built, secret="benchmark secret")
        name = make_class(root / "submissions", built, args.notebook, args.students)
        print(f"{args.students} students handing in {name} ({', '.join(KINDS)} in turn); "
              f"{default_workers()} usable cores; sandbox {args.sandbox}")
        print(f"{'workers':>7} {'seconds':>8} {'per min':>8} {'speed-up':>8}  "
              f"{'same grades.csv':>15}  load before/after")
        first, reference = None, None
        for workers in args.workers:
            out = root / f"grades-{workers}"
            load = os.getloadavg()[0]
            start = time.perf_counter()
            grade_class(root / "submissions", out, source=built / "instructor",
                        timeout=args.timeout, progress=False, workers=workers,
                        sandbox=args.sandbox)
            seconds = time.perf_counter() - start
            csv = (out / "grades.csv").read_bytes()
            reference = reference or csv
            first = first or (workers, seconds)
            print(f"{workers:>7} {seconds:>8.1f} {60 * args.students / seconds:>8.2f} "
                  f"{first[1] / seconds:>8.2f}  {str(csv == reference):>15}  "
                  f"{load:.1f}/{os.getloadavg()[0]:.1f}", flush=True)
        per_notebook = first[1] * first[0] / args.students     # worker-seconds per notebook
        course = 300 * 6
        print(f"\nprojection (not a measurement): 300 students x 6 notebooks = {course} "
              f"notebooks at {per_notebook:.1f} worker-seconds each (measured here, "
              f"{args.workers[0]} worker(s), notebook {args.notebook}) on 32 cores: "
              f"{course * per_notebook / 32 / 60:.0f} minutes, if 32 workers scale as "
              f"the cores measured here did")
    finally:
        shutil.rmtree(root, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
