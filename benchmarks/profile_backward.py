"""Where the fast path's backpropagation through time spends its time, pass by pass.

    python benchmarks/profile_backward.py                    # seed's 2-D LSTM, batch 1, float64
    python benchmarks/profile_backward.py --cell gru --dtype float32 --steps 4

Runs :func:`refconv.fast.lstm_grad` (or ``gru_grad``) on one thread
(``REFCONV_THREADS=1``, the products too) so that the parts add up, and prints,
as milliseconds per time step and as a share of the whole: the plain forward
(``dynamic_rnn``'s runner, nothing recorded) for scale, then the forward that
records and each backward pass, and within them the functions they call
(exclusive times: a timed call inside another is subtracted from the outer one).
"rest" of a pass is its own element-wise lines. The cases are :mod:`bench_step`'s.
"""

import argparse
import contextlib
import os
import sys
import time

os.environ["REFCONV_THREADS"] = "1"
os.environ["OPENBLAS_NUM_THREADS"] = "1"  # the products on one thread too: parts add up

import numpy as np  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench_step import CASES, refconv_case  # noqa: E402
from profile_step import PASSES, Timers, fast_runner, patched  # noqa: E402

from refconv import fast  # noqa: E402
from refconv.fast import conv_back, conv_chunk, norm_stats  # noqa: E402
from refconv.fast import gru as fast_gru  # noqa: E402
from refconv.fast import layout as fast_layout  # noqa: E402
from refconv.fast import lstm as fast_lstm  # noqa: E402

BACKWARD = {"lstm": (fast_lstm.LSTMBackward, ["_pass_a", "_pass_b", "_pass_c", "_pass_d"]),
            "gru": (fast_gru.GRUBackward, ["_pass_a", "_pass_b", "_pass_c", "_pass_d",
                                           "_pass_c_and_d", "_pass_e"])}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cell", choices=["lstm", "gru"], default="lstm")
    parser.add_argument("--case", choices=list(CASES), default="2d-b1")
    parser.add_argument("--dtype", choices=["float32", "float64"], default="float64")
    parser.add_argument("--steps", type=int, default=3, help="time steps T")
    parser.add_argument("--cpu-clock", action="store_true",
                        help="time with the thread's CPU clock (time.thread_time), not the wall "
                             "clock: on a loaded machine, the time this thread was not running "
                             "is left out")
    args = parser.parse_args()
    clock = time.thread_time if args.cpu_clock else time.perf_counter
    cell, x, state = refconv_case(args.cell, CASES[args.case], args.dtype)
    dtype = np.dtype(args.dtype)
    params = cell._checked_params(dtype)
    rng = np.random.default_rng(1)
    x_bt = np.repeat(x[:, None], args.steps, axis=1)
    x_bt = x_bt + 0.1 * rng.standard_normal(x_bt.shape).astype(dtype)
    d_out = rng.standard_normal((x.shape[0], args.steps, *cell.output_size)).astype(dtype)
    d_state = type(state)(*[rng.standard_normal(s.shape).astype(dtype) for s in state]) \
        if isinstance(state, tuple) else rng.standard_normal(state.shape).astype(dtype)
    grad = fast_lstm.lstm_grad if args.cell == "lstm" else fast_gru.gru_grad

    def plain_forward():
        run = fast.runner(cell, params, x.shape[0], dtype, state)
        for t in range(args.steps):
            run.step(x_bt[:, t])

    plain_forward()  # warm-up
    start = clock()
    plain_forward()
    forward = clock() - start
    grad(cell, params, x_bt, d_out, state, d_state)  # warm-up: threads, scratch, pages

    timers = Timers(clock)
    runner_cls = fast_lstm.LSTMRunner if args.cell == "lstm" else fast_gru.GRURunner
    back_cls, back_passes = BACKWARD[args.cell]
    module = fast_lstm if args.cell == "lstm" else fast_gru
    with contextlib.ExitStack() as stack:
        def wrap(owner, name, label):
            if hasattr(owner, name):
                stack.enter_context(patched(owner, name, timers.wrap(label, getattr(owner, name))))
        for name in PASSES[args.cell]:
            wrap(runner_cls, name, "forward " + name)
        wrap(runner_cls, "_record", "forward _record (new arrays)")
        for name in back_passes:
            wrap(back_cls, name, "backward " + name)
        for owner, name, label in [
                (fast_layout.Layout, "patches", "  patches (im2col copies)"),
                (fast_layout.Layout, "row_patches", "  patches (rows for shifted sums)"),
                (conv_chunk.ChunkConvolution, "__call__", "  forward conv (products, sums)"),
                (conv_back.InputGradient, "__call__", "  input gradient (products, sums)"),
                (module, "_redo_gates", "  redo the gates"),
                (module, "normalized_input", "  layer norm: v_hat"),
                (module, "gradient_sums", "  layer norm: gradient sums"),
                (module, "finish_gradient", "  layer norm: finish gradient"),
                (module, "activate_affine_by_exp", "  activations (exp, affine folded)"),
                (module, "_batch_sum", "  peephole sums"),
                (norm_stats, "chunk_stats", "  layer-norm stats (forward)"),
                (fast_runner.Runner, "_write_x", "  write x (padded input)"),
                (fast_runner.Runner, "_write_h", "  write h (padded input, output)"),
                (fast_runner.Runner, "_gate", "  gate: LN + activation (forward)"),
                (runner_cls, "_combine", "  combine stats (forward)"),
                (runner_cls, "step", "forward step: the rest"),
                (back_cls, "step", "backward step: the rest (x, h into the input)"),
                (back_cls, "__init__", "backward: buffers"),
                (back_cls, "_accumulate", "  add the parameter-gradient parts"),
                (module, "combine_sums", "  combine frame sums (backward)"),
                (fast_layout.Layout, "to_gate_major", "  layout changes (to gate-major)"),
                (fast_layout.Layout, "from_gate_major", "  layout changes (from gate-major)")]:
            wrap(owner, name, label)
        start = clock()
        grad(cell, params, x_bt, d_out, state, d_state)
        total = clock() - start
    steps = args.steps
    print(f"{args.cell} {args.case} {args.dtype}, T = {steps}, one thread: "
          f"forward {forward / steps * 1e3:.1f} ms per step; forward + backward "
          f"{total / steps * 1e3:.1f} ms per step ({total / forward:.2f}x the forward)")
    accounted = 0.0
    for label, spent in sorted(timers.total.items(), key=lambda kv: kv[0].startswith("  ")):
        ms = spent / steps * 1e3
        accounted += ms
        print(f"  {label:36} {ms:8.1f} ms {ms / (forward / steps * 1e3):6.2f}x the forward step")
    print(f"  {'unaccounted (loop, barriers, sums)':36} {total / steps * 1e3 - accounted:8.1f} ms")


if __name__ == "__main__":
    main()
