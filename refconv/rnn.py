"""Running a cell over time, with TensorFlow 1's semantics.

* :func:`dynamic_rnn`: one direction; ``sequence_length`` stops each batch row
  at its own length: past it the output is zero and the state is carried
  through unchanged, so the final state of a row is its state after its last
  real step (the initial state when its length is 0).
* :func:`bidirectional_dynamic_rnn`: a forward and a backward pass. The backward
  cell reads each row reversed *within its own length*, and its outputs are
  reversed back, so ``out_bw[:, t]`` lines up with ``inputs[:, t]``.
* :class:`MultiRNNCell`: cells stacked, each layer's ``h`` the next layer's input.

Passing one cell object as both directions shares its weights, as TensorFlow
does (the seed's test.py does this); two cell objects have two sets.
"""

import numpy as np

from . import fast, memory
from ._tree import tree_map
from .checks import check_float_array
from .dispatch import choose, step
from .gru import ConvGRUCell
from .lstm import ConvLSTMCell

__all__ = ["dynamic_rnn", "bidirectional_dynamic_rnn", "reverse_sequence", "MultiRNNCell"]


class MultiRNNCell:
    """Cells stacked in depth: layer ``i + 1`` reads layer ``i``'s ``h``.

    The state is a tuple with one state per layer; ``params`` is the list of
    the layers' parameter dicts (``multi.params[0]["kernel"]`` is the first
    layer's kernel). Every layer's input shape must be the state shape of the
    layer below, and all layers must use the same data_format.
    """

    def __init__(self, cells):
        cells = list(cells) if isinstance(cells, (list, tuple)) else cells
        if not isinstance(cells, list) or not cells:
            raise ValueError(f"cells: expected a non-empty list of cells, got {cells!r}")
        for i, cell in enumerate(cells):
            if not isinstance(cell, (ConvLSTMCell, ConvGRUCell)):
                raise TypeError(f"cells[{i}]: expected a ConvLSTMCell or ConvGRUCell, "
                                f"got {type(cell).__name__}")
            if i and cell.data_format != cells[0].data_format:
                raise ValueError(f"cells[{i}]: expected data_format {cells[0].data_format!r} "
                                 f"like cells[0], got {cell.data_format!r}")
            if i and cell.shape != cells[i - 1].state_shape:
                raise ValueError(f"cells[{i}]: expected shape {cells[i - 1].state_shape} (the "
                                 f"state shape of cells[{i - 1}]), got {cell.shape}")
        self.cells = cells

    @property
    def params(self):
        return [cell.params for cell in self.cells]

    @property
    def state_size(self):
        """The layers' state sizes, a tuple with one per layer."""
        return tuple(cell.state_size for cell in self.cells)

    @property
    def output_size(self):
        """The output size of the top layer, whose ``h`` is the stack's output."""
        return self.cells[-1].output_size

    @property
    def shape(self):
        """The spatial size of the input frames (the first layer's ``shape``)."""
        return self.cells[0].shape

    def build(self, in_channels, seed=None):
        """Build every layer; one seed gives each layer its own independent stream."""
        seeds = np.random.SeedSequence(seed).spawn(len(self.cells))
        for cell, layer_seed in zip(self.cells, seeds):
            cell.build(in_channels, seed=layer_seed)
            in_channels = cell.filters

    def zero_state(self, batch_size, dtype=np.float64):
        """The all-zero state: a tuple with each layer's ``zero_state(batch_size, dtype)``."""
        return tuple(cell.zero_state(batch_size, dtype) for cell in self.cells)

    def _prepare(self, full_shape, lead, dtype, argument="x"):
        params = [self.cells[0]._prepare(full_shape, lead, dtype, argument)]
        shape = tuple(full_shape[:len(lead)])
        for i, (below, cell) in enumerate(zip(self.cells, self.cells[1:]), start=1):
            params.append(cell._prepare((*shape, *below.output_size), lead, dtype,
                                        f"the output of cells[{i - 1}]"))
        return params

    def _check_state(self, state, batch_size, dtype, argument="state"):
        # An LSTMStateTuple is a tuple too, but it is one layer's state, not a stack's.
        if type(state) is not tuple or len(state) != len(self.cells):
            raise TypeError(f"{argument}: expected a tuple of {len(self.cells)} states "
                            f"(one per layer), got {type(state).__name__}"
                            + (f" of length {len(state)}" if isinstance(state, tuple) else ""))
        return tuple(cell._check_state(s, batch_size, dtype, f"{argument}[{i}]")
                     for i, (cell, s) in enumerate(zip(self.cells, state)))

    def _step(self, x, state, params):
        new_states, caches = [], []
        for cell, layer_state, layer_params in zip(self.cells, state, params):
            x, layer_state, cache = cell._step(x, layer_state, layer_params)
            new_states.append(layer_state)
            caches.append(cache)
        return x, tuple(new_states), tuple(caches)

    def _gates(self, caches):
        return [cell._gates(cache) for cell, cache in zip(self.cells, caches)]

    def _step_backward(self, d_h, d_state, caches, params):
        """Backward through the layers, top first: a layer's d_x is the d_h of the layer below."""
        d_states, d_params = [None] * len(self.cells), [None] * len(self.cells)
        for i in reversed(range(len(self.cells))):
            d_h, d_states[i], d_params[i] = self.cells[i]._step_backward(
                d_h, d_state[i], caches[i], params[i])
        return d_h, tuple(d_states), d_params

    def _slim(self, caches):
        return tuple(cell._slim(cache) for cell, cache in zip(self.cells, caches))

    def _rebuild(self, slims, params):
        return tuple(cell._rebuild(slim, p) for cell, slim, p in zip(self.cells, slims, params))

    def __call__(self, x, state, *, reference=False):
        """One step through every layer: ``(h of the top layer, tuple of new states)``.

        ``reference`` as a cell's call (:func:`refconv.dispatch.choose` decides).
        """
        return step(self, x, state, reference=reference)


