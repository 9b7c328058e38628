# Source of notebooks/01_convolution.ipynb ("percent" format). Edit this file, then run
# `python notebooks/run.py 01` to rebuild and re-run the notebook.

# %% [markdown]
# # 1. Convolution from scratch
#
# Every gate of a ConvLSTM, and of a ConvGRU, is made of one operation: a **convolution**
# (strictly, a *cross-correlation*) of the input frame and the previous hidden state with a
# small kernel. This notebook builds it from nothing, in 1, 2 and 3 dimensions, in the
# way refconv computes it, and checks every step against SciPy and `refconv.conv_nd`.
#
# What you will see:
#
# 1. 1-D cross-correlation, first as a loop, then as a sum of **shifted slices**;
# 2. **SAME padding**, and why an even kernel pads one more zero *after* than before (TensorFlow's rule, which SciPy does not follow);
# 3. strides, dilation and VALID padding, drawn as the matrix a convolution is;
# 4. 2-D and 3-D, with many channels: one matrix product per kernel offset;
# 5. **im2col**: all patches in one matrix, one big matrix product;
# 6. a check of all of it against SciPy on random cases.
#
# Every cell that computes something ends with an `assert`: if the maths breaks, the
# notebook stops there.

# %% [markdown]
# **You will learn** to compute a convolution layer as a sum of shifted slices, TensorFlow's
# SAME padding (and why an even kernel pads one more zero after), strides and dilation, and
# im2col. **Before:** NumPy slicing and broadcasting, matrix products.
#
# **Time: about 1 h 15 min** for a learner who knows Python and basic NumPy (a reasoned
# estimate, part by part): reading and running sections 1.1 to 1.6, 40 min; exercise
# `same_padding` 10 min; exercise `conv1d` 15 min; the two questions 10 min.

# %% [markdown]
# ## Words used here (and in every later notebook)
#
# | word | what it means here |
# |---|---|
# | **the seed** | the TensorFlow 1 code this project reproduces number for number: a `ConvLSTMCell` and a `ConvGRUCell` (LSTM and GRU cells with convolutions in place of matrix products) and a test script, published in a blog article on ConvLSTMs. "The seed's cell" is its default setting: peephole and layer norm on, forget bias 1. |
# | **the article** | that blog article: it names the LSTM's quantities `z`, `z_i`, `z_f`, `z_o`, `c`, `h` (notebook 2), and so does refconv. |
# | **a random seed** | something else: the whole number that starts a random number generator, `np.random.default_rng(0)` or `seed=3`. The same seed gives the same numbers, so every figure here comes out the same on every run; "video seed 3" is the video drawn from seed 3. |
# | **refconv** | this package: the seed's cells rewritten in plain NumPy, so that every number can be looked at. "The reference" is refconv's answer, which a checker compares yours with. |
# | **frame, batch, channel** | an input array `[B, H, W, C]` holds `B` samples (a batch), each a frame of `H x W` pixels with `C` numbers (channels) per pixel: "channels_last". "channels_first" puts `C` before `H, W`. A video adds a time axis: `[B, T, H, W, C]`. |
# | **kernel, filters** | a convolution's weights, `[kh, kw, C_in, C_out]`; a cell's `filters` is its number of output channels, `F`. |
# | **SAME, VALID padding** | SAME adds zeros around the input so that the output has as many positions as the input (at stride 1), the odd zero *after* for an even kernel (TensorFlow's rule, section 1.2); VALID adds none. |
# | **cell, step, state** | a cell is the function a recurrent network applies at every time step: it reads a frame and its state (what it kept from earlier steps: `c` and `h` for an LSTM, `h` for a GRU) and returns the new state. |
# | **gate** | a number between 0 and 1, made by a sigmoid, that multiplies another quantity: near 0 it shuts it out, near 1 it lets it through (notebook 2). |
# | **checker, report, hint** | an exercise's function is handed to its checker, which runs it beside refconv on random cases and returns a report: which quantity first differs, at which step, by how much. `report.hint(2)`, `report.hint(3)` give more help, one step at a time. |

