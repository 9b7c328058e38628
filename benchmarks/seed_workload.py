"""The seed's test.py at its full sizes, streamed: time and peak memory of each run.

    python benchmarks/seed_workload.py                      # float32, batch 32, T = 100: all four runs
    python benchmarks/seed_workload.py --batch 2 --steps 3  # a quick check of the script
    python benchmarks/seed_workload.py --only gru-3d-bi
    python benchmarks/seed_workload.py --torch-steps 0      # without the PyTorch comparison

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

Two ratios, each measured within one run:

* **to PyTorch** (``vs torch``): after its run, each process runs the first
  ``--torch-steps`` steps of the same run (each direction, the same frames, the same
  shapes and batch; the first step a warm-up, not timed) in refconv and in PyTorch's CPU ops (:func:`bench_step.torch_cell`:
  the same equations, channels first, ``torch.no_grad``), the two in turns, best of
  ``--repeats`` each, with the same threads; the ratio of their times, and the largest
  difference of their last outputs (a check that both computed the same thing). The
  workload's ratio is the ratio of the sums over the runs (each run's subset is the same
  fraction of it). Needs ``torch`` (the ``crosscheck`` extra); without it the column says
  so and the rest runs. ``THP_MEM_ALLOC_ENABLE=1`` is set for PyTorch (without it, it pays
  first-touch page faults on every large tensor).
* **to the matrix-product floor**: the workload's convolution FLOPs at the rate of one
  large matrix product of the 2-D LSTM's im2col shape: for the whole runs, the rate
  measured in the parent process after them (their first steps' allocations included);
  for the steps compared with PyTorch, the best rate measured in each process in the
  same turns (``refconv / floor``: the steady state, the workload's hundred steps).

Peak memory (``peak GB``) is refconv's, taken before PyTorch runs in that process.
"""

import argparse
import json
import math
import os
import resource
import subprocess
import sys
import time

os.environ.setdefault("THP_MEM_ALLOC_ENABLE", "1")  # read by torch at import

import numpy as np  # noqa: E402
from tqdm import tqdm  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

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


def make_run(name, batch, dtype, seed):
    """The run's cell (built, seeded) and its ``frame_at(t)``."""
    import refconv

    run = RUNS[name]
    cls = refconv.ConvLSTMCell if run["kind"] == "lstm" else refconv.ConvGRUCell
    cell = cls(run["shape"], FILTERS, run["kernel"])
    cell.build(CHANNELS, seed=seed)
    base = np.random.default_rng(seed).random((batch, *run["shape"], CHANNELS), dtype=dtype)
    base -= 0.5

    def frame_at(t):  # noise drifting one pixel per step: cheap, seeded, different every step
        return np.roll(base, t, axis=-2)
    return cell, frame_at


def run_one(name, batch, steps, dtype, seed, torch_steps=0, repeats=2):
    """One run in this process, then (``torch_steps`` > 0) its first steps against PyTorch;
    returns a dict of what it measured."""
    import refconv

    run = RUNS[name]
    cell, frame_at = make_run(name, batch, dtype, seed)

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
    result = dict(run=name, seconds=seconds, tflop=flops / 1e12, gflops=flops / seconds / 1e9,
                  peak_bytes=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
                  checksum=sum(sums.values()))
    if torch_steps > 0:
        subset = min(torch_steps, steps)
        result.update(against_torch(name, cell, frame_at, subset, repeats))
        if "refconv_s" in result:  # the same steps at the floor's rate, measured in the turns
            directions = 2 if run["bidirectional"] else 1
            flops = conv_flops(run, batch) * (subset - 1) * directions
            result["floor_s"] = flops / (result.pop("rate") * 1e9)
    return result


