"""What a trained gate is for, measured: force it and see what breaks; how far a kernel reaches.

Notebook 07's measurements, as functions its tests can hold to an oracle:

* :func:`forced_run`: a ConvLSTM (layer norm off) run step by step with chosen gates
  *forced* to a value on chosen frames and state channels. Its step is written out
  here line by line, in the order of :func:`refconv.lstm_step`; with nothing forced it
  gives refconv's reference run to the last bit (a test holds it to that).
* :func:`ablation`: the error of a trained model with each gate forced, relative to
  the trained cell's, for one channel and for all of them.
* :func:`forget_test`: on the forgetting task, each video with a reset against itself
  without it: does the forget gate drop at the signal, and does holding it cost the
  task? (:func:`forget_row` prints it; ``notebooks/data/forget_seeds.py`` runs it over
  many training seeds and records them, :func:`load_forget_record` reads the record.)
* :func:`reach_cone`: in 1-D, which pixels of ``h`` one input pixel has changed after
  ``t`` steps: the cone ``d * (k // 2) + t * (k // 2)`` (input dilation ``d``).
* :func:`reach_profile`: a motion model's prediction on target pixels ``n`` pixels
  ahead of the shape it reads.
* :func:`bootstrap_ratio`, :func:`saturation`, :func:`border_profile`,
  :func:`peephole_variant`: an interval, Karpathy et al.'s saturation shares, the
  border's pull by distance, a cell whose peepholes lost their position.
"""

import functools
import json
import pathlib

import numpy as np
from scipy import ndimage

from . import tasks
from .lstm import ConvLSTMCell
from .rnn import dynamic_rnn
from .vocabulary import LSTM_BLOCKS, LSTM_QUANTITIES

__all__ = ["forced_run", "INTERVENTIONS", "ablation", "TASKS", "task_error", "main_channel",
           "task_tables", "read_out", "reset_frames", "forget_test", "forget_design",
           "load_forget_record", "forget_header", "forget_row", "reach_cone", "reach_profile",
           "bootstrap_ratio", "saturation", "border_profile", "peephole_variant"]

# The interventions of the ablation table: (gate, value). z_f = 1 keeps all of c; 0.5 halves
# it each step; z_i = 0 lets nothing in; z_o = 0 hides c from h (and so from the next step's
# gates); z_o = 1 shows all of it.
INTERVENTIONS = (("z_f", 1.0), ("z_f", 0.5), ("z_i", 0.0), ("z_o", 0.0), ("z_o", 1.0))
FORCEABLE = ("z_i", "z_f", "z_o")


def forced_run(cell, inputs, force=()):
    """Run ``cell`` over ``inputs`` with gates forced: ``(h [B, T, *S, F], gates)``.

    ``force``: a list of ``(gate, value, frames, channels)`` or ``(gate, value, frames,
    channels, rows)``: ``gate`` one of z_i, z_f, z_o, set to ``value`` (after its sigmoid)
    on the time steps ``frames``, the state channels ``channels`` (None: all of them) and
    the videos ``rows`` of the batch (a slice; default all). ``value`` is a number, or an
    array that broadcasts to ``[rows, *S, channels]`` (a value per video, pixel and channel). ``gates``: a dict name -> ``[B, T, *S, F]``
    of every quantity of :data:`refconv.vocabulary.LSTM_QUANTITIES`, as
    ``refconv.dynamic_rnn(cell, inputs, return_gates=True)`` gives.
    """
    if not isinstance(cell, ConvLSTMCell) or cell.normalize or cell.data_format != "channels_last":
        raise ValueError("cell: expected a channels_last ConvLSTMCell with normalize=False, "
                         f"got {type(cell).__name__}")
    inputs = np.asarray(inputs, dtype=np.float64)
    steps = inputs.shape[1]
    force = [_checked(item, steps, cell.filters) for item in force]
    params = cell.params
    sigma, act = cell.recurrent_activation, cell.activation
    c, h = cell.zero_state(inputs.shape[0])
    record = {name: [] for name in LSTM_QUANTITIES}
    for t in range(steps):
        y = cell._conv(inputs[:, t], h, params["kernel"]) + params["bias"]
        z, z_i, z_f, z_o = np.split(y, len(LSTM_BLOCKS), axis=-1)
        if cell.peephole:
            z_i = z_i + params["W_ci"] * c           # the peepholes read the old c ...
            z_f = z_f + params["W_cf"] * c
        z_f = sigma(z_f + cell.forget_bias)
        z_i = sigma(z_i)
        z = act(z)
        z_i, z_f = _force(z_i, "z_i", t, force), _force(z_f, "z_f", t, force)
        c = c * z_f + z_i * z
        if cell.peephole:
            z_o = z_o + params["W_co"] * c           # ... and z_o the new one
        z_o = _force(sigma(z_o), "z_o", t, force)
        h = z_o * act(c)
        for name, value in zip(LSTM_QUANTITIES, (z, z_i, z_f, c, z_o, h)):
            record[name].append(value)
    gates = {name: np.stack(values, axis=1) for name, values in record.items()}
    return gates["h"], gates


