"""The convolutional LSTM cell, in the article's names.

* ``z``: the fusion of the input ``x`` and the previous hidden state ``h``.
  Computed like a gate, but it is the candidate *content*, not a gate.
* ``z_i``: the input ("memory") gate, what of ``z`` to write into the cell state.
* ``z_f``: the forget gate, what of the old cell state ``c`` to keep.
* ``z_o``: the output gate, what of the new cell state to show as ``h``.
* ``c``: the cell state (the memory); ``h``: the hidden state (the output).
"""

from collections import namedtuple
from typing import NamedTuple

import numpy as np

from ._cell import ConvCell, check_ints, glorot_uniform
from .activations import derivative, get_activation
from .checks import check_real
from .conv import conv_nd, conv_nd_backward, conv_output_size
from .layer_norm import EPSILON, along_channels, layer_norm, layer_norm_backward
from .vocabulary import (LSTM_BACKWARD_QUANTITIES, LSTM_BLOCKS, LSTM_NORMS, LSTM_PEEPHOLES,
                         LSTM_QUANTITIES)

__all__ = ["ConvLSTMCell", "LSTMStateTuple", "LSTMCache", "lstm_step", "lstm_gates",
           "lstm_step_backward"]

LSTMStateTuple = namedtuple("LSTMStateTuple", ["c", "h"])
LSTMStateTuple.__doc__ = """The LSTM's state, as TensorFlow's: ``c`` the cell state, ``h`` the hidden state.

Keras returns the same two arrays as ``[h, c]``: mind the order."""


class LSTMCache(NamedTuple):
    """What one LSTM step computed, by name: the gates to look at, and what the backward step needs.

    ``*_in`` are the values entering layer normalisation (the same arrays as
    the ``*_hat`` values when ``normalize`` is off); ``z``, ``z_i``, ``z_f``,
    ``z_o`` are after their activation, as the figures show them.
    """
    x: np.ndarray        # the input frame
    c_prev: np.ndarray   # the previous cell state
    h_prev: np.ndarray   # the previous hidden state
    y: np.ndarray        # conv(concat([x, h_prev]), kernel) (+ bias): 4F channels
    z_in: np.ndarray     # conv output for z, before layer norm
    z_i_in: np.ndarray   # conv output (+ peephole) for z_i, before layer norm
    z_f_in: np.ndarray   # conv output (+ peephole) for z_f, before layer norm
    z_o_in: np.ndarray   # conv output (+ peephole) for z_o, before layer norm
    z_hat: np.ndarray    # z after layer norm, before the activation
    z_i_hat: np.ndarray  # z_i after layer norm, before the sigmoid
    z_f_hat: np.ndarray  # z_f after layer norm, before adding forget_bias and the sigmoid
    z_o_hat: np.ndarray  # z_o after layer norm, before the sigmoid
    z: np.ndarray        # activation(z_hat): the fusion of x and h
    z_i: np.ndarray      # input gate
    z_f: np.ndarray      # forget gate
    z_o: np.ndarray      # output gate
    c_in: np.ndarray     # c_prev * z_f + z_i * z, before layer norm
    c: np.ndarray        # the new cell state
    h: np.ndarray        # the new hidden state


def lstm_step(x, state, params, cell):
    """One ConvLSTM step on a batch of frames.

    Equations::

        y   = conv(concat([x, h]), kernel)  (+ bias when not normalize)
        z, z_i, z_f, z_o = split(y, 4, channel axis)
        z_i = z_i + W_ci * c                     (peephole)
        z_f = z_f + W_cf * c                     (peephole)
        z, z_i, z_f = LN(z), LN(z_i), LN(z_f)    (normalize)
        z_f = sigmoid(z_f + forget_bias)
        z_i = sigmoid(z_i)
        c   = c * z_f + z_i * activation(z)
        z_o = z_o + W_co * c                     (peephole, the *new* c)
        z_o, c = LN(z_o), LN(c)                  (normalize)
        z_o = sigmoid(z_o)
        h   = z_o * activation(c)

    (``sigmoid`` is ``cell.recurrent_activation``.) The first line is the
    expensive one; :func:`lstm_gates` does the rest, so that backpropagation
    through time can keep ``y`` and recompute the cheap part.

    Args:
        x: ``[B, *shape, C_in]`` (or ``[B, C_in, *shape]`` for channels_first).
        state: ``LSTMStateTuple(c, h)``, each ``[B, *S]``.
        params: dict of arrays, already checked and of x's dtype.
        cell: the :class:`ConvLSTMCell` holding the options.

    Returns:
        ``(h, LSTMStateTuple(c, h), cache)`` with ``h`` and ``c`` ``[B, *S]`` and
        ``cache`` an :class:`LSTMCache`.
    """
    y = cell._conv(x, state.h, params["kernel"])
    if not cell.normalize:
        y = y + along_channels(params["bias"], y.ndim, cell.channel_axis)
    return lstm_gates(x, state, y, params, cell)


