# Source of notebooks/07_what_gates_learn.ipynb ("percent" format). Edit this file, then run
# `python notebooks/run.py 07` to rebuild and re-run the notebook.

# %% [markdown]
# # 7. What the gates learn
#
# Every gate picture in notebooks 2 to 4 is of **random, untrained weights**: it shows what
# the equations do with *any* weights (texture, and rings at the border), not what a cell
# learns to do with its gates. Here small cells are **trained** on tasks that each need a
# gate, and we look at their gates:
#
# 1. **memory**: a shape is shown, the screen goes blank, then a cue asks for the shape
#    back. The cell must write it into `c`, keep it there and show it only when asked: the
#    forget gate `z_f` holds the memory open, the input gate `z_i` keeps new content out.
#    We clamp the forget gate to see what breaks, and train a ConvGRU on the same task.
# 2. **motion speed vs kernel size**: shapes moving 1, 2 or 3 pixels a frame, predicted by
#    cells with 3 x 3 and 7 x 7 kernels (Shi et al. 2015's argument for larger kernels).
# 3. **the border**: the zero padding of the state as "the outside world", and the rings
#    the untrained pictures show.
#
# First the step itself, as one diagram, and where its names come from.
#
# **The weights.** Training takes a few minutes, so it happened once, in
# `notebooks/data/train_gates.py`, which writes `refconv/trained/NAME.npz` (plain arrays,
# loaded without unpickling; the same command writes the same bytes). To retrain:
#
# ```bash
# python notebooks/data/train_gates.py              # every model, a few minutes on two cores
# python notebooks/data/train_gates.py memory_lstm  # one of them
# ```
#
# Each model is a cell and a **readout**, the same linear map of `h`'s `F` channels at every
# pixel and a sigmoid, `p = sigmoid(h @ w + b)`, trained to make `p` the target frames (mean
# squared error) with refconv's own backpropagation through time (`refconv.dynamic_rnn_grad`)
# and the few lines of Adam of notebook 5, on fresh seeded batches. The code is
# `refconv/tasks.py`.

# %%
import numpy as np
from matplotlib.figure import Figure

import refconv
from refconv import diagram, tasks, viz
from refconv.vocabulary import LSTM_BLOCKS

np.set_printoptions(precision=3, suppress=True)
SHOW, BLANK, RECALL = tasks.SHOW, tasks.BLANK, tasks.RECALL
blank = slice(SHOW, SHOW + BLANK)        # the frames where the screen is empty
recall = slice(SHOW + BLANK, None)       # the frames where the cue asks for the shape
print("models:", {name: {k: spec[k] for k in ("task", "cell", "filters", "kernel", "steps")}
                  for name, spec in tasks.MODELS.items()})

# %% [markdown]
# ## One step, drawn
#
# The seed's cell (peephole and layer norm on, forget bias 1). Read it left to right: one
# convolution of `x` and `h` makes four blocks; the peepholes add the **old** `c` to `z_i`
# and `z_f` and the **new** `c` (before its layer norm) to `z_o`; layer norm follows each
# block, so a bias before it would vanish (layer norm subtracts the mean over the frame)
# and the forget bias is added after it; the new `c` is layer-normalised, and **that** is
# the state the next step receives.

# %%
viz.to_png(diagram.step_diagram())

# %% [markdown]
# The cells trained below are **Shi et al.'s** (2015): the seed's cell with layer norm off
# (`normalize=False`: a bias per block instead), peepholes on. Layer norm re-centres every
# gate over the whole frame at every step, so a gate can only be "shut everywhere" through
# its layer norm's `beta`, and the state is `LN(c)`, whose size is reset each step; without
# it a gate's value means what it says, which is what we want to look at.

# %%
viz.to_png(diagram.step_diagram(normalize=False))