def _checked(item, steps, filters):
    gate, value, frames, channels, rows = (*item, slice(None))[:5]
    if gate not in FORCEABLE:
        raise ValueError(f"force: expected a gate of {FORCEABLE}, got {gate!r}")
    value = np.asarray(value, dtype=np.float64)
    if not np.all((value >= 0.0) & (value <= 1.0)):
        raise ValueError(f"force: expected a value in [0, 1] for {gate}, got "
                         f"{value if value.ndim == 0 else [value.min(), value.max()]}")
    frames = set(int(t) for t in frames)
    if frames and (min(frames) < 0 or max(frames) >= steps):
        raise ValueError(f"force: expected frames in [0, {steps}), got {sorted(frames)}")
    channels = list(range(filters)) if channels is None else [int(k) for k in channels]
    if not channels or min(channels) < 0 or max(channels) >= filters:
        raise ValueError(f"force: expected channels in [0, {filters}), got {channels}")
    if not isinstance(rows, slice):
        raise ValueError(f"force: expected rows as a slice, got {rows!r}")
    return gate, value, frames, channels, rows


def _force(gate_values, name, t, force):
    for gate, value, frames, channels, rows in force:
        if gate == name and t in frames:
            gate_values = gate_values.copy()
            gate_values[rows, ..., channels] = value
    return gate_values


def read_out(h, readout):
    """The model's prediction ``p = sigmoid(h @ w + b)``: ``[B, T, *S, 1]``."""
    return 1.0 / (1.0 + np.exp(-(h @ readout["w"] + readout["b"])))


def ablation(cell, readout, inputs, error, frames, channel, interventions=INTERVENTIONS):
    """Each intervention's error relative to the trained cell's: ``{(gate, value, which): ratio}``.

    ``error(p)``: the task's error of predictions ``p``. ``frames``: the time steps the
    gate is forced on. ``which`` is ``"main"`` (state channel ``channel`` only) or ``"all"``.
    """
    keys = [(gate, value, which) for gate, value in interventions for which in ("main", "all")]
    size = len(inputs)
    # One run of a batch that holds the videos once per intervention, and once untouched.
    force = [(gate, value, frames, [channel] if which == "main" else None,
              slice((n + 1) * size, (n + 2) * size)) for n, (gate, value, which) in enumerate(keys)]
    p = read_out(forced_run(cell, np.concatenate([inputs] * (len(keys) + 1)), force)[0], readout)
    base = error(p[:size])
    return {key: error(p[(n + 1) * size:(n + 2) * size]) / base for n, key in enumerate(keys)}


# Each task's ablation: its model, the frames a gate is forced on (where it matters), the
# frames whose z_f picks the "main" channel (tasks.memory_channel; for forget, see
# main_channel), and its error.
TASKS = {
    # over the blank stretch, between the last sight of the shape and the cue
    "memory": dict(model="memory_lstm", frames=range(2, 8), channel_frames=range(2, 8)),
    # from the first frame a reset may come on (in half the videos) to the cue: where the
    # memory is dropped
    "forget": dict(model="forget_lstm", frames=range(tasks.RESET_FRAMES[0], 8), channel_frames=()),
    # while the shape crosses the bar (its centre is behind the bar from t = 3 to 6)
    "occlusion": dict(model="occlusion_lstm", frames=range(2, 8), channel_frames=range(3, 7)),
}


def task_error(task, p, inputs, targets):
    """The task's error: the mean squared error on the recall frames (8-9) for memory and
    forget; on the pixels behind the bar (every frame) for occlusion."""
    if task == "occlusion":
        behind = inputs[..., 1:] > 0.5
        return float(np.mean(((p - targets) ** 2)[behind]))
    return float(np.mean((p - targets)[:, tasks.SHOW + tasks.BLANK:] ** 2))


