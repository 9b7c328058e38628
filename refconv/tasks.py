"""Small synthetic tasks that each need a gate, the cells trained on them, and their weight files.

A gate picture of random weights shows what the equations do with *any*
weights. To see what a gate is *for*, train a cell on a task that needs it:

* ``memory``: a shape is shown for a few frames, then the screen stays blank,
  then a cue (a second input channel, 1 everywhere) asks for the shape back.
  The cell must carry the shape over the blank stretch; *how* it does it (a
  latched ``c``, or a memory refreshed through ``h``) is for notebook 07 to
  measure, seed by seed.
* ``forget``: the memory task, with a reset signal (a third input channel, on a
  frame of the blank stretch drawn per video) in half the videos, and a second
  shape after it: then the answer is the second shape alone, so the first must be
  dropped from ``c`` when the signal comes.
* ``occlusion``: a shape moves 1 pixel a frame across a bar that hides it (the
  bar is a second input channel); the target is the whole frame, the shape
  behind the bar included.
* ``motion``: predict the next frame of a shape moving 1, 2 or 3 pixels per
  frame. In one step a kernel of size ``k`` (dilation ``d``) carries information
  ``d * (k // 2)`` pixels.

The model is a cell and a *readout*: at every pixel the same linear map of the
``F`` channels of ``h`` and a sigmoid (a 1 x 1 convolution),
``p = sigmoid(h @ w + b)``. The loss is the mean squared error between ``p``
and the target frames. It is trained with refconv's own backpropagation
through time (:func:`refconv.dynamic_rnn_grad`) and Adam in a few lines.

Weights trained by ``notebooks/data/train_gates.py --seed S`` ship with the
package for the seeds :data:`SEEDS`, one folder each (``refconv/trained/seedS/
NAME.npz``; :func:`load` reads them without unpickling). ``REFCONV_TRAINED=DIR``
makes :func:`trained_dirs` (and so :func:`load`) read DIR instead: DIR holds
one seed's files, or ``seedS`` folders. :func:`train` gives the same bits for
the same model, seed and step count on the same machine and NumPy (another
machine's BLAS or NumPy may differ in the last bits, 1e-12 to 1e-8 relative).
"""

import io
import json
import os
import pathlib
import zipfile

import numpy as np

from .activations import sigmoid
from .bptt import dynamic_rnn_grad
from .data import _signed_distance
from .gru import ConvGRUCell
from .lstm import ConvLSTMCell
from .rnn import dynamic_rnn
from .vocabulary import LSTM_BLOCKS

__all__ = ["MODELS", "SEEDS", "memory_batch", "forget_batch", "occlusion_batch", "motion_batch",
           "batch", "make_cell", "predict", "loss_and_gradients", "adam", "train", "save", "load",
           "load_seeds", "trained_dirs", "clamp_forget_gate", "TRAINED", "memory_channel",
           "demo_figures"]

TRAINED = pathlib.Path(__file__).resolve().parent / "trained"
SEEDS = (0, 1, 2)         # the training seeds that ship, one folder each: trained/seed0, ...
SHAPE = (16, 16)

# The memory task's timeline: frames 0-1 show the shape, 2-7 are blank, 8-9 cue the recall.
SHOW, BLANK, RECALL = 2, 6, 2
# The forgetting task's reset signal, in half of its videos: on one frame of the blank
# stretch (drawn per video, after the shape has been held a frame), a second shape after it.
RESET_FRAMES = tuple(range(SHOW + 1, SHOW + BLANK - SHOW))
RESET_SHARE = 0.5
SPEEDS = (1, 2, 3)        # pixels per frame, the motion task
MOTION_FRAMES = 8         # frames read; the target is each next frame
OCCLUSION_FRAMES = 10     # the occlusion task's length
BAR = 6                   # the occluding bar's width, in pixels

# Every trained model: its cell, its task and how it is trained. Shi et al.'s cell is the
# seed's with layer norm off (a bias per block, peepholes on); see the notebook for why.
MODELS = {
    "memory_lstm": dict(task="memory", cell="lstm", filters=4, kernel=3, steps=300, lr=0.02,
                        batch_size=8),
    "memory_gru": dict(task="memory", cell="gru", filters=4, kernel=3, steps=300, lr=0.02,
                       batch_size=8),
    "motion_k3": dict(task="motion", cell="lstm", filters=4, kernel=3, steps=400, lr=0.02,
                      batch_size=6),
    "motion_k7": dict(task="motion", cell="lstm", filters=4, kernel=7, steps=400, lr=0.02,
                      batch_size=6),
    # the 7 x 7's reach in one step with the 3 x 3's weights: the *input* convolution dilated
    # by 3 (as Keras's dilation_rate; the state is convolved 3 x 3 undilated)
    "motion_k3d3": dict(task="motion", cell="lstm", filters=4, kernel=3, dilation=3, steps=400,
                        lr=0.02, batch_size=6),
    # 600 steps: at 300 some seeds had not yet settled on a way to drop the first shape
    "forget_lstm": dict(task="forget", cell="lstm", filters=4, kernel=3, steps=600, lr=0.02,
                        batch_size=8),
    "occlusion_lstm": dict(task="occlusion", cell="lstm", filters=6, kernel=3, steps=400,
                           lr=0.02, batch_size=6),
}