# %% [markdown]
# ## The names, and where each idea comes from
#
# refconv uses the article's names (the one the seed links) because they say what each
# part does. Other code and papers name the same quantities differently, and store the
# four blocks of the kernel in different orders:
#
# | refconv / the article | Shi et al. 2015 | PyTorch, ndrplz ConvLSTM | Keras ConvLSTM2D | Flax `ConvLSTMCell` | d2l.ai (§ LSTM) |
# |---|---|---|---|---|---|
# | `z` (fusion of x and h) | (unnamed) `tanh(W_xc * X + W_hc * H + b_c)` | `g` | `c` (the candidate) | `g` | input node `C̃_t` |
# | `z_i` input gate | `i_t` | `i` | `i` | `i` | input gate `I_t` |
# | `z_f` forget gate | `f_t` | `f` | `f` | `f` | forget gate `F_t` |
# | `z_o` output gate | `o_t` | `o` | `o` | `o` | output gate `O_t` |
# | `c` cell state | `C_t` | `c` | `c` (carry) | `c` (carry) | memory cell `C_t` |
# | `h` hidden state | `H_t` | `h` | `h` | `h` | hidden state `H_t` |
# | block order in the kernel | (separate weights) | i, f, o, g | i, f, c, o | i, g, f, o (in the code; its docstring says i, f, g, o) | (separate weights) |
# | peepholes `W_ci, W_cf, W_co` | yes, `W_ci ∘ C` (per position) | no | no | no | no |
# | GRU `r`, `u`, `candidate` | — | `r`, `z`, `n` (`torch.nn.GRU`) | `r`, `z`, `hh` (`keras.layers.GRU`) | `r`, `z`, `n` (`linen.GRUCell`) | reset `R_t`, update `Z_t`, candidate `H̃_t` |
#
# In every one of these GRUs the update gate keeps the **old** state: `h = u * h_old +
# (1 - u) * candidate`, as Cho et al. wrote it and as refconv does.
#
# Where a learner meets each idea:
#
# - S. Hochreiter, J. Schmidhuber (1997), *Long Short-Term Memory*, Neural Computation
#   9(8):1735-1780, doi:10.1162/neco.1997.9.8.1735. The memory cell with input and output
#   gates; no forget gate yet: `c` only accumulates.
# - F. A. Gers, J. Schmidhuber, F. Cummins (2000), *Learning to Forget: Continual
#   Prediction with LSTM*, Neural Computation 12(10):2451-2471,
#   doi:10.1162/089976600300015015. The forget gate `z_f`.
# - F. A. Gers, N. N. Schraudolph, J. Schmidhuber (2002), *Learning Precise Timing with
#   LSTM Recurrent Networks*, JMLR 3:115-143. Peepholes: the gates read `c`.
# - K. Cho et al. (2014), *Learning Phrase Representations using RNN Encoder-Decoder for
#   Statistical Machine Translation*, EMNLP, arXiv:1406.1078. The GRU.
# - X. Shi et al. (2015), *Convolutional LSTM Network: A Machine Learning Approach for
#   Precipitation Nowcasting*, NeurIPS, arXiv:1506.04214. The ConvLSTM: convolutions instead
#   of matrix products, Hadamard peepholes, zero padding as "the outside world", larger
#   state-to-state kernels for faster motion.
# - J. L. Ba, J. R. Kiros, G. E. Hinton (2016), *Layer Normalization*, arXiv:1607.06450. Its
#   layer-normalised LSTM normalises the gates' pre-activations and `c` for the output,
#   `h = o * tanh(LN(c))`, but **keeps the unnormalised `c`** as the state; the seed's cell
#   carries `LN(c)` itself, so its memory is re-scaled at every step.
# - N. Ballas, L. Yao, C. Pal, A. Courville (2016), *Delving Deeper into Convolutional
#   Networks for Learning Video Representations*, ICLR, arXiv:1511.06432. The ConvGRU.
# - The article the seed links for its names (in Chinese): https://zhuanlan.zhihu.com/p/32085405;
#   the seed's code itself follows https://github.com/wzg16/tensorflow-convlstm-cell.
# - A. Zhang, Z. C. Lipton, M. Li, A. J. Smola, *Dive into Deep Learning*, https://d2l.ai,
#   the chapter on modern recurrent networks (LSTM and GRU).

# %% [markdown]
# ## 1. Memory: hold a shape over a blank stretch
#
# Each video has ten frames and two input channels. Channel 0, the picture: a disc or a
# square on frames 0-1, then blank. Channel 1, the cue: 0, then 1 everywhere on frames 8-9.
# The target is blank, except on the cue frames, where it is the shape. Nothing in frames
# 2-7 says what the shape was: it must be in the cell's memory.

