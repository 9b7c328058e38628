# Source of notebooks/04_time.ipynb ("percent" format). Edit this file, then run
# `python notebooks/run.py 04` to rebuild and re-run the notebook.

# %% [markdown]
# # 4. Time: sequence lengths, both directions, 1-D and 3-D
#
# Notebooks 2 and 3 looked inside one step. This one looks along the time axis, at the
# two functions that run a cell over a sequence, with TensorFlow 1's semantics:
#
# * `dynamic_rnn(cell, inputs, sequence_length=...)`: one direction; each batch row may
#   stop at its own length;
# * `bidirectional_dynamic_rnn(cell_fw, cell_bw, inputs, sequence_length=...)`: a forward
#   and a backward pass, with outputs that line up with the inputs.
#
# It ends with the seed's own test script, in one and three dimensions, at small sizes.
#
# **1-D videos make time visible.** A 1-D frame is a row of pixels, so a whole sequence is
# one picture: frames stacked top to bottom, **time running down**. Here are three 1-D
# videos of moving segments, 32 pixels wide and 8 steps long.

# %% [markdown]
# **You will learn** what `sequence_length` does to outputs and states, how the backward
# direction reads each row reversed within its own length, what sharing one cell between
# directions means, and to write both rules yourself. **Before:** notebook 2.
#
# **Time: about 1 h 5 min** (a reasoned estimate, part by part): reading and running
# sections 4.1 to 4.4, 30 min; exercise `mask_step` 10 min; exercise `reverse_within_length`
# 15 min (rows of length 0 and full length are the traps); the two questions 10 min.

# %%
import numpy as np
from matplotlib.patches import Rectangle

import refconv
from refconv import viz
from refconv.data import moving_shapes
from refconv.exercises import check_mask_step, check_reverse_within_length

np.set_printoptions(precision=3, suppress=True)
B, T, WIDTH, C, F = 3, 8, 32, 1, 4
video = moving_shapes(batch_size=B, timesteps=T, shape=(WIDTH,), channels=C, n_shapes=2, seed=5)
assert video.shape == (B, T, WIDTH, C)

cell = refconv.ConvLSTMCell([WIDTH], filters=F, kernel=[5])
cell.build(C, seed=0)


def strips(arrays, titles, ranges, label, title, lengths=None, cmap=None):
    """Sequences [T, width] side by side: time runs down (t = 0 at the top), position across.

    ``lengths``: one per array; steps at or past it are hatched grey (not computed: the
    output there is zero by definition), so that they do not look like h = 0. NaN
    columns (a gap between two halves) are left blank.
    """
    lo, hi = ranges
    cmap = cmap or ("RdBu_r" if lo < 0 else "gray")
    fig = viz.figure(height=3.1)
    axes = fig.subplots(1, len(arrays), squeeze=False)[0]
    for k, (ax, array, name) in enumerate(zip(axes, arrays, titles)):
        steps, width = array.shape
        image = ax.imshow(array, cmap=cmap, vmin=lo, vmax=hi, aspect="auto", interpolation="nearest",
                          extent=(-0.5, width - 0.5, steps - 0.5, -0.5))
        if lengths is not None and lengths[k] < steps:
            ax.add_patch(Rectangle((-0.5, lengths[k] - 0.5), width, steps - lengths[k], facecolor="0.85",
                                   edgecolor="0.45", hatch="//", linewidth=0.8))
            ax.text(width / 2 - 0.5, (lengths[k] + steps) / 2 - 0.5, "past the length:\nnot computed",
                    ha="center", va="center", fontsize=viz.SMALLEST, backgroundcolor="white")
        ax.set_title(name, fontsize=9)
        ax.set_yticks(range(steps))
        ax.set_xlabel("position (pixel)", fontsize=viz.SMALLEST)
        ax.tick_params(labelsize=viz.SMALLEST)
    axes[0].set_ylabel("time step t (down)", fontsize=viz.SMALLEST)
    fig.colorbar(image, ax=axes, fraction=0.02, pad=0.01, label=label)
    fig.suptitle(title, fontsize=10)
    return viz.to_png(fig)


