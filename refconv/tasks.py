"""Small synthetic tasks that each need a gate, the cells trained on them, and their weight files.

A gate picture of random weights shows what the equations do with *any*
weights. To see what a gate is *for*, train a cell on a task that needs it:

* ``memory``: a shape is shown for a few frames, then the screen stays blank,
  then a cue (a second input channel, 1 everywhere) asks for the shape back.
  The cell must write the shape into ``c`` (``z_i`` open), keep it there over
  the blank stretch (``z_f`` near 1, ``z_i`` closed so nothing new gets in)
  and show it only when asked (``z_o``).
* ``motion``: predict the next frame of a shape moving 1, 2 or 3 pixels per
  frame. A cell whose kernel reaches ``k // 2`` pixels sees a fast shape's next
  position only when the shape moves less than that per step (Shi et al. 2015's
  argument for larger state-to-state kernels).

The model is a cell and a *readout*: at every pixel the same linear map of the
``F`` channels of ``h`` and a sigmoid (a 1 x 1 convolution),
``p = sigmoid(h @ w + b)``. The loss is the mean squared error between ``p``
and the target frames. It is trained with refconv's own backpropagation
through time (:func:`refconv.dynamic_rnn_grad`) and Adam in a few lines.

The weights trained by ``notebooks/data/train_gates.py`` ship with the package
(``refconv/trained/*.npz``; :func:`load` reads them without unpickling).
:func:`train` gives the same bits for the same model name and step count on the
same machine and NumPy.
"""

import io
import json
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

__all__ = ["MODELS", "memory_batch", "motion_batch", "batch", "make_cell", "predict",
           "loss_and_gradients", "adam", "train", "save", "load", "clamp_forget_gate",
           "TRAINED", "memory_channel", "demo_figures"]

TRAINED = pathlib.Path(__file__).resolve().parent / "trained"
SHAPE = (16, 16)

# The memory task's timeline: frames 0-1 show the shape, 2-7 are blank, 8-9 cue the recall.
SHOW, BLANK, RECALL = 2, 6, 2
SPEEDS = (1, 2, 3)        # pixels per frame, the motion task
MOTION_FRAMES = 8         # frames read; the target is each next frame

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
    task = MODELS[name]["task"]
    return memory_batch(batch_size, seed) if task == "memory" else motion_batch(batch_size, seed)


# --- the model ------------------------------------------------------------------
def make_cell(name, seed=0):
    """An untrained cell for model ``name`` (built with ``seed``) and its readout ``{w [F, 1], b [1]}``."""
    spec = MODELS[name]
    in_channels = 2 if spec["task"] == "memory" else 1
    kernel = [spec["kernel"]] * 2
    if spec["cell"] == "lstm":
        cell = ConvLSTMCell(SHAPE, spec["filters"], kernel, normalize=False, peephole=True)
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


def load(name, directory=None):
    """``(cell, readout, losses, config)`` of a trained model, from ``refconv/trained/NAME.npz``.

    Raises ValueError naming the model when there is no such file.
    """
    path = pathlib.Path(directory or TRAINED) / f"{name}.npz"
    if not path.exists():
        known = sorted(p.stem for p in pathlib.Path(directory or TRAINED).glob("*.npz"))
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
def memory_channel(gates, name="z_f"):
    """The state channel that holds the memory: the one whose ``name`` gate (``z_f`` for the
    LSTM, ``u`` for the GRU) is highest over the blank stretch, on average."""
    blank = slice(SHOW, SHOW + BLANK)
    return int(np.argmax(gates[name][:, blank].mean(axis=(0, 1, 2, 3))))


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
