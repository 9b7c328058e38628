"""Independent oracles shared by the mutation-audit tests (issue 18), written from SPEC.md.

Nothing here imports refconv: the per-pixel step references, the central
differences, the relative error and the reversal loop are plain NumPy, so a bug
in refconv cannot be copied into the oracle it is checked against. The one
exception is :func:`readable_bptt`, which chains refconv's *public* readable step
functions (``lstm_step``/``lstm_step_backward``, ``gru_step``/``gru_step_backward``)
in a plain loop: a backward that shares no code with the fast path
(``dynamic_rnn_grad`` of a full-length LSTM), to hold the fast path to.

* :func:`conv_same`: TF-SAME cross-correlation, stride 1, one ``np.dot`` per
  output pixel (``total = k - 1`` zeros, ``total // 2`` before, the rest after).
* :func:`lstm_step_ref`, :func:`gru_step_ref`: one step, SPEC's lines in order,
  returning every quantity by name.
* :func:`central_differences`, :func:`relative_error`: finite differences.
* :func:`reverse_loop`: ``tf.reverse_sequence`` as a loop over rows and steps.
"""

import math

import numpy as np

LN_EPS = 1e-12  # tf.contrib.layers.layer_norm's variance epsilon


# --------------------------------------------------------------------------
# Layout
# --------------------------------------------------------------------------

def to_last(a, fmt):
    """``[B, C, *spatial]`` -> ``[B, *spatial, C]`` for channels_first; channels_last unchanged."""
    return a if fmt == "channels_last" else np.moveaxis(a, 1, -1)


def from_last(a, fmt):
    """Inverse of :func:`to_last`."""
    return a if fmt == "channels_last" else np.moveaxis(a, -1, 1)


def frame(fmt, spatial, channels):
    """One frame's shape without batch: ``[*spatial, C]`` or ``[C, *spatial]``."""
    return (*spatial, channels) if fmt == "channels_last" else (channels, *spatial)


# --------------------------------------------------------------------------
# The per-pixel step references (channels_last inside; converted at the edges)
# --------------------------------------------------------------------------

