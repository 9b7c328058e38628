"""Layer normalisation as TensorFlow 1's ``tf.contrib.layers.layer_norm`` with its defaults.

Per sample, the mean and the (biased) variance are taken over *all* non-batch
axes: every spatial axis and the channel axis together. ``gamma`` and
``beta`` have one entry per channel and broadcast along the channel axis, in
either data format.
"""

import math

import numpy as np

__all__ = ["layer_norm", "layer_norm_backward", "along_channels", "EPSILON"]

EPSILON = 1e-12  # tf.contrib.layers.layer_norm's fixed variance_epsilon


def layer_norm(v, gamma, beta, channel_axis=-1, eps=EPSILON):
    """Normalise each sample of ``v`` to zero mean and unit variance, then scale and shift.

    Equations::

        mean = mean(v[b])                     # over every non-batch axis
        var  = mean((v[b] - mean) ** 2)       # biased, as tf.nn.moments
        LN(v)[b] = gamma * (v[b] - mean) / sqrt(var + eps) + beta

    Args:
        v: ``[B, ...]``, any number of non-batch axes.
        gamma, beta: ``[F]``, ``F = v.shape[channel_axis]``.
        channel_axis: the axis ``gamma`` and ``beta`` run along (-1 or 1).
        eps: added to the variance.

    Returns:
        ``LN(v)``, shaped and typed like ``v``.

    A float32 ``v`` is normalised in float64 and the result rounded once: summing
    a 300x300 frame offset by 1e4 in float32 loses the small differences that the
    variance is made of (1e-4 error in the state, where the fast path's float64
    statistics give 7e-6). A float64 ``v`` is untouched (no copy).
    """
    wide = v.astype(np.float64, copy=False)
    return _layer_norm(wide, gamma, beta, channel_axis, eps).astype(v.dtype, copy=False)


def _layer_norm(v, gamma, beta, channel_axis, eps):
    """:func:`layer_norm` on a float64 ``v``."""
    axes = tuple(range(1, v.ndim))
    mean = v.mean(axis=axes, keepdims=True)
    out = v - mean
    # One pass for the variance (a dot product of each sample with itself, no
    # squared temporary), then scale and shift in place: layer norm is
    # elementwise work on large arrays, and every pass over memory counts.
    flat = out.reshape(v.shape[0], math.prod(v.shape[1:]))
    var = np.einsum("bi,bi->b", flat, flat) / flat.shape[1]
    rstd = 1 / np.sqrt(var + eps)
    out *= rstd.reshape(-1, *([1] * (v.ndim - 1))) * along_channels(gamma, v.ndim, channel_axis)
    out += along_channels(beta, v.ndim, channel_axis)
    return out


def layer_norm_backward(v, gamma, d_out, channel_axis=-1, eps=EPSILON):
    """Gradients of ``sum(layer_norm(v, gamma, beta) * d_out)``.

    With ``v_hat = (v - mean) / sigma`` (per sample, ``sigma = sqrt(var + eps)``)::

        d_beta  = sum of d_out over batch and spatial axes           # [F]
        d_gamma = sum of d_out * v_hat over batch and spatial axes   # [F]
        d_v_hat = d_out * gamma
        d_v     = (d_v_hat - mean(d_v_hat) - v_hat * mean(d_v_hat * v_hat)) / sigma

    The last line is the familiar batch-norm backward, with the means taken per
    sample over everything a sample's mean and variance were taken over. The
    statistics are recomputed from ``v`` rather than stored.

    Args:
        v: ``[B, ...]``, the input of the forward. gamma: ``[F]``.
        d_out: shaped like ``v``.

    Returns:
        ``(d_v, d_gamma, d_beta)``, typed like ``v``; computed in float64, as the forward.
    """
    dtype = v.dtype
    v, d_out = v.astype(np.float64, copy=False), d_out.astype(np.float64, copy=False)
    return tuple(g.astype(dtype, copy=False)
                 for g in _layer_norm_backward(v, gamma, d_out, channel_axis, eps))


def _layer_norm_backward(v, gamma, d_out, channel_axis, eps):
    """:func:`layer_norm_backward` on float64 ``v`` and ``d_out``."""
    axes = tuple(range(1, v.ndim))
    mean = v.mean(axis=axes, keepdims=True)
    centred = v - mean
    sigma = np.sqrt(np.mean(centred * centred, axis=axes, keepdims=True) + eps)
    v_hat = centred / sigma
    ca = channel_axis % v.ndim
    not_channel = tuple(a for a in range(v.ndim) if a != ca)
    d_beta = d_out.sum(axis=not_channel)
    d_gamma = (d_out * v_hat).sum(axis=not_channel)
    d_v_hat = d_out * along_channels(gamma, v.ndim, channel_axis)
    d_v = (d_v_hat - d_v_hat.mean(axis=axes, keepdims=True)
           - v_hat * (d_v_hat * v_hat).mean(axis=axes, keepdims=True)) / sigma
    return d_v, d_gamma, d_beta


def along_channels(vector, ndim, channel_axis):
    """Reshape a per-channel ``[F]`` vector to broadcast along ``channel_axis`` of a rank-``ndim`` array.

    For channels_last that is the vector itself; for channels_first,
    ``[F, 1, ..., 1]``, so that it lines up with ``[B, F, *spatial]``.
    """
    if channel_axis in (-1, ndim - 1):
        return vector
    shape = [1] * (ndim - 1)
    shape[channel_axis - 1] = -1
    return vector.reshape(shape)
