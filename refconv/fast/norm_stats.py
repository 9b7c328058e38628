"""Layer norm over chunks: each chunk's partial statistics, combined per frame at a barrier.

Layer norm's mean and variance are taken over a whole frame, but a step runs a
chunk (a part of a frame) at a time; so each chunk returns its partial sums, and
after a barrier they are combined per frame (Chan et al.'s formula), in chunk
order, so that the bits do not depend on which thread ran which chunk.

Forward, per chunk: ``(pixels, mean, M2)`` (M2: the centred sum of squares);
combined: per frame ``mean`` and ``1 / std``. Backward, per frame, with
``g = d_out * gamma`` and ``v_hat`` the normalised input (as in
:func:`refconv.layer_norm_backward`)::

    d_v = (g - mean(g) - v_hat * mean(g * v_hat)) / std

each chunk returns its sums of ``g`` and ``g * v_hat``; combined, they finish ``d_v``.

A chunk's arrays are ``[F, nb, m]`` (channels, frames, pixels of each frame); a
group's statistics are ``(b_first, mean [frames], rstd [frames])``, rows
indexed from the group's first frame ``b_first``.
"""

import numpy as np

__all__ = ["chunk_stats", "combine", "normalize", "normalized_input", "gradient_sums",
           "combine_sums", "finish_gradient"]


def chunk_stats(v, dtype, ones, scratch):
    """A chunk's per-frame ``(pixels, mean, M2)`` of ``v`` ``[F, nb, m]``.

    Two passes, ``sum(v)`` and ``sum(v * v)``, then ``M2 = sum(v * v) - n mean^2``.
    That subtraction loses digits when the mean is large against the spread
    (the error is about ``eps * mean^2 / variance``); past a bound that keeps it
    below 1e-13 (float64) or 1e-6 (float32), the chunk is centred first, as
    :func:`refconv.layer_norm` always does.

    Args:
        ones: a function ``n -> n ones`` (``dot(v, ones)`` is a sum at BLAS speed).
        scratch: the runner's per-thread buffers.
    """
    n = v.shape[0] * v.shape[2]
    if v.shape[1] == 1 and v.flags.c_contiguous:  # one frame: BLAS dot products, fastest
        flat = v.reshape(-1)
        mean = np.array([np.dot(flat, ones(flat.size))], np.float64) / n
        m2 = np.array([np.dot(flat, flat)], np.float64) - n * mean * mean
    else:
        mean = v.sum(axis=(0, 2)).astype(np.float64) / n
        m2 = np.einsum("fbm,fbm->b", v, v).astype(np.float64) - n * mean * mean
    limit = 400.0 if dtype == np.float64 else 16.0
    if np.all(n * mean * mean <= limit * m2):
        return n, mean, m2
    d = scratch("centred", v.shape)
    np.subtract(v, mean.astype(dtype)[None, :, None], out=d)
    m2 = np.einsum("fbm,fbm->b", d, d).astype(np.float64)
    # d was centred on the rounded mean: correct M2 for the rounding.
    shift = mean - mean.astype(dtype)
    return n, mean, m2 - n * shift * shift


def combine(group, parts, epsilon):
    """Per-frame mean and 1/std of a group from its chunks' stats (Chan et al.'s formula)."""
    b_first = group[0][0]
    frames = group[-1][1] - b_first
    count = np.zeros(frames)
    total = np.zeros(frames)
    for chunk, (n, mean, _) in zip(group, parts):
        count[chunk[0] - b_first:chunk[1] - b_first] += n
        total[chunk[0] - b_first:chunk[1] - b_first] += n * mean
    mean = total / count
    m2 = np.zeros(frames)
    for chunk, (n, chunk_mean, chunk_m2) in zip(group, parts):
        rows = slice(chunk[0] - b_first, chunk[1] - b_first)
        m2[rows] += chunk_m2 + n * (chunk_mean - mean[rows]) ** 2
    rstd = 1 / np.sqrt(m2 / count + epsilon)
    return b_first, mean, rstd


