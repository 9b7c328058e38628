# Source of notebooks/06_oracle.ipynb ("percent" format). Edit this file, then run
# `python notebooks/run.py 06` to rebuild and re-run the notebook.

# %% [markdown]
# # 6. The oracle: which gate differs?
#
# You have a ConvLSTM in Keras, PyTorch or TensorFlow and want to know whether it computes
# what it should. refconv is an **oracle**: a float64 implementation, written equation by
# equation, that can load your framework's weights. Run both on the same inputs and compare.
# When they agree to 1e-10 in float64, your framework computes a ConvLSTM (rounding errors
# in float64 are about 1e-16). When they do not, the question is **where**: which gate,
# and from which time step on.
#
# **Before:** notebooks 2 and 4. **Time:** about 50 minutes, 20 of them for the bug hunt at
# the end (which needs refconv alone: without the frameworks, the sections before it are
# skipped, each saying so).
#
# This notebook does that with three real frameworks:
#
# * a **Keras 3** `ConvLSTM2D` (float64, the PyTorch backend);
# * a **PyTorch** ConvLSTM cell as ndrplz/ConvLSTM_pytorch writes it (the one most
#   projects copy);
# * the **seed's TensorFlow 1 cell**, with peepholes and layer norm, run by TensorFlow 2's
#   `tf.compat.v1` (only where TensorFlow is installed).
#
# Then it plants three bugs in the PyTorch cell and shows how the oracle points at each,
# and measures how far float32 drifts from float64 over 200 steps on the CPU (TF32 on a GPU:
# not measured yet, see the end).
#
# Keras chooses its backend when it is imported, and TensorFlow's old RNN cells live in
# tf_keras since TF 2.16, so a few environment variables come first.

# %%
import os

os.environ["KERAS_BACKEND"] = "torch"         # Keras 3 on PyTorch: no TensorFlow needed for Keras
os.environ["TF_USE_LEGACY_KERAS"] = "1"       # tf.compat.v1.nn.rnn_cell needs tf_keras since TF 2.16
os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"      # TensorFlow's start-up messages
os.environ["TF_ENABLE_ONEDNN_OPTS"] = "0"     # TF's oneDNN CPU kernels off (and their start-up note)

import importlib.util
import json
import pathlib

import numpy as np
from matplotlib.patches import Rectangle

import refconv
from refconv import LSTMStateTuple, viz
from refconv.data import moving_shapes
from refconv.interop import from_keras, from_tf1, from_torch

_missing = [name for name in ("torch", "keras") if importlib.util.find_spec(name) is None]
if _missing:
    # Without the frameworks, every cell up to the bug hunt is skipped, each saying so; the
    # bug hunt (the graded exercise) needs refconv alone, so it runs, and is graded, anyway.
    print(f"{' and '.join(_missing)} {'is' if len(_missing) == 1 else 'are'} not installed: "
          f"the sections comparing frameworks are skipped, the bug hunt at the end is not. "
          f"To run them, from the clone: pip install -e \".[crosscheck]\" && "
          f"pip install --no-deps \"tf-keras==2.21.*\"")

    def _skip_until_the_bug_hunt(lines):
        if any("from refconv.exercises import" in line for line in lines):
            get_ipython().input_transformers_post.remove(_skip_until_the_bug_hunt)
            return lines
        return [f"print('skipped: this cell needs {' and '.join(_missing)} (see the first cell)')\n"]

    get_ipython().input_transformers_post.append(_skip_until_the_bug_hunt)
else:
    import keras
    import torch

    try:                                      # TensorFlow is optional here; Keras and PyTorch are not
        import tensorflow as tf
        import tf_keras  # noqa: F401  (what tf.compat.v1.nn.rnn_cell is made of)
        v1 = tf.compat.v1
        tf.get_logger().setLevel("ERROR")
    except ImportError as error:
        tf = None
        tf_missing = f"{type(error).__name__}: {error}"

    torch.set_num_threads(1)                  # tiny tensors: one thread is as fast, and the same bits
    print(f"Keras {keras.__version__} ({keras.config.backend()} backend), PyTorch "
          f"{torch.__version__}, " + (f"TensorFlow {tf.__version__}" if tf is not None
                                      else f"TensorFlow not installed ({tf_missing}): its part "
                                           f"is skipped"))
np.set_printoptions(precision=3, suppress=True)

# %% [markdown]
# ## 6.1 One video, three frameworks
#
# Two short videos of moving shapes (2 channels, 12 x 12 pixels, 8 frames) are the inputs
# of every model. Keras and TensorFlow take frames `[B, T, H, W, C]` (channels last),
# PyTorch `[B, T, C, H, W]` (channels first): the same numbers, transposed.

# %%
B, T, SHAPE, C, F, K = 2, 8, (12, 12), 2, 4, (3, 3)   # batch, steps, frame, channels in, filters, kernel
RTOL = 1e-10                                          # what "agree" means in float64

video = moving_shapes(batch_size=B, timesteps=T, shape=SHAPE, channels=C, n_shapes=2, seed=6)
video_cf = np.moveaxis(video, -1, 2)                  # channels first, for PyTorch
assert video.shape == (B, T, *SHAPE, C) and video_cf.shape == (B, T, C, *SHAPE)
viz.to_png(viz.frame_strip(video))

# %% [markdown]
# **Keras.** A `ConvLSTM2D` in float64 with `padding="same"` (Keras's default is
# `"valid"`, which shrinks the state; refconv does both). Its weights are set to seeded
# random values, biases included, so that no part of the computation is zero or one and
# would hide a mistake.

# %%
rng = np.random.default_rng(0)
layer = keras.layers.ConvLSTM2D(F, K, padding="same", dtype="float64",
                                return_sequences=True, return_state=True)
layer.build((None, None, *SHAPE, C))
layer.set_weights([rng.uniform(-0.5, 0.5, size=w.shape) for w in layer.get_weights()])
for weight in layer.weights:
    print(f"{weight.path:40s} {tuple(weight.shape)}")

# %% [markdown]
# **PyTorch.** The cell of ndrplz/ConvLSTM_pytorch: one `Conv2d` over `cat([x, h])`, its
# output split into the blocks `i, f, o, g`, zeros padded `k // 2` on both sides. It is
# written here as ndrplz writes it, with the convolution and the squashing in two small
# methods, so that each bug planted in section 6.4 is a one-line override. ndrplz's
# `ConvLSTM` module keeps such cells in `cell_list` (`from_torch(model.state_dict(), shape)`
# reads that layout directly); a bare cell's weights are `conv.weight` and `conv.bias`.

