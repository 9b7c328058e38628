"""The fast path (refconv.fast) against the readable step functions, to 1e-12 in float64.

``dynamic_rnn(..., reference=True)`` runs lstm_step/gru_step, one equation per
line over whole frames; the default runs refconv.fast, chunked, gate-major and
threaded. Both must give the same numbers, for every option, geometry and
chunking (tiny chunk and group sizes, passed to the fast path as arguments,
force frames split into many chunks, chunks that hold several frames, and many
groups).
"""

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import refconv
from conftest import jitter, leaves, random_state
from refconv import (ConvGRUCell, ConvLSTMCell, MultiRNNCell, bidirectional_dynamic_rnn,
                     dynamic_rnn, fast, reverse_sequence)
from refconv.dispatch import Path, choose

RTOL, ATOL = 1e-12, 1e-13


def assert_close(fast, reference, rtol=RTOL, atol=ATOL):
    for a, b in zip(leaves(fast), leaves(reference), strict=True):
        assert a.shape == b.shape and a.dtype == b.dtype
        np.testing.assert_allclose(a, b, rtol=rtol, atol=atol)


def randomise(cell, rng):
    """Non-zero biases, gammas away from 1, betas away from 0: defaults hide bugs."""
    jitter(cell, rng)


def fast_run(cell, inputs, lengths, state, chunk_bytes=fast.CHUNK_BYTES,
             group_bytes=fast.GROUP_BYTES):
    """``dynamic_rnn`` (batch-major) on the fast path, with the chunk plan's sizes given."""
    params = cell._prepare(inputs.shape, ["B", "T"], inputs.dtype, "inputs")
    if state is None:
        state = cell.zero_state(inputs.shape[0], inputs.dtype)
    outputs = np.zeros((*inputs.shape[:2], *cell.output_size), inputs.dtype)
    final = fast.run_sequence(cell, params, inputs, lengths, state, outputs,
                              chunk_bytes=chunk_bytes, group_bytes=group_bytes)
    return outputs, final


def frames(cell, batch, steps, channels, rng):
    shape = list(cell.shape)
    frame = ([*shape, channels] if cell.cells[0].data_format == "channels_last"
             else [channels, *shape]) if isinstance(cell, MultiRNNCell) else \
        ([*shape, channels] if cell.data_format == "channels_last" else [channels, *shape])
    return rng.standard_normal((batch, steps, *frame))


def grad_with_plan(grad, cell, inputs, d_outputs, state, d_state, case):
    """``fast.lstm_grad`` or ``fast.gru_grad`` (``grad``) with the case's drawn chunk plan,
    as RNNGradients in the inputs' layout (time-major when the case is)."""
    time_major = case["time_major"]
    x_bt, d_out_bt = ((inputs.swapaxes(0, 1), d_outputs.swapaxes(0, 1)) if time_major
                      else (inputs, d_outputs))
    params = cell._checked_params(inputs.dtype)
    d_inputs, d_state0, d_params = grad(cell, params, x_bt, d_out_bt, state, d_state,
                                        chunk_bytes=case["chunk"], group_bytes=case["group"])
    return refconv.RNNGradients(d_inputs.swapaxes(0, 1) if time_major else d_inputs,
                                d_state0, d_params)


@st.composite
def cases(draw):
    n = draw(st.integers(1, 3))
    shape = draw(st.lists(st.integers(1, 6), min_size=n, max_size=n))
    kernel = draw(st.lists(st.integers(1, 4), min_size=n, max_size=n))
    kind = draw(st.sampled_from(["lstm", "gru"]))
    options = dict(normalize=draw(st.booleans()),
                   data_format=draw(st.sampled_from(["channels_last", "channels_first"])))
    if kind == "lstm":
        options.update(peephole=draw(st.booleans()),
                       forget_bias=draw(st.sampled_from([0.0, 1.0, -0.7])))
    return dict(kind=kind, shape=shape, kernel=kernel, options=options,
                filters=draw(st.integers(1, 4)), channels=draw(st.integers(1, 3)),
                batch=draw(st.integers(1, 3)), steps=draw(st.integers(1, 4)),
                chunk=draw(st.sampled_from([1, 300, 3000, fast.CHUNK_BYTES])),
                group=draw(st.sampled_from([1, 2000, fast.GROUP_BYTES])),
                lengths=draw(st.booleans()), seed=draw(st.integers(0, 2**16)))


@settings(max_examples=150, deadline=None, derandomize=True)
@given(cases())
def test_fast_path_equals_the_readable_steps(case):
    rng = np.random.default_rng(case["seed"])
    cls = ConvLSTMCell if case["kind"] == "lstm" else ConvGRUCell
    cell = cls(case["shape"], case["filters"], case["kernel"], **case["options"])
    cell.build(case["channels"], seed=case["seed"])
    randomise(cell, rng)
    inputs = frames(cell, case["batch"], case["steps"], case["channels"], rng)
    state = random_state(cell, case["batch"], rng)
    lengths = (rng.integers(0, case["steps"] + 1, case["batch"]) if case["lengths"] else None)
    reference = dynamic_rnn(cell, inputs, lengths, state, reference=True)
    assert_close(fast_run(cell, inputs, lengths, state, case["chunk"], case["group"]), reference)