def dynamic_rnn(cell, inputs, sequence_length=None, initial_state=None, dtype=None,
                time_major=False, return_gates=False, *, reference=False,
                return_all_layers=False):
    """Run ``cell`` over the time axis of ``inputs``, as ``tf.compat.v1.nn.dynamic_rnn``.

    Args:
        cell: a ConvLSTMCell, ConvGRUCell or MultiRNNCell.
        inputs: ``[B, T, *frame]`` (``[T, B, *frame]`` when ``time_major``), a
            frame being ``[*shape, C_in]`` or ``[C_in, *shape]``; float32 or float64.
        sequence_length: None or B ints in ``[0, T]``.
        initial_state: the cell's state structure with batch B; zeros if None.
        dtype: the zero state's dtype (the seed passes it); must be the inputs' dtype.
        time_major: whether the first two axes of inputs and outputs are ``[T, B]``.
        return_gates: also return every gate's activations over time.
        reference: run the readable step functions (:func:`refconv.lstm_step`,
            :func:`refconv.gru_step`) even where the fast path (:mod:`refconv.fast`,
            the default without ``return_gates``) could; the two agree to rounding
            (:func:`refconv.dispatch.choose` decides).
        return_all_layers: ``outputs`` is then a list, every layer's outputs
            (one for a single cell), as ndrplz's ``return_all_layers=True``.

    Returns:
        ``(outputs, final_state)``, outputs ``[B, T, *S]`` (``[T, B, *S]`` when
        time_major), zero past each row's length. With ``return_gates`` a third
        value: a dict name -> array shaped like outputs, in the order a step computes
        them (``cell.quantities``: LSTM ``z`` (after the activation), ``z_i``, ``z_f``,
        ``c``, ``z_o``, ``h``; GRU ``r``, ``u``, ``candidate``, ``h``), zero past each
        row's length; for a MultiRNNCell, a list of such dicts, one per layer.

    Example:
        Two videos of 5 frames, the second only 3 long:

        >>> import numpy as np, refconv
        >>> cell = refconv.ConvLSTMCell([8, 8], filters=4, kernel=[3, 3])
        >>> cell.build(1, seed=0)
        >>> video = np.random.default_rng(1).random((2, 5, 8, 8, 1))    # [B, T, *shape, C]
        >>> outputs, (c, h), gates = refconv.dynamic_rnn(
        ...     cell, video, sequence_length=[5, 3], return_gates=True)
        >>> outputs.shape, sorted(gates)
        ((2, 5, 8, 8, 4), ['c', 'h', 'z', 'z_f', 'z_i', 'z_o'])
        >>> bool(np.all(outputs[1, 3:] == 0)), bool(np.array_equal(h[1], outputs[1, 2]))
        (True, True)
    """
    run = _run_layers if return_all_layers else _run
    return run(cell, inputs, sequence_length, initial_state, dtype, time_major, return_gates,
               "initial_state", reference)


