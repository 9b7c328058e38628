"""Streaming runs give what the whole-array functions give, holding one frame at a time."""

import numpy as np
import pytest

from refconv import (ConvGRUCell, ConvLSTMCell, LSTMStateTuple, MultiRNNCell,
                     bidirectional_dynamic_rnn, dynamic_rnn, stream_bidirectional_rnn,
                     stream_rnn)
from refconv._tree import tree_map


def assert_equal(a, b):
    tree_map(np.testing.assert_array_equal, a, b)


def make(kind, seed=0):
    if kind == "lstm":
        cell = ConvLSTMCell([6, 5], 3, [3, 3])
    elif kind == "gru":
        cell = ConvGRUCell([6, 5], 3, [3, 2], normalize=False)
    elif kind == "multi":
        cell = MultiRNNCell([ConvLSTMCell([6, 5], 3, [3, 3]), ConvGRUCell([6, 5], 2, [1, 3])])
    else:  # not on the fast path
        cell = ConvLSTMCell([6, 5], 3, [3, 3], dilation_rate=2)
    cell.build(2, seed=seed)
    return cell


@pytest.mark.parametrize("kind", ["lstm", "gru", "multi", "slow"])
@pytest.mark.parametrize("reference", [False, True])
def test_stream_rnn_equals_dynamic_rnn(kind, reference):
    cell = make(kind)
    rng = np.random.default_rng(1)
    inputs = rng.standard_normal((2, 5, 6, 5, 2))
    state = dynamic_rnn(cell, inputs[:, :1])[1]  # a non-zero initial state
    expected, final = dynamic_rnn(cell, inputs, initial_state=state, reference=reference)
    seen = []
    produced = []

    def frames():
        for t in range(inputs.shape[1]):
            produced.append(t)
            assert len(seen) == t  # one frame in flight: step t-1 was handed on first
            yield inputs[:, t]

    got = stream_rnn(cell, frames(), lambda t, h: seen.append((t, h.copy())), state,
                     reference=reference)
    assert [t for t, _ in seen] == list(range(5)) == produced
    assert_equal(np.stack([h for _, h in seen], axis=1), expected)
    assert_equal(got, final)


@pytest.mark.parametrize("kind", ["lstm", "gru"])
def test_stream_bidirectional_equals_bidirectional_dynamic_rnn(kind):
    cell = make(kind, seed=2)
    inputs = np.random.default_rng(3).standard_normal((2, 4, 6, 5, 2))
    (out_fw, out_bw), states = bidirectional_dynamic_rnn(cell, cell, inputs)
    seen = {"fw": {}, "bw": {}}
    calls = []

    def frame_at(t):
        calls.append(t)
        return inputs[:, t]

    got = stream_bidirectional_rnn(cell, cell, frame_at, 4,
                                   lambda d, t, h: seen[d].__setitem__(t, h.copy()))
    assert calls == [0, 1, 2, 3, 3, 2, 1, 0]
    assert_equal(np.stack([seen["fw"][t] for t in range(4)], axis=1), out_fw)
    assert_equal(np.stack([seen["bw"][t] for t in range(4)], axis=1), out_bw)
    assert_equal(got, states)


def test_float32_frames_stay_float32():
    cell = make("lstm")
    frames = [np.ones((1, 6, 5, 2), np.float32)] * 3
    out = []
    state = stream_rnn(cell, frames, lambda t, h: out.append(h.dtype))
    assert out == [np.float32] * 3 and state.c.dtype == np.float32


def test_bad_streams_are_refused_clearly():
    cell = make("lstm")
    good = np.zeros((1, 6, 5, 2))
    with pytest.raises(ValueError, match=r"frames\[2\]: expected shape \[1, 6, 5, 2\].*"
                                         r"got \[2, 6, 5, 2\]"):
        stream_rnn(cell, [good, good, np.zeros((2, 6, 5, 2))])
    with pytest.raises(ValueError, match=r"frames\[1\].*dtype float64.*float32"):
        stream_rnn(cell, [good, good.astype(np.float32)])
    with pytest.raises(ValueError, match=r"frames\[0\]: expected shape \[B, 6, 5, C\]"):
        stream_rnn(cell, [np.zeros((1, 5, 6, 2))])
    with pytest.raises(TypeError, match=r"frames\[0\]"):
        stream_rnn(cell, [np.zeros((1, 6, 5, 2), dtype=int)])
    with pytest.raises(ValueError, match="at least one frame"):
        stream_rnn(cell, [])
    state = LSTMStateTuple(np.zeros((1, 6, 5, 3)), np.zeros((1, 6, 5, 3)))
    assert stream_rnn(cell, iter(()), initial_state=state) is state
    with pytest.raises(ValueError, match=r"initial_state.c: expected shape \[2, 6, 5, 3\]"):
        stream_rnn(cell, [np.zeros((2, 6, 5, 2))], initial_state=state)
    with pytest.raises(ValueError, match="steps: expected an integer >= 1, got 0"):
        stream_bidirectional_rnn(cell, cell, lambda t: good, 0)
    with pytest.raises(TypeError, match="frame_at: expected a function"):
        stream_bidirectional_rnn(cell, cell, [good], 1)


@pytest.mark.parametrize("kind", ["lstm", "multi"])
def test_stream_bidirectional_starts_each_direction_from_its_own_state(kind):
    cell = make(kind, seed=4)
    rng = np.random.default_rng(5)
    inputs = rng.standard_normal((2, 3, 6, 5, 2))
    state_fw = dynamic_rnn(cell, inputs[:, :1])[1]
    state_bw = dynamic_rnn(cell, -inputs[:, 1:])[1]
    (out_fw, out_bw), states = bidirectional_dynamic_rnn(
        cell, cell, inputs, initial_state_fw=state_fw, initial_state_bw=state_bw)
    seen = {"fw": {}, "bw": {}}
    got = stream_bidirectional_rnn(cell, cell, lambda t: inputs[:, t], 3,
                                   lambda d, t, h: seen[d].__setitem__(t, h.copy()),
                                   initial_state_fw=state_fw, initial_state_bw=state_bw)
    assert_equal(np.stack([seen["fw"][t] for t in range(3)], axis=1), out_fw)
    assert_equal(np.stack([seen["bw"][t] for t in range(3)], axis=1), out_bw)
    assert_equal(got, states)