def lstm_gates(x, state, y, params, cell):
    """Everything in :func:`lstm_step` after the convolution ``y`` (``[B, *S]`` with 4F channels)."""
    c_prev, h_prev = state
    ca = cell.channel_axis
    act, sigma = cell.activation, cell.recurrent_activation

    def ln(v, name):
        return layer_norm(v, params[name + "/gamma"], params[name + "/beta"], ca, cell.norm_epsilon)

    z, z_i, z_f, z_o = np.split(y, len(LSTM_BLOCKS), axis=ca)
    if cell.peephole:
        z_i = z_i + params["W_ci"] * c_prev
        z_f = z_f + params["W_cf"] * c_prev
    z_in, z_i_in, z_f_in = z, z_i, z_f
    if cell.normalize:
        z, z_i, z_f = ln(z, "z"), ln(z_i, "z_i"), ln(z_f, "z_f")
    z_hat, z_i_hat, z_f_hat = z, z_i, z_f
    z_f = sigma(z_f + cell.forget_bias)
    z_i = sigma(z_i)
    z = act(z)
    c = c_prev * z_f + z_i * z
    if cell.peephole:
        z_o = z_o + params["W_co"] * c
    z_o_in, c_in = z_o, c
    if cell.normalize:
        z_o, c = ln(z_o, "z_o"), ln(c, "c")
    z_o_hat = z_o
    z_o = sigma(z_o)
    h = z_o * act(c)
    cache = LSTMCache(x, c_prev, h_prev, y, z_in, z_i_in, z_f_in, z_o_in,
                      z_hat, z_i_hat, z_f_hat, z_o_hat, z, z_i, z_f, z_o, c_in, c, h)
    return h, LSTMStateTuple(c, h), cache


