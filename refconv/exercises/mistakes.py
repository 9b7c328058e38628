"""Recognisable mistakes: when the first wrong quantity is exactly what a known slip computes, say so.

Each recogniser gets the first wrong quantity's name, the student's value, and
the reference step's cache (teacher forcing: everything the step read was right),
and tries the known slips for that quantity, one line each from the reference's
own intermediate values. The first slip that reproduces the student's value (to
the case's tolerance) is named; a value that matches none gets the generic hint.

These lines are deliberately *wrong* formulas; the right ones are refconv's own
steps (``lstm_step``, ``gru_step``, ``lstm_step_backward``), never repeated here.
"""

import numpy as np

from ..activations import sigmoid
from ..layer_norm import EPSILON, along_channels, layer_norm
from ..vocabulary import LSTM_BLOCKS
from .runs import close

__all__ = ["lstm_forward", "gru_forward", "lstm_backward"]

# The block of y each quantity reads when the kernel is taken for Keras's order (i, f, c, o).
KERAS_BLOCK = {"z": 2, "z_i": 0, "z_f": 1, "z_o": 3}
PEEPHOLE_OF = {"z_i": "W_ci", "z_f": "W_cf", "z_o": "W_co"}


def _first(yours, candidates, rtol, atol):
    for label, make in candidates:
        try:
            candidate = make()
        except (KeyError, ValueError, TypeError):   # a slip that does not apply to this case
            continue
        if candidate is not None and close(yours, candidate, rtol, atol):
            return label
    return None


def _per_channel_ln(v, gamma, beta, ca, eps):
    """The slip: each channel of each sample normalised on its own (refconv: all channels together)."""
    axes = tuple(a for a in range(1, v.ndim) if a != ca % v.ndim)
    mean = v.mean(axis=axes, keepdims=True)
    var = v.var(axis=axes, keepdims=True)
    return (along_channels(gamma, v.ndim, ca) * (v - mean) / np.sqrt(var + eps)
            + along_channels(beta, v.ndim, ca))


def _norm_slips(scope, params, ca, eps):
    """Layer norms a learner writes by mistake, each ``(label, function of v)``."""
    gamma, beta = params[scope + "/gamma"], params[scope + "/beta"]
    slips = [("per-channel layer norm: you normalised each channel on its own; refconv (TF1) "
              "normalises each sample over every position AND channel together",
              lambda v: _per_channel_ln(v, gamma, beta, ca, eps)),
             ("your layer norm leaves out gamma and beta",
              lambda v: layer_norm(v, np.ones_like(gamma), np.zeros_like(beta), ca, eps))]
    if eps != EPSILON:
        slips.append((f"your layer norm uses epsilon {EPSILON:g}, not the norm_epsilon you "
                      f"were given ({eps:g})", lambda v: layer_norm(v, gamma, beta, ca, EPSILON)))
    return slips


