# Source of notebooks/05_learning.ipynb ("percent" format). Edit this file, then run
# `python notebooks/run.py 05` to rebuild and re-run the notebook.

# %% [markdown]
# # 5. Learning: gradients through time, and a ConvLSTM that predicts the next frame
#
# Notebooks 2 to 4 ran cells with random weights. This one makes a cell *learn*. Learning
# means: measure how wrong the outputs are (a loss), find how the loss changes when each
# weight changes a little (the gradient), and nudge every weight downhill. refconv
# computes the gradient by hand-written **backpropagation through time** (BPTT), in plain
# NumPy, so every number can be looked at.
#
# The plan:
#
# 1. **One step back.** The backward of one ConvLSTM step, written by hand in three rungs,
#    like the forward in notebook 2: the plain step, then with peepholes, then with layer
#    norm (exercise 5.1, three graded rungs).
# 2. **Back through time.** `refconv.dynamic_rnn_grad` is a loop of those steps, last step
#    first (exercise 5.2 writes the loop). We watch a gradient travel back through eight
#    frames, and see what the convolution and layer norm do to it.
# 3. **Checking gradients** against finite differences, the way to trust a backward pass.
# 4. **Training** a small ConvLSTM to predict the next frame of a moving-shapes video,
#    with Adam written out in a few lines.
# 5. **The gates before and after training**: what did learning change?
# 6. **Wrong answers**: what the checker says about a broken backward.
#
# **Notation.** For any quantity `v`, `d_v` is the gradient of the loss with respect to `v`,
# an array shaped like `v`: one name, one quantity, everywhere in this notebook. One forward
# step of the seed's cell, in the article's names (notebook 2), numbered, with the names
# refconv's **cache** gives the values in between (`*_in`: what enters the layer norm, so
# *after* the peephole was added and *before* the layer norm):
#
# ```
#  1  xh   = concat([x, h_prev])                     # channels: C of x, then F of h_prev
#  2  y    = conv(xh, kernel)  (+ bias)              # 4F channels; a bias only without layer norm
#  3  z_in, z_i_in, z_f_in, z_o_in = split(y, 4)     # F channels each, in this order
#  4  z_i_in += W_ci * c_prev ;  z_f_in += W_cf * c_prev    # peephole: the old memory
#  5  z    = tanh(LN(z_in))
#  6  z_i  = sigmoid(LN(z_i_in))
#  7  z_f  = sigmoid(LN(z_f_in) + forget_bias)
#  8  c_in = c_prev * z_f + z_i * z                  # the memory update
#  9  z_o_in += W_co * c_in                          # peephole: the new memory
# 10  z_o  = sigmoid(LN(z_o_in))
# 11  c    = LN(c_in)                                # the new state
# 12  h    = z_o * tanh(c)
# ```
#
# The switches: without peephole, lines 4 and 9 are not there; without layer norm every
# `LN(v)` is just `v` (so `c = c_in`), and line 2 adds the bias.

# %% [markdown]
# **You will learn** to undo a ConvLSTM step line by line (the chain rule, one forward line at
# a time), to chain the steps back through time, to check a gradient against finite
# differences, and to train a cell with a few lines of NumPy. **Before:** notebooks 2 and 4;
# the derivative of a product, of `sigmoid` and of `tanh` (the chain rule, used line by
# line, is taught here).
#
# **Time: about 2 h 45 min for a learner new to backpropagation** (a reasoned estimate,
# exercise by exercise): reading 5.1 and its rule table 20 min;
# rung 1, the plain step's backward, 35 min; rung 2, peepholes, 15 min; rung 3, layer norm,
# 25 min; exercise 5.2, the loop, 25 min; sections 5.2 to 5.6, reading and running (the
# training takes about a minute), 35 min; the two questions 10 min.

# %%
import matplotlib
import numpy as np

import refconv
from refconv import LSTMStateTuple, conv_nd_backward, layer_norm_backward, sigmoid, viz
from refconv.data import moving_shapes
from refconv.exercises import (check_bptt, check_layer_norm_step_backward, check_lstm_step_backward,
                               check_peephole_step_backward, check_plain_step_backward)

np.set_printoptions(precision=3, suppress=True)
B, T, SHAPE, C, F, K = 6, 8, (16, 16), 1, 8, (3, 3)   # batch, steps, frame, channels in, filters, kernel
NAMES = ["z", "z_i", "z_f", "z_o", "c", "h"]

cell = refconv.ConvLSTMCell(list(SHAPE), filters=F, kernel=list(K))   # the seed's cell: peephole, layer norm
cell.build(C, seed=0)
untrained = {name: value.copy() for name, value in cell.params.items()}

# A held-out video: never trained on, used for every picture and every evaluation.
test_video = moving_shapes(batch_size=B, timesteps=T + 1, shape=SHAPE, channels=C, n_shapes=2, seed=1000)
assert test_video.shape == (B, T + 1, *SHAPE, C)
viz.to_png(viz.frame_strip(test_video))

# %% [markdown]
# ## 5.1 One step back
#
# Take one step of the cell forward, at `t = 3` of the held-out video, keeping what it
# computed: `refconv.lstm_step` returns the new `h`, the new state and a **cache**, the
# step's intermediate arrays by name (`z_in`, `z_f`, `c_in`, ...). The backward needs them:
# the sigmoid's derivative, for one, is `z_f * (1 - z_f)`, a function of the forward's `z_f`.

# %%
t = 3
x_seq = test_video[:, :-1]                                   # the frames the cell reads
_, state = refconv.dynamic_rnn(cell, x_seq[:, :t])           # the state after frames 0, 1, 2
h, new_state, cache = refconv.lstm_step(x_seq[:, t], state, cell.params, cell)
print("cached:", ", ".join(cache._fields))
assert np.array_equal(new_state.h, h) and cache.c.shape == (B, *SHAPE, F)

