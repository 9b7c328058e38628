# Source of notebooks/08_deployment.ipynb ("percent" format). Edit this file, then run
# `python notebooks/run.py 08` to rebuild and re-run the notebook.

# %% [markdown]
# # 8. Checking a deployed model: ONNX Runtime against refconv
#
# Notebook 6 held *training* frameworks against refconv. An engineer rarely ships the
# training framework: they **export** the PyTorch ConvLSTM to ONNX and run it in ONNX
# Runtime (or convert a Keras ConvLSTM2D to TFLite). The exported graph is a new program,
# written by an exporter and rewritten by the runtime's optimiser, in float32. Does it still
# compute the ConvLSTM, and if not, where does it start to differ?
#
# refconv answers that as in notebook 6: import the model's weights, run the same inputs
# in float64, compare per output, gate and step. Two things are new here:
#
# * **a silent failure that only an oracle shows**: the exporter unrolls the time loop, so
#   a model exported at one sequence length quietly returns that many steps for a longer
#   input, with no error;
# * **the gates of a deployed graph**: a runtime returns only the model's outputs, but the
#   gates are tensors of the graph, and we can ask the runtime for them.
#
# Everything below uses `refconv.conformance`, which `refconv conformance` runs for every
# runtime installed (ONNX Runtime, and TFLite, whose conversion takes too long for a
# notebook).
#
# **You will learn** to hold a deployed graph against an oracle quantity by quantity and
# step by step, to find where a deployment starts to differ, and to recognise a silent
# failure (a truncated time loop) that no error message reports. **Before:** notebooks 2
# (the step's quantities and their order) and 6 (comparing a framework with refconv).
# **Time:** about 45 minutes, 15 of them for the two exercises.
#
# **Install.** This notebook's cells need only three packages beyond refconv:
#
# ```bash
# pip install torch onnx onnxruntime
# ```
#
# (`pip install "refconv[crosscheck,deploy]"` installs these and every other framework
# `refconv conformance` can check.)

# %%
import importlib.util

missing = [name for name in ("torch", "onnx", "onnxruntime") if importlib.util.find_spec(name) is None]
if missing:
    raise ModuleNotFoundError(f"this notebook needs {', '.join(missing)}: "
                              f"pip install torch onnx onnxruntime (then restart the kernel)")

# %%
import inspect
import os

os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"

import numpy as np
import torch
from matplotlib.patches import Rectangle

from refconv import viz
from refconv.exercises import check_first_failure, check_scaled_errors
from refconv.vocabulary import LSTM_QUANTITIES
from refconv.conformance import ATOL, RTOL, Report, check, describe, reference
from refconv.conformance import onnx_torch

torch.set_num_threads(1)                      # tiny tensors: one thread, the same bits each run

# %% [markdown]
# ## 8.1 The model, its export, and refconv's copy
#
# The model is written as ndrplz/ConvLSTM_pytorch writes its ConvLSTM (the one most projects
# copy): one convolution over `cat([x, h])`, split into the blocks i, f, o, g.

# %%
print(inspect.getsource(onnx_torch.NdrplzCell.forward))

# %% [markdown]
# Two layers (4 and 6 filters), 3 x 3 kernels, random non-zero weights and biases. The
# weights go into refconv through `refconv.interop.from_torch`, and the model is exported
# with the TorchScript exporter (`torch.onnx.export(..., dynamo=False)`) on an input of
# `T = 6` steps, **declaring the time axis dynamic** (`dynamic_axes={"x": {1: "T"}}`), as
# its documentation suggests for inputs whose length varies.

# %%
T_EXPORT, SIZE = 6, (10, 10)
model = onnx_torch.make_model(channels=3, filters=(4, 6), kernel=3, seed=0)
cell = onnx_torch.reference_cell(model, SIZE)           # refconv's cells, from_torch inside
x = np.random.default_rng(0).standard_normal((2, 10, 3, *SIZE)).astype(np.float32)
graph = onnx_torch.export(model, x[:, :T_EXPORT], "torchscript")
print(f"{len(graph.graph.node)} nodes; time axis of the input: "
      f"{graph.graph.input[0].type.tensor_type.shape.dim[1].dim_param!r} (dynamic)")

