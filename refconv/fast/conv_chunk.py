"""A chunk's convolution on the fast path: one im2col product, or, where that product is
thin, a product over the last kernel axis' rows and shifted sums.

The forward's convolution of a chunk is one matrix product (im2col)::

    y = w @ patches        w: [N, K], patches: [K, n], K = prod(k) * C (offsets j, channels c)

BLAS runs a product with few output rows N well under its rate (with the seed's
2-D patches, float32, one thread: 18 GFLOP/s for the GRU candidate's N = F = 12,
45 for the LSTM's N = 4F = 48), and its copies of the patches cost as much as
for a wide one. For a thin product the last kernel axis moves from the patches
into the product's rows::

    q[(j, f)] = sum over (j', c) of kernel[j', j, c, f] * patches'[(j', c)]
    y[f, p]   = sum over j of q[(j, f)][p + j]              (j: the last axis' offset)

``patches'`` has ``K / k[-1]`` rows, each a run of whole padded image rows (the
copies are long), and ``n'`` columns, the chunk's pixels with the last spatial
axis at its padded length; the product has ``k[-1] * N`` rows, and the shifted
sums are ``k[-1] - 1`` passes over ``[N, n']`` and a copy to ``[N, n]``. The same
multiplications, in 0.65-0.75x the time for N = 12 and 0.9-0.97x for N = 24; for N = 48 the single product is
faster, 0.9-0.75x the shifted sums' time (``benchmarks/explore_chunk_convolution.py``).
"""

import math

import numpy as np

from .layout import CHUNK_BYTES, WIDE_CHUNK_BYTES

__all__ = ["THIN_ROWS", "ChunkConvolution"]

# A product with at most this many output rows is "thin": it runs as shifted sums.
THIN_ROWS = 24


class ChunkConvolution:
    """``y = conv(buffer, kernel)`` over a chunk of a :class:`refconv.fast.layout.Layout`.

    Args:
        kernel: ``[*k, C, N]``, the cell's convolution kernel.
        split: True for the shifted sums, False for one product; None (default): shifted
            sums where the product is thin (N <= :data:`THIN_ROWS`), the frames have two
            or more axes and the last kernel axis is longer than 1.
    """

    def __init__(self, kernel, split=None):
        k, channels, n_out = kernel.shape[:-2], kernel.shape[-2], kernel.shape[-1]
        self.out_channels = n_out
        if split is None:
            split = n_out <= THIN_ROWS and len(k) >= 2 and k[-1] > 1
        if split and len(k) < 2:
            raise ValueError(f"split: the shifted sums need frames of two or more axes, "
                             f"got a {len(k)}-D kernel")
        self.split = bool(split)
        # The chunk plan's size for this convolution (refconv.fast.layout says why two).
        self.chunk_bytes = CHUNK_BYTES if self.split else WIDE_CHUNK_BYTES
        taps = math.prod(k) * channels
        if self.split:
            # [*k', k_last, C, N] -> rows (j_last, f), columns (j', c): [k_last * N, K / k_last]
            front = math.prod(k[:-1])
            w = kernel.reshape(front, k[-1], channels, n_out).transpose(1, 3, 0, 2)
            self.w = np.ascontiguousarray(w.reshape(k[-1] * n_out, front * channels))
        else:
            # [*k, C, N] -> [N, K], K in the patches' order: y = w @ patches is gate-major.
            self.w = np.ascontiguousarray(kernel.reshape(taps, n_out).T)

    def __call__(self, layout, buffer, chunk, y, scratch):
        """Fill ``y`` ``[N, n]`` with the chunk's convolution of the padded ``buffer``
        (``[B, C, *padded]``); returns ``y``."""
        if not self.split:
            return np.matmul(self.w, layout.patches(buffer, chunk, scratch), out=y)
        k, spatial = layout.kernel, layout.spatial
        n_out, last = self.out_channels, spatial[-1]
        patches = layout.row_patches(buffer, chunk, scratch)        # [K / k_last, n']
        q = scratch("shifted", (self.w.shape[0], patches.shape[1]))
        np.matmul(self.w, patches, out=q)
        # The sums on whole rows of q (the padded length, contiguous: long loops), into q[0],
        # and then the real pixels copied out: 0.6-0.65x the time of the sums on the
        # pixels' own (strided) views.
        m = q.shape[1]
        for j in range(1, k[-1]):
            q[:n_out, :m - j] += q[j * n_out:(j + 1) * n_out, j:]   # y[p] += q[j][p + j]
        b0, b1, r0, r1 = chunk
        rows = q[:n_out].reshape(n_out, b1 - b0, r1 - r0, *spatial[1:-1], layout.padded[-1])
        np.copyto(y.reshape(n_out, b1 - b0, r1 - r0, *spatial[1:]), rows[..., :last])
        return y
