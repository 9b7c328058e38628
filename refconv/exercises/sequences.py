"""Checkers for notebook 4: ``sequence_length`` masking, and the reversal within each row's length.

The references are refconv's own :func:`refconv.dynamic_rnn` (with
``sequence_length``) and :func:`refconv.reverse_sequence`.
"""

import numpy as np

from ..lstm import ConvLSTMCell, LSTMStateTuple, lstm_step
from ..rnn import dynamic_rnn, reverse_sequence
from .report import Report
from .runs import close, function_name, random_cases, run_case, tolerances, video_and_rng

__all__ = ["check_mask_step", "check_reverse_within_length", "MASK_ORDER"]

MASK_ORDER = ("output", "state_c", "state_h")


def _lengths(rng, batch, steps):
    """Row lengths with a 0, a full T and the rest in between."""
    lengths = rng.integers(1, steps, size=batch)
    lengths[0], lengths[-1] = 0, steps
    return rng.permutation(lengths)


def check_mask_step(student_fn, *, count=3, shape=(8, 9), channels=1, filters=2, batch_size=4,
                    timesteps=5, seed=0, rtol=1e-9, atol=1e-12, hints=True):
    """Check ``student_fn(t, sequence_length, h_new, state_new, state_old) -> (output, state)``.

    After a ConvLSTM step ``t`` computed ``h_new`` and ``state_new``
    (``LSTMStateTuple(c, h)``, each ``[B, *shape, F]``) from ``state_old``, the
    function returns what ``dynamic_rnn`` keeps, TensorFlow's way: for rows with
    ``t >= sequence_length[b]`` the output is zero and the state is carried
    unchanged. ``sequence_length`` ``[B]`` ints, 0 and T among them.

    The reference is refconv's ``dynamic_rnn(..., sequence_length=...)``: its
    output at ``t`` and its final state after ``t + 1`` steps.
    """
    def draw(rng, n):
        return ({}, {"dtype": "float32" if n == count - 1 else "float64",
                     "sequence_length": _lengths(rng, batch_size, timesteps).tolist()})

    results = []
    for options, setup in random_cases(seed, count, draw):
        dtype = np.dtype(setup["dtype"])
        case_rtol, case_atol = tolerances(dtype, rtol, atol)
        video, rng = video_and_rng(shape, channels, batch_size, timesteps, setup["seed"], dtype)
        cell = ConvLSTMCell(list(shape), filters, [3, 2])
        cell.build(channels, seed=setup["seed"])
        cell.params = {name: value.astype(dtype) for name, value in cell.params.items()}
        lengths = np.array(setup["sequence_length"])
        shown = {key: value for key, value in setup.items() if key != "seed"}
        results.append(run_case(_mask_steps(student_fn, cell, video, lengths, case_rtol,
                                            case_atol),
                                MASK_ORDER, options, timesteps, case_rtol, case_atol,
                                what="arrays", setup=shown, recognise=_mask_mistake))
    return Report("check_mask_step", function_name(student_fn), results, rtol, atol, hints,
                  kind="mask")


def _mask_steps(student_fn, cell, video, lengths, rtol, atol):
    outputs, _ = dynamic_rnn(cell, video, sequence_length=lengths)
    state = cell.zero_state(video.shape[0], video.dtype)
    for t in range(video.shape[1]):
        _, final = dynamic_rnn(cell, video[:, :t + 1], sequence_length=np.minimum(lengths, t + 1))
        reference = {"output": outputs[:, t], "state_c": final.c, "state_h": final.h}
        h_new, state_new, _ = lstm_step(video[:, t], state, cell.params, cell)

        def call(t=t, h_new=h_new, state_new=state_new, state_old=state):
            result = student_fn(t, lengths.copy(), h_new.copy(),
                                LSTMStateTuple(*(a.copy() for a in state_new)),
                                LSTMStateTuple(*(a.copy() for a in state_old)))
            try:
                output, (c, h) = result
            except (TypeError, ValueError):
                return result
            return {"output": output, "state_c": c, "state_h": h}

        context = {"t": t, "lengths": lengths, "h_new": h_new, "new": state_new, "old": state,
                   "rtol": rtol, "atol": atol,
                   "given": {"t": t, "sequence_length": lengths, "h_new": h_new,
                             "state_new": state_new._asdict(), "state_old": state._asdict()}}
        yield t, reference, call, context
        state = final


