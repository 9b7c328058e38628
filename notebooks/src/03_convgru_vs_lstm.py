# Source of notebooks/03_convgru_vs_lstm.ipynb ("percent" format). Edit this file, then run
# `python notebooks/run.py 03` to rebuild and re-run the notebook.

# %% [markdown]
# # 3. The ConvGRU, and LSTM vs GRU
#
# The seed comes with a second cell, a convolutional **GRU**, and a one-line claim in its
# test script: *"There's also a ConvGRUCell that is more memory efficient."* This notebook
# pictures the GRU's gates the way notebook 2 pictured the LSTM's, then puts the claim to
# the test: parameter counts, state size, and memory measured while the cells run.
#
# | name | what it does | range |
# |---|---|---|
# | `r` | reset gate: how much of the old `h` the candidate may look at | (0, 1) |
# | `u` | update gate: how much of the old `h` to keep | (0, 1) |
# | `candidate` | the new content, computed from `x` and `r * h` | (-1, 1) |
# | `h` | hidden state: the output *and* the only memory | (-1, 1) |
#
# One step of the seed's GRU (layer norm on):
#
# ```
# y         = conv(concat([x, h]), gates/kernel)         # 2F channels
# r, u      = split(y, 2)                                # in this order
# r, u      = sigmoid(LN(r)), sigmoid(LN(u))
# y         = conv(concat([x, r * h]), candidate/kernel)  # F channels: a second convolution
# candidate = tanh(LN(y))
# h         = u * h + (1 - u) * candidate
# ```
#
# Compared with the LSTM: there is **no separate memory** (`h` is both), **no output gate**
# (all of `h` is shown), and one gate `u` does the work of two: `u` keeps the old state
# where the LSTM's forget gate `z_f` would, and `1 - u` writes the new content where the
# input gate `z_i` would. They are tied: a GRU cannot keep everything *and* write
# everything at the same pixel. The reset gate `r` has no LSTM counterpart.

# %% [markdown]
# **You will learn** the ConvGRU's reset gate `r`, update gate `u` and candidate, to write its
# step yourself, and to weigh "more memory efficient" with numbers. **Before:** notebook 2.
#
# **Time: about 1 h** (a reasoned estimate, part by part): reading and running section 3.1,
# 15 min; the exercise `gru_step_by_hand` 20 min; the two questions 10 min; reading and
# running sections 3.2 and 3.3 (the gates over time, the memory), 15 min.

# %%
import tracemalloc

import numpy as np

import refconv
from refconv import conv_nd, layer_norm, sigmoid, viz
from refconv.data import moving_shapes
from refconv.exercises import check_gru_step

np.set_printoptions(precision=3, suppress=True)
B, T, SHAPE, C, F, K = 2, 10, (32, 32), 1, 4, (5, 5)   # as in notebook 2
GRU_NAMES = ["r", "u", "candidate", "h"]

video = moving_shapes(batch_size=B, timesteps=T, shape=SHAPE, channels=C, n_shapes=3, seed=3)
gru = refconv.ConvGRUCell(list(SHAPE), filters=F, kernel=list(K))
gru.build(C, seed=0)
for name, value in gru.params.items():
    print(f"{name:16s} {str(value.shape):16s} {value.size:5d} numbers")
assert gru.params["gates/kernel"].shape == (*K, C + F, 2 * F)
assert gru.params["candidate/kernel"].shape == (*K, C + F, F)

# %% [markdown]
# ## 3.1 One step by hand
#
# As in notebook 2, let refconv run three frames, then take step `t = 3` ourselves, one
# line at a time, with shape checks. Mind the order: the first convolution gives `r` and
# `u`; the second, the candidate's, reads `r * h`, so it can only start once the first one
# and its sigmoid are done. (The LSTM's one convolution gives all four blocks at once.)

# %%
t = 3
_, h = refconv.dynamic_rnn(gru, video[:, :t])          # a GRU's state is h alone
x, p = video[:, t], gru.params
assert h.shape == (B, *SHAPE, F)


def ln(v, name):
    return layer_norm(v, p[name + "/gamma"], p[name + "/beta"])