# %%
import math

import numpy as np
import scipy.signal

import refconv
from refconv import viz
from refconv.data import moving_shapes
from refconv.exercises import check_conv1d, check_same_padding

np.set_printoptions(precision=3, suppress=True)
rng = np.random.default_rng(0)   # every random number below comes from this seed

# %% [markdown]
# ## 1.1 One dimension: slide, multiply, add
#
# Take a signal `x` (a bump) and a kernel `w` of size `k = 3`. The output at position `i`
# lays the kernel over `x[i], x[i+1], x[i+2]`, multiplies, and adds:
#
# $$y_i = \sum_{j=0}^{k-1} x_{i+j}\, w_j$$
#
# With `w = [-1, 0, 1]` that is `x[i+2] - x[i]`: the kernel measures the **slope**. It is
# positive where the bump rises and negative where it falls. With no padding the kernel
# only fits `n - k + 1` times (this is called VALID).

# %%
x = np.array([0., 0, 1, 2, 3, 3, 3, 1, 0, 0])
w = np.array([-1., 0, 1])
n, k = len(x), len(w)

y = np.array([sum(x[i + j] * w[j] for j in range(k)) for i in range(n - k + 1)])
print("y =", y, " shape", y.shape)
assert y.shape == (n - k + 1,)

viz.to_png(viz.heatmaps([x, w, y], ["input x", "kernel w", "output y (VALID)"],
                        labels=["value"] * 3, fmt="{:.0f}",
                        title=r"1-D cross-correlation: $y_i = \sum_j x_{i+j} w_j$"))

# %% [markdown]
# **The same sum, as shifted slices.** Instead of looping over output positions, loop over
# the `k` kernel offsets: offset `j` meets the slice `x[j : j + n_out]`, one input value per
# output. Multiply each slice by its weight and add the slices up. This loop runs `k` times
# (not `n` times), and each iteration is one vectorised NumPy operation: it is how refconv's
# `conv_nd_naive` works, in any number of dimensions.

# %%
n_out = n - k + 1
slices = np.stack([x[j:j + n_out] for j in range(k)])     # row j: what offset j sees
y_slices = (w[:, None] * slices).sum(axis=0)
assert slices.shape == (k, n_out)
assert np.array_equal(y_slices, y)

viz.to_png(viz.heatmaps(
    [slices, w[:, None], y_slices],
    ["row j = x[j : j + 8]", "w[j]", "y = sum of w[j] * row j"],
    labels=["value"] * 3, fmt="{:.0f}",
    title="the same output as a weighted sum of shifted slices"))

# %% [markdown]
# **Cross-correlation, not convolution.** A convolution in the mathematical sense flips the
# kernel first ($\sum_j x_{i-j} w_j$). Deep-learning frameworks, TensorFlow included, do not
# flip; they still call it convolution. NumPy and SciPy have both, so we can check which is
# which. refconv's `conv_nd` takes a batch axis and a channel axis, TensorFlow's layouts:
# `x` is `[B, n, C_in]` and the kernel `[k, C_in, C_out]`.

# %%
assert np.allclose(y, np.correlate(x, w, mode="valid"))
assert np.allclose(y, scipy.signal.correlate(x, w, mode="valid"))
assert np.allclose(y, np.convolve(x, w[::-1], mode="valid"))   # convolution = flipped kernel
assert not np.allclose(y, np.convolve(x, w, mode="valid"))

y_refconv = refconv.conv_nd(x[None, :, None], w[:, None, None], padding="VALID")
print("refconv.conv_nd:", y_refconv.shape, "->", y_refconv[0, :, 0])
assert y_refconv.shape == (1, n_out, 1)
assert np.allclose(y_refconv[0, :, 0], y)

