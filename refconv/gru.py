"""The convolutional GRU cell.

* ``r``: the reset gate, how much of ``h`` the candidate may look at.
* ``u``: the update gate, how much of the old ``h`` to keep.
* ``candidate``: the new content, computed from ``x`` and ``r * h``.
* ``h``: the hidden state, which is also the output: the GRU has no separate
  cell state, which is why the seed calls it "more memory efficient".
"""

from typing import NamedTuple

import numpy as np

from ._cell import ConvCell, glorot_uniform
from .activations import sigmoid
from .conv import conv_nd
from .layer_norm import EPSILON, along_channels, layer_norm

__all__ = ["ConvGRUCell", "GRUCache", "gru_step"]


class GRUCache(NamedTuple):
    """What one GRU step computed, by name (``*_in``: before layer norm; gates after activation)."""
    x: np.ndarray              # the input frame
    h_prev: np.ndarray         # the previous hidden state
    r_in: np.ndarray           # gates conv output for r, before layer norm
    u_in: np.ndarray           # gates conv output for u, before layer norm
    r_hat: np.ndarray          # r before its sigmoid
    u_hat: np.ndarray          # u before its sigmoid
    r: np.ndarray              # reset gate
    u: np.ndarray              # update gate
    candidate_in: np.ndarray   # candidate conv output, before layer norm
    candidate_hat: np.ndarray  # before the activation
    candidate: np.ndarray      # activation(candidate_hat)
    h: np.ndarray              # the new hidden state


def gru_step(x, h_prev, params, cell):
    """One ConvGRU step on a batch of frames.

    Equations::

        y         = conv(concat([x, h]), gates/kernel)  (+ gates/bias when not normalize)
        r, u      = split(y, 2, channel axis)
        r, u      = LN(r), LN(u)                         (normalize)
        r, u      = sigmoid(r), sigmoid(u)
        y         = conv(concat([x, r * h]), candidate/kernel)  (+ candidate/bias)
        y         = LN(y)                                (normalize)
        candidate = activation(y)
        h         = u * h + (1 - u) * candidate

    Args:
        x: ``[B, *shape, C_in]`` (or ``[B, C_in, *shape]`` for channels_first).
        h_prev: ``[B, *S]``.
        params: dict of arrays, already checked and of x's dtype.
        cell: the :class:`ConvGRUCell` holding the options.

    Returns:
        ``(h, h, cache)``: the output and the new state are the same array.
    """
    ca, fmt = cell.channel_axis, cell.data_format

    def ln(v, name):
        return layer_norm(v, params[name + "/gamma"], params[name + "/beta"], ca, cell.norm_epsilon)

    y = conv_nd(np.concatenate([x, h_prev], axis=ca), params["gates/kernel"], data_format=fmt)
    if not cell.normalize:
        y = y + along_channels(params["gates/bias"], y.ndim, ca)
    r, u = np.split(y, 2, axis=ca)
    r_in, u_in = r, u
    if cell.normalize:
        r, u = ln(r, "r"), ln(u, "u")
    r_hat, u_hat = r, u
    r, u = sigmoid(r), sigmoid(u)
    y = conv_nd(np.concatenate([x, r * h_prev], axis=ca), params["candidate/kernel"],
                data_format=fmt)
    if not cell.normalize:
        y = y + along_channels(params["candidate/bias"], y.ndim, ca)
    candidate_in = y
    if cell.normalize:
        y = ln(y, "candidate")
    candidate_hat = y
    candidate = cell.activation(y)
    h = u * h_prev + (1 - u) * candidate
    cache = GRUCache(x, h_prev, r_in, u_in, r_hat, u_hat, r, u,
                     candidate_in, candidate_hat, candidate, h)
    return h, h, cache


class ConvGRUCell(ConvCell):
    """A convolutional GRU cell: TensorFlow 1's seed cell, computed in NumPy.

    Args:
        shape: spatial size of one frame, N >= 1 ints.
        filters: F, channels of ``h``.
        kernel: N ints, the convolution's size along each spatial axis.
        activation: for the candidate (``np.tanh``, or a name).
        normalize: layer-normalise r, u and the candidate (then no biases).
        data_format: ``"channels_last"`` or ``"channels_first"``.
        norm_epsilon: layer norm's variance epsilon (TF1's 1e-12).

    ``cell.params`` holds ``gates/kernel`` ``[*kernel, C_in + F, 2F]`` (blocks r,
    u), ``candidate/kernel`` ``[*kernel, C_in + F, F]``, and either the biases
    ``gates/bias`` ``[2F]`` (init ones) and ``candidate/bias`` ``[F]`` (zeros),
    or with normalize ``{r,u,candidate}/{gamma,beta}`` ``[F]``.
    """

    gate_names = ("r", "u", "candidate", "h")

    def __init__(self, shape, filters, kernel, activation=np.tanh, normalize=True,
                 data_format="channels_last", *, norm_epsilon=EPSILON):
        super().__init__(shape, filters, kernel, activation, normalize, data_format)
        self.norm_epsilon = float(norm_epsilon)

    @property
    def state_size(self):
        """``S``: one frame of h, without the batch axis."""
        return self.output_size

    def _param_specs(self, in_channels):
        f, k = self.filters, self.kernel
        specs = {"gates/kernel": ((*k, in_channels + f, 2 * f), glorot_uniform),
                 "candidate/kernel": ((*k, in_channels + f, f), glorot_uniform)}
        if self.normalize:
            for name in ("r", "u", "candidate"):
                specs[name + "/gamma"] = ((f,), 1.0)
                specs[name + "/beta"] = ((f,), 0.0)
        else:
            specs["gates/bias"] = ((2 * f,), 1.0)
            specs["candidate/bias"] = ((f,), 0.0)
        return specs

    def zero_state(self, batch_size, dtype=np.float64):
        """``h`` of zeros, ``[batch_size, *S]``."""
        return self._zeros(batch_size, dtype)

    def _check_state(self, state, batch_size, dtype, argument="state"):
        if isinstance(state, tuple):
            raise TypeError(f"{argument}: expected one array h (a GRU's state), got a tuple")
        return self._check_state_array(state, batch_size, dtype, argument)

    def _step(self, x, state, params):
        return gru_step(x, state, params, self)

    @staticmethod
    def _gates(cache):
        return {"r": cache.r, "u": cache.u, "candidate": cache.candidate, "h": cache.h}
