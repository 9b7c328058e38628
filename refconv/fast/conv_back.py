"""The convolution's backward with respect to its input, over a chunk of the fast path.

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
"""

import math

import numpy as np

from .conv_chunk import ChunkConvolution

__all__ = ["InputGradient"]


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