strips([video[b, :, :, 0] for b in range(B)], [f"row {b}" for b in range(B)], (0, 1),
       "brightness", "three 1-D videos: each row of a picture is a frame, time runs down")

# %% [markdown]
# ## 4.1 `sequence_length`: rows of different lengths
#
# A batch holds sequences of different lengths, padded to the longest. With
# `sequence_length`, row `b` is processed for its first `len[b]` steps only. After that,
# as in TensorFlow, its **output is zero** and its **state is carried through unchanged**,
# so the final state of a row is its state after its own last step, not after the padding.
# The final state matters: it is what a model built on the cell reads next (an encoder hands
# it to a decoder, a classifier reads its label from it), and it should describe the row's
# real frames, not zeros and not the padding.

# %%
lengths = np.array([8, 5, 2])
outputs, state = refconv.dynamic_rnn(cell, video, sequence_length=lengths)
assert outputs.shape == (B, T, WIDTH, F)

strips([outputs[b, :, :, 0] for b in range(B)],
       [f"row {b}: length {lengths[b]}" for b in range(B)], (-1, 1), "h",
       "outputs h (channel 0) with sequence_length = [8, 5, 2]: zero past each row's length",
       lengths=lengths)

# %% [markdown]
# Three checks, each against something computed independently: the padding steps give
# zeros; each row's final state is what running that row *alone, cut to its length* gives;
# and a row of length 0 keeps the initial state.

# %%
for b, length in enumerate(lengths):
    assert np.all(outputs[b, length:] == 0)
    alone_out, alone_state = refconv.dynamic_rnn(cell, video[b:b + 1, :length])
    assert np.allclose(outputs[b, :length], alone_out[0])
    assert np.allclose(state.c[b], alone_state.c[0]) and np.allclose(state.h[b], alone_state.h[0])

full_out, full_state = refconv.dynamic_rnn(cell, video)            # no lengths: every row runs 8 steps
assert not np.allclose(state.h[1], full_state.h[1])                 # row 1's padding would change its state

_, empty = refconv.dynamic_rnn(cell, video, sequence_length=np.array([0, 0, 0]))
assert np.all(empty.c == 0) and np.all(empty.h == 0)
print("outputs zero past each length; final states = the rows run alone; length 0 keeps the initial state")

# %% [markdown]
# ## 4.2 Both directions
#
# `bidirectional_dynamic_rnn` runs a forward cell from the first step to the last, and a
# backward cell from the last step to the first. With lengths, "the last step" is each
# row's own last step: the backward cell reads every row **reversed within its own
# length** (TensorFlow's `reverse_sequence`), so it never starts on padding. Its outputs are
# then reversed back the same way, so that `out_bw[:, t]`, like `out_fw[:, t]`, belongs to
# input step `t`.
#
# Which input each direction reads at its processing step `p` (blank: a padding step, not
# read):

# %%
steps = np.tile(np.arange(T, dtype=float), (B, 1))                 # [B, T]: p = 0, 1, ...
padding = steps >= lengths[:, None]
reads_fw = np.where(padding, np.nan, steps)
reads_bw = np.where(padding, np.nan, refconv.reverse_sequence(steps, lengths, seq_axis=1, batch_axis=0))
print("backward reads, row by row:\n", reads_bw)
assert np.array_equal(reads_bw[1, :5], [4, 3, 2, 1, 0])

viz.to_png(viz.heatmaps([reads_fw, reads_bw],
                        ["forward: step p reads x[t]\n(rows: batch rows; columns: p)",
                         "backward: step p reads x[t]\n(each row reversed within its length)"],
                        ranges=[(0, T - 1)] * 2, labels=["t read"] * 2, fmt="{:.0f}", width=10,
                        title="which input step each direction reads, sequence_length = [8, 5, 2]"))

# %%
(out_fw, out_bw), (state_fw, state_bw) = refconv.bidirectional_dynamic_rnn(
    cell, cell, video, sequence_length=lengths)
