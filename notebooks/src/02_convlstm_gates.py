# Source of notebooks/02_convlstm_gates.ipynb ("percent" format). Edit this file, then run
# `python notebooks/run.py 02` to rebuild and re-run the notebook.

# %% [markdown]
# # 2. The ConvLSTM step, gate by gate
#
# A ConvLSTM reads a video one frame at a time and keeps two pictures of what it has seen:
# the **cell state** `c` (its memory) and the **hidden state** `h` (what it shows the
# next layer). At every step four quantities, each a convolution of the new frame `x`
# and the previous `h`, decide how the memory changes. We use the names of the article
# the seed code came from, because they say what each part *does*:
#
# | name | the article calls it | what it does | range |
# |---|---|---|---|
# | `z`   | input fusion (not a gate) | the new content a step could write: a fusion of `x` and `h` | (-1, 1) |
# | `z_i` | input gate, "memory gate" | how much of `z` to write into the memory | (0, 1) |
# | `z_f` | forget gate | how much of the old `c` to keep | (0, 1) |
# | `z_o` | output gate | how much of the new `c` to show as `h` | (0, 1) |
# | `c`   | cell state | the memory | any; layer-normalised here |
# | `h`   | hidden state | the output | (-1, 1) |
#
# One step of the seed's cell (peephole and layer norm on, forget bias 1):
#
# ```
# y   = conv(concat([x, h]), kernel)           # one convolution, 4F output channels
# z, z_i, z_f, z_o = split(y, 4)               # in this order
# z_i = z_i + W_ci * c ;  z_f = z_f + W_cf * c # peephole: the gates look at the old memory
# z, z_i, z_f = LN(z), LN(z_i), LN(z_f)        # layer norm
# z_f = sigmoid(z_f + forget_bias)             # forget gate
# z_i = sigmoid(z_i)                           # input gate
# c   = c * z_f + z_i * tanh(z)                # keep some memory, write some new content
# z_o = z_o + W_co * c                         # peephole: the output gate looks at the NEW memory
# z_o, c = LN(z_o), LN(c)
# z_o = sigmoid(z_o)                           # output gate
# h   = z_o * tanh(c)
# ```
#
# Below we build this step by hand, line by line, with a picture beside each line; check
# it against refconv; run it over a video and watch every gate over time; switch the
# peephole and layer norm off and on; and end with an exercise and its checker.
#
# The weights are **random and untrained** (seeded): the pictures show what the equations
# do with any weights, not what a trained network has learned (notebook 5 trains one).

# %% [markdown]
# **You will learn** to read one ConvLSTM step as six equations (`z`, `z_i`, `z_f`, `c`, `z_o`,
# `h`), see what each one does to a picture, and write the step yourself in three rungs: plain,
# with peepholes, with layer norm. **Before:** notebook 1 (SAME convolution), NumPy broadcasting,
# what a sigmoid is.
#
# **Time: about 1 h 25 min** for a learner who has seen one lecture on the plain LSTM (a
# reasoned estimate, part by part): reading and running sections 2.1 to 2.4, 30 min; rung 1,
# `plain_step`, 15 min; rung 2, peepholes, 10 min; rung 3, layer norm in both data formats,
# 20 min; the three questions 10 min.

# %%
import numpy as np

import refconv
from refconv import conv_nd, layer_norm, sigmoid, viz
from refconv.data import moving_shapes
from refconv.exercises import check_layer_norm_step, check_peephole_step, check_plain_step
from refconv.vocabulary import LSTM_QUANTITIES

np.set_printoptions(precision=3, suppress=True)
B, T, SHAPE, C, F, K = 2, 10, (32, 32), 1, 4, (5, 5)   # batch, steps, frame, channels in, filters, kernel
NAMES = ["z", "z_i", "z_f", "z_o", "c", "h"]

video = moving_shapes(batch_size=B, timesteps=T, shape=SHAPE, channels=C, n_shapes=3, seed=3)
assert video.shape == (B, T, *SHAPE, C)
viz.to_png(viz.frame_strip(video))

# %% [markdown]
# ## 2.1 The cell and its parameters
#
# `ConvLSTMCell(shape, filters, kernel)` with the seed's defaults. Its parameters are
# plain NumPy arrays in `cell.params`, under TensorFlow's names. Note the shapes: the
# kernel has `C + F` input channels (it reads `x` and `h` together) and `4F` output
# channels (one block each for `z, z_i, z_f, z_o`); the peephole weights `W_c*` have the
# shape of **one frame of the state**: one weight per pixel and channel.