@pytest.mark.parametrize("kind", ["lstm", "gru", "multi"])
def test_bidirectional_with_shared_weights_and_lengths(kind):
    rng = np.random.default_rng(3)
    if kind == "lstm":
        cell = ConvLSTMCell([7, 5], 3, [3, 2])
    elif kind == "gru":
        cell = ConvGRUCell([7, 5], 3, [2, 3])
    else:
        cell = MultiRNNCell([ConvLSTMCell([7, 5], 3, [3, 3], peephole=False),
                             ConvGRUCell([7, 5], 2, [1, 3], normalize=False)])
    cell.build(2, seed=4)
    randomise(cell, rng)
    inputs = frames(cell, 3, 6, 2, rng)
    lengths = np.array([6, 2, 0])
    fast_outputs = bidirectional_dynamic_rnn(cell, cell, inputs, lengths)
    reference = bidirectional_dynamic_rnn(cell, cell, inputs, lengths, reference=True)
    assert_close(fast_outputs, reference)
    # Each direction again, in chunks of about 2000 bytes.
    out_fw, state_fw = fast_run(cell, inputs, lengths, None, chunk_bytes=2000)
    out_bw, state_bw = fast_run(cell, reverse_sequence(inputs, lengths), lengths, None,
                                chunk_bytes=2000)
    assert_close(((out_fw, reverse_sequence(out_bw, lengths)), (state_fw, state_bw)), reference)


def test_other_activations_take_the_generic_path():
    rng = np.random.default_rng(5)
    cell = ConvLSTMCell([6, 4], 3, [3, 3], activation="relu", recurrent_activation="hard_sigmoid")
    cell.build(2, seed=1)
    randomise(cell, rng)
    inputs = frames(cell, 2, 4, 2, rng) * 3  # reach the hard sigmoid's flat parts
    assert_close(dynamic_rnn(cell, inputs), dynamic_rnn(cell, inputs, reference=True))


def test_one_step_call_is_the_fast_path_and_equals_lstm_step():
    rng = np.random.default_rng(6)
    cell = ConvLSTMCell([9, 8], 4, [3, 3])
    cell.build(3, seed=2)
    randomise(cell, rng)
    x = rng.standard_normal((2, 9, 8, 3))
    state = random_state(cell, 2, rng)
    h, new_state = cell(x, state)
    params = cell._checked_params(x.dtype)
    h_ref, state_ref, _ = refconv.lstm_step(x, state, params, cell)
    assert_close((h, new_state), (h_ref, state_ref))


@pytest.mark.parametrize("kind", ["lstm", "gru"])
def test_inputs_states_and_params_are_not_modified(kind):
    """The runner updates its state in place: it must never be the caller's arrays.

    F = 1 and B = 1 make the state's gate-major transpose already contiguous,
    the case where a careless ``ascontiguousarray`` would alias it.
    """
    rng = np.random.default_rng(7)
    for data_format in ("channels_last", "channels_first"):
        cell = (ConvLSTMCell([4, 3], 1, [3, 3], data_format=data_format) if kind == "lstm"
                else ConvGRUCell([4, 3], 1, [3, 3], data_format=data_format))
        cell.build(2, seed=3)
        randomise(cell, rng)
        inputs = frames(cell, 1, 3, 2, rng)
        state = random_state(cell, 1, rng)
        copies = [a.copy() for a in leaves((inputs, state, cell.params))]
        fast = dynamic_rnn(cell, inputs, initial_state=state)
        for before, after in zip(copies, leaves((inputs, state, cell.params))):
            np.testing.assert_array_equal(before, after)
        assert_close(fast, dynamic_rnn(cell, inputs, initial_state=state, reference=True))


def test_threads_do_not_change_the_bits(monkeypatch):
    """Each chunk is computed the same way whichever thread runs it, and the
    statistics are combined in chunk order: 1 and 2 threads give equal bits."""
    rng = np.random.default_rng(8)
    cell = ConvLSTMCell([16, 12], 4, [3, 3])
    cell.build(3, seed=5)
    randomise(cell, rng)
    inputs = frames(cell, 2, 3, 3, rng)
    results = []
    for n in ("1", "2"):
        monkeypatch.setenv("REFCONV_THREADS", n)
        results.append(fast_run(cell, inputs, None, None, chunk_bytes=4000))
    for a, b in zip(leaves(results[0]), leaves(results[1])):
        np.testing.assert_array_equal(a, b)


def test_the_pool_leaves_numpys_blas_threads_as_it_found_them(monkeypatch):
    """Inside the pool each thread's products run on one BLAS thread (two threads each
    calling a 2-thread BLAS would run four on two cores); after the call the process's
    count is the caller's again, for the user's own products. Oracle: OpenBLAS's own
    ``get_num_threads``, read inside and after."""
    from refconv.fast import pool

    if pool.blas_threads.get is None:
        pytest.skip("NumPy's OpenBLAS C API was not found (another BLAS): nothing is set")
    if pool._cores() < 2:
        pytest.skip("one core: the fast path runs no pool")
    monkeypatch.setenv("REFCONV_THREADS", "2")
    before = pool.blas_threads.count()
    try:
        for caller in (2, 1, 2):
            pool.blas_threads.set(caller)
            inside = pool.parallel_map(lambda _: pool.blas_threads.count(), range(4))
            assert inside == [1, 1, 1, 1]
            assert pool.blas_threads.count() == caller
            # A whole run on the fast path (several chunks, so the pool runs) too.
            cell = ConvLSTMCell([16, 12], 4, [3, 3])
            cell.build(3, seed=5)
            fast_run(cell, frames(cell, 2, 2, 3, np.random.default_rng(1)), None, None,
                     chunk_bytes=4000)
            assert pool.blas_threads.count() == caller
            # An exception inside the pool restores it as well.
            with pytest.raises(ZeroDivisionError):
                pool.parallel_map(lambda i: 1 / 0, range(2))
            assert pool.blas_threads.count() == caller
    finally:
        pool.blas_threads.set(before)