# %% [markdown]
# ## 8.2 Reading the gates out of the graph
#
# The exporter unrolled the loop: each layer and step is one `Conv` followed by a `Split`
# into four blocks, each block read by its activation. `onnx_torch.locate` finds them (the
# layer by the convolution's weight, the step by the order of the splits) together with each
# step's `c = f * c + i * g` and `h = o * tanh(c)`; `onnx_torch.instrument` makes them extra
# outputs of a copy of the graph, which ONNX Runtime then returns.

# %%
located = onnx_torch.locate(graph)
probe = onnx_torch.instrument(graph, located)
for key in [(0, 0), (1, T_EXPORT - 1)]:
    print(f"layer {key[0]}, step {key[1]}:", dict(located[key]))
assert len(located) == 2 * T_EXPORT and all(len(names) == 6 for names in located.values())

# %% [markdown]
# ## 8.3 float32 ONNX Runtime against float64 refconv, at each optimisation level
#
# ONNX Runtime rewrites the graph before running it; how much is the *graph optimisation
# level*. At every level, the runtime must agree with refconv to float32 rounding. ONNX
# Runtime has no float64 convolution, so float32 is what we can check; `check` measures each
# quantity's worst error relative to its scale (`max |d| / max |refconv|`).

# %%
runs = {}                                               # (options, dtype) -> what came back


def row(deployed, deployed_probe, x, opt="all", dtype="float32"):
    """Run a deployed graph in ONNX Runtime and hold it against refconv: a table row."""
    candidate = onnx_torch.run(deployed, x, opt, deployed_probe, located)
    runs[(opt, dtype)] = candidate
    return check(cell, x, candidate, rtol=RTOL, atol=ATOL, runtime="onnxruntime",
                 exporter="torchscript", options=f"opt={opt}", dtype=dtype, t_export=T_EXPORT)


def worst_per_step(candidate, x):
    """Per step, the worst |runtime - refconv| of every gate, c and h of every layer."""
    expected = reference(cell, x)
    keys = [k for k in candidate if k.startswith("layer")]
    return np.array([max(np.abs(candidate[k][:, t] - expected[k][:, t]).max() for k in keys)
                     for t in range(x.shape[1])])


def tolerance_line(ax):
    ax.axhline(ATOL, color="tab:red", linestyle="--", linewidth=1)
    ax.text(0.01, ATOL * 1.3, f"tolerance (atol {ATOL:g})", color="tab:red", fontsize=viz.SMALLEST,
            transform=ax.get_yaxis_transform())
    eps = np.finfo(np.float32).eps
    ax.axhline(eps, color="gray", linestyle=":", linewidth=1)
    ax.text(0.99, eps * 1.3, f"float32 eps = {eps:.1e}", color="gray", fontsize=viz.SMALLEST, ha="right",
            transform=ax.get_yaxis_transform())


# %%
rows = [row(graph, probe, x[:, :T_EXPORT], opt) for opt in onnx_torch.OPT_LEVELS]
float32_runs = dict(runs)                                # kept: the runs below reuse the keys
for r in rows:
    print(f"{r.options:13} {r.status:3}  worst error "
          + "  ".join(f"{k} {v:.1e}" for k, v in r.errors.items()))
assert all(r.status == "ok" and max(r.errors.values()) < 1e-5 for r in rows)

fig = viz.figure(height=3)
ax = fig.subplots()
for i, opt in enumerate(onnx_torch.OPT_LEVELS):
    ax.semilogy(range(T_EXPORT),
                worst_per_step(float32_runs[(opt, "float32")], x[:, :T_EXPORT]),
                "o-", markersize=4 + i, fillstyle="none", label=f"opt={opt}")
tolerance_line(ax)
ax.set_ylim(1e-8, 1e-3)
ax.set_xlabel("time step t")
ax.set_ylabel("max |ONNX Runtime - refconv|")
ax.set_title("every gate, c and h of both layers, per step, at each optimisation level",
             fontsize=10)
ax.legend(fontsize=viz.SMALLEST, ncol=3, loc="upper left")
viz.to_png(fig)