# --- the tasks ------------------------------------------------------------------
def _shape_mask(kind, centre, radius, shape=SHAPE):
    """A filled disc (kind 0) or square (kind 1) of ``radius`` pixels at ``centre``,
    anti-aliased over one pixel as :mod:`refconv.data` draws them: ``[H, W]`` in [0, 1]."""
    offset = np.indices(shape, dtype=np.float64) - np.asarray(centre, dtype=np.float64).reshape(2, 1, 1)
    return np.clip(0.5 - _signed_distance(("disc", "square")[kind], offset, radius, 0.0), 0.0, 1.0)


def memory_batch(batch_size, seed):
    """The memory task: ``(inputs [B, T, 16, 16, 2], targets [B, T, 16, 16, 1])``, T = 10.

    Channel 0 of the inputs is the picture: a disc or square on frames 0-1, blank after.
    Channel 1 is the recall cue: 1 everywhere on frames 8-9, 0 before. The target is
    blank except on the cue frames, where it is the shape.
    """
    rng = np.random.default_rng(seed)
    steps = SHOW + BLANK + RECALL
    inputs = np.zeros((batch_size, steps, *SHAPE, 2))
    targets = np.zeros((batch_size, steps, *SHAPE, 1))
    for b in range(batch_size):
        kind = rng.integers(2)
        radius = rng.uniform(2.0, 4.0)
        centre = rng.uniform(radius, np.asarray(SHAPE) - 1 - radius)
        mask = _shape_mask(kind, centre, radius)
        inputs[b, :SHOW, ..., 0] = mask
        inputs[b, SHOW + BLANK:, ..., 1] = 1.0
        targets[b, SHOW + BLANK:, ..., 0] = mask
    return inputs, targets


def forget_batch(batch_size, seed):
    """The forgetting task: ``(inputs [B, 10, 16, 16, 3], targets [B, 10, 16, 16, 1])``.

    As the memory task (channel 0 the shape on frames 0-1, channel 1 the cue on frames
    8-9), with a third channel: in a share ``RESET_SHARE`` of the videos (drawn per video)
    a *reset* signal, 1 everywhere on one frame ``r`` drawn from ``RESET_FRAMES``, and a
    second shape on channel 0 on frames ``r + 1, r + 2``. The target on the cue frames is
    the last shape shown: the first one, or after a reset the second one. To draw the
    second alone the cell must drop the first from ``c`` where the second is not.
    """
    inputs, targets = memory_batch(batch_size, seed)
    rng = np.random.default_rng([seed, 1])
    reset = rng.random(batch_size) < RESET_SHARE
    frames = rng.choice(RESET_FRAMES, size=batch_size)
    signal = np.zeros((batch_size, *inputs.shape[1:-1], 1))
    for b in np.flatnonzero(reset):
        kind, radius = rng.integers(2), rng.uniform(2.0, 4.0)
        second = _shape_mask(kind, rng.uniform(radius, np.asarray(SHAPE) - 1 - radius), radius)
        signal[b, frames[b]] = 1.0
        inputs[b, frames[b] + 1:frames[b] + 1 + SHOW, ..., 0] = second
        targets[b, SHOW + BLANK:, ..., 0] = second
    return np.concatenate([inputs, signal], axis=-1), targets