def test_float32_fast_path_stays_near_float64():
    rng = np.random.default_rng(9)
    cell = ConvLSTMCell([12, 10], 4, [3, 3])
    cell.build(3, seed=6)
    randomise(cell, rng)
    inputs = frames(cell, 2, 5, 3, rng)
    out64, state64 = dynamic_rnn(cell, inputs, reference=True)
    out32, state32 = dynamic_rnn(cell, inputs.astype(np.float32))
    assert out32.dtype == state32.c.dtype == np.float32
    np.testing.assert_allclose(out32, out64, rtol=0, atol=2e-5)
    np.testing.assert_allclose(state32.c, state64.c, rtol=0, atol=2e-5)


def test_unsupported_cells_run_the_readable_steps():
    cell = ConvLSTMCell([8, 8], 2, [3, 3], strides=2)
    assert not fast.supports(cell)
    assert fast.supports(MultiRNNCell([ConvLSTMCell([8, 8], 2, [3, 3]),
                                        ConvGRUCell([8, 8], 2, [3, 3])]))
    rng = np.random.default_rng(10)
    cell.build(1, seed=0)
    inputs = frames(cell, 1, 2, 1, rng)
    np.testing.assert_array_equal(dynamic_rnn(cell, inputs)[0],
                                  dynamic_rnn(cell, inputs, reference=True)[0])


# --- the fast backward (refconv.fast.lstm_grad) against the readable one ---------------------

@st.composite
def grad_cases(draw, lstm):
    """A random run for a gradient test; the LSTM's also draws peephole and forget_bias."""
    n = draw(st.integers(1, 3))
    case = dict(shape=draw(st.lists(st.integers(1, 6), min_size=n, max_size=n)),
                kernel=draw(st.lists(st.integers(1, 4), min_size=n, max_size=n)),
                normalize=draw(st.booleans()))
    if lstm:
        case["peephole"] = draw(st.booleans())
    case["data_format"] = draw(st.sampled_from(["channels_last", "channels_first"]))
    if lstm:
        case["forget_bias"] = draw(st.sampled_from([0.0, 1.0]))
    case.update(filters=draw(st.integers(1, 3)), channels=draw(st.integers(1, 3)),
                batch=draw(st.integers(1, 3)), steps=draw(st.integers(1, 3)),
                chunk=draw(st.sampled_from([1, 300, 3000, fast.CHUNK_BYTES])),
                group=draw(st.sampled_from([1, 2000, fast.GROUP_BYTES])),
                time_major=draw(st.booleans()), seed=draw(st.integers(0, 2**16)))
    return case


@settings(max_examples=120, deadline=None, derandomize=True)
@given(grad_cases(lstm=True))
def test_fast_lstm_gradients_equal_the_readable_backward(case):
    rng = np.random.default_rng(case["seed"])
    cell = ConvLSTMCell(case["shape"], case["filters"], case["kernel"],
                        normalize=case["normalize"], peephole=case["peephole"],
                        forget_bias=case["forget_bias"], data_format=case["data_format"])
    cell.build(case["channels"], seed=case["seed"])
    randomise(cell, rng)
    inputs = frames(cell, case["batch"], case["steps"], case["channels"], rng)
    state = random_state(cell, case["batch"], rng)
    d_outputs = rng.standard_normal((case["batch"], case["steps"], *cell.output_size))
    d_state = random_state(cell, case["batch"], rng)
    if case["time_major"]:
        inputs, d_outputs = inputs.swapaxes(0, 1), d_outputs.swapaxes(0, 1)
    args = (cell, inputs, d_outputs, d_state)
    kwargs = dict(initial_state=state, time_major=case["time_major"])
    assert fast.supports_backward(cell, None)
    assert choose(cell, gradients=True) == Path(True, True)
    reference = refconv.dynamic_rnn_grad(*args, **kwargs, reference=True)
    fast_grads = grad_with_plan(fast.lstm_grad, cell, inputs, d_outputs, state, d_state, case)
    assert fast_grads.inputs.shape == inputs.shape
    assert_gradients_close(fast_grads, reference, case)


def assert_gradients_close(fast_grads, reference, case):
    """Each tensor to 1e-12 of its own scale, nothing finer than 1e-15 of the largest gradient.

    Layer norm over a frame of 1 or 2 numbers gives beta (or +-1) whatever its input: the
    gradient through it is zero but for norm_epsilon, and its rounding noise is amplified
    by 1 / std (up to 1 / sqrt(norm_epsilon) = 1e6) in both codes, so there nothing
    finer than 1e-12 of the largest gradient.
    """
    overall = max(np.abs(b).max(initial=0.0) for b in leaves(reference))
    assert overall > 0
    degenerate = case["normalize"] and case["filters"] * np.prod(case["shape"]) <= 2
    floor = 1.0 if degenerate else 1e-3
    for a, b in zip(leaves(fast_grads), leaves(reference), strict=True):
        assert a.shape == b.shape and a.dtype == b.dtype
        scale = max(np.abs(b).max(initial=0.0), floor * overall)
        np.testing.assert_allclose(a, b, rtol=0, atol=1e-12 * scale)