assert out_fw.shape == out_bw.shape == (B, T, WIDTH, F)

gap = np.full((T, 2), np.nan)                                       # a blank between the halves
strips([np.concatenate([out_fw[b, :, :, 0], gap, out_bw[b, :, :, 0]], axis=1) for b in range(B)],
       [f"row {b} (length {lengths[b]}):\nforward (pixels 0-31) | backward (34-65)" for b in range(B)],
       (-1, 1), "h", "outputs of both directions, lined up with the inputs (channel 0); zero past each length",
       lengths=lengths)

# %% [markdown]
# The backward direction checked independently: take row `b`, cut it to its length,
# reverse it, run an ordinary `dynamic_rnn`, and reverse the outputs. Its final state is
# the one after reading `inputs[:, 0]`, the last step it processes.

# %%
for b, length in enumerate(lengths):
    reversed_row = video[b:b + 1, :length][:, ::-1]
    out, last = refconv.dynamic_rnn(cell, reversed_row)
    assert np.allclose(out_bw[b, :length], out[0, ::-1])
    assert np.all(out_bw[b, length:] == 0)
    assert np.allclose(state_bw.h[b], last.h[0])
print("backward outputs = each row reversed within its length, run forward, reversed back")

# %% [markdown]
# **What each output can know.** Change the input at one step, `t = 3`, and see which
# outputs change: the forward output at `t` has read steps `0 .. t`, so only `t >= 3`
# changes; the backward output at `t` has read steps `t .. len - 1`, so only `t <= 3`
# changes. Together, the two outputs at any step have seen the whole sequence.

# %%
nudged = video.copy()
nudged[:, 3] += 0.5
(fw2, bw2), _ = refconv.bidirectional_dynamic_rnn(cell, cell, nudged, sequence_length=lengths)
change = lambda a, b: np.abs(a - b).max(axis=(2, 3))               # [B, T]: largest change per step
change_fw, change_bw = change(fw2, out_fw), change(bw2, out_bw)
assert np.all(change_fw[:, :3] == 0) and np.all(change_bw[0, 4:] == 0)
assert np.all(change_fw[0, 3:] > 0) and np.all(change_bw[:2, :4] > 0)
assert np.all(change_fw[2] == 0) and np.all(change_bw[2] == 0)     # row 2 (length 2) never reads step 3

fig = viz.figure(height=4.6)
axes = fig.subplots(2, 1)
for ax, values, name in zip(axes, [change_fw, change_bw], ["forward", "backward"]):
    image = ax.imshow(values, cmap="viridis", vmin=0, vmax=change_fw.max(), aspect="auto")
    for (b, t), value in np.ndenumerate(values):
        past = t >= lengths[b]
        ax.text(t, b, "past\nlength" if past else f"{value:.2f}", ha="center", va="center", fontsize=viz.SMALLEST,
                color="0.4" if past else ("black" if value > 0.5 * change_fw.max() else "white"))
        if past:
            ax.add_patch(Rectangle((t - 0.5, b - 0.5), 1, 1, facecolor="0.85", edgecolor="0.45", hatch="//"))
    ax.axvline(3, color="C1", linewidth=2)
    ax.set_title(f"{name}: max |change| of out[t] (orange: the nudged step)", fontsize=9)
    ax.set_xticks(range(T))
    ax.set_xlabel("output step t (lined up with the inputs)")
    ax.set_yticks(range(B), [f"row {b} (length {lengths[b]})" for b in range(B)])
fig.colorbar(image, ax=axes, fraction=0.02, pad=0.01, label="change")
fig.suptitle("nudging the input at t = 3: forward outputs change from 3 on, backward up to 3", fontsize=10)
viz.to_png(fig)

