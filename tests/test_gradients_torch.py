"""Hand-written gradients against PyTorch autograd (float64, relative error <= 1e-10).

The second, independent check of :func:`refconv.dynamic_rnn_grad` and
:func:`refconv.bidirectional_dynamic_rnn_grad` (the first is finite
differences, in test_gradients.py). The forward computation is written again
here, in PyTorch, from SPEC.md's equations and not by calling refconv:

* N-D cross-correlation with TensorFlow's SAME padding (``total // 2`` zeros
  before, the rest after, by ``F.pad``; then ``conv1d/2d/3d`` with no padding),
  kernels ``[*k, C_in, C_out]`` permuted to torch's ``[C_out, C_in, *k]``, and
  the LSTM's Keras-style input options (strides, VALID, dilation) on ``x`` only;
* TF1 contrib layer norm (per sample over every non-batch axis, biased
  variance, eps 1e-12, per-channel gamma/beta in both layouts);
* the ConvLSTM step (peepholes, forget_bias, the three recurrent activations,
  tanh or relu) and the ConvGRU step;
* the time loop with TensorFlow's sequence_length semantics, reverse_sequence
  for the backward direction, and stacked cells.

Autograd differentiates ``L = sum(outputs * d_outputs) + sum(final_state * d_state)``
with respect to the inputs, the initial state and every parameter, and each
gradient must match refconv's to a relative error of 1e-10 (``max |a - b| /
max |b|``, :func:`relative_error` below); the forward outputs and final
states too. Every configuration draws its shapes, parameters (non-zero biases,
gamma off 1, beta off 0, peepholes), initial states and upstream gradients at
random from a fixed seed.
"""

import numpy as np
import pytest

from _frameworks import require
from conftest import jitter, random_state
from refconv import (ConvGRUCell, ConvLSTMCell, MultiRNNCell,
                     bidirectional_dynamic_rnn, bidirectional_dynamic_rnn_grad, dynamic_rnn,
                     dynamic_rnn_grad)

torch = require("torch")
F = torch.nn.functional

RTOL = 1e-10
DT = torch.float64
EPS = 1e-12  # tf.contrib.layers.layer_norm's variance epsilon

_worst_by_kind = {}  # kind of quantity -> (worst relative error seen, tensors compared)


@pytest.fixture(scope="module", autouse=True)
def _limit_threads_and_report(request):
    """Two threads (small tensors); at the end, print the worst error per kind of quantity."""
    threads = torch.get_num_threads()
    torch.set_num_threads(2)
    yield
    torch.set_num_threads(threads)
    reporter = request.config.pluginmanager.get_plugin("terminalreporter")
    capture = request.config.pluginmanager.get_plugin("capturemanager")
    if reporter is None or capture is None or not _worst_by_kind:
        return
    with capture.global_and_fixture_disabled():  # a line in the run's log, not captured output
        reporter.write("\n")
        reporter.write_line(f"refconv vs PyTorch autograd, worst relative error "
                            f"(tolerance {RTOL:g}):")
        for kind, (error, count) in sorted(_worst_by_kind.items()):
            reporter.write_line(f"  {kind}: {error:.2e} ({count} tensors)")


def relative_error(ours, theirs):
    """``max |ours - theirs| / max |theirs|``: the error relative to the tensor's scale.

    Relative to each element, entries that are zero up to rounding would count
    as wrong; a float64 rounding error is relative to the tensor's scale. When
    ``theirs`` is all zeros, ``ours`` must be too (the absolute error is returned).
    """
    ours, theirs = np.asarray(ours, np.float64), np.asarray(theirs, np.float64)
    scale = np.max(np.abs(theirs), initial=0.0)
    return float(np.max(np.abs(ours - theirs), initial=0.0) / (scale if scale else 1.0))


def record(kind, error):
    worst, count = _worst_by_kind.get(kind, (0.0, 0))
    _worst_by_kind[kind] = max(worst, error), count + 1


# --------------------------------------------------------------------------
# The computation, in PyTorch, from SPEC.md.

def channel_axis(cf):
    return 1 if cf else -1


def per_channel(v, ndim, cf):
    """A ``[F]`` vector broadcast along the channel axis of a rank-``ndim`` tensor."""
    return v.reshape(-1, *([1] * (ndim - 2))) if cf else v