# %% [markdown]
# About 1e-7 to 1e-6 of the scale everywhere: float32 rounding (float32's epsilon is
# 1.2e-7), the same whichever level rewrote the graph. The deployed graph computes the
# ConvLSTM, for `T = 6`.
#
# ## 8.4 The silent truncation
#
# Now feed it **10 steps**. The time axis was declared dynamic, and ONNX Runtime accepts the
# input without complaint:

# %%
outputs, h, c = onnx_torch.session(graph).run(None, {"x": x})
print(f"fed {x.shape[1]} steps, got outputs of shape {list(outputs.shape)}: "
      f"{outputs.shape[1]} steps, no error")
truncated = row(graph, probe, x)
print(f"status {truncated.status}: {truncated.note}")
print(f"final h: worst error {truncated.errors['h']:.2f} of its scale")
assert truncated.status == "TRUNCATED" and outputs.shape[1] == T_EXPORT

# %% [markdown]
# The exporter traced the Python loop `for t in range(steps)` with `steps = 6`: the graph
# reads frames 0 to 5 (by `Gather` with constant indices) and ignores the rest. The outputs
# it returns are right, for the first six steps; the final state it returns is the state
# after step 5, not after step 9. Nothing in the runtime knows that: only a comparison with
# something that runs all ten steps does. (Fed fewer than 6 steps, it fails loudly, with a
# `Gather` index error; the dynamo exporter fixes `T` in the graph's input shape, so it
# refuses any other length with an error: both are safe, if inconvenient.)
#
# The picture: refconv's h over ten steps and what the deployed model returned.

# %%
ref = reference(cell, x)
fig = viz.figure(height=3)
ax1, ax2 = fig.subplots(1, 2)
steps = np.arange(x.shape[1])
ax1.plot(steps, ref["outputs"][0, :, 0].mean(axis=(-2, -1)), "o-", color="tab:blue",
         label="refconv, 10 steps")
ax1.plot(steps[:T_EXPORT], outputs[0, :, 0].mean(axis=(-2, -1)), "x", color="tab:red",
         markersize=9, label="ONNX Runtime: 6 steps back")
ax1.axvspan(T_EXPORT - 0.5, x.shape[1] - 0.5, color="tab:red", alpha=0.1)
ax1.text(T_EXPORT - 0.4, ax1.get_ylim()[0], "steps the graph\nnever reads", color="tab:red",
         fontsize=viz.SMALLEST, va="bottom")
ax1.set_xlabel("time step t")
ax1.set_title("top layer's h, channel 0, mean over the frame", fontsize=10)
ax1.legend(fontsize=viz.SMALLEST)
final = np.abs(h - ref["h"]).max(axis=(0, 1))
image = ax2.imshow(final, cmap="magma")
fig.colorbar(image, ax=ax2, shrink=0.8)
ax2.set_title("final h: |returned - refconv's after 10 steps|", fontsize=10)
ax2.set_axis_off()
viz.to_png(fig)

# %% [markdown]
# ## 8.5 A planted deployment bug, found by gate and step
#
# Suppose a graph rewrite (a hand edit, a converter's "optimisation", a quantisation tool)
# replaced layer 0's forget-gate sigmoid at step 3 with `HardSigmoid` (ONNX's
# `max(0, min(1, 0.2 x + 0.5))`, close to a sigmoid near zero). `plant_activation` does
# that to a copy of the graph. The outputs are wrong from step 3 on, in both layers; the
# question is where it *starts*.

# %%
planted = onnx_torch.plant_activation(graph, layer=0, step=3, gate="z_f", op="HardSigmoid")
planted_probe = onnx_torch.instrument(planted, located)
bug = row(planted, planted_probe, x[:, :T_EXPORT])
print(f"status {bug.status}; first outside the tolerance: {bug.first_failure}")
assert (bug.status, bug.first_failure) == ("FAILED", "layer0 z_f t=3")



# %% [markdown]
# Every quantity of every step of both layers, as an error map: the first cell to light up
# is the planted gate; from there the error flows into `c`, `h`, the next step's gates and
# the next layer.