def test_fast_backward_is_used_only_where_it_applies():
    assert fast.supports_backward(ConvLSTMCell([4, 4], 2, [3, 3]), None)
    assert not fast.supports_backward(ConvLSTMCell([4, 4], 2, [3, 3]), np.array([2, 1]))
    assert not fast.supports_backward(ConvLSTMCell([4, 4], 2, [3, 3], activation="relu"), None)
    assert not fast.supports_backward(ConvLSTMCell([4, 4], 2, [3, 3], strides=2), None)
    assert fast.supports_backward(ConvGRUCell([4, 4], 2, [3, 3]), None)
    assert not fast.supports_backward(ConvGRUCell([4, 4], 2, [3, 3]), np.array([2, 1]))
    assert not fast.supports_backward(ConvGRUCell([4, 4], 2, [3, 3], activation="relu"), None)
    stack = MultiRNNCell([ConvGRUCell([4, 4], 2, [3, 3]), ConvGRUCell([4, 4], 2, [3, 3])])
    assert not fast.supports_backward(stack, None)


def bit_equal(a, b):
    for x, y in zip(leaves(a), leaves(b), strict=True):
        assert x.shape == y.shape and x.dtype == y.dtype
        np.testing.assert_array_equal(x, y)


@pytest.mark.parametrize("kind", ["lstm", "gru"])
@pytest.mark.parametrize("data_format", ["channels_last", "channels_first"])
def test_a_workspace_changes_no_bit_and_is_reused(kind, data_format):
    """Gradients through a reused Workspace equal those of fresh memory bit for bit (the
    oracle: the same call without one, itself held to the readable backward above), even
    when the kept records hold garbage (NaN) from before; a second call at the same sizes
    takes every array it needs from the workspace and gives each back."""
    rng = np.random.default_rng(41)
    if kind == "lstm":
        cell = ConvLSTMCell([7, 5], 3, [3, 2], normalize=True, peephole=True, forget_bias=0.5,
                            data_format=data_format)
    else:
        cell = ConvGRUCell([7, 5], 3, [3, 2], normalize=True, data_format=data_format)
    cell.build(2, seed=3)
    randomise(cell, rng)
    inputs = frames(cell, 3, 4, 2, rng)
    d_outputs = rng.standard_normal((3, 4, *cell.output_size))
    d_state = random_state(cell, 3, rng)
    # A small chunk plan: several chunks and groups a step, so records are written in parts.
    sizes = dict(chunk_bytes=2000, group_bytes=4000)
    params = cell._checked_params(inputs.dtype)
    state = cell.zero_state(3, inputs.dtype)
    grad = fast.lstm_grad if kind == "lstm" else fast.gru_grad
    fresh = grad(cell, params, inputs, d_outputs, state, d_state, **sizes)

    ws = fast.Workspace()
    first = grad(cell, params, inputs, d_outputs, state, d_state, workspace=ws, **sizes)
    bit_equal(first, fresh)
    kept = {a.ctypes.data: a for arrays in ws._free.values() for a in arrays}  # by address
    per_step = 3   # LSTM: h_prev, c_prev, y; GRU: h_prev, y_gates, y_candidate
    assert len(kept) > 4 * per_step   # the records and the runner's and backward's buffers
    nbytes = ws.nbytes
    for a in kept.values():
        a.fill(np.nan)                                        # what a previous user left
    again = grad(cell, params, inputs, d_outputs, state, d_state, workspace=ws, **sizes)
    bit_equal(again, fresh)
    assert {a.ctypes.data for arrays in ws._free.values() for a in arrays} == set(kept)
    assert ws.nbytes == nbytes
    ws.clear()
    assert ws.nbytes == 0

    # Through the public function (the fast path), and for both directions at once; the
    # readable backward (reference=True) is the independent oracle of what they compute.
    public = refconv.dynamic_rnn_grad(cell, inputs, d_outputs, d_state)
    assert_close(public, refconv.dynamic_rnn_grad(cell, inputs, d_outputs, d_state,
                                                  reference=True))
    bit_equal(refconv.dynamic_rnn_grad(cell, inputs, d_outputs, d_state, workspace=ws), public)
    assert ws.nbytes > 0
    d_bw = rng.standard_normal(d_outputs.shape)
    both = refconv.bidirectional_dynamic_rnn_grad(cell, cell, inputs, (d_outputs, d_bw))
    bit_equal(refconv.bidirectional_dynamic_rnn_grad(cell, cell, inputs, (d_outputs, d_bw),
                                                     workspace=ws), both)


@pytest.mark.parametrize("normalize", [False, True])
def test_fast_lstm_backward_where_the_output_gate_underflows_to_zero(normalize):
    """The backward takes tanh(c) as h / z_o: where the sigmoid has underflowed to z_o = 0
    (an output-gate input near -800, half the pixels) the gradients stay finite and equal
    the readable backward's (the oracle), which computes tanh(c) itself."""
    rng = np.random.default_rng(8)
    cell = ConvLSTMCell([6, 5], 2, [3, 3], normalize=normalize, peephole=True)
    cell.build(2, seed=1)
    randomise(cell, rng)
    inputs = frames(cell, 2, 3, 2, rng)
    if normalize:   # LN(z_o) ~ N(0, 1) * gamma + beta: a beta of -800 puts it there
        cell.params["z_o/beta"] = np.full(2, -800.0)
    else:           # the kernel's z_o block (the last F output channels) and its bias
        cell.params["bias"][-2:] = -800.0
    d_outputs = rng.standard_normal((2, 3, *cell.output_size))
    d_state = random_state(cell, 2, rng)
    outputs, _ = dynamic_rnn(cell, inputs)
    assert np.all(outputs == 0)   # every z_o is 0: h = 0 * tanh(c)
    fast_grads = refconv.dynamic_rnn_grad(cell, inputs, d_outputs, d_state)
    assert all(np.all(np.isfinite(a)) for a in leaves(fast_grads))
    assert_close(fast_grads, refconv.dynamic_rnn_grad(cell, inputs, d_outputs, d_state,
                                                      reference=True))