def _run_layers(cell, inputs, sequence_length, initial_state, dtype, time_major, return_gates,
                state_argument, reference=False):
    """:func:`_run` one layer at a time, keeping every layer's outputs (``return_all_layers``).

    A stack run step by step and run layer by layer over the whole sequence is
    the same computation (layer i + 1's step t reads only layer i's output at
    t; past a row's length it reads zeros but takes no step), so each layer
    takes the path :func:`_run` picks for it, the fast one included.
    """
    state = _start(cell, inputs, sequence_length, initial_state, dtype, time_major,
                   state_argument, dict(what="dynamic_rnn", return_gates=return_gates,
                                        all_layers=True))[4]
    multi = isinstance(cell, MultiRNNCell)
    layers, states = (cell.cells, state) if multi else ([cell], (state,))
    outputs, finals, gates = [], [], []
    x = inputs
    for i, (layer, layer_state) in enumerate(zip(layers, states)):
        result = _run(layer, x, sequence_length, layer_state, None, time_major, return_gates,
                      f"{state_argument}[{i}]" if multi else state_argument, reference)
        x = result[0]
        outputs.append(x)
        finals.append(result[1])
        gates.append(result[2] if return_gates else None)
    final = tuple(finals) if multi else finals[0]
    if not return_gates:
        return outputs, final
    return outputs, final, (gates if multi else gates[0])


def _run(cell, inputs, sequence_length, initial_state, dtype, time_major, return_gates,
         state_argument, reference=False):
    """:func:`dynamic_rnn`, naming the initial state ``state_argument`` in errors."""
    inputs, x_bt, params, lengths, state = _start(
        cell, inputs, sequence_length, initial_state, dtype, time_major, state_argument,
        dict(what="dynamic_rnn", return_gates=return_gates))
    batch, steps = x_bt.shape[:2]

    def empty(frame):
        out = np.zeros((steps, batch, *frame) if time_major else (batch, steps, *frame),
                       dtype=inputs.dtype)
        return out, (out.swapaxes(0, 1) if time_major else out)

    outputs, out_bt = empty(cell.output_size)
    multi = isinstance(cell, MultiRNNCell)
    layers = cell.cells if multi else [cell]
    gates = ([{name: empty(layer.output_size) for name in layer.quantities} for layer in layers]
             if return_gates else None)  # six output-sized arrays: only when asked for

    if choose(cell, reference=reference, return_gates=return_gates).fast_forward:
        return outputs, fast.run_sequence(cell, params, x_bt, lengths, state, out_bt)

    last = steps if lengths is None else int(lengths.max(initial=0))
    for t in range(last):
        h, new_state, cache = cell._step(x_bt[:, t], state, params)
        # Rows still inside their sequence take the step; the others keep their state.
        alive = slice(None) if lengths is None else t < lengths
        out_bt[alive, t] = h[alive]
        if return_gates:
            step_gates = cell._gates(cache) if multi else [cell._gates(cache)]
            for layer_gates, new in zip(gates, step_gates):
                for name, (_, g_bt) in layer_gates.items():
                    g_bt[alive, t] = new[name][alive]
        state = new_state if lengths is None else _select(alive, new_state, state)
        del h, new_state, cache  # or this step's arrays stay alive through the next step

    if not return_gates:
        return outputs, state
    gates = [{name: g for name, (g, _) in layer_gates.items()} for layer_gates in gates]
    return outputs, state, (gates if multi else gates[0])