# %%
cell, readout, losses, config = tasks.load("memory_lstm")
inputs, targets = tasks.held_out("memory_lstm")          # 12 videos never trained on (seed 10**6)
task_rows = {"picture": inputs[..., :1], "cue": inputs[..., 1:], "target": targets}
fig = Figure(figsize=(10, 3.4), layout="constrained")
axes = fig.subplots(3, 10)
for row, (label, video) in enumerate(task_rows.items()):
    for t in range(10):
        axes[row, t].imshow(video[0, t, ..., 0], cmap="gray", vmin=0, vmax=1, interpolation="nearest")
        axes[row, t].set_xticks([])
        axes[row, t].set_yticks([])
        if row == 0:
            axes[row, t].set_title(f"t={t}" + {0: "\nshown", SHOW: "\nblank", SHOW + BLANK: "\ncue"}.get(t, "\n"),
                                   fontsize=8)
    axes[row, 0].set_ylabel(label, fontsize=9)
fig.suptitle("the memory task, one held-out video (black 0, white 1)", fontsize=10)
viz.to_png(fig)

# %% [markdown]
# The training: 300 steps of Adam on fresh batches of 8 videos. The curve is each step's
# training loss (the batch's mean squared error over every pixel of every frame, before the
# step's update), stored in the weight file. The number that matters is the error on the
# **recall** frames of held-out videos, against the best answer that has no memory: a blank
# frame.

# %%
_, prediction, gates = tasks.predict(cell, readout, inputs, return_gates=True)
recall_error = np.mean((prediction - targets)[:, recall] ** 2)
no_memory = np.mean(targets[:, recall] ** 2)            # the error of answering "blank"
print(f"training loss: {losses[0]:.5f} at step 1 -> {losses[-1]:.5f} at step {losses.size}")
print(f"held-out recall error: {recall_error:.5f}; answering blank: {no_memory:.5f} "
      f"({no_memory / recall_error:.0f} times larger)")
assert recall_error < 0.02 * no_memory        # measured: about 1/180 of it

fig = Figure(figsize=(6.5, 2.8), layout="constrained")
ax = fig.subplots()
ax.semilogy(np.arange(1, losses.size + 1), losses, linewidth=1)
ax.set_xlabel("training step")
ax.set_ylabel("training batch's mean squared error")
ax.grid(alpha=0.3, which="both")
ax.set_title("memory task: training loss (from the weight file)", fontsize=10)
viz.to_png(fig)

# %% [markdown]
# **The gates over time.** Mean of each gate over all pixels and held-out videos, one line
# per state channel, with the blank stretch shaded. The cell has 4 channels and they
# specialise: find the one whose forget gate goes to 1 over the blank stretch.

# %%
fig = Figure(figsize=(10, 2.9), layout="constrained")
axes = fig.subplots(1, 3, sharey=True)
steps = np.arange(10)
for ax, name in zip(axes, ["z_i", "z_f", "z_o"]):
    means = gates[name].mean(axis=(0, 2, 3))            # [T, F]
    for channel in range(cell.filters):
        ax.plot(steps, means[:, channel], "o-", markersize=3, label=f"channel {channel}")
    ax.axvspan(SHOW - 0.5, SHOW + BLANK - 0.5, color="0.9", zorder=0)
    ax.set_title(viz.LABELS.get(name, name), fontsize=9)
    ax.set_xlabel("time step t (shaded: blank)")
    ax.set_xticks(steps)
    ax.set_ylim(0, 1.02)
    ax.grid(alpha=0.3)
axes[0].set_ylabel("mean over pixels and videos")
axes[-1].legend(fontsize=7, loc="lower right")
fig.suptitle("trained ConvLSTM, memory task: each channel's gates", fontsize=10)
viz.to_png(fig)

# %%
z_f_blank = gates["z_f"][:, blank].mean(axis=(0, 1, 2, 3))       # per channel
memory = int(np.argmax(z_f_blank))
z_i_blank = gates["z_i"][:, blank, ..., memory].mean()
z_i_shown = gates["z_i"][:, :SHOW, ..., memory].mean()
print("mean z_f over the blank stretch, per channel:", z_f_blank)
print(f"the memory channel is {memory}: z_f {z_f_blank[memory]:.3f} over the blank stretch; "
      f"z_i {z_i_shown:.2f} while the shape is shown, {z_i_blank:.2f} over the blank stretch")