# %% [markdown]
# **What arrives at a step from the future.** Two gradients, both `[B, H, W, F]`:
#
# * `d_h`: the gradient with respect to this step's new `h`, **all of it**: the loss's own
#   gradient for this step's output plus what step `t + 1` sent back for its `h_prev`
#   (already added together, by whoever calls the step's backward);
# * `d_c_next`: what step `t + 1` sent back for its `c_prev`, which is this step's new `c`.
#   (At the last step of a sequence both come from the loss alone.)
#
# The step's backward returns the gradient of everything it read: `d_x`, `d_h_prev`,
# `d_c_prev` (sent on to step `t - 1`) and one `d_` per parameter.
#
# **The backward step is the forward read from the bottom up.** Each forward line
# `out = f(a, b)` becomes lines that take `d_out` and add its share to `d_a` and `d_b`,
# by the chain rule. A value that is read by two lines collects a gradient from each
# reader (`+=`). Every line of the forward, with its backward, in the order a backward step
# computes them (the order the checkers compare them in); the last column says which rung
# needs the line:
#
# | forward (line) | backward | rung |
# |---|---|---|
# | `h = z_o * tanh(c)` (12) | `d_z_o = d_h * tanh(c)`; `d_c = d_c_next + d_h * z_o * (1 - tanh(c)**2)`: two readers of `c`, `h` and step `t + 1` | 1 |
# | `z_o = sigmoid(LN(z_o_in))` (10) | `d_z_o_in = d_z_o * z_o * (1 - z_o)`, then back through the layer norm (row "LN" below) | 1, LN: 3 |
# | `c = LN(c_in)` (11) | without layer norm `d_c_in = d_c`; with it, back through the layer norm | 1, LN: 3 |
# | `z_o_in += W_co * c_in` (9) | `d_c_in += d_z_o_in * W_co` (`c_in`'s second reader); `d_W_co = (d_z_o_in * c_in).sum(axis=0)` | 2 |
# | `c_in = c_prev * z_f + z_i * z` (8) | `d_z_f = d_c_in * c_prev`; `d_z_i = d_c_in * z`; `d_z = d_c_in * z_i`; `d_c_prev = d_c_in * z_f` | 1 |
# | `z_f = sigmoid(LN(z_f_in) + forget_bias)` (7) | `d_z_f_in = d_z_f * z_f * (1 - z_f)` (the constant `forget_bias` gets no gradient), then LN | 1, LN: 3 |
# | `z_i = sigmoid(LN(z_i_in))` (6) | `d_z_i_in = d_z_i * z_i * (1 - z_i)`, then LN | 1, LN: 3 |
# | `z = tanh(LN(z_in))` (5) | `d_z_in = d_z * (1 - z**2)`, then LN | 1, LN: 3 |
# | `z_i_in += W_ci * c_prev`, `z_f_in += W_cf * c_prev` (4) | `d_c_prev += d_z_i_in * W_ci + d_z_f_in * W_cf` (`c_prev` has three readers); `d_W_ci = (d_z_i_in * c_prev).sum(axis=0)`, `d_W_cf` alike | 2 |
# | `z_in, z_i_in, z_f_in, z_o_in = split(y, 4)` (3) | `d_y = concat([d_z_in, d_z_i_in, d_z_f_in, d_z_o_in], axis=-1)`: a split's backward is a concat | 1 |
# | `y = conv(xh, kernel) + bias` (2) | `d_xh, d_kernel = conv_nd_backward(xh, kernel, d_y)`; `d_bias = d_y.sum(axis=(0, 1, 2))` (no bias with LN) | 1 |
# | `xh = concat([x, h_prev])` (1) | `d_x, d_h_prev = d_xh[..., :C], d_xh[..., C:]`: a concat's backward is a split | 1 |
# | LN: `out = LN(v)` with `gamma`, `beta` of name `n` | `d_v, d_n/gamma, d_n/beta = layer_norm_backward(v, params[n + "/gamma"], d_out)` | 3 |
#
# Three rules hide in the table. **A product** `out = a * b`: `d_a = d_out * b`, `d_b =
# d_out * a`. **An activation** `out = sigmoid(v)`: `d_v = d_out * out * (1 - out)`; `out =
# tanh(v)`: `d_v = d_out * (1 - out**2)`. **A weight shared by the batch**, like a peephole
# weight `[H, W, F]` multiplying `[B, H, W, F]`: every sample added to its effect, so its
# gradient is summed over the batch axis; the bias, added at every sample and pixel, sums
# over the batch and both spatial axes.
#
# **Exercise 5.1: the step backward, in three rungs.** Each rung is a function
# `(d_h, d_c_next, cache, params)`, with `cache` a dict of the forward step's arrays named
# as above (`x`, `c_prev`, `h_prev`, `y`, `z_in` ... `z_o_in`, `z`, `z_i`, `z_f`, `z_o` after
# their activations, `c_in`, `c`, `h`) and `params` the cell's parameters. It returns a dict
# with, in the table's order, `d_z_o`, `d_c`, `d_z_o_in`, `d_c_in`, `d_z_f`, `d_z_i`, `d_z`,
# `d_z_f_in`, `d_z_i_in`, `d_z_in`, `d_c_prev`, `d_x`, `d_h_prev`, and `"d_" + name` for
# **every** parameter in `params`. Each `d_` is the *whole* gradient of its quantity (every
# reader's share added). Use `refconv.conv_nd_backward` and (rung 3)
# `refconv.layer_norm_backward`.
#
# The checker compares your gradients with refconv's **in that order**, at every time step
# of random cases (random forget bias, kernels of even and odd sizes, float64 and float32):
# the first that differs is where your bug is. The rest of the notebook uses refconv's own
# `lstm_step_backward`, so it runs whether or not you have finished.
#
# **Rung 1, the plain step** (no peephole, no layer norm: the rows marked 1, with `LN(v) =
# v`): `params` holds `kernel` `[kh, kw, C + F, 4F]` and `bias` `[4F]`; return
# `d_kernel` and `d_bias` with the thirteen above.

# %% nbgrader={"grade": false, "grade_id": "plain_step_backward", "locked": false, "schema_version": 3, "solution": true, "task": false}
def plain_step_backward(d_h, d_c_next, cache, params):
    """The backward of one ConvLSTM step without peephole or layer norm (channels_last).

    d_h, d_c_next: [B, H, W, F]. cache: dict of the forward's arrays. params: kernel, bias.
    Returns a dict of gradients: "d_" + the name of each quantity and parameter.
    """
    ### BEGIN SOLUTION
    k, g = cache, {}
    # 12: h = z_o * tanh(c)
    g["d_z_o"] = d_h * np.tanh(k["c"])
    g["d_c"] = d_c_next + d_h * k["z_o"] * (1 - np.tanh(k["c"]) ** 2)
    # 10: z_o = sigmoid(z_o_in); 11: c = c_in
    g["d_z_o_in"] = g["d_z_o"] * k["z_o"] * (1 - k["z_o"])
    g["d_c_in"] = g["d_c"]
    # 8: c_in = c_prev * z_f + z_i * z
    g["d_z_f"] = g["d_c_in"] * k["c_prev"]
    g["d_z_i"] = g["d_c_in"] * k["z"]
    g["d_z"] = g["d_c_in"] * k["z_i"]
    # 7, 6, 5: the gates' sigmoids, the content's tanh
    g["d_z_f_in"] = g["d_z_f"] * k["z_f"] * (1 - k["z_f"])
    g["d_z_i_in"] = g["d_z_i"] * k["z_i"] * (1 - k["z_i"])
    g["d_z_in"] = g["d_z"] * (1 - k["z"] ** 2)
    g["d_c_prev"] = g["d_c_in"] * k["z_f"]
    # 3: split; 2: conv + bias; 1: concat
    d_y = np.concatenate([g["d_z_in"], g["d_z_i_in"], g["d_z_f_in"], g["d_z_o_in"]], axis=-1)
    g["d_bias"] = d_y.sum(axis=(0, 1, 2))
    xh = np.concatenate([k["x"], k["h_prev"]], axis=-1)
    d_xh, g["d_kernel"] = conv_nd_backward(xh, params["kernel"], d_y)
    g["d_x"], g["d_h_prev"] = np.split(d_xh, [k["x"].shape[-1]], axis=-1)
    return g
    ### END SOLUTION

# %% nbgrader={"grade": true, "grade_id": "check_plain_step_backward", "locked": true, "points": 2, "schema_version": 3, "solution": false, "task": false}
report = check_plain_step_backward(plain_step_backward)
print(report)
report.points(2)

# %% [markdown]
# **Rung 2, peepholes** (the rows marked 1 and 2, still `LN(v) = v`): `params` also holds
# `W_ci`, `W_cf`, `W_co` (each `[H, W, F]`); return `d_W_ci`, `d_W_cf`, `d_W_co` too. Mind which
# `c` each peephole read in the forward, and that `d_c_in` and `d_c_prev` now collect a
# share from a peephole as well.