# %% [markdown]
# ## 1.2 SAME padding, and the even kernel
#
# A recurrent cell adds its new state to the old one pixel by pixel, so each step's output
# must be as large as its input. **SAME** padding adds zeros around `x` so that the kernel
# fits `n` times: `k - 1` zeros in all. For an odd kernel they split evenly. For an even one
# they cannot, and TensorFlow puts `total // 2` zeros **before** and the rest **after**:
# one more after.

# %%
def same_pads(k):
    """Zeros (before, after) for SAME padding, stride 1: TensorFlow's split."""
    total = k - 1
    return total // 2, total - total // 2


for k_ in range(1, 7):
    print(f"k = {k_}: {same_pads(k_)[0]} zero(s) before, {same_pads(k_)[1]} after")
    assert same_pads(k_) == refconv.conv_padding(10, k_, padding="SAME")

# %%
from matplotlib.patches import Rectangle

padded = {k_: np.pad(x, same_pads(k_)) for k_ in (3, 4)}
fig = viz.figure(height=3.8)
axes = fig.subplots(3, 1)
rows = [("x (n = 10)", x, 0), ("padded for k = 3: 1 + 10 + 1", padded[3], same_pads(3)[0]),
        ("padded for k = 4: 1 + 10 + 2", padded[4], same_pads(4)[0])]
for ax, (label, values, before) in zip(axes, rows):
    ax.imshow(values[None, :], cmap="viridis", vmin=0, vmax=3, aspect="auto")
    for i, value in enumerate(values):
        is_pad = not before <= i < before + n
        if is_pad:   # a padding zero: hatched grey, not the signal's colour for 0
            ax.add_patch(Rectangle((i - 0.5, -0.5), 1, 1, facecolor="0.85", edgecolor="0.4",
                                   hatch="//", linewidth=1))
        ax.text(i, 0, "pad\n0" if is_pad else f"{value:.0f}", ha="center", va="center", fontsize=viz.SMALLEST,
                color="black" if is_pad or value > 1.5 else "white")
    ax.set_xlim(before - 1.5, before + 11.5)   # indices -1 to 11 in every row, one column each
    ax.set_xticks(range(values.size))
    ax.set_xticklabels(range(-before, values.size - before), fontsize=viz.SMALLEST)
    ax.set_yticks([])
    ax.set_ylabel(label, rotation=0, ha="right", va="center", fontsize=viz.SMALLEST)
axes[-1].set_xlabel("index into x (padding at -1 and from 10 on)")
fig.suptitle("SAME padding adds k - 1 zeros; an even kernel gets the extra zero after\n"
             "(hatched: padding; colours: x's values, 0 to 3)", fontsize=10)
viz.to_png(fig)

# %% [markdown]
# **Why it matters.** Feed a single 1 (an impulse) to a kernel `[1, 2, 3, 4]`: the output
# is the kernel, reversed, and *where* it lands tells which input each output reads.
# With TensorFlow's rule output `i` reads `x[i-1 .. i+2]`. SciPy's `mode="same"` centres the
# other way and reads `x[i-2 .. i+1]`: the same numbers, shifted by one pixel. Porting a
# model with an even kernel from one convention to the other moves every feature map by a
# pixel per layer and per time step, which no shape check catches. (Padding `k // 2` on
# both sides, as some PyTorch ConvLSTMs do, gives an output one longer than the input.)

# %%
impulse = np.zeros(9)
impulse[4] = 1
w4 = np.array([1., 2, 3, 4])
y_tf = refconv.conv_nd(impulse[None, :, None], w4[:, None, None], padding="SAME")[0, :, 0]
y_scipy = scipy.signal.correlate(impulse, w4, mode="same")

assert np.allclose(y_tf, scipy.signal.correlate(np.pad(impulse, (1, 2)), w4, mode="valid"))
assert np.allclose(y_scipy, scipy.signal.correlate(np.pad(impulse, (2, 1)), w4, mode="valid"))
assert np.allclose(y_tf[:-1], y_scipy[1:])          # the same numbers, one pixel apart
assert scipy.signal.correlate(np.pad(impulse, (2, 2)), w4, mode="valid").shape == (10,)