def against_torch(name, cell, frame_at, steps, repeats):
    """refconv and PyTorch on the run's first ``steps`` steps (each direction), in turns:
    ``{"refconv_s", "torch_s", "max_diff", "rate"}`` (``rate``: :func:`matmul_rate`, the
    best of the turns, measured in each), or ``{"torch_missing": why}``.

    The times are of steps 2 to ``steps`` of each direction (a clock read as each step's
    output is handed on): the first step, where refconv builds its runner and PyTorch
    first allocates, is a warm-up for both, as it is a hundredth of a whole run."""
    import refconv
    from refconv import fast

    try:
        import torch
    except ImportError as error:
        return {"torch_missing": f"{error}; pip install torch (the crosscheck extra)"}
    from bench_step import torch_cell

    torch.set_num_threads(fast.threads())
    run = RUNS[name]
    frames = [frame_at(t) for t in range(steps)]
    step, to_torch = torch_cell(run["kind"], cell, frames[0].dtype)
    frames_t = [to_torch(x) for x in frames]
    order = {"fw": range(steps), "bw": range(steps - 1, -1, -1)}
    directions = ["fw", "bw"] if run["bidirectional"] else ["fw"]
    last = {}

    def timed(stamps):
        """The time from each direction's first output to its last."""
        return sum(times[-1] - times[0] for times in stamps.values())

    def ours():
        stamps = {direction: [] for direction in directions}

        def keep(direction, t, h):
            stamps[direction].append(time.perf_counter())
            if t == steps - 1 and direction == "fw":
                last["refconv"] = h.copy()
        if run["bidirectional"]:
            refconv.stream_bidirectional_rnn(cell, cell, frames.__getitem__, steps, keep)
        else:
            refconv.stream_rnn(cell, frames, lambda t, h: keep("fw", t, h))
        return timed(stamps)

    def theirs():
        stamps = {direction: [] for direction in directions}
        zeros = torch.zeros((frames_t[0].shape[0], FILTERS, *run["shape"]),
                            dtype=frames_t[0].dtype)
        for direction in directions:
            state = (zeros, zeros) if run["kind"] == "lstm" else zeros
            for t in order[direction]:
                state = step(frames_t[t], state)
                stamps[direction].append(time.perf_counter())
                if t == steps - 1 and direction == "fw":
                    h = state[1] if run["kind"] == "lstm" else state
                    last["torch"] = np.moveaxis(h.numpy(), 1, -1)
        return timed(stamps)

    best = {"refconv_s": float("inf"), "torch_s": float("inf"), "rate": 0.0}
    for _ in range(repeats):  # in turns, so that the machine's changing speed falls on all
        for key, fn in (("refconv_s", ours), ("torch_s", theirs)):
            best[key] = min(best[key], fn())
        best["rate"] = max(best["rate"], matmul_rate(frames[0].dtype, repeats=2))
    best["max_diff"] = float(np.max(np.abs(last["refconv"] - last["torch"])))
    return best


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--dtype", choices=["float32", "float64"], default="float32")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--only", nargs="+", choices=list(RUNS), default=list(RUNS))
    parser.add_argument("--torch-steps", type=int, default=3,
                        help="steps of each run (each direction) also run in PyTorch, "
                             "for the ratio to it (the first a warm-up, untimed); 0: none")
    parser.add_argument("--repeats", type=int, default=2,
                        help="turns of refconv and PyTorch on those steps (best of each)")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.torch_steps and min(args.torch_steps, args.steps) < 2:
        parser.error(f"--torch-steps: expected 0 or at least 2 (the first step is a warm-up, "
                     f"untimed) with --steps at least 2, got --torch-steps {args.torch_steps} "
                     f"--steps {args.steps}")

    if args.child:  # one run, its result as JSON on stdout
        result = run_one(args.only[0], args.batch, args.steps, np.dtype(args.dtype), args.seed,
                         args.torch_steps, args.repeats)
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
                   "--dtype", args.dtype, "--seed", str(args.seed),
                   "--torch-steps", str(args.torch_steps), "--repeats", str(args.repeats)]
        done = subprocess.run(command, stdout=subprocess.PIPE, text=True, check=True)
        results.append(json.loads(done.stdout.strip().splitlines()[-1]))
    total = time.perf_counter() - start

    print(f"{'run':11} {'seconds':>8} {'TFLOP':>7} {'GFLOP/s':>8} {'peak GB':>8} "
          f"{'vs torch':>8} {'max|diff|':>9}  checksum")
    for r in results:
        print(f"{r['run']:11} {r['seconds']:8.1f} {r['tflop']:7.2f} {r['gflops']:8.1f} "
              f"{r['peak_bytes'] / 1e9:8.2f} {torch_columns(r)}  {r['checksum']:.12e}")
    tflop = sum(r["tflop"] for r in results)
    peak = max(r["peak_bytes"] for r in results)
    seconds = sum(r["seconds"] for r in results)
    print(f"{'all':11} {seconds:8.1f} {tflop:7.2f} {tflop * 1e3 / seconds:8.1f} "
          f"{peak / 1e9:8.2f}  (the runs' own times; {total:.1f} s wall time, processes and "
          f"PyTorch included)")
    rate = matmul_rate(np.dtype(args.dtype), repeats=10)  # best of 10: its first calls run slow
    floor = tflop * 1e3 / rate
    print(f"baseline, this process: one {args.dtype} matrix product of a 640x480 frame's im2col "
          f"shape runs at {rate:.1f} GFLOP/s; the workload's convolutions at that rate would "
          f"take {floor:.1f} s; the workload took {seconds / floor:.2f}x that")
    compared = [r for r in results if "torch_s" in r]
    if compared:
        ours, theirs = sum(r["refconv_s"] for r in compared), sum(r["torch_s"] for r in compared)
        runs = ", ".join(r["run"] for r in compared)
        at_floor = sum(r["floor_s"] for r in compared)
        print(f"against PyTorch, steps 2-{min(args.torch_steps, args.steps)} of each run ({runs}), "
              f"same process, best of {args.repeats}: refconv {ours:.1f} s, torch {theirs:.1f} s, "
              f"refconv / torch {ours / theirs:.2f} (goal <= 1.0)")
        print(f"the same steps against the matrix-product floor measured in those turns: "
              f"{at_floor:.1f} s at its rate, refconv / floor {ours / at_floor:.2f} (goal <= 1.6), "
              f"torch / floor {theirs / at_floor:.2f}")
    else:
        why = next((r["torch_missing"] for r in results if "torch_missing" in r), "--torch-steps 0")
        print(f"against PyTorch: not measured ({why})")
    print(f"workload / matrix-product floor {seconds / floor:.2f} (whole runs, their first "
          f"steps' allocations included); "
          f"peak memory {peak / 1e9:.2f} GB (goal < 4)")


def torch_columns(r):
    """The ``vs torch`` and ``max|diff|`` columns of one run."""
    if "torch_s" not in r:
        return f"{'-':>8} {'-':>9}"
    return f"{r['refconv_s'] / r['torch_s']:8.2f} {r['max_diff']:9.1e}"


def matmul_rate(dtype, repeats=3):
    """GFLOP/s of one ``[640 * 480, 9 * 15] @ [9 * 15, 48]`` product (the 2-D LSTM's im2col
    shape for one frame) on NumPy's BLAS threads (all the cores: the fast path puts the
    count back after each call, see refconv.fast.pool): the baseline the workload's time is
    compared to, measured in the same process. Before that fix, a process that had run
    refconv measured it on one thread, at half the rate."""
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
