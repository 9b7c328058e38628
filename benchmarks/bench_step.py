"""One forward step of the seed's cells, refconv against PyTorch on the CPU, in one process.

    python benchmarks/bench_step.py                    # every case, float64 and float32
    python benchmarks/bench_step.py --cases 2d-b1 --dtypes float32 --repeats 5

Needs ``torch==2.13.0`` (the ``crosscheck`` extra). ``THP_MEM_ALLOC_ENABLE=1`` is
set before torch is imported (without it PyTorch pays first-touch page faults on
every large tensor and runs about 2x slower here), and both libraries get the
same threads (``--threads``, default 2: OpenBLAS for NumPy, intra-op for torch).

The cells are the seed's defaults: ConvLSTM with layer norm and peepholes (and
the ConvGRU, with layer norm, for ``--cells gru``); the PyTorch step computes the
same equations with torch ops (``conv2d``/``conv3d`` of ``cat([x, h])``, layer
norm over every non-batch axis, peepholes), so both do the same arithmetic.

Columns, each the best of ``--repeats`` runs after a warm-up (refconv's step and torch's
interleaved, so that the machine's changing speed falls on both):

* ``refconv`` and ``torch``: one step inside a sequence, milliseconds (refconv: a step of
  the fast path as ``dynamic_rnn`` runs it, buffers already allocated; torch: the step
  function on tensors already in its layout); ``ratio`` = refconv / torch
  (targets: float64 <= 0.8, float32 <= 1.2);
* ``call``: a one-off ``cell(x, state)`` (checks, buffers, layout changes included);
* ``GFLOP/s``: the step's convolution FLOPs (``2 M K N`` with ``M = B * pixels``,
  ``K = prod(kernel) * (C_in + F)``, ``N`` = 4F for the LSTM, 3F for the GRU) over
  refconv's step time;
* ``conv/mm``: one NumPy matrix product ``[M, K] @ [K, N]`` of the same shape, over the
  time of refconv's convolution as the step does it (patches and products of every
  chunk, on the step's threads): at least 0.85 is the target;
* ``step/mm``: refconv's step in units of that matrix product;
* ``peak MB``: memory allocated by one ``cell(x, state)`` beyond its inputs, state and
  parameters (tracemalloc's peak), and the same in state-sized arrays (``[B, *S, F]``).
"""

import argparse
import math
import os
import time
import tracemalloc

os.environ.setdefault("THP_MEM_ALLOC_ENABLE", "1")

import numpy as np  # noqa: E402

import refconv  # noqa: E402
from refconv import fast  # noqa: E402

CASES = {
    "2d-b1": dict(shape=(640, 480), kernel=(3, 3), batch=1),
    "2d-b4": dict(shape=(640, 480), kernel=(3, 3), batch=4),
    "3d-b1": dict(shape=(50, 50, 50), kernel=(1, 3, 5), batch=1),
    "3d-b4": dict(shape=(50, 50, 50), kernel=(1, 3, 5), batch=4),
}
CHANNELS, FILTERS = 3, 12


def best_of(fn, repeats):
    fn()  # warm-up: first-touch pages, thread pools, caches
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def best_of_interleaved(fns, repeats, inner=2):
    """The best time of each of ``fns``, run in turns: each turn runs each fn once untimed
    (a warm-up: its threads awake, its data back in cache) and then ``inner`` times timed,
    back to back as a step inside a sequence runs. The turns interleave the fns
    (a, b, a, b, ...) ``repeats`` times, so that a change in the machine's speed falls on
    every fn alike. Without the warm-up, refconv's 60 ms steps came out slower than a
    one-off call of the same cell (the ``call`` column), which does more: the step had
    started cold, right after the other library's (its threads and data in the cores
    and caches)."""
    best = [float("inf")] * len(fns)
    for _ in range(repeats):
        for k, fn in enumerate(fns):
            fn()
            for _ in range(inner):
                start = time.perf_counter()
                fn()
                best[k] = min(best[k], time.perf_counter() - start)
    return best