y = conv_nd(np.concatenate([x, h], axis=-1), p["gates/kernel"])
r, u = np.split(y, 2, axis=-1)
r, u = sigmoid(ln(r, "r")), sigmoid(ln(u, "u"))
assert y.shape == (B, *SHAPE, 2 * F) and r.shape == u.shape == h.shape

y_candidate = conv_nd(np.concatenate([x, r * h], axis=-1), p["candidate/kernel"])
candidate = np.tanh(ln(y_candidate, "candidate"))
h_new = u * h + (1 - u) * candidate
assert candidate.shape == h_new.shape == (B, *SHAPE, F)

frames = [a[0, ..., 0] for a in (x, h, r, r * h, candidate, u, h_new)]
viz.to_png(viz.heatmaps(
    frames, ["x (frame 3)", "old h", viz.LABELS["r"], "r * h: what the\ncandidate sees of h",
             "candidate", viz.LABELS["u"], "new h"],
    ranges=[(0, 1), (-1, 1), (0, 1), (-1, 1), (-1, 1), (0, 1), (-1, 1)],
    labels=["x", "h", "r", "r * h", "candidate", "u", "h"], annotate=False, width=13,
    title="one ConvGRU step (sample 0, channel 0): r filters h, u mixes old h and candidate"))

# %% [markdown]
# **The update, rearranged.** `h_new = u * h + (1 - u) * candidate` is the same as
#
# $$h_{new} - h = (1 - u)\,(\text{candidate} - h)$$
#
# so the state moves towards the candidate by the share `1 - u`, pixel by pixel: where `u`
# is near 1 the state stays put. The LSTM's memory update `c = c * z_f + z_i * z` has two
# independent knobs; the GRU's has one.

# %%
assert np.allclose(h_new - h, (1 - u) * (candidate - h))
moved = np.abs(h_new - h)
print(f"mean |change of h|: {moved[u > 0.7].mean():.3f} where u > 0.7, "
      f"{moved[u < 0.3].mean():.3f} where u < 0.3")
assert moved[u > 0.7].mean() < moved[u < 0.3].mean()

viz.to_png(viz.heatmaps([u[0, ..., 0], 1 - u[0, ..., 0], moved[0, ..., 0]],
                        ["u: share kept", "1 - u: share replaced", "|new h - old h|"],
                        ranges=[(0, 1), (0, 1), (0, 1)], labels=["u", "1 - u", "change"],
                        annotate=False, width=9,
                        title="the state changes where the update gate lets it (sample 0, channel 0)"))

# %% [markdown]
# The lines above, checked against refconv on every gate:

# %%
_, _, gru_gates = refconv.dynamic_rnn(gru, video, return_gates=True)
mine = {"r": r, "u": u, "candidate": candidate, "h": h_new}
for name in GRU_NAMES:
    assert np.allclose(mine[name], gru_gates[name][:, t]), name
print(f"the lines above agree with refconv on {GRU_NAMES} at t = {t}")

# %% [markdown]
# **Exercise: the GRU step as one function.** Write `gru_step_by_hand(x, h, params,
# normalize)`: with `normalize` the lines above; without it, no layer norm but the biases
# `gates/bias` (`[2F]`, blocks r, u) and `candidate/bias` (`[F]`). Return `r`, `u` (after
# their sigmoids), `candidate` (after its tanh) and the new `h`. The checker
# (`refconv.exercises.check_gru_step`) tries both settings, odd and even kernels, float64
# and float32, from random states, and names the quantity and step where yours first
# differs. Use `conv_nd`, `layer_norm` and `sigmoid`; when graded, `refconv.gru_step`,
# `gru_gates`, `dynamic_rnn` and `stream_rnn` are unavailable.

# %% nbgrader={"grade": false, "grade_id": "gru_step_by_hand", "locked": false, "schema_version": 3, "solution": true, "task": false}
def gru_step_by_hand(x, h, params, normalize=True):
    """One ConvGRU step (channels_last, tanh): r, u, candidate and the new h."""
    ### BEGIN SOLUTION
    def ln(v, name):
        return layer_norm(v, params[name + "/gamma"], params[name + "/beta"])

    y = conv_nd(np.concatenate([x, h], axis=-1), params["gates/kernel"])
    if not normalize:
        y = y + params["gates/bias"]
    r, u = np.split(y, 2, axis=-1)
    if normalize:
        r, u = ln(r, "r"), ln(u, "u")
    r, u = sigmoid(r), sigmoid(u)
    y = conv_nd(np.concatenate([x, r * h], axis=-1), params["candidate/kernel"])
    y = ln(y, "candidate") if normalize else y + params["candidate/bias"]
    candidate = np.tanh(y)
    return {"r": r, "u": u, "candidate": candidate, "h": u * h + (1 - u) * candidate}
    ### END SOLUTION

