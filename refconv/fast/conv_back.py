"""The convolution's backward with respect to its input, over a chunk of the fast path.

The forward is ``y = conv(concat([x, h]), kernel)``; its gradient with respect to
``concat([x, h])`` is itself a convolution, of ``d_y`` padded the other way round
(``after`` zeros before, ``before`` after) with the kernel flipped along every
spatial axis and its channel axes swapped. Written as im2col that is a thin
product, ``[C + F, K * N] @ [K * N, n]`` (K kernel offsets, N the forward's output
channels), over a patch matrix N / (C + F) times the forward's. This module
computes it the other way round ("col2im"): one product per chunk,

    q[j] = kernel[flipped j]  @  d_y          [K * (C + F), pixels of the padded rows]

whose rows are the forward's kernel, unchanged in shape, and then sums the K
shifted slices: ``d_concat([x, h])[p] = sum_j q[j][p + j]``. The product has the
forward's K * (C + F) rows (BLAS runs it about twice as fast as the thin one) and
nothing is copied into a patch matrix.
"""

import math

import numpy as np

__all__ = ["input_weights", "input_gradient"]


def input_weights(kernel):
    """``[*k, C + F, N]`` -> ``[prod(k) * (C + F), N]``: the kernel flipped along every
    spatial axis, row ``(j, c)`` for offset j (in the flipped order) and channel c."""
    n = kernel.ndim - 2
    flipped = kernel[(slice(None, None, -1),) * n]
    return np.ascontiguousarray(flipped.reshape(-1, kernel.shape[-1]))


def input_gradient(layout, w, dy, chunk, scratch):
    """``d_concat([x, h])`` of a chunk's pixels, ``[C + F, nb, m]`` (a scratch buffer:
    use it before the next call on this thread).

    Args:
        layout: the runner's :class:`refconv.fast.layout.Layout`.
        w: :func:`input_weights` of the forward's kernel.
        dy: ``d_y`` in a zero ``[frames, N, *padded]`` buffer, padded the other way round.
        chunk: ``(b0, b1, r0, r1)``, frames indexed in ``dy``.
        scratch: the runner's per-thread buffers.
    """
    b0, b1, r0, r1 = chunk
    k, spatial = layout.kernel, layout.spatial
    nb, rows = b1 - b0, r1 - r0
    channels = w.shape[0] // math.prod(k)
    # Every padded row that an output row r0..r1 reads: r0 .. r1 + k[0] - 1.
    window = dy[b0:b1, :, r0:r1 + k[0] - 1]             # [nb, N, rows', *padded[1:]]
    q = scratch("col2im", (nb, w.shape[0], math.prod(window.shape[2:])))
    np.matmul(w, window.reshape(nb, dy.shape[1], -1), out=q)
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
