"""The edges of the cells and the time loops (issue 11, items 1-8): an empty batch, dtypes
refconv does not compute in, memory that is not there, first calls from several threads, a
failed call, numeric constructor arguments, ``REFCONV_THREADS``, float32 layer norm; and a
property test over random invalid arguments to the public API.

Each test covers the fast and the readable paths where both exist.
"""

import math
import threading

import numpy as np
import pytest
from conftest import jitter, leaves, random_state
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import refconv
from refconv import (ConvGRUCell, ConvLSTMCell, LSTMStateTuple, MultiRNNCell,
                     bidirectional_dynamic_rnn, bidirectional_dynamic_rnn_grad, dynamic_rnn,
                     dynamic_rnn_grad, gradcheck, layer_norm, layer_norm_backward,
                     reverse_sequence, stream_bidirectional_rnn, stream_rnn)
from refconv import memory
from refconv.dispatch import choose
from refconv.fast import pool

PATHS = [False, True]  # reference=False: the fast path; True: the readable steps


def make(kind, data_format="channels_last", seed=0):
    """A small built cell of ``kind`` with 2 input channels and parameters off their defaults."""
    def lstm(shape, filters):
        return ConvLSTMCell(shape, filters, [3] * len(shape), data_format=data_format)
    cell = {"lstm": lambda: lstm([5, 4], 3),
            "lstm_plain": lambda: ConvLSTMCell([5, 4], 3, [3, 3], normalize=False,
                                               peephole=False, data_format=data_format),
            "gru": lambda: ConvGRUCell([5, 4], 3, [3, 3], data_format=data_format),
            "multi": lambda: MultiRNNCell([lstm([5, 4], 3),
                                           ConvGRUCell([5, 4], 2, [3, 3],
                                                       data_format=data_format)])}[kind]()
    cell.build(2, seed=seed)
    jitter(cell, np.random.default_rng(seed))
    return cell


def frames(cell, batch, steps, dtype=np.float64, seed=1):
    frame = (*cell.shape, 2) if getattr(cell, "cells", [cell])[0].data_format == \
        "channels_last" else (2, *cell.shape)
    return np.random.default_rng(seed).standard_normal((batch, steps, *frame)).astype(dtype)


def shapes(tree):
    return [a.shape for a in leaves(tree)]


# --- 1. empty batch ----------------------------------------------------------------------

@pytest.mark.parametrize("reference", PATHS)
@pytest.mark.parametrize("kind", ["lstm", "lstm_plain", "gru", "multi"])
@pytest.mark.parametrize("data_format", ["channels_last", "channels_first"])
def test_empty_batch_gives_empty_results_everywhere(kind, data_format, reference):
    """B = 0: every entry point returns correctly shaped empty results, on either path."""
    cell = make(kind, data_format)
    x = frames(cell, 0, 3)
    out_shape = (0, 3, *cell.output_size)
    state0 = cell.zero_state(0)
    assert choose(cell, reference=reference).fast_forward == (not reference)

    h, state = cell(x[:, 0], state0, reference=reference)
    assert h.shape == (0, *cell.output_size) and shapes(state) == shapes(state0)

    outputs, final = dynamic_rnn(cell, x, reference=reference)
    assert outputs.shape == out_shape and shapes(final) == shapes(state0)
    outputs, final = dynamic_rnn(cell, x.swapaxes(0, 1), time_major=True, reference=reference,
                                 sequence_length=np.zeros(0, int))
    assert outputs.shape == (3, 0, *cell.output_size)
    layers_out, _ = dynamic_rnn(cell, x, reference=reference, return_all_layers=True)
    assert [a.shape[:2] for a in layers_out] == [(0, 3)] * len(getattr(cell, "cells", [cell]))

    (out_fw, out_bw), (s_fw, s_bw) = bidirectional_dynamic_rnn(cell, cell, x, reference=reference)
    assert out_fw.shape == out_bw.shape == out_shape and shapes(s_bw) == shapes(state0)

    seen = []
    final = stream_rnn(cell, iter(x.swapaxes(0, 1)), lambda t, h: seen.append(h.shape),
                       reference=reference)
    assert seen == [(0, *cell.output_size)] * 3 and shapes(final) == shapes(state0)
    s_fw, s_bw = stream_bidirectional_rnn(cell, cell, lambda t: x[:, t], 3, reference=reference)
    assert shapes(s_fw) == shapes(s_bw) == shapes(state0)

    d_out = np.zeros(out_shape)
    grads = dynamic_rnn_grad(cell, x, d_out, reference=reference)
    assert grads.inputs.shape == x.shape and shapes(grads.initial_state) == shapes(state0)
    # Nothing went in: every parameter's gradient is zero, in the parameters' shapes.
    assert shapes(grads.params) == shapes(cell.params)
    assert all(not a.any() for a in leaves(grads.params))
    grads = bidirectional_dynamic_rnn_grad(cell, cell, x, (d_out, d_out), reference=reference)
    assert grads.inputs.shape == x.shape and shapes(grads.params_fw) == shapes(cell.params)