def t_conv(x, kernel, cf, strides=None, padding="SAME", dilation=None):
    """TF's ``nn.convolution``: cross-correlation, kernel ``[*k, C_in, C_out]``, SAME or VALID."""
    n = kernel.dim() - 2
    strides = list(strides or [1] * n)
    dilation = list(dilation or [1] * n)
    if not cf:
        x = x.movedim(-1, 1)
    if padding == "SAME":
        pads = []
        for size, k, s, d in zip(x.shape[2:], kernel.shape[:n], strides, dilation):
            out = -(-size // s)
            total = max((out - 1) * s + (k - 1) * d + 1 - size, 0)
            pads.append((total // 2, total - total // 2))
        x = F.pad(x, [p for pair in reversed(pads) for p in pair])  # last axis first
    weight = kernel.permute(n + 1, n, *range(n)).contiguous()
    y = (F.conv1d, F.conv2d, F.conv3d)[n - 1](x, weight, stride=strides, dilation=dilation)
    return y if cf else y.movedim(1, -1)


def t_layer_norm(v, gamma, beta, cf):
    dims = tuple(range(1, v.dim()))
    mean = v.mean(dims, keepdim=True)
    var = ((v - mean) ** 2).mean(dims, keepdim=True)
    return ((v - mean) / torch.sqrt(var + EPS) * per_channel(gamma, v.dim(), cf)
            + per_channel(beta, v.dim(), cf))


ACTIVATIONS = {
    "sigmoid": torch.sigmoid,
    "tanh": torch.tanh,
    "relu": torch.relu,
    "hard_sigmoid": lambda v: torch.clamp(v / 6 + 0.5, 0, 1),          # Keras 3
    "hard_sigmoid_keras2": lambda v: torch.clamp(0.2 * v + 0.5, 0, 1),  # Keras 2
}


def lstm_options(kwargs, cf, n):
    """SPEC's defaults for ConvLSTMCell, overridden by ``kwargs``."""
    o = {**dict(normalize=True, peephole=True, forget_bias=1.0, activation="tanh",
                recurrent_activation="sigmoid", strides=1, padding="same", dilation_rate=1),
         **kwargs}
    o["strides"] = [o["strides"]] * n if np.isscalar(o["strides"]) else list(o["strides"])
    o["dilation_rate"] = ([o["dilation_rate"]] * n if np.isscalar(o["dilation_rate"])
                          else list(o["dilation_rate"]))
    o["padding"] = o["padding"].upper()
    o["default_conv"] = (o["padding"] == "SAME" and set(o["strides"]) == {1}
                         and set(o["dilation_rate"]) == {1})
    o["cf"], o["kind"] = cf, "lstm"
    return o


def gru_options(kwargs, cf):
    return {**dict(normalize=True, activation="tanh"), **kwargs, "cf": cf, "kind": "gru"}


def t_lstm_step(x, state, p, o):
    c, h = state
    cf = o["cf"]
    ca = channel_axis(cf)
    act, sigma = ACTIVATIONS[o["activation"]], ACTIVATIONS[o["recurrent_activation"]]

    def ln(v, name):
        return t_layer_norm(v, p[name + "/gamma"], p[name + "/beta"], cf)

    if o["default_conv"]:
        y = t_conv(torch.cat([x, h], ca), p["kernel"], cf)
    else:  # the input convolved with the Keras options, the state SAME, stride 1
        c_in = x.shape[ca]
        y = (t_conv(x, p["kernel"][..., :c_in, :], cf, o["strides"], o["padding"],
                    o["dilation_rate"])
             + t_conv(h, p["kernel"][..., c_in:, :], cf))
    if not o["normalize"]:
        y = y + per_channel(p["bias"], y.dim(), cf)
    z, z_i, z_f, z_o = torch.chunk(y, 4, dim=ca)
    if o["peephole"]:
        z_i = z_i + p["W_ci"] * c
        z_f = z_f + p["W_cf"] * c
    if o["normalize"]:
        z, z_i, z_f = ln(z, "z"), ln(z_i, "z_i"), ln(z_f, "z_f")
    z_f = sigma(z_f + o["forget_bias"])
    z_i = sigma(z_i)
    c_new = c * z_f + z_i * act(z)
    if o["peephole"]:
        z_o = z_o + p["W_co"] * c_new
    if o["normalize"]:
        z_o, c_new = ln(z_o, "z_o"), ln(c_new, "c")
    z_o = sigma(z_o)
    h_new = z_o * act(c_new)
    return h_new, (c_new, h_new)


def t_gru_step(x, h, p, o):
    cf = o["cf"]
    ca = channel_axis(cf)
    act = ACTIVATIONS[o["activation"]]

    def ln(v, name):
        return t_layer_norm(v, p[name + "/gamma"], p[name + "/beta"], cf)

    y = t_conv(torch.cat([x, h], ca), p["gates/kernel"], cf)
    if not o["normalize"]:
        y = y + per_channel(p["gates/bias"], y.dim(), cf)
    r, u = torch.chunk(y, 2, dim=ca)
    if o["normalize"]:
        r, u = ln(r, "r"), ln(u, "u")
    r, u = torch.sigmoid(r), torch.sigmoid(u)
    y = t_conv(torch.cat([x, r * h], ca), p["candidate/kernel"], cf)
    if not o["normalize"]:
        y = y + per_channel(p["candidate/bias"], y.dim(), cf)
    if o["normalize"]:
        y = ln(y, "candidate")
    h_new = u * h + (1 - u) * act(y)
    return h_new, h_new


def t_step(x, state, params, options):
    """One step of a cell or of a stack (``options`` a list: one entry per layer)."""
    if isinstance(options, list):
        new_states = []
        for layer_state, p, o in zip(state, params, options):
            x, layer_state = t_step(x, layer_state, p, o)
            new_states.append(layer_state)
        return x, tuple(new_states)
    return (t_lstm_step if options["kind"] == "lstm" else t_gru_step)(x, state, params, options)


def t_where(alive, new, old):
    if isinstance(new, tuple):
        return tuple(t_where(alive, n, o) for n, o in zip(new, old))
    return torch.where(alive.reshape(-1, *([1] * (new.dim() - 1))), new, old)


def t_dynamic_rnn(params, options, inputs, state, lengths, time_major=False):
    """TF's dynamic_rnn: past a row's length the output is zero and the state carried through."""
    x = inputs.transpose(0, 1) if time_major else inputs
    steps = x.shape[1]
    outputs = []
    for t in range(steps):
        h, new_state = t_step(x[:, t], state, params, options)
        if lengths is None:
            state = new_state
            outputs.append(h)
        else:
            alive = torch.as_tensor(t < np.asarray(lengths))
            state = t_where(alive, new_state, state)
            outputs.append(t_where(alive, h, torch.zeros_like(h)))
    out = torch.stack(outputs, 1)
    return (out.transpose(0, 1) if time_major else out), state


def t_reverse_sequence(x, lengths, time_major=False):
    """TF's reverse_sequence: each row reversed within its own length, the rest left in place."""
    x = x.transpose(0, 1) if time_major else x
    batch, steps = x.shape[:2]
    lengths = np.full(batch, steps) if lengths is None else np.asarray(lengths)
    t = np.arange(steps)
    index = np.where(t < lengths[:, None], lengths[:, None] - 1 - t, t)
    out = x[torch.arange(batch)[:, None], torch.as_tensor(index)]
    return out.transpose(0, 1) if time_major else out


def t_bidirectional(params_fw, options_fw, params_bw, options_bw, inputs, state_fw, state_bw,
                    lengths, time_major=False):
    out_fw, final_fw = t_dynamic_rnn(params_fw, options_fw, inputs, state_fw, lengths,
                                     time_major)
    out_bw, final_bw = t_dynamic_rnn(params_bw, options_bw,
                                     t_reverse_sequence(inputs, lengths, time_major),
                                     state_bw, lengths, time_major)
    return (out_fw, t_reverse_sequence(out_bw, lengths, time_major)), (final_fw, final_bw)


# --------------------------------------------------------------------------
# Plumbing: random problems, NumPy <-> torch, comparisons.

def leaves(tree):
    """The arrays of a nested state / parameter structure, with a path for messages."""
    if isinstance(tree, dict):
        return [(f"[{k!r}]" + path, a) for k in tree for path, a in leaves(tree[k])]
    if isinstance(tree, (list, tuple)):
        names = getattr(tree, "_fields", None) or [f"[{i}]" for i in range(len(tree))]
        names = [n if n.startswith("[") else "." + n for n in names]
        return [(name + path, a) for name, sub in zip(names, tree) for path, a in leaves(sub)]
    return [("", tree)]


def to_torch(tree):
    """The same structure with float64 leaf tensors that require grad (LSTMStateTuple -> tuple)."""
    if isinstance(tree, dict):
        return {k: to_torch(v) for k, v in tree.items()}
    if isinstance(tree, (list, tuple)):
        return type(tree)(to_torch(v) for v in tree) if isinstance(tree, list) \
            else tuple(to_torch(v) for v in tree)
    return torch.tensor(np.asarray(tree, dtype=np.float64), dtype=DT, requires_grad=True)


def dot(a, b):
    """``sum(a * b)`` over matching structures (b NumPy, may be None for zero)."""
    if b is None:
        return 0.0
    return sum((ta * torch.as_tensor(nb)).sum() for (_, ta), (_, nb) in zip(leaves(a), leaves(b)))


def param_kind(name):
    name = name.split("/")[-1]
    if name.startswith("W_c"):
        return "params: peepholes"
    if name in ("kernel", "bias", "gamma", "beta"):
        return f"params: {name}"
    raise AssertionError(f"unknown parameter {name!r}")


def check(kind, what, ours, theirs):
    """refconv's array ``ours`` against torch's ``theirs`` (a tensor, its value or its .grad)."""
    if isinstance(theirs, torch.Tensor):
        theirs = theirs.detach().numpy()
    assert np.shape(ours) == np.shape(theirs), (what, np.shape(ours), np.shape(theirs))
    error = relative_error(ours, theirs)
    record(kind, error)
    assert error <= RTOL, f"{what}: relative error {error:.3g} > {RTOL:g} against autograd"


def check_tree(kind, what, ours, theirs):
    """Leaf by leaf; ``theirs`` holds torch leaves whose ``.grad`` is compared (None means 0)."""
    ours_leaves, their_leaves = leaves(ours), leaves(theirs)
    assert len(ours_leaves) == len(their_leaves), what
    for (path, a), (_, t) in zip(ours_leaves, their_leaves):
        grad = t.grad if t.grad is not None else torch.zeros_like(t)
        check(kind, what + path, a, grad)


def check_param_grads(what, ours, theirs):
    """Gradients of every parameter: the same keys (and order) as the cell's params."""
    if isinstance(theirs, list):
        assert isinstance(ours, list) and len(ours) == len(theirs), what
        for i, (a, t) in enumerate(zip(ours, theirs)):
            check_param_grads(f"{what}[{i}]", a, t)
        return
    assert list(ours) == list(theirs), (what, list(ours), list(theirs))
    for name in theirs:
        grad = theirs[name].grad
        check(param_kind(name), f"{what}[{name!r}]",
              ours[name], grad if grad is not None else torch.zeros_like(theirs[name]))


def frame_shape(shape, channels, cf):
    return (channels, *shape) if cf else (*shape, channels)


def compare_dynamic_rnn(cell, options, inputs, d_outputs, d_state, lengths, initial_state,
                        time_major=False, what=""):
    """refconv's dynamic_rnn and dynamic_rnn_grad against torch's forward and autograd."""
    grads = dynamic_rnn_grad(cell, inputs, d_outputs, d_state, sequence_length=lengths,
                             initial_state=initial_state, time_major=time_major)
    outputs, final = dynamic_rnn(cell, inputs, lengths, initial_state, time_major=time_major)
    batch = inputs.shape[1 if time_major else 0]
    s0 = initial_state if initial_state is not None else cell.zero_state(batch)
    t_inputs, t_s0, t_params = to_torch(inputs), to_torch(s0), to_torch(cell.params)
    t_out, t_final = t_dynamic_rnn(t_params, options, t_inputs, t_s0, lengths, time_major)
    loss = (t_out * torch.as_tensor(d_outputs)).sum() + dot(t_final, d_state)
    loss.backward()

    check("outputs (forward)", what + " outputs", outputs, t_out)
    for (path, a), (_, t) in zip(leaves(final), leaves(t_final)):
        check("final state (forward)", what + " final_state" + path, a, t)
    check("d inputs", what + " d_inputs", grads.inputs, t_inputs.grad)
    check_tree("d initial state", what + " d_initial_state", grads.initial_state, t_s0)
    check_param_grads(what + " d_params", grads.params, t_params)
    return grads, t_inputs


# --------------------------------------------------------------------------
# One direction: every option of each cell, 1-3 spatial axes, both layouts.

LSTM_CONFIGS = [
    dict(),                                                        # the seed: LN and peepholes
    dict(normalize=False, peephole=True, forget_bias=0.0),
    dict(normalize=True, peephole=False, activation="relu"),
    dict(normalize=False, peephole=False, recurrent_activation="hard_sigmoid"),
    dict(normalize=True, peephole=True, recurrent_activation="hard_sigmoid_keras2",
         activation="relu"),
    dict(normalize=False, peephole=True, recurrent_activation="hard_sigmoid_keras2"),
    dict(normalize=False, peephole=True, strides=2, padding="valid"),
    dict(normalize=True, peephole=True, padding="valid", dilation_rate=2),
    dict(normalize=False, peephole=False, strides=2, padding="same"),
    dict(normalize=True, peephole=True, padding="same", dilation_rate=2),
    dict(normalize=True, peephole=True, padding="valid", strides="random",
         dilation_rate="random", recurrent_activation="hard_sigmoid"),
]


def random_problem(rng, n, case, kwargs):
    """Random shapes for a case: small frames, an even kernel axis in every other case.

    The state's spatial size is drawn first (at least 2 along every axis, so that
    no layer norm sees only two values, where its gradient is rounding noise),
    then an input size that the input convolution maps onto it.
    """
    kwargs = dict(kwargs)
    for key in ("strides", "dilation_rate"):
        if kwargs.get(key) == "random":
            kwargs[key] = [int(v) for v in rng.integers(1, 3, n)]
    kernel = rng.integers(1, 4, n)
    if case % 2 == 0:
        kernel[rng.integers(n)] = rng.choice([2, 4])
    strides = np.broadcast_to(kwargs.get("strides", 1), (n,))
    dilation = np.broadcast_to(kwargs.get("dilation_rate", 1), (n,))
    extent = (kernel - 1) * dilation + 1
    out = rng.integers(*((4, 7), (3, 6), (2, 4))[n - 1], size=n)
    extra = rng.integers(0, strides)  # sizes that the stride does not divide, too
    if kwargs.get("padding") == "valid":
        shape = (out - 1) * strides + extent + extra
    else:
        shape = (out - 1) * strides + 1 + extra
    return [int(v) for v in shape], [int(v) for v in kernel], kwargs


def random_lengths(rng, case, batch, steps):
    """None, or lengths that include 0 and T, or drawn at random."""
    mode = case % 3
    if mode == 0:
        return None
    if mode == 1:
        return rng.permutation([0, steps, *rng.integers(0, steps + 1, batch - 2)])
    return rng.integers(0, steps + 1, batch)


@pytest.mark.parametrize("data_format", ["channels_last", "channels_first"])
@pytest.mark.parametrize("n_axes", [1, 2, 3])
@pytest.mark.parametrize("config", range(len(LSTM_CONFIGS)))
def test_lstm_matches_autograd(config, n_axes, data_format):
    """ConvLSTMCell under every option: refconv's outputs, final state and the gradients of
    inputs, initial state and every parameter against PyTorch autograd."""
    case = 100 * config + 10 * n_axes + (data_format == "channels_first")
    rng = np.random.default_rng(case)
    cf = data_format == "channels_first"
    shape, kernel, kwargs = random_problem(rng, n_axes, case, LSTM_CONFIGS[config])
    kwargs.setdefault("forget_bias", float(rng.uniform(0.2, 1.5)))
    c_in, filters = int(rng.integers(1, 4)), int(rng.integers(1, 4))
    batch, steps = 3, int(rng.integers(2, 5))
    cell = ConvLSTMCell(shape, filters, kernel, data_format=data_format, **kwargs)
    cell.build(c_in, seed=case)
    jitter(cell, rng)
    time_major = case % 4 == 3
    inputs = rng.standard_normal((batch, steps, *frame_shape(shape, c_in, cf)))
    d_outputs = rng.standard_normal((batch, steps, *cell.output_size))
    if time_major:
        inputs, d_outputs = inputs.swapaxes(0, 1).copy(), d_outputs.swapaxes(0, 1).copy()
    initial = random_state(cell, batch, rng) if case % 5 else None
    d_state = random_state(cell, batch, rng) if case % 7 else None
    compare_dynamic_rnn(cell, lstm_options(kwargs, cf, n_axes), inputs, d_outputs, d_state,
                        random_lengths(rng, case, batch, steps), initial, time_major,
                        what=f"LSTM {kwargs} {shape} k={kernel}")


@pytest.mark.parametrize("data_format", ["channels_last", "channels_first"])
@pytest.mark.parametrize("n_axes", [1, 2, 3])
@pytest.mark.parametrize("normalize", [True, False])
@pytest.mark.parametrize("activation", ["tanh", "relu"])
def test_gru_matches_autograd(activation, normalize, n_axes, data_format):
    """ConvGRUCell with and without layer norm, tanh or relu: outputs, final state and the
    gradients of inputs, initial state and every parameter against PyTorch autograd."""
    case = 5000 + 100 * (activation == "relu") + 20 * normalize + 2 * n_axes \
        + (data_format == "channels_first")
    rng = np.random.default_rng(case)
    cf = data_format == "channels_first"
    shape, kernel, kwargs = random_problem(rng, n_axes, case,
                                           dict(normalize=normalize, activation=activation))
    c_in, filters = int(rng.integers(1, 4)), int(rng.integers(1, 4))
    batch, steps = 3, int(rng.integers(2, 5))
    cell = ConvGRUCell(shape, filters, kernel, data_format=data_format, **kwargs)
    cell.build(c_in, seed=case)
    jitter(cell, rng)
    inputs = rng.standard_normal((batch, steps, *frame_shape(shape, c_in, cf)))
    d_outputs = rng.standard_normal((batch, steps, *cell.output_size))
    initial = random_state(cell, batch, rng) if case % 5 else None
    d_state = random_state(cell, batch, rng) if case % 3 else None
    compare_dynamic_rnn(cell, gru_options(kwargs, cf), inputs, d_outputs, d_state,
                        random_lengths(rng, case, batch, steps), initial,
                        what=f"GRU {kwargs} {shape} k={kernel}")


@pytest.mark.parametrize("lengths", [None, [0, 0, 0], [4, 4, 4], [0, 4, 2], [1, 0, 3]])
@pytest.mark.parametrize("kind", ["lstm", "gru"])
def test_sequence_lengths_match_autograd(kind, lengths):
    """sequence_length at its edges (all 0, all T, 0 and T mixed): outputs, final state and
    every gradient against autograd of TF's masking (zero outputs, state carried through)."""
    rng = np.random.default_rng([kind == "gru", *(lengths or [9])])
    shape, c_in, filters, batch, steps = [5, 4], 2, 2, 3, 4
    if kind == "lstm":
        kwargs = dict(forget_bias=0.6)
        cell = ConvLSTMCell(shape, filters, [2, 3], **kwargs)
        options = lstm_options(kwargs, False, 2)
    else:
        kwargs = dict(normalize=False)
        cell = ConvGRUCell(shape, filters, [3, 2], **kwargs)
        options = gru_options(kwargs, False)
    cell.build(c_in, seed=3)
    jitter(cell, rng)
    inputs = rng.standard_normal((batch, steps, *shape, c_in))
    d_outputs = rng.standard_normal((batch, steps, *cell.output_size))
    grads, _ = compare_dynamic_rnn(
        cell, options, inputs, d_outputs, random_state(cell, batch, rng),
        None if lengths is None else np.array(lengths), random_state(cell, batch, rng),
        what=f"{kind} lengths={lengths}")
    if lengths is not None:  # nothing flows into the steps past a row's length
        for b, length in enumerate(lengths):
            assert not grads.inputs[b, length:].any()


# --------------------------------------------------------------------------
# Bidirectional and stacked.

def make_bidirectional(kind, tied, n_axes, cf, rng, seed):
    shape = [[7], [5, 4], [3, 4, 3]][n_axes - 1]
    kernel = [[2], [2, 3], [3, 2, 1]][n_axes - 1]
    data_format = "channels_first" if cf else "channels_last"
    if kind == "lstm":
        fw_kwargs, bw_kwargs = dict(forget_bias=0.4), dict(normalize=False, forget_bias=0.9)
        cell_fw = ConvLSTMCell(shape, 2, kernel, data_format=data_format, **fw_kwargs)
        cell_bw = ConvLSTMCell(shape, 2, kernel[::-1], data_format=data_format, **bw_kwargs)
        options_fw = lstm_options(fw_kwargs, cf, n_axes)
        options_bw = lstm_options(bw_kwargs, cf, n_axes)
    else:
        cell_fw = ConvGRUCell(shape, 2, kernel, data_format=data_format)
        cell_bw = ConvGRUCell(shape, 2, kernel[::-1], normalize=False, data_format=data_format)
        options_fw, options_bw = gru_options({}, cf), gru_options(dict(normalize=False), cf)
    cell_fw.build(2, seed=seed)
    jitter(cell_fw, rng)
    if tied:
        return shape, cell_fw, cell_fw, options_fw, options_fw
    cell_bw.build(2, seed=seed + 1)
    jitter(cell_bw, rng)
    return shape, cell_fw, cell_bw, options_fw, options_bw


def compare_bidirectional(cell_fw, cell_bw, options_fw, options_bw, inputs, lengths,
                          time_major, rng, what):
    """refconv's bidirectional_dynamic_rnn(_grad) against torch's forward and autograd."""
    batch = inputs.shape[1 if time_major else 0]
    tied = cell_fw is cell_bw
    d_outputs = tuple(rng.standard_normal(inputs.shape[:2] + tuple(c.output_size))
                      for c in (cell_fw, cell_bw))
    s_fw, s_bw = random_state(cell_fw, batch, rng), random_state(cell_bw, batch, rng)
    d_states = (random_state(cell_fw, batch, rng), random_state(cell_bw, batch, rng))
    grads = bidirectional_dynamic_rnn_grad(cell_fw, cell_bw, inputs, d_outputs, d_states,
                                           sequence_length=lengths, initial_state_fw=s_fw,
                                           initial_state_bw=s_bw, time_major=time_major)
    (out_fw, out_bw), (fin_fw, fin_bw) = bidirectional_dynamic_rnn(
        cell_fw, cell_bw, inputs, lengths, s_fw, s_bw, time_major=time_major)

    t_inputs, t_s_fw, t_s_bw = to_torch(inputs), to_torch(s_fw), to_torch(s_bw)
    t_params_fw = to_torch(cell_fw.params)
    t_params_bw = t_params_fw if tied else to_torch(cell_bw.params)  # tied: one set of leaves
    (t_out_fw, t_out_bw), (t_fin_fw, t_fin_bw) = t_bidirectional(
        t_params_fw, options_fw, t_params_bw, options_bw, t_inputs, t_s_fw, t_s_bw, lengths,
        time_major)
    loss = ((t_out_fw * torch.as_tensor(d_outputs[0])).sum()
            + (t_out_bw * torch.as_tensor(d_outputs[1])).sum()
            + dot(t_fin_fw, d_states[0]) + dot(t_fin_bw, d_states[1]))
    loss.backward()

    check("outputs (forward)", what + " out_fw", out_fw, t_out_fw)
    check("outputs (forward)", what + " out_bw", out_bw, t_out_bw)
    for name, final, t_final in (("state_fw", fin_fw, t_fin_fw), ("state_bw", fin_bw, t_fin_bw)):
        for (path, a), (_, t) in zip(leaves(final), leaves(t_final)):
            check("final state (forward)", f"{what} {name}{path}", a, t)
    check("d inputs", what + " d_inputs", grads.inputs, t_inputs.grad)
    check_tree("d initial state", what + " d_initial_state_fw", grads.initial_state_fw, t_s_fw)
    check_tree("d initial state", what + " d_initial_state_bw", grads.initial_state_bw, t_s_bw)
    check_param_grads(what + " d_params_fw", grads.params_fw, t_params_fw)
    check_param_grads(what + " d_params_bw", grads.params_bw, t_params_bw)
    return grads


@pytest.mark.parametrize("tied", [True, False], ids=["one_cell_twice", "two_cells"])
@pytest.mark.parametrize("kind", ["lstm", "gru"])
@pytest.mark.parametrize("n_axes,data_format", [(1, "channels_last"), (2, "channels_first"),
                                                (3, "channels_last"), (3, "channels_first")])
def test_bidirectional_matches_autograd(n_axes, data_format, kind, tied):
    """bidirectional_dynamic_rnn with lengths 0 < l < T, 0 and T: both outputs, both final
    states, and the gradients of inputs, both initial states and both parameter sets against
    autograd. One cell passed twice shares its weights: refconv's params_fw and params_bw
    must both be the summed gradient, which autograd gives for one set of leaves used twice.
    (3-D with sequence_length is something TensorFlow cannot run: ReverseSequence refuses
    rank 6.)"""
    seed = 300 + 40 * n_axes + 10 * (kind == "gru") + 2 * tied + (data_format == "channels_first")
    rng = np.random.default_rng(seed)
    cf = data_format == "channels_first"
    shape, cell_fw, cell_bw, options_fw, options_bw = make_bidirectional(
        kind, tied, n_axes, cf, rng, seed)
    batch, steps = 4, 4
    inputs = rng.standard_normal((batch, steps, *frame_shape(shape, 2, cf)))
    time_major = seed % 3 == 0
    if time_major:
        inputs = inputs.swapaxes(0, 1).copy()
    grads = compare_bidirectional(cell_fw, cell_bw, options_fw, options_bw, inputs,
                                  np.array([steps, 0, 2, 3]), time_major, rng,
                                  f"bidirectional {kind} tied={tied} {shape}")
    if tied:
        assert grads.params_fw is grads.params_bw


def make_stack(rng, seed, cf=False):
    """Three layers: an LSTM with strided VALID input convolution, a GRU, an LSTM without LN."""
    data_format = "channels_first" if cf else "channels_last"
    kw0 = dict(strides=[2, 1], padding="valid", forget_bias=0.3)
    kw1 = dict(normalize=False)
    kw2 = dict(normalize=False, peephole=True, recurrent_activation="hard_sigmoid")
    layer0 = ConvLSTMCell([7, 5], 3, [2, 3], data_format=data_format, **kw0)
    layer1 = ConvGRUCell(layer0.state_shape, 2, [3, 2], data_format=data_format, **kw1)
    layer2 = ConvLSTMCell(layer0.state_shape, 2, [2, 2], data_format=data_format, **kw2)
    stack = MultiRNNCell([layer0, layer1, layer2])
    stack.build(2, seed=seed)
    jitter(stack, rng)
    options = [lstm_options(kw0, cf, 2), gru_options(kw1, cf), lstm_options(kw2, cf, 2)]
    return stack, options


@pytest.mark.parametrize("data_format", ["channels_last", "channels_first"])
@pytest.mark.parametrize("lengths", [None, [3, 0, 1]])
def test_stacked_matches_autograd(lengths, data_format):
    """MultiRNNCell (LSTM with strided VALID input, GRU, LSTM with hard sigmoid): outputs,
    every layer's final state, and the gradients of inputs, every layer's initial state and
    every layer's parameters against autograd."""
    cf = data_format == "channels_first"
    seed = 700 + (lengths is None) + 2 * cf
    rng = np.random.default_rng(seed)
    stack, options = make_stack(rng, seed, cf)
    batch, steps = 3, 3
    inputs = rng.standard_normal((batch, steps, *frame_shape([7, 5], 2, cf)))
    d_outputs = rng.standard_normal((batch, steps, *stack.output_size))
    compare_dynamic_rnn(stack, options, inputs, d_outputs, random_state(stack, batch, rng),
                        None if lengths is None else np.array(lengths),
                        random_state(stack, batch, rng), what=f"stack lengths={lengths}")


@pytest.mark.parametrize("tied", [True, False], ids=["one_stack_twice", "two_stacks"])
def test_stacked_bidirectional_matches_autograd(tied):
    """bidirectional_dynamic_rnn of MultiRNNCells, shared or separate: everything against
    autograd (per-layer parameter gradients summed over directions when shared)."""
    seed = 800 + tied
    rng = np.random.default_rng(seed)
    stack_fw, options_fw = make_stack(rng, seed)
    stack_bw, options_bw = (stack_fw, options_fw) if tied else make_stack(rng, seed + 10)
    inputs = rng.standard_normal((3, 4, 7, 5, 2))
    grads = compare_bidirectional(stack_fw, stack_bw, options_fw, options_bw, inputs,
                                  np.array([4, 1, 0]), False, rng,
                                  f"bidirectional stack tied={tied}")
    if tied:
        assert grads.params_fw is grads.params_bw


# --------------------------------------------------------------------------
# A long sequence.

def test_long_sequence_matches_autograd():
    """T = 200 (6x5 frames, batch 2, layer norm and peepholes on): every gradient still matches
    autograd to 1e-10, nothing overflows, and the gradient that reaches the first input from
    the final state alone (200 steps back) matches it too."""
    rng = np.random.default_rng(200)
    steps, batch, shape, c_in, filters = 200, 2, [6, 5], 2, 3
    kwargs = dict(normalize=True, peephole=True, forget_bias=1.0)
    cell = ConvLSTMCell(shape, filters, [3, 3], **kwargs)
    cell.build(c_in, seed=200)
    jitter(cell, rng)
    options = lstm_options(kwargs, False, 2)
    inputs = rng.standard_normal((batch, steps, *shape, c_in))
    initial = random_state(cell, batch, rng)
    lengths = np.array([steps, 151])

    # Upstream gradients everywhere.
    d_outputs = rng.standard_normal((batch, steps, *cell.output_size))
    grads, _ = compare_dynamic_rnn(cell, options, inputs, d_outputs,
                                   random_state(cell, batch, rng), lengths, initial,
                                   what="T=200")
    assert all(np.isfinite(a).all() for _, a in leaves(grads))

    # Only the final state: the gradient of the first step has come back through every step.
    d_state = random_state(cell, batch, rng)
    grads, t_inputs = compare_dynamic_rnn(cell, options, inputs, np.zeros_like(d_outputs),
                                          d_state, lengths, initial, what="T=200, d_state only")
    first_ours, first_torch = grads.inputs[:, 0], t_inputs.grad[:, 0].numpy()
    assert np.abs(first_torch).max() > 0
    error = relative_error(first_ours, first_torch)
    record("T=200: d inputs[:, 0] from the final state alone", error)
    assert error <= RTOL, f"d inputs[:, 0] after 200 steps back: relative error {error:.3g}"