# %%
candidate = onnx_torch.run(planted, x[:, :T_EXPORT], "all", planted_probe, located)
NAMES = LSTM_QUANTITIES                                 # z, z_i, z_f, c, z_o, h: computed order
fig = viz.figure(height=3.2)
for layer, ax in enumerate(fig.subplots(1, 2, sharey=True)):
    errors = np.array([[np.abs(candidate[f"layer{layer}/{name}"][:, t]
                               - ref[f"layer{layer}/{name}"][:, t]).max()
                        for t in range(T_EXPORT)] for name in NAMES])
    image = ax.imshow(np.log10(np.maximum(errors, 1e-9)), cmap="viridis", vmin=-9, vmax=0,
                      aspect="auto")
    ax.set_xticks(range(T_EXPORT))
    ax.set_yticks(range(len(NAMES)), NAMES)
    ax.set_xlabel("time step t")
    ax.set_title(f"layer {layer}: log10 max |ONNX Runtime - refconv|", fontsize=10)
ax = fig.axes[0]
ax.add_patch(Rectangle((3 - 0.5, NAMES.index("z_f") - 0.5), 1, 1, fill=False, edgecolor="red",
                       linewidth=2))
fig.colorbar(image, ax=fig.axes, shrink=0.8)
viz.to_png(fig)

# %% [markdown]
# A second kind of bug: a graph that reads two gate blocks the wrong way round (the weights
# were written for blocks i, f, o, g and the graph reads i, f, g, o; notebook 6 planted the
# same bug in a PyTorch cell). `swap_blocks` swaps the outputs of every step's `Split` in
# layer 1. The gate computed first, `z`, is wrong from the first step:

# %%
swapped = onnx_torch.swap_blocks(graph, layer=1, first="z_o", second="z")
bug2 = row(swapped, onnx_torch.swap_blocks(probe, layer=1, first="z_o", second="z"),
           x[:, :T_EXPORT])
print(f"status {bug2.status}; first outside the tolerance: {bug2.first_failure}")
assert (bug2.status, bug2.first_failure) == ("FAILED", "layer1 z t=0")

# %% [markdown]
# ## 8.6 Reduced precision, and the whole table
#
# Shipping float16 weights or int8 quantized convolutions changes the numbers on purpose.
# The oracle says by how much, and from which step: from the very first, at the first gate.

# %%
half = row(onnx_torch.float16_weights(graph), onnx_torch.float16_weights(probe),
           x[:, :T_EXPORT], dtype="float16 weights")
int8 = row(onnx_torch.int8_dynamic(graph), onnx_torch.int8_dynamic(probe), x[:, :T_EXPORT],
           dtype="int8 dynamic")
fig = viz.figure(height=3)
ax = fig.subplots()
for dtype, colour in [("float32", "tab:green"), ("float16 weights", "tab:orange"),
                      ("int8 dynamic", "tab:purple")]:
    candidate = (float32_runs if dtype == "float32" else runs)[("all", dtype)]
    ax.semilogy(range(T_EXPORT), worst_per_step(candidate, x[:, :T_EXPORT]), "o-",
                color=colour, label=dtype)
tolerance_line(ax)
ax.set_ylim(1e-8, 1)
ax.set_xlabel("time step t")
ax.set_ylabel("max |ONNX Runtime - refconv|")
ax.set_title("reduced precision is outside the tolerance from the first step", fontsize=10)
ax.legend(fontsize=viz.SMALLEST, ncol=3, loc="lower center")
viz.to_png(fig)

# %%
report = Report([describe()], [*rows, truncated, half, int8], RTOL, ATOL)
print(report.table())
assert half.first_failure.endswith("t=0") and int8.first_failure.endswith("t=0")
assert report.passed                      # the real export, at its own length: within tolerance

# %% [markdown]
# The **planted** bugs, in a table of their own: these graphs were broken on purpose above,
# so FAILED is what the oracle must say of them (its last line is about these rows only).

# %%
planted_table = Report([describe()], [bug._replace(exporter="PLANTED: torchscript + HardSigmoid"),
                                      bug2._replace(exporter="PLANTED: torchscript + swapped o, g")],
                       RTOL, ATOL)
print(planted_table.table())
assert not planted_table.passed

