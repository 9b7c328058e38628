"""Sequences too long to hold: frames go in one step at a time, outputs are handed on.

The seed's test.py asks for 32 videos of 100 frames of 640x480 pixels: 11.8 GB of
float32 inputs, and 47 GB of outputs for the LSTM alone. :func:`refconv.dynamic_rnn`
takes the whole input array and returns the whole output array; these functions
take the frames from an iterable (or, for the backward direction, from a function
of the time step) and hand each step's output to a callback, so memory holds one
step's frames, state and work buffers, whatever the sequence length.

Both use the fast path (:mod:`refconv.fast`) where it applies, as
:func:`refconv.dynamic_rnn` does (:func:`refconv.dispatch.choose` decides), and
give the same numbers.
"""

import numpy as np

from . import fast
from .checks import check_float_array
from .dispatch import choose
from .rnn import _initial_state, check_cell

__all__ = ["stream_rnn", "stream_bidirectional_rnn"]


def stream_rnn(cell, frames, on_output=None, initial_state=None, *, reference=False):
    """Run ``cell`` over ``frames`` one step at a time; return the final state.

    Equivalent to ``dynamic_rnn(cell, np.stack(list(frames), axis=1), ...)`` with the
    outputs handed to ``on_output`` instead of stacked.

    Args:
        cell: a ConvLSTMCell, ConvGRUCell or MultiRNNCell.
        frames: an iterable (a generator, say) of ``[B, *frame]`` arrays, all of one
            shape and dtype (float32 or float64); read one at a time.
        on_output: None or ``on_output(t, h)``, called after step ``t`` with its
            output ``h`` ``[B, *S]``. ``h`` is a work buffer, valid until the
            callback returns: copy what you keep.
        initial_state: the cell's state structure with batch B; zeros if None.
        reference: run the readable step functions instead of the fast path.

    Returns:
        The state after the last frame (the initial state when there is none).
    """
    check_cell(cell, "cell")
    if on_output is not None and not callable(on_output):
        raise TypeError(f"on_output: expected None or a function (t, h), got "
                        f"{type(on_output).__name__}")
    try:
        frames = iter(frames)
    except TypeError:
        raise TypeError(f"frames: expected an iterable of [B, ...] arrays, got "
                        f"{type(frames).__name__}") from None
    run = state = params = first = None
    for t, x in enumerate(frames):
        x = check_float_array(x, f"frames[{t}]")
        if first is None:
            if x.ndim == 0:
                raise ValueError(f"frames[0]: expected frames [B, ...], got a scalar {x!r}")
            first = x.shape, x.dtype
            state = _initial_state(cell, initial_state, x.shape[0], x.dtype, None,
                                   "initial_state")
            params = cell._prepare(x.shape, ["B"], x.dtype, "frames[0]")
            if choose(cell, reference=reference).fast_forward:
                run = fast.runner(cell, params, x.shape[0], x.dtype, state)
        elif (x.shape, x.dtype) != first:
            raise ValueError(f"frames[{t}]: expected shape {list(first[0])} and dtype "
                             f"{first[1]} like frames[0], got {list(x.shape)} and {x.dtype}")
        if run is not None:
            h = run.step(x)
        else:
            h, state, _ = cell._step(x, state, params)
        if on_output is not None:
            on_output(t, h)
    if first is None:
        if initial_state is None:
            raise ValueError("frames: expected at least one frame (or an initial_state to "
                             "return), got none")
        return initial_state
    return run.state() if run is not None else state


def stream_bidirectional_rnn(cell_fw, cell_bw, frame_at, steps, on_output=None,
                             initial_state_fw=None, initial_state_bw=None, *, reference=False):
    """Both directions of :func:`refconv.bidirectional_dynamic_rnn`, streamed.

    The forward cell reads ``frame_at(0), ..., frame_at(steps - 1)``, then the
    backward cell reads ``frame_at(steps - 1), ..., frame_at(0)``; each output
    is handed on with the input time step it lines up with, as the
    bidirectional outputs do (every row has length ``steps``).

    Args:
        frame_at: a function ``t -> [B, *frame]``, called once per direction and step
            (make it deterministic: the two directions must see the same frames).
        steps: T.
        on_output: None or ``on_output(direction, t, h)``, direction ``"fw"`` or ``"bw"``.
        cell_fw, cell_bw, initial_state_fw, initial_state_bw, reference: as
            :func:`stream_rnn` (one cell object for both shares its weights).

    Returns:
        ``(state_fw, state_bw)``.
    """
    if isinstance(steps, bool) or not isinstance(steps, (int, np.integer)) or steps < 1:
        raise ValueError(f"steps: expected an integer >= 1, got {steps!r}")
    if not callable(frame_at):
        raise TypeError(f"frame_at: expected a function of the time step, got "
                        f"{type(frame_at).__name__}")

    def hand_on(direction, index):
        if on_output is None:
            return None
        return lambda t, h: on_output(direction, index(t), h)

    state_fw = stream_rnn(cell_fw, (frame_at(t) for t in range(steps)),
                          hand_on("fw", lambda t: t), initial_state_fw, reference=reference)
    state_bw = stream_rnn(cell_bw, (frame_at(t) for t in reversed(range(steps))),
                          hand_on("bw", lambda t: steps - 1 - t), initial_state_bw,
                          reference=reference)
    return state_fw, state_bw