def _rows(alive, new, old):
    return np.where(alive.reshape(-1, *([1] * (new.ndim - 1))), new, old)


def _mask_mistake(name, yours, student, reference, context):
    t, lengths = context["t"], context["lengths"]
    alive, alive_late = t < lengths, t <= lengths
    part = {"output": None, "state_c": "c", "state_h": "h"}[name]
    new = context["h_new"] if part is None else getattr(context["new"], part)
    old = np.zeros_like(new) if part is None else getattr(context["old"], part)
    slips = [("off by one: step t = sequence_length[b] is already past the row's end "
              "(its real steps are 0 .. length - 1)", _rows(alive_late, new, old))]
    if part is None:
        slips.append(("past a row's length the output is zero, not the new h",
                      new))
        slips.append(("past a row's length the output is zero, not the carried h",
                      _rows(alive, new, context["old"].h)))
    else:
        slips.append(("your state past a row's length is zero: TensorFlow carries the state "
                      "of the row's last real step unchanged",
                      _rows(alive, new, np.zeros_like(new))))
        slips.append(("your state past a row's length keeps running: it must stop there",
                      new))
    for label, candidate in slips:
        if not close(candidate, reference[name], context["rtol"], context["atol"]) and \
                close(yours, candidate, context["rtol"], context["atol"]):
            return label
    return None


def check_reverse_within_length(student_fn, *, count=3, seed=0, hints=True):
    """Check ``student_fn(x, sequence_length) -> x reversed within each row's length``.

    ``x`` ``[B, T, ...]``; row ``b``'s first ``sequence_length[b]`` steps are
    reversed and the rest stays where it is (``tf.reverse_sequence``). The
    reference is ``refconv.reverse_sequence``.
    """
    def draw(rng, n):
        steps = int(rng.integers(4, 8))
        return ({}, {"shape": (5, steps, 3, 2)[:2 + n % 3], "T": steps,
                     "sequence_length": _lengths(rng, 5, steps).tolist()})

    results = []
    for options, setup in random_cases(seed, count, draw):
        rng = np.random.default_rng(setup["seed"])
        x = rng.standard_normal(setup["shape"])
        lengths = np.array(setup["sequence_length"])

        def steps(x=x, lengths=lengths):
            def call():
                return {"reversed": student_fn(x.copy(), lengths.copy())}
            given = {"x": x, "sequence_length": lengths}
            yield 0, {"reversed": reverse_sequence(x, lengths)}, call, {"x": x, "lengths": lengths,
                                                                       "given": given}

        shown = {key: value for key, value in setup.items() if key not in ("seed", "T")}
        results.append(run_case(steps(), ("reversed",), options, 1, 0, 0, what="arrays",
                                setup=shown, recognise=_reverse_mistake,
                                index_labels={"reversed": "[batch, t, ...]"}))
    return Report("check_reverse_within_length", function_name(student_fn), results, 0, 0,
                  hints, kind="reverse", step_word="example")


def _reverse_mistake(name, yours, student, reference, context):
    x, lengths = context["x"], context["lengths"]
    steps = x.shape[1]
    right_aligned = np.stack([np.concatenate([x[b, :n][::-1], np.zeros_like(x[b, n:])])
                              for b, n in enumerate(lengths)])
    slips = [("you reversed all T steps: reverse only the first sequence_length[b] steps of "
              "row b and keep the rest in place", x[:, ::-1]),
             ("the steps past a row's length must stay as they are, not become zeros",
              right_aligned)]
    for label, candidate in slips:
        if candidate.shape == yours.shape and np.array_equal(yours, candidate) and steps:
            return label
    return None