# %% [markdown]
# This is the table `refconv conformance` prints (without the planted bugs), for every
# runtime it finds: ONNX Runtime for both PyTorch exporters, and TFLite for Keras 3 and
# tf_keras ConvLSTM2D, looped and unrolled. Its header records the versions and the CPU's
# features: float32 rounding depends on the kernels a runtime picks for a CPU, so the
# errors above are this machine's, and another machine's may differ in the last digits.
# Environments that cannot hold every framework write `--json` reports that
# `refconv conformance --merge` joins into one table.
#
# **Try it**: export with `onnx_torch.export(model, x[:, :T_EXPORT], "dynamo")` (it needs
# `onnxscript`) and feed it 10 steps; plant a `HardSigmoid` in layer 1's output gate at the
# last step and check that `bug.first_failure` names it.

# %% [markdown]
# ## 8.7 Exercises
#
# **Exercise 1.** The table's columns are each quantity's worst error relative to its scale.
# Write `scaled_errors(candidate, expected)`: for each name of `LSTM_QUANTITIES` (z, z_i,
# z_f, c, z_o, h), the largest over the layers of `max |candidate - expected| / max
# |expected|`, each over one `"layer{L}/{name}"` array `[B, T, ...]` (all its steps). The
# dicts hold other keys too, such as `"outputs"`, which are not per layer: leave them out.
# Return a dict name -> float.

# %% nbgrader={"grade": false, "grade_id": "scaled_errors", "locked": false, "schema_version": 3, "solution": true, "task": false}
def scaled_errors(candidate, expected):
    ### BEGIN SOLUTION
    result = {}
    for key in expected:
        if key.startswith("layer"):
            name = key.split("/")[1]
            error = np.abs(candidate[key] - expected[key]).max() / np.abs(expected[key]).max()
            result[name] = max(result.get(name, 0.0), error)
    return result
    ### END SOLUTION

# %% nbgrader={"grade": true, "grade_id": "check_scaled_errors", "locked": true, "points": 2, "schema_version": 3, "solution": false, "task": false}
report = check_scaled_errors(scaled_errors)
print(report)
report.points(2)

# %% [markdown]
# **Exercise 2.** The conformance table names where to start looking: `first_failure(errors,
# atol)` gets `errors[f"layer{L}/{name}"]`, a `[T]` array of each quantity's worst error per
# step, and returns `(layer, name, t)` for the quantity to look at first, or `None` when
# every error is within `atol`: the **earliest step** with an error above `atol` (a NaN
# counts as above), within that step the **lowest layer** (an error in layer 0 reaches
# layer 1 in the same step), within that layer the quantity **computed first**, in the
# order of `LSTM_QUANTITIES` (z, z_i, z_f, c, z_o, h).

# %% nbgrader={"grade": false, "grade_id": "first_failure", "locked": false, "schema_version": 3, "solution": true, "task": false}
def first_failure(errors, atol):
    ### BEGIN SOLUTION
    layers = sorted({int(key.split("/")[0][len("layer"):]) for key in errors})
    steps = len(next(iter(errors.values())))
    for t in range(steps):
        for layer in layers:
            for name in LSTM_QUANTITIES:
                key = f"layer{layer}/{name}"
                if key in errors and not errors[key][t] <= atol:
                    return layer, name, t
    return None
    ### END SOLUTION

# %% nbgrader={"grade": true, "grade_id": "check_first_failure", "locked": true, "points": 2, "schema_version": 3, "solution": false, "task": false}
report = check_first_failure(first_failure)
print(report)
report.points(2)

# %% [markdown]
# ## Question
#
# **Q1.** Every step of the float32 export is as right as float32 allows, yet its error against
# float64 refconv grows along the sequence (the drift of section 8.3). Why, and what does that
# mean for the tolerance a deployment check should use?

# %% [markdown] nbgrader={"grade": true, "grade_id": "q_drift", "locked": false, "points": 1, "schema_version": 3, "solution": true, "task": false}
# Each step reads the previous step's `c` and `h`, so the rounding error of step `t` is in the
# input of step `t + 1`, which adds its own; the forget gate keeps most of `c`, so the errors
# are carried and add up rather than fade. A single tolerance for the first step is then too
# tight for the last, and one loose enough for the last hides a wrong first step: compare step
# by step, with a tolerance that grows with `t` as float32 itself drifts (refconv run in
# float32 shows how much), and look first at the earliest step that is out of it.