def check_cell(cell, argument):
    """A ConvLSTMCell, ConvGRUCell or MultiRNNCell (a TypeError naming ``argument`` otherwise)."""
    if not isinstance(cell, (ConvLSTMCell, ConvGRUCell, MultiRNNCell)):
        raise TypeError(f"{argument}: expected a ConvLSTMCell, ConvGRUCell or MultiRNNCell, "
                        f"got {type(cell).__name__}")
    return cell


def _start(cell, inputs, sequence_length, initial_state, dtype, time_major, state_argument,
           estimate):
    """Check a time loop's arguments and its memory (``estimate``: :func:`_require_memory`'s
    keywords); return inputs, their batch-major view, the cast params, the lengths and the
    initial state."""
    check_cell(cell, "cell")
    inputs = check_float_array(inputs, "inputs")
    lead = ["T", "B"] if time_major else ["B", "T"]
    if inputs.ndim < 3:
        raise ValueError(f"inputs: expected shape [{', '.join(lead)}, *frame], "
                         f"got {list(inputs.shape)}")
    x_bt = inputs.swapaxes(0, 1) if time_major else inputs
    batch, steps = x_bt.shape[:2]
    # Every check before _prepare, which builds an unbuilt cell: a failed call leaves it as it was.
    lengths = _check_sequence_length(sequence_length, batch, steps)
    state = _initial_state(cell, initial_state, batch, inputs.dtype, dtype, state_argument)
    _require_memory(cell, x_bt, **estimate)
    params = cell._prepare(inputs.shape, lead, inputs.dtype, "inputs")
    return inputs, x_bt, params, lengths, state


def _require_memory(cell, x_bt, what, *, directions=1, input_copies=0,
                    way_out=memory.WAY_OUT, held=0, **kinds):
    """Refuse (``MemoryError``) a run of ``cell`` over ``x_bt`` ``[B, T, ...]`` whose
    arrays would not fit in the memory available: ``directions`` runs as
    :func:`refconv.memory.run_bytes` counts them (``kinds``), plus ``input_copies``
    arrays the size of the inputs (reversed inputs, input gradients), less the ``held``
    bytes a :class:`refconv.fast.Workspace` already holds for the run (it reuses them)."""
    batch, steps = x_bt.shape[:2]
    one = memory.run_bytes(cell, batch, steps, x_bt.dtype.itemsize, **kinds)
    memory.require(max(0, directions * one + input_copies * x_bt.nbytes - held), what, way_out)


def bidirectional_dynamic_rnn(cell_fw, cell_bw, inputs, sequence_length=None,
                              initial_state_fw=None, initial_state_bw=None, dtype=None,
                              time_major=False, return_gates=False, *, reference=False,
                              return_all_layers=False):
    """A forward and a backward :func:`dynamic_rnn`, as ``tf.compat.v1.nn.bidirectional_dynamic_rnn``.

    The backward cell runs on :func:`reverse_sequence` of the inputs (each row
    reversed within its own length) and its outputs are reversed back, so both
    directions' outputs line up with the inputs. One cell object passed as both
    ``cell_fw`` and ``cell_bw`` means one set of (shared) weights.

    ``reference`` and ``return_all_layers`` as in :func:`dynamic_rnn` (then
    ``out_fw`` and ``out_bw`` are lists, one entry per layer).

    Returns:
        ``((out_fw, out_bw), (state_fw, state_bw))``, and with ``return_gates``
        a third value ``(gates_fw, gates_bw)``, the backward gates reversed back
        like its outputs.
    """
    check_cell(cell_fw, "cell_fw")
    check_cell(cell_bw, "cell_bw")
    inputs = check_float_array(inputs, "inputs")
    if inputs.ndim < 3:
        raise ValueError(f"inputs: expected shape [B, T, *frame] (or [T, B, *frame] when "
                         f"time_major), got {list(inputs.shape)}")
    seq_axis, batch_axis = (0, 1) if time_major else (1, 0)
    batch, steps = inputs.shape[batch_axis], inputs.shape[seq_axis]
    lengths = _check_sequence_length(sequence_length, batch, steps)
    for cell in (cell_fw, cell_bw):  # each direction's outputs again, reversed back
        _require_memory(cell, inputs.swapaxes(0, 1) if time_major else inputs,
                        "bidirectional_dynamic_rnn", directions=2, input_copies=1,
                        return_gates=return_gates, all_layers=return_all_layers)
    run = _run_layers if return_all_layers else _run
    fw = run(cell_fw, inputs, lengths, initial_state_fw, dtype, time_major, return_gates,
             "initial_state_fw", reference)
    reversed_inputs = reverse_sequence(inputs, lengths, seq_axis, batch_axis)
    bw = run(cell_bw, reversed_inputs, lengths, initial_state_bw, dtype, time_major,
             return_gates, "initial_state_bw", reference)

    def back(a):
        return reverse_sequence(a, lengths, seq_axis, batch_axis)

    out_bw = [back(a) for a in bw[0]] if return_all_layers else back(bw[0])
    if not return_gates:
        return (fw[0], out_bw), (fw[1], bw[1])
    gates_bw = bw[2]
    if isinstance(gates_bw, dict):
        gates_bw = {name: back(g) for name, g in gates_bw.items()}
    else:
        gates_bw = [{name: back(g) for name, g in layer.items()} for layer in gates_bw]
    return (fw[0], out_bw), (fw[1], bw[1]), (fw[2], gates_bw)