# %% [markdown]
# ### The gates along time, in both directions
#
# `return_gates=True` gives every gate of every step, shaped like the outputs and, like
# them, **zero past a row's length** (those steps are not computed). The state is not
# zero there: it is carried unchanged, so the final state is the state after the row's last
# real step. Below, row 1 (length 5), channel 0: the forward cell's forget gate `z_f` and
# memory `c`, then the backward cell's, lined up with the inputs.
#
# What to see: the backward cell's **first** step is the row's last real input, t = 4,
# where its state is still zero: its gates there are those of a fresh cell seeing one
# frame, as the forward cell's are at t = 0. It reaches t = 0 last, having read the whole
# row. The forward `c` at t = 4 is the final state; past it, nothing is computed.

# %%
(out_fw_g, out_bw_g), (state_fw_g, state_bw_g), (gates_fw, gates_bw) = refconv.bidirectional_dynamic_rnn(
    cell, cell, video, sequence_length=lengths, return_gates=True)
row, length = 1, lengths[1]
strips([gates_fw["z_f"][row, :, :, 0], gates_bw["z_f"][row, :, :, 0]],
       [f"forward z_f, row {row} (length {length})", f"backward z_f, row {row}\n(its first step is t = {length - 1})"],
       (0, 1), "z_f", "the forget gate along time, both directions (channel 0)",
       lengths=[length, length], cmap="viridis")

# %%
strips([gates_fw["c"][row, :, :, 0], gates_bw["c"][row, :, :, 0]],
       [f"forward c, row {row}: t = {length - 1} is its final state", f"backward c, row {row}: t = 0 is its final state"],
       (-3, 3), "c", "the memory c along time, both directions (channel 0)", lengths=[length, length])

# %%
assert np.all(gates_fw["z_f"][row, length:] == 0) and np.all(gates_bw["c"][row, length:] == 0)
assert np.allclose(gates_fw["c"][row, length - 1], state_fw_g.c[row])   # the final state: its last real step
assert np.allclose(gates_bw["c"][row, 0], state_bw_g.c[row])            # backward: it ends at t = 0
# The backward cell's first step, from a zero state, on the row's last real frame
# = an ordinary forward run of that one frame:
_, _, one_frame = refconv.dynamic_rnn(cell, video[row:row + 1, length - 1:length], return_gates=True)
for name in ("z", "z_i", "z_f", "z_o", "c", "h"):
    assert np.allclose(gates_bw[name][row, length - 1], one_frame[name][0, 0]), name
print("gates: zero past the length; the final states are the last real steps; the backward "
      "cell's first step is a fresh cell reading the row's last frame")

# %% [markdown]
# (The exercises at the end of this notebook build these two rules yourself: the mask that
# keeps a row's state past its length, and the reversal within each row's length.)
#
# ## 4.3 One cell passed twice: shared weights
#
# The seed calls `bidirectional_dynamic_rnn(cell, cell, inputs)`, with **one** cell for
# both directions. In TensorFlow (checked with TF 2.21's `tf.compat.v1` cells) the variables
# are then created once and both directions use them; refconv does the same: a cell is its
# `params`, so one cell means one set of weights. Pass two cells for two sets.

# %%
twin = refconv.ConvLSTMCell([WIDTH], filters=F, kernel=[5])
twin.params = {name: value.copy() for name, value in cell.params.items()}   # the same numbers
other = refconv.ConvLSTMCell([WIDTH], filters=F, kernel=[5])
other.build(C, seed=1)                                                      # different numbers

(fw_twin, bw_twin), _ = refconv.bidirectional_dynamic_rnn(cell, twin, video, sequence_length=lengths)
(fw_other, bw_other), _ = refconv.bidirectional_dynamic_rnn(cell, other, video, sequence_length=lengths)
assert np.array_equal(bw_twin, out_bw)              # one cell twice == two cells with equal weights
assert np.array_equal(fw_other, out_fw) and not np.allclose(bw_other, out_bw)
n = sum(v.size for v in cell.params.values())
print(f"cell passed twice: {n} parameters, shared; two cells: {2 * n} parameters")

