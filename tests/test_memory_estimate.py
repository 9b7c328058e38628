"""refconv.memory: the estimate grows by what each step really holds, and the check is exact.

The oracle for the estimate is what a call hands back and records, measured on the arrays
themselves (``nbytes``): one more time step must add exactly one step's outputs (the top
layer's, or every layer's with ``all_layers``), each layer's returned quantities with
``return_gates``, and, for gradients, what the forward records of each step (the fast
path's :func:`refconv.fast.record_forward`: the state a step starts from and its
convolution outputs).
"""

import numpy as np
import pytest
from conftest import leaves

from refconv import ConvGRUCell, ConvLSTMCell, MultiRNNCell, dynamic_rnn, fast, memory


def cell_of(kind):
    """Small built cells; the stack's top is narrower than its bottom (3 then 2 filters)."""
    cells = {"lstm": lambda: ConvLSTMCell([5, 4], 3, [3, 3]),
             "gru": lambda: ConvGRUCell([5, 4], 3, [3, 3]),
             "multi": lambda: MultiRNNCell([ConvLSTMCell([5, 4], 3, [3, 3]),
                                            ConvGRUCell([5, 4], 2, [3, 3])])}
    cell = cells[kind]()
    cell.build(2, seed=0)
    return cell


def per_step(cell, batch, **options):
    """What one more time step adds to the estimate."""
    return memory.run_bytes(cell, batch, 5, 8, **options) - memory.run_bytes(cell, batch, 4, 8,
                                                                             **options)


@pytest.mark.parametrize("kind", ["lstm", "gru", "multi"])
def test_one_more_step_adds_what_the_call_returns_per_step(kind):
    cell = cell_of(kind)
    batch, steps = 3, 4
    x = np.random.default_rng(0).standard_normal((batch, steps, 5, 4, 2))
    outputs, _, gates = dynamic_rnn(cell, x, return_gates=True)
    assert per_step(cell, batch) == outputs.nbytes // steps
    returned = outputs.nbytes + sum(a.nbytes for a in leaves(gates))
    assert per_step(cell, batch, return_gates=True) == returned // steps
    layers = getattr(cell, "cells", [cell])
    every_layer = sum(batch * 5 * 4 * layer.filters * 8 for layer in layers)
    layer_outputs = dynamic_rnn(cell, x, return_all_layers=True)[0] if len(layers) > 1 \
        else [outputs]
    assert sum(a.nbytes for a in leaves(layer_outputs)) // steps == every_layer
    assert per_step(cell, batch, all_layers=True) == every_layer


@pytest.mark.parametrize("kind", ["lstm", "gru", "multi"])
def test_one_more_step_adds_the_forward_record_of_a_gradient(kind):
    cell = cell_of(kind)
    batch, steps = 2, 3
    x_bt = np.random.default_rng(1).standard_normal((batch, steps, 5, 4, 2))
    recorded, x = 0, x_bt
    for layer, params in zip(getattr(cell, "cells", [cell]),
                             cell.params if isinstance(cell, MultiRNNCell) else [cell.params]):
        record = fast.record_forward(layer, params, x, None, layer.zero_state(batch), steps)
        # each step keeps (its input, a view of x; the state it started from; the y blocks)
        recorded += sum(a.nbytes for step in record for a in leaves(step[1:]))
        x = dynamic_rnn(layer, x)[0]
    assert per_step(cell, batch, gradients=True) - per_step(cell, batch) == recorded // steps


def test_an_unbuilt_stack_is_estimated_as_the_built_one():
    """The upper layers' input channels are the filters below, known before building."""
    built = MultiRNNCell([ConvLSTMCell([6, 6], 5, [3, 3]), ConvLSTMCell([6, 6], 2, [3, 3])])
    built.build(1, seed=0)
    unbuilt = MultiRNNCell([ConvLSTMCell([6, 6], 5, [3, 3]), ConvLSTMCell([6, 6], 2, [3, 3])])
    for options in ({}, {"gradients": True}, {"return_gates": True}):
        assert memory.run_bytes(unbuilt, 2, 3, 8, **options) == \
            memory.run_bytes(built, 2, 3, 8, **options)


def test_require_raises_exactly_above_what_is_available(monkeypatch):
    monkeypatch.setattr(memory, "available_memory", lambda: 10 * 2**30)
    memory.require(10 * 2**30, "call", "do less")            # exactly what is free: fits
    with pytest.raises(MemoryError, match=r"call: needs about 10\.00 GiB .*10\.00 GiB are "
                                          r"available .*do less"):
        memory.require(10 * 2**30 + 1, "call", "do less")
    with pytest.raises(MemoryError, match=r"needs about 15\.00 GiB"):
        memory.require(15 * 2**30, "call", "do less")
    monkeypatch.setattr(memory, "available_memory", lambda: None)   # nothing to check against
    memory.require(10 ** 18, "call", "do less")


def test_available_memory_is_in_bytes_between_free_and_total():
    """MemAvailable (kB in /proc/meminfo) in bytes: at least about what is free now, at most
    the machine's memory (os.sysconf counts pages, independently of /proc/meminfo)."""
    import os
    available = memory.available_memory()
    if available is None:
        pytest.skip("no /proc/meminfo here (not Linux)")
    page = os.sysconf("SC_PAGE_SIZE")
    total, free = os.sysconf("SC_PHYS_PAGES") * page, os.sysconf("SC_AVPHYS_PAGES") * page
    assert 0.5 * free <= available <= total, (free, available, total)