# %%
cell = refconv.ConvLSTMCell(list(SHAPE), filters=F, kernel=list(K))
cell.build(C, seed=0)
for name, value in cell.params.items():
    print(f"{name:10s} {str(value.shape):18s} {value.size:6d} numbers")
assert cell.params["kernel"].shape == (*K, C + F, 4 * F)
assert cell.params["W_ci"].shape == (*SHAPE, F)
assert cell.params["z_f/gamma"].shape == (F,)

# %% [markdown]
# ## 2.2 One step by hand
#
# To see the peephole and the memory at work we need a state that is not all zeros, so
# let refconv run the first three frames and take the step at `t = 3` ourselves.

# %%
t = 3
_, state = refconv.dynamic_rnn(cell, video[:, :t])    # the state after frames 0, 1, 2
c, h = state
x = video[:, t]
p = cell.params
print("x", x.shape, "  c", c.shape, "  h", h.shape)
assert x.shape == (B, *SHAPE, C) and c.shape == h.shape == (B, *SHAPE, F)


def pictures(arrays, titles, ranges, labels, title, sample=0, channel=0):
    """One picture per array: sample 0, state channel 0 (input channel 0 for x)."""
    frames = [a[sample, ..., min(channel, a.shape[-1] - 1)] for a in arrays]
    return viz.to_png(viz.heatmaps(frames, titles, ranges=ranges, labels=labels,
                                   annotate=False, title=title))

# %% [markdown]
# **`y = conv(concat([x, h]), kernel)`, then `split` into four.** One convolution reads the
# frame and the previous hidden state together and writes `4F` channels. The four blocks
# are computed alike; what makes them different is only what the step does with them
# next. Before any squashing they are unbounded.

# %%
xh = np.concatenate([x, h], axis=-1)
y = conv_nd(xh, p["kernel"])
z, z_i, z_f, z_o = np.split(y, 4, axis=-1)
print("xh", xh.shape, "-> y", y.shape, "-> z, z_i, z_f, z_o", z.shape)
assert xh.shape == (B, *SHAPE, C + F) and y.shape == (B, *SHAPE, 4 * F) and z.shape == (B, *SHAPE, F)

pictures([x, h, z, z_i, z_f, z_o],
         ["x (frame 3)", "h (previous)", "z, raw", "z_i, raw", "z_f, raw", "z_o, raw"],
         [(0, 1), (-1, 1)] + [None] * 4, ["x", "h"] + ["before squashing"] * 4,
         "one convolution of concat([x, h]), split into four blocks (channel 0)")

# %% [markdown]
# **Peephole: `z_i += W_ci * c`, `z_f += W_cf * c`.** The input and forget gates also look
# at the *old* memory, through a weight per pixel and channel (a Hadamard product, not a
# convolution). Untrained, these weights are small random numbers (within ±0.07 here; the
# larger the frame, the smaller they start). The memory is not small: with layer norm on,
# `c` has spread 1 over the frame and reaches several units where the shapes are. So the
# peephole term is small but not negligible: compare the two means printed below.

# %%
peep_i, peep_f = p["W_ci"] * c, p["W_cf"] * c
z_i, z_f = z_i + peep_i, z_f + peep_f
print(f"|W_ci| <= {np.abs(p['W_ci']).max():.3f}, |c| <= {np.abs(c).max():.1f}: "
      f"mean |W_ci * c| = {np.abs(peep_i).mean():.3f}, mean |raw z_i| = {np.abs(z_i - peep_i).mean():.3f}")
assert peep_i.shape == z_i.shape and np.abs(p["W_ci"]).max() < 0.08

pictures([c, p["W_ci"][None], peep_i],
         ["c (old memory)", "W_ci (a weight per pixel)", "W_ci * c, added to z_i"],
         [(-3, 3), None, None], ["c", "weight", "added"],
         "peephole: the input gate looks at the old memory (channel 0)")

# %% [markdown]
# **Layer norm: `z, z_i, z_f = LN(z), LN(z_i), LN(z_f)`.** Each block is shifted and scaled
# so that, per sample, its values over the whole frame *and* all channels have mean 0 and
# variance 1, then multiplied by `gamma` and shifted by `beta` (one of each per channel;
# 1 and 0 before training). Whatever the weights and the input, the gates then start from
# the same well-behaved range. Because the mean is subtracted, a number added to *every*
# value of a sample before the layer norm has no effect at all; the cell printed below shows
# it with `LN(z + 1)`.

# %%
def ln(v, name):
    return layer_norm(v, p[name + "/gamma"], p[name + "/beta"])