# %% [markdown]
# With shared weights, training adds up the gradients from both directions into the one
# set of weights. Whether that is what you want is a modelling choice; the seed probably
# did not choose it on purpose, so refconv documents it rather than forbids it.
#
# ## 4.4 The seed's test script, small
#
# The seed's `test.py` runs the LSTM on 640 x 480 videos, then shows that the cells also
# take **1-D** input (both directions, one cell) and **3-D** input (a GRU with the
# anisotropic kernel `[1, 3, 5]`). The same calls in refconv, at sizes that run in a
# moment, in float32 like the seed's placeholders:

# %%
batch_size, timesteps, channels, filters = 4, 10, 3, 12
rng = np.random.default_rng(0)

# 1-D: shape [100], kernel [3], one cell for both directions
inputs = rng.standard_normal((batch_size, timesteps, 100, channels)).astype(np.float32)
cell_1d = refconv.ConvLSTMCell([100], filters, [3])
(out_fw_1d, out_bw_1d), (state_fw_1d, state_bw_1d) = refconv.bidirectional_dynamic_rnn(
    cell_1d, cell_1d, inputs, dtype=inputs.dtype)
assert out_fw_1d.shape == out_bw_1d.shape == (batch_size, timesteps, 100, filters)
assert out_fw_1d.dtype == np.float32 and state_fw_1d.c.dtype == np.float32
print("1-D:", inputs.shape, "->", out_fw_1d.shape, out_fw_1d.dtype)

# 3-D: the seed's [50, 50, 50] made [12, 12, 12]; kernel [1, 3, 5]; a GRU, one cell for both directions
inputs_3d = moving_shapes(batch_size=2, timesteps=4, shape=(12, 12, 12), channels=channels,
                          seed=2, dtype=np.float32)
cell_3d = refconv.ConvGRUCell([12, 12, 12], filters, [1, 3, 5])
cell_3d.build(channels, seed=0)
(out_fw_3d, out_bw_3d), _, (gates_fw_3d, _) = refconv.bidirectional_dynamic_rnn(
    cell_3d, cell_3d, inputs_3d, sequence_length=np.array([4, 3]), return_gates=True)
assert out_fw_3d.shape == (2, 4, 12, 12, 12, filters) and out_fw_3d.dtype == np.float32
assert np.all(out_bw_3d[1, 3] == 0)
print("3-D:", inputs_3d.shape, "->", out_fw_3d.shape, out_fw_3d.dtype)

# %% [markdown]
# TensorFlow itself cannot run that last call: its `ReverseSequence` refuses tensors of
# rank 6, which a batch of 3-D videos is, so a 3-D bidirectional RNN with
# `sequence_length` fails there; refconv runs it. The figures work in 3-D too, showing the
# middle slice along the first spatial axis:

# %%
viz.to_png(viz.gate_grid(gates_fw_3d, ["r", "u", "candidate", "h"], frames=inputs_3d,
                         title="3-D ConvGRU, forward: middle slice of 12 x 12 x 12\n(sample 0, channel 0)"))

# %% [markdown]
# Finally, the layouts: `time_major=True` takes and returns `[T, B, ...]` instead of
# `[B, T, ...]`, and `data_format="channels_first"` puts the channels before the spatial
# axes. Both are the same computation on transposed arrays:

# %%
out_tm, _ = refconv.dynamic_rnn(cell, video.swapaxes(0, 1), sequence_length=lengths, time_major=True)
assert np.allclose(out_tm.swapaxes(0, 1), outputs)

cell_cf = refconv.ConvLSTMCell([WIDTH], filters=F, kernel=[5], data_format="channels_first")
# the same weights; only the peephole weights, shaped like a frame of the state, follow the layout
cell_cf.params = {name: np.moveaxis(v, -1, 0) if name.startswith("W_c") else v for name, v in cell.params.items()}
out_cf, _ = refconv.dynamic_rnn(cell_cf, np.moveaxis(video, -1, 2), sequence_length=lengths)
assert np.allclose(np.moveaxis(out_cf, 2, -1), outputs)
print("time_major and channels_first give the same numbers")