def main_channel(task, gates, inputs):
    """The state channel an ablation forces as "main": for memory and occlusion the one whose
    ``z_f`` is highest over the task's ``channel_frames`` (the memory channel); for forget the
    one whose ``z_f`` falls most inside the shape on the reset frame and the next (a cell may
    drop ``c`` on the step after the signal, once ``h`` carries it): each video with a reset
    against the videos without one, on the same frames."""
    if task != "forget":
        return tasks.memory_channel(gates, "z_f", TASKS[task]["channel_frames"])
    frames = reset_frames(inputs)
    inside = inputs[:, 0, ..., 0] > 0.5                                   # the shape's pixels
    calm = frames < 0
    fall = []
    for b in np.flatnonzero(~calm):
        window = [frames[b], frames[b] + 1]
        without = np.mean([gates["z_f"][calm, t][inside[calm]].mean(axis=0) for t in window], axis=0)
        fall.append(without - np.mean([gates["z_f"][b, t][inside[b]].mean(axis=0) for t in window],
                                      axis=0))
    return int(np.argmax(np.mean(fall, axis=0)))


AROUND = (-2, -1, 0, 1, 2, 3)   # forget_test's frames, from the reset frame (3 to 5: all exist)
DROP_FRAMES = (0, 1)            # the reset frame and the next: where the drop must come


def reset_frames(inputs):
    """``[B]``: each forgetting-task video's reset frame (channel 2 is 1 everywhere), -1 where
    it has none."""
    signal = inputs[..., 2].max(axis=tuple(range(2, inputs.ndim - 1)))   # [B, T]
    return np.where(signal.max(axis=1) > 0.5, signal.argmax(axis=1), -1)


def forget_test(cell, readout, inputs, targets):
    """Does the forget gate drop at the reset, and does the task need that drop?

    Measured on the videos of ``inputs`` that have a reset, each against *itself without
    its reset* (channel 2 zeroed; everything else equal), on the forgetting channel
    (:func:`main_channel`, chosen on all of ``inputs``):

    * ``z_f``: ``{"reset": [K], "no reset": [K]}``, that channel's ``z_f`` inside the first
      shape on the frames ``r + k`` for ``k`` in :data:`AROUND` (``r`` the reset frame), mean
      over the videos; ``drop``: the smaller of ``z_f`` with the reset over ``z_f`` without
      it, on the reset frame and the next (:data:`DROP_FRAMES`);
    * ``ratio``: ``{"main": r, "all": r}``, the error on those videos (the recall frames)
      with ``z_f`` held on the reset frame and the next at what it is without the reset
      (pixel by pixel: the drop cannot happen, nothing else is touched), on the forgetting
      channel or on every channel, divided by the trained cell's error;
    * ``channel``, ``error`` (the trained cell's) and ``recall_error`` (the error of
      recalling the shape where blank is the answer: the scale of a failure).
    """
    frames = reset_frames(inputs)
    order = np.argsort(frames, kind="stable")
    order = order[frames[order] >= 0]                 # the reset videos, by reset frame
    if order.size == 0:
        raise ValueError("inputs: expected some forgetting-task videos with a reset, got none")
    channel = main_channel("forget", forced_run(cell, inputs)[1], inputs)
    x, y, frames = inputs[order], targets[order], frames[order]
    calm = x.copy()                                   # the same videos without their reset:
    calm[..., 2] = 0.0                                # no signal, and nothing shown after it
    for b, t in enumerate(frames):
        calm[b, t:, ..., 0] = 0.0
    h, gates = forced_run(cell, x)
    calm_gates = forced_run(cell, calm)[1]
    inside = x[:, 0, ..., 0] > 0.5

    def around(z_f):                                  # [B, T, H, W] -> [len(AROUND)]
        return np.array([np.mean([z_f[b, t + k][inside[b]].mean() for b, t in enumerate(frames)])
                         for k in AROUND])

    def error(h):
        return float(np.mean((read_out(h, readout) - y)[:, tasks.SHOW + tasks.BLANK:] ** 2))

    base = error(h)
    ratio = {}
    for which, channels in (("main", [channel]), ("all", list(range(cell.filters)))):
        force = []
        for t in np.unique(frames):                   # per reset frame, its videos (contiguous)
            rows = slice(np.flatnonzero(frames == t)[0], np.flatnonzero(frames == t)[-1] + 1)
            force += [("z_f", calm_gates["z_f"][rows, t + k][..., channels], [t + k], channels, rows)
                      for k in DROP_FRAMES]
        ratio[which] = error(forced_run(cell, x, force)[0]) / base
    z_f = {"reset": around(gates["z_f"][..., channel]),
           "no reset": around(calm_gates["z_f"][..., channel])}
    drop = min(z_f["reset"][AROUND.index(k)] / z_f["no reset"][AROUND.index(k)] for k in DROP_FRAMES)
    first = np.mean((x[:, :1, ..., 0] - y[:, tasks.SHOW + tasks.BLANK:, ..., 0]) ** 2)
    return dict(channel=channel, error=base, recall_error=float(first),
                ratio=ratio, z_f=z_f, drop=float(drop))