z, z_i, z_f = ln(z, "z"), ln(z_i, "z_i"), ln(z_f, "z_f")
per_sample = (1, 2, 3)                                    # every axis but the batch
print("mean per sample:", z_f.mean(axis=per_sample), "  variance per sample:", z_f.var(axis=per_sample))
assert np.allclose(z_f.mean(axis=per_sample), 0) and np.allclose(z_f.var(axis=per_sample), 1)
shifted = ln(y[..., :F] + 1.0, "z") - ln(y[..., :F], "z")        # block z, before and after adding 1
print(f"largest |LN(z + 1) - LN(z)|: {np.abs(shifted).max():.1e}: the constant is gone")
assert np.abs(shifted).max() < 1e-9

# %% [markdown]
# **The gates: `z_f = sigmoid(z_f + forget_bias)`, `z_i = sigmoid(z_i)`, and the content
# `z = tanh(z)`.** A sigmoid squashes to (0, 1): 0 shuts a gate, 1 opens it. The forget
# bias of 1 shifts the forget gate towards open (`sigmoid(1) = 0.73`), so a fresh cell
# starts by *keeping* its memory rather than wiping it. `z` goes through tanh: it is the
# content, signed, not a gate.

# %%
z_f = sigmoid(z_f + cell.forget_bias)
z_i = sigmoid(z_i)
z = np.tanh(z)
print(f"mean z_f = {z_f.mean():.2f} (forget bias 1 pushes it open)   mean z_i = {z_i.mean():.2f}")
assert 0 < z_f.min() and z_f.max() < 1 and z_f.mean() > 0.6 and abs(z_i.mean() - 0.5) < 0.1

pictures([z, z_i, z_f], [viz.LABELS[n] for n in ("z", "z_i", "z_f")],
         [viz.RANGES[n] for n in ("z", "z_i", "z_f")], ["z", "z_i", "z_f"],
         "content and gates after squashing (channel 0)")

# %% [markdown]
# **The memory update: `c = c * z_f + z_i * z`.** This line is the heart of the LSTM. The
# forget gate scales the old memory pixel by pixel (what to **keep**); the input gate
# scales the new content (what to **write**); the two are added. Where `z_f` is near 1 and
# `z_i` near 0 the classic LSTM's memory passes through untouched (and so does its
# gradient, back through time, notebook 5), which is how an LSTM carries information over
# many steps. **In the seed's cell, not quite**: with layer norm on, the state handed to the
# next step is `LN(c)`, re-centred and re-scaled over the frame at every step, so even with
# `z_f = 1` and `z_i = 0` the memory is normalised again (a pattern survives, its scale does
# not). With `normalize=False` the cell is the classic one.

# %%
kept, written = c * z_f, z_i * z
c_new = kept + written
assert c_new.shape == c.shape

pictures([c, kept, written, c_new],
         ["old c", "kept: c * z_f", "written: z_i * z", "new c = kept + written"],
         [(-3, 3)] * 4, ["c"] * 4, "the memory update, pixel by pixel (channel 0)")

# %% [markdown]
# **The output: `z_o += W_co * c` (the *new* c), `z_o, c = LN(z_o), LN(c)`,
# `z_o = sigmoid(z_o)`, `h = z_o * tanh(c)`.** The output gate decides how much of the
# (squashed) memory to show. Its peephole reads the memory *after* this step's update,
# unlike the other two gates. With layer norm on, the normalised `c` is also the state the
# next step receives.

# %%
z_o = z_o + p["W_co"] * c_new
z_o, c_new = ln(z_o, "z_o"), ln(c_new, "c")
z_o = sigmoid(z_o)
h_new = z_o * np.tanh(c_new)
assert h_new.shape == (B, *SHAPE, F) and np.abs(h_new).max() < 1

pictures([z_o, np.tanh(c_new), h_new], [viz.LABELS["z_o"], "tanh(c), c normalised", viz.LABELS["h"]],
         [(0, 1), (-1, 1), (-1, 1)], ["z_o", "tanh(c)", "h"],
         "the output: h = z_o * tanh(c) (channel 0)")

# %% [markdown]
# ### The same step, checked against refconv
#
# If the lines above and refconv disagreed anywhere, on any gate, the `assert`s would stop
# the notebook. (Putting them together into one function is the exercise of section 2.5.)