viz.to_png(viz.heatmaps(
    [impulse, y_tf, y_scipy],
    ["impulse at position 4", "refconv / TensorFlow SAME", "scipy.signal.correlate, 'same'"],
    labels=["value"] * 3, fmt="{:.0f}",
    title="even kernel [1, 2, 3, 4]: TensorFlow and SciPy put the output one pixel apart"))

# %% [markdown]
# ## 1.3 Strides, dilation, VALID: the convolution as a matrix
#
# A convolution is linear in `x`, so it is a matrix: column `i` of the matrix is the output
# for an input that is 1 at position `i` and 0 elsewhere. Drawing that matrix shows at a
# glance which inputs each output reads (a row) and with which weight.
#
# * **stride** `s`: the kernel jumps `s` positions between outputs; SAME then gives
#   `ceil(n / s)` outputs, with total padding `max((out - 1) s + (k - 1) d + 1 - n, 0)`.
# * **dilation** `d`: the kernel's taps are `d` apart, seeing further with the same weights.
# * **VALID**: no padding; `floor((n - (k - 1) d - 1) / s) + 1` outputs.
#
# The ConvLSTM of the seed uses SAME, stride 1, dilation 1. refconv has the others too,
# because Keras's ConvLSTM can convolve its *input* with them.

# %%
def as_matrix(n, w, **options):
    """The matrix M with conv_nd(x) == M @ x for 1-D, one-channel signals of length n."""
    eye = np.eye(n)[:, :, None]                                   # n impulses: [n, n, 1]
    return refconv.conv_nd(eye, w[:, None, None], **options)[:, :, 0].T


w3 = np.array([1., 2, 3])
cases = {"SAME, stride 1": dict(), "SAME, stride 2": dict(strides=2),
         "VALID, dilation 2": dict(padding="VALID", dilations=2)}
matrices = {name: as_matrix(8, w3, **options) for name, options in cases.items()}
for name, m in matrices.items():
    print(f"{name:18s} output size {m.shape[0]}")
