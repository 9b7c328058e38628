"""What ``refconv demo`` shows is what its titles say (issue 29): the data handed to matplotlib.

The demo's trained figures (:func:`refconv.tasks.demo_figures`, which ``refconv demo``
writes first) each show one state channel and say, in the title, that it is "the one
holding the memory". The oracle here does not reuse the demo's choice: the trained cell is
run again on the same video, the blank stretch is found from the inputs themselves (frames
where neither the picture nor the cue channel is on), and the memory channel is the one
whose keep-gate (the LSTM's forget gate ``z_f``; the GRU's update gate ``u``, which keeps
``h`` where it is 1) stays highest over it. Then, behaviourally: clamping that channel's
forget gate half shut destroys the recall more than clamping any other channel.

Several seeds (several videos); what is asserted holds for each.
"""

import math
import re

import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
import pytest  # noqa: E402

from refconv import dynamic_rnn, tasks, viz  # noqa: E402
from refconv.activations import sigmoid  # noqa: E402

SEEDS = [0, 1, 2]
ROWS = {"lstm": ["x", "z_i", "z_f", "z_o", "c", "h", "prediction"],
        "gru": ["x", "r", "u", "candidate", "h", "prediction"]}
KEEP = {"lstm": "z_f", "gru": "u"}


def video(seed):
    """The demo's video for ``seed`` (its documented batch seed), and where it is blank."""
    inputs, targets = tasks.memory_batch(1, 10 ** 6 + seed)
    blank = np.flatnonzero(~inputs[0].any(axis=(1, 2, 3)))   # neither picture nor cue
    assert blank.size >= 3 and np.all(np.diff(blank) == 1), blank
    return inputs, targets, blank


def shown(figure, rows, steps, name):
    """The pictures of row ``name`` of a gate grid, one per step."""
    # viz.picture_grid's layout: more than viz._COLUMNS steps go on in blocks of `per`
    # columns, each block a row per quantity; the axes are row by row, block by block
    r = rows.index(name)
    blocks = math.ceil(steps / viz._COLUMNS)
    per = math.ceil(steps / blocks)
    return [figure.axes[((t // per) * len(rows) + r) * per + t % per].images[0].get_array()
            for t in range(steps)]


@pytest.fixture(scope="module", params=SEEDS)
def demo(request):
    return request.param, tasks.demo_figures(request.param)


@pytest.mark.parametrize("kind", ["lstm", "gru"])
def test_the_demo_shows_the_channel_whose_keep_gate_holds_the_memory(demo, kind):
    seed, figures = demo
    figure = figures[f"trained_{kind}_gates.png"]
    cell, readout, _, _ = tasks.load(f"memory_{kind}")
    inputs, _, blank = video(seed)
    _, _, gates = dynamic_rnn(cell, inputs, return_gates=True)
    keep = gates[KEEP[kind]][0, blank].mean(axis=(0, 1, 2))        # per channel
    memory = int(np.argmax(keep))
    if kind == "lstm":   # a clear choice on every seed (the GRU's u spreads over channels)
        assert keep[memory] > np.sort(keep)[-2] + 0.05, keep

    title = figure.get_suptitle()
    said = re.search(r"state channel (\d+), the one holding the memory", title)
    assert said, title
    assert int(said.group(1)) == memory, (title, keep)

    steps = inputs.shape[1]
    rows = ROWS[kind]
    assert len(figure.axes) >= len(rows) * steps
    for name in rows[1:-1]:           # every gate row shows that channel of that quantity
        for t, picture in enumerate(shown(figure, rows, steps, name)):
            np.testing.assert_array_equal(picture, gates[name][0, t, ..., memory], err_msg=name)
    for t, picture in enumerate(shown(figure, rows, steps, "x")):   # the input's picture channel
        np.testing.assert_array_equal(picture, inputs[0, t, ..., 0])
    h = gates["h"][0]
    prediction = sigmoid(h @ readout["w"] + readout["b"])[..., 0]
    for t, picture in enumerate(shown(figure, rows, steps, "prediction")):
        np.testing.assert_allclose(picture, prediction[t], rtol=1e-12, atol=1e-15)


def test_the_lstm_channel_shown_is_the_one_recall_needs():
    """Clamp one channel's forget gate at 0.5 at a time: the shown channel costs the recall most."""
    cell, readout, _, _ = tasks.load("memory_lstm")
    for seed in SEEDS:
        inputs, targets, blank = video(seed)
        recall = slice(blank[-1] + 1, None)
        title = tasks.demo_figures(seed)["trained_lstm_gates.png"].get_suptitle()
        channel = int(re.search(r"state channel (\d+)", title).group(1))
        errors = []
        for k in range(cell.filters):
            clamped = tasks.clamp_forget_gate(cell, 0.5, channels=[k])
            p = tasks.predict(clamped, readout, inputs)[1]
            errors.append(float(np.mean((p - targets)[:, recall] ** 2)))
        assert int(np.argmax(errors)) == channel, (seed, errors)