# %%
mine = {"z": z, "z_i": z_i, "z_f": z_f, "z_o": z_o, "c": c_new, "h": h_new}
h_ref, state_ref = cell(x, state)                                        # refconv's step
_, _, gates = refconv.dynamic_rnn(cell, video, return_gates=True)        # every gate, every step
assert np.allclose(mine["h"], h_ref) and np.allclose(mine["c"], state_ref.c)
for name in NAMES:
    assert np.allclose(mine[name], gates[name][:, t]), name
print(f"the lines above agree with refconv on all six of {NAMES} at t = {t}")

# %% [markdown]
# ## 2.3 Every gate over time
#
# `dynamic_rnn(cell, video, return_gates=True)` returns each of the six quantities at
# every step. The weights are random, so the pictures cannot show what a *trained* gate
# does (notebook 5 trains a cell and shows its gates); they show two things the equations do
# with any weights. Below: the input frame, the forget gate `z_f` and the output `h`, at
# steps 0, 1, 2, 4 and 9 (sample 0, state channel 0), each row with a **fixed colour range**
# (a gate is dark when shut and bright when open; `h` is blue below 0, white at 0, red
# above). Look for:
#
# * **the region that responds grows by two pixels a step**: at step 0 (zero state) only
#   the pixels near the shapes differ from the empty background; from step 1 on, `h` feeds
#   back through the 5 x 5 kernel, so what a pixel knows spreads by the kernel's half-width
#   (2 pixels) at each step, and after a few steps the whole frame responds;
# * **`z_f` is above 0.5 on most of the frame** (the share is printed below): the forget
#   bias of 1 holds the forget gate open on the background, so `c` keeps much of what it
#   had there. Where it is dark (on the shapes, here) it is this random kernel's doing, not
#   something learned.

# %%
h_seen = np.abs(gates["h"][0, :, :, :, 0] - np.median(gates["h"][0, :, :, :, 0], axis=(1, 2),
                                                        keepdims=True)) > 1e-3
print(f"pixels of h (of {SHAPE[0] * SHAPE[1]}) that differ from the background, steps 0 to 3:",
      [int(h_seen[t].sum()) for t in range(4)])
print(f"share of z_f above 0.5: {(gates['z_f'] > 0.5).mean():.0%}")
assert all(h_seen[t].sum() < h_seen[t + 1].sum() for t in range(3))    # the region grows
assert (gates["z_f"] > 0.5).mean() > 0.8
viz.to_png(viz.gate_grid(gates, ["z_f", "h"], frames=video, steps=[0, 1, 2, 4, 9],
                         title="forget gate and output over time (untrained weights; sample 0, "
                               "channel 0 of 4)"))

# %% [markdown]
# ### Each channel's mean over time
#
# The grid shows one channel. Averaging each channel over the frame shows all four at
# once, one line each. Most of the frame is background, so these means move little: each
# channel, a different random "feature", settles at its own level after the first steps,
# where the state is still close to its zero start.

# %%
viz.to_png(viz.channel_means(gates, ["z_i", "z_f", "z_o", "c", "h"]))

# %% [markdown]
# ### How saturated is each gate?
#
# A gate near 0 or 1 is decisive, but it is also where the sigmoid is flat and passes
# almost no gradient: a network whose gates are saturated from the start learns slowly.
# The share of values below 0.1 and above 0.9, per step, over the batch, the frame and
# the channels:

# %%
def zoomed(fig):
    """A saturation figure with its shares' axes fitted to the data (they are a few percent:
    on an axis to 1 every curve would lie flat at the bottom)."""
    top = max(line.get_ydata().max() for ax in fig.axes for line in ax.lines)
    for ax in fig.axes:
        ax.set_ylim(0, 1.25 * top + 0.005)
        ax.yaxis.set_major_formatter("{x:.0%}")
    return fig


viz.to_png(zoomed(viz.saturation(gates, ["z_i", "z_f", "z_o"], low=0.1, high=0.9)))

# %%
def saturation_table(gates, label=""):
    rows = {}
    for name in ["z_i", "z_f", "z_o"]:
        g = gates[name]
        rows[name] = (g.mean(), (g < 0.1).mean(), (g > 0.9).mean())
        print(f"{label}{name:4s} mean {rows[name][0]:.2f}   below 0.1: {rows[name][1]:6.1%}   "
              f"above 0.9: {rows[name][2]:6.1%}")
    return rows


shares = saturation_table(gates)
assert shares["z_f"][0] > shares["z_i"][0]          # the forget bias keeps z_f more open
assert shares["z_f"][2] > shares["z_f"][1]          # ... so it saturates open, not shut