# %% nbgrader={"grade": true, "grade_id": "check_gru_step", "locked": true, "points": 3, "schema_version": 3, "solution": false, "task": false}
report = check_gru_step(gru_step_by_hand)
print(report)
report.points(3)

# %% [markdown]
# **Q1.** The GRU computes two convolutions per step, one after the other; the LSTM one
# larger one. Why can the GRU's two not be merged into one?

# %% [markdown] nbgrader={"grade": true, "grade_id": "q_two_convolutions", "locked": false, "points": 1, "schema_version": 3, "solution": true, "task": false}
# The candidate's convolution reads `r * h`, and `r` is the output of the first convolution
# (after its sigmoid). The second input is not known until the first convolution is done,
# so they cannot be one product; the LSTM's four blocks all read the same `concat([x, h])`.

# %% [markdown]
# **Q2.** Where `u` is near 1, what does the step do to `h`, and which LSTM gate plays that
# part?

# %% [markdown] nbgrader={"grade": true, "grade_id": "q_update_gate", "locked": false, "points": 1, "schema_version": 3, "solution": true, "task": false}
# It keeps the old `h` almost unchanged (`h_new - h = (1 - u) (candidate - h)` is near 0):
# the pixel remembers. In the LSTM the forget gate `z_f` keeps the memory, but independently
# of the input gate `z_i`; the GRU ties the two together as `u` and `1 - u`.

# %% [markdown]
# ## 3.2 The GRU's gates over time
#
# The same video, the same fixed colour ranges as notebook 2.

# %%
viz.to_png(viz.gate_grid(gru_gates, GRU_NAMES, frames=video,
                         title="ConvGRU gates over time (untrained weights, seed 0; video seed 3; "
                               "sample 0, channel 0 of 4)"))

# %% [markdown]
# With layer norm (the seed's default, used here) the GRU's gates start around 0.5: layer
# norm centres `u`'s input on 0, so an untrained GRU replaces about half of its state every
# step, where the LSTM (forget gate near 0.70, its forget bias added after layer norm)
# keeps more. Without layer norm it is different: `gates/bias` starts at **ones**, and
# `u = sigmoid(1 + small)` averages about 0.73 (and `r` too): that initial bias plays the
# forget bias's role, keeping most of the state. Measured below on both. Side by side
# after that, the hidden states of the two cells (same video, both untrained). The LSTM's `h` is
# paler: it is `tanh(c)` times an output gate near 0.5, while the GRU shows all of its
# state.

# %%
plain_gru = refconv.ConvGRUCell(list(SHAPE), filters=F, kernel=list(K), normalize=False)
plain_gru.build(C, seed=0)
plain_gates = refconv.dynamic_rnn(plain_gru, video, return_gates=True)[2]
print(f"with layer norm:    mean u {gru_gates['u'].mean():.2f}, mean r {gru_gates['r'].mean():.2f}")
print(f"without layer norm: mean u {plain_gates['u'].mean():.2f}, mean r {plain_gates['r'].mean():.2f} "
      f"(gates/bias starts at {plain_gru.params['gates/bias'][0]:g}; sigmoid(1) = {sigmoid(1.0):.2f})")
assert abs(gru_gates["u"].mean() - 0.5) < 0.05 and plain_gates["u"].mean() > 0.68

# %%
lstm = refconv.ConvLSTMCell(list(SHAPE), filters=F, kernel=list(K))
lstm.build(C, seed=0)
_, _, lstm_gates = refconv.dynamic_rnn(lstm, video, return_gates=True)
viz.to_png(viz.gate_grid({"h, LSTM": lstm_gates["h"], "h, GRU": gru_gates["h"]}, ["h, LSTM", "h, GRU"],
                         ranges={"h, LSTM": (-1, 1), "h, GRU": (-1, 1)},
                         title="the hidden state h of an untrained ConvLSTM and ConvGRU (sample 0, channel 0)"))