def test_a_workspace_keeps_only_the_last_sizes_and_counts_as_memory(monkeypatch):
    """After a call, the workspace holds the arrays of the sizes that call asked for, no
    others (a loop whose batch changes does not pile up memory); the memory check before a
    call counts what it holds as reusable: a call that needs 1 byte more than is available
    is refused without a workspace and runs with one that holds its arrays."""
    from refconv import memory

    rng = np.random.default_rng(5)
    cell = ConvLSTMCell([6, 5], 2, [3, 3], normalize=True, peephole=True)
    cell.build(2, seed=0)
    x3, x2 = frames(cell, 3, 4, 2, rng), frames(cell, 2, 4, 2, rng)
    d3, d2 = (rng.standard_normal((b, 4, *cell.output_size)) for b in (3, 2))
    only_two = fast.Workspace()
    refconv.dynamic_rnn_grad(cell, x2, d2, workspace=only_two)
    ws = fast.Workspace()
    refconv.dynamic_rnn_grad(cell, x3, d3, workspace=ws)
    refconv.dynamic_rnn_grad(cell, x2, d2, workspace=ws)
    assert ws.nbytes == only_two.nbytes > 0

    needed = []
    monkeypatch.setattr(memory, "require", lambda n, what, way_out: needed.append(n))
    refconv.dynamic_rnn_grad(cell, x2, d2)
    monkeypatch.undo()
    monkeypatch.setattr(memory, "available_memory", lambda: needed[-1] - 1)
    with pytest.raises(MemoryError, match=r"dynamic_rnn_grad: needs about"):
        refconv.dynamic_rnn_grad(cell, x2, d2)
    refconv.dynamic_rnn_grad(cell, x2, d2, workspace=ws)
    with pytest.raises(MemoryError):   # the readable steps do not use the workspace
        refconv.dynamic_rnn_grad(cell, x2, d2, workspace=ws, reference=True)
    with pytest.raises(TypeError, match=r"workspace: expected a refconv.fast.Workspace or None"):
        refconv.bidirectional_dynamic_rnn_grad(cell, cell, x2, (d2, d2), workspace=[])


def test_a_workspace_of_another_type_is_refused():
    cell = ConvLSTMCell([4, 4], 2, [3, 3])
    cell.build(1, seed=0)
    x = np.zeros((1, 2, 4, 4, 1))
    with pytest.raises(TypeError, match=r"workspace: expected a refconv.fast.Workspace or None, "
                                        r"got dict"):
        refconv.dynamic_rnn_grad(cell, x, np.zeros((1, 2, 4, 4, 2)), workspace={})
    ws = fast.Workspace()
    a = ws.empty((2, 3), np.float32)
    assert a.shape == (2, 3) and a.dtype == np.float32
    ws.give(a)
    assert ws.empty((3, 2), np.float32).base is a.base       # same size and dtype: reused
    assert "MiB kept" in repr(ws)


# --- the GRU's fast backward (refconv.fast.gru_grad) against gru_step_backward ---------------

@settings(max_examples=120, deadline=None, derandomize=True)
@given(grad_cases(lstm=False))
def test_fast_gru_gradients_equal_the_readable_backward(case):
    rng = np.random.default_rng(case["seed"])
    cell = ConvGRUCell(case["shape"], case["filters"], case["kernel"],
                       normalize=case["normalize"], data_format=case["data_format"])
    cell.build(case["channels"], seed=case["seed"])
    randomise(cell, rng)   # non-zero biases, gamma off 1, beta off 0
    inputs = frames(cell, case["batch"], case["steps"], case["channels"], rng)
    state = random_state(cell, case["batch"], rng)
    d_outputs = rng.standard_normal((case["batch"], case["steps"], *cell.output_size))
    d_state = random_state(cell, case["batch"], rng)
    if case["time_major"]:
        inputs, d_outputs = inputs.swapaxes(0, 1), d_outputs.swapaxes(0, 1)
    args = (cell, inputs, d_outputs, d_state)
    kwargs = dict(initial_state=state, time_major=case["time_major"])
    assert choose(cell, gradients=True) == Path(True, True)
    reference = refconv.dynamic_rnn_grad(*args, **kwargs, reference=True)
    # The default path runs gru_grad with the default chunk plan ...
    default = refconv.dynamic_rnn_grad(*args, **kwargs)
    # ... and with the drawn one (tiny chunks split frames into rows; tiny groups, many groups).
    drawn = grad_with_plan(fast.gru_grad, cell, inputs, d_outputs, state, d_state, case)
    assert list(drawn.params) == list(reference.params)
    for fast_grads in (default, drawn):
        assert_gradients_close(fast_grads, reference, case)