# %% [markdown]
# With layer norm every block enters its sigmoid with mean 0 and variance 1 per sample, so
# few values reach beyond ±2.2, where the sigmoid passes 0.1 and 0.9. The forget gate is
# shifted by the forget bias: it saturates *open* more often and almost never shut.
#
# ## 2.4 Switching the peephole and layer norm off and on
#
# The seed's cell has both on. Four cells, one per setting, built with the same seed: the
# kernel is drawn first, so all four share the same kernel (and the two with peepholes
# the same `W_c*`), and only the switches differ. (Without layer norm the cell has a bias,
# which starts at 0.)

# %%
settings = {"peephole + LN": (True, True), "LN only": (False, True),
            "peephole only": (True, False), "neither": (False, False)}
runs, cells = {}, {}
for label, (peephole, normalize) in settings.items():
    cells[label] = refconv.ConvLSTMCell(list(SHAPE), F, list(K), peephole=peephole, normalize=normalize)
    cells[label].build(C, seed=0)
    assert np.array_equal(cells[label].params["kernel"], cell.params["kernel"])
    runs[label] = refconv.dynamic_rnn(cells[label], video, return_gates=True)[2]
assert all(np.allclose(runs["peephole + LN"][n], gates[n]) for n in NAMES)

for label, g in runs.items():
    saturated = np.mean([((g[n] < 0.1) | (g[n] > 0.9)).mean() for n in ["z_i", "z_f", "z_o"]])
    print(f"{label:14s} mean z_f {g['z_f'].mean():.2f}   saturated gates {saturated:6.1%}   "
          f"std of c {g['c'].std():.2f}   max |c| {np.abs(g['c']).max():5.2f}   "
          f"mean |h - h(peephole + LN)| {np.abs(g['h'] - gates['h']).mean():.3f}")

# %% [markdown]
# The same memory `c` under the four settings, at four steps. With layer norm the range is
# the usual [-3, 3]; without it `c` is about ten times smaller, so those rows use a range
# set by their largest `|c|` (with [-3, 3] they would look blank; with less, clipped):

# %%
steps = [0, 3, 6, 9]
small_c = max(np.abs(g["c"]).max() for label, g in runs.items() if not settings[label][1])
small_c = np.ceil(small_c * 10) / 10                       # the largest |c| without layer norm
rows = {f"c, {label}" + ("" if settings[label][1] else f"\n(range ±{small_c:g})"): g["c"]
        for label, g in runs.items()}
viz.to_png(viz.gate_grid(rows, list(rows), steps=steps,
                         ranges={name: (-3, 3) if "±" not in name else (-small_c, small_c) for name in rows},
                         title="the memory c with peephole and layer norm on and off (sample 0, channel 0)"))

# %%
def what_the_switches_change(runs, title):
    """Two panels, one message each: layer norm sets the scale of c; the peephole matters
    only where c is large (how much it changes h, with and without layer norm)."""
    fig = viz.figure(height=3.2)
    left, right = fig.subplots(1, 2)
    time = np.arange(T)
    for label, colour in [("LN only", "C0"), ("neither", "C2")]:
        spread = np.moveaxis(runs[label]["c"], 1, 0).reshape(T, -1).std(axis=1)
        left.semilogy(time, spread, "o-", markersize=4, color=colour,
                      label="with layer norm" if label == "LN only" else "without layer norm")
    left.set_ylabel("spread (std) of c over the frame")
    left.set_title("layer norm sets the memory's scale", fontsize=10)
    for with_peephole, without, colour in [("peephole + LN", "LN only", "C0"), ("peephole only", "neither", "C2")]:
        change = np.abs(runs[with_peephole]["h"] - runs[without]["h"]).mean(axis=(0, 2, 3, 4))
        right.semilogy(time, change, "o-", markersize=4, color=colour,
                       label="with layer norm" if "LN" in with_peephole else "without layer norm")
    right.set_ylabel("mean |h with peephole - h without|")
    right.set_title("the peephole matters where c is large", fontsize=10)
    for ax in (left, right):
        ax.set_xlabel("time step t")
        ax.grid(alpha=0.3, which="both")
        ax.legend(fontsize=viz.SMALLEST)
    fig.suptitle(title, fontsize=10)
    return viz.to_png(fig)


what_the_switches_change(runs, "what the switches change, step by step (untrained cells, same kernel; log scales)")

# %%
def h_change(a, b):
    return np.abs(runs[a]["h"] - runs[b]["h"]).mean()


print(f"mean |h difference| made by the peephole: with LN {h_change('peephole + LN', 'LN only'):.3f}, "
      f"without LN {h_change('peephole only', 'neither'):.4f}")
