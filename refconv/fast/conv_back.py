"""The convolution's backward over a chunk of the fast path: with respect to its input, and
its kernel's gradient.

The forward is ``y = conv(concat([x, h]), kernel)``; its gradient with respect to
``concat([x, h])`` is itself a convolution, of ``d_y`` padded the other way round
(``after`` zeros before, ``before`` after) with the kernel flipped along every
spatial axis and its two channel axes swapped::

    d_concat([x, h]) = conv(d_y, kernel[::-1, ..., ::-1].swapaxes(C, N))

Its output has only C + F channels (15 for the seed's cells): as im2col that is a
thin product, ``[C + F, K * N] @ [K * N, n]`` (K kernel offsets, N the forward's
output channels), over a patch matrix N / (C + F) times the forward's. Two ways
avoid it, and :class:`InputGradient` picks by the forward's own rule
(:class:`refconv.fast.conv_chunk.ChunkConvolution`):

* **Shifted sums** (frames of two or more axes, a last kernel axis longer than 1,
  C + F thin): the forward's thin convolution, applied to ``d_y`` with the
  flipped kernel: a product ``[k_last * (C + F), (K / k_last) * N]`` over patch
  rows of whole padded rows of ``d_y``, then ``k_last`` shifted sums.
* **col2im** (otherwise): one product per chunk,

      q[j] = kernel[flipped j]  @  d_y          [K * (C + F), pixels of the padded rows]

  whose rows are the forward's kernel, unchanged in shape, and then the sum of
  the K shifted slices: ``d_concat([x, h])[p] = sum_j q[j][p + j]``. Nothing is
  copied into a patch matrix.

For the GRU's thin ``d_y`` (N = 12 and 24) the shifted sums took 0.3-0.75x col2im's
time per chunk, for the LSTM's (N = 48) 0.9-1.2x (``benchmarks/explore_chunk_convolution.py
--backward``).

The kernel's gradient of a chunk is one product over its pixels (:class:`KernelGradient`)::

    d_kernel[(j, c), f] = sum over p of patches[(j, c), p] * d_y[f, p]

a product with few columns (N) whose operands are long: BLAS copies (packs) both
whole, and the im2col copy comes before. Where N is small, the last kernel axis
moves from the patches to ``d_y``'s side, as in the forward's shifted sums::

    d_kernel[(j', j_last, c), f] = sum over p' of patches'[(j', c), p'] * d_y'[(j_last, f), p']

``patches'``: the forward's row patches ``[K / k_last, n']`` (a third of im2col's
copy for a 3-wide kernel); ``d_y'`` ``[k_last * N, n']``: ``d_y`` with its last axis at
the padded length, shifted right by ``j_last`` and zero elsewhere. Measured per chunk
on one thread, float64: 0.45-0.6x the im2col time for N = 12 (2-D and 3-D), 0.75-0.85x
for N = 24 in 2-D; float32: 0.6-0.95x for N = 12, 1.0-1.2x for N = 24; N = 48
1.0-1.5x (so: N <= 12, or N <= 24 in float64).
"""

import math

import numpy as np

from .conv_chunk import ChunkConvolution

__all__ = ["InputGradient", "KernelGradient"]

# The most columns N of a kernel gradient computed with the last kernel axis on d_y's side.
THIN_GRADIENT = {np.dtype(np.float32): 12, np.dtype(np.float64): 24}