# %% [markdown]
# How often the GRU's gates saturate, and its update gate next to the LSTM's forget gate
# (both say how much of the old state to keep). The shares are a few percent, so each axis
# is fitted to them:

# %%
fig = viz.saturation({"r": gru_gates["r"], "u": gru_gates["u"], "z_f": lstm_gates["z_f"]}, ["r", "u", "z_f"])
top = max(line.get_ydata().max() for ax in fig.axes for line in ax.lines)
for ax in fig.axes:
    ax.set_ylim(0, 1.25 * top + 0.005)
    ax.yaxis.set_major_formatter("{x:.0%}")
fig.axes[-1].set_ylabel("z_f (LSTM):\nforget gate", fontsize=viz.SMALLEST)
fig.suptitle("saturation of the GRU's r and u, and of the LSTM's z_f (untrained, seed 0)", fontsize=10)
viz.to_png(fig)

# %%
for name, gates in (("u (GRU, share kept)", gru_gates["u"]), ("z_f (LSTM, share kept)", lstm_gates["z_f"])):
    print(f"{name:24s} mean {gates.mean():.2f}   below 0.1: {(gates < 0.1).mean():5.1%}   "
          f"above 0.9: {(gates > 0.9).mean():5.1%}")
assert lstm_gates["z_f"].mean() > gru_gates["u"].mean()

# %% [markdown]
# ## 3.3 Is the GRU "more memory efficient"?
#
# Memory goes to three things: the **parameters**, the **state** carried from step to step,
# and the **activations**: the outputs of the run, each step's temporary arrays, and, when
# training, everything backpropagation keeps from each step.
#
# ### Parameters
#
# Counting from the parameters' shapes (printed at the top of this notebook for the GRU, in notebook 2's
# section 2.1 for the LSTM), with `k = prod(kernel)` and `S` the number of pixels of a frame:
#
# * LSTM: kernel `k (C + F) 4F`, plus `4F` biases or `10F` layer-norm numbers, plus
#   **`3 S F` peephole weights**, one per pixel and channel;
# * GRU: kernels `k (C + F) 2F + k (C + F) F = k (C + F) 3F`, plus `3F` biases or `6F`
#   layer-norm numbers.
#
# We check the formulas against cells that refconv builds, then apply them to the sizes of
# the seed's test script (frames 640 x 480, 3 channels in, 12 filters, 3 x 3 kernel), too
# large to build here in a second.

# %%
def n_params_lstm(shape, c, f, kernel, peephole=True, normalize=True):
    k, s = np.prod(kernel), np.prod(shape)
    return k * (c + f) * 4 * f + (10 * f if normalize else 4 * f) + (3 * s * f if peephole else 0)


def n_params_gru(shape, c, f, kernel, normalize=True):
    return np.prod(kernel) * (c + f) * 3 * f + (6 * f if normalize else 3 * f)


def count(cell):
    return sum(value.size for value in cell.params.values())


for shape, c, f, kernel in [((32, 32), 1, 4, (5, 5)), ((20,), 3, 12, (3,)), ((6, 7, 8), 2, 5, (1, 3, 5))]:
    for peephole in (True, False):
        for normalize in (True, False):
            cell = refconv.ConvLSTMCell(list(shape), f, list(kernel), peephole=peephole, normalize=normalize)
            cell.build(c, seed=0)
            assert count(cell) == n_params_lstm(shape, c, f, kernel, peephole, normalize)
        cell = refconv.ConvGRUCell(list(shape), f, list(kernel), normalize=normalize)
        cell.build(c, seed=0)
        assert count(cell) == n_params_gru(shape, c, f, kernel, normalize)

seed_sizes = dict(shape=(640, 480), c=3, f=12, kernel=(3, 3))
table = {"LSTM (seed: peephole + LN)": n_params_lstm(**seed_sizes),
         "LSTM without peephole": n_params_lstm(**seed_sizes, peephole=False),
         "GRU (seed: LN)": n_params_gru(**seed_sizes)}