assert h_change("peephole + LN", "LN only") > 10 * h_change("peephole only", "neither")
assert runs["neither"]["c"].std() < 0.2 < 0.9 < runs["LN only"]["c"].std()
# With layer norm z_f = sigmoid(1 + n), n spread over the frame with variance 1: its mean is
# below sigmoid(1), because the sigmoid bends over above 0. Without it, n is tiny.
bent = np.mean(sigmoid(1 + np.random.default_rng(0).standard_normal(200_000)))
print(f"mean z_f: with LN {runs['LN only']['z_f'].mean():.3f} (mean of sigmoid(1 + N(0, 1)): "
      f"{bent:.3f}); without LN {runs['neither']['z_f'].mean():.3f} (sigmoid(1) = {sigmoid(1.0):.3f})")
assert abs(runs["LN only"]["z_f"].mean() - bent) < 0.01 and abs(runs["neither"]["z_f"].mean() - sigmoid(1.0)) < 0.01

# %% [markdown]
# What the numbers and pictures say, for these untrained cells:
#
# * **Layer norm** is the switch that changes most. With it, `c` has spread 1 at every
#   step (it is normalised), the gates sit in the sigmoid's responsive middle with a few
#   percent saturated, and the forget gate averages about 0.70: the mean of
#   `sigmoid(1 + n)` over values `n` with variance 1 is less than `sigmoid(1) = 0.73`,
#   which is what the forget gate averages without layer norm. Without it,
#   `c` starts small and grows slowly as it accumulates (the forget gate keeps most of it),
#   and the gates are only as spread as the weights and the input make them: here, small
#   random weights leave them close to 0.5 and never saturated (large weights or bright
#   inputs would saturate them instead).
# * **The peephole** matters only where `c` is large. With layer norm, `c` is of order 1
#   and the peephole changes `h` visibly; without it, `c` is so small that `W * c` is
#   nearly nothing and the two runs agree to a few parts in ten thousand (right panel: the
#   two curves are orders of magnitude apart). Training changes both the weights and the
#   scale of `c`; the peephole also costs three frames' worth of parameters, one per pixel
#   (notebook 3 counts them).
#
# ## 2.5 Exercises: write the step, one rung at a time
#
# Write one ConvLSTM step yourself, from the equations at the top of this notebook, in three
# rungs. Each is a function of the frame `x` `[B, H, W, C]`, the old state `c`, `h`
# `[B, H, W, F]` and a dict `params` named as `cell.params`, and returns the six quantities
# `{"z", "z_i", "z_f", "c", "z_o", "h"}` (`z` after its tanh, the gates after their sigmoids,
# `c` the new state). Use `refconv.conv_nd`, `refconv.sigmoid` and `refconv.layer_norm`;
# when graded, refconv's own step (`lstm_step`, `lstm_gates`, `dynamic_rnn`, `stream_rnn`) is
# unavailable, and a case that calls it scores 0.
#
# Each rung has a checker from `refconv.exercises`. It runs your function and refconv side by
# side from random states, with a **random forget bias** in every case (never 1), random
# biases, `gamma` and `beta`, kernels of even and odd sizes, in float64 and float32, and
# prints a short report: which quantity, at which step, first differs, and by how much. When
# it recognises a mistake (swapped gate blocks, Keras's order, a per-channel layer norm, the
# old `c` where the new one belongs...) it names it when you ask, `report.hint(2)`;
# `report.hint(3)` gives the formula; `print(report.details())` every case and a table. If
# your function raises, the report shows the shapes it was given and must return and the
# line that raised. Until you write a rung, its checker reports the `NotImplementedError`.
#
# **Rung 1, the plain step**: `plain_step(x, c, h, params, forget_bias)` with `params`
# holding `kernel` `[kh, kw, C + F, 4F]` (blocks z, z_i, z_f, z_o) and `bias` `[4F]`; no
# peephole, no layer norm. The bias is added to the convolution's output, before the split:
# `y = conv(concat([x, h]), kernel) + bias` (one number per output channel, the same at every
# pixel), so each of the four blocks gets its quarter of it. `forget_bias` is added to `z_f`'s
# block just before its sigmoid, as in the equations at the top.