# %% nbgrader={"grade": false, "grade_id": "peephole_step_backward", "locked": false, "schema_version": 3, "solution": true, "task": false}
def peephole_step_backward(d_h, d_c_next, cache, params):
    """The backward of one ConvLSTM step with peepholes, without layer norm (channels_last)."""
    ### BEGIN SOLUTION
    k, g = cache, {}
    g["d_z_o"] = d_h * np.tanh(k["c"])
    g["d_c"] = d_c_next + d_h * k["z_o"] * (1 - np.tanh(k["c"]) ** 2)
    g["d_z_o_in"] = g["d_z_o"] * k["z_o"] * (1 - k["z_o"])
    # 9: z_o_in += W_co * c_in: c_in's second reader
    g["d_c_in"] = g["d_c"] + g["d_z_o_in"] * params["W_co"]
    g["d_W_co"] = (g["d_z_o_in"] * k["c_in"]).sum(axis=0)        # shared by the batch
    g["d_z_f"] = g["d_c_in"] * k["c_prev"]
    g["d_z_i"] = g["d_c_in"] * k["z"]
    g["d_z"] = g["d_c_in"] * k["z_i"]
    g["d_z_f_in"] = g["d_z_f"] * k["z_f"] * (1 - k["z_f"])
    g["d_z_i_in"] = g["d_z_i"] * k["z_i"] * (1 - k["z_i"])
    g["d_z_in"] = g["d_z"] * (1 - k["z"] ** 2)
    # 8 and 4: c_prev has three readers
    g["d_c_prev"] = g["d_c_in"] * k["z_f"] + g["d_z_i_in"] * params["W_ci"] + g["d_z_f_in"] * params["W_cf"]
    g["d_W_ci"] = (g["d_z_i_in"] * k["c_prev"]).sum(axis=0)
    g["d_W_cf"] = (g["d_z_f_in"] * k["c_prev"]).sum(axis=0)
    d_y = np.concatenate([g["d_z_in"], g["d_z_i_in"], g["d_z_f_in"], g["d_z_o_in"]], axis=-1)
    g["d_bias"] = d_y.sum(axis=(0, 1, 2))
    xh = np.concatenate([k["x"], k["h_prev"]], axis=-1)
    d_xh, g["d_kernel"] = conv_nd_backward(xh, params["kernel"], d_y)
    g["d_x"], g["d_h_prev"] = np.split(d_xh, [k["x"].shape[-1]], axis=-1)
    return g
    ### END SOLUTION

# %% nbgrader={"grade": true, "grade_id": "check_peephole_step_backward", "locked": true, "points": 1, "schema_version": 3, "solution": false, "task": false}
report = check_peephole_step_backward(peephole_step_backward)
print(report)
report.points(1)

# %% [markdown]
# **Rung 3, layer norm: the seed's step** (every row): peepholes, no bias, and the five
# layer norms, each with its own `gamma`, `beta` (`[F]`) in `params` (`z/gamma`, `z/beta`, ...
# `c/gamma`, `c/beta`); return `"d_" + name` for each of them (`d_z/gamma`, ...) and no
# `d_bias`. Each `LN` line's backward is one call,
# `layer_norm_backward(v, params[n + "/gamma"], d_out)`, with `v` the value that entered the
# layer norm (`z_in`, ..., `c_in` from the cache): it returns `d_v`, `d_gamma` and `d_beta`.

# %% nbgrader={"grade": false, "grade_id": "layer_norm_step_backward", "locked": false, "schema_version": 3, "solution": true, "task": false}
def layer_norm_step_backward(d_h, d_c_next, cache, params):
    """The backward of the seed's ConvLSTM step: peepholes and layer norm (channels_last)."""
    ### BEGIN SOLUTION
    k, g = cache, {}

    def ln_backward(name, v, d_out):        # out = LN(v) with name/gamma, name/beta
        d_v, g[f"d_{name}/gamma"], g[f"d_{name}/beta"] = layer_norm_backward(v, params[name + "/gamma"], d_out)
        return d_v

    g["d_z_o"] = d_h * np.tanh(k["c"])
    g["d_c"] = d_c_next + d_h * k["z_o"] * (1 - np.tanh(k["c"]) ** 2)
    g["d_z_o_in"] = ln_backward("z_o", k["z_o_in"], g["d_z_o"] * k["z_o"] * (1 - k["z_o"]))
    g["d_c_in"] = ln_backward("c", k["c_in"], g["d_c"]) + g["d_z_o_in"] * params["W_co"]
    g["d_W_co"] = (g["d_z_o_in"] * k["c_in"]).sum(axis=0)
    g["d_z_f"] = g["d_c_in"] * k["c_prev"]
    g["d_z_i"] = g["d_c_in"] * k["z"]
    g["d_z"] = g["d_c_in"] * k["z_i"]
    g["d_z_f_in"] = ln_backward("z_f", k["z_f_in"], g["d_z_f"] * k["z_f"] * (1 - k["z_f"]))
    g["d_z_i_in"] = ln_backward("z_i", k["z_i_in"], g["d_z_i"] * k["z_i"] * (1 - k["z_i"]))
    g["d_z_in"] = ln_backward("z", k["z_in"], g["d_z"] * (1 - k["z"] ** 2))
    g["d_c_prev"] = g["d_c_in"] * k["z_f"] + g["d_z_i_in"] * params["W_ci"] + g["d_z_f_in"] * params["W_cf"]
    g["d_W_ci"] = (g["d_z_i_in"] * k["c_prev"]).sum(axis=0)
    g["d_W_cf"] = (g["d_z_f_in"] * k["c_prev"]).sum(axis=0)
    d_y = np.concatenate([g["d_z_in"], g["d_z_i_in"], g["d_z_f_in"], g["d_z_o_in"]], axis=-1)
    xh = np.concatenate([k["x"], k["h_prev"]], axis=-1)
    d_xh, g["d_kernel"] = conv_nd_backward(xh, params["kernel"], d_y)
    g["d_x"], g["d_h_prev"] = np.split(d_xh, [k["x"].shape[-1]], axis=-1)
    return g
    ### END SOLUTION

# %% nbgrader={"grade": true, "grade_id": "check_layer_norm_step_backward", "locked": true, "points": 1, "schema_version": 3, "solution": false, "task": false}
report = check_layer_norm_step_backward(layer_norm_step_backward)
print(report)
report.points(1)

# %% [markdown]
# When a report is not enough: `report.hint(2)` names the mistake when the checker recognises
# it (or gives the formula), `report.hint(3)` the formula, `print(report.details())` every case
# and a table of the error per gradient and time step. If your function raises, the report
# shows the shapes it was given and must return and the line that raised, and the hints go
# from that line to the axis to NumPy's broadcasting rule.

# %% [markdown]
# To see where a gradient goes, ask for the simplest loss there is: **the value of `h` at
# one pixel** (sample 0, the centre of the frame, channel 0). Its gradient `d_h` is 1 there
# and 0 everywhere else, and nothing comes from a next step (`d_c_next = 0`). refconv's step
# backward, `lstm_step_backward(d_h, d_state, cache, params, cell, intermediates=True)`, takes
# `d_c_next` as `d_state.c` (and adds `d_state.h` to `d_h`: zero here); it returns the
# step's inputs' and parameters' gradients and, with `intermediates=True`, the ones on the
# way (`d_c`, `d_z_f`, ...), named as in the exercise.