# %%
class NdrplzCell(torch.nn.Module):
    """ndrplz/ConvLSTM_pytorch's ConvLSTMCell."""

    def __init__(self, input_dim, hidden_dim, kernel_size, bias=True):
        super().__init__()
        self.hidden_dim = hidden_dim
        self.conv = torch.nn.Conv2d(input_dim + hidden_dim, 4 * hidden_dim, kernel_size,
                                    padding=(kernel_size[0] // 2, kernel_size[1] // 2), bias=bias)

    def forward(self, input_tensor, cur_state):
        h_cur, c_cur = cur_state
        combined_conv = self.convolve(torch.cat([input_tensor, h_cur], dim=1))
        i, f, o, g = self.squash(*torch.split(combined_conv, self.hidden_dim, dim=1))
        c_next = f * c_cur + i * g
        h_next = o * torch.tanh(c_next)
        return h_next, c_next

    def convolve(self, combined):
        return self.conv(combined)

    def squash(self, cc_i, cc_f, cc_o, cc_g):
        return torch.sigmoid(cc_i), torch.sigmoid(cc_f), torch.sigmoid(cc_o), torch.tanh(cc_g)


torch_cell = NdrplzCell(C, F, K).double()
generator = torch.Generator().manual_seed(0)
with torch.no_grad():
    for p in torch_cell.parameters():                 # seeded, uniform in [-0.5, 0.5]
        p.copy_(torch.rand(p.shape, generator=generator, dtype=p.dtype) - 0.5)
print({name: tuple(p.shape) for name, p in torch_cell.state_dict().items()})

# %% [markdown]
# **TensorFlow 1: the seed's cell.** The seed's `ConvLSTMCell`, with its peepholes and layer
# norm, as the seed writes it, on `tf.compat.v1`. Two changes, so that it runs in float64:
# its variables take the inputs' dtype (the seed's `get_variable` calls default to float32),
# and `tf.contrib.layers.layer_norm`, gone from TensorFlow 2, is rebuilt from `tf.nn.moments`
# with the same defaults and variable names. A thin subclass returns `[h, c]` as the output
# of every step, so that `c` can be compared at every step too, not only at the end.

# %%
if tf is not None:
    def layer_norm(inputs):
        """tf.contrib.layers.layer_norm(inputs) with its defaults: every non-batch axis, epsilon 1e-12."""
        with v1.variable_scope(None, default_name="LayerNorm"):
            beta = v1.get_variable("beta", inputs.shape[-1:], inputs.dtype, v1.zeros_initializer())
            gamma = v1.get_variable("gamma", inputs.shape[-1:], inputs.dtype, v1.ones_initializer())
            mean, variance = tf.nn.moments(inputs, list(range(1, inputs.shape.rank)), keepdims=True)
            return tf.nn.batch_normalization(inputs, mean, variance, beta, gamma, 1e-12)

    class SeedConvLSTMCell(v1.nn.rnn_cell.RNNCell):
        """The seed's ConvLSTMCell (channels_last), its variables in the inputs' dtype."""

        def __init__(self, shape, filters, kernel, forget_bias=1.0, activation=tf.tanh,
                     normalize=True, peephole=True, reuse=None):
            super().__init__(_reuse=reuse, name="conv_lstm_cell")
            self._kernel, self._filters = kernel, filters
            self._forget_bias, self._activation = forget_bias, activation
            self._normalize, self._peephole = normalize, peephole
            self._size = tf.TensorShape(shape + [filters])
            self._feature_axis = self._size.ndims

        @property
        def state_size(self):
            return v1.nn.rnn_cell.LSTMStateTuple(self._size, self._size)

        @property
        def output_size(self):
            return self._size

        def call(self, x, state):
            c, h = state
            x = tf.concat([x, h], axis=self._feature_axis)
            n, m = x.shape[-1], 4 * self._filters
            W = v1.get_variable("kernel", self._kernel + [n, m], x.dtype)
            y = v1.nn.convolution(x, W, "SAME")
            if not self._normalize:
                y += v1.get_variable("bias", [m], x.dtype, initializer=v1.zeros_initializer())
            z, z_i, z_f, z_o = tf.split(y, 4, axis=self._feature_axis)
            if self._peephole:
                z_i += v1.get_variable("W_ci", c.shape[1:], x.dtype) * c
                z_f += v1.get_variable("W_cf", c.shape[1:], x.dtype) * c
            if self._normalize:
                z, z_i, z_f = layer_norm(z), layer_norm(z_i), layer_norm(z_f)
            z_f = tf.sigmoid(z_f + self._forget_bias)
            z_i = tf.sigmoid(z_i)
            c = c * z_f + z_i * self._activation(z)
            if self._peephole:
                z_o += v1.get_variable("W_co", c.shape[1:], x.dtype) * c
            if self._normalize:
                z_o, c = layer_norm(z_o), layer_norm(c)
            z_o = tf.sigmoid(z_o)
            h = z_o * self._activation(c)
            return h, v1.nn.rnn_cell.LSTMStateTuple(c, h)

    class ShowingC(SeedConvLSTMCell):
        """The same cell; its output at each step is [h, c] on the channel axis."""

        @property
        def output_size(self):
            return self._size[:-1].concatenate([2 * self._filters])

        def call(self, x, state):
            h, state = super().call(x, state)
            return tf.concat([h, state.c], axis=-1), state

    rng = np.random.default_rng(1)
    with tf.Graph().as_default():
        outputs_hc, tf_state = v1.nn.dynamic_rnn(ShowingC(list(SHAPE), F, list(K)), tf.constant(video),
                                                 dtype=tf.float64)
        with v1.Session() as session:
            for v in v1.global_variables():           # seeded: gammas in [0.5, 1.5], the rest in [-0.5, 0.5]
                low = 0.5 if v.name.endswith("gamma:0") else -0.5
                session.run(v.assign(rng.uniform(low, low + 1.0, size=v.shape)))
            tf_hc, tf_state = session.run([outputs_hc, tf_state])
            tf_variables = {v.name: session.run(v) for v in v1.global_variables()}
    for name, value in tf_variables.items():
        print(f"{name:40s} {value.shape}")
else:
    print(f"TensorFlow is not installed ({tf_missing}), so the seed's TF1 cell is skipped here; "
          f"Keras and PyTorch are compared below. To include it: "
          f'pip install "tensorflow-cpu==2.21.*" && pip install --no-deps "tf-keras==2.21.*"')

# %% [markdown]
# ## 6.2 Import the weights, run the same inputs, compare
#
# Each framework's weights go into refconv through its importer (`refconv.interop`); each
# returns a `ConvLSTMCell` that computes what that framework computes: Keras's and PyTorch's
# have no peephole, no layer norm and their forget bias inside the bias values (Keras's
# gate order `i, f, c, o` and PyTorch's `i, f, o, g` are reordered to refconv's
# `z, z_i, z_f, z_o`); the seed's has both, and `forget_bias=1.0`.
#
# Keras returns `h` at every step but `c` only at the end. To see `c` at every step, we
# also run it **one frame at a time**, passing its state back in (`initial_state=[h, c]`);
# that gives the same numbers as the full call (checked below). The PyTorch cell is
# stepped anyway, as ndrplz's module does.

# %%
def keras_step(x, h, c):
    """One Keras step from the state (h, c): the new (h, c), as NumPy arrays."""
    _, h, c = layer(x[:, None], initial_state=[h, c])
    return keras.ops.convert_to_numpy(h), keras.ops.convert_to_numpy(c)


def torch_step_of(cell):
    """A PyTorch cell as a one-step function on NumPy arrays."""
    def step(x, h, c):
        with torch.no_grad():
            h, c = cell(torch.from_numpy(x), [torch.from_numpy(h), torch.from_numpy(c)])
        return h.numpy(), c.numpy()
    return step


def stepped(step, x, state_frame):
    """Run a one-step function over ``x [B, T, ...]`` from zeros: h and c at every step, [B, T, ...]."""
    h = c = np.zeros((x.shape[0], *state_frame))
    hs, cs = [], []
    for t in range(x.shape[1]):
        h, c = step(x[:, t], h, c)
        hs.append(h)
        cs.append(c)
    return np.stack(hs, axis=1), np.stack(cs, axis=1)


runs = {}   # framework -> (refconv cell, its inputs, the framework's h and c at every step)

keras_cell = from_keras(layer.get_config(), layer.get_weights(), list(SHAPE))
keras_outputs, keras_h, keras_c = (keras.ops.convert_to_numpy(a) for a in layer(video))   # [h, c]
h_stepped, c_stepped = stepped(keras_step, video, (*SHAPE, F))
assert refconv.compare({"outputs": keras_outputs, "h": keras_h, "c": keras_c},   # stepping Keras =
                       {"outputs": h_stepped, "h": h_stepped[:, -1], "c": c_stepped[:, -1]},
                       rtol=1e-13, atol=1e-15).passed                            # calling it on the sequence
runs["Keras"] = (keras_cell, video, keras_outputs, c_stepped)

torch_cell_ref = from_torch(torch_cell.state_dict(), list(SHAPE), prefix="conv.")
runs["PyTorch"] = (torch_cell_ref, video_cf, *stepped(torch_step_of(torch_cell), video_cf, (F, *SHAPE)))

if tf is not None:
    runs["TensorFlow 1"] = (from_tf1(tf_variables, list(SHAPE)), video, tf_hc[..., :F], tf_hc[..., F:])
    assert np.array_equal(tf_state.h, tf_hc[:, -1, ..., :F]) and np.array_equal(tf_state.c, tf_hc[:, -1, ..., F:])

for name, (cell, *_) in runs.items():
    print(f"{name:13s} -> ConvLSTMCell(normalize={cell.normalize}, peephole={cell.peephole}, "
          f"forget_bias={cell.forget_bias}, data_format={cell.data_format!r}), "
          f"kernel {cell.params['kernel'].shape}")

# %% [markdown]
# refconv runs each imported cell on the same inputs, from the same zero state, and
# `refconv.compare` compares, tensor by tensor: the outputs (`h` at every step), `c` at
# every step, and the final state. Each line gives the largest absolute error and the
# largest error relative to the tensor's scale (`max |d| / max |reference|`); a tensor
# passes when every element is within `atol + rtol * |reference|` (here `rtol = 1e-10`,
# `atol = 1e-12`). The notebook stops here if any does not.

# %%
def end_to_end(cell, x, h, c):
    """refconv (the reference) and the framework (the candidate), as refconv.compare takes them."""
    outputs, state, gates = refconv.dynamic_rnn(cell, x, return_gates=True)
    reference = {"outputs": outputs, "gates/c": gates["c"], "final_state/c": state.c,
                 "final_state/h": state.h}
    candidate = {"outputs": h, "gates/c": c, "final_state/c": c[:, -1], "final_state/h": h[:, -1]}
    return reference, candidate


agreement = {}
for name, (cell, x, h, c) in runs.items():
    agreement[name] = refconv.compare(*end_to_end(cell, x, h, c), rtol=RTOL)
    print(f"--- refconv against {name}")
    print(agreement[name].report(verbose=True))
    assert agreement[name].passed, f"{name} does not compute what refconv computes"
    assert max(t.max_rel for t in agreement[name].tensors) < RTOL

# %% [markdown]
# For tensors with a time axis, `compare` also keeps the error **at every step**, which a
# table of eight columns would hide. Drawn on a log scale (an error of exactly zero is drawn
# at 1e-18), every curve lies near float64's rounding error, `eps = 2.2e-16`, six orders of
# magnitude below the tolerance, and stays there over the eight steps.

# %%
FLOOR = 1e-18                                       # where an error of exactly 0 is drawn
COLOURS = {"Keras": "tab:red", "PyTorch": "tab:orange", "TensorFlow 1": "tab:blue",
           "z": "tab:purple", "z_i": "tab:green", "z_f": "tab:blue", "z_o": "tab:red",
           "z_i*z": "tab:green", "c": "tab:brown", "h": "black"}


def per_step(comparison, key):
    """The relative error at every step of one tensor of a comparison, floored for a log scale."""
    (tensor,) = [t for t in comparison.tensors if t.key == key]
    return np.maximum([rel for _, rel, _ in tensor.per_step], FLOOR)


def guides(ax, tolerance=True, eps=np.finfo(np.float64).eps, eps_label="float64 eps"):
    """The tolerance (dashed) and the rounding error of one operation, eps (dotted)."""
    if tolerance:
        ax.axhline(RTOL, color="tab:red", linestyle="--", linewidth=1)
        ax.text(0.02, RTOL * 2, "tolerance 1e-10", color="tab:red", fontsize=viz.SMALLEST,
                transform=ax.get_yaxis_transform())
    ax.axhline(eps, color="gray", linestyle=":", linewidth=1)
    ax.text(0.98, eps / 2, f"{eps_label} = {eps:.1e}", color="gray", fontsize=viz.SMALLEST, ha="right",
            va="top", transform=ax.get_yaxis_transform())


fig = viz.figure(height=3.2)
for ax, (key, what) in zip(fig.subplots(1, 2, sharey=True), [("outputs", "h"), ("gates/c", "c")]):
    for name, comparison in agreement.items():
        ax.semilogy(range(T), per_step(comparison, key), "o-", color=COLOURS[name], label=name)
    guides(ax)
    ax.set_ylim(FLOOR / 3, 1e-6)
    ax.set_xlabel("time step t")
    ax.set_title(f"{what} at every step (refconv run from zeros, as the framework)", fontsize=10)
    ax.legend(fontsize=viz.SMALLEST, loc="upper right")
fig.axes[0].set_ylabel("max |d| / max |refconv|")
fig.suptitle("float64: each framework against refconv, step by step")
viz.to_png(fig)

# %% [markdown]
# ## 6.3 Gate by gate: what the frameworks do not show
#
# Outputs that agree say the whole cell is right. Outputs that disagree only say *something*
# is wrong. To say what, we want each gate at each step, and no framework returns its
# gates: Keras's layer and PyTorch's cell return `h` and `c`. Two ideas give them to us
# without touching the framework's code.
#
# **1. Compare one step at a time.** At every step `t`, give refconv the framework's *own*
# state after step `t - 1` and the same frame `x[t]`, and compare the step that follows.
# Errors then cannot pile up from step to step: each step is judged on its own, and the
# first step that is wrong is the first step that *computes* something wrong. (All steps
# are independent now, so refconv runs them at once, as one batch of `T x B` samples.)
#
# **2. Read the gates from outside.** A cell without peepholes and layer norm (Keras's and
# PyTorch's) computes
#
# ```
# c_new = z_f * c + z_i * z        # z_f, z_i, z depend on x and h only, not on c
# h_new = z_o * tanh(c_new)        # z_o too
# ```
#
# so three calls of the framework's step, with the same `x` and `h` but a `c` of our
# choosing, give its gates:
#
# | call with | the framework returns | which gives |
# |---|---|---|
# | `c = 0` | `c_new = z_i * z` | what the step writes, `z_i * z` |
# | `c = 1` | `c_new = z_f + z_i * z` | the forget gate `z_f` = difference of the two |
# | `c = 10^6` | `h_new = z_o * tanh(c_new)` with `tanh(c_new) = 1` | the output gate `z_o` = `h_new / tanh(c_new)` |
#
# `z_i` and `z` appear only as their product, so **the product is what we compare** (as
# `gates/write/z_i*z`): a black box cannot tell them apart. These probes are exact up to
# rounding, about 1e-16 in float64 (`tanh(c_new)` is 1 to the last bit once `c_new > 19`,
# that is for any forget gate above 2e-5; dividing by it covers the rest). They rely on the
# structure above and so do not apply to the seed's cell,
# whose peepholes and layer norm make every gate depend on `c`; for TensorFlow we compare
# `c` and `h` at every step, one step at a time, and say so in the figure.

# %%
def previous(seq):
    """The state before each step: zeros, then seq[:, :-1]."""
    return np.concatenate([np.zeros_like(seq[:, :1]), seq[:, :-1]], axis=1)


def as_batch(a):
    """[B, T, ...] -> [T * B, ...]: every step one sample."""
    return a.swapaxes(0, 1).reshape(-1, *a.shape[2:])


def from_batch(a):
    """[T * B, ...] -> [B, T, ...]."""
    return a.reshape(T, -1, *a.shape[1:]).swapaxes(0, 1)


def refconv_steps(cell, x, h, c):
    """refconv's gates at every step t, computed from the framework's own state after t - 1."""
    state = LSTMStateTuple(as_batch(previous(c)), as_batch(previous(h)))
    _, _, gates = refconv.dynamic_rnn(cell, as_batch(x)[:, None], initial_state=state, return_gates=True)
    return {name: from_batch(g[:, 0]) for name, g in gates.items()}


def probe(step, x, h, c):
    """A framework's gates at every step t, read through its step function (no peephole, no LN)."""
    x, h_prev = as_batch(x), as_batch(previous(h))
    zeros = np.zeros_like(h_prev)
    _, write = step(x, h_prev, zeros)                 # c = 0: c_new = z_i * z
    _, c_one = step(x, h_prev, zeros + 1.0)           # c = 1: c_new = z_f + z_i * z
    h_big, c_big = step(x, h_prev, zeros + 1e6)       # c = 1e6: tanh(c_new) = 1, h_new = z_o
    return {"z_f": from_batch(c_one - write), "z_i*z": from_batch(write),
            "z_o": from_batch(h_big / np.tanh(c_big))}


# compare's keys; the product z_i * z is none of refconv's gates, so it gets a name of its own
KEYS = {"z_f": "gates/z_f", "z_i*z": "gates/write/z_i*z", "c": "gates/c", "z_o": "gates/z_o", "h": "gates/h"}
GATE_ROWS = list(KEYS)                                 # in the order a step computes them


def step_by_step(cell, x, h, c, step=None):
    """reference, candidate for refconv.compare: every step judged from the framework's state."""
    ref = refconv_steps(cell, x, h, c)
    reference = {"gates/c": ref["c"], "gates/h": ref["h"]}
    candidate = {"gates/c": c, "gates/h": h}
    if step is not None:                               # the gates, where they can be read
        reference.update({KEYS["z_f"]: ref["z_f"], KEYS["z_i*z"]: ref["z_i"] * ref["z"],
                          KEYS["z_o"]: ref["z_o"]})
        candidate.update({KEYS[name]: g for name, g in probe(step, x, h, c).items()})
    return reference, candidate


steps_of = {"Keras": keras_step, "PyTorch": torch_step_of(torch_cell), "TensorFlow 1": None}
gatewise = {}
for name, (cell, x, h, c) in runs.items():
    gatewise[name] = refconv.compare(*step_by_step(cell, x, h, c, steps_of[name]), rtol=RTOL)
    print(f"--- refconv against {name}, one step at a time")
    print(gatewise[name].report(verbose=True))
    assert gatewise[name].passed and max(t.max_rel for t in gatewise[name].tensors) < RTOL

# %% [markdown]
# Every gate, every step, every framework: all at the level of float64 rounding.

# %%
fig = viz.figure(height=3.3)
axes = fig.subplots(1, 3, sharey=True)
for ax, name in zip(axes, ["Keras", "PyTorch", "TensorFlow 1"]):
    if name not in gatewise:
        ax.text(0.5, 0.5, f"{name}:\nnot installed here", ha="center", va="center",
                transform=ax.transAxes)
    else:
        for gate in GATE_ROWS:
            if KEYS[gate] in {t.key for t in gatewise[name].tensors}:
                ax.semilogy(range(T), per_step(gatewise[name], KEYS[gate]), "o-", markersize=3,
                            color=COLOURS[gate], label=gate)
    guides(ax)
    ax.set_ylim(FLOOR / 3, 1e-6)
    ax.set_xlim(-0.3, T - 0.7)
    ax.set_xlabel("time step t")
    ax.set_title(name + (": c and h only (gates depend on c)" if name == "TensorFlow 1"
                         else ": gates read through 3 probe calls"), fontsize=9)
axes[0].set_ylabel("max |d| / max |refconv|")
fig.legend(*max((ax.get_legend_handles_labels() for ax in axes), key=lambda found: len(found[1])),
           loc="outside lower center", ncol=len(GATE_ROWS), fontsize=viz.SMALLEST)
fig.suptitle("one step at a time, from the framework's own state: every gate against refconv")
viz.to_png(fig)

# %% [markdown]
# ## 6.4 Planting bugs: how the oracle points at them
#
# Three PyTorch cells, each one line away from ndrplz's, each a mistake that happens when
# a ConvLSTM is ported from one framework to another. All three run without an error and
# produce outputs of the right shape, in the right range; all three have the *same weights*
# as the correct cell above, so refconv, importing their weights, is the same oracle for all.
#
# 1. **Forget bias added twice.** TensorFlow's cells take `forget_bias=1.0` as an argument;
#    converted weights already hold it in the bias, and the port adds it again.
# 2. **Gate blocks in the wrong order.** The port reads the blocks in Keras's order
#    `i, f, c, o` while the weights are in ndrplz's `i, f, o, g`: the output gate and the
#    candidate trade places.
# 3. **Kernel transposed.** Height and width of the kernel swapped, as when a TensorFlow
#    kernel `[kh, kw, in, out]` is moved to PyTorch's `[out, in, kh, kw]` with the wrong
#    permutation.

# %%
class ForgetBiasTwice(NdrplzCell):
    def squash(self, cc_i, cc_f, cc_o, cc_g):
        return torch.sigmoid(cc_i), torch.sigmoid(cc_f + 1.0), torch.sigmoid(cc_o), torch.tanh(cc_g)


class KerasGateOrder(NdrplzCell):
    def squash(self, cc_i, cc_f, cc_g, cc_o):      # the blocks are i, f, o, g, but read as i, f, g, o
        return torch.sigmoid(cc_i), torch.sigmoid(cc_f), torch.sigmoid(cc_o), torch.tanh(cc_g)


class TransposedKernel(NdrplzCell):
    def convolve(self, combined):
        return torch.nn.functional.conv2d(combined, self.conv.weight.transpose(2, 3), self.conv.bias,
                                          padding=self.conv.padding)


bugs = {"forget bias added twice": ForgetBiasTwice, "gate blocks i, f, g, o": KerasGateOrder,
        "kernel transposed": TransposedKernel}
found = {}
for bug, cell_class in bugs.items():
    buggy = cell_class(C, F, K).double()
    buggy.load_state_dict(torch_cell.state_dict())   # the same weights as the correct cell
    step = torch_step_of(buggy)
    h, c = stepped(step, video_cf, (F, *SHAPE))
    oracle = from_torch(buggy.state_dict(), list(SHAPE), prefix="conv.")
    found[bug] = (refconv.compare(*end_to_end(oracle, video_cf, h, c), rtol=RTOL),
                  refconv.compare(*step_by_step(oracle, video_cf, h, c, step), rtol=RTOL))
    assert not found[bug][0].passed and not found[bug][1].passed

print("--- forget bias added twice: the outputs, end to end")
print(found["forget bias added twice"][0].report())
print("\n--- forget bias added twice: one step at a time, gate by gate")
print(found["forget bias added twice"][1].report(verbose=True))

# %% [markdown]
# Read the two reports together. End to end, the outputs are right at step 0 and wrong
# from step 1 on: looking at the outputs alone, one would search step 1. One step at a time,
# the forget gate `z_f` is wrong **at step 0** and nothing else is. At step 0 the memory
# is zero, so `z_f * c` is zero whatever `z_f` is: the bug is there from the first step but
# cannot show in `c` or `h` until the memory holds something. The oracle names `z_f`, the
# gate that the forget bias feeds, and the step where it is first computed.
#
# For each bug, the first failure the oracle names (earliest step first, then the gate
# computed first), and what else fails:

# %%
def first_bad(comparison, key):
    (tensor,) = [t for t in comparison.tensors if t.key == key]
    return tensor.first_bad_step


for bug, (whole, steps) in found.items():
    first = steps.first_failure
    passed = {t.key: t.passed for t in steps.tensors}
    wrong = [gate for gate in GATE_ROWS if not passed[KEYS[gate]]]
    right = [gate for gate in GATE_ROWS if passed[KEYS[gate]]]
    print(f"{bug:24s} outputs first differ at t={first_bad(whole, 'outputs')};  one step at a "
          f"time: first {first.key} at t={first.first_bad_step}; wrong: {', '.join(wrong)}; "
          f"right: {', '.join(right) or '-'}")

fb, order, kernel = (found[bug][1] for bug in bugs)
assert (fb.first_failure.key, fb.first_failure.first_bad_step) == ("gates/z_f", 0)
assert {t.key for t in fb.tensors if t.first_bad_step == 0} == {"gates/z_f"}
assert {t.key for t in order.tensors if t.passed} == {"gates/z_f"}
# c is computed before z_o (the new c feeds z_o's peephole); the product z_i * z is the
# notebook's own quantity, which compare ranks after refconv's names.
assert order.first_failure.key == "gates/c" and order.first_failure.first_bad_step == 0
assert all(t.first_bad_step == 0 for t in kernel.tensors)
assert first_bad(found["forget bias added twice"][0], "outputs") == 1

# %% [markdown]
# The same as pictures: for each bug, the error of every gate (rows, in the order a step
# computes them) at every step (columns), one step at a time, and in the last row the
# outputs end to end. Each cell shows the decimal exponent of the relative error (`-16`:
# about 1e-16, rounding; `-1`: about 0.1, wrong); boxed cells exceed the tolerance. Each bug
# has its own fingerprint:
#
# * **forget bias twice**: `z_f` alone at step 0, then `c` and `h` follow from step 1;
# * **gate order**: `z_i * z` and `z_o` (the two blocks that traded places), and `c` and `h`
#   that read them, never `z_f`;
# * **kernel transposed**: everything at once, from step 0: the convolution itself is wrong
#   (the weights' layout, the padding), not one gate.

# %%
ROWS = [KEYS[g] for g in GATE_ROWS]
fig = viz.figure(height=2.3 * len(found) + 0.4)
axes = fig.subplots(len(found), 1, sharex=True)
for ax, (bug, (whole, steps)) in zip(axes, found.items()):
    errors = np.array([per_step(steps, key) for key in ROWS] + [per_step(whole, "outputs")])
    exponents = np.log10(errors)
    image = ax.imshow(exponents, cmap="YlOrRd", vmin=-17, vmax=0, aspect="auto",
                      interpolation="nearest")
    for (row, t), value in np.ndenumerate(exponents):              # 2.2e-16 -> -16, 0.5 -> -1
        ax.text(t, row, f"{min(int(np.floor(value)), 0)}", ha="center", va="center", fontsize=viz.SMALLEST,
                color="white" if value > -6 else "black")
        if errors[row, t] > RTOL:
            ax.add_patch(Rectangle((t - 0.5, row - 0.5), 1, 1, fill=False, edgecolor="black",
                                   linewidth=1))
    ax.axhline(len(ROWS) - 0.5, color="gray", linewidth=3)
    ax.set_xticks(range(T))
    ax.set_yticks(range(len(ROWS) + 1), GATE_ROWS + ["outputs\n(end to end)"])
    ax.set_xlabel("time step t")
    ax.set_title(bug, fontsize=10)
fig.colorbar(image, ax=axes, fraction=0.02, label="log10 relative error")
fig.suptitle("three bugs, three fingerprints: which gate, from which step")
viz.to_png(fig)

# %% [markdown]
# How to use the oracle on your own model:
#
# 1. Import its weights (`from_keras`, `from_torch` with `gate_order`/`input_order` for
#    other layouts, `from_tf1`), run refconv on the same inputs in float64, and compare
#    the outputs end to end. If they agree to 1e-10, stop: the model is right.
# 2. If not, write the model's one step as `step(x, h, c) -> (h, c)`, run it, and compare
#    one step at a time with the probes above (without peepholes and layer norm) or `c`
#    and `h` alone (with them). Look at the first failing step, then at the first gate
#    that step computes wrongly.
# 3. All gates at once from the first step: look at the convolution (kernel layout,
#    padding, input order `[x, h]` or `[h, x]`). One gate: look at what feeds that gate
#    alone (its bias, its block, its activation).
#
# ## 6.5 float32: how far from float64, and does it grow?
#
# Models run in float32, whose rounding error is `eps = 1.2e-7`, and a recurrent cell feeds
# each step's rounding into the next. Does the error grow over a long sequence? We run the
# same ndrplz cell in **float32** for **200 steps** of 16 x 16 frames, and refconv in float64
# with the same weights (float32 values widen to float64 exactly): the only difference is
# the arithmetic.
#
# Here the gates are read differently: a **forward hook** on the cell's `conv` records its
# output `y` at every step (hooks are PyTorch's own way to look inside a module), and the
# gates are its four blocks squashed as the cell squashes them, in float32, giving the very
# bits the cell used. (The probes of section 6.3 would add their own float32 rounding.)
#
# Two weight regimes: PyTorch's default initialisation, a cell that forgets fast; and a
# **long memory**, the same weights times 3 with 3 added to the forget gate's bias (the
# forget gate stays near 1, as in trained cells that carry information far).
#
# The measurement lives in a small script, `notebooks/data/measure_drift.py`, so that it
# can also run on a GPU machine without Jupyter. We load it for its settings and weights,
# write the float32 run out here, and check that the script gives the same numbers.

# %%
spec = importlib.util.spec_from_file_location("measure_drift", "data/measure_drift.py")
drift = importlib.util.module_from_spec(spec)
spec.loader.exec_module(drift)
CONFIG = drift.CONFIG
QUANTITIES = drift.QUANTITIES                          # z, z_i, z_f, z_o, c, h
video32 = drift.inputs(CONFIG)                         # float32 [B, T, C, H, W]
print(f"{CONFIG['steps']} steps of {video32.shape[0]} videos of {' x '.join(map(str, CONFIG['shape']))} "
      f"frames, {CONFIG['channels']} channel in, {CONFIG['filters']} filters, {video32.dtype}")


def float32_drift(regime):
    """Per-step relative error of every quantity: the float32 cell against refconv float64."""
    cell32 = NdrplzCell(CONFIG["channels"], CONFIG["filters"], CONFIG["kernel"])   # float32
    cell32.load_state_dict(drift.make_cell(regime, CONFIG).state_dict())
    recorded = []
    hook = cell32.conv.register_forward_hook(lambda module, args, output: recorded.append(output))
    with torch.no_grad():
        x = torch.from_numpy(video32)
        h = c = x.new_zeros(x.shape[0], CONFIG["filters"], *x.shape[3:])
        hs, cs = [], []
        for t in range(x.shape[1]):
            h, c = cell32(x[:, t], (h, c))
            hs.append(h)
            cs.append(c)
    hook.remove()
    cc_i, cc_f, cc_o, cc_g = torch.split(torch.stack(recorded, dim=1), CONFIG["filters"], dim=2)
    ours = {"z": torch.tanh(cc_g), "z_i": torch.sigmoid(cc_i), "z_f": torch.sigmoid(cc_f),
            "z_o": torch.sigmoid(cc_o), "c": torch.stack(cs, dim=1), "h": torch.stack(hs, dim=1)}

    oracle = from_torch(cell32.state_dict(), list(x.shape[3:]), prefix="conv.")   # float64
    _, _, gates = refconv.dynamic_rnn(oracle, video32.astype(np.float64), return_gates=True)
    report = refconv.compare({f"gates/{q}": gates[q] for q in QUANTITIES},
                             {f"gates/{q}": ours[q].numpy() for q in QUANTITIES}, rtol=0, atol=0)
    errors = {t.key[len("gates/"):]: np.array([rel for _, rel, _ in t.per_step]) for t in report.tensors}
    return {q: errors[q] for q in QUANTITIES}


cpu = {regime: float32_drift(regime) for regime in drift.REGIMES}
for regime, errors in cpu.items():
    assert all(np.array_equal(errors[q], v) for q, v in drift.measure("cpu", False, regime).items())
    print(f"{regime:12s} h: first step {errors['h'][0]:.1e}, last {errors['h'][-1]:.1e}   "
          f"c: first step {errors['c'][0]:.1e}, last {errors['c'][-1]:.1e}   "
          f"largest over all steps and quantities {max(e.max() for e in errors.values()):.1e}")
print("the script measure_drift.py gives the same numbers")
EPS32 = float(np.finfo(np.float32).eps)
assert all(e.max() < 1e3 * EPS32 for errors in cpu.values() for e in errors.values())
assert cpu["long_memory"]["h"][-1] > 10 * cpu["long_memory"]["h"][0]      # it does grow there

# %%
def drift_axes(ax, errors, title, top=1e-2):
    steps = np.arange(len(errors["h"]))
    for q in QUANTITIES:
        ax.semilogy(steps, np.maximum(errors[q], FLOOR), color=COLOURS[q], linewidth=1, label=q)
    guides(ax, tolerance=False, eps=EPS32, eps_label="float32 eps")
    ax.set_ylim(1e-9, top)
    ax.set_xlabel("time step t")
    ax.set_title(title, fontsize=9)


TITLES = {"default": "PyTorch's default weights: a cell that forgets fast",
          "long_memory": "long memory: weights x 3, forget-gate bias + 3"}
fig = viz.figure(height=3.4)
axes = fig.subplots(1, 2, sharey=True)
for ax, (regime, errors) in zip(axes, cpu.items()):
    drift_axes(ax, errors, TITLES[regime])
axes[0].set_ylabel("max |float32 - float64| / max |float64|")
axes[0].legend(fontsize=viz.SMALLEST, ncol=3, loc="upper left")
fig.suptitle(f"float32 PyTorch (CPU) against refconv float64, every gate, {CONFIG['steps']} steps")
viz.to_png(fig)

# %% [markdown]
# With PyTorch's default weights the cell forgets fast, so an early rounding error is
# forgotten too: every quantity stays within a few `eps` for all 200 steps. With a long
# memory the errors climb steadily, `h`'s by two orders of magnitude over 200 steps, `c`'s
# by one: each step's rounding is kept in the memory, and added to. The gates, computed from
# `h`, follow.
# float32 is fine for a ConvLSTM that forgets; one that remembers long sequences
# accumulates its rounding in its memory.
#
# **On a GPU, float32 may not be float32.** On NVIDIA GPUs since Ampere, PyTorch computes
# float32 *convolutions* in **TF32** by default (`torch.backends.cudnn.allow_tf32 = True`),
# a format with 10 bits of mantissa instead of 23 (eps about 1e-3); matrix products only
# when `torch.backends.cuda.matmul.allow_tf32` is set. The script measures both, on the GPU:
# float32 with both flags off, and TF32 with both on. Where this notebook runs on a GPU it
# measures them live; elsewhere it shows what the script recorded in
# `notebooks/data/drift.json`, and says where.
#
# **The GPU curves are not measured yet.** The committed `drift.json` holds the CPU
# measurement only: no machine with a GPU has run `measure_drift.py` for it. Until one
# does, this section draws no GPU figure on a machine without a GPU, and the claim above
# about TF32 is what NVIDIA and PyTorch document, not something this notebook has shown.

# %%
def load_recorded(path=pathlib.Path("data/drift.json")):
    """The GPU part of the committed measurement, or None (and why)."""
    if not path.exists():
        return None, f"{path} is missing"
    record = json.loads(path.read_text())
    if not record.get("gpu"):
        return None, (f"{path} (written {record['date']}, torch {record['torch']}) holds the CPU "
                      f"part only: no GPU was present")
    return record, None


if torch.cuda.is_available():
    gpu_name = torch.cuda.get_device_name(0)
    gpu = {run: drift.measure("cuda", tf32, "long_memory")
           for run, tf32 in (("float32", False), ("tf32", True))}
    source = f"measured live on {gpu_name}, torch {torch.__version__}"
else:
    record, why = load_recorded()
    gpu = None if record is None else {run: {q: np.array(v) for q, v in regimes["long_memory"].items()}
                                       for run, regimes in record["gpu"]["runs"].items()}
    source = None if record is None else (
        f"measured on {record['gpu']['device']} by notebooks/data/measure_drift.py "
        f"(torch {record['torch']}, {record['date']})")
    if gpu is None:
        print(f"GPU curves: not measured yet. No GPU here, and no GPU measurement recorded: {why}.\n"
              f"To record one, run on a machine with a CUDA GPU: python notebooks/data/measure_drift.py")

if gpu is not None:
    print(source)
    for run, errors in gpu.items():
        print(f"GPU {run:8s} long memory  h: first step {errors['h'][0]:.1e}, last {errors['h'][-1]:.1e}")
    fig = viz.figure(height=3.4)
    axes = fig.subplots(1, 2, sharey=True)
    for ax, (run, errors) in zip(axes, gpu.items()):
        drift_axes(ax, errors, f"GPU, {run}" + (": cudnn and matmul allow_tf32 off" if run == "float32"
                                                 else ": allow_tf32 on"), top=1)
        ax.semilogy(cpu["long_memory"]["h"], color="gray", linewidth=1, label="h, CPU float32 (above)")
    guides(axes[1], tolerance=False, eps=2.0 ** -10, eps_label="TF32 eps")   # 10 bits of mantissa
    axes[0].set_ylabel("max |float32 - float64| / max |float64|")
    axes[0].legend(fontsize=viz.SMALLEST, ncol=3, loc="upper left")
    fig.suptitle(f"long memory on a GPU, against refconv float64\n{source}", fontsize=10)
    gpu_figure = viz.to_png(fig)
else:
    gpu_figure = None
gpu_figure

# %% [markdown]
# ## 6.6 JAX and Flax
#
# Flax's `linen.ConvLSTMCell` is the JAX user's ConvLSTM. Read from its code (its docstring
# is wrong on two points: the gate blocks come in the order `i, g, f, o`, not `i, f, g, o`,
# and the forget gate gets `+ 1` at every step, not once in the bias at initialisation):
#
# ```
# gates = conv(x, ih.kernel) + ih.bias + conv(h, hh.kernel) + hh.bias
# i, g, f, o = split(gates, 4)         # g is refconv's z
# c = sigmoid(f + 1) * c + sigmoid(i) * tanh(g)
# h = sigmoid(o) * tanh(c)             # carry (c, h): refconv's order
# ```
#
# So `refconv.interop.from_flax` concatenates the two kernels into refconv's one, sums the
# biases, reorders the blocks and sets `forget_bias=1.0`. refconv never imports JAX: the
# parameters travel as arrays. Flax returns the carry `(c, h)` at every step, so `c` is
# compared at every step without any trick. JAX computes in float32 unless told otherwise:
# `jax_enable_x64` makes it float64, the oracle's precision.

# %%
try:                                          # JAX and Flax are optional here, as TensorFlow is
    os.environ.setdefault("JAX_PLATFORMS", "cpu")
    import jax
    import flax
    import flax.linen as flax_nn
    jax.config.update("jax_enable_x64", True)
    from refconv.interop import flax_rnn, from_flax
    print(f"Flax {flax.__version__}, JAX {jax.__version__} (x64)")
except ImportError as error:
    jax = None
    print(f"JAX/Flax not installed ({type(error).__name__}: {error}): this section is skipped. "
          f'To include it: pip install "flax==0.12.*"')

# %%
if jax is not None:
    flax_cell = flax_nn.ConvLSTMCell(features=F, kernel_size=K, param_dtype=jax.numpy.float64)
    carry_shape = jax.ShapeDtypeStruct((B, *SHAPE, F), jax.numpy.float64)
    tree = jax.eval_shape(flax_cell.init, jax.random.key(0), (carry_shape, carry_shape),
                          jax.ShapeDtypeStruct((B, *SHAPE, C), jax.numpy.float64))
    rng = np.random.default_rng(2)                # seeded, uniform in [-0.5, 0.5], like the others
    flax_variables = jax.tree_util.tree_map(lambda a: rng.uniform(-0.5, 0.5, size=a.shape), tree)
    for path, value in jax.tree_util.tree_flatten_with_path(flax_variables)[0]:
        print(f"{jax.tree_util.keystr(path):40s} {value.shape}")

    def flax_step(x, h, c):
        """One Flax step from (h, c) (the order `stepped` uses): the new (h, c) as NumPy arrays."""
        (c, h), _ = flax_cell.apply(flax_variables, (c, h), x)
        return np.asarray(h), np.asarray(c)

    flax_h, flax_c = stepped(flax_step, video, (*SHAPE, F))
    flax_ref = from_flax(flax_variables, list(SHAPE))
    print(f"Flax -> ConvLSTMCell(forget_bias={flax_ref.forget_bias}, normalize={flax_ref.normalize}, "
          f"peephole={flax_ref.peephole}), kernel {flax_ref.params['kernel'].shape}")
    agreement["Flax"] = refconv.compare(*end_to_end(flax_ref, video, flax_h, flax_c), rtol=RTOL)
    print(agreement["Flax"].report(verbose=True))
    assert agreement["Flax"].passed and max(t.max_rel for t in agreement["Flax"].tensors) < RTOL

# %% [markdown]
# Trusting the docstring would have gone wrong, and the oracle says so: read the blocks as
# `i, f, g, o` and the very first step is off; forget the `+ 1` and the first step is still
# right (the memory `c` is zero there, so the forget gate multiplies nothing), the second is
# not. As in section 6.4, the first wrong step points at the gate.

# %%
if jax is not None:
    def docstring_order(a):
        """Flax's blocks i, g, f, o read as the docstring's i, f, g, o: g and f trade places."""
        i, g, f, o = np.split(a, 4, axis=-1)
        return np.concatenate([i, f, g, o], axis=-1)

    as_documented = from_flax(jax.tree_util.tree_map(docstring_order, flax_variables), list(SHAPE))
    without_plus_one = from_flax(flax_variables, list(SHAPE))
    without_plus_one.forget_bias = 0.0
    for what, wrong in [("the docstring's order i, f, g, o", as_documented),
                        ("no + 1 on the forget gate", without_plus_one)]:
        h = refconv.dynamic_rnn(wrong, video)[0]
        per_step = [np.abs(h[:, s] - flax_h[:, s]).max() / np.abs(flax_h[:, s]).max() for s in range(T)]
        first = next(s for s, e in enumerate(per_step) if e > RTOL)
        print(f"{what:34s}: h first off at step {first}, by {per_step[first]:.2g}; "
              f"worst {max(per_step):.2g} (relative to its scale)")

# %% [markdown]
# **Padding.** Flax pads both convolutions with its `padding`. `"SAME"` is refconv's (and
# TensorFlow's) SAME. Any other *zero* padding that keeps the frame's size, `lo` zeros before
# and `hi` after with `lo + hi = k - 1` (explicit pairs, `"SAME_LOWER"`, 1-D `"CAUSAL"`), is
# SAME for a larger kernel whose extra taps are zero, so `from_flax` embeds the kernel and
# the numbers stay exact. `"CIRCULAR"` and `"REFLECT"` pad with copies of the frame, which no
# zero-padded cell computes: `from_flax` refuses them by name.
#
# **Sequence lengths.** Flax's `nn.RNN(cell)(x, seq_lengths=...)` is not TensorFlow's
# `dynamic_rnn`: it runs every row for all T steps (its outputs past a row's length are the
# cell run on the padding, not zeros), and the carry of a row of length 0 is the carry after
# all T steps, not the initial one. `refconv.interop.flax_rnn` computes exactly what `nn.RNN`
# returns, so a ragged batch is compared whole; only the steps before each row's length (and
# the carry of rows that have at least one step) mean anything.

# %%
if jax is not None:
    lengths = np.array([T, 3])
    explicit = ((2, 0), (0, 2))                    # lo + hi = k - 1 on each axis: zeros only
    padded_cell = flax_nn.ConvLSTMCell(features=F, kernel_size=K, padding=explicit,
                                       param_dtype=jax.numpy.float64)
    carry, outputs = flax_nn.RNN(padded_cell).apply({"params": {"cell": flax_variables["params"]}},
                                                    video, seq_lengths=lengths, return_carry=True)
    padded_ref = from_flax(flax_variables, list(SHAPE), padding=explicit)
    print(f"padding {explicit}: refconv's kernel {flax_ref.kernel} -> {padded_ref.kernel} (zero taps)")
    ref_carry, ref_outputs = flax_rnn(padded_ref, video, seq_lengths=lengths)
    ragged = refconv.compare({"outputs": ref_outputs, "carry/c": ref_carry.c, "carry/h": ref_carry.h},
                             {"outputs": np.asarray(outputs), "carry/c": np.asarray(carry[0]),
                              "carry/h": np.asarray(carry[1])}, rtol=RTOL)
    print(ragged.report())
    assert ragged.passed
    tf_outputs, _ = refconv.dynamic_rnn(padded_ref, video, sequence_length=lengths)
    print(f"row 1 (length 3) after its length: Flax's outputs reach "
          f"{np.abs(np.asarray(outputs)[1, 3:]).max():.2f}, TensorFlow's (dynamic_rnn's) are "
          f"{np.abs(tf_outputs[1, 3:]).max():.0f}")

# %% [markdown]
# ## What to take away
#
# * To check a framework's ConvLSTM: import its weights (`refconv.interop`), run refconv in
#   float64 on the same inputs, and `refconv.compare`. Keras 3, ndrplz's PyTorch cell and the
#   seed's TF1 cell agree with refconv to about 1e-16 here, at every step.
# * When they do not agree, compare **one step at a time** from the framework's own state,
#   so that errors do not pile up, and read the gates the framework does not show: for a
#   cell without peepholes and layer norm, three calls with `c = 0, 1, 10^6` give `z_i * z`,
#   `z_f` and `z_o`. The first step, and the first gate of that step, is where to look.
# * A bug has a fingerprint: one gate (a bias, a block, an activation), two gates that trade
#   places (the block order), or everything at once (the convolution). A bug can also hide
#   from the outputs for a step, as the forget gate does while the memory is zero.
# * float32 stays within a few `eps` of float64 in a cell that forgets, and drifts, slowly
#   but steadily, in one that remembers; on a GPU, check whether "float32" is TF32 (this
#   notebook's GPU curves are not measured yet).

# %% [markdown]
# ## Exercise: a bug hunt
#
# `refconv.exercises.Suspect(seed)` is a ConvLSTM with one planted bug, of the kinds real
# ports have shipped. `suspect.cell` is a refconv cell with the same weights, and
# `suspect.run(inputs)` returns `(outputs, gates)` as `refconv.dynamic_rnn(suspect.cell,
# inputs, return_gates=True)` does. Write `find_bug(suspect, inputs)`: run both, compare
# every quantity at every step (to 1e-10, as the oracle does), and return the **first step**
# where they differ and the **first quantity of that step**, in the order a step computes
# them (`refconv.vocabulary.LSTM_QUANTITIES`), as `{"gate": name, "step": t}`. The graded
# check runs your function on suspects you have not seen. Every refconv function may be used
# here: refconv is the oracle.

# %%
from refconv.exercises import Suspect, check_bug_hunt
from refconv.vocabulary import LSTM_QUANTITIES
import numpy as np
import refconv
from refconv.data import moving_shapes

suspect = Suspect(seed=1)
hunt_video = moving_shapes(batch_size=2, timesteps=8, shape=(12, 10), channels=1, seed=1)

# %% nbgrader={"grade": false, "grade_id": "find_bug", "locked": false, "schema_version": 3, "solution": true, "task": false}
def find_bug(suspect, inputs):
    """The first step, and the first quantity of it, where the suspect differs from refconv."""
    ### BEGIN SOLUTION
    _, _, right = refconv.dynamic_rnn(suspect.cell, inputs, return_gates=True)
    _, wrong = suspect.run(inputs)
    for t in range(inputs.shape[1]):
        for name in LSTM_QUANTITIES:
            if not np.allclose(wrong[name][:, t], right[name][:, t], rtol=1e-10, atol=1e-12):
                return {"gate": name, "step": t}
    return None
    ### END SOLUTION

# %% nbgrader={"grade": true, "grade_id": "check_bug_hunt", "locked": true, "points": 3, "schema_version": 3, "solution": false, "task": false}
report = check_bug_hunt(find_bug, seed=1, inputs=hunt_video)
print(report)
report.points(3)

# %% [markdown]
# **Q1.** A planted bug makes the suspect's state carry `c` *before* its layer norm. Why
# does nothing differ at step 0, and why is `z_i`, not `z`, the first quantity to differ
# at step 1?

# %% [markdown] nbgrader={"grade": true, "grade_id": "q_first_step_hidden", "locked": false, "points": 1, "schema_version": 3, "solution": true, "task": false}
# At step 0 every quantity is computed from the initial state, which both share, and the
# step's own outputs (`c`, `h`) are right; only the state handed on is wrong. At step 1,
# `z` reads `x` and `h` (both right); `z_i` is the first line that reads the old `c`,
# through its peephole `W_ci * c`, so it is the first to differ.
