"""Three ways to compute one chunk's convolution, timed on one thread: why the fast path
does what it does (:mod:`refconv.fast.conv_chunk`).

    python benchmarks/explore_chunk_convolution.py

For the first chunk of the seed's 2-D (640x480, 3x3) and 3-D (50x50x50, 1x3x5)
cells, 3 + 12 input channels, N = 12, 24, 48 output rows (the GRU's candidate,
the GRU's gates, the LSTM), float32 and float64:

* ``im2col``: the patch matrix ``[K, n]`` (copies in runs of one image row), one
  product ``[N, K] @ [K, n]``: what the fast path does for N > ``THIN_ROWS``;
* ``long runs``: the convolution at every position of the *padded* grid, so
  that each patch row is one contiguous slice of the padded channel (one long
  copy), the product over ``n_ext`` columns (12% more for the 3-D cell), then
  the real positions copied out; tried and not adopted: within -14% to +18% of
  im2col over these cases, no consistent gain, and behind the shifted sums
  wherever the product is thin;
* ``shifted sums``: the last kernel axis in the product's rows
  (``[k_last * N, K / k_last]``), patch rows of whole padded image rows, then
  ``k_last`` shifted sums: what the fast path does for N <= ``THIN_ROWS``.

Each is checked against the im2col result before it is timed. Times are the best
of ``--repeats``, in milliseconds per chunk.

With ``--backward``: the backward's input gradient of the same chunk
(:mod:`refconv.fast.conv_back`), ``d_y`` with N channels back to the 3 + 12 input
channels, as col2im and as shifted sums (the forward's thin convolution applied
to ``d_y`` with the kernel flipped).
"""

import argparse
import math
import os
import time

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np  # noqa: E402
from numpy.lib.stride_tricks import as_strided  # noqa: E402

from refconv.fast.conv_back import InputGradient  # noqa: E402
from refconv.fast.conv_chunk import THIN_ROWS, ChunkConvolution  # noqa: E402
from refconv.fast.layout import Layout  # noqa: E402
from refconv.fast.pool import Scratch  # noqa: E402

CASES = {"2d": ((640, 480), (3, 3)), "3d": ((50, 50, 50), (1, 3, 5))}
CHANNELS, FILTERS = 3, 12


def best_of(fn, repeats):
    fn()
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def long_runs(layout, buffer, chunk, kernel, dtype):
    """The long-run way: returns ``fn()`` computing the chunk's ``[N, n]`` output."""
    spatial, n_out = layout.spatial, kernel.shape[-1]
    b0, b1, r0, r1 = chunk
    assert b1 - b0 == 1, "one frame per chunk here"
    rows = r1 - r0
    strides = [math.prod(layout.padded[i + 1:]) for i in range(len(spatial))]
    # From the first output position to the last, in the padded grid.
    n_ext = (rows - 1) * strides[0] + sum((s - 1) * st for s, st in
                                          zip(spatial[1:], strides[1:])) + 1
    flat = buffer.reshape(buffer.shape[0], buffer.shape[1], -1)
    offsets = [(r0 + j[0]) * strides[0] + sum(jj * st for jj, st in zip(j[1:], strides[1:]))
               for j in np.ndindex(*layout.kernel)]
    taps = len(offsets) * buffer.shape[1]
    cols = np.empty((len(offsets), buffer.shape[1], n_ext), dtype)
    w = np.ascontiguousarray(kernel.reshape(taps, n_out).T)
    y_ext = np.empty((n_out, n_ext), dtype)
    real = as_strided(y_ext, shape=(n_out, rows, *spatial[1:]),
                      strides=(y_ext.strides[0], *(st * y_ext.itemsize for st in strides)),
                      writeable=False)
    y = np.empty((n_out, rows, *spatial[1:]), dtype)

    def fn():
        for a, offset in enumerate(offsets):
            cols[a] = flat[b0, :, offset:offset + n_ext]
        np.matmul(w, cols.reshape(taps, -1), out=y_ext)
        np.copyto(y, real)
        return y.reshape(n_out, -1)
    return fn