# %% [markdown]
# ## What to take away
#
# * Past a row's `sequence_length` the outputs are zero and the state is frozen: the final
#   state is the one after the row's last real step.
# * The backward direction reads each row reversed **within its own length**, and its
#   outputs are put back in input order; at every step, the two directions together have
#   seen the whole sequence.
# * One cell passed as both directions means **one shared set of weights**.
# * Everything works the same in 1, 2 and 3 dimensions.

# %% [markdown]
# ## Exercises
#
# **Exercise 1: masking a step.** After step `t` a cell has computed `h_new` and
# `state_new` (`LSTMStateTuple(c, h)`) from `state_old`. Write `mask_step(t,
# sequence_length, h_new, state_new, state_old)` returning `(output, state)` the way
# `dynamic_rnn` keeps them: rows still inside their length take the new values; for the
# others the output is zero and the state stays as it was. (Arrays are `[B, H, W, F]`;
# `sequence_length` is `[B]`.) When graded, `refconv.dynamic_rnn` and `stream_rnn` are
# unavailable.

# %% nbgrader={"grade": false, "grade_id": "mask_step", "locked": false, "schema_version": 3, "solution": true, "task": false}
def mask_step(t, sequence_length, h_new, state_new, state_old):
    """What dynamic_rnn keeps of step t: (output, state), TensorFlow's way."""
    ### BEGIN SOLUTION
    alive = (t < sequence_length).reshape(-1, *([1] * (h_new.ndim - 1)))
    output = np.where(alive, h_new, 0.0)
    state = refconv.LSTMStateTuple(np.where(alive, state_new.c, state_old.c),
                                   np.where(alive, state_new.h, state_old.h))
    return output, state
    ### END SOLUTION

# %% nbgrader={"grade": true, "grade_id": "check_mask_step", "locked": true, "points": 2, "schema_version": 3, "solution": false, "task": false}
report = check_mask_step(mask_step)
print(report)
report.points(2)

# %% [markdown]
# **Exercise 2: reversing within each row's length.** Write `reverse_within_length(x,
# sequence_length)` for `x` `[B, T, ...]`: row `b`'s first `sequence_length[b]` steps in
# reverse order, the rest where they were (TensorFlow's `reverse_sequence`, which the
# backward direction reads its input through). When graded, `refconv.reverse_sequence` is
# unavailable.

# %% nbgrader={"grade": false, "grade_id": "reverse_within_length", "locked": false, "schema_version": 3, "solution": true, "task": false}
def reverse_within_length(x, sequence_length):
    """Each row's first sequence_length[b] steps reversed; the padding stays in place."""
    ### BEGIN SOLUTION
    out = x.copy()
    for b, n in enumerate(sequence_length):
        out[b, :n] = x[b, :n][::-1]
    return out
    ### END SOLUTION

# %% nbgrader={"grade": true, "grade_id": "check_reverse_within_length", "locked": true, "points": 2, "schema_version": 3, "solution": false, "task": false}
report = check_reverse_within_length(reverse_within_length)
print(report)
report.points(2)

# %% [markdown]
# **Q1.** Why does TensorFlow carry the state unchanged past a row's length instead of
# setting it to zero?

# %% [markdown] nbgrader={"grade": true, "grade_id": "q_carry_state", "locked": false, "points": 1, "schema_version": 3, "solution": true, "task": false}
# So that the final state is the state after the row's last *real* step: that is what a
# sequence classifier or an encoder hands on. A zeroed state would throw away everything the
# row said; a state that kept running over the padding would mix padding into it.

# %% [markdown]
# **Q2.** Why reverse each row within its own length rather than the whole `T` steps?

# %% [markdown] nbgrader={"grade": true, "grade_id": "q_reverse_within", "locked": false, "points": 1, "schema_version": 3, "solution": true, "task": false}
# Reversing all `T` steps would start a short row's backward pass on its padding: the
# backward cell would read zeros first and reach the row's real last step with a state
# spoiled by them. Reversing within the length starts it on the row's last real frame, as
# if the padding were not there; reversing the outputs back lines them up with the inputs.
