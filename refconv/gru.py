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
from .activations import derivative, sigmoid
from .checks import check_real
from .conv import conv_nd, conv_nd_backward
from .layer_norm import EPSILON, along_channels, layer_norm, layer_norm_backward
from .vocabulary import GRU_NORMS, GRU_QUANTITIES

__all__ = ["ConvGRUCell", "GRUCache", "gru_step", "gru_gates", "gru_step_backward"]


class GRUCache(NamedTuple):
    """What one GRU step computed, by name (``*_in``: before layer norm; gates after activation)."""
    x: np.ndarray              # the input frame
    h_prev: np.ndarray         # the previous hidden state
    y_gates: np.ndarray        # conv(concat([x, h_prev]), gates/kernel) (+ bias): 2F channels
    r_in: np.ndarray           # gates conv output for r, before layer norm
    u_in: np.ndarray           # gates conv output for u, before layer norm
    r_hat: np.ndarray          # r before its sigmoid
    u_hat: np.ndarray          # u before its sigmoid
    r: np.ndarray              # reset gate
    u: np.ndarray              # update gate
    candidate_in: np.ndarray   # conv(concat([x, r * h_prev]), candidate/kernel) (+ bias)
    candidate_hat: np.ndarray  # after layer norm, before the activation
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

    The two convolutions are the expensive lines; :func:`gru_gates` redoes
    everything else from their outputs, which is what backpropagation through
    time keeps.

    Args:
        x: ``[B, *shape, C_in]`` (or ``[B, C_in, *shape]`` for channels_first).
        h_prev: ``[B, *S]``.
        params: dict of arrays, already checked and of x's dtype.
        cell: the :class:`ConvGRUCell` holding the options.

    Returns:
        ``(h, h, cache)``: the output and the new state are the same array;
        ``cache`` a :class:`GRUCache`.
    """
    y_gates = cell._conv(np.concatenate([x, h_prev], axis=cell.channel_axis), params, "gates")
    gates = _reset_and_update(y_gates, params, cell)
    r = gates[-2]
    y_candidate = cell._conv(np.concatenate([x, r * h_prev], axis=cell.channel_axis), params,
                             "candidate")
    return _new_h(x, h_prev, y_gates, gates, y_candidate, params, cell)


def gru_gates(x, h_prev, y_gates, y_candidate, params, cell):
    """Everything in :func:`gru_step` but the two convolutions, redone from their outputs."""
    gates = _reset_and_update(y_gates, params, cell)
    return _new_h(x, h_prev, y_gates, gates, y_candidate, params, cell)


def _new_h(x, h_prev, y_gates, gates, y_candidate, params, cell):
    r_in, u_in, r_hat, u_hat, r, u = gates
    candidate_in = y_candidate
    y = candidate_in
    if cell.normalize:
        y = _ln(y, params, "candidate", cell)
    candidate_hat = y
    candidate = cell.activation(y)
    h = u * h_prev + (1 - u) * candidate
    cache = GRUCache(x, h_prev, y_gates, r_in, u_in, r_hat, u_hat, r, u,
                     candidate_in, candidate_hat, candidate, h)
    return h, h, cache


def _reset_and_update(y_gates, params, cell):
    r, u = np.split(y_gates, 2, axis=cell.channel_axis)
    r_in, u_in = r, u
    if cell.normalize:
        r, u = _ln(r, params, "r", cell), _ln(u, params, "u", cell)
    r_hat, u_hat = r, u
    r, u = sigmoid(r), sigmoid(u)
    return r_in, u_in, r_hat, u_hat, r, u


def _ln(v, params, name, cell):
    return layer_norm(v, params[name + "/gamma"], params[name + "/beta"], cell.channel_axis,
                      cell.norm_epsilon)


def gru_step_backward(d_h, d_state, cache, params, cell):
    """Backpropagate one ConvGRU step: :func:`gru_step`'s lines undone in reverse order.

    Args:
        d_h: ``[B, *S]``, gradient with respect to the step's output.
        d_state: ``[B, *S]``, with respect to the new state (the same array as
            the output, so the two add).
        cache: the step's :class:`GRUCache`. params: the dict the forward used.

    Returns:
        ``(d_x, d_h_prev, d_params)``.
    """
    ca = cell.channel_axis
    d_act = derivative(cell.activation, "activation")
    d_params = {}

    def ln_backward(v, d_out, name):
        d_v, d_params[name + "/gamma"], d_params[name + "/beta"] = layer_norm_backward(
            v, params[name + "/gamma"], d_out, ca, cell.norm_epsilon)
        return d_v

    def conv_backward(xh, d_y, scope):
        if not cell.normalize:
            d_params[scope + "/bias"] = d_y.sum(axis=tuple(a for a in range(d_y.ndim)
                                                          if a != ca % d_y.ndim))
        d_xh, d_params[scope + "/kernel"] = conv_nd_backward(xh, params[scope + "/kernel"], d_y,
                                                             data_format=cell.data_format)
        return np.split(d_xh, [cache.x.shape[ca]], axis=ca)

    # h = u * h_prev + (1 - u) * candidate
    d_h = d_h + d_state
    d_u = d_h * (cache.h_prev - cache.candidate)
    d_h_prev = d_h * cache.u
    d_candidate = d_h * (1 - cache.u)
    # candidate = activation(y);  y = LN(y)
    d_y = d_candidate * d_act(cache.candidate_hat, cache.candidate)
    if cell.normalize:
        d_y = ln_backward(cache.candidate_in, d_y, "candidate")
    # y = conv(concat([x, r * h_prev]), candidate/kernel) + candidate/bias
    r_h = cache.r * cache.h_prev
    d_x, d_r_h = conv_backward(np.concatenate([cache.x, r_h], axis=ca), d_y, "candidate")
    d_r = d_r_h * cache.h_prev
    d_h_prev = d_h_prev + d_r_h * cache.r
    # r, u = sigmoid(r), sigmoid(u)
    d_r = d_r * cache.r * (1 - cache.r)
    d_u = d_u * cache.u * (1 - cache.u)
    # r, u = LN(r), LN(u)
    if cell.normalize:
        d_r = ln_backward(cache.r_in, d_r, "r")
        d_u = ln_backward(cache.u_in, d_u, "u")
    # y = conv(concat([x, h_prev]), gates/kernel) + gates/bias;  r, u = split(y, 2)
    d_y = np.concatenate([d_r, d_u], axis=ca)
    d_x_gates, d_h_prev_gates = conv_backward(np.concatenate([cache.x, cache.h_prev], axis=ca), d_y,
                                              "gates")
    d_x = d_x + d_x_gates
    d_h_prev = d_h_prev + d_h_prev_gates
    d_params = {name: d_params[name] for name in params}  # in the order of params
    return d_x, d_h_prev, d_params


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

    Example:
        >>> import numpy as np, refconv
        >>> cell = refconv.ConvGRUCell([16], filters=2, kernel=[3], normalize=False)
        >>> cell.build(1, seed=0)
        >>> sorted(cell.params)
        ['candidate/bias', 'candidate/kernel', 'gates/bias', 'gates/kernel']
        >>> x = np.random.default_rng(1).random((4, 16, 1))     # 1-D frames: [B, W, C]
        >>> h, state = cell(x, cell.zero_state(4))
        >>> h.shape
        (4, 16, 2)
    """

    quantities = GRU_QUANTITIES  # what return_gates gives, in the order a step computes them

    def __init__(self, shape, filters, kernel, activation=np.tanh, normalize=True,
                 data_format="channels_last", *, norm_epsilon=EPSILON):
        super().__init__(shape, filters, kernel, activation, normalize, data_format)
        self.norm_epsilon = check_real(norm_epsilon, "norm_epsilon", positive=True)

    @property
    def state_size(self):
        """``S``: one frame of h, without the batch axis."""
        return self.output_size

    def _param_specs(self, in_channels):
        f, k = self.filters, self.kernel
        specs = {"gates/kernel": ((*k, in_channels + f, 2 * f), glorot_uniform),
                 "candidate/kernel": ((*k, in_channels + f, f), glorot_uniform)}
        if self.normalize:
            for name in GRU_NORMS:
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

    def _conv(self, xh, params, scope):
        """``conv(xh, scope/kernel)`` (+ ``scope/bias`` when not normalize)."""
        y = conv_nd(xh, params[scope + "/kernel"], data_format=self.data_format)
        if not self.normalize:
            y = y + along_channels(params[scope + "/bias"], y.ndim, self.channel_axis)
        return y

    def _step(self, x, state, params):
        return gru_step(x, state, params, self)

    def _step_backward(self, d_h, d_state, cache, params):
        return gru_step_backward(d_h, d_state, cache, params, self)

    @staticmethod
    def _slim(cache):
        """What backpropagation through time keeps of a step: its inputs and the convolutions."""
        return cache.x, cache.h_prev, cache.y_gates, cache.candidate_in

    def _rebuild(self, slim, params):
        """The step's full cache again, from :meth:`_slim`'s part, without convolving."""
        return gru_gates(*slim, params, self)[2]

    @staticmethod
    def _gates(cache):
        return {name: getattr(cache, name) for name in GRU_QUANTITIES}