def occlusion_batch(batch_size, seed):
    """The occlusion task: ``(inputs [B, 10, 16, 16, 2], targets [B, 10, 16, 16, 1])``.

    A disc or square moves sideways at 1 pixel a frame (left or right, a little up or
    down) across a vertical bar ``BAR`` pixels wide. Channel 0 of the inputs is what
    is visible: the frame with the bar's pixels blanked. Channel 1 is the bar (1 on
    its columns). The target is the whole frame ``t``: the shape behind the bar too.
    """
    rng = np.random.default_rng(seed)
    inputs = np.zeros((batch_size, OCCLUSION_FRAMES, *SHAPE, 2))
    targets = np.zeros((batch_size, OCCLUSION_FRAMES, *SHAPE, 1))
    for b in range(batch_size):
        left = rng.integers(3, SHAPE[1] - 3 - BAR + 1)           # the bar's first column
        bar = np.zeros(SHAPE)
        bar[:, left:left + BAR] = 1.0
        kind, radius = rng.integers(2), rng.uniform(1.8, 2.4)
        direction = rng.choice([-1.0, 1.0])
        middle = left + (BAR - 1) / 2                              # behind the bar at t ~ 4.5
        start = np.array([rng.uniform(radius + 2, SHAPE[0] - 3 - radius),
                          middle - direction * 4.5])
        velocity = np.array([rng.uniform(-0.3, 0.3), direction])
        for t in range(OCCLUSION_FRAMES):
            frame = _shape_mask(kind, start + velocity * t, radius)
            targets[b, t, ..., 0] = frame
            inputs[b, t, ..., 0] = frame * (1 - bar)
            inputs[b, t, ..., 1] = bar
    return inputs, targets


def motion_batch(batch_size, seed, speeds=SPEEDS):
    """The motion task: ``(inputs [B, 8, 16, 16, 1], targets [B, 8, 16, 16, 1])``.

    One disc or square per video moves in a straight line at ``speeds[b % len(speeds)]``
    pixels per frame in a random direction, bouncing off the walls; ``targets[:, t]`` is
    ``inputs``' frame ``t + 1``.
    """
    rng = np.random.default_rng(seed)
    video = np.zeros((batch_size, MOTION_FRAMES + 1, *SHAPE, 1))
    for b in range(batch_size):
        speed = speeds[b % len(speeds)]
        kind = rng.integers(2)
        radius = rng.uniform(2.0, 3.0)
        lo, hi = radius - 0.5, np.asarray(SHAPE) - 0.5 - radius
        start = rng.uniform(lo, hi)
        angle = rng.uniform(0.0, 2 * np.pi)
        velocity = speed * np.array([np.cos(angle), np.sin(angle)])
        for t in range(MOTION_FRAMES + 1):
            video[b, t, ..., 0] = _shape_mask(kind, _bounce(start + velocity * t, lo, hi), radius)
    return video[:, :-1], video[:, 1:]


def _bounce(position, lo, hi):
    """Fold a straight path into [lo, hi], as if it bounced off both walls."""
    span = hi - lo
    folded = np.mod(position - lo, 2 * span)
    return lo + np.where(folded > span, 2 * span - folded, folded)


def batch(name, batch_size, seed):
    """``(inputs, targets)`` of model ``name``'s task."""
    make = {"memory": memory_batch, "forget": forget_batch, "occlusion": occlusion_batch,
            "motion": motion_batch}[MODELS[name]["task"]]
    return make(batch_size, seed)


# --- the model ------------------------------------------------------------------
def make_cell(name, seed=0):
    """An untrained cell for model ``name`` (built with ``seed``) and its readout ``{w [F, 1], b [1]}``."""
    spec = MODELS[name]
    in_channels = {"memory": 2, "forget": 3, "occlusion": 2, "motion": 1}[spec["task"]]
    kernel = [spec["kernel"]] * 2
    if spec["cell"] == "lstm":
        cell = ConvLSTMCell(SHAPE, spec["filters"], kernel, normalize=False, peephole=True,
                            dilation_rate=spec.get("dilation", 1))
    else:
        cell = ConvGRUCell(SHAPE, spec["filters"], kernel, normalize=False)
    cell.build(in_channels, seed=seed)
    rng = np.random.default_rng(seed + 1)
    readout = {"w": rng.normal(0.0, 1.0 / np.sqrt(spec["filters"]), (spec["filters"], 1)),
               "b": np.array([-2.0])}     # the frames are mostly background: start dark
    return cell, readout


def predict(cell, readout, inputs, return_gates=False):
    """``(h [B, T, 16, 16, F], p [B, T, 16, 16, 1])``, and the gates when asked."""
    h, _, *gates = dynamic_rnn(cell, inputs, return_gates=True) if return_gates \
        else dynamic_rnn(cell, inputs)
    p = sigmoid(h @ readout["w"] + readout["b"])
    return (h, p, gates[0]) if return_gates else (h, p)