def set_threads(n):
    """The same number of threads for OpenBLAS (NumPy) and for torch."""
    try:
        from threadpoolctl import threadpool_limits
        threadpool_limits(n)
    except ImportError:  # OpenBLAS reads the variable only at import: set it before running
        if os.environ.get("OPENBLAS_NUM_THREADS") not in (None, str(n)):
            print(f"warning: OPENBLAS_NUM_THREADS={os.environ['OPENBLAS_NUM_THREADS']}, "
                  f"not {n}")
    import torch
    torch.set_num_threads(n)


def refconv_case(kind, case, dtype, seed=0):
    shape, kernel, batch = case["shape"], case["kernel"], case["batch"]
    cls = refconv.ConvLSTMCell if kind == "lstm" else refconv.ConvGRUCell
    cell = cls(list(shape), FILTERS, list(kernel))
    cell.build(CHANNELS, seed=seed)
    rng = np.random.default_rng(seed)
    params = {name: (value + 0.1 * rng.standard_normal(value.shape)).astype(dtype)
              for name, value in cell.params.items()}
    cell.params = params
    x = rng.standard_normal((batch, *shape, CHANNELS)).astype(dtype)
    h = (0.5 * rng.standard_normal((batch, *shape, FILTERS))).astype(dtype)
    if kind == "lstm":
        c = (0.5 * rng.standard_normal((batch, *shape, FILTERS))).astype(dtype)
        state = refconv.LSTMStateTuple(c, h)
    else:
        state = h
    return cell, x, state