assert z_f_blank[memory] > 0.98          # measured 0.995: the memory is kept
assert z_i_blank < 0.5                   # measured 0.29: little new content gets in

# %% [markdown]
# **The memory channel, picture by picture** (one held-out video; steps 3, 5 and 6 left out,
# they look like 4 and 7). What to see:
#
# * t = 0-1: the shape is written into `c` (`z_i` is open over it at t = 0);
# * t = 2-7: `z_f` is 1 at every pixel, so `c` keeps the shape; `z_i` is low, lowest over
#   the shape (a dark square), so the blank input does not overwrite it;
# * `z_o` does **not** hide the memory: `h` shows the shape all along. The readout mixes all
#   four channels of `h`, and other channels cancel this one until the cue (their gates
#   jump at t = 8 in the figure above), so the prediction stays dark (measured below the
#   pictures);
# * t = 8-9: the cue opens `z_i` everywhere and the cell writes a sharper copy of the
#   shape into `c`; now the prediction (last row, the readout of all channels) shows it.

# %%
pictures = dict(gates, prediction=np.repeat(prediction, cell.filters, axis=-1))
viz.to_png(viz.gate_grid(pictures, ["z_i", "z_f", "z_o", "c", "h", "prediction"], frames=inputs,
                         channel=memory, ranges={"prediction": (0.0, 1.0), "c": (-2.0, 2.0)},
                         steps=[0, 1, 2, 4, 7, 8, 9],
                         title=f"trained ConvLSTM, memory task, state channel {memory} "
                               f"(top row: the picture input)"))

# %% [markdown]
# How the readout hides the memory: each channel's share of the readout's logit
# `h @ w + b`, averaged over the shape's pixels, on a blank frame (t = 5) and on the first
# cue frame (t = 8). The prediction is `sigmoid` of the sum: dark below 0, bright above.

# %%
h_seq = tasks.predict(cell, readout, inputs)[0]
inside = inputs[:, 0, ..., 0] > 0.5                       # [B, H, W]: the shape's pixels
shares = {t: np.array([(h_seq[:, t, ..., k][inside] * readout["w"][k, 0]).mean()
                       for k in range(cell.filters)]) for t in (5, 8)}
for t, share in shares.items():
    print(f"t = {t}: per channel {share.round(2)}, + bias {readout['b'][0]:.2f} = logit {share.sum() + readout['b'][0]:.2f}")
assert shares[5][memory] > 0 > shares[5].sum() + readout["b"][0]   # the memory is there, outvoted
assert shares[8].sum() + readout["b"][0] > 0                        # at the cue the others turn

# %% [markdown]
# **Clamp the forget gate** and the memory leaks. `tasks.clamp_forget_gate` sets the
# memory channel's `z_f` to one value at every pixel and step, by weights alone (its kernel
# block and peephole to zero, its bias to the logit of the value); the other channels are
# left as trained. Over the seven steps from the last sight of the shape to the first cue
# frame, a forget gate `f` keeps `f**7` of the memory: 48% at 0.9, 8% at 0.7, under 1% at 0.5.

# %%
clamp_values = [0.1, 0.3, 0.5, 0.7, 0.8, 0.9, 0.95, 0.99, 0.999]
clamped_predictions, clamped_errors = {}, {}
for value in clamp_values:
    clamped = tasks.clamp_forget_gate(cell, value, channels=[memory])
    clamped_predictions[value] = tasks.predict(clamped, readout, inputs)[1]
    clamped_errors[value] = np.mean((clamped_predictions[value] - targets)[:, recall] ** 2)
    print(f"z_f of channel {memory} clamped to {value:5}: recall error {clamped_errors[value]:.5f} "
          f"({clamped_errors[value] / recall_error:5.1f} times the trained cell's)")
assert clamped_errors[0.5] > 20 * recall_error       # measured: 64 times
assert clamped_errors[0.999] < 1.1 * recall_error    # a forget gate held at 1 is what it learned
assert all(np.diff([clamped_errors[v] for v in clamp_values]) < 0)  # the more it forgets, the worse