def lstm_forward(name, yours, student, reference, context):
    """Name the slip behind a wrong LSTM quantity ``name``, or None."""
    cache, params, cell = context["cache"], context["params"], context["cell"]
    rtol, atol = context["rtol"], context["atol"]
    ca, eps, fb = cell.channel_axis, cell.norm_epsilon, cell.forget_bias
    blocks = dict(zip(LSTM_BLOCKS, np.split(cache.y, 4, axis=ca)))

    def ln(v, scope):
        return layer_norm(v, params[scope + "/gamma"], params[scope + "/beta"], ca, eps)

    def finish(q, v_in, norm=None):
        """The rest of quantity q's line from its pre-norm value (the right way)."""
        v = (norm or (lambda v: ln(v, q)))(v_in) if cell.normalize else v_in
        if q == "z_f":
            v = v + fb
        return cell.activation(v) if q == "z" else sigmoid(v)

    def peep(q, c):
        return params[PEEPHOLE_OF[q]] * c if cell.peephole and q in PEEPHOLE_OF else 0

    candidates = []
    if name in LSTM_BLOCKS:
        old_c = cache.c_in if name == "z_o" else cache.c_prev
        for j, other in enumerate(LSTM_BLOCKS):
            if other == name:
                continue
            label = (f"your {name} is read from block {j} of y, {other}'s block: refconv (like "
                     f"the seed and TF1) splits y as {', '.join(LSTM_BLOCKS)}")
            if KERAS_BLOCK[name] == j:
                label += " (you used Keras's order i, f, c, o)"
            candidates.append((label, lambda j=j: finish(name, np.split(cache.y, 4, axis=ca)[j]
                                                          + peep(name, old_c))))
        if cell.normalize:
            for label, norm in _norm_slips(name, params, ca, eps):
                candidates.append((label, lambda norm=norm: finish(name, getattr(
                    cache, name + "_in"), norm)))
        if cell.peephole and name in PEEPHOLE_OF:
            candidates.append((f"your {name} has no peephole term {PEEPHOLE_OF[name]} * c",
                               lambda: finish(name, blocks[name])))
        if not cell.normalize:
            bias = np.split(along_channels(params["bias"], cache.y.ndim, ca), 4, axis=ca)
            j = LSTM_BLOCKS.index(name)
            candidates.append((f"your {name} leaves out its block of the bias",
                               lambda: finish(name, getattr(cache, name + "_in") - bias[j])))
    if name in ("z_i", "z_f") and cell.peephole:
        news = [("c before its layer norm", cache.c_in), ("c after its layer norm", cache.c)]
        if isinstance(student.get("c"), np.ndarray):
            news.append(("c", student["c"]))
        for what, c_new in news:
            candidates.append((f"your {name}'s peephole reads the NEW {what}; W_ci and W_cf "
                               f"read the OLD c (the state handed to the step)",
                               lambda c_new=c_new: finish(name, blocks[name] + peep(name, c_new))))
    if name == "z_f":
        norm = (lambda v: ln(v, "z_f")) if cell.normalize else (lambda v: v)
        candidates += [
            ("no forget_bias: z_f = sigmoid(... + forget_bias)",
             lambda: sigmoid(norm(cache.z_f_in))),
            (f"forget_bias hard-coded as 1.0: use the forget_bias you were given ({fb:.4g})",
             lambda: sigmoid(norm(cache.z_f_in) + 1.0) if fb != 1.0 else None),
            ("forget_bias added before the layer norm, which removes it again: add it after",
             lambda: sigmoid(norm(cache.z_f_in + fb)) if cell.normalize else None)]
    if name == "z_i":
        norm = (lambda v: ln(v, "z_i")) if cell.normalize else (lambda v: v)
        candidates.append(("forget_bias added to the input gate z_i: it belongs to z_f",
                           lambda: sigmoid(norm(cache.z_i_in) + fb)))
    if name == "z_o" and cell.peephole:
        candidates.append(("your z_o's peephole reads the OLD c: z_o's reads the NEW c "
                           "(this step's, before its layer norm)",
                           lambda: finish("z_o", blocks["z_o"] + params["W_co"] * cache.c_prev)))
        if cell.normalize:
            candidates.append(("your z_o's peephole reads the new c AFTER its layer norm: it "
                               "reads c before it",
                               lambda: finish("z_o", blocks["z_o"] + params["W_co"] * cache.c)))
    if name == "c":
        normed = (lambda v: ln(v, "c")) if cell.normalize else (lambda v: v)
        candidates += [
            ("z_f and z_i swapped: c = c * z_f + z_i * z (z_f keeps the old c)",
             lambda: normed(cache.c_prev * cache.z_i + cache.z_f * cache.z)),
            ("tanh applied to z twice: z is already after its tanh",
             lambda: normed(cache.c_prev * cache.z_f + cache.z_i * np.tanh(cache.z))),
            ("your c is not layer-normalised: with normalize the state is LN(c)",
             lambda: cache.c_in if cell.normalize else None)]
        if cell.normalize:
            candidates += [(label, lambda norm=norm: norm(cache.c_in))
                           for label, norm in _norm_slips("c", params, ca, eps)]
    if name == "h":
        candidates += [
            ("h reads c before its layer norm: h = z_o * tanh(LN(c))",
             lambda: cache.z_o * np.tanh(cache.c_in) if cell.normalize else None),
            ("the tanh is missing: h = z_o * tanh(c)", lambda: cache.z_o * cache.c)]
    return _first(yours, candidates, rtol, atol)


