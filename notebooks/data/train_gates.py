"""Train the small cells of notebook 07 and write their weights to refconv/trained/NAME.npz.

Usage, from the repository root::

    python notebooks/data/train_gates.py                 # every model, seed 0 -> refconv/trained/seed0
    python notebooks/data/train_gates.py --seed 7 --out /tmp/s7   # a seed nobody tried
    REFCONV_TRAINED=/tmp/s7 python notebooks/run.py 07            # notebook 07 on those weights
    python notebooks/data/train_gates.py memory_lstm     # only that one
    python notebooks/data/train_gates.py --steps 5 --out /tmp/w   # a short run elsewhere

Many seeds at once: train each into ``DIR/seedS``; ``REFCONV_TRAINED=DIR`` makes 07 load
them all, and ``REFCONV_TRAINED=DIR python tools/soft_asserts.py
notebooks/src/07_what_gates_learn.py`` lists every one of 07's asserts that a seed breaks
(a notebook stops at the first). 07's claims were held that way to seeds 0-14 and 23.

Each model trains with refconv's own backpropagation through time and Adam
(:func:`refconv.tasks.train`), from the seed, on fresh batches seeded by it. The
same command gives the same bytes on the same machine and NumPy: every random
number is seeded, the .npz members carry a fixed date, and NumPy's BLAS runs on
one thread (a matrix product split over threads may add in another order).
Another machine's BLAS may round differently (1e-12 to 1e-8 relative after
training). The seven models of one seed take a little over a minute of CPU time
(measured with /usr/bin/time on the 2-core machine, seed 7: 71.5 s user for seven
models, one of them a task since replaced by forget_lstm; forget_lstm alone, 600 steps
of the task that replaced it: 14.5 s user; several minutes of wall time while the
machine was shared with other jobs).
"""

import os

# Before NumPy loads: one BLAS thread, for the same bits on every run (and, on two busy
# cores, a faster run than BLAS threads fighting refconv's own thread pool).
os.environ["OPENBLAS_NUM_THREADS"] = "1"
os.environ["OMP_NUM_THREADS"] = "1"

import argparse  # noqa: E402
import pathlib  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402

REPO = pathlib.Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from refconv import tasks  # noqa: E402


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python notebooks/data/train_gates.py",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="*", metavar="NAME",
                        help=f"models to train (default: all of {sorted(tasks.MODELS)})")
    parser.add_argument("--steps", type=int, default=None,
                        help="training steps (default: each model's own count)")
    parser.add_argument("--seed", type=int, default=0, help="the seed (default: 0)")
    parser.add_argument("--out", default=None,
                        help="directory for the .npz files (default: refconv/trained/seedS)")
    args = parser.parse_args(argv)
    unknown = [name for name in args.names if name not in tasks.MODELS]
    if unknown:
        parser.error(f"NAME: expected some of {sorted(tasks.MODELS)}, got {unknown}")
    if args.steps is not None and args.steps < 1:
        parser.error(f"--steps: expected an int >= 1, got {args.steps}")
    if args.seed < 0:
        parser.error(f"--seed: expected an int >= 0, got {args.seed}")
    out = pathlib.Path(args.out or tasks.TRAINED / f"seed{args.seed}")
    out.mkdir(parents=True, exist_ok=True)
    for name in args.names or sorted(tasks.MODELS):
        start = time.perf_counter()
        steps = args.steps or tasks.MODELS[name]["steps"]
        cell, readout, losses = tasks.train(name, steps=steps, seed=args.seed,
                                            log=lambda line: print(line, flush=True))
        path = out / f"{name}.npz"
        tasks.save(path, name, cell, readout, losses, steps, args.seed)
        print(f"{path}: {path.stat().st_size / 1024:.0f} KB, "
              f"{time.perf_counter() - start:.0f} s", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