fig = Figure(figsize=(11, 3.4), layout="constrained")
left, right = fig.subfigures(1, 2, width_ratios=[1, 1.5])
ax = left.subplots()
ax.semilogy(clamp_values, list(clamped_errors.values()), "o-", label="z_f clamped")
ax.axhline(recall_error, color="C2", linestyle="--", label="trained (z_f free)")
ax.axhline(no_memory, color="black", linestyle=":", label="answering blank")
ax.set_xlabel(f"value of channel {memory}'s forget gate")
ax.set_ylabel("held-out recall error")
ax.grid(alpha=0.3, which="both")
ax.legend(fontsize=7)
ax.set_title("error against the clamped forget gate", fontsize=9)
columns = [("target", targets), ("trained", prediction), ("z_f = 0.9", clamped_predictions[0.9]),
           ("z_f = 0.7", clamped_predictions[0.7]), ("z_f = 0.5", clamped_predictions[0.5])]
axes = right.subplots(2, len(columns))
for row, video_index in enumerate([0, 1]):
    for col, (label, video) in enumerate(columns):
        axes[row, col].imshow(video[video_index, SHOW + BLANK, ..., 0], cmap="gray", vmin=0, vmax=1,
                              interpolation="nearest")
        axes[row, col].set_xticks([])
        axes[row, col].set_yticks([])
        if row == 0:
            axes[row, col].set_title(label, fontsize=9)
    axes[row, 0].set_ylabel(f"video {video_index}", fontsize=8)
right.suptitle(f"the recall at t={SHOW + BLANK} (black 0, white 1)", fontsize=9)
fig.suptitle(f"clamping channel {memory}'s forget gate: the memory leaks", fontsize=10)
viz.to_png(fig)

# %% [markdown]
# ### The ConvGRU on the same task
#
# A GRU has no separate memory: `h = u * h_old + (1 - u) * candidate`, so the update gate
# `u` near 1 keeps `h` as it was, the job of the LSTM's `z_f`, and `1 - u` lets new content
# in, the job of `z_i`. The two are tied: where it keeps, it cannot write. The channel whose
# `u` is highest over the shape during the blank stretch holds the memory; what to see in
# its pictures: `u` near 1 over the shape while the screen is blank (the old `h` kept),
# then `u` drops to 0 at the cue and `h` becomes the candidate, which the reset gate `r`
# computed from what was kept: the shape again, with the sign the readout turns into white.

# %%
gru, gru_readout, gru_losses, _ = tasks.load("memory_gru")
_, gru_prediction, gru_gates = tasks.predict(gru, gru_readout, inputs, return_gates=True)
gru_error = np.mean((gru_prediction - targets)[:, recall] ** 2)
inside = inputs[:, 0, ..., 0] > 0.5                                   # [B, H, W], the shape's pixels
u_inside = np.array([[gru_gates["u"][:, t, ..., k][inside].mean() for k in range(gru.filters)]
                     for t in range(10)])                              # [T, F]
keeper = int(np.argmax(u_inside[blank].mean(axis=0)))
print(f"ConvGRU: training loss {gru_losses[0]:.5f} -> {gru_losses[-1]:.5f}; held-out recall "
      f"error {gru_error:.5f} (blank: {no_memory:.5f})")
print("mean u inside the shape, per step (rows) and channel (columns):")
print(u_inside)
print("readout weights w per channel:", gru_readout["w"][:, 0])
assert gru_error < 0.05 * no_memory          # measured: about 1/80 of it
assert u_inside[blank, keeper].mean() > 0.9

viz.to_png(viz.gate_grid(dict(gru_gates, prediction=np.repeat(gru_prediction, gru.filters, axis=-1)),
                         ["r", "u", "candidate", "h", "prediction"], frames=inputs, channel=keeper,
                         ranges={"prediction": (0.0, 1.0)}, steps=[0, 1, 2, 4, 7, 8, 9],
                         title=f"trained ConvGRU, memory task, state channel {keeper}"))