for name, n in table.items():
    print(f"{name:28s} {n:12,d} parameters   {n * 4 / 2**20:8.2f} MB in float32")
assert table["GRU (seed: LN)"] < 0.75 * table["LSTM without peephole"]
assert table["LSTM (seed: peephole + LN)"] > 2000 * table["GRU (seed: LN)"]

# %% [markdown]
# The kernels alone favour the GRU by a quarter (3 blocks of `F` output channels instead
# of 4). The peepholes change the picture entirely: the seed's LSTM spends **11 million**
# of its 11.07 million parameters on per-pixel peephole weights, over 2,000 times the
# GRU's total. (That also ties the LSTM to one frame size: its parameters have the frame's shape.)
#
# ### The state
#
# The LSTM carries `c` and `h`, the GRU only `h`: **half the state**, exactly.

# %%
def state_bytes(cell, batch, dtype=np.float32):
    state = cell.zero_state(batch, dtype)
    return sum(a.nbytes for a in (state if isinstance(state, tuple) else (state,)))


assert state_bytes(lstm, B) == 2 * state_bytes(gru, B)
frame_mb = 640 * 480 * 12 * 4 / 2**20                     # one float32 frame of h at the seed's size
print(f"state per sample at the seed's size, float32: LSTM {2 * frame_mb:.1f} MB, GRU {frame_mb:.1f} MB")

# %% [markdown]
# ### Activations, measured
#
# Now run both cells and measure the peak memory they allocate, with Python's
# `tracemalloc` (NumPy reports its arrays to it). The run is a plain forward loop that
# keeps the outputs: what inference needs. Sizes as in the seed's test script but smaller:
# 3 channels in, 12 filters, a 3 x 3 kernel, on 64 x 64 frames, batch 2, 8 steps, float64.
#
# We also weigh **what one step computes**: every intermediate array of the step (the
# cell's step cache), which is what a framework that backpropagates without recomputing
# keeps for every step of a training run.

# %%
SIZES = dict(shape=(64, 64), c=3, f=12, kernel=(3, 3), batch=2, steps=8)
clip = moving_shapes(batch_size=SIZES["batch"], timesteps=SIZES["steps"], shape=SIZES["shape"],
                     channels=SIZES["c"], seed=0)


def forward(cell, video):
    """Run cell over video keeping only the outputs and the state: inference.

    With the readable step functions (``reference=True``): the cells' own memory. The
    fast path (refconv.fast, the default) adds work buffers of its own, the same
    for both cells (a padded input, chunk buffers), which would blur the comparison."""
    state = cell.zero_state(video.shape[0])
    outputs, state = refconv.dynamic_rnn(cell, video, initial_state=state, reference=True)
    return outputs


def peak_mb(cell, video):
    """The peak, rounded to 0.1 MB: tracemalloc also counts small Python objects (a few KB that
    differ from run to run), and the rounding keeps the figure the same from run to run."""
    tracemalloc.start()
    forward(cell, video)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return round(peak / 2**20, 1)


def step_cache_mb(cell, video):
    """Every array one step computes (distinct arrays only: some are shared when options are off)."""
    x0 = video[:, 0]
    if isinstance(cell, refconv.ConvLSTMCell):
        cache = refconv.lstm_step(x0, cell.zero_state(len(x0)), cell.params, cell)[2]
    else:
        cache = refconv.gru_step(x0, cell.zero_state(len(x0)), cell.params, cell)[2]
    return sum({id(a): a.nbytes for a in cache}.values()) / 2**20


shape, c, f, kernel = SIZES["shape"], SIZES["c"], SIZES["f"], list(SIZES["kernel"])
cells = {"LSTM, peephole + LN (seed)": refconv.ConvLSTMCell(list(shape), f, kernel),
         "LSTM, neither": refconv.ConvLSTMCell(list(shape), f, kernel, peephole=False, normalize=False),
         "GRU, LN (seed)": refconv.ConvGRUCell(list(shape), f, kernel),
         "GRU, no LN": refconv.ConvGRUCell(list(shape), f, kernel, normalize=False)}