# %% nbgrader={"grade": false, "grade_id": "plain_step", "locked": false, "schema_version": 3, "solution": true, "task": false}
def plain_step(x, c, h, params, forget_bias):
    """One ConvLSTM step without peephole or layer norm (channels_last, tanh)."""
    ### BEGIN SOLUTION
    y = conv_nd(np.concatenate([x, h], axis=-1), params["kernel"]) + params["bias"]
    z, z_i, z_f, z_o = np.split(y, 4, axis=-1)
    z_f = sigmoid(z_f + forget_bias)
    z_i = sigmoid(z_i)
    z = np.tanh(z)
    c_new = c * z_f + z_i * z
    z_o = sigmoid(z_o)
    h_new = z_o * np.tanh(c_new)
    return {"z": z, "z_i": z_i, "z_f": z_f, "c": c_new, "z_o": z_o, "h": h_new}
    ### END SOLUTION

# %% nbgrader={"grade": true, "grade_id": "check_plain_step", "locked": true, "points": 2, "schema_version": 3, "solution": false, "task": false}
report = check_plain_step(plain_step)
print(report)
report.points(2)

# %% [markdown]
# **Rung 2, peepholes**: `peephole_step(x, c, h, params, forget_bias)`, the plain step plus
# `W_ci`, `W_cf`, `W_co` (each `[H, W, F]`, one weight per pixel and channel). Mind which `c`
# each one reads.

# %% nbgrader={"grade": false, "grade_id": "peephole_step", "locked": false, "schema_version": 3, "solution": true, "task": false}
def peephole_step(x, c, h, params, forget_bias):
    """One ConvLSTM step with peepholes, without layer norm (channels_last, tanh)."""
    ### BEGIN SOLUTION
    y = conv_nd(np.concatenate([x, h], axis=-1), params["kernel"]) + params["bias"]
    z, z_i, z_f, z_o = np.split(y, 4, axis=-1)
    z_i = z_i + params["W_ci"] * c
    z_f = z_f + params["W_cf"] * c
    z_f = sigmoid(z_f + forget_bias)
    z_i = sigmoid(z_i)
    z = np.tanh(z)
    c_new = c * z_f + z_i * z
    z_o = sigmoid(z_o + params["W_co"] * c_new)
    h_new = z_o * np.tanh(c_new)
    return {"z": z, "z_i": z_i, "z_f": z_f, "c": c_new, "z_o": z_o, "h": h_new}
    ### END SOLUTION

# %% nbgrader={"grade": true, "grade_id": "check_peephole_step", "locked": true, "points": 2, "schema_version": 3, "solution": false, "task": false}
report = check_peephole_step(peephole_step)
print(report)
report.points(2)

# %% [markdown]
# **Rung 3, layer norm, in both data formats**: `layer_norm_step(x, c, h, params,
# forget_bias, norm_epsilon, data_format)`, the seed's full step: peepholes, no bias, and
# `LN(z)`, `LN(z_i)`, `LN(z_f)`, `LN(z_o)`, `LN(c)` with their own `gamma`, `beta` (`[F]`)
# and the `norm_epsilon` you are given. With `data_format="channels_first"` the frames are
# `[B, C, H, W]`, the states `[B, F, H, W]` and the peephole weights `[F, H, W]`: the channel
# axis is 1 (`layer_norm(v, gamma, beta, channel_axis, eps)`, `conv_nd(..., data_format=...)`).

# %% nbgrader={"grade": false, "grade_id": "layer_norm_step", "locked": false, "schema_version": 3, "solution": true, "task": false}
def layer_norm_step(x, c, h, params, forget_bias, norm_epsilon, data_format):
    """One ConvLSTM step with peepholes and layer norm (tanh), in either data format."""
    ### BEGIN SOLUTION
    axis = 1 if data_format == "channels_first" else -1

    def ln(v, name):
        return layer_norm(v, params[name + "/gamma"], params[name + "/beta"], axis, norm_epsilon)

    y = conv_nd(np.concatenate([x, h], axis=axis), params["kernel"], data_format=data_format)
    z, z_i, z_f, z_o = np.split(y, 4, axis=axis)
    z_i = z_i + params["W_ci"] * c
    z_f = z_f + params["W_cf"] * c
    z, z_i, z_f = ln(z, "z"), ln(z_i, "z_i"), ln(z_f, "z_f")
    z_f = sigmoid(z_f + forget_bias)
    z_i = sigmoid(z_i)
    z = np.tanh(z)
    c_new = c * z_f + z_i * z
    z_o = z_o + params["W_co"] * c_new
    z_o, c_new = ln(z_o, "z_o"), ln(c_new, "c")
    z_o = sigmoid(z_o)
    h_new = z_o * np.tanh(c_new)
    return {"z": z, "z_i": z_i, "z_f": z_f, "c": c_new, "z_o": z_o, "h": h_new}
    ### END SOLUTION