def lstm_step_backward(d_h, d_state, cache, params, cell, *, intermediates=False):
    """Backpropagate one ConvLSTM step: :func:`lstm_step`'s lines undone in reverse order.

    ``d_name`` is the gradient of the loss with respect to ``name`` (named as the
    :class:`LSTMCache` fields: ``d_z_o`` after the sigmoid, ``d_z_o_hat`` before it,
    ``d_z_o_in`` before layer norm). The output ``h`` and the state's ``h`` are one
    array, so their gradients add.

    Args:
        d_h: ``[B, *S]``, gradient with respect to the step's output h.
        d_state: ``LSTMStateTuple(d_c, d_h)`` with respect to the new state.
        cache: the step's :class:`LSTMCache`.
        params: the dict the forward used.
        intermediates: also return the gradients in between, by name.

    Returns:
        ``(d_x, LSTMStateTuple(d_c_prev, d_h_prev), d_params)``, ``d_params`` a dict
        with the keys of ``params``; with ``intermediates`` a fourth value, a dict
        with the names of :data:`refconv.vocabulary.LSTM_BACKWARD_QUANTITIES`, each
        ``[B, *S]``: ``d_z_o``, ``d_c`` (through ``h`` and the next step only),
        ``d_z_o_in``, ``d_c_in`` (through every path), ``d_z_f``, ``d_z_i``, ``d_z``
        (after the activations), ``d_z_f_in``, ``d_z_i_in``, ``d_z_in`` (the blocks
        of ``d_y``), ``d_c_prev``, ``d_x``, ``d_h_prev``.
    """
    ca = cell.channel_axis
    act, sigma = cell.activation, cell.recurrent_activation
    d_act = derivative(act, "activation")
    d_sigma = derivative(sigma, "recurrent_activation")
    d_params = {}

    def ln_backward(v, d_out, name):
        d_v, d_params[name + "/gamma"], d_params[name + "/beta"] = layer_norm_backward(
            v, params[name + "/gamma"], d_out, ca, cell.norm_epsilon)
        return d_v

    def batch_sum(a):  # a peephole weight is shared by every sample of the batch
        return a.sum(axis=0)

    # h = z_o * act(c)
    d_h = d_h + d_state.h
    act_c = act(cache.c)
    d_z_o = d_h * act_c
    d_c = d_state.c + d_h * cache.z_o * d_act(cache.c, act_c)
    # z_o = sigmoid(z_o)
    d_z_o_hat = d_z_o * d_sigma(cache.z_o_hat, cache.z_o)
    # z_o, c = LN(z_o), LN(c)
    d_z_o_in, d_c_in = d_z_o_hat, d_c
    if cell.normalize:
        d_z_o_in = ln_backward(cache.z_o_in, d_z_o_hat, "z_o")
        d_c_in = ln_backward(cache.c_in, d_c, "c")
    # z_o = z_o + W_co * c   (the new c, before its layer norm)
    if cell.peephole:
        d_params["W_co"] = batch_sum(d_z_o_in * cache.c_in)
        d_c_in = d_c_in + d_z_o_in * params["W_co"]
    # c = c_prev * z_f + z_i * act(z)
    d_c_prev = d_c_in * cache.z_f
    d_z_f = d_c_in * cache.c_prev
    d_z_i = d_c_in * cache.z
    d_z = d_c_in * cache.z_i
    # z = act(z); z_i = sigmoid(z_i); z_f = sigmoid(z_f + forget_bias)
    d_z_hat = d_z * d_act(cache.z_hat, cache.z)
    d_z_i_hat = d_z_i * d_sigma(cache.z_i_hat, cache.z_i)
    d_z_f_hat = d_z_f * d_sigma(cache.z_f_hat + cell.forget_bias, cache.z_f)
    # z, z_i, z_f = LN(z), LN(z_i), LN(z_f)
    d_z_in, d_z_i_in, d_z_f_in = d_z_hat, d_z_i_hat, d_z_f_hat
    if cell.normalize:
        d_z_in = ln_backward(cache.z_in, d_z_hat, "z")
        d_z_i_in = ln_backward(cache.z_i_in, d_z_i_hat, "z_i")
        d_z_f_in = ln_backward(cache.z_f_in, d_z_f_hat, "z_f")
    # z_i = z_i + W_ci * c_prev;  z_f = z_f + W_cf * c_prev
    if cell.peephole:
        d_params["W_ci"] = batch_sum(d_z_i_in * cache.c_prev)
        d_params["W_cf"] = batch_sum(d_z_f_in * cache.c_prev)
        d_c_prev = d_c_prev + d_z_i_in * params["W_ci"] + d_z_f_in * params["W_cf"]
    # z, z_i, z_f, z_o = split(y, 4)
    d_y = np.concatenate([d_z_in, d_z_i_in, d_z_f_in, d_z_o_in], axis=ca)
    # y = conv(concat([x, h]), kernel) + bias
    if not cell.normalize:
        d_params["bias"] = d_y.sum(axis=tuple(a for a in range(d_y.ndim) if a != ca % d_y.ndim))
    d_x, d_h_prev, d_params["kernel"] = cell._conv_backward(cache.x, cache.h_prev,
                                                            params["kernel"], d_y)
    d_params = {name: d_params[name] for name in params}  # in the order of params
    d_prev = LSTMStateTuple(d_c_prev, d_h_prev)
    if not intermediates:
        return d_x, d_prev, d_params
    steps = (d_z_o, d_c, d_z_o_in, d_c_in, d_z_f, d_z_i, d_z, d_z_f_in, d_z_i_in, d_z_in,
             d_c_prev, d_x, d_h_prev)  # in the order of LSTM_BACKWARD_QUANTITIES
    return d_x, d_prev, d_params, dict(zip(LSTM_BACKWARD_QUANTITIES, steps))