class InputGradient:
    """``d_concat([x, h])`` of a chunk from ``d_y``, for one forward ``kernel`` ``[*k, C + F, N]``.

    Args:
        split: True for the shifted sums, False for col2im; None (default): the rule of
            :class:`refconv.fast.conv_chunk.ChunkConvolution` for the flipped kernel.
    """

    def __init__(self, kernel, split=None):
        n = kernel.ndim - 2
        flipped = kernel[(slice(None, None, -1),) * n]
        self.channels = kernel.shape[-2]
        # The input gradient as a convolution of d_y: [*k, N, C + F], offsets flipped.
        self.shifted = ChunkConvolution(np.ascontiguousarray(flipped.swapaxes(-1, -2)), split)
        if not self.shifted.split:
            # col2im's rows (j, c), j in the flipped order: [prod(k) * (C + F), N].
            self.w = np.ascontiguousarray(flipped.reshape(-1, kernel.shape[-1]))

    def __call__(self, layout, dy, chunk, scratch):
        """``[C + F, nb, m]`` (a scratch buffer: use it before the next call on this thread).

        Args:
            layout: the runner's :class:`refconv.fast.layout.Layout`.
            dy: ``d_y`` in a zero ``[frames, N, *padded]`` buffer, padded the other way round.
            chunk: ``(b0, b1, r0, r1)``, frames indexed in ``dy``.
            scratch: the runner's per-thread buffers.
        """
        b0, b1 = chunk[:2]
        if self.shifted.split:
            out = scratch("d_input", (self.channels, layout.size(chunk)))
            return self.shifted(layout, dy, chunk, out, scratch).reshape(
                self.channels, b1 - b0, -1)
        return self._col2im(layout, dy, chunk, scratch)

    def _col2im(self, layout, dy, chunk, scratch):
        b0, b1, r0, r1 = chunk
        k, spatial = layout.kernel, layout.spatial
        nb, rows = b1 - b0, r1 - r0
        channels = self.channels
        # Every padded row that an output row r0..r1 reads: r0 .. r1 + k[0] - 1.
        window = dy[b0:b1, :, r0:r1 + k[0] - 1]             # [nb, N, rows', *padded[1:]]
        q = scratch("col2im", (nb, self.w.shape[0], math.prod(window.shape[2:])))
        np.matmul(self.w, window.reshape(nb, dy.shape[1], -1), out=q)
        q = q.reshape(nb, *k, channels, *window.shape[2:])
        out = scratch("d_input", (channels, nb, rows, *spatial[1:]))
        for first, j in enumerate(np.ndindex(*k)):
            shifted = q[(slice(None), *j, slice(None), slice(j[0], j[0] + rows),
                         *(slice(jj, jj + s) for jj, s in zip(j[1:], spatial[1:])))]
            if first == 0:
                out[...] = shifted.swapaxes(0, 1)           # [nb, C, ...] -> [C, nb, ...]
            else:
                out += shifted.swapaxes(0, 1)
        return out.reshape(channels, nb, -1)


class KernelGradient:
    """A chunk's part of ``d_kernel`` ``[prod(k) * C, N]`` (rows in the kernel's ``[*k, C]``
    order) from ``d_y`` ``[N, n]`` and the forward's padded input.

    Args:
        kernel: ``[*k, C, N]``, the forward's kernel (its shape).
        dtype: the run's (float32 or float64); None: the kernel's.
        split: True for the last kernel axis on ``d_y``'s side, False for im2col; None
            (default): the former where N <= :data:`THIN_GRADIENT` of the dtype, the frames
            have two or more axes and the last kernel axis is longer than 1.
    """

    def __init__(self, kernel, dtype=None, split=None):
        k, self.channels, self.out_channels = kernel.shape[:-2], kernel.shape[-2], kernel.shape[-1]
        dtype = np.dtype(kernel.dtype if dtype is None else dtype)
        if split is None:
            split = (self.out_channels <= THIN_GRADIENT.get(dtype, 0) and len(k) >= 2
                     and k[-1] > 1)
        if split and len(k) < 2:
            raise ValueError(f"split: the last kernel axis on d_y's side needs frames of two or "
                             f"more axes, got a {len(k)}-D kernel")
        self.split = bool(split)

    def __call__(self, layout, buffer, d_y, chunk, scratch):
        """``patches(buffer)`` ``@ d_y^T`` for the chunk (``buffer``: the forward's padded input
        ``[B, C, *padded]``): a new ``[prod(k) * C, N]`` array."""
        if not self.split:
            return layout.patches(buffer, chunk, scratch) @ d_y.T
        k, last, padded = layout.kernel, layout.spatial[-1], layout.padded[-1]
        n_out = self.out_channels
        patches = layout.row_patches(buffer, chunk, scratch)        # [K / k_last, n']
        shifted = scratch("d_y_shifted", (k[-1], n_out, d_y.shape[1] // last, padded))
        rows = d_y.reshape(n_out, -1, last)
        for j in range(k[-1]):                                      # d_y'[j][p + j] = d_y[p]
            shifted[j, ..., :j] = 0
            shifted[j, ..., j:j + last] = rows
            shifted[j, ..., j + last:] = 0
        g = patches @ shifted.reshape(k[-1] * n_out, -1).T          # [(j', c), (j_last, f)]
        front = g.shape[0] // self.channels
        return g.reshape(front, self.channels, k[-1], n_out).transpose(0, 2, 1, 3).reshape(
            -1, n_out)