# %% nbgrader={"grade": true, "grade_id": "check_layer_norm_step", "locked": true, "points": 3, "schema_version": 3, "solution": false, "task": false}
report = check_layer_norm_step(layer_norm_step)
print(report)
report.points(3)

# %% [markdown]
# ### What a wrong answer looks like
#
# A classic slip: reading the kernel's four blocks in **Keras's** order (input, forget, cell,
# output) instead of the seed's `z, z_i, z_f, z_o`. Below, refconv's own step is handed a
# kernel with its blocks shuffled that way, which is exactly what such a solution computes;
# the checker pins it to `z`, at the first step, and names the mistake:

# %%
def keras_ordered(x, c, h, params, forget_bias):
    """refconv's plain step, reading the kernel's blocks as if they were Keras's (i, f, c, o)."""
    shape, filters = list(x.shape[1:-1]), h.shape[-1]
    plain = refconv.ConvLSTMCell(shape, filters, list(params["kernel"].shape[:-2]),
                                 forget_bias=forget_bias, peephole=False, normalize=False)
    order = [2, 0, 1, 3]             # z is read from block 2, z_i from 0, z_f from 1
    shuffled = {name: np.concatenate([np.split(value, 4, axis=-1)[j] for j in order], axis=-1)
                for name, value in params.items()}
    cache = refconv.lstm_step(x, refconv.LSTMStateTuple(c, h), shuffled, plain)[2]
    return {name: getattr(cache, name) for name in LSTM_QUANTITIES}


report = check_plain_step(keras_ordered)
print(report)
assert report.gate == "z" and report.step == 0 and "Keras" in report.mistake

# %% [markdown]
# ### Questions
#
# **Q1.** `c` is already the sum of bounded terms; why does the step apply `tanh` to it
# *again* before the output gate (`h = z_o * tanh(c)`)?

# %% [markdown] nbgrader={"grade": true, "grade_id": "q_tanh_on_c", "locked": false, "points": 1, "schema_version": 3, "solution": true, "task": false}
# `c` is not bounded: it accumulates `z_i * z` over many steps (the forget gate keeps most
# of it), so it can grow far beyond 1. `tanh` squashes it back into (-1, 1) so that `h`, which
# the next step and the next layer read, stays in a fixed range whatever the memory holds;
# the output gate then only decides *how much* of it to show.

# %% [markdown]
# **Q2.** The forget bias is added *after* the layer norm: `z_f = sigmoid(LN(z_f) +
# forget_bias)`. What would `sigmoid(LN(z_f + forget_bias))` do, and why does the cell have
# `beta` instead of a `bias` when `normalize` is on?

# %% [markdown] nbgrader={"grade": true, "grade_id": "q_bias_before_ln", "locked": false, "points": 1, "schema_version": 3, "solution": true, "task": false}
# A constant added to every value of a sample moves the sample's mean by exactly that
# constant and leaves its variance alone; layer norm subtracts the mean, so the constant
# vanishes: a forget bias added before LN does nothing at all. A per-channel bias before LN
# vanishes in part (its average over the channels); what is left is a per-channel offset,
# which `beta` gives directly after the normalisation. So TF1's cell drops the bias and keeps
# `beta`, and adds the forget bias after LN, where it survives.

# %% [markdown]
# **Q3.** What does the forget bias (1 by default) buy a cell at initialisation?

# %% [markdown] nbgrader={"grade": true, "grade_id": "q_forget_bias", "locked": false, "points": 1, "schema_version": 3, "solution": true, "task": false}
# With small random weights every gate starts near `sigmoid(0) = 0.5`, so an unbiased cell
# halves its memory every step and the gradient through `c` shrinks like `0.5^T`. A forget
# bias of 1 starts `z_f` near `sigmoid(1) = 0.73`: the cell keeps most of its memory by
# default, and gradients flow back through many steps from the first update on
# (Gers et al. 2000; Jozefowicz et al. 2015).

# %% [markdown] tags=["instructor-only"]
# **For teachers.** `refconv course build --out DIR` writes this notebook for students (the
# three functions reduced to stubs, the answers removed, the graded cells locked) and for
# you; `refconv course grade submission.ipynb` runs a submission and prints its score
# (`notebooks/COURSE.md`). `check_lstm_step` checks a step with the switches as arguments;
# `check_gru_step` does the same for the GRU (notebook 3).

# %% [markdown]
# **Next:** notebook 3 pictures the ConvGRU the same way and weighs the seed's claim that
# it "is more memory efficient" than the LSTM.
