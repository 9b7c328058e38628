"""The seed's test.py at its full sizes, streamed: time and peak memory of each run.

    python benchmarks/seed_workload.py                      # float32, batch 32, T = 100: all four runs
    python benchmarks/seed_workload.py --batch 2 --steps 3  # a quick check of the script
    python benchmarks/seed_workload.py --only gru-3d-bi

The seed's test.py (TensorFlow 1, float32 placeholders, the cells' defaults: layer
norm, peepholes, forget bias 1), each run with ``channels = 3`` and ``filters = 12``:

* ``lstm-2d``:    ConvLSTMCell([640, 480], 12, [3, 3]), dynamic_rnn;
* ``gru-2d``:     ConvGRUCell([640, 480], 12, [3, 3]), dynamic_rnn;
* ``lstm-1d-bi``: ConvLSTMCell([100], 12, [3]), bidirectional_dynamic_rnn (one cell, shared);
* ``gru-3d-bi``:  ConvGRUCell([50, 50, 50], 12, [1, 3, 5]), bidirectional_dynamic_rnn.

Whole, the inputs would be 11.8 GB and the outputs 47 GB, so the runs are streamed
(:func:`refconv.stream_rnn`, :func:`refconv.stream_bidirectional_rnn`): frames are
made one step at a time (seeded noise drifting one pixel per step along the last
axis, so the same seed gives the same bits) and each step's output is reduced to a
checksum and dropped. Each run is a separate process, so each peak memory (the
process's maximum resident set, ``ru_maxrss``, Python and libraries included) is
its own. A progress bar (tqdm, the ``benchmarks`` extra) goes to stderr; the table to stdout.
"""

import argparse
import json
import math
import os
import resource
import subprocess
import sys
import time

import numpy as np
from tqdm import tqdm

RUNS = {
    "lstm-2d": dict(kind="lstm", shape=[640, 480], kernel=[3, 3], bidirectional=False),
    "gru-2d": dict(kind="gru", shape=[640, 480], kernel=[3, 3], bidirectional=False),
    "lstm-1d-bi": dict(kind="lstm", shape=[100], kernel=[3], bidirectional=True),
    "gru-3d-bi": dict(kind="gru", shape=[50, 50, 50], kernel=[1, 3, 5], bidirectional=True),
}
CHANNELS, FILTERS = 3, 12


def conv_flops(run, batch):
    """FLOPs of one step's convolutions: 2 M K N (GRU: two convolutions, 2F and F outputs)."""
    m = batch * math.prod(run["shape"])
    k = math.prod(run["kernel"]) * (CHANNELS + FILTERS)
    n = (4 if run["kind"] == "lstm" else 3) * FILTERS
    return 2 * m * k * n


def run_one(name, batch, steps, dtype, seed):
    """One run in this process; returns a dict of what it measured."""
    import refconv

    run = RUNS[name]
    cls = refconv.ConvLSTMCell if run["kind"] == "lstm" else refconv.ConvGRUCell
    cell = cls(run["shape"], FILTERS, run["kernel"])
    cell.build(CHANNELS, seed=seed)
    base = np.random.default_rng(seed).random((batch, *run["shape"], CHANNELS), dtype=dtype)
    base -= 0.5

    def frame_at(t):  # noise drifting one pixel per step: cheap, seeded, different every step
        return np.roll(base, t, axis=-2)

    directions = 2 if run["bidirectional"] else 1
    progress = tqdm(total=directions * steps, desc=name, unit="step", file=sys.stderr,
                    bar_format="{desc:11} {bar:30} {n_fmt}/{total_fmt} steps, {elapsed} elapsed, "
                               "~{remaining} left")
    sums = {}

    def on_output(direction, t, h):
        # A cheap checksum of every output (a strided sample), and the last one in full.
        sums[direction] = sums.get(direction, 0.0) + float(h[:, ::5].sum(dtype=np.float64))
        progress.update()

    start = time.perf_counter()
    if run["bidirectional"]:
        refconv.stream_bidirectional_rnn(cell, cell, frame_at, steps, on_output)
    else:
        refconv.stream_rnn(cell, (frame_at(t) for t in range(steps)),
                           lambda t, h: on_output("fw", t, h))
    seconds = time.perf_counter() - start
    progress.close()
    flops = conv_flops(run, batch) * steps * directions
    return dict(run=name, seconds=seconds, tflop=flops / 1e12, gflops=flops / seconds / 1e9,
                peak_bytes=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
                checksum=sum(sums.values()))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--dtype", choices=["float32", "float64"], default="float32")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--only", nargs="+", choices=list(RUNS), default=list(RUNS))
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.child:  # one run, its result as JSON on stdout
        result = run_one(args.only[0], args.batch, args.steps, np.dtype(args.dtype), args.seed)
        print(json.dumps(result))
        return

    import refconv.fast
    print(f"seed's test.py workload: batch {args.batch}, T = {args.steps}, {args.dtype}, "
          f"{refconv.fast.threads()} threads, numpy {np.__version__}", flush=True)
    results = []
    start = time.perf_counter()
    for name in args.only:
        command = [sys.executable, os.path.abspath(__file__), "--child", "--only", name,
                   "--batch", str(args.batch), "--steps", str(args.steps),
                   "--dtype", args.dtype, "--seed", str(args.seed)]
        done = subprocess.run(command, stdout=subprocess.PIPE, text=True, check=True)
        results.append(json.loads(done.stdout.strip().splitlines()[-1]))
    total = time.perf_counter() - start

    print(f"{'run':11} {'seconds':>8} {'TFLOP':>7} {'GFLOP/s':>8} {'peak GB':>8}  checksum")
    for r in results:
        print(f"{r['run']:11} {r['seconds']:8.1f} {r['tflop']:7.2f} {r['gflops']:8.1f} "
              f"{r['peak_bytes'] / 1e9:8.2f}  {r['checksum']:.12e}")
    tflop = sum(r["tflop"] for r in results)
    print(f"{'all':11} {total:8.1f} {tflop:7.2f} {tflop * 1e3 / total:8.1f} "
          f"{max(r['peak_bytes'] for r in results) / 1e9:8.2f}  (wall time, processes included)")
    rate = matmul_rate(np.dtype(args.dtype))
    print(f"baseline, this process: one {args.dtype} matrix product of a 640x480 frame's im2col "
          f"shape runs at {rate:.1f} GFLOP/s; the workload's convolutions at that rate would "
          f"take {tflop * 1e3 / rate:.0f} s; the workload took {total / (tflop * 1e3 / rate):.2f}x that")


def matmul_rate(dtype, repeats=3):
    """GFLOP/s of one ``[640 * 480, 9 * 15] @ [9 * 15, 48]`` product (the 2-D LSTM's im2col
    shape for one frame) on this machine's threads: the baseline the workload's time is
    compared to, measured in the same process."""
    rng = np.random.default_rng(1)
    a = rng.standard_normal((640 * 480, 9 * (CHANNELS + FILTERS))).astype(dtype)
    b = rng.standard_normal((9 * (CHANNELS + FILTERS), 4 * FILTERS)).astype(dtype)
    out = a @ b  # warm-up, and the output's pages touched
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        np.matmul(a, b, out=out)
        best = min(best, time.perf_counter() - start)
    return 2 * a.shape[0] * a.shape[1] * b.shape[1] / best / 1e9


if __name__ == "__main__":
    main()