def forget_design():
    """What :func:`forget_test`'s numbers depend on: the forgetting task's timeline, its
    model's training, and the test's frames (a record of another design is stale)."""
    return dict(reset_frames=list(tasks.RESET_FRAMES), reset_share=tasks.RESET_SHARE,
                model=tasks.MODELS["forget_lstm"], around=list(AROUND),
                drop_frames=list(DROP_FRAMES))


def load_forget_record(path):
    """A record written by ``notebooks/data/forget_seeds.py --record PATH``:
    ``{"command", "videos", "design", "seeds": {seed: forget_test's result}}`` (seeds as
    ints). Raises ValueError when it was measured on another design than the current one."""
    record = json.loads(pathlib.Path(path).read_text())
    if record["design"] != forget_design():
        raise ValueError(f"{path}: recorded for the design {record['design']}, not the current "
                         f"{forget_design()}: run {record['command']} again")
    record["seeds"] = {int(seed): result for seed, result in record["seeds"].items()}
    return record


def forget_header():
    """The two header lines of :func:`forget_row`'s table."""
    frames = " ".join(f"{format(k, '+d') if k else 'r':>5}" for k in AROUND)
    return (f"{'':12}  {'z_f with the reset, frames from it':<{len(frames)}}   "
            f"{'z_f, the same video without it':<{len(frames)}}          held z_f: error x\n"
            f"{'seed':>4} {'channel':>7}  {frames}   {frames}  {'drop':>6} {'channel':>9} {'all':>9} "
            f"{'error':>8} {'share':>7}")


def forget_row(seed, result):
    """One line of the table: :func:`forget_test`'s ``result`` for ``seed``; ``share`` is the
    held error (every channel) over the error of answering the first shape."""
    share = result["ratio"]["all"] * result["error"] / result["recall_error"]
    return (f"{seed:4d} {result['channel']:7d}  " + " ".join(f"{v:5.2f}" for v in result["z_f"]["reset"])
            + "   " + " ".join(f"{v:5.2f}" for v in result["z_f"]["no reset"])
            + f"  {result['drop']:6.3f} {result['ratio']['main']:8.1f}x {result['ratio']['all']:8.1f}x "
            f"{result['error']:8.1e} {share:7.2f}")


def task_tables(task, videos=12):
    """``{seed: (channel, trained error, {(gate, value, which): ratio})}`` of a task's ablation,
    for every seed of :func:`refconv.tasks.trained_dirs`, on ``videos`` held-out videos.
    Computed once per task, folders and size (the notebook and its checker share it)."""
    if task not in TASKS:
        raise ValueError(f"task: expected one of {sorted(TASKS)}, got {task!r}")
    return _task_tables(task, videos, tuple(str(d) for d in tasks.trained_dirs()))


@functools.lru_cache(maxsize=None)
def _task_tables(task, videos, directories):
    spec = TASKS[task]
    inputs, targets = tasks.held_out(spec["model"], videos)
    tables = {}
    for directory in directories:
        cell, readout, _, config = tasks.load(spec["model"], directory)
        h, gates = forced_run(cell, inputs)
        channel = main_channel(task, gates, inputs)
        trained = task_error(task, read_out(h, readout), inputs, targets)
        table = ablation(cell, readout, inputs,
                         lambda p: task_error(task, p, inputs, targets), spec["frames"], channel)
        tables[config["seed"]] = (channel, trained, table)
    return tables


