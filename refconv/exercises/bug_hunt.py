"""The bug hunt of notebook 6: an implementation with a planted bug; find the gate and the step.

``suspect = Suspect(seed)`` is a ConvLSTM that agrees with refconv's cell
(``suspect.cell``, same parameters) except for one planted bug, chosen by the
seed among mistakes real implementations have shipped. ``suspect.run(inputs)``
returns ``(outputs, gates)`` as ``refconv.dynamic_rnn(cell, inputs,
return_gates=True)`` does. The learner compares the two, gate by gate and step
by step (``refconv.compare`` does it), and answers with the first gate, in the
order a step computes them, and the first step where they differ::

    report = check_bug_hunt({"gate": "z_i", "step": 1}, seed=suspect.seed)

The bugs are made by wrapping refconv's own step (other parameters, another
state handed on): the right step is never written twice.
"""

import numpy as np

from ..data import moving_shapes
from ..lstm import ConvLSTMCell, LSTMStateTuple, lstm_step
from ..rnn import dynamic_rnn
from ..vocabulary import LSTM_QUANTITIES
from .report import CaseResult, Mismatch, Report
from .runs import short_traceback

__all__ = ["Suspect", "check_bug_hunt", "BUGS"]

# Each bug: how the suspect's step differs from refconv's.
BUGS = ("W_ci and W_cf swapped", "the state carries c before its layer norm",
        "forget_bias left out", "z and z_o blocks swapped", "h fed back without the output gate")


class Suspect:
    """A ConvLSTM with one planted bug (see :data:`BUGS`), its twin refconv cell, and a run."""

    def __init__(self, seed=0, shape=(12, 10), channels=1, filters=3, kernel=(3, 3)):
        self.seed = int(seed)
        self.bug = BUGS[self.seed % len(BUGS)]
        self.cell = ConvLSTMCell(list(shape), filters, list(kernel), forget_bias=1.0,
                                 peephole=True, normalize=True)
        self.cell.build(channels, seed=self.seed)
        rng = np.random.default_rng(self.seed)
        for name in list(self.cell.params):          # trained-looking: nothing is 1 or 0
            if name.endswith("/gamma"):
                self.cell.params[name] = rng.uniform(0.5, 1.5, self.cell.params[name].shape)
            elif name.endswith("/beta") or name.startswith("W_c"):
                self.cell.params[name] = rng.normal(0, 0.5, self.cell.params[name].shape)

    def _params(self):
        params = dict(self.cell.params)
        if self.bug == "W_ci and W_cf swapped":
            params["W_ci"], params["W_cf"] = params["W_cf"], params["W_ci"]
        if self.bug == "z and z_o blocks swapped":
            z, z_i, z_f, z_o = np.split(params["kernel"], 4, axis=-1)
            params["kernel"] = np.concatenate([z_o, z_i, z_f, z], axis=-1)
        return params

    def run(self, inputs):
        """``(outputs [B, T, *S], gates)``, gates a dict name -> ``[B, T, *S]``, as refconv's."""
        inputs = np.asarray(inputs, dtype=np.float64)
        params = self._params()
        cell = self.cell
        if self.bug == "forget_bias left out":
            cell = ConvLSTMCell(list(cell.shape), cell.filters, list(cell.kernel), forget_bias=0.0)
        state = self.cell.zero_state(inputs.shape[0])
        outputs, gates = [], {name: [] for name in LSTM_QUANTITIES}
        for t in range(inputs.shape[1]):
            h, state, cache = lstm_step(inputs[:, t], state, params, cell)
            if self.bug == "the state carries c before its layer norm":
                state = LSTMStateTuple(cache.c_in, state.h)
            if self.bug == "h fed back without the output gate":
                state = LSTMStateTuple(state.c, np.tanh(cache.c))
            outputs.append(h)
            for name in LSTM_QUANTITIES:
                gates[name].append(getattr(cache, name))
        return (np.stack(outputs, axis=1),
                {name: np.stack(values, axis=1) for name, values in gates.items()})


def _truth(seed, inputs):
    """The first (step, gate) where the suspect differs from refconv, found by running both."""
    suspect = Suspect(seed)
    _, _, right = dynamic_rnn(suspect.cell, inputs, return_gates=True)
    _, wrong = suspect.run(inputs)
    for t in range(inputs.shape[1]):
        for name in LSTM_QUANTITIES:
            if not np.allclose(right[name][:, t], wrong[name][:, t], rtol=1e-10, atol=1e-12):
                return t, name
    raise AssertionError(f"the suspect of seed {seed} agrees with refconv: no bug to find")


def check_bug_hunt(answer, seed=0, inputs=None, *, seeds=None, hints=True):
    """Check a bug hunt: an answer ``{"gate": name, "step": t}``, or a function that finds it.

    ``answer`` is either the dict for ``Suspect(seed)``, or a function
    ``find_bug(suspect, inputs) -> {"gate": ..., "step": ...}``, which is then run
    on ``Suspect(s)`` for every ``s`` in ``seeds`` (default ``[seed]``): one case each.
    ``inputs`` is the video to run (default: a moving-shapes video of 8 steps). The
    answer is right when it names the first step at which the suspect's gates differ
    from refconv's, and the first quantity, in the order a step computes them
    (:data:`refconv.vocabulary.LSTM_QUANTITIES`), that differs at that step. The
    report does not tell the answer.
    """
    seeds = [seed] if seeds is None else list(seeds)
    cases = [_hunt_case(answer, s, inputs) for s in seeds]
    return Report("check_bug_hunt", getattr(answer, "__name__", "answer"), cases, 1e-10, 1e-12,
                  hints, kind="hunt", step_word="answer")


def _hunt_case(answer, seed, inputs):
    if inputs is None:
        inputs = moving_shapes(batch_size=2, timesteps=8, shape=(12, 10), channels=1, seed=seed)
    inputs = np.asarray(inputs, dtype=np.float64)
    step, gate = _truth(seed, inputs)
    names = ("step", "gate")
    errors = np.zeros((2, 1))
    first = None
    if callable(answer):
        try:
            answer = answer(Suspect(seed), inputs.copy())
        except Exception as error:       # a learner's bug: report it, do not crash the check
            first = Mismatch(0, None, np.inf, problem=short_traceback(error))
    if first is not None:
        pass
    elif not isinstance(answer, dict):
        first = Mismatch(0, None, np.inf, problem=f"expected a dict {{'gate': ..., 'step': ...}}, "
                                                  f"got {type(answer).__name__}")
    elif answer.get("step") != step:
        yours = answer.get("step")
        direction = ("the suspect already differs earlier" if isinstance(yours, int)
                     and yours > step else "nothing differs yet at that step"
                     if isinstance(yours, int) else "give the step as an int")
        first = Mismatch(0, "step", np.inf, problem=f"step {yours!r} is not the first step "
                                                    f"where the suspect differs: {direction}")
    elif answer.get("gate") != gate:
        yours = answer.get("gate")
        order = ", ".join(LSTM_QUANTITIES)
        first = Mismatch(0, "gate", np.inf, problem=(
            f"the step is right; {yours!r} is not the first quantity that differs there, in "
            f"the order a step computes them ({order})"))
    if first is not None:
        errors[names.index(first.name) if first.name else 0, 0] = np.inf
    return CaseResult({"seed": seed}, names, errors, first)