# %% [markdown]
# ## 2. Motion: how far a kernel reaches in one step
#
# Next-frame prediction: one disc or square moving in a straight line at 1, 2 or 3 pixels
# a frame (bouncing off the walls); the cell reads frame `t` and predicts frame `t + 1`.
# In one step a 3 x 3 kernel carries information 1 pixel, a 7 x 7 one 3 pixels: to draw
# the front edge of a shape that moved 3 pixels, the small kernel must rely on what earlier
# steps spread, the large one sees it directly. Shi et al. (2015) found larger
# state-to-state kernels better for faster motion. Two cells (4 channels each) differ only
# in kernel size; both were trained 400 steps on batches with every speed.
#
# The loss is the mean squared error of the predicted frames over 12 held-out videos per
# speed (seeds 10**6 + speed). The baseline "copy the last frame" is what a cell that
# knows nothing of motion would do.

# %%
motion = {name: tasks.load(name) for name in ("motion_k3", "motion_k7")}
speed_videos = {speed: tasks.motion_batch(12, 10 ** 6 + speed, speeds=(speed,)) for speed in tasks.SPEEDS}
errors = {name: {} for name in motion}
predictions = {name: {} for name in motion}
for name, (motion_cell, motion_readout, _, _) in motion.items():
    for speed, (x, y) in speed_videos.items():
        predictions[name][speed] = tasks.predict(motion_cell, motion_readout, x)[1]
        errors[name][speed] = np.mean((predictions[name][speed] - y) ** 2)
copy_last = {speed: np.mean((x - y) ** 2) for speed, (x, y) in speed_videos.items()}
for name in motion:
    print(f"{name}: training loss {motion[name][2][0]:.4f} -> {motion[name][2][-1]:.4f}; held-out, by speed:",
          "  ".join(f"{speed} px: {errors[name][speed]:.4f}" for speed in tasks.SPEEDS))
print("copy the last frame:", "  ".join(f"{speed} px: {value:.4f}" for speed, value in copy_last.items()))

fig = Figure(figsize=(6.5, 3.2), layout="constrained")
ax = fig.subplots()
for name, style in zip(motion, ["o-", "s-"]):
    ax.plot(tasks.SPEEDS, [errors[name][s] for s in tasks.SPEEDS], style,
            label=f"{motion[name][3]['kernel']} x {motion[name][3]['kernel']} kernel")
ax.plot(tasks.SPEEDS, list(copy_last.values()), "k:", label="copy the last frame")
ax.set_xticks(tasks.SPEEDS)
ax.set_xlabel("speed of the shape (pixels per frame)")
ax.set_ylabel("held-out mean squared error")
ax.grid(alpha=0.3)
ax.legend(fontsize=8)
ax.set_title("next-frame prediction: error against speed, by kernel size", fontsize=10)
viz.to_png(fig)

# %%
gap = {speed: 1 - errors["motion_k7"][speed] / errors["motion_k3"][speed] for speed in tasks.SPEEDS}
print("how much smaller the 7 x 7 kernel's error is, by speed:",
      "  ".join(f"{speed} px: {share:.0%}" for speed, share in gap.items()))
for name in motion:   # both learned something about motion, at every speed
    assert all(errors[name][s] < copy_last[s] for s in tasks.SPEEDS)
    assert errors[name][1] < errors[name][2] < errors[name][3]      # faster is harder
assert gap[3] > gap[1] and gap[3] > 0.15      # the large kernel's advantage grows with speed

# %% [markdown]
# **Where the prediction fails.** The held-out video at 3 pixels a frame where the two
# kernels differ most: the frame read, the true next frame, both cells' predictions, the
# 3 x 3 cell's error, and that cell's input and output gates (the channel its readout
# weighs most). What to see: the error is blue at the shape's front edge (the shape arrived
# where the cell did not put it) and red behind it (the cell still draws it where it was):
# the small kernel lags. Its output gate is shut (dark) over the shape's recent path: what
# the cell shows there comes from the channels that follow the shape. Both predictions are
# blurred: four channels and 400 steps make a small, quickly trained model.