def normalize(v, chunk, stats, gamma, beta, scale=1.0, shift=0.0, out=None):
    """``out = scale * (gamma * (v - mean) / std + beta + shift)`` for a chunk (``out``:
    None for in place, or an array shaped as v).

    As ``v * a + b`` (two passes) with ``a = scale * gamma / std`` and
    ``b = scale * (beta + shift) - mean * a``: its rounding error is about
    ``eps * |mean| / std`` of the result's scale, so where the mean is more
    than 20 standard deviations from zero the mean is subtracted first.
    """
    out = v if out is None else out
    b_first, mean, rstd = stats
    rows = slice(chunk[0] - b_first, chunk[1] - b_first)
    mean, rstd = mean[rows][None, :, None], rstd[rows][None, :, None]
    a = (rstd * gamma) * scale                      # [F, nb, 1], float64
    if np.all(np.abs(mean) * rstd <= 20.0):
        np.multiply(v, a.astype(v.dtype), out=out)
        out += (scale * (beta + shift) - mean * a).astype(v.dtype)
    else:
        np.subtract(v, mean.astype(v.dtype), out=out)
        out *= a.astype(v.dtype)
        out += (scale * (beta + shift)).astype(v.dtype)


# --- the backward -----------------------------------------------------------------

def normalized_input(v, stats, chunk, out):
    """``out = v_hat = (v - mean) / std`` with the forward's recorded statistics."""
    b_first, mean, rstd = stats
    rows = slice(chunk[0] - b_first, chunk[1] - b_first)
    np.subtract(v, mean[rows].astype(v.dtype)[None, :, None], out=out)
    out *= rstd[rows].astype(v.dtype)[None, :, None]
    return out


def gradient_sums(d_out, v_hat, gamma, scratch):
    """Frame sums of ``g = d_out * gamma`` and ``g * v_hat``; per-channel d_gamma, d_beta parts.

    Both pairs come from the sums of ``d_out`` and ``d_out * v_hat`` per channel and frame
    (``[F, nb]``: a frame's sum of ``g`` is ``sum over f of gamma_f * sum(d_out[f])``), so
    ``gamma`` multiplies ``d_out`` once, for ``g``: four passes over the chunk, not seven.

    Returns ``((sum_g [nb], sum_g_vhat [nb]), (d_gamma [F], d_beta [F]))``, g in d_out's place.
    """
    np.multiply(d_out, v_hat, out=scratch)
    s_gv = scratch.sum(axis=2)                  # [F, nb]
    s_g = d_out.sum(axis=2)
    d_out *= gamma
    per_channel = gamma[:, :, 0]                # [F, 1]
    return (((per_channel * s_g).sum(axis=0), (per_channel * s_gv).sum(axis=0)),
            (s_gv.sum(axis=1), s_g.sum(axis=1)))


def combine_sums(group, parts, k):
    """The ``k``-th pair of frame sums of a group's chunks, added per frame in chunk order."""
    if parts[0][0] is None:
        return None
    b_first = group[0][0]
    frames = group[-1][1] - b_first
    s1, s2 = np.zeros(frames), np.zeros(frames)
    for chunk, (sums, _) in zip(group, parts):
        rows = slice(chunk[0] - b_first, chunk[1] - b_first)
        s1[rows] += sums[k][0]
        s2[rows] += sums[k][1]
    return b_first, s1, s2


def finish_gradient(g, v_hat, stats, sums, chunk, n, scratch):
    """In place: ``g <- (g - mean(g) - v_hat * mean(g * v_hat)) / std`` for a chunk
    (``n``: the values per frame, ``F * prod(S)``; ``scratch``: a work array shaped as g)."""
    b_first, _, rstd = stats
    _, s1, s2 = sums
    rows = slice(chunk[0] - b_first, chunk[1] - b_first)

    def column(a):
        return a[rows].astype(g.dtype)[None, :, None]

    g -= column(s1 / n)
    g -= np.multiply(v_hat, column(s2 / n), out=scratch)
    g *= column(rstd)