def torch_cell(kind, cell, dtype=None):
    """The cell's step in PyTorch (channels first, as torch's convolutions want).

    Returns ``(step, to_torch)``: ``step(x, state) -> state`` on tensors (LSTM state
    ``(c, h)``, GRU ``h``; the output is ``h``), and ``to_torch(a)``, a channels-last
    NumPy array as a channels-first tensor; the parameters in ``dtype`` (None: their own).
    Needs torch (the ``crosscheck`` extra)."""
    import torch
    import torch.nn.functional as fn

    n = len(cell.shape)
    conv = (fn.conv1d, fn.conv2d, fn.conv3d)[n - 1]
    p = {name: torch.from_numpy(np.ascontiguousarray(v, dtype)) for name, v in cell.params.items()}
    to_torch = lambda a: torch.from_numpy(np.ascontiguousarray(np.moveaxis(a, -1, 1)))  # noqa: E731
    # A kernel [*k, C_in, C_out] is torch's weight [C_out, C_in, *k]; SAME padding per axis.
    weight = lambda k: k.permute(n + 1, n, *range(n)).contiguous()  # noqa: E731
    pads = tuple((k - 1) // 2 for k in cell.kernel)
    assert all(k % 2 == 1 for k in cell.kernel), "odd kernels only (symmetric padding)"
    peep = {name: p[name].permute(n, *range(n)).contiguous()
            for name in ("W_ci", "W_cf", "W_co") if name in p}

    def ln(v, name):
        out = fn.layer_norm(v, v.shape[1:], eps=cell.norm_epsilon)
        view = (-1,) + (1,) * n
        return out * p[name + "/gamma"].view(view) + p[name + "/beta"].view(view)

    if kind == "lstm":
        w = weight(p["kernel"])

        def step(xt, state):
            c0, h0 = state
            with torch.no_grad():
                y = conv(torch.cat([xt, h0], 1), w, padding=pads)
                z, z_i, z_f, z_o = torch.chunk(y, 4, 1)
                z_i = z_i + peep["W_ci"] * c0
                z_f = z_f + peep["W_cf"] * c0
                z, z_i, z_f = ln(z, "z"), ln(z_i, "z_i"), ln(z_f, "z_f")
                z_f = torch.sigmoid(z_f + cell.forget_bias)
                z_i = torch.sigmoid(z_i)
                c = c0 * z_f + z_i * torch.tanh(z)
                z_o = z_o + peep["W_co"] * c
                z_o, c = ln(z_o, "z_o"), ln(c, "c")
                h = torch.sigmoid(z_o) * torch.tanh(c)
                return c, h
        return step, to_torch

    w_gates, w_cand = weight(p["gates/kernel"]), weight(p["candidate/kernel"])

    def step(xt, h0):
        with torch.no_grad():
            y = conv(torch.cat([xt, h0], 1), w_gates, padding=pads)
            r, u = torch.chunk(y, 2, 1)
            r, u = torch.sigmoid(ln(r, "r")), torch.sigmoid(ln(u, "u"))
            y = conv(torch.cat([xt, r * h0], 1), w_cand, padding=pads)
            cand = torch.tanh(ln(y, "candidate"))
            return u * h0 + (1 - u) * cand
    return step, to_torch


def torch_step(kind, cell, x, state):
    """One step of :func:`torch_cell` on tensors already in its layout: a function of nothing."""
    step, to_torch = torch_cell(kind, cell)
    xt = to_torch(x)
    state_t = tuple(to_torch(s) for s in state) if kind == "lstm" else to_torch(state)
    return lambda: step(xt, state_t)


def fast_conv(run):
    """The step's convolution(s) alone, as the fast path does them: patches and products per chunk."""
    for group in run.layout.groups:
        run.in_parallel(lambda i, chunk: run.conv(run.conv_xh, run.xh, chunk, run.y_of(i, chunk)),
                        group)
        if isinstance(run, fast.GRURunner):
            run.in_parallel(lambda i, chunk: run.conv(run.conv_candidate, run.xrh, chunk,
                                                      run.candidate_of(i, chunk)), group)


def conv_shapes(kind, cell, batch):
    m = batch * math.prod(cell.shape)
    k = math.prod(cell.kernel) * (CHANNELS + FILTERS)
    n = (4 if kind == "lstm" else 3) * FILTERS
    return m, k, n


def peak_of_step(cell, x, state):
    tracemalloc.start()
    tracemalloc.reset_peak()
    out = cell(x, state)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    del out
    return peak


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", nargs="+", choices=list(CASES), default=list(CASES))
    parser.add_argument("--cells", nargs="+", choices=["lstm", "gru"], default=["lstm"])
    parser.add_argument("--dtypes", nargs="+", choices=["float64", "float32"],
                        default=["float64", "float32"])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    set_threads(args.threads)
    import torch

    print(f"numpy {np.__version__}, torch {torch.__version__}, {args.threads} threads, "
          f"THP_MEM_ALLOC_ENABLE={os.environ.get('THP_MEM_ALLOC_ENABLE')}")
    header = (f"{'cell':5} {'case':6} {'dtype':8} {'refconv ms':>10} {'torch ms':>9} "
              f"{'ratio':>6} {'target':>6} {'call ms':>8} {'GFLOP/s':>8} {'conv/mm':>8} "
              f"{'step/mm':>8} "
              f"{'peak MB':>8} {'(states)':>8}")
    print(header)
    print("-" * len(header))
    for kind in args.cells:
        for name in args.cases:
            for dtype in args.dtypes:
                cell, x, state = refconv_case(kind, CASES[name], dtype)
                params = cell._checked_params(np.dtype(dtype))
                run = fast.runner(cell, params, x.shape[0], np.dtype(dtype), state)
                ours, theirs = best_of_interleaved([lambda: run.step(x),
                                                    torch_step(kind, cell, x, state)],
                                                   args.repeats)
                call = best_of(lambda: cell(x, state), args.repeats)
                m, k, n = conv_shapes(kind, cell, x.shape[0])
                rng = np.random.default_rng(1)
                a = rng.standard_normal((m, k)).astype(dtype)
                b = rng.standard_normal((k, n)).astype(dtype)
                matmul = best_of(lambda: a @ b, args.repeats)
                del a, b
                conv = best_of(lambda: fast_conv(run), args.repeats)
                peak = peak_of_step(cell, x, state)
                state_bytes = x.shape[0] * math.prod(cell.shape) * FILTERS * x.itemsize
                target = 0.8 if dtype == "float64" else 1.2
                ratio = ours / theirs
                print(f"{kind:5} {name:6} {dtype:8} {ours * 1e3:10.1f} {theirs * 1e3:9.1f} "
                      f"{ratio:6.2f} {'ok' if ratio <= target else 'MISS':>6} {call * 1e3:8.1f} "
                      f"{2 * m * k * n / ours / 1e9:8.1f} {matmul / conv:8.2f} "
                      f"{ours / matmul:8.2f} {peak / 1e6:8.0f} {peak / state_bytes:8.1f}",
                      flush=True)


if __name__ == "__main__":
    main()