def loss_and_gradients(cell, readout, inputs, targets):
    """The mean squared error of the predictions, and its gradient for the cell's and the readout's weights.

    ``loss = mean((p - target)**2)``; by the chain rule, one line per forward line::

        d_p     = 2 (p - target) / N
        d_logit = d_p * p * (1 - p)              (p = sigmoid(logit))
        d_w     = sum over pixels of h^T d_logit;  d_b = sum of d_logit
        d_h     = d_logit @ w^T                  -> dynamic_rnn_grad does the rest
    """
    h, p = predict(cell, readout, inputs)
    d_p = 2 * (p - targets) / p.size
    d_logit = d_p * p * (1 - p)
    filters = h.shape[-1]
    d_readout = {"w": h.reshape(-1, filters).T @ d_logit.reshape(-1, 1),
                 "b": d_logit.reshape(-1, 1).sum(axis=0)}
    d_cell = dynamic_rnn_grad(cell, inputs, d_logit @ readout["w"].T).params
    return float(np.mean((p - targets) ** 2)), d_cell, d_readout


def adam(params, grads, moments, step, lr, beta1=0.9, beta2=0.999, eps=1e-8):
    """One Adam update of every array in ``params`` (a dict, changed in place); ``moments``: name -> (m, v)."""
    for name, grad in grads.items():
        m, v = moments.get(name, (0.0, 0.0))
        m = beta1 * m + (1 - beta1) * grad
        v = beta2 * v + (1 - beta2) * grad ** 2
        params[name] = params[name] - lr * (m / (1 - beta1 ** step)) / (np.sqrt(v / (1 - beta2 ** step)) + eps)
        moments[name] = (m, v)


def train(name, steps=None, seed=0, log=None):
    """Train model ``name``: ``(cell, readout, losses)``, ``losses[k]`` the training batch's loss at step k + 1.

    Step ``k`` trains on a fresh batch seeded ``1000 * seed + k`` (held-out batches use
    seeds from 10**6 on). ``steps`` defaults to the model's own count.
    """
    spec = MODELS[name]
    steps = spec["steps"] if steps is None else steps
    cell, readout = make_cell(name, seed)
    moments_cell, moments_readout, losses = {}, {}, []
    for step in range(1, steps + 1):
        inputs, targets = batch(name, spec["batch_size"], 1000 * seed + step)
        value, d_cell, d_readout = loss_and_gradients(cell, readout, inputs, targets)
        adam(cell.params, d_cell, moments_cell, step, spec["lr"])
        adam(readout, d_readout, moments_readout, step, spec["lr"])
        losses.append(value)
        if log is not None and (step % 25 == 0 or step == steps):
            log(f"{name}: step {step:4d}  training loss {value:.5f}")
    return cell, readout, np.array(losses)


def held_out(name, batch_size=12):
    """The held-out batch every notebook and test measures model ``name`` on (seed 10**6)."""
    return batch(name, batch_size, 10 ** 6)