def conv_same(x, kernel):
    """TF-SAME cross-correlation, stride 1: ``x [B, *sp, C_in]``, ``kernel [*k, C_in, C_out]``.

    For every sample and output pixel, the ``[*k, C_in]`` window of the padded
    input dotted with the kernel flattened to ``[prod(k) * C_in, C_out]``.
    Along an axis with kernel size ``k`` the total padding is ``k - 1``:
    ``(k - 1) // 2`` zeros before, the rest after (an even kernel pads one more after).
    """
    k = kernel.shape[:-2]
    pads = [((kk - 1) // 2, kk - 1 - (kk - 1) // 2) for kk in k]
    xp = np.pad(x, [(0, 0), *pads, (0, 0)])
    w = kernel.reshape(-1, kernel.shape[-1])
    spatial = x.shape[1:-1]
    y = np.zeros((x.shape[0], *spatial, kernel.shape[-1]))
    for b in range(x.shape[0]):
        for pos in np.ndindex(*spatial):
            window = tuple(slice(p, p + kk) for p, kk in zip(pos, k))
            y[(b, *pos)] = np.dot(xp[(b, *window)].reshape(-1), w)
    return y


def layer_norm_ref(v, gamma, beta, eps=LN_EPS):
    """Per sample over every non-batch axis (channels_last ``v``), biased variance."""
    out = np.empty_like(v)
    for b in range(v.shape[0]):
        mean = v[b].mean()
        var = ((v[b] - mean) ** 2).mean()
        out[b] = (v[b] - mean) / math.sqrt(var + eps)
    return out * gamma + beta


def sigmoid(v):
    return 1.0 / (1.0 + np.exp(-v))


def block(y, i, filters):
    """Channel block ``i`` (``[i F, (i + 1) F)``) of a channels_last array."""
    return y[..., i * filters:(i + 1) * filters]


def lstm_step_ref(x, c, h, params, *, fmt, normalize, peephole, forget_bias):
    """One ConvLSTM step, SPEC's lines in order. Arrays in layout ``fmt``; returns a dict of them.

    Keys: ``z`` (after tanh), ``z_i``, ``z_f``, ``z_o`` (after the sigmoid), ``c``, ``h``.
    """
    x, c, h = to_last(x, fmt), to_last(c, fmt), to_last(h, fmt)
    p = {name: to_last(v[None], fmt)[0] if name.startswith("W_c") else v
         for name, v in params.items()}
    F = c.shape[-1]
    y = conv_same(np.concatenate([x, h], axis=-1), p["kernel"])
    if not normalize:
        y = y + p["bias"]
    z, z_i, z_f, z_o = (block(y, i, F) for i in range(4))
    if peephole:
        z_i = z_i + p["W_ci"] * c
        z_f = z_f + p["W_cf"] * c
    if normalize:
        z = layer_norm_ref(z, p["z/gamma"], p["z/beta"])
        z_i = layer_norm_ref(z_i, p["z_i/gamma"], p["z_i/beta"])
        z_f = layer_norm_ref(z_f, p["z_f/gamma"], p["z_f/beta"])
    z_f = sigmoid(z_f + forget_bias)
    z_i = sigmoid(z_i)
    z = np.tanh(z)
    c_new = c * z_f + z_i * z
    if peephole:
        z_o = z_o + p["W_co"] * c_new
    if normalize:
        z_o = layer_norm_ref(z_o, p["z_o/gamma"], p["z_o/beta"])
        c_new = layer_norm_ref(c_new, p["c/gamma"], p["c/beta"])
    z_o = sigmoid(z_o)
    h_new = z_o * np.tanh(c_new)
    values = {"z": z, "z_i": z_i, "z_f": z_f, "z_o": z_o, "c": c_new, "h": h_new}
    return {name: from_last(v, fmt) for name, v in values.items()}


def gru_step_ref(x, h, params, *, fmt, normalize):
    """One ConvGRU step, SPEC's lines in order; returns ``r``, ``u``, ``candidate``, ``h``."""
    x, h = to_last(x, fmt), to_last(h, fmt)
    p = params
    F = h.shape[-1]
    y = conv_same(np.concatenate([x, h], axis=-1), p["gates/kernel"])
    if not normalize:
        y = y + p["gates/bias"]
    r, u = block(y, 0, F), block(y, 1, F)
    if normalize:
        r = layer_norm_ref(r, p["r/gamma"], p["r/beta"])
        u = layer_norm_ref(u, p["u/gamma"], p["u/beta"])
    r, u = sigmoid(r), sigmoid(u)
    y = conv_same(np.concatenate([x, r * h], axis=-1), p["candidate/kernel"])
    if not normalize:
        y = y + p["candidate/bias"]
    if normalize:
        y = layer_norm_ref(y, p["candidate/gamma"], p["candidate/beta"])
    candidate = np.tanh(y)
    h_new = u * h + (1 - u) * candidate
    values = {"r": r, "u": u, "candidate": candidate, "h": h_new}
    return {name: from_last(v, fmt) for name, v in values.items()}


# --------------------------------------------------------------------------
# Parameters and data
# --------------------------------------------------------------------------

def randomize(cell, rng, scale=0.5):
    """Every parameter random and non-zero: kernels and peepholes N(0, scale^2),
    gamma around 1, beta and biases around 0 (so a dropped term changes the numbers)."""
    for name, value in cell.params.items():
        noise = scale * rng.standard_normal(value.shape)
        cell.params[name] = 1.0 + noise if name.endswith("gamma") else noise


# --------------------------------------------------------------------------
# Finite differences
# --------------------------------------------------------------------------

def relative_error(analytic, numeric):
    """``|a - n| / max(|a|, |n|)`` over whole tensors (Euclidean norms); 0 when both are zero."""
    a, n = np.ravel(analytic), np.ravel(numeric)
    scale = max(np.linalg.norm(a), np.linalg.norm(n))
    return 0.0 if scale == 0 else float(np.linalg.norm(a - n) / scale)


def central_differences(loss, array, index, eps=1e-6):
    """``(loss(a + eps e_i) - loss(a - eps e_i)) / (2 eps)`` for each flat index ``i`` of ``array``.

    ``array`` is perturbed in place (through a flat view) and restored.
    """
    flat = array.reshape(-1)
    assert np.shares_memory(flat, array), "central_differences needs a contiguous array"
    out = np.empty(len(index))
    for n, i in enumerate(index):
        old = flat[i]
        flat[i] = old + eps
        plus = loss()
        flat[i] = old - eps
        minus = loss()
        flat[i] = old
        out[n] = (plus - minus) / (2 * eps)
    return out


def sample_index(size, count, rng):
    """At most ``count`` distinct flat indices of an array of ``size`` entries, sorted."""
    if size <= count:
        return np.arange(size)
    return np.sort(rng.choice(size, count, replace=False))


# --------------------------------------------------------------------------
# The readable backward through time, from refconv's public step functions
# --------------------------------------------------------------------------

def readable_bptt(cell, inputs, d_outputs, d_state, initial_state):
    """Gradients of ``sum(outputs * d_outputs) + sum(final_state * d_state)``, full length.

    A plain loop over ``refconv.lstm_step``/``gru_step`` forward and their
    ``*_step_backward`` in reverse, batch-major. Returns ``(d_inputs, d_state0, d_params)``.
    """
    import refconv
    lstm = isinstance(cell, refconv.ConvLSTMCell)
    step = refconv.lstm_step if lstm else refconv.gru_step
    step_backward = refconv.lstm_step_backward if lstm else refconv.gru_step_backward
    params = {name: np.asarray(v, dtype=np.float64) for name, v in cell.params.items()}
    state, caches = initial_state, []
    for t in range(inputs.shape[1]):
        _, state, cache = step(inputs[:, t], state, params, cell)
        caches.append(cache)
    d_inputs = np.zeros_like(inputs)
    d_params = {name: np.zeros_like(v) for name, v in params.items()}
    for t in reversed(range(inputs.shape[1])):
        d_inputs[:, t], d_state, d_step = step_backward(d_outputs[:, t], d_state, caches[t],
                                                        params, cell)
        for name in d_params:
            d_params[name] += d_step[name]
    return d_inputs, d_state, d_params


# --------------------------------------------------------------------------
# Reversal
# --------------------------------------------------------------------------

def reverse_loop(x, lengths, seq_axis, batch_axis):
    """``tf.reverse_sequence`` as a loop: row ``b``'s first ``lengths[b]`` steps reversed."""
    out = np.array(x, copy=True)
    for b, n in enumerate(lengths):
        for t in range(n):
            dst, src = [slice(None)] * x.ndim, [slice(None)] * x.ndim
            dst[batch_axis], dst[seq_axis] = b, t
            src[batch_axis], src[seq_axis] = b, n - 1 - t
            out[tuple(dst)] = x[tuple(src)]
    return out


# --------------------------------------------------------------------------
# Reaching a public function wherever refconv's modules hold it
# --------------------------------------------------------------------------

def wrap_everywhere(monkeypatch, original, change=lambda result: result):
    """Replace the public function ``original`` in every refconv module that holds it.

    The replacement calls ``original`` and returns ``change(result)``; the
    returned list gets one entry per call (to assert the seam was reached, or
    was not).
    """
    import sys

    calls = []

    def wrapped(*args, **kwargs):
        calls.append(1)
        return change(original(*args, **kwargs))

    patched = 0
    for name, module in list(sys.modules.items()):
        if name == "refconv" or name.startswith("refconv."):
            for attr, value in list(vars(module).items()):
                if value is original:
                    monkeypatch.setattr(module, attr, wrapped)
                    patched += 1
    assert patched, f"{original.__name__} is held by no refconv module: update wrap_everywhere()"
    return calls


def lstm_backward_intermediates(d_h, d_c, cache, params, cell):
    """The named gradients inside one LSTM step's backward, recomputed line by line.

    An oracle for ``lstm_step_backward(..., intermediates=True)``: tanh and sigmoid,
    channels_last, written from the forward equations (SPEC.md), independent of
    refconv's backward. Returns ``d_z_o, d_c, d_z_o_in, d_c_in, d_z_f, d_z_i, d_z,
    d_z_f_in, d_z_i_in, d_z_in`` (the step's inputs' gradients are checked by finite
    differences elsewhere).
    """
    from refconv.layer_norm import layer_norm_backward

    def ln_backward(v, d_out, name):
        return layer_norm_backward(v, params[name + "/gamma"], d_out)[0]

    g = {}
    # h = z_o * tanh(c)
    tanh_c = np.tanh(cache.c)
    g["d_z_o"] = d_h * tanh_c
    g["d_c"] = d_c + d_h * cache.z_o * (1 - tanh_c ** 2)
    # z_o = sigmoid(LN(z_o_in));  c = LN(c_in);  z_o_in = block 3 + W_co * c_in
    d_z_o_in = g["d_z_o"] * cache.z_o * (1 - cache.z_o)
    d_c_in = g["d_c"]
    if cell.normalize:
        d_z_o_in = ln_backward(cache.z_o_in, d_z_o_in, "z_o")
        d_c_in = ln_backward(cache.c_in, d_c_in, "c")
    if cell.peephole:
        d_c_in = d_c_in + d_z_o_in * params["W_co"]
    g["d_z_o_in"], g["d_c_in"] = d_z_o_in, d_c_in
    # c_in = c_prev * z_f + z_i * z
    g["d_z_f"] = d_c_in * cache.c_prev
    g["d_z_i"] = d_c_in * cache.z
    g["d_z"] = d_c_in * cache.z_i
    # z_f = sigmoid(LN(z_f_in) + forget_bias);  z_i = sigmoid(LN(z_i_in));  z = tanh(LN(z_in))
    d_z_f_in = g["d_z_f"] * cache.z_f * (1 - cache.z_f)
    d_z_i_in = g["d_z_i"] * cache.z_i * (1 - cache.z_i)
    d_z_in = g["d_z"] * (1 - cache.z ** 2)
    if cell.normalize:
        d_z_f_in = ln_backward(cache.z_f_in, d_z_f_in, "z_f")
        d_z_i_in = ln_backward(cache.z_i_in, d_z_i_in, "z_i")
        d_z_in = ln_backward(cache.z_in, d_z_in, "z")
    g["d_z_f_in"], g["d_z_i_in"], g["d_z_in"] = d_z_f_in, d_z_i_in, d_z_in
    return g