def gru_forward(name, yours, student, reference, context):
    """Name the slip behind a wrong GRU quantity ``name``, or None."""
    cache, params, cell = context["cache"], context["params"], context["cell"]
    rtol, atol = context["rtol"], context["atol"]
    ca, eps = cell.channel_axis, cell.norm_epsilon

    def finish(q, v_in, norm=None):
        if cell.normalize:
            v_in = (norm or (lambda v: layer_norm(v, params[q + "/gamma"], params[q + "/beta"],
                                                  ca, eps)))(v_in)
        return cell.activation(v_in) if q == "candidate" else sigmoid(v_in)

    candidates = []
    if name in ("r", "u"):
        other = "u" if name == "r" else "r"
        candidates.append((f"r and u swapped: your {name} is read from {other}'s block "
                           f"(gates/kernel's blocks are r, u)",
                           lambda: finish(name, getattr(cache, other + "_in"))))
        if cell.normalize:
            candidates += [(label, lambda norm=norm: finish(name, getattr(cache, name + "_in"),
                                                            norm))
                           for label, norm in _norm_slips(name, params, ca, eps)]
    if name == "candidate":
        def r_after(bias_after):
            xh = np.concatenate([cache.x, cache.h_prev], axis=ca)
            y = cell._conv(xh, params, "candidate")
            if cell.normalize or not bias_after:
                return finish("candidate", cache.r * y)
            bias = along_channels(params["candidate/bias"], y.ndim, ca)
            return finish("candidate", cache.r * (y - bias) + bias)
        candidates += [("r applied after the convolution: r multiplies h before it, "
                        "conv(concat([x, r * h]))", lambda b=b: r_after(b)) for b in (False, True)]
        if cell.normalize:
            candidates += [(label, lambda norm=norm: finish("candidate", cache.candidate_in, norm))
                           for label, norm in _norm_slips("candidate", params, ca, eps)]
    if name == "h":
        candidates.append(("u and 1 - u swapped: h = u * h_old + (1 - u) * candidate (u keeps "
                           "the OLD h)",
                           lambda: (1 - cache.u) * cache.h_prev + cache.u * cache.candidate))
    return _first(yours, candidates, rtol, atol)


def lstm_backward(name, yours, student, reference, context):
    """Name the slip behind a wrong gradient ``name`` of an LSTM backward step, or None."""
    cache, params, cell = context["cache"], context["params"], context["cell"]
    d_c_given, rtol, atol = context["d_c"], context["rtol"], context["atol"]
    candidates = []
    if name == "d_W_co":
        d_z_o_in = reference["d_z_o_in"]
        candidates += [
            ("d_W_co with the normalised c: z_o's peephole reads c_in, the new c BEFORE "
             "its layer norm", lambda: (d_z_o_in * cache.c).sum(axis=0)),
            ("d_W_co with the old c: z_o's peephole reads the NEW c (c_in)",
             lambda: (d_z_o_in * cache.c_prev).sum(axis=0)),
            ("d_W_co not summed over the batch", lambda: d_z_o_in * cache.c_in)]
    if name == "d_c":
        candidates.append(("you dropped d_c_next, the gradient the next step sent back for c: "
                           "add it",
                           lambda: reference["d_c"] - d_c_given))
    if name == "d_c_prev" and cell.peephole:
        candidates.append(("d_c_prev misses the peephole paths d_z_i_in * W_ci + d_z_f_in * W_cf",
                           lambda: reference["d_c_in"] * cache.z_f))
    if name in ("d_W_ci", "d_W_cf"):
        d_in = reference["d_z_i_in" if name == "d_W_ci" else "d_z_f_in"]
        candidates.append((f"{name} not summed over the batch", lambda: d_in * cache.c_prev))
    return _first(yours, candidates, rtol, atol)