# %%
x3, y3 = speed_videos[3]
k3_cell = motion["motion_k3"][0]
_, _, k3_gates = tasks.predict(k3_cell, motion["motion_k3"][1], x3, return_gates=True)
error3 = predictions["motion_k3"][3] - y3
per_video = {name: ((predictions[name][3] - y3) ** 2).mean(axis=(1, 2, 3, 4)) for name in motion}
video_index = int(np.argmax(per_video["motion_k3"] - per_video["motion_k7"]))
steps = [2, 3, 4, 5]
rows = {"frame read x_t": (x3, (0, 1), "gray"), "true next frame": (y3, (0, 1), "gray"),
        "3 x 3 prediction": (predictions["motion_k3"][3], (0, 1), "gray"),
        "7 x 7 prediction": (predictions["motion_k7"][3], (0, 1), "gray"),
        "3 x 3 error\n(prediction - truth)": (error3, (-1, 1), "RdBu_r")}
weights = np.abs(motion["motion_k3"][1]["w"][:, 0])
shown = int(np.argmax(weights))                       # the channel the readout listens to most
rows[f"z_i, channel {shown}"] = (k3_gates["z_i"][..., shown:shown + 1], (0, 1), "viridis")
rows[f"z_o, channel {shown}"] = (k3_gates["z_o"][..., shown:shown + 1], (0, 1), "viridis")
fig = Figure(figsize=(6.2, 10), layout="constrained")
axes = fig.subplots(len(rows), len(steps))
for row, (label, (video, (lo, hi), cmap)) in enumerate(rows.items()):
    for col, t in enumerate(steps):
        image = axes[row, col].imshow(video[video_index, t, ..., 0], cmap=cmap, vmin=lo, vmax=hi,
                                      interpolation="nearest")
        axes[row, col].set_xticks([])
        axes[row, col].set_yticks([])
        if row == 0:
            axes[row, col].set_title(f"t={t}", fontsize=9)
    axes[row, 0].set_ylabel(label, fontsize=8)
    fig.colorbar(image, ax=axes[row, :], fraction=0.04, pad=0.02, aspect=6).ax.tick_params(labelsize=7)
fig.suptitle(f"a shape at 3 px/frame: the 3 x 3 cell lags (held-out video {video_index})", fontsize=10)
viz.to_png(fig)

# %% [markdown]
# ## 3. The border: zero padding as the outside world
#
# The untrained pictures of notebooks 2 and 3 have **rings** along the border. They come
# from SAME padding: every convolution reads zeros beyond the frame, for `x` and for `h`.
# For `x` a zero is just more black background. For `h` it is not: wherever the cell's
# biases (or layer norm, which re-centres each frame) make the background's `h` non-zero,
# a pixel next to the border reads `h = 0` outside where an inner pixel reads the
# background's `h`, and gets a different answer. Shi et al. (2015) read the padded zeros as
# the state of "the outside world", about which the cell knows nothing. The ring is one
# kernel half-width `r` wide after the first step that has a non-zero `h`, and widens by `r`
# each step as `h` feeds back.
#
# Three cells, pictured at the same steps:
#
# * top: the seed's cell, untrained (layer norm on, peepholes off so that their per-pixel
#   texture does not hide the border), on a video of moving shapes: layer norm gives the
#   background a non-zero `h`, so a ring appears from t = 1 and thickens;
# * middle: the memory task's trained cell on a **blank** video: its trained biases make `h`
#   non-zero everywhere and the border shows. Shown as the difference from the frame's
#   centre value, so that a small ring is visible;
# * bottom: the same cell untrained (biases 0) on the blank video: `x`, `h` and `c` stay
#   exactly 0, every gate is one number everywhere, and there is no ring at all.

# %%
from refconv.data import moving_shapes

seed_cell = refconv.ConvLSTMCell([32, 32], filters=4, kernel=[5, 5], peephole=False)
seed_cell.build(1, seed=0)
shapes_video = moving_shapes(batch_size=1, timesteps=6, shape=(32, 32), n_shapes=3, seed=3)
blank_video = np.zeros((1, 6, 16, 16, 2))
untrained_memory_cell, _ = tasks.make_cell("memory_lstm", seed=0)
seed_gates = refconv.dynamic_rnn(seed_cell, shapes_video, return_gates=True)[2]
border_runs = {"trained": refconv.dynamic_rnn(cell, blank_video, return_gates=True)[2],
               "untrained": refconv.dynamic_rnn(untrained_memory_cell, blank_video, return_gates=True)[2]}