# %%
pixel = (0, SHAPE[0] // 2, SHAPE[1] // 2, 0)                  # [batch, row, column, channel]
d_h = np.zeros_like(h)
d_h[pixel] = 1.0
zero = np.zeros_like(h)

d_x, d_prev, d_params, mine = refconv.lstm_step_backward(
    d_h, LSTMStateTuple(zero, zero), cache, cell.params, cell, intermediates=True)
assert np.array_equal(mine["d_x"], d_x) and np.array_equal(mine["d_c_prev"], d_prev.c)
print("gradients on the way:", ", ".join(mine), f"and all {len(d_params)} parameters'")

# %%
def show(arrays, titles, title, sample=0, channel=0):
    """One picture per array (sample 0, channel 0), each with its own range, symmetric about 0
    (white), and its colour bar right under it, so that no bar sits beside another picture."""
    columns = min(len(arrays), 4)                           # four to a row
    rows = -(-len(arrays) // columns)
    fig = viz.figure(min(1.75 * columns, viz.WIDTH), 2.4 * rows + 0.4)
    axes = fig.subplots(rows, columns, squeeze=False).ravel()
    for ax in axes[len(arrays):]:
        fig.delaxes(ax)
    for ax, array, name in zip(axes, arrays, titles):
        frame = array[sample, ..., channel]
        top = np.abs(frame).max() or 1.0
        image = ax.imshow(frame, cmap="RdBu_r", vmin=-top, vmax=top, interpolation="nearest")
        ax.set_xticks([])
        ax.set_yticks([])
        ax.set_title(name, fontsize=10)
        bar = fig.colorbar(image, ax=ax, location="bottom", shrink=0.9, pad=0.03, ticks=[-top, 0, top])
        bar.ax.tick_params(labelsize=viz.SMALLEST)
        bar.ax.set_xticklabels([f"{-top:.1g}", "0", f"{top:.1g}"])
    fig.suptitle(title, fontsize=10)
    return viz.to_png(fig)


show([d_h, mine["d_c"], mine["d_z_f"], mine["d_z_f_in"], mine["d_c_prev"], d_x, d_prev.h],
     ["d_h", "d_c", "d_z_f", "d_z_f_in", "d_c_prev", "d_x", "d_h_prev"],
     "one step backward from h at one pixel (sample 0, channel 0): pixel-wise lines keep it in place, "
     "the convolution spreads it")

# %% [markdown]
# Read the row left to right, as the gradient travels:
#
# * every element-wise line (`h = z_o * tanh(c)`, the gates, the memory update) keeps the
#   gradient **at its pixel**: `d_c`, `d_z_f` and `d_c_prev` are one bright dot;
# * the convolution spreads it over the kernel's **3 x 3 footprint** (`d_x`, `d_h_prev`),
#   and over every channel: each of the `4F` output channels of `y` reads all inputs;
# * layer norm spreads a **faint** share over the *whole* frame, because every pixel
#   takes part in the mean and variance it divides by. Too faint to see at this colour
#   range (`d_z_f_in` looks like a dot), but it is there:

# %%
row, col = pixel[1:3]
footprint = np.zeros(SHAPE, dtype=bool)
footprint[row - 1:row + 2, col - 1:col + 2] = True
inside = np.linalg.norm(d_x[0, footprint]) / np.linalg.norm(d_x)
print(f"share of |d_x| inside the 3 x 3 footprint: {inside:.4f}; pixels of d_x that are not "
      f"exactly 0: {np.count_nonzero(d_x[0])} of {d_x[0].size}")
assert inside > 0.99 and np.count_nonzero(d_x[0]) == d_x[0].size       # all of it, faintly

# %% [markdown]
# ## 5.2 Back through time
#
# Over a sequence the loss is a sum over steps, and every step uses the same weights.
# Backpropagation through time runs the forward once, keeping each step's cache, then
# walks back from the last step to the first. At step `t` the gradients arriving are the
# two of section 5.1: `d_h` = the loss's gradient for step `t`'s output plus the `d_h_prev`
# sent back by step `t + 1`, and `d_c_next` = the `d_c_prev` sent back by step `t + 1`. The
# weights' gradient is the **sum** over the steps, since every step used the same weights.
# That is all of `refconv.dynamic_rnn_grad`: the forward loop and the backward loop you
# write in exercise 5.2 (refconv also handles `sequence_length`, time-major input and
# stacks, and keeps less memory).
#
# The loss: `h` at our pixel, at the **last** step only. So `d_outputs` is zero except
# there.

# %%
d_outputs = np.zeros((B, T, *SHAPE, F))
d_outputs[(pixel[0], T - 1, *pixel[1:])] = 1.0
grads = refconv.dynamic_rnn_grad(cell, x_seq, d_outputs)     # (inputs, initial_state, params)

state, caches = cell.zero_state(B), []
for t in range(T):                                           # forward, keeping the caches
    _, state, step_cache = refconv.lstm_step(x_seq[:, t], state, cell.params, cell)
    caches.append(step_cache)

# %% [markdown]
# **Exercise 5.2: the backward loop.** Write `bptt(cell, params, caches, d_outputs,
# d_final_state)`, with refconv's own step backward (no need to use yours), where:
#
# * `caches`: the list of the forward's `T` caches, `caches[t]` step `t`'s (as above);
# * `d_outputs` `[B, T, H, W, F]`: `d_outputs[:, t]` is the loss's gradient for step `t`'s
#   output `h` **only**, not what later steps send back;
# * `d_final_state`: an `LSTMStateTuple(c, h)` of two `[B, H, W, F]` arrays, the loss's
#   gradient for the final state the forward returned (all zeros when the loss reads only
#   the outputs, as in this section; the checker passes random ones; never None);
# * `refconv.lstm_step_backward(d_h, d_state, caches[t], params, cell)` is one step back:
#   `d_h` is step `t`'s **own** output gradient `d_outputs[:, t]`; `d_state` an
#   `LSTMStateTuple(c, h)` of what step `t + 1` sent back (`d_final_state` at the last
#   step). It adds `d_state.h` to `d_h` itself and takes `d_state.c` as `d_c_next`, so each
#   is passed once. It returns `d_x` (`[B, H, W, C]`), the `d_state` to hand to step `t - 1`,
#   and this step's `d_params` (a dict by parameter name).
#
# Return a dict with `d_inputs` `[B, T, H, W, C]` (`d_inputs[:, t]` is step `t`'s `d_x`),
# `d_initial_c` and `d_initial_h` (the `d_state` that step 0 hands back: the initial state's
# gradient) and `"d_" + name` for every parameter, **summed** over the steps.
#
# What flows back, for `T = 3` (each box is one call of `lstm_step_backward`; `+` is the sum
# you keep):
#
# ```
#         d_outputs[:, 0]        d_outputs[:, 1]        d_outputs[:, 2]
#               |                      |                      |
#               v                      v                      v
#  d_initial <-[ step 0 ]<- d_state --[ step 1 ]<- d_state --[ step 2 ]<- d_final_state
#   (c, h)      |     |     (c, h)     |     |     (c, h)     |     |
#               v     v                v     v                v     v
#      d_inputs[:, 0] d_params    d_inputs[:, 1] d_params   d_inputs[:, 2] d_params
#                       \________________+__\________________+___/
#                                      the sum over the steps
# ```
#
# The loop walks right to left: `t = 2, 1, 0`. The checker compares yours with
# `refconv.dynamic_rnn_grad`, from the last step back: `d_inputs` at `t = T - 1` first.
# Here `refconv.lstm_step_backward` is yours to use (the loop is the exercise); when graded,
# `refconv.dynamic_rnn_grad` is unavailable.

# %% nbgrader={"grade": false, "grade_id": "bptt", "locked": false, "schema_version": 3, "solution": true, "task": false}
def bptt(cell, params, caches, d_outputs, d_final_state):
    """Backpropagation through time for a ConvLSTM, from the forward's caches."""
    ### BEGIN SOLUTION
    d_state, d_inputs = d_final_state, [None] * len(caches)
    d_weights = {name: np.zeros_like(value) for name, value in params.items()}
    for t in reversed(range(len(caches))):                   # backward, last step first
        d_inputs[t], d_state, d_step = refconv.lstm_step_backward(
            d_outputs[:, t], d_state, caches[t], params, cell)
        d_weights = {name: d_weights[name] + d_step[name] for name in d_weights}
    return {"d_inputs": np.stack(d_inputs, axis=1), "d_initial_c": d_state.c,
            "d_initial_h": d_state.h, **{"d_" + name: value for name, value in d_weights.items()}}
    ### END SOLUTION

# %% nbgrader={"grade": true, "grade_id": "check_bptt", "locked": true, "points": 3, "schema_version": 3, "solution": false, "task": false}
report = check_bptt(bptt)
print(report)
report.points(3)

# %% [markdown]
# refconv's own loop, `dynamic_rnn_grad`, is what the rest of the notebook uses.

# %%
print("dynamic_rnn_grad: inputs", grads.inputs.shape, " initial state", grads.initial_state.c.shape,
      f" {len(grads.params)} parameters")

# %% [markdown]
# `grads.inputs[:, t]` answers: **which pixels of frame `t` does the loss, `h` at one pixel
# of the last step, depend on, and how strongly?** Going back one step, the gradient
# crosses the convolution once more (through `h_prev`), so the region it reaches grows by
# one pixel on every side per step: a **cone** back in time. That is the cell's receptive
# field: after `n` steps a 3 x 3 kernel sees `2n + 1` pixels across.
#
# For comparison we run the same gradient through the same cell **without layer norm**
# (the same seed gives the same kernel and peephole weights; the cell then has a bias,
# which starts at zero). The values span many orders of magnitude, so the pictures show
# `log10 |d_x|` relative to the largest value in the row (yellow: strong, dark: weak,
# white: exactly zero).

# %%
plain = refconv.ConvLSTMCell(list(SHAPE), filters=F, kernel=list(K), normalize=False)
plain.build(C, seed=0)
assert np.array_equal(plain.params["kernel"], cell.params["kernel"])
grads_plain = refconv.dynamic_rnn_grad(plain, x_seq, d_outputs)
d_frames = {"with\nlayer norm\n(the seed's\ncell)": grads.inputs[0, ..., 0],
            "without\nlayer norm": grads_plain.inputs[0, ..., 0]}


def picture_grid(rows, columns, title, column_title="t={}"):
    """rows: (label, array [T, H, W], (lo, hi), colour map) each; one column per entry of columns."""
    return viz.to_png(viz.picture_grid([(*row, "") for row in rows], columns, title,
                                       [column_title.format(t) for t in columns]))


def log_relative(d_in):
    """log10 |d_in| / max |d_in|: -inf where d_in is exactly zero."""
    with np.errstate(divide="ignore"):
        return np.log10(np.abs(d_in) / np.abs(d_in).max())


cone_colours = matplotlib.colormaps["viridis"].with_extremes(bad="white")   # -inf: exactly zero
picture_grid([(label, log_relative(d_in), (-4, 0), cone_colours) for label, d_in in d_frames.items()],
             [T - 1, T - 2, T - 3, T - 4, T - 6, 0],
             f"log10 |d_x| / max: where the gradient of h at one pixel of step {T - 1} reaches "
             "each input frame\n(sample 0, untrained cells; white: exactly zero)", column_title="frame {}")

# %%
def cone_width(d_frame):
    """Width, in pixels, of the box holding every value that is not exactly zero."""
    rows, cols = np.nonzero(d_frame)
    return max(rows.max() - rows.min(), cols.max() - cols.min()) + 1


widths = [cone_width(grads_plain.inputs[0, t, ..., 0]) for t in range(T)]
print("without layer norm, width of the region reached in frame 0 .. 7:", widths)
assert widths == [min(2 * (T - t) + 1, SHAPE[0]) for t in range(T)]
print("with layer norm, pixels of frame 7 that get exactly zero gradient:",
      np.count_nonzero(grads.inputs[0, T - 1] == 0))
assert np.count_nonzero(grads.inputs[0, T - 1] == 0) == 0

# %% [markdown]
# Without layer norm the cone is exact: frame 7 reaches a 3 x 3 square, frame 6 a 5 x 5
# one, and so on, until it fills the frame; everything outside is exactly zero (white).
# With layer norm the same cone holds nearly all of the gradient, and a faint haze covers
# the rest of the frame, brightest where the shapes are (layer norm's backward has a term
# proportional to the normalised value itself, which is large there).
#
# How much gradient reaches each frame? One number per frame, the norm of `d_x` over the
# whole frame and batch:

# %%
def norms_per_frame(d_inputs):
    return np.sqrt((d_inputs ** 2).sum(axis=tuple(a for a in range(d_inputs.ndim) if a != 1)))


norms = {"peephole + layer norm (the seed's cell)": norms_per_frame(grads.inputs),
         "peephole, no layer norm": norms_per_frame(grads_plain.inputs)}


def plot_norms(norms, title):
    fig = viz.figure(height=3)
    ax = fig.subplots()
    for (label, values), marker in zip(norms.items(), "os^v"):
        ax.semilogy(np.arange(T), values, marker=marker, label=label)
    ax.set_xlabel("input frame t (the loss is at the last step, on the right)")
    ax.set_ylabel("|d loss / d x_t|")
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=viz.SMALLEST)
    fig.suptitle(title, fontsize=10)
    return viz.to_png(fig)


for label, values in norms.items():
    print(f"{label:40s}", values)
plot_norms(norms, "how much gradient reaches each frame, going back in time (untrained cells)")

# %% [markdown]
# Without layer norm, the gradient **shrinks** going back in time (right to left), by a
# similar factor every step: the picture of a vanishing gradient. It vanishes slowly here,
# because the LSTM's memory carries it back by `d_c_prev = d_c_in * z_f`, a product with
# the forget gate (about `sigmoid(1) = 0.73` untrained), not with a squashing function's
# derivative at every step.
#
# With layer norm there is a surprise at **frame 0**: its gradient is ten times that of
# frame 1. The first step starts from a **zero state**, so every `y` it normalises comes
# from the frame alone: zero on the whole background and varied only where the shapes are.
# Its spread over the frame is roughly two to four times smaller than at step 1, and layer
# norm **divides by that spread**, five times in one step (`z`, `z_i`, `z_f`, `z_o`, `c`),
# so a small change to `x_0` becomes a large change after normalisation. Start the same
# video from a warm state (the state after reading a few frames) and the spike is gone:

# %%
spread = {name: [caches[t]._asdict()[name][0].std() for t in range(2)]
          for name in ["z_in", "z_i_in", "z_f_in", "z_o_in", "c_in"]}
for name, (first, second) in spread.items():
    print(f"spread over the frame of {name:6s}: step 0 {first:.3f}, step 1 {second:.3f}")
_, warm = refconv.dynamic_rnn(cell, x_seq[:, :4])
warm_norms = norms_per_frame(refconv.dynamic_rnn_grad(cell, x_seq, d_outputs, initial_state=warm).inputs)
print("from a warm state, per frame:", warm_norms)
seed_norms = norms["peephole + layer norm (the seed's cell)"]
assert seed_norms[0] > 8 * seed_norms[1] and warm_norms[0] < 1.5 * warm_norms[1]
assert all(first < 0.7 * second for first, second in spread.values())
assert np.all(np.diff(norms["peephole, no layer norm"]) > 0)   # no layer norm: a steady decay back in time

# %% [markdown]
# ## 5.3 Trust, but check: gradients against finite differences
#
# A hand-written backward can be wrong in ways no test of the forward would see. The
# check is old and simple: nudge one number `p` by `±eps` and measure the loss,
# `(L(p + eps) - L(p - eps)) / (2 eps)`, an approximation of the derivative with an error
# of order `eps²`. `refconv.gradcheck(cell, inputs)` does that for entries of the inputs,
# the initial state and every parameter, with random upstream gradients, and reports the
# relative error per tensor. In float64, with `eps = 1e-6`, a right gradient agrees to
# about `1e-8` (the worst of the entries below is a little over it, 2e-8: the difference
# quotient's own error, `eps²` times the third derivative plus the loss's rounding error
# divided by `eps`, not a wrong gradient); a wrong one is typically off by order 1. (In float32 the rounding error of the loss
# would swamp the differences: always check in float64.)
#
# A small cell with every option on and **random** `gamma`, `beta` and peephole weights
# (their initial values 1 and 0 could hide a missing term), and non-square frames:

# %%
rng = np.random.default_rng(5)
small = refconv.ConvLSTMCell([9, 7], filters=3, kernel=[3, 3])
small.build(2, seed=1)
for name, value in small.params.items():
    if name.endswith("/gamma"):
        small.params[name] = rng.uniform(0.5, 1.5, value.shape)
    elif name.endswith("/beta") or name.startswith("W_c"):
        small.params[name] = rng.normal(0.0, 0.5, value.shape)
inputs = rng.standard_normal((2, 3, 9, 7, 2))                 # float64: [B, T, H, W, C]

report = refconv.gradcheck(small, inputs, max_entries=25, seed=0)
print(report)
assert report.max_error < 1e-6

# %% [markdown]
# ## 5.4 Training: predict the next frame
#
# The task: the cell reads frames `0 .. t` of a moving-shapes video and, from its `h` at
# step `t`, predicts frame `t + 1`. To do that it must work out where each shape is going,
# which no single frame says: it must **remember** the previous frame.
#
# The model has two parts:
#
# * the seed's ConvLSTM cell (peephole and layer norm on), `F = 8` filters, a 3 x 3 kernel;
# * a **readout** from `h` to a frame: at every pixel the same linear map of the `F`
#   channels of `h` (a 1 x 1 convolution), then a sigmoid, since brightness is in [0, 1]:
#   `p = sigmoid(h @ w + b)`.
#
# The loss is the mean squared error over all pixels, steps and samples. Its gradient, by
# the chain rule, one line per forward line:
#
# ```
# loss    = mean((p - target)**2)       d_p     = 2 (p - target) / N
# p       = sigmoid(logit)              d_logit = d_p * p * (1 - p)
# logit   = h @ w + b                   d_w = sum over pixels of h^T d_logit;  d_b = sum of d_logit
#                                       d_h = d_logit @ w^T      -> dynamic_rnn_grad does the rest
# ```

# %%
def predict(cell, readout, video):
    """The cell reads frames 0..T-1 of video [B, T+1, H, W, 1]; p[:, t] predicts frame t + 1."""
    h_seq, _ = refconv.dynamic_rnn(cell, video[:, :-1])
    return h_seq, sigmoid(h_seq @ readout["w"] + readout["b"])


def loss(cell, readout, video):
    return np.mean((predict(cell, readout, video)[1] - video[:, 1:]) ** 2)


def loss_and_gradients(cell, readout, video):
    """The mean squared error of the predictions, and its gradient for every weight."""
    h_seq, p = predict(cell, readout, video)
    target = video[:, 1:]
    d_p = 2 * (p - target) / p.size
    d_logit = d_p * p * (1 - p)
    d_readout = {"w": h_seq.reshape(-1, F).T @ d_logit.reshape(-1, 1), "b": d_logit.sum(axis=(0, 1, 2, 3))}
    d_h = d_logit @ readout["w"].T
    d_cell = refconv.dynamic_rnn_grad(cell, video[:, :-1], d_h).params
    return np.mean((p - target) ** 2), d_cell, d_readout


def training_batch(step):
    """Training batch number `step`: fresh videos every time, seeded by the step."""
    return moving_shapes(batch_size=B, timesteps=T + 1, shape=SHAPE, channels=C, n_shapes=2, seed=step)


# The readout starts at the average brightness (a sigmoid's bias at the logit of the mean
# pixel), so the first steps of training are spent on the shapes, not on the background.
rng = np.random.default_rng(0)
mean_pixel = training_batch(1).mean()
readout = {"w": rng.normal(0.0, 1 / np.sqrt(F), (F, 1)), "b": np.array([np.log(mean_pixel / (1 - mean_pixel))])}
print(f"mean pixel {mean_pixel:.3f} -> readout bias {readout['b'][0]:.2f}")

# %% [markdown]
# The readout's gradient is new code, so it gets the same finite-difference check before
# anything is trained on it: a few entries of `w`, `b` and the cell's kernel, against the
# loss's central differences.

# %%
def numeric_derivative(params, name, index, video, eps=1e-6):
    """(L(p + eps) - L(p - eps)) / (2 eps) for p = params[name][index]."""
    old = params[name][index]
    params[name][index] = old + eps
    plus = loss(cell, readout, video)
    params[name][index] = old - eps
    minus = loss(cell, readout, video)
    params[name][index] = old
    return (plus - minus) / (2 * eps)


probe = training_batch(1)[:2]
_, d_cell, d_readout = loss_and_gradients(cell, readout, probe)
for params, grads, name, index in [(readout, d_readout, "w", (3, 0)), (readout, d_readout, "b", (0,)),
                                   (cell.params, d_cell, "kernel", (1, 2, 4, 17)),
                                   (cell.params, d_cell, "z_f/gamma", (5,))]:
    analytic, numeric = grads[name][index], numeric_derivative(params, name, index, probe)
    error = abs(analytic - numeric) / max(abs(analytic), abs(numeric))
    print(f"d_{name}{list(index)}: analytic {analytic: .6e}, numeric {numeric: .6e}, relative error {error:.1e}")
    assert error < 1e-6

# %% [markdown]
# **Adam**, the optimiser almost everyone uses, in a few lines. For each weight it keeps two
# running averages: `m`, of the gradient (a momentum that smooths the noise of one batch),
# and `v`, of the squared gradient (its typical size). Each step moves the weight by
# about `lr` in the direction of `m`, **whatever the gradient's scale**: `m / sqrt(v)` is of
# order 1. That matters here, where the kernel, the per-pixel peephole weights and the
# layer-norm gains get gradients of very different sizes. The divisions by `1 - beta**step`
# undo the averages' start at zero.

# %%
def adam(params, grads, moments, step, lr=0.03, beta1=0.9, beta2=0.999, eps=1e-8):
    """One Adam update of every array in params (a dict, changed in place); moments: dict of (m, v)."""
    for name, grad in grads.items():
        m, v = moments.get(name, (0.0, 0.0))
        m = beta1 * m + (1 - beta1) * grad
        v = beta2 * v + (1 - beta2) * grad ** 2
        params[name] = params[name] - lr * (m / (1 - beta1 ** step)) / (np.sqrt(v / (1 - beta2 ** step)) + eps)
        moments[name] = (m, v)


baselines = {"the mean brightness everywhere": np.mean((test_video[:, 1:] - test_video[:, 1:].mean()) ** 2),
             "copy the last frame": np.mean((test_video[:, 1:] - test_video[:, :-1]) ** 2)}
_, p_untrained = predict(cell, readout, test_video)

# %% [markdown]
# The training loop: 60 steps, each on a fresh batch of 6 videos (seeded by the step, so
# the run is the same every time), with the held-out video's loss every 10 steps.

# %%
STEPS = 60
cell_moments, readout_moments = {}, {}
train_losses, test_losses = [], {0: loss(cell, readout, test_video)}
for step in range(1, STEPS + 1):
    batch_loss, d_cell, d_readout = loss_and_gradients(cell, readout, training_batch(step))
    adam(cell.params, d_cell, cell_moments, step)
    adam(readout, d_readout, readout_moments, step)
    train_losses.append(batch_loss)
    if step % 10 == 0:
        test_losses[step] = loss(cell, readout, test_video)
        print(f"step {step:3d}   training loss {batch_loss:.4f}   held-out loss {test_losses[step]:.4f}")

# %%
fig = viz.figure(height=3.2)
ax = fig.subplots()
ax.semilogy(np.arange(1, STEPS + 1), train_losses, color="0.6", linewidth=1, label="training batch")
ax.semilogy(list(test_losses), list(test_losses.values()), "o-", label="held-out video")
for (label, value), style in zip(baselines.items(), ["--", ":"]):
    ax.axhline(value, color="black", linestyle=style, linewidth=1, label=f"baseline: {label}")
ax.set_xlabel("training step")
ax.set_ylabel("mean squared error")
ax.grid(alpha=0.3, which="both")
ax.legend(fontsize=viz.SMALLEST)
fig.suptitle("learning to predict the next frame", fontsize=10)
viz.to_png(fig)

# %%
final = test_losses[STEPS]
print(f"held-out loss: {test_losses[0]:.4f} untrained -> {final:.4f} trained "
      f"({test_losses[0] / final:.0f} times smaller)")
for label, value in baselines.items():
    print(f"baseline, {label}: {value:.4f}")
assert final < test_losses[0] / 5                              # it learned
assert final < 0.7 * baselines["copy the last frame"]         # ... more than "nothing moves"

# %% [markdown]
# Two baselines say what the numbers mean. Predicting the mean brightness everywhere is
# what the untrained model does, near enough. **Copying the last frame** is what a model
# that ignores motion would do: right everywhere except along the shapes' edges, where
# they moved. The trained cell beats it clearly, so it has learned something about
# **motion**: where a shape will be next.
#
# The pictures, on the held-out video (sample 0): the input frame, the frame to predict,
# the untrained and the trained prediction, and the trained prediction's error (red: too
# bright, blue: too dark).

# %%
_, p_trained = predict(cell, readout, test_video)
picture_grid([("input x_t", test_video[0, :-1, ..., 0], (0, 1), "gray"),
              ("target x_t+1", test_video[0, 1:, ..., 0], (0, 1), "gray"),
              ("prediction,\nuntrained", p_untrained[0, ..., 0], (0, 1), "gray"),
              ("prediction,\ntrained", p_trained[0, ..., 0], (0, 1), "gray"),
              ("error, trained", (p_trained - test_video[:, 1:])[0, ..., 0], (-1, 1), "RdBu_r")],
             range(T), "next-frame prediction on the held-out video (sample 0): column t has read "
                       "frames 0..t and predicts frame t + 1")

# %%
per_step = np.mean((p_trained - test_video[:, 1:]) ** 2, axis=(0, 2, 3, 4))
copy_per_step = np.mean((test_video[:, :-1] - test_video[:, 1:]) ** 2, axis=(0, 2, 3, 4))
print("trained error per step:    ", per_step)
print("copy-last-frame per step:  ", copy_per_step)
assert per_step[0] > per_step[1:].mean()          # at step 0 it has seen one frame: no motion yet

# %% [markdown]
# The error is largest at step 0: having seen one frame, the cell cannot know which way
# a shape moves, so it predicts it where it is, a little blurred. From step 1 on it has
# seen the shape move, and the prediction follows. The remaining error sits on the edges:
# a small cell after 60 steps predicts soft shapes.
#
# ## 5.5 The gates, before and after training
#
# What changed inside? The same held-out video through the untrained and the trained cell,
# every gate at every step (sample 0, state channel 0; fixed colour ranges as in
# notebook 2):

# %%
trained = {name: value.copy() for name, value in cell.params.items()}
gates = {}
for label, params in [("untrained", untrained), ("trained", trained)]:
    cell.params = {name: value.copy() for name, value in params.items()}
    _, _, gates[label] = refconv.dynamic_rnn(cell, x_seq, return_gates=True)
assert all(np.array_equal(cell.params[name], trained[name]) for name in trained)

viz.to_png(viz.gate_grid(gates["untrained"], NAMES, frames=x_seq, title="untrained cell: gates over time (sample 0, channel 0)"))

# %%
viz.to_png(viz.gate_grid(gates["trained"], NAMES, frames=x_seq, title="trained cell: gates over time (sample 0, channel 0)"))

# %% [markdown]
# Untrained, the gates respond to every edge of the input and to each other's noise:
# speckled patterns that follow no shape. Trained, channel 0 has become a **shape
# detector**: `h` and `c` are clean silhouettes of the shapes, and the gates work
# together. Where a shape is, the input gate `z_i` opens (write the current frame into
# the memory) and the forget gate `z_f` drops (let the old frame go); on the background the
# forget gate stays open.
#
# Channel 0 is one of eight; numbers over all of them say more. For each gate: its mean,
# the share of values that are **saturated** (below 0.1 or above 0.9: decisive, and passing
# little gradient, notebook 2), and the whole distribution:

# %%
def gate_stats(g):
    return {name: (g[name].mean(), ((g[name] < 0.1) | (g[name] > 0.9)).mean()) for name in ["z_i", "z_f", "z_o"]}


stats = {label: gate_stats(g) for label, g in gates.items()}
for name in ["z_i", "z_f", "z_o"]:
    (m0, s0), (m1, s1) = stats["untrained"][name], stats["trained"][name]
    print(f"{name:4s} mean {m0:.2f} -> {m1:.2f}    saturated {s0:6.1%} -> {s1:6.1%}")

fig = viz.figure(height=2.8)
axes = fig.subplots(1, 3, sharey=True)
for ax, name in zip(axes, ["z_i", "z_f", "z_o"]):
    for label, colour in [("untrained", "0.6"), ("trained", "C0")]:
        ax.hist(gates[label][name].ravel(), bins=40, range=(0, 1), density=True, color=colour,
                alpha=0.6 if label == "untrained" else 0.8, label=label)
    ax.set_title(viz.LABELS[name], fontsize=9)
    ax.set_xlabel("gate value")
axes[0].set_ylabel("density")
axes[0].legend(fontsize=viz.SMALLEST)
fig.suptitle("how open the gates are, over every pixel, channel and step of the held-out video", fontsize=10)
viz.to_png(fig)

# %%
for name in ["z_i", "z_o"]:
    assert stats["trained"][name][1] > 2 * stats["untrained"][name][1]    # more decisive
assert stats["trained"]["z_f"][0] < stats["untrained"]["z_f"][0] - 0.04     # forgets more

# %% [markdown]
# Untrained, layer norm keeps every gate near the sigmoid's middle (the forget gate near
# `sigmoid(1)`, the forget bias). Training spread the input and output gates over their
# whole range: two to four times more of their values are decisive, the switches the pictures
# show. The forget gate went the other way, **down** on average: predicting the next frame
# needs a frame or two of memory, not eight, and the cell learned to let go of the rest.
#
# The gradient through time tells the same story. The curve of section 5.2, again, for the
# trained cell:

# %%
grads_trained = refconv.dynamic_rnn_grad(cell, x_seq, d_outputs)
norms_trained = {"untrained (the seed's cell)": norms["peephole + layer norm (the seed's cell)"],
                 "trained": norms_per_frame(grads_trained.inputs)}
for label, values in norms_trained.items():
    print(f"{label:28s}", values)
late, early = norms_trained["trained"][-3:].mean(), norms_trained["trained"][:3].mean()
assert norms_trained["trained"][-1] > 10 * norms_trained["trained"][0] and late > 3 * early
plot_norms(norms_trained, "gradient reaching each frame from h at one pixel of the last step")

# %% [markdown]
# Trained, the loss at the last step depends mostly on the **last few frames**: the
# gradient falls going back in time (not evenly, but by more than ten times over the
# sequence), and the zero-state spike at frame 0 is gone. That is what this task rewards. A task that needed
# a long memory would have to learn the opposite: forget gates near 1, and a flat curve.

# %% [markdown]
# ## 5.6 What a wrong backward looks like
#
# A slip is pinned to the gradient it breaks. Below, refconv's own step backward is wrapped
# with the switches as arguments (for `check_lstm_step_backward`, the checker that takes
# every setting of the switches at once) and then broken on purpose, the way students break
# it. The
# most tempting slip: forgetting that the old memory reaches the new one through the forget
# gate, `d_c_prev = d_c_in * z_f`, and sending back only the peephole terms. In the classic
# LSTM that one product is the highway for gradients through time: the memory's gradient goes
# back step after step multiplied only by `z_f`. In the seed's cell the state is `LN(c)`, so
# between two such products the gradient also passes through layer norm's backward (which
# mixes every pixel of the frame and removes the gradient's mean); still, without `* z_f` the
# memory's gradient could only leak through the peepholes.

# %%
def refconv_backward(d_h, d_c_next, cache, params, peephole=True, normalize=True, forget_bias=1.0):
    """refconv's lstm_step_backward, with the switches as arguments (check_lstm_step_backward's call)."""
    shape, filters = list(cache["x"].shape[1:-1]), cache["h"].shape[-1]
    step_cell = refconv.ConvLSTMCell(shape, filters, list(params["kernel"].shape[:-2]),
                                     forget_bias=forget_bias, peephole=peephole, normalize=normalize)
    _, _, d_params, g = refconv.lstm_step_backward(
        d_h, LSTMStateTuple(d_c_next, np.zeros_like(d_h)), refconv.LSTMCache(**cache), params, step_cell,
        intermediates=True)
    return {**g, **{"d_" + name: value for name, value in d_params.items()}}


def no_highway(d_h, d_c_next, cache, params, **options):
    """refconv's backward with one mistake: d_c_prev lacks d_c_in * z_f."""
    g = refconv_backward(d_h, d_c_next, cache, params, **options)
    g["d_c_prev"] = g["d_c_prev"] - g["d_c_in"] * cache["z_f"]
    return g


assert check_lstm_step_backward(refconv_backward).passed
report = check_lstm_step_backward(no_highway, cases={"peephole": True, "normalize": True})
print(report)
assert report.gate == "d_c_prev" and report.step == 0
assert np.all(report.failed_case.errors[:report.failed_case.names.index("d_c_prev")] == 0)

# %% [markdown]
# The report names `d_c_prev` as the first gradient to differ, at the first step, and
# every gradient before it as right, so the mistake is in the one line that computes
# `d_c_prev`. A second classic, `d_W_co` from the *normalised* `c` (the peephole reads
# `c_in`, before its layer norm), is recognised by name: the report says which gradient
# differs, and `report.hint(2)` names the mistake:

# %%
def w_co_from_normalised_c(d_h, d_c_next, cache, params, **options):
    g = refconv_backward(d_h, d_c_next, cache, params, **options)
    if "d_W_co" in g:
        g["d_W_co"] = (g["d_z_o_in"] * cache["c"]).sum(axis=0)
    return g


report = check_lstm_step_backward(w_co_from_normalised_c)
print(report)
print(report.hint(2))
assert report.gate == "d_W_co" and "normalised c" in report.hint(2)

# %% [markdown]
# ### Questions
#
# **Q1.** Why is `d_c_prev = d_c_in * z_f` called the LSTM's highway for gradients, and what
# happens to it when the forget gate sits near 1?

# %% [markdown] nbgrader={"grade": true, "grade_id": "q_highway", "locked": false, "points": 1, "schema_version": 3, "solution": true, "task": false}
# It is the only path from `c` to `c_prev` that crosses no weight matrix and no squashing
# derivative: one element-wise product with `z_f`. Going back `n` steps multiplies the
# gradient by the product of the `n` forget gates. Near 1 that product stays near 1, so the
# gradient reaches far back without vanishing (or exploding, since `z_f < 1`); a plain RNN
# multiplies by a weight matrix and `tanh'` at every step instead.

# %% [markdown]
# **Q2.** A one-pixel loss gives a gradient that is exactly 0 nowhere in `d_x` with layer
# norm, but exactly 0 outside the cone without it. Why?

# %% [markdown] nbgrader={"grade": true, "grade_id": "q_layer_norm_spreads", "locked": false, "points": 1, "schema_version": 3, "solution": true, "task": false}
# Layer norm divides by the mean and variance over *every* pixel and channel of the sample,
# so every input pixel influences every normalised output, if only a little: the backward
# of LN spreads a faint share of the gradient over the whole frame. Without LN each line is
# element-wise or a 3 x 3 convolution, so a pixel only reaches the kernel's footprint per
# step: the gradient stays inside the cone and is exactly zero outside.

# %% [markdown] tags=["instructor-only"]
# **For teachers.** `refconv course build --out DIR` writes the student version of this
# notebook (`plain_step_backward`, `peephole_step_backward`, `layer_norm_step_backward` and
# `bptt` reduced to stubs, the answers removed) and yours; `refconv course grade` scores a
# submission (`notebooks/COURSE.md`). A student who writes only the plain rung gets its 2
# points and 0 for the other two rungs: every case of a rung has its part switched on.