def backward(repeats):
    """The input gradient's two ways, per chunk."""
    print(f"{'case':4} {'dtype':8} {'N':>3} {'col2im':>8} {'shifted sums':>13}  fast path")
    for name, (spatial, k) in CASES.items():
        for dtype in (np.float32, np.float64):
            for n_out in (FILTERS, 2 * FILTERS, 4 * FILTERS):
                rng = np.random.default_rng(0)
                layout = Layout(spatial, 1, FILTERS, k, math.prod(k) * n_out, CHANNELS + FILTERS,
                                dtype, False)
                kernel = rng.standard_normal((*k, CHANNELS + FILTERS, n_out)).astype(dtype)
                dy = np.zeros((1, n_out, *layout.padded), dtype)
                inside = tuple(slice(after, after + n) for n, (_, after) in
                               zip(spatial, layout.pads))
                dy[(0, slice(None), *inside)] = rng.standard_normal((n_out, *spatial))
                chunk, scratch = layout.chunks[0], Scratch(dtype)
                ways = {split: InputGradient(kernel, split=split) for split in (False, True)}
                expected = ways[False](layout, dy, chunk, scratch).copy()
                got = ways[True](layout, dy, chunk, scratch)
                tol = 1e-12 if dtype == np.float64 else 1e-4
                assert np.allclose(got, expected, rtol=tol, atol=tol * np.abs(expected).max())
                times = {split: best_of(lambda g=g: g(layout, dy, chunk, scratch), repeats)
                         for split, g in ways.items()}
                used = "shifted sums" if InputGradient(kernel).shifted.split else "col2im"
                print(f"{name:4} {np.dtype(dtype).name:8} {n_out:3} {times[False] * 1e3:8.2f} "
                      f"{times[True] * 1e3:13.2f}  {used}", flush=True)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=30)
    parser.add_argument("--backward", action="store_true",
                        help="the backward's input gradient instead of the forward's convolution")
    args = parser.parse_args()
    if args.backward:
        return backward(args.repeats)
    print(f"one thread, ms per chunk (THIN_ROWS = {THIN_ROWS})")
    print(f"{'case':4} {'dtype':8} {'N':>3} {'n':>6} {'im2col':>8} {'long runs':>10} "
          f"{'shifted sums':>13}  fast path")
    for name, (spatial, k) in CASES.items():
        for dtype in (np.float32, np.float64):
            for n_out in (FILTERS, 2 * FILTERS, 4 * FILTERS):
                rng = np.random.default_rng(0)
                taps = math.prod(k) * (CHANNELS + FILTERS)
                layout = Layout(spatial, 1, FILTERS, k, taps, n_out, dtype, False)
                buffer = layout.padded_buffer(CHANNELS + FILTERS)
                layout.frame_view(buffer, slice(None))[...] = rng.standard_normal(
                    (1, CHANNELS + FILTERS, *spatial))
                kernel = rng.standard_normal((*k, CHANNELS + FILTERS, n_out)).astype(dtype)
                chunk = layout.chunks[0]
                y = np.empty((n_out, layout.size(chunk)), dtype)
                scratch = Scratch(dtype)
                ways = {}
                for split in (False, True):
                    conv = ChunkConvolution(kernel, split=split)
                    ways[split] = (lambda conv=conv: conv(layout, buffer, chunk, y, scratch))
                ways["long"] = long_runs(layout, buffer, chunk, kernel, dtype)
                expected = ways[False]().copy()
                tol = 1e-12 if dtype == np.float64 else 1e-4
                for way in (True, "long"):
                    got = ways[way]()
                    assert np.allclose(got, expected, rtol=tol, atol=tol * np.abs(expected).max()), \
                        f"{name} {way}: the ways disagree"
                times = {way: best_of(fn, args.repeats) for way, fn in ways.items()}
                used = "shifted sums" if ChunkConvolution(kernel).split else "im2col"
                print(f"{name:4} {np.dtype(dtype).name:8} {n_out:3} {y.shape[1]:6} "
                      f"{times[False] * 1e3:8.2f} {times['long'] * 1e3:10.2f} "
                      f"{times[True] * 1e3:13.2f}  {used}", flush=True)


if __name__ == "__main__":
    main()