ring_channel = 2       # a channel whose output gate shows it in the trained cell


def from_centre(a):
    """A [16, 16] picture minus the mean of its four centre pixels."""
    return a - a[7:9, 7:9].mean()


rows = [("seed's cell, untrained,\nmoving shapes: z_i", [seed_gates["z_i"][0, t, ..., 0] for t in range(6)],
         "viridis", (0, 1)),
        (f"memory task, trained,\nblank video: z_o - centre\n(channel {ring_channel})",
         [from_centre(border_runs["trained"]["z_o"][0, t, ..., ring_channel]) for t in range(6)],
         "RdBu_r", (-0.3, 0.3)),
        (f"memory task, untrained,\nblank video: z_o - centre\n(channel {ring_channel})",
         [from_centre(border_runs["untrained"]["z_o"][0, t, ..., ring_channel]) for t in range(6)],
         "RdBu_r", (-0.3, 0.3))]
fig = Figure(figsize=(9.5, 5.8), layout="constrained")
axes = fig.subplots(3, 6)
for row, (label, pictures_row, cmap, (lo, hi)) in enumerate(rows):
    for t, picture in enumerate(pictures_row):
        image = axes[row, t].imshow(picture, cmap=cmap, vmin=lo, vmax=hi, interpolation="nearest")
        size = picture.shape[0] - 1
        axes[row, t].set_xticks([0, size])
        axes[row, t].set_yticks([0, size])
        axes[row, t].tick_params(labelsize=6)
        if row == 0:
            axes[row, t].set_title(f"t={t}", fontsize=9)
    axes[row, 0].set_ylabel(label, fontsize=8)
    fig.colorbar(image, ax=axes[row, :], fraction=0.02, pad=0.01).ax.tick_params(labelsize=7)
fig.suptitle("rings at the border: where the padded h = 0 meets a non-zero h (axes: pixel index)",
             fontsize=10)
viz.to_png(fig)

# %% [markdown]
# The same in numbers: for the trained cell on the blank video, how far each pixel's output
# gate is from the frame's centre value, averaged over the pixels at each distance from the
# border, step by step. What to see: at t = 0 almost nothing (`h` is still 0 everywhere, so
# the padding changes nothing; what little there is comes from the peephole `W_co`, one
# trained number per pixel); from t = 1 the border pixels move away from the centre's value,
# more every step, and the difference spreads inwards (a 3 x 3 kernel reaches `r = 1` pixel
# a step). Inside, the value is not exactly the centre's either: the peepholes are per pixel.

# %%
rows, cols = np.indices((16, 16))
distance = np.minimum.reduce([rows, cols, 15 - rows, 15 - cols])       # 0 on the border
z_o = border_runs["trained"]["z_o"][0, ..., ring_channel]   # [T, 16, 16]
profile = np.array([[np.abs(z_o[t][distance == d] - z_o[t][7:9, 7:9].mean()).mean() for d in range(8)]
                    for t in range(6)])                                 # [T, distance]
fig = Figure(figsize=(6.5, 3), layout="constrained")
ax = fig.subplots()
for t in range(6):
    ax.plot(range(8), profile[t], "o-", markersize=3, label=f"t={t}")
ax.set_xlabel("distance from the border (pixels; 0 = the outermost ring)")
ax.set_ylabel("mean |z_o - centre's z_o|")
ax.set_xticks(range(8))
ax.grid(alpha=0.3)
ax.legend(fontsize=7, ncol=2)
ax.set_title("trained cell, blank video: the border's reach, step by step", fontsize=10)
viz.to_png(fig)

# %%
untrained_gates = border_runs["untrained"]
assert all(np.ptp(untrained_gates[name]) == 0 for name in ("z_i", "z_f", "z_o"))   # no ring at all
ratio = profile[:, 0] / profile[:, 4:].mean(axis=1)
print("outermost ring / inside (distance >= 4), per step:", ratio.round(1))
assert np.all(np.diff(profile[:, 0]) > 0)          # the border's pull grows every step
assert ratio[3] > 3                                # measured: 5.7 at t = 3