def reverse_sequence(x, seq_lengths, seq_axis=1, batch_axis=0):
    """Reverse each batch row of ``x`` along ``seq_axis``, within its own length.

    As ``tf.reverse_sequence``: row ``b``'s first ``seq_lengths[b]`` entries are
    reversed, the rest stay where they are. ``seq_lengths=None`` reverses whole
    rows.
    """
    x = np.asarray(x)
    if seq_axis == batch_axis or {seq_axis, batch_axis} - set(range(x.ndim)):
        raise ValueError(f"seq_axis, batch_axis: expected two different axes of x "
                         f"(rank {x.ndim}), got {seq_axis} and {batch_axis}")
    x_bt = np.moveaxis(x, (batch_axis, seq_axis), (0, 1))
    batch, steps = x_bt.shape[:2]
    lengths = _check_sequence_length(seq_lengths, batch, steps, "seq_lengths")
    if lengths is None:
        lengths = np.full(batch, steps)
    t = np.arange(steps)
    index = np.where(t < lengths[:, None], lengths[:, None] - 1 - t, t)  # [B, T]
    out = x_bt[np.arange(batch)[:, None], index]
    return np.moveaxis(out, (0, 1), (batch_axis, seq_axis))


def _check_sequence_length(sequence_length, batch, steps, argument="sequence_length"):
    if sequence_length is None:
        return None
    lengths = np.asarray(sequence_length)
    if lengths.dtype.kind not in "iu":
        raise TypeError(f"{argument}: expected integers, got dtype {lengths.dtype}")
    if lengths.shape != (batch,):
        raise ValueError(f"{argument}: expected shape [{batch}] (one length per batch row), "
                         f"got {list(lengths.shape)}")
    if lengths.size and (lengths.min() < 0 or lengths.max() > steps):
        raise ValueError(f"{argument}: expected lengths in [0, {steps}] (T = {steps}), "
                         f"got min {lengths.min()} and max {lengths.max()}")
    return lengths.astype(np.int64)


def _initial_state(cell, initial_state, batch, inputs_dtype, dtype, argument):
    if initial_state is not None:
        return cell._check_state(initial_state, batch, inputs_dtype, argument)
    if dtype is not None:
        try:
            dtype = np.dtype(dtype)
        except TypeError:
            raise TypeError(f"dtype: expected a NumPy dtype, got {dtype!r}") from None
        if dtype != inputs_dtype:
            raise TypeError(f"dtype: expected the inputs' dtype {inputs_dtype} for the zero "
                            f"state, got {dtype}")
    return cell.zero_state(batch, inputs_dtype)


def _select(alive, new, old):
    """``new`` for the rows where ``alive`` holds, ``old`` elsewhere, through nested state tuples."""
    def pick(n, o):
        return np.where(alive.reshape(-1, *([1] * (n.ndim - 1))), n, o)
    return tree_map(pick, new, old)