assert matrices["SAME, stride 1"].shape == (8, 8)
assert matrices["SAME, stride 2"].shape == (math.ceil(8 / 2), 8)
assert matrices["VALID, dilation 2"].shape == ((8 - (3 - 1) * 2 - 1) // 1 + 1, 8)
probe = rng.standard_normal(8)
for name, options in cases.items():
    direct = refconv.conv_nd(probe[None, :, None], w3[:, None, None], **options)[0, :, 0]
    assert np.allclose(matrices[name] @ probe, direct)

viz.to_png(viz.heatmaps(list(matrices.values()),
                        [f"{name}\nrows: outputs, columns: inputs" for name in matrices],
                        ranges=[(0, 3)] * 3, labels=["weight"] * 3, fmt="{:.0f}",
                        title="kernel [1, 2, 3] as a matrix: row i shows what output i reads"))

# %% [markdown]
# Read the rows. With stride 1, output 0 reads a padding zero, `x[0]` and `x[1]` (weights 2
# and 3 in columns 0 and 1). Stride 2 is *not* every other row of that matrix: four outputs
# need only one zero of padding in all, which goes after, so the windows start at `x[0]`
# and the last one ends on the zero. Dilation 2 spreads the three weights two columns apart.
#
# ## 1.4 Two and three dimensions, many channels
#
# Nothing changes in 2-D but the number of offsets: a `3 x 3` kernel has 9 of them, and
# offset `(a, b)` meets the slice `xp[a : a + H, b : b + W]` of the padded image. Here is a
# frame of refconv's synthetic video and two classic kernels: one that finds horizontal
# edges (bright below, dark above gives a positive answer) and one that blurs.

# %%
image = moving_shapes(batch_size=1, timesteps=1, shape=(24, 24), n_shapes=2, seed=3)[0, 0, :, :, 0]
edges = np.array([[-1., -2, -1], [0, 0, 0], [1, 2, 1]])        # Sobel: d/d(row)
blur = np.full((3, 3), 1 / 9)


def correlate_2d(x, w):
    """SAME, stride 1, one channel: a weighted sum of shifted slices of the padded image."""
    (kh, kw), (H, W) = w.shape, x.shape
    xp = np.pad(x, [same_pads(kh), same_pads(kw)])
    return sum(w[a, b] * xp[a:a + H, b:b + W] for a in range(kh) for b in range(kw))


y_edges, y_blur = correlate_2d(image, edges), correlate_2d(image, blur)
assert y_edges.shape == image.shape == (24, 24)
for w_, y_ in ((edges, y_edges), (blur, y_blur)):
    assert np.allclose(y_, scipy.signal.correlate(image, w_, mode="same"))   # odd kernel: same
    assert np.allclose(y_, refconv.conv_nd(image[None, :, :, None], w_[:, :, None, None])[0, ..., 0])

viz.to_png(viz.heatmaps([image, edges, y_edges, y_blur],
                        ["input frame", "kernel: horizontal edges", "output: edges", "output: blur"],
                        ranges=[(0, 1), (-2, 2), (-4, 4), (0, 1)],
                        labels=["brightness", "weight", "response", "brightness"],
                        annotate=False,
                        title="2-D cross-correlation, SAME padding: the output keeps the frame's size"))

# %% [markdown]
# **Channels.** A real layer reads `C_in` channels and writes `C_out`: the kernel is
# `[*kernel_size, C_in, C_out]`, one small `C_in x C_out` matrix per offset. At offset `j`
# every pixel's `C_in` values are multiplied by that matrix, which for a whole slice
# `[B, *shape, C_in]` is a single `@`. So a convolution in any number of dimensions is:
# for each kernel offset, **a shifted slice times a matrix**, summed. That is the whole of
# `refconv.conv_nd_naive`, written out here for SAME padding and stride 1:

# %%
def conv_from_scratch(x, w):
    """x: [B, *shape, C_in], w: [*kernel, C_in, C_out] -> [B, *shape, C_out] (SAME, stride 1)."""
    kernel, shape = w.shape[:-2], x.shape[1:-1]
    xp = np.pad(x, [(0, 0), *[same_pads(k_) for k_ in kernel], (0, 0)])
    y = 0
    for j in np.ndindex(*kernel):                                   # every kernel offset
        window = (slice(None), *(slice(jj, jj + n_) for jj, n_ in zip(j, shape)))
        y = y + xp[window] @ w[j]                                   # [B, *shape, C_in] @ [C_in, C_out]
    return y


# A 3-D example: a shape (here a cube) in a 12 x 12 x 12 volume, 2 input channels, 3 output channels,
# and the seed's anisotropic kernel [1, 3, 5].
volume = moving_shapes(batch_size=1, timesteps=1, shape=(12, 12, 12), channels=2, seed=1)[:, 0]
w_3d = rng.standard_normal((1, 3, 5, 2, 3))
y_3d = conv_from_scratch(volume, w_3d)
print("x", volume.shape, " kernel", w_3d.shape, " ->  y", y_3d.shape)
assert y_3d.shape == (1, 12, 12, 12, 3)
assert np.allclose(y_3d, refconv.conv_nd(volume, w_3d))
assert np.allclose(y_3d, refconv.conv_nd_naive(volume, w_3d))

middle = 6
viz.to_png(viz.heatmaps([volume[0, middle, :, :, 0], y_3d[0, middle, :, :, 0], y_3d[0, middle, :, :, 2]],
                        ["input, channel 0", "output channel 0", "output channel 2"],
                        ranges=[(0, 1), None, None], labels=["brightness", "value", "value"],
                        annotate=False,
                        title="3-D, kernel [1, 3, 5], 2 -> 3 channels: the middle slice along axis 0"))

# %% [markdown]
# ## 1.5 im2col: one big matrix product
#
# Looping over offsets does `prod(kernel)` small products. **im2col** ("image to columns")
# does one big one instead: gather, for every output pixel, the `prod(kernel) * C_in` input
# values its kernel covers into one row of a matrix (the *patch matrix*); reshape the
# kernel into a `[prod(kernel) * C_in, C_out]` matrix; multiply. Here it is for a small
# 6 x 6 image and a 3 x 3 kernel: 36 output pixels, so 36 rows of 9 values.

# %%
def im2col(x, kernel):
    """[B, *shape, C_in] -> patch matrix [B * prod(shape), prod(kernel) * C_in] (SAME, stride 1)."""
    shape = x.shape[1:-1]
    xp = np.pad(x, [(0, 0), *[same_pads(k_) for k_ in kernel], (0, 0)])
    patches = np.stack([xp[(slice(None), *(slice(jj, jj + n_) for jj, n_ in zip(j, shape)))]
                        for j in np.ndindex(*kernel)], axis=-2)     # [B, *shape, taps, C_in]
    return patches.reshape(-1, math.prod(kernel) * x.shape[-1])


# the 6 x 6 corner of the frame with the most going on (an edge)
r0, c0 = max(np.ndindex(19, 19), key=lambda rc: image[rc[0]:rc[0] + 6, rc[1]:rc[1] + 6].std())
small = image[r0:r0 + 6, c0:c0 + 6]
cols = im2col(small[None, :, :, None], (3, 3))
print("image", small.shape, "-> patch matrix", cols.shape)
assert cols.shape == (36, 9)
y_im2col = (cols @ edges.reshape(9, 1)).reshape(6, 6)
assert np.allclose(y_im2col, correlate_2d(small, edges))

taps = [f"({dy - 1:+d},{dx - 1:+d})" for dy, dx in np.ndindex(3, 3)]   # each kernel tap's offset
fig = viz.figure(height=6.6)
mosaic = fig.subplot_mosaic([["cols", "cols", "kernel"], ["small", "out", "."]],
                            width_ratios=[1, 1, 0.5])
axes = [mosaic[name] for name in ("small", "cols", "kernel", "out")]
panels = [(small, "6 x 6 image", (0, 1), "gray", "brightness"),
          (cols.T, "patch matrix, transposed [9, 36]:\ncolumn p = the 9 values output pixel p sees",
           (0, 1), "gray", "brightness"),
          (edges.reshape(9, 1), "kernel,\nflattened\n[9, 1]", (-2, 2), "RdBu_r", "weight"),
          (y_im2col, "output = patches @ kernel,\nreshaped to 6 x 6", (-4, 4), "RdBu_r", "response")]
for ax, (array, label, (lo, hi), cmap, bar) in zip(axes, panels):
    image_ = ax.imshow(array, cmap=cmap, vmin=lo, vmax=hi, interpolation="nearest",
                       aspect="auto")   # panels of equal height; the patch matrix's cells are wide
    ax.set_title(label, fontsize=9)
    fig.colorbar(image_, ax=ax, shrink=0.8, label=bar, location="bottom" if array.shape[1] == 1 else "right",
                 aspect=10 if array.shape[1] == 1 else 20).ax.tick_params(labelsize=viz.SMALLEST)
for ax in (axes[0], axes[3]):
    ax.set_xticks(range(6))
    ax.set_yticks(range(6))
    ax.set_xlabel("column")
    ax.set_ylabel("row")
axes[1].set_xticks(range(0, 36, 6))
axes[1].set_xlabel("output pixel p = 6 * row + column")
axes[1].set_yticks(range(9))
axes[1].set_yticklabels(taps, fontsize=viz.SMALLEST)
axes[1].set_ylabel("kernel tap (dy, dx)")
axes[2].set_xticks([])
axes[2].set_yticks(range(9))
axes[2].set_yticklabels(taps, fontsize=viz.SMALLEST)
fig.suptitle("im2col: output = patch matrix @ kernel, one matrix product\n(SAME: border "
             "pixels' patches hold padding zeros)", fontsize=10)
viz.to_png(fig)

# %% [markdown]
# The patch matrix holds every input value `prod(kernel)` times: 9 times for `3 x 3`,
# 125 times for a `5 x 5 x 5` kernel. For a batch of 640 x 480 frames that is gigabytes.
# `refconv.conv_nd` therefore builds it **a block of rows at a time** (a few MB, so it stays
# in the CPU's cache) and writes each block's product straight into the output. The same
# works for any number of channels and dimensions:

# %%
x_2d = rng.standard_normal((2, 10, 9, 3))
w_2d = rng.standard_normal((3, 3, 3, 4))
y_cols = (im2col(x_2d, (3, 3)) @ w_2d.reshape(-1, 4)).reshape(2, 10, 9, 4)
assert np.allclose(y_cols, refconv.conv_nd(x_2d, w_2d))
assert np.allclose(y_cols, conv_from_scratch(x_2d, w_2d))
print("im2col, the offset loop and refconv.conv_nd agree on", x_2d.shape, "*", w_2d.shape)

# %% [markdown]
# ## 1.6 Everything against SciPy
#
# A last, independent check. `scipy.signal.correlate` knows one channel and no batch, so
# the reference loops over batch rows and channel pairs, pads with TensorFlow's split, and
# adds up. Odd, even and anisotropic kernels in 1, 2 and 3 dimensions:

# %%
def scipy_reference(x, w):
    """SAME (TensorFlow's split), stride 1, via SciPy one (batch, C_in, C_out) at a time."""
    xp = np.pad(x, [(0, 0), *[same_pads(k_) for k_ in w.shape[:-2]], (0, 0)])
    y = np.zeros(x.shape[:-1] + w.shape[-1:])
    for b, ci, co in np.ndindex(x.shape[0], w.shape[-2], w.shape[-1]):
        y[b, ..., co] += scipy.signal.correlate(xp[b, ..., ci], w[..., ci, co], mode="valid")
    return y


print(f"{'shape':>12} {'kernel':>10}  C_in C_out  max |difference| to SciPy: from scratch, conv_nd, conv_nd_naive")
for shape, kernel in [((20,), (3,)), ((20,), (4,)), ((9, 11), (3, 3)), ((9, 11), (2, 4)),
                      ((6, 7, 8), (3, 3, 3)), ((6, 7, 8), (1, 3, 5)), ((6, 7, 8), (2, 2, 2))]:
    x_ = rng.standard_normal((2, *shape, 3))
    w_ = rng.standard_normal((*kernel, 3, 2))
    expected = scipy_reference(x_, w_)
    errors = [np.abs(f(x_, w_) - expected).max()
              for f in (conv_from_scratch, refconv.conv_nd, refconv.conv_nd_naive)]
    print(f"{str(shape):>12} {str(kernel):>10}     3     2   " + "   ".join(f"{e:.1e}" for e in errors))
    assert max(errors) < 1e-12

# %% [markdown]
# ## What to take away
#
# * A convolution layer is a sum over kernel offsets of **a shifted slice times a small
#   matrix**; im2col computes the same thing as one matrix product.
# * SAME keeps the size; with an **even kernel**, TensorFlow pads the extra zero **after**,
#   and SciPy's `mode="same"` does not: check this first when two frameworks disagree.
# * In a ConvLSTM, one such convolution of `concat([x, h])` with a kernel
#   `[*kernel, C_in + F, 4F]` computes all four of `z, z_i, z_f, z_o` at once.
#   **Notebook 2** opens that up, gate by gate.

# %% [markdown]
# ## 1.7 Exercises
#
# **Exercise 1: SAME padding amounts.** Write `same_padding(n, k, stride, dilation)`, the
# zeros `(before, after)` TensorFlow's SAME adds to one axis of length `n` for a kernel of
# size `k`: the output has `ceil(n / stride)` values, a dilated kernel spans
# `(k - 1) * dilation + 1` inputs, and the odd zero goes after. (Section 1.2 did stride 1.)
# When graded, `refconv.conv_padding` and `refconv.conv_output_size` are unavailable: they
# are the answer.

# %% nbgrader={"grade": false, "grade_id": "same_padding", "locked": false, "schema_version": 3, "solution": true, "task": false}
def same_padding(n, k, stride=1, dilation=1):
    """Zeros (before, after) of TensorFlow's SAME padding on one axis."""
    ### BEGIN SOLUTION
    out = -(-n // stride)                                   # ceil(n / stride)
    total = max((out - 1) * stride + (k - 1) * dilation + 1 - n, 0)
    return total // 2, total - total // 2
    ### END SOLUTION

# %% nbgrader={"grade": true, "grade_id": "check_same_padding", "locked": true, "points": 2, "schema_version": 3, "solution": false, "task": false}
report = check_same_padding(same_padding)
print(report)
report.points(2)

# %% [markdown]
# **Exercise 2: a 1-D convolution layer as shifted slices.** Write `conv1d(x, kernel)`,
# TensorFlow's SAME cross-correlation of `x` `[B, W, C]` with `kernel` `[k, C, F]`, giving
# `[B, W, F]`: pad the spatial axis, then add up one matrix product per kernel offset,
# `slice @ kernel[j]`, as in section 1.4. The checker tries odd and even kernels, one channel
# and several, float64 and float32, against `refconv.conv_nd`. NumPy only: when graded,
# `refconv.conv_nd` and `refconv.conv_nd_naive` are unavailable.

# %% nbgrader={"grade": false, "grade_id": "conv1d", "locked": false, "schema_version": 3, "solution": true, "task": false}
def conv1d(x, kernel):
    """SAME 1-D cross-correlation, channels_last: [B, W, C] x [k, C, F] -> [B, W, F]."""
    ### BEGIN SOLUTION
    k, width = kernel.shape[0], x.shape[1]
    before = (k - 1) // 2
    xp = np.pad(x, ((0, 0), (before, k - 1 - before), (0, 0)))
    return sum(xp[:, j:j + width] @ kernel[j] for j in range(k))
    ### END SOLUTION

# %% nbgrader={"grade": true, "grade_id": "check_conv1d", "locked": true, "points": 2, "schema_version": 3, "solution": false, "task": false}
report = check_conv1d(conv1d)
print(report)
report.points(2)

# %% [markdown]
# **Q1.** Two implementations of a 4-tap ConvLSTM agree on every shape and every value
# except that one's feature maps are shifted by a pixel. What is the likely cause, and how
# does it grow over time?

# %% [markdown] nbgrader={"grade": true, "grade_id": "q_even_kernel_shift", "locked": false, "points": 1, "schema_version": 3, "solution": true, "task": false}
# Their SAME padding splits an even kernel's odd zero differently (TensorFlow: after; SciPy's
# `mode="same"` or a hand-written `k // 2`: before). Each output then reads the inputs one
# pixel to one side; in a ConvLSTM the state feeds back through the convolution every step,
# so the shift adds up: one more pixel per layer and per time step.

# %% [markdown]
# **Q2.** im2col turns the convolution into one large matrix product. What does it cost,
# and why does refconv build the patches in blocks?

# %% [markdown] nbgrader={"grade": true, "grade_id": "q_im2col_memory", "locked": false, "points": 1, "schema_version": 3, "solution": true, "task": false}
# The patch matrix repeats every input value once per kernel offset: `prod(kernel)` times
# the input's size in memory (9x for 3 x 3, 27x for 3 x 3 x 3). The single product is fast,
# but for large frames that matrix does not fit in cache or even in memory, so refconv builds
# it a block of rows at a time and multiplies each block as it goes.