class ConvLSTMCell(ConvCell):
    """A convolutional LSTM cell: TensorFlow 1's seed cell, computed in NumPy.

    Args:
        shape: spatial size of one input frame, N >= 1 ints (``[640, 480]``).
        filters: F, channels of ``c`` and ``h``.
        kernel: N ints, the convolution's size along each spatial axis.
        forget_bias: added to ``z_f`` before its sigmoid.
        activation: for ``z`` and the output of ``c`` (``np.tanh``, or a name).
        normalize: layer-normalise z, z_i, z_f, z_o and c (then no bias).
        peephole: let the gates see the cell state (``W_ci``, ``W_cf``, ``W_co``).
        data_format: ``"channels_last"`` (``[B, *shape, C]``) or ``"channels_first"``.
        recurrent_activation: the gates' squashing, ``"sigmoid"`` (default),
            ``"hard_sigmoid"`` (Keras 3) or ``"hard_sigmoid_keras2"``.
        strides, padding, dilation_rate: options of the *input* convolution,
            as Keras has them; the state is always convolved SAME, stride 1.
            With any of them not at its default the state's spatial size is the
            input convolution's output size.
        norm_epsilon: layer norm's variance epsilon (TF1's 1e-12).

    ``cell.params`` (after :meth:`build` or the first call) holds ``kernel``
    ``[*kernel, C_in + F, 4F]`` (blocks z, z_i, z_f, z_o on the last axis),
    ``bias`` ``[4F]`` when not normalize, ``W_ci``/``W_cf``/``W_co`` ``S`` with
    peepholes, and ``{z,z_i,z_f,z_o,c}/{gamma,beta}`` ``[F]`` with normalize.

    Example:
        One step on a batch of two 8 x 8 frames with 3 channels, from the zero state:

        >>> import numpy as np, refconv
        >>> cell = refconv.ConvLSTMCell([8, 8], filters=4, kernel=[3, 3])
        >>> cell.build(3, seed=0)
        >>> x = np.random.default_rng(1).random((2, 8, 8, 3))
        >>> h, (c, h_again) = cell(x, cell.zero_state(2))
        >>> h.shape, c.shape, cell.output_size
        ((2, 8, 8, 4), (2, 8, 8, 4), (8, 8, 4))
        >>> bool(np.all(np.abs(h) < 1))        # h = z_o * tanh(c)
        True
    """

    quantities = LSTM_QUANTITIES  # what return_gates gives, in the order a step computes them

    def __init__(self, shape, filters, kernel, forget_bias=1.0, activation=np.tanh,
                 normalize=True, peephole=True, data_format="channels_last", *,
                 recurrent_activation="sigmoid", strides=1, padding="same", dilation_rate=1,
                 norm_epsilon=EPSILON):
        super().__init__(shape, filters, kernel, activation, normalize, data_format)
        self.forget_bias = check_real(forget_bias, "forget_bias")
        if not isinstance(peephole, (bool, np.bool_)):
            raise TypeError(f"peephole: expected True or False, got {peephole!r}")
        self.peephole = bool(peephole)
        self.recurrent_activation = get_activation(recurrent_activation, "recurrent_activation")
        n = len(self.shape)
        self.strides = check_ints([strides] * n if np.isscalar(strides) else strides,
                                  "strides", n=n)
        self.dilation_rate = check_ints([dilation_rate] * n if np.isscalar(dilation_rate)
                                        else dilation_rate, "dilation_rate", n=n)
        if not isinstance(padding, str) or padding.upper() not in ("SAME", "VALID"):
            raise ValueError(f"padding: expected 'same' or 'valid', got {padding!r}")
        self.padding = padding.upper()
        self.norm_epsilon = check_real(norm_epsilon, "norm_epsilon", positive=True)
        for size, k, d, axis in zip(self.shape, self.kernel, self.dilation_rate, range(n)):
            if self.padding == "VALID" and (k - 1) * d + 1 > size:
                raise ValueError(f"shape: axis {axis} has size {size}, smaller than the dilated "
                                 f"kernel {(k - 1) * d + 1}; 'valid' padding leaves no output")

    @property
    def _default_input_conv(self):
        return (self.padding == "SAME" and set(self.strides) == {1}
                and set(self.dilation_rate) == {1})

    @property
    def state_shape(self):
        return [conv_output_size(n, k, s, d, self.padding) for n, k, s, d
                in zip(self.shape, self.kernel, self.strides, self.dilation_rate)]

    @property
    def state_size(self):
        """``LSTMStateTuple(S, S)``: one frame of c and of h, without the batch axis."""
        return LSTMStateTuple(self.output_size, self.output_size)

    def _param_specs(self, in_channels):
        f, s = self.filters, self.output_size
        specs = {"kernel": ((*self.kernel, in_channels + f, 4 * f), glorot_uniform)}
        if not self.normalize:
            specs["bias"] = ((4 * f,), 0.0)
        if self.peephole:
            for name in LSTM_PEEPHOLES:
                specs[name] = (s, glorot_uniform)
        if self.normalize:
            for name in LSTM_NORMS:
                specs[name + "/gamma"] = ((f,), 1.0)
                specs[name + "/beta"] = ((f,), 0.0)
        return specs

    def _conv(self, x, h, kernel):
        """``conv(concat([x, h]), kernel)``, or its two halves when the input convolution differs."""
        ca, fmt = self.channel_axis, self.data_format
        if self._default_input_conv:
            return conv_nd(np.concatenate([x, h], axis=ca), kernel, data_format=fmt)
        c_in = x.shape[ca]
        # Linear in the input channels: conv(concat([x, h]), W) = conv(x, W_x) + conv(h, W_h).
        return (conv_nd(x, kernel[..., :c_in, :], self.strides, self.padding,
                        self.dilation_rate, fmt)
                + conv_nd(h, kernel[..., c_in:, :], data_format=fmt))

    def _conv_backward(self, x, h, kernel, d_y):
        """Gradients of :meth:`_conv` with respect to ``x``, ``h`` and ``kernel``."""
        ca, fmt = self.channel_axis, self.data_format
        c_in = x.shape[ca]
        if self._default_input_conv:
            d_xh, d_kernel = conv_nd_backward(np.concatenate([x, h], axis=ca), kernel, d_y,
                                              data_format=fmt)
            d_x, d_h = np.split(d_xh, [c_in], axis=ca)
            return d_x, d_h, d_kernel
        d_x, d_kernel_x = conv_nd_backward(x, kernel[..., :c_in, :], d_y, self.strides,
                                           self.padding, self.dilation_rate, fmt)
        d_h, d_kernel_h = conv_nd_backward(h, kernel[..., c_in:, :], d_y, data_format=fmt)
        return d_x, d_h, np.concatenate([d_kernel_x, d_kernel_h], axis=-2)

    def zero_state(self, batch_size, dtype=np.float64):
        """``LSTMStateTuple(c, h)`` of zeros, each ``[batch_size, *S]``."""
        return LSTMStateTuple(self._zeros(batch_size, dtype), self._zeros(batch_size, dtype))

    def _check_state(self, state, batch_size, dtype, argument="state"):
        if not isinstance(state, tuple) or len(state) != 2:
            raise TypeError(f"{argument}: expected LSTMStateTuple(c, h) (a pair of arrays), "
                            f"got {type(state).__name__}"
                            + (f" of length {len(state)}" if isinstance(state, tuple) else ""))
        return LSTMStateTuple(self._check_state_array(state[0], batch_size, dtype, argument + ".c"),
                              self._check_state_array(state[1], batch_size, dtype, argument + ".h"))

    def _step(self, x, state, params):
        return lstm_step(x, state, params, self)

    def _step_backward(self, d_h, d_state, cache, params):
        return lstm_step_backward(d_h, d_state, cache, params, self)

    @staticmethod
    def _slim(cache):
        """What backpropagation through time keeps of a step: its inputs and the convolution."""
        return cache.x, LSTMStateTuple(cache.c_prev, cache.h_prev), cache.y

    def _rebuild(self, slim, params):
        """The step's full cache again, from :meth:`_slim`'s part, without convolving."""
        return lstm_gates(*slim, params, self)[2]

    @staticmethod
    def _gates(cache):
        return {name: getattr(cache, name) for name in LSTM_QUANTITIES}