def reach_cone(kernel, dilation=1, steps=8, width=41, seed=0):
    """``[steps, width]``: ``max |h_t - h_t'|`` over channels, for a 1-D ConvLSTM (random
    weights and biases, ``seed``) fed a video of zeros (``h'``) and the same with one
    pixel set at ``t = 0`` in the middle (``h``). Exactly 0 where that pixel cannot reach.
    """
    cell = ConvLSTMCell([width], 2, [kernel], normalize=False, peephole=False,
                        dilation_rate=dilation)
    cell.build(1, seed=seed)
    cell.params["bias"] = np.random.default_rng(seed).normal(0.0, 0.5, cell.params["bias"].shape)
    quiet = np.zeros((1, steps, width, 1))
    poked = quiet.copy()
    poked[0, 0, width // 2, 0] = 1.0
    h = dynamic_rnn(cell, np.concatenate([quiet, poked]), reference=True)[0]
    return np.abs(h[1] - h[0]).max(axis=-1)


def reach_profile(p, inputs, targets, distances=(1, 2, 3, 4)):
    """``{d: (mean prediction, count)}`` over the target's shape pixels (``> 0.5``) that are
    ``d`` pixels (chessboard distance) from the nearest shape pixel of the frame read."""
    inside = inputs[..., 0] > 0.5                                       # [B, T, H, W]
    away = np.stack([ndimage.distance_transform_cdt(~frame, metric="chessboard")
                     for frame in inside.reshape(-1, *inside.shape[2:])]).reshape(inside.shape)
    wanted = targets[..., 0] > 0.5
    return {d: (float(p[..., 0][wanted & (away == d)].mean()), int((wanted & (away == d)).sum()))
            for d in distances}


def bootstrap_ratio(numerator, denominator, seed, draws=2000, level=0.95):
    """``(ratio, lo, hi)``: ``sum(numerator) / sum(denominator)`` over items (videos), and its
    bootstrap interval (items drawn with replacement ``draws`` times)."""
    numerator, denominator = np.asarray(numerator, float), np.asarray(denominator, float)
    index = np.random.default_rng(seed).integers(numerator.size, size=(draws, numerator.size))
    ratios = numerator[index].sum(axis=1) / denominator[index].sum(axis=1)
    tail = (1 - level) / 2
    lo, hi = np.quantile(ratios, [tail, 1 - tail])
    return numerator.sum() / denominator.sum(), float(lo), float(hi)


def saturation(gate, low=0.1, high=0.9):
    """``(left [F], right [F])``: per channel (the last axis), the share of the gate's values
    below ``low`` (left-saturated) and above ``high`` (right-saturated)."""
    values = np.asarray(gate).reshape(-1, np.shape(gate)[-1])
    return (values < low).mean(axis=0), (values > high).mean(axis=0)


def border_profile(frames, depth=8):
    """``[T, depth]``: per step, the mean ``|value - the centre's value|`` over the pixels at
    each distance from the border (0 = the outermost ring). ``frames``: ``[T, H, W]``;
    the centre's value is the mean of its 2 x 2 middle pixels."""
    frames = np.asarray(frames)
    height, width = frames.shape[1:]
    rows, cols = np.indices((height, width))
    distance = np.minimum.reduce([rows, cols, height - 1 - rows, width - 1 - cols])
    middle = frames[:, height // 2 - 1:height // 2 + 1, width // 2 - 1:width // 2 + 1].mean(axis=(1, 2))
    return np.array([[np.abs(frame[distance == d] - centre).mean() for d in range(depth)]
                     for frame, centre in zip(frames, middle)])


def peephole_variant(cell, how):
    """A copy of ``cell`` whose peepholes ``W_ci, W_cf, W_co`` are replaced by each channel's
    spatial mean (``how="mean"``: the same weight at every pixel) or by 0 (``"zero"``)."""
    if how not in ("mean", "zero"):
        raise ValueError(f"how: expected 'mean' or 'zero', got {how!r}")
    if not cell.peephole:
        raise ValueError("cell: expected a cell with peepholes")
    copy = ConvLSTMCell(cell.shape, cell.filters, cell.kernel, forget_bias=cell.forget_bias,
                        normalize=cell.normalize, peephole=True,
                        dilation_rate=cell.dilation_rate)
    copy.params = {key: np.array(value) for key, value in cell.params.items()}
    for key in ("W_ci", "W_cf", "W_co"):
        weights = copy.params[key]
        copy.params[key] = (np.broadcast_to(weights.mean(axis=tuple(range(weights.ndim - 1))),
                                            weights.shape).copy() if how == "mean"
                            else np.zeros_like(weights))
    copy.in_channels = cell.in_channels
    return copy