frame = SIZES["batch"] * np.prod(shape) * f * 8 / 2**20        # one float64 frame of h, whole batch
measured = {}
for name, cell in cells.items():
    cell.build(c, seed=0)
    outputs = SIZES["steps"] * frame
    state = (2 if isinstance(cell, refconv.ConvLSTMCell) else 1) * frame
    measured[name] = dict(peak=peak_mb(cell, clip), outputs=outputs, state=state, step=step_cache_mb(cell, clip))
    m = measured[name]
    print(f"{name:27s} peak {m['peak']:5.1f} MB = outputs {outputs:4.1f} + state {state:4.1f} "
          f"+ step temporaries {m['peak'] - outputs - state:4.1f}   |   one step computes {m['step']:4.1f} MB")

lstm_seed, gru_seed = measured["LSTM, peephole + LN (seed)"], measured["GRU, LN (seed)"]
assert gru_seed["peak"] < lstm_seed["peak"] and gru_seed["step"] < lstm_seed["step"]

# %%
fig = viz.figure(height=3.2)
ax_peak, ax_step = fig.subplots(1, 2)
names = list(measured)
positions = np.arange(len(names))
bottom = np.zeros(len(names))
for part, colour in (("outputs", "#4c72b0"), ("state", "#dd8452"), ("temporaries", "#bbbbbb")):
    values = np.array([m["peak"] - m["outputs"] - m["state"] if part == "temporaries" else m[part]
                       for m in measured.values()])
    ax_peak.barh(positions, values, left=bottom, color=colour, label=part)
    bottom += values
ax_peak.set_yticks(positions, names)
ax_peak.invert_yaxis()
ax_peak.set_xlabel("MB")
ax_peak.set_title("peak memory of a forward run (measured)", fontsize=10)
ax_peak.set_xlim(0, 1.9 * bottom.max())
ax_peak.legend(fontsize=viz.SMALLEST, loc="lower right")
ax_step.barh(positions, [m["step"] for m in measured.values()], color="#55a868")
ax_step.set_yticks(positions, [])
ax_step.invert_yaxis()
ax_step.set_xlabel("MB")
ax_step.set_title("everything one step computes\n(kept per step by a training run)", fontsize=10)
for ax in (ax_peak, ax_step):
    ax.grid(axis="x", alpha=0.3)
fig.suptitle("LSTM vs GRU: 64 x 64 frames, 3 -> 12 channels, 3 x 3 kernel, batch 2, 8 steps, float64")
viz.to_png(fig)

# %% [markdown]
# ### What the numbers say
#
# * **Parameters**: the GRU has three quarters of the LSTM's kernel weights. Against the
#   seed's LSTM, with its per-pixel peepholes, it has a tiny fraction of the parameters.
#   This is where the claim is plainly true.
# * **State**: exactly half. But the state is one or two frames, a small part of any run.
# * **Inference, measured**: the peak of a forward run is *not* halved. Most of it is the
#   outputs (the same for both cells: `h` at every step) and the temporaries of one step
#   (above all the convolution's patch blocks, which refconv caps at a few MB). The seed's
#   GRU peaks lower than the seed's LSTM, mostly because it has fewer layer-norm and
#   peephole temporaries; without those options the two cells peak the same.
# * **Training**: what a step computes, and a framework keeps for backpropagation, is about
#   two thirds for the GRU. That is the memory that grows with the number of steps, so for
#   training the claim holds, by about a third rather than a half.
#
# The scale puts it in perspective: at the seed's own test sizes (batch 32, 100 steps,
# 640 x 480, 12 filters) the outputs alone are 32 x 100 x 640 x 480 x 12 float32 numbers,
# **47 GB**, for either cell. So, "more memory efficient": yes, by a quarter of the
# kernels, half of the state and a third of the training activations; no, not by half
# overall; and the LSTM's real cost in the seed is its peepholes' parameters. (A GRU also
# computes two convolutions per step, one after the other, since the candidate needs `r`;
# the LSTM one larger one.)

# %%
outputs_gb = 32 * 100 * 640 * 480 * 12 * 4 / 1e9
print(f"outputs of the seed's test run, float32: {outputs_gb:.0f} GB")
assert 45 < outputs_gb < 50

# %% [markdown]
# **Next:** notebook 4 turns to time: sequences of different lengths, running backwards
# and both ways, and 1-D and 3-D inputs.