# --- 2. float16 and longdouble -------------------------------------------------------------

REFUSED = [np.float16] + ([np.longdouble] if np.dtype(np.longdouble) != np.float64 else [])


@pytest.mark.parametrize("reference", PATHS)
@pytest.mark.parametrize("dtype", REFUSED, ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("kind", ["lstm", "gru"])
def test_float16_and_longdouble_are_refused(kind, dtype, reference):
    """A TypeError naming the dtype and saying to cast to float32 or float64, at every door."""
    cell = make(kind)
    x = frames(cell, 2, 3, dtype)
    name = np.dtype(dtype).name
    words = rf"got dtype {name}.*cast to float32 or float64"
    calls = [lambda: cell(x[:, 0], cell.zero_state(2), reference=reference),
             lambda: dynamic_rnn(cell, x, reference=reference),
             lambda: bidirectional_dynamic_rnn(cell, cell, x, reference=reference),
             lambda: stream_rnn(cell, iter(x.swapaxes(0, 1)), reference=reference),
             lambda: dynamic_rnn_grad(cell, x, np.zeros((2, 3, *cell.output_size), dtype),
                                      reference=reference),
             lambda: dynamic_rnn_grad(cell, x.astype(np.float64),
                                      np.zeros((2, 3, *cell.output_size), dtype),
                                      reference=reference)]
    for call in calls:
        with pytest.raises(TypeError, match=words):
            call()
    with pytest.raises(TypeError, match=rf"dtype: expected a floating-point dtype, got {name}"
                                        r".*cast to float32 or float64"):
        cell.zero_state(2, dtype)
    with pytest.raises(TypeError, match=rf"got dtype {name}.*cast to float32 or float64"):
        dynamic_rnn(cell, x.astype(np.float64),
                    initial_state=[a.astype(dtype) for a in leaves(cell.zero_state(2))][0]
                    if kind == "gru" else LSTMStateTuple(*(a.astype(dtype) for a in
                                                           cell.zero_state(2))),
                    reference=reference)


# --- 3. memory before work ------------------------------------------------------------------

def test_memory_error_at_once_with_the_estimate_on_a_real_machine():
    """Issue 11's call, 8000 times longer: refused at once with the estimate, MemAvailable
    and the way out, not after the kernel has killed the process."""
    x = np.broadcast_to(np.zeros((1, 1, 128, 128, 1)), (4, 2000 * 8000, 128, 128, 1))
    cell = ConvLSTMCell([128, 128], 16, [1, 1])
    with pytest.raises(MemoryError, match=r"dynamic_rnn: needs about [\d.]+ GiB .* GiB are "
                                          r"available \(MemAvailable.*stream_rnn.*fewer time "
                                          r"steps.*return_gates=False"):
        dynamic_rnn(cell, x, return_gates=True)
    assert cell.params is None  # refused before anything was built or allocated


@pytest.mark.parametrize("Cell", [ConvLSTMCell, ConvGRUCell])
def test_building_parameters_that_do_not_fit_is_refused_with_the_estimate(Cell):
    """100,000 filters of a 3x3 kernel: terabytes of weights, refused before drawing them."""
    cell = Cell([5, 4], 100_000, [3, 3])
    for build in (lambda: cell.build(2), lambda: dynamic_rnn(cell, np.ones((1, 2, 5, 4, 2)))):
        with pytest.raises(MemoryError, match=r"build: needs about [\d.]+ GiB .*MemAvailable.*"
                                              r"fewer filters"):
            build()
        assert cell.params is None and cell.in_channels is None


def test_a_huge_dilation_is_refused_with_the_estimate():
    """SAME padding of a kernel dilated 100,000 times pads each axis by 200,000: the padded
    input (600 GiB) is in the estimate, refused before the convolution allocates it."""
    cell = ConvLSTMCell([5, 4], 3, [3, 3], dilation_rate=100_000)
    with pytest.raises(MemoryError, match=r"dynamic_rnn: needs about [\d.]+ GiB"):
        dynamic_rnn(cell, np.ones((1, 2, 5, 4, 2)))


def small_memory(monkeypatch, available):
    monkeypatch.setattr(memory, "available_memory", lambda: available)


@pytest.mark.parametrize("reference", PATHS)
@pytest.mark.parametrize("call", ["dynamic_rnn", "return_gates", "all_layers", "bidirectional",
                                  "grad", "bidirectional_grad"])
def test_memory_error_when_the_call_does_not_fit(monkeypatch, call, reference):
    """With little memory available, every time loop and gradient refuses before working;
    with enough, the same call runs and holds no more than the estimate says."""
    cell = make("multi")
    x = frames(cell, 2, 6)
    d_out = np.ones((2, 6, *cell.output_size))
    run = {"dynamic_rnn": lambda: dynamic_rnn(cell, x, reference=reference),
           "return_gates": lambda: dynamic_rnn(cell, x, return_gates=True, reference=reference),
           "all_layers": lambda: dynamic_rnn(cell, x, return_all_layers=True,
                                             reference=reference),
           "bidirectional": lambda: bidirectional_dynamic_rnn(cell, cell, x,
                                                              reference=reference),
           "grad": lambda: dynamic_rnn_grad(cell, x, d_out, reference=reference),
           "bidirectional_grad": lambda: bidirectional_dynamic_rnn_grad(
               cell, cell, x, (d_out, d_out), reference=reference)}[call]
    expected = run()
    returned = sum(a.nbytes for a in leaves(expected))
    small_memory(monkeypatch, returned // 2)  # less than what the call returns
    with pytest.raises(MemoryError, match=r"needs about .* GiB .* GiB are available "
                                          r"\(MemAvailable"):
        run()
    small_memory(monkeypatch, None)  # no /proc/meminfo: nothing to check against
    for a, b in zip(leaves(run()), leaves(expected)):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("kind", ["lstm", "gru", "multi"])
def test_the_estimate_counts_what_a_run_returns(kind):
    """run_bytes is at least the bytes of the arrays the call hands back (outputs, gates;
    the input gradient and records for gradients), whatever the cell."""
    cell = make(kind)
    x = frames(cell, 3, 4)
    outputs, _, gates = dynamic_rnn(cell, x, return_gates=True)
    held = outputs.nbytes + sum(a.nbytes for a in leaves(gates))
    estimate = memory.run_bytes(cell, 3, 4, 8, return_gates=True)
    assert held <= estimate <= 4 * held
    assert memory.run_bytes(cell, 3, 4, 8, gradients=True) > memory.run_bytes(cell, 3, 4, 8)
    assert memory.run_bytes(cell, 3, 4, 4) * 2 == memory.run_bytes(cell, 3, 4, 8)


def test_compare_reads_memavailable_through_the_shared_helper():
    import importlib
    compare = importlib.import_module("refconv.compare")
    assert compare._available_memory is memory.available_memory
    available = memory.available_memory()
    if available is not None:
        with open("/proc/meminfo") as f:
            total = next(int(line.split()[1]) * 1024 for line in f
                         if line.startswith("MemTotal:"))
        assert 0 < available <= total


# --- 4. first call from several threads -----------------------------------------------------

@pytest.mark.parametrize("reference", PATHS)
@pytest.mark.parametrize("kind", ["lstm", "gru"])
def test_first_call_from_several_threads_builds_once(kind, reference):
    """Four threads call one unbuilt cell at once: the cell builds once, and every thread's
    output equals a serial call's with the weights the cell has, bit for bit."""
    Cell = ConvLSTMCell if kind == "lstm" else ConvGRUCell
    x = np.random.default_rng(2).standard_normal((2, 3, 24, 24, 3))
    for trial in range(8):
        cell = Cell([24, 24], 8, [5, 5])
        start = threading.Barrier(4)
        results, errors = [None] * 4, []

        def work(i):
            try:
                start.wait()
                results[i] = dynamic_rnn(cell, x, reference=reference)
            except Exception as error:  # noqa: BLE001 - reported below
                errors.append(error)

        threads = [threading.Thread(target=work, args=(i,)) for i in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert not errors
        serial = dynamic_rnn(cell, x, reference=reference)
        for result in results:
            for a, b in zip(leaves(result), leaves(serial)):
                np.testing.assert_array_equal(a, b, err_msg=f"trial {trial}")


# --- 5. a failed call leaves the cell as it was ---------------------------------------------

@pytest.mark.parametrize("reference", PATHS)
@pytest.mark.parametrize("kind", ["lstm", "gru"])
def test_failed_call_leaves_the_cell_as_it_was(kind, reference):
    built = make(kind)
    cell = type(built)(built.shape, built.filters, built.kernel)
    cell.params = {name: value.copy() for name, value in built.params.items()}  # by hand
    x = frames(cell, 2, 3)
    wrong = np.concatenate([x, x[..., :1]], axis=-1)  # 3 channels; the params want 2
    with pytest.raises(ValueError, match=r"expected shape"):
        dynamic_rnn(cell, wrong, reference=reference)
    with pytest.raises(ValueError, match=r"expected shape"):
        cell(wrong[:, 0], cell.zero_state(2), reference=reference)
    assert cell.in_channels is None
    expected = dynamic_rnn(built, x, reference=True)
    for a, b in zip(leaves(dynamic_rnn(cell, x, reference=reference)), leaves(expected)):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-12)
    assert cell.in_channels == 2

    # An unbuilt cell whose first call fails on another argument stays unbuilt.
    fresh = type(built)(built.shape, built.filters, built.kernel)
    bad_state = random_state(fresh, 5, np.random.default_rng(0))  # batch 5, not 2
    for call in (lambda: dynamic_rnn(fresh, x, initial_state=bad_state, reference=reference),
                 lambda: fresh(x[:, 0], bad_state, reference=reference),
                 lambda: stream_rnn(fresh, iter(x.swapaxes(0, 1)), initial_state=bad_state,
                                    reference=reference),
                 lambda: dynamic_rnn(fresh, x, sequence_length=[1, 2, 3], reference=reference)):
        with pytest.raises(ValueError):
            call()
        assert fresh.params is None and fresh.in_channels is None


# --- 6. numeric constructor arguments -------------------------------------------------------

@pytest.mark.parametrize("Cell", [ConvLSTMCell, ConvGRUCell])
@pytest.mark.parametrize("value, error", [(-1, ValueError), (0.0, ValueError),
                                          (math.nan, ValueError), (math.inf, ValueError),
                                          ("1e-3", TypeError), (None, TypeError),
                                          (True, TypeError), (1j, TypeError),
                                          (np.array([1e-3, 1e-3]), TypeError)])
def test_norm_epsilon_is_a_finite_number_above_zero(Cell, value, error):
    with pytest.raises(error, match=r"norm_epsilon: expected"):
        Cell([4], 2, [3], norm_epsilon=value)


@pytest.mark.parametrize("value, error", [(math.nan, ValueError), (math.inf, ValueError),
                                          (-math.inf, ValueError), ("1", TypeError),
                                          (None, TypeError), (np.array([1.0]), TypeError)])
def test_forget_bias_is_a_finite_number(value, error):
    with pytest.raises(error, match=r"forget_bias: expected"):
        ConvLSTMCell([4], 2, [3], forget_bias=value)


def test_numeric_constructor_arguments_that_are_fine_stay_fine():
    cell = ConvLSTMCell([4], np.int64(2), [np.int32(3)], forget_bias=np.float32(0.5),
                        norm_epsilon=np.float64(1e-5))
    assert (cell.filters, cell.kernel, cell.forget_bias, cell.norm_epsilon) == \
        (2, [3], 0.5, 1e-5)
    assert type(cell.norm_epsilon) is float and ConvGRUCell([4], 2, [3], norm_epsilon=1).norm_epsilon == 1.0


@pytest.mark.parametrize("value, error", [(0, ValueError), (-1e-6, ValueError),
                                          (math.nan, ValueError), ("1e-6", TypeError)])
def test_gradcheck_step_is_a_finite_number_above_zero(value, error):
    cell = make("lstm")
    with pytest.raises(error, match=r"eps: expected"):
        gradcheck(cell, frames(cell, 1, 2), eps=value, max_entries=2)
    with pytest.raises(ValueError, match=r"max_entries: expected an integer >= 1, got 0"):
        gradcheck(cell, frames(cell, 1, 2), max_entries=0)


@pytest.mark.parametrize("reference", PATHS)
def test_a_small_epsilon_gives_numbers_not_nan(reference):
    cell = ConvLSTMCell([5, 4], 3, [3, 3], norm_epsilon=1e-30)
    cell.build(2, seed=0)
    outputs, _ = dynamic_rnn(cell, frames(cell, 2, 3), reference=reference)
    assert np.isfinite(outputs).all()


# --- 7. REFCONV_THREADS ----------------------------------------------------------------------

@pytest.mark.parametrize("value", ["abc", "1.5", "0", "-1", "+2", "1e3", "2 threads", "²"])
def test_refconv_threads_must_be_a_positive_integer(monkeypatch, value):
    monkeypatch.setenv("REFCONV_THREADS", value)
    with pytest.raises(ValueError, match=r"REFCONV_THREADS: expected a positive integer.*"
                                         + repr(value).replace("+", r"\+")):
        pool.threads()
    cell = make("lstm")
    with pytest.raises(ValueError, match=r"REFCONV_THREADS"):
        dynamic_rnn(cell, frames(cell, 2, 2))  # the fast path
    dynamic_rnn(cell, frames(cell, 2, 2), reference=True)  # the readable path has no threads


def test_refconv_threads_is_capped_at_the_cores_this_process_may_use(monkeypatch):
    cores = len(__import__("os").sched_getaffinity(0))
    monkeypatch.setenv("REFCONV_THREADS", "1000")
    assert pool.threads() == cores
    monkeypatch.setenv("REFCONV_THREADS", " 1 ")
    assert pool.threads() == 1
    monkeypatch.setenv("REFCONV_THREADS", "")
    assert pool.threads() == cores
    monkeypatch.delenv("REFCONV_THREADS")
    assert pool.threads() == cores


# --- 8. float32 layer norm --------------------------------------------------------------------

def test_float32_layer_norm_accumulates_its_statistics_in_float64():
    """300x300 frames offset by 1e4: the float32 result is the float64 one rounded (to a few
    float32 ulps), forward and backward; float64 inputs give float64 results."""
    rng = np.random.default_rng(3)
    v = (1e4 + rng.standard_normal((2, 300, 300, 4))).astype(np.float32)
    gamma, beta = rng.standard_normal(4), rng.standard_normal(4)
    d_out = rng.standard_normal(v.shape).astype(np.float32)
    exact = layer_norm(v.astype(np.float64), gamma, beta)
    got = layer_norm(v, gamma.astype(np.float32), beta.astype(np.float32))
    assert got.dtype == np.float32
    assert np.abs(got - exact).max() < 1e-5 * np.abs(exact).max()
    exact_grads = layer_norm_backward(v.astype(np.float64), gamma, d_out.astype(np.float64))
    got_grads = layer_norm_backward(v, gamma.astype(np.float32), d_out)
    for a, b in zip(got_grads, exact_grads):
        assert a.dtype == np.float32
        assert np.abs(a - b).max() < 1e-5 * np.abs(b).max()


def test_float32_readable_path_keeps_the_small_differences():
    """Frames offset by 1e4 with small differences: the readable float32 state errs against
    float64 about what the float32 convolution alone costs (5e-7 measured), not ten times
    that (7.2e-6 with float32 statistics); the fast path's float64 statistics stay within
    its own float32 convolution's error."""
    cell = ConvLSTMCell([300, 300], 2, [3, 3])
    cell.build(1, seed=1)
    x = 1e4 + 0.01 * np.random.default_rng(0).standard_normal((1, 2, 300, 300, 1))
    error = {}
    for reference in PATHS:
        _, s64 = dynamic_rnn(cell, x, reference=reference)
        _, s32 = dynamic_rnn(cell, x.astype(np.float32), reference=reference)
        assert s32.c.dtype == np.float32
        error[reference] = np.abs(s32.c - s64.c).max()
    assert error[True] < 2e-6
    assert error[False] < 1e-4


# --- every invalid argument: only ValueError, TypeError, MemoryError --------------------------

BAD_VALUES = [None, 0, -1, 1.5, math.nan, math.inf, -math.inf, True, "3", "", "channels_last",
              b"x", 1j, [], [[]], [0], [-1], [1.5], [None], [1, 2, 3, 4], (2,), {}, {"a": 1},
              object(), slice(1), np.float16(1.0), np.array(math.nan),
              np.zeros((0,)), np.zeros((2, 3)), np.zeros((2, 3, 5, 4, 2), np.float16),
              np.zeros((2, 3, 5, 4, 2), np.int64), np.zeros((2, 3, 5, 4, 2), complex),
              np.zeros((2, 3, 5, 4, 2), object), np.zeros((2, 3, 5, 4, 7)),
              np.zeros((2, 3, 4, 5, 2)), np.zeros((3, 3, 5, 4, 3)), np.zeros((2, 5, 4, 3)),
              np.zeros((2, 5, 4, 2), np.float32), np.ones((2,), int) * 9, np.array([1, -1]),
              LSTMStateTuple(np.zeros((2, 5, 4, 3)), None), (np.zeros((2, 5, 4, 3)),) * 3,
              lambda *a: None, iter([]), 100_000, 10 ** 30]

CONSTRUCTOR_ARGUMENTS = {
    ConvLSTMCell: ["shape", "filters", "kernel", "forget_bias", "activation", "normalize",
                   "peephole", "data_format", "recurrent_activation", "strides", "padding",
                   "dilation_rate", "norm_epsilon"],
    ConvGRUCell: ["shape", "filters", "kernel", "activation", "normalize", "data_format",
                  "norm_epsilon"]}


def call_with(name, cell, bad, reference, x, d_out):
    """Call entry point ``name`` with one argument replaced by ``bad`` (chosen by
    ``bad[0]``, the position; ``bad[1]``, the value)."""
    position, value = bad
    state = cell.zero_state(2)

    def frame_at(t):  # the caller's function: its own error past the frames it has
        if t >= x.shape[1]:
            raise ValueError(f"no frame {t}")
        return x[:, t]
    args = {"cell": [lambda: cell(value, state, reference=reference),
                     lambda: cell(x[:, 0], value, reference=reference)],
            "dynamic_rnn": [lambda: dynamic_rnn(value, x, reference=reference),
                            lambda: dynamic_rnn(cell, value, reference=reference),
                            lambda: dynamic_rnn(cell, x, sequence_length=value),
                            lambda: dynamic_rnn(cell, x, initial_state=value),
                            lambda: dynamic_rnn(cell, x, dtype=value),
                            lambda: dynamic_rnn(cell, x, time_major=value)],
            "bidirectional": [lambda: bidirectional_dynamic_rnn(cell, value, x),
                              lambda: bidirectional_dynamic_rnn(cell, cell, value),
                              lambda: bidirectional_dynamic_rnn(cell, cell, x,
                                                                sequence_length=value),
                              lambda: bidirectional_dynamic_rnn(cell, cell, x,
                                                                initial_state_bw=value)],
            "stream": [lambda: stream_rnn(cell, value, reference=reference),
                       lambda: stream_rnn(cell, [value], reference=reference),
                       lambda: stream_rnn(cell, [x[:, 0]], initial_state=value),
                       lambda: stream_rnn(cell, [x[:, 0]], on_output=value),
                       lambda: stream_bidirectional_rnn(cell, cell, frame_at, value),
                       lambda: stream_bidirectional_rnn(cell, cell, value, 2)],
            "grad": [lambda: dynamic_rnn_grad(cell, value, d_out, reference=reference),
                     lambda: dynamic_rnn_grad(cell, x, value, reference=reference),
                     lambda: dynamic_rnn_grad(cell, x, d_out, value, reference=reference),
                     lambda: dynamic_rnn_grad(cell, x, d_out, sequence_length=value,
                                              reference=reference),
                     lambda: bidirectional_dynamic_rnn_grad(cell, cell, x, value,
                                                            reference=reference),
                     lambda: bidirectional_dynamic_rnn_grad(cell, cell, x, (d_out, d_out), value,
                                                            reference=reference),
                     lambda: gradcheck(cell, x, d_outputs=value, max_entries=2),
                     lambda: gradcheck(cell, x, eps=value, max_entries=2),
                     lambda: gradcheck(cell, x, max_entries=value)],
            "other": [lambda: cell.build(value),
                      lambda: cell.build(2, seed=value),
                      lambda: cell.zero_state(value),
                      lambda: cell.zero_state(2, value),
                      lambda: reverse_sequence(x, value),
                      lambda: reverse_sequence(value, None),
                      lambda: MultiRNNCell(value),
                      lambda: MultiRNNCell([cell, value])]}[name]
    return args[position % len(args)]()


def assert_refused_cleanly(call):
    """Either the call runs, or it raises ValueError, TypeError or a MemoryError with the
    estimate: nothing else (no AttributeError, IndexError, ZeroDivisionError, ...)."""
    try:
        call()
    except (ValueError, TypeError):
        pass
    except MemoryError as error:
        assert "GiB" in str(error) and "MemAvailable" in str(error), error


@settings(max_examples=300, deadline=None, suppress_health_check=list(HealthCheck))
@given(entry=st.sampled_from(["cell", "dynamic_rnn", "bidirectional", "stream", "grad", "other"]),
       kind=st.sampled_from(["lstm", "gru", "multi"]), position=st.integers(0, 20),
       bad=st.sampled_from(BAD_VALUES), reference=st.booleans())
def test_invalid_arguments_raise_only_value_type_or_memory_errors(entry, kind, position, bad,
                                                                 reference):
    cell = make(kind)
    cell_x = frames(cell, 2, 3)
    d_out = np.ones((2, 3, *cell.output_size))
    params_before = [a.copy() for a in leaves(cell.params)]
    assert_refused_cleanly(lambda: call_with(entry, cell, (position, bad), reference, cell_x,
                                             d_out))
    if entry != "other":  # only build() may change the parameters
        for a, b in zip(leaves(cell.params), params_before):
            np.testing.assert_array_equal(a, b)


@settings(max_examples=200, deadline=None)
@given(Cell=st.sampled_from([ConvLSTMCell, ConvGRUCell]), data=st.data(),
       bad=st.sampled_from(BAD_VALUES))
def test_invalid_constructor_arguments_raise_only_value_or_type_errors(Cell, data, bad):
    name = data.draw(st.sampled_from(CONSTRUCTOR_ARGUMENTS[Cell]))
    args = dict(shape=[5, 4], filters=3, kernel=[3, 3])
    args[name] = bad
    try:
        cell = Cell(**args)
    except (ValueError, TypeError):
        return
    # Accepted: then it computes (or refuses its input) cleanly too.
    assert_refused_cleanly(lambda: dynamic_rnn(cell, np.ones((1, 2, 5, 4, 2))))
    assert_refused_cleanly(lambda: dynamic_rnn(cell, np.ones((1, 2, 2, 5, 4))))


def test_the_public_api_is_what_the_property_tests_call():
    """A new public entry point must join the property tests."""
    called = {"ConvLSTMCell", "ConvGRUCell", "MultiRNNCell", "dynamic_rnn",
              "bidirectional_dynamic_rnn", "stream_rnn", "stream_bidirectional_rnn",
              "dynamic_rnn_grad", "bidirectional_dynamic_rnn_grad", "gradcheck",
              "reverse_sequence"}
    assert called <= set(dir(refconv))