@pytest.mark.parametrize("normalize", [True, False])
@pytest.mark.parametrize("shape, kernel, data_format", [([5], [4], "channels_first"),
                                                       ([4, 3], [2, 3], "channels_last"),
                                                       ([3, 2, 3], [2, 1, 3], "channels_first")])
def test_fast_gru_backward_passes_finite_differences(shape, kernel, data_format, normalize):
    """Independent of the readable backward: central differences of the readable forward."""
    rng = np.random.default_rng(len(shape) + 10 * normalize)
    cell = ConvGRUCell(shape, 2, kernel, normalize=normalize, data_format=data_format)
    cell.build(2, seed=3)
    randomise(cell, rng)
    inputs = frames(cell, 2, 2, 2, rng)
    report = refconv.gradcheck(cell, inputs, fast=True, max_entries=12, seed=4)
    assert report.fast_errors is not None and set(report.fast_errors) == set(report.errors)
    assert max(report.fast_errors.values()) < 1e-7, str(report)
    assert report.passed(), str(report)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_fast_activations_against_scipy_and_numpy(dtype):
    """The fast path's sigmoid (``1 / (1 + exp(-v))``, in place) against SciPy's ``expit``
    (an independent oracle: it evaluates the two halves of the line separately) to a few
    units in the last place, its limits exact where ``exp`` overflows, and no warning;
    tanh is NumPy's own, bit for bit; the backward's tanh through ``exp`` to rounding."""
    import warnings

    from scipy.special import expit

    from refconv.activations import sigmoid, tanh
    from refconv.fast.runner import activate, activate_affine_by_exp

    rng = np.random.default_rng(7)
    big = 1000.0 if dtype == np.float64 else 100.0  # past exp's overflow either way
    v = np.concatenate([rng.standard_normal(5000) * 8, [0.0, -big, big, -30.0, 30.0,
                                                        1e-300, -1e-300]]).astype(dtype)
    eps = np.finfo(dtype).eps
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # an overflow warning would fail the test
        got = v.copy()
        activate(sigmoid, got)
        again = np.empty_like(v)
        activate_affine_by_exp(sigmoid, v, 1.0, 0.0, again)
        t = v.copy()
        activate(tanh, t)
        t_exp = np.empty_like(v)
        activate_affine_by_exp(tanh, v, 1.0, 0.0, t_exp)
        # The affine pass: fn(v * scale + offset), per channel as the backward calls it.
        scale = np.array([0.5, -1.5, 2.0], dtype)[:, None]
        offset = np.array([0.25, 0.0, -1.0], dtype)[:, None]
        w = v[:3 * (v.size // 3)].reshape(3, -1)
        s_affine, t_affine = np.empty_like(w), np.empty_like(w)
        activate_affine_by_exp(sigmoid, w, scale, offset, s_affine)
        activate_affine_by_exp(tanh, w, scale, offset, t_affine)
    expected = expit(v.astype(np.float64))
    assert got.dtype == dtype
    # Below the smallest normal number, exp(-v) has overflowed: 0 where expit is subnormal.
    np.testing.assert_allclose(got, expected, rtol=4 * eps, atol=np.finfo(dtype).tiny)
    assert got[v == -big][0] == 0.0 and got[v == big][0] == 1.0
    np.testing.assert_array_equal(again, got)   # the backward redoes the forward's bits
    np.testing.assert_array_equal(t, np.tanh(v))
    np.testing.assert_allclose(t_exp, np.tanh(v.astype(np.float64)), rtol=0, atol=4 * eps)
    # The affine pass rounds as w * scale + offset in the dtype does (the folded -1 and 2
    # are exact): the oracles take that rounded argument.
    a = (w * scale + offset).astype(np.float64)
    np.testing.assert_allclose(s_affine, expit(a), rtol=4 * eps, atol=np.finfo(dtype).tiny)
    np.testing.assert_allclose(t_affine, np.tanh(a), rtol=0, atol=4 * eps)


@st.composite
def chunk_convolutions(draw):
    n = draw(st.integers(2, 3))
    shape = draw(st.lists(st.integers(1, 7), min_size=n, max_size=n))
    kernel = draw(st.lists(st.integers(1, 4), min_size=n, max_size=n))
    return dict(shape=shape, kernel=kernel, batch=draw(st.integers(1, 3)),
                channels=draw(st.integers(1, 4)), out=draw(st.integers(1, 9)),
                chunk_bytes=draw(st.sampled_from([64, 512, 4096, 2**20])),
                seed=draw(st.integers(0, 2**16)))


def _x_in_its_padded_buffer(case):
    """A drawn case's input, as the chunk convolution and the kernel gradient read it.

    Returns ``(rng, x, kernel, layout, buffer)``: ``x`` ``[B, *S, C]`` and ``kernel``
    ``[*k, C, N]`` drawn from the case's seed in that order (``rng`` goes on for more
    draws), the case's chunk plan for an im2col of ``k * C`` rows into ``N`` outputs, and
    its padded buffer holding ``x``.
    """
    from refconv.fast.layout import Layout

    rng = np.random.default_rng(case["seed"])
    shape, k, c, n_out, batch = case["shape"], case["kernel"], case["channels"], case["out"], \
        case["batch"]
    x = rng.standard_normal((batch, *shape, c))
    kernel = rng.standard_normal((*k, c, n_out))
    layout = Layout(shape, batch, n_out, k, int(np.prod(k)) * c, n_out, np.float64, False,
                    chunk_bytes=case["chunk_bytes"])
    buffer = layout.padded_buffer(c)
    layout.frame_view(buffer, slice(None))[...] = np.moveaxis(x, -1, 1)
    return rng, x, kernel, layout, buffer


@settings(max_examples=60, deadline=None)
@given(case=chunk_convolutions())
def test_chunk_convolution_both_ways_against_the_pixel_oracle(case):
    """A chunk's convolution as one im2col product and as shifted sums over the last kernel
    axis (refconv.fast.conv_chunk) against ``_oracles.conv_same`` (a dot product per output
    pixel), over drawn 2-D and 3-D geometries, even kernels and chunk plans that split frames
    into rows or hold several frames, to 1e-12."""
    from _oracles import conv_same

    from refconv.fast.conv_chunk import ChunkConvolution
    from refconv.fast.pool import Scratch

    _, x, kernel, layout, buffer = _x_in_its_padded_buffer(case)
    n_out = case["out"]
    expected = conv_same(x, kernel)                        # [B, *S, N]
    scratch = Scratch(np.float64)
    for split in (False, True):
        convolution = ChunkConvolution(kernel, split=split)
        got = np.full_like(expected, np.nan)
        for chunk in layout.chunks:
            nb, n = chunk[1] - chunk[0], layout.size(chunk)
            y = convolution(layout, buffer, chunk, np.empty((n_out, n)), scratch)
            layout.put(got, y.reshape(n_out, nb, -1), chunk)
        np.testing.assert_allclose(got, expected, rtol=1e-12, atol=1e-12,
                                   err_msg=f"split={split}")


def test_chunk_convolution_rule_and_errors():
    """Shifted sums exactly where the product is thin (N <= THIN_ROWS) and the frames have
    two or more axes with a last kernel axis longer than 1; forcing them on a 1-D kernel is
    an error that names the argument."""
    from refconv.fast.conv_chunk import THIN_ROWS, ChunkConvolution

    assert ChunkConvolution(np.zeros((3, 3, 15, THIN_ROWS))).split
    assert not ChunkConvolution(np.zeros((3, 3, 15, THIN_ROWS + 1))).split
    assert not ChunkConvolution(np.zeros((3, 1, 15, 12))).split
    assert not ChunkConvolution(np.zeros((3, 15, 12))).split
    with pytest.raises(ValueError, match="split: .*2-D|split: .*1-D"):
        ChunkConvolution(np.zeros((3, 15, 12)), split=True)


def test_the_default_chunk_plan_is_the_convolutions_own():
    """A runner without ``chunk_bytes`` plans its chunks at its convolution's size: the
    LSTM's one product at WIDE_CHUNK_BYTES, the GRU's shifted sums at CHUNK_BYTES (a
    frame large enough for each to give a different number of chunks). Oracle: the
    Layout planned directly at each size."""
    from refconv.fast.layout import Layout

    for cls, size, other in ((ConvLSTMCell, fast.WIDE_CHUNK_BYTES, fast.CHUNK_BYTES),
                             (ConvGRUCell, fast.CHUNK_BYTES, fast.WIDE_CHUNK_BYTES)):
        cell = cls([200, 160], 12, [3, 3])
        cell.build(3, seed=0)
        run = fast.runner(cell, cell.params, 1, np.float64, cell.zero_state(1, np.float64))
        assert run.conv_xh.chunk_bytes == size
        plan = lambda n: Layout([200, 160], 1, 12, (3, 3), 9 * 15, run.layout.filters *  # noqa: E731
                                len(run.blocks), np.float64, False, chunk_bytes=n).chunks
        assert run.layout.chunks == plan(size) != plan(other), cls.__name__


@settings(max_examples=60, deadline=None)
@given(case=chunk_convolutions())
def test_input_gradient_both_ways_against_the_naive_backward(case):
    """A chunk's convolution input gradient on the fast path (refconv.fast.conv_back), as
    shifted sums and as col2im, against ``refconv.conv.conv_nd_backward_naive`` (a loop over
    kernel offsets on whole frames), over drawn 2-D and 3-D geometries, even kernels and
    chunk plans, to 1e-12."""
    from refconv.conv import conv_nd_backward_naive
    from refconv.fast.conv_back import InputGradient
    from refconv.fast.layout import Layout
    from refconv.fast.pool import Scratch

    rng = np.random.default_rng(case["seed"])
    shape, k, c, n_out, batch = case["shape"], case["kernel"], case["channels"], case["out"], \
        case["batch"]
    x = rng.standard_normal((batch, *shape, c))
    kernel = rng.standard_normal((*k, c, n_out))
    d_y = rng.standard_normal((batch, *shape, n_out))
    expected = conv_nd_backward_naive(x, kernel, d_y)[0]   # [B, *S, C]
    layout = Layout(shape, batch, n_out, k, int(np.prod(k)) * n_out, c, np.float64, False,
                    chunk_bytes=case["chunk_bytes"])
    # d_y padded the other way round: `after` zeros before, `before` after.
    dy = np.zeros((batch, n_out, *layout.padded))
    inside = tuple(slice(after, after + n) for n, (_, after) in zip(shape, layout.pads))
    dy[(slice(None), slice(None), *inside)] = np.moveaxis(d_y, -1, 1)
    scratch = Scratch(np.float64)
    for split in (False, True):
        gradient = InputGradient(kernel, split=split)
        got = np.full_like(expected, np.nan)
        for chunk in layout.chunks:
            layout.put(got, gradient(layout, dy, chunk, scratch), chunk)
        np.testing.assert_allclose(got, expected, rtol=1e-12, atol=1e-12,
                                   err_msg=f"split={split}")


@settings(max_examples=60, deadline=None)
@given(case=chunk_convolutions())
def test_kernel_gradient_both_ways_against_the_naive_backward(case):
    """A chunk's part of the kernel's gradient on the fast path (refconv.fast.conv_back), as
    one im2col product and with the last kernel axis on d_y's side, summed over the chunks,
    against ``refconv.conv.conv_nd_backward_naive`` (a loop over kernel offsets on whole
    frames), over drawn 2-D and 3-D geometries, even kernels and chunk plans, to 1e-12."""
    from refconv.conv import conv_nd_backward_naive
    from refconv.fast.conv_back import KernelGradient
    from refconv.fast.pool import Scratch

    rng, x, kernel, layout, buffer = _x_in_its_padded_buffer(case)
    n_out = case["out"]
    d_y = rng.standard_normal((case["batch"], *case["shape"], n_out))
    expected = conv_nd_backward_naive(x, kernel, d_y)[1]   # [*k, C, N]
    scratch = Scratch(np.float64)
    for split in (False, True):
        gradient = KernelGradient(kernel, split=split)
        got = np.zeros(kernel.shape)
        for chunk in layout.chunks:
            d_y_chunk = np.ascontiguousarray(layout.take(d_y, chunk, n_out)).reshape(n_out, -1)
            got += gradient(layout, buffer, d_y_chunk, chunk, scratch).reshape(kernel.shape)
        scale = np.abs(expected).max()
        np.testing.assert_allclose(got, expected, rtol=1e-12, atol=1e-12 * scale,
                                   err_msg=f"split={split}")


def test_kernel_gradient_rule_and_errors():
    """The last kernel axis on d_y's side exactly where N <= THIN_GRADIENT of the run's dtype
    (12 float32, 24 float64) and the frames have two or more axes with a last kernel axis
    longer than 1; forcing it on a 1-D kernel is an error that names the argument."""
    from refconv.fast.conv_back import THIN_GRADIENT, KernelGradient

    for dtype in (np.float32, np.float64):
        thin = THIN_GRADIENT[np.dtype(dtype)]
        assert KernelGradient(np.zeros((3, 3, 15, thin)), dtype).split
        assert not KernelGradient(np.zeros((3, 3, 15, thin + 1)), dtype).split
    assert KernelGradient(np.zeros((3, 3, 15, 24))).split              # the kernel's float64
    assert not KernelGradient(np.zeros((3, 3, 15, 24)), np.float32).split
    assert not KernelGradient(np.zeros((3, 1, 15, 12))).split
    assert not KernelGradient(np.zeros((3, 15, 12))).split
    with pytest.raises(ValueError, match="split: .*1-D"):
        KernelGradient(np.zeros((3, 15, 12)), split=True)


@pytest.mark.parametrize("spatial, kernel, dtype, batch", [
    ((50, 50, 50), (1, 3, 5), np.float32, 1), ((50, 50, 50), (1, 3, 5), np.float64, 2),
    ((640, 480), (3, 3), np.float32, 1), ((33, 7), (3, 3), np.float64, 3)])
def test_a_frame_split_into_rows_has_an_even_number_of_balanced_chunks(spatial, kernel, dtype,
                                                                       batch):
    """A frame too large for one chunk is split into an even number of chunks (two threads
    share them evenly) whose rows differ by at most one, none over the chunk's bytes, covering
    every row once, in order; the plan does not depend on the thread count."""
    from refconv.fast.layout import Layout

    taps = int(np.prod(kernel)) * 15
    chunk_bytes = 8 * 2**20 if spatial[0] > 40 else 60 * np.dtype(dtype).itemsize * taps
    layout = Layout(spatial, batch, 12, kernel, taps, 48, dtype, False, chunk_bytes=chunk_bytes)
    row_bytes = int(np.prod(spatial[1:])) * taps * np.dtype(dtype).itemsize
    assert all(b1 - b0 == 1 for b0, b1, _, _ in layout.chunks), layout.chunks
    for b in range(batch):
        rows = [(r0, r1) for b0, _, r0, r1 in layout.chunks if b0 == b]
        assert len(rows) > 1 and len(rows) % 2 == 0, rows
        assert [r for pair in rows for r in pair] == [0, *[r for r, _ in rows[1:] for r in (r, r)],
                                                       spatial[0]], rows
        sizes = {r1 - r0 for r0, r1 in rows}
        assert max(sizes) - min(sizes) <= 1 and max(sizes) * row_bytes <= chunk_bytes, rows


def test_workspace_empty_each_gives_disjoint_views_of_one_reused_array():
    """Workspace.empty_each: one array (NumPy asks huge pages for it from 4 MiB), its views of
    the sizes asked, back to back and disjoint; the base given back is the next call's."""
    ws = fast.Workspace()
    sizes = [5, 0, 7, 3]
    base, views = ws.empty_each(sizes, np.float64)
    assert base.shape == (15,) and [v.size for v in views] == sizes
    assert all(np.shares_memory(v, base) for v in views if v.size)
    for k, v in enumerate(views):
        v[...] = k
    assert np.array_equal(base, np.repeat(np.arange(4.0), sizes))    # disjoint, in order
    ws.give(base)
    again, _ = ws.empty_each(sizes, np.float64)
    assert np.shares_memory(again, base) and ws.nbytes == 0