# --- weight files ---------------------------------------------------------------
def save(path, name, cell, readout, losses, steps, seed):
    """Write a ``.npz`` of plain arrays whose bytes depend only on its contents.

    ``np.savez`` stamps each member with the current time; here each member gets a fixed
    date, so the same weights always give the same file.
    """
    arrays = {f"cell/{key}": value for key, value in cell.params.items()}
    arrays.update({f"readout/{key}": value for key, value in readout.items()})
    arrays["losses"] = np.asarray(losses)
    config = dict(MODELS[name], name=name, steps=steps, seed=seed)
    arrays["config"] = np.array(json.dumps(config, sort_keys=True))
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for key in sorted(arrays):
            member = io.BytesIO()
            np.lib.format.write_array(member, np.asarray(arrays[key]), allow_pickle=False)
            info = zipfile.ZipInfo(key + ".npy", date_time=(1980, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, member.getvalue())
    pathlib.Path(path).write_bytes(buffer.getvalue())


def trained_dirs():
    """The folders of trained weights, one per training seed.

    ``REFCONV_TRAINED=DIR`` in the environment: DIR's ``seed*`` folders, or DIR itself
    when it holds the ``.npz`` files. Otherwise the shipped ``refconv/trained/seedS``
    for every seed of :data:`SEEDS`.
    """
    chosen = os.environ.get("REFCONV_TRAINED")
    if not chosen:
        return [TRAINED / f"seed{seed}" for seed in SEEDS]
    directory = pathlib.Path(chosen)
    if not directory.is_dir():
        raise ValueError(f"REFCONV_TRAINED: expected a folder of trained weights, got {chosen!r}")
    folders = sorted(p for p in directory.glob("seed*") if p.is_dir())
    return folders or [directory]


def load_seeds(name):
    """``{seed: (cell, readout, losses, config)}`` of model ``name``, one per :func:`trained_dirs` folder."""
    models = [load(name, directory) for directory in trained_dirs()]
    return {model[3]["seed"]: model for model in models}


def load(name, directory=None):
    """``(cell, readout, losses, config)`` of a trained model, from ``DIR/NAME.npz``.

    ``directory`` defaults to the first of :func:`trained_dirs` (seed 0 as shipped).
    Raises ValueError naming the model when there is no such file.
    """
    directory = pathlib.Path(directory or trained_dirs()[0])
    path = directory / f"{name}.npz"
    if not path.exists():
        known = sorted(p.stem for p in directory.glob("*.npz"))
        raise ValueError(f"name: expected one of {known}, got {name!r} (no {path})")
    with np.load(path, allow_pickle=False) as archive:
        config = json.loads(str(archive["config"]))
        cell, readout = make_cell(config["name"], config["seed"])
        cell.params = {key: archive[f"cell/{key}"] for key in cell.params}
        readout = {key: archive[f"readout/{key}"] for key in readout}
        losses = archive["losses"]
    return cell, readout, losses, config


def clamp_forget_gate(cell, value, channels=None):
    """A copy of an LSTM cell (layer norm off) whose forget gate is ``value`` at every pixel and step.

    ``channels``: the state channels to clamp (default all of them).

    ``z_f = sigmoid(conv(xh, kernel_f) + W_cf * c + bias_f + forget_bias)``: zero the
    ``z_f`` block of the kernel and the peephole ``W_cf``, and set the bias to
    ``logit(value) - forget_bias``. No code changes, only weights.
    """
    if cell.normalize:
        raise ValueError("cell: expected a cell with normalize=False (layer norm re-centres "
                         "z_f over the frame, so no bias can hold it at one value)")
    if not 0.0 < value < 1.0:
        raise ValueError(f"value: expected a number in (0, 1), got {value!r}")
    clamped = ConvLSTMCell(cell.shape, cell.filters, cell.kernel, forget_bias=cell.forget_bias,
                           normalize=False, peephole=cell.peephole)
    params = {key: np.array(array) for key, array in cell.params.items()}
    f = cell.filters
    channels = np.arange(f) if channels is None else np.asarray(channels, dtype=int).reshape(-1)
    if channels.size == 0 or channels.min() < 0 or channels.max() >= f:
        raise ValueError(f"channels: expected state channels in [0, {f}), got {channels.tolist()}")
    block = LSTM_BLOCKS.index("z_f") * f + channels     # kernel/bias columns of those z_f channels
    params["kernel"][..., block] = 0.0
    params["bias"][block] = np.log(value / (1 - value)) - cell.forget_bias
    if cell.peephole:
        params["W_cf"][..., channels] = 0.0
    clamped.params = params
    clamped.in_channels = cell.in_channels
    return clamped


# --- pictures -------------------------------------------------------------------
def memory_channel(gates, name="z_f", frames=None):
    """The state channel that holds the memory: the one whose ``name`` gate (``z_f`` for the
    LSTM, ``u`` for the GRU) is highest, on average, over ``frames`` (default: the memory
    task's blank stretch)."""
    frames = list(range(SHOW, SHOW + BLANK) if frames is None else frames)
    return int(np.argmax(gates[name][:, frames].mean(axis=(0, 1, 2, 3))))


def demo_figures(seed=0):
    """The trained memory cells' gates on a memory-task video never trained on (``refconv demo``).

    ``seed`` picks the video (batch seed ``10**6 + seed``). Returns a dict file name -> Figure:
    the ConvLSTM's and the ConvGRU's gates of the channel that holds the memory.
    """
    from . import viz

    inputs, _ = memory_batch(1, 10 ** 6 + seed)
    figures = {}
    for name, rows, gate in [("memory_lstm", ["z_i", "z_f", "z_o", "c", "h"], "z_f"),
                             ("memory_gru", ["r", "u", "candidate", "h"], "u")]:
        cell, readout, losses, config = load(name)
        _, p, gates = predict(cell, readout, inputs, return_gates=True)
        channel = memory_channel(gates, gate)
        gates = dict(gates, prediction=np.repeat(p, cell.filters, axis=-1))
        kind = "ConvLSTM" if config["cell"] == "lstm" else "ConvGRU"
        title = (f"TRAINED {kind}, memory task (training loss {losses[-1]:.1e} after "
                 f"{config['steps']} steps): state channel {channel}, the one holding the memory\n"
                 f"shape shown at t=0-1, blank t=2-7, recalled at t=8-9 when a cue "
                 f"(a second input channel) asks for it")
        figures[f"trained_{config['cell']}_gates.png"] = viz.gate_grid(
            gates, rows + ["prediction"], frames=inputs, channel=channel,
            ranges={"prediction": (0.0, 1.0), "c": (-2.0, 2.0)}, title=title)
    return figures
