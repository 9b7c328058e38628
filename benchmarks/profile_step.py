"""Where one fast-path step spends its time: pass by pass, and within a pass, part by part.

    python benchmarks/profile_step.py                       # seed's 2-D LSTM, batch 1, float32
    python benchmarks/profile_step.py --cell gru --case 3d-b1 --dtype float32

Runs the step on one thread (``REFCONV_THREADS=1``) so that the parts add up to
the step, wraps the runner's passes and the functions they call with timers,
and prints each as milliseconds per step and as a share of the step. "rest"
in a pass is its own lines (the element-wise updates written in the pass).
The cases are :mod:`bench_step`'s.
"""

import argparse
import collections
import contextlib
import os
import sys
import time

os.environ["REFCONV_THREADS"] = "1"
os.environ["OPENBLAS_NUM_THREADS"] = "1"  # the products on one thread too: parts add up

import numpy as np  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench_step import CASES, best_of, refconv_case, torch_step  # noqa: E402

from refconv import fast  # noqa: E402
from refconv.fast import gru as fast_gru  # noqa: E402
from refconv.fast import layout as fast_layout  # noqa: E402
from refconv.fast import lstm as fast_lstm  # noqa: E402
import importlib  # noqa: E402

# refconv.fast.runner is also a function (exported by refconv.fast): import the module by name.
fast_runner = importlib.import_module("refconv.fast.runner")

PASSES = {"lstm": ["_conv_pass", "_cell_state", "_output"],
          "gru": ["_conv_pass", "_reset", "_candidate_conv", "_output"]}


class Timers:
    """Exclusive times: a timed call inside another is subtracted from the outer one."""

    def __init__(self, clock=time.perf_counter):
        self.total = collections.defaultdict(float)
        self.stack = []
        self.clock = clock

    def wrap(self, label, fn):
        def timed(*args, **kwargs):
            start = self.clock()
            self.stack.append(0.0)
            try:
                return fn(*args, **kwargs)
            finally:
                elapsed = self.clock() - start
                inner = self.stack.pop()
                self.total[label] += elapsed - inner
                if self.stack:
                    self.stack[-1] += elapsed
        return timed


@contextlib.contextmanager
def patched(obj, name, value):
    old = getattr(obj, name)
    setattr(obj, name, value)
    try:
        yield
    finally:
        setattr(obj, name, old)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cell", choices=["lstm", "gru"], default="lstm")
    parser.add_argument("--case", choices=list(CASES), default="2d-b1")
    parser.add_argument("--dtype", choices=["float32", "float64"], default="float32")
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--chunk-mb", type=float, default=None,
                        help="the chunk plan's chunk_bytes, in MiB (default: the fast path's)")
    parser.add_argument("--no-torch", action="store_true",
                        help="skip PyTorch's step (one thread) for comparison")
    parser.add_argument("--cpu-clock", action="store_true",
                        help="time with the thread's CPU clock (time.thread_time), not the wall "
                             "clock: on a loaded machine, the time this thread was not running "
                             "is left out")
    args = parser.parse_args()
    clock = time.thread_time if args.cpu_clock else time.perf_counter
    cell, x, state = refconv_case(args.cell, CASES[args.case], args.dtype)
    params = cell._checked_params(np.dtype(args.dtype))
    sizes = {} if args.chunk_mb is None else {"chunk_bytes": int(args.chunk_mb * 2**20)}
    run = fast.runner(cell, params, x.shape[0], np.dtype(args.dtype), state, **sizes)
    run.step(x)  # warm-up: buffers touched, scratch grown

    timers = Timers(clock)
    module = fast_lstm if args.cell == "lstm" else fast_gru
    cls = type(run)
    with contextlib.ExitStack() as stack:
        for name in PASSES[args.cell]:
            stack.enter_context(patched(cls, name, timers.wrap("pass " + name,
                                                               getattr(cls, name))))
        for owner, name, label in [
                (fast_layout.Layout, "patches", "  patches (im2col copies)"),
                (fast_layout.Layout, "row_patches", "  patches (rows for shifted sums)"),
                (fast_runner.Runner, "conv", "  products (+ shifted sums)"),
                (fast_runner.Runner, "_stats", "  layer-norm stats"),
                (fast_runner.Runner, "_write_h", "  write h (padded input, output)"),
                (fast_runner.Runner, "_export", "  export"),
                (fast_runner.Runner, "_gate", "  gate: LN + activation"),
                (module, "normalize", "  normalize (c)"),
                (module, "activate", "  activate"),
                (fast_runner.Runner, "_write_x", "write x"),
                (cls, "_combine", "combine stats")]:
            if hasattr(owner, name):
                stack.enter_context(patched(owner, name, timers.wrap(label, getattr(owner, name))))
        start = clock()
        for _ in range(args.steps):
            run.step(x)
        step = (clock() - start) / args.steps
    print(f"{args.cell} {args.case} {args.dtype}, one thread: {step * 1e3:.1f} ms per step")
    accounted = 0.0
    for label, total in timers.total.items():
        ms = total / args.steps * 1e3
        accounted += ms
        print(f"  {label:36} {ms:8.1f} ms {ms / (step * 1e3):6.1%}")
    print(f"  {'unaccounted (loop, barriers)':36} {step * 1e3 - accounted:8.1f} ms")
    if args.no_torch:
        return
    import torch
    torch.set_num_threads(1)
    theirs = best_of(torch_step(args.cell, cell, x, state), args.steps)
    conv = sum(t for label, t in timers.total.items() if "patches" in label or "products" in label)
    conv_ms = conv / args.steps * 1e3
    print(f"PyTorch {torch.__version__}, one thread: {theirs * 1e3:.1f} ms per step; "
          f"refconv / PyTorch {step / theirs:.2f}")
    print(f"  refconv's convolutions alone (patches + products): {conv_ms:.1f} ms = "
          f"{conv_ms / (theirs * 1e3):.2f}x PyTorch's whole step")


if __name__ == "__main__":
    main()
