"""Layer normalisation as TensorFlow 1's ``tf.contrib.layers.layer_norm`` with its defaults.

Per sample, the mean and the (biased) variance are taken over *all* non-batch
axes: every spatial axis and the channel axis together. ``gamma`` and
``beta`` have one entry per channel and broadcast along the channel axis, in
either data format.
"""

import numpy as np

__all__ = ["layer_norm", "along_channels", "EPSILON"]

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
    """
    axes = tuple(range(1, v.ndim))
    mean = v.mean(axis=axes, keepdims=True)
    centred = v - mean
    var = np.mean(centred * centred, axis=axes, keepdims=True)
    gamma = along_channels(gamma, v.ndim, channel_axis)
    beta = along_channels(beta, v.ndim, channel_axis)
    return centred / np.sqrt(var + eps) * gamma + beta


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
