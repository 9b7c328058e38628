"""Hints, in two tiers: a nudge (where to look) first, the formula only when asked.

``HINTS[name] = (nudge, formula)``. A report shows the nudge of its first
wrong quantity; ``report.hint(2)`` gives the formula.
"""

__all__ = ["HINTS", "hint_text"]

HINTS = {
    # --- one LSTM step, forward (notebook 2)
    "z": ("z is the content, not a gate: which block of y is it, which activation does it get, "
          "and is the bias (or the layer norm) there?",
          "z = tanh(block 0 of conv(concat([x, h]), kernel)): concat x first, then h; split "
          "the 4F channels in the order z, z_i, z_f, z_o; + bias[block 0] without normalize, "
          "LN with z/gamma, z/beta with normalize (no bias then)."),
    "z_i": ("z_i is the input gate: check its block, its peephole (which c?) and its sigmoid.",
            "z_i = sigmoid(block 1 (+ W_ci * the OLD c with peephole), then LN with "
            "z_i/gamma, z_i/beta when normalize)."),
    "z_f": ("z_f is the forget gate: where does forget_bias go, and is it the value you "
            "were given?",
            "z_f = sigmoid(block 2 (+ W_cf * the OLD c with peephole), LN when normalize, "
            "and + forget_bias last, just before the sigmoid)."),
    "c": ("the memory update: which gate scales the old c, which one the new content?",
          "c_new = c * z_f + z_i * z (z after its tanh); with normalize the state is "
          "LN(c_new) with c/gamma, c/beta."),
    "z_o": ("z_o is the output gate: its peephole reads a different c from the other two.",
            "z_o = sigmoid(block 3 (+ W_co * the NEW c, before its layer norm, with "
            "peephole), LN when normalize)."),
    "h": ("h shows the memory through the output gate: which c, squashed how?",
          "h = z_o * tanh(c_new), with the new c after its layer norm when normalize."),
    # --- one GRU step (notebook 3)
    "r": ("r is the reset gate: block 0 of the gates' convolution.",
          "r = sigmoid(block 0 of conv(concat([x, h]), gates/kernel) (+ gates/bias[:F]), "
          "LN with r/gamma, r/beta when normalize)."),
    "u": ("u is the update gate: block 1 of the same convolution.",
          "u = sigmoid(block 1 of the same convolution (+ gates/bias[F:]), LN with "
          "u/gamma, u/beta when normalize)."),
    "candidate": ("where does r act: on h before the candidate's convolution, or after it?",
                  "candidate = tanh(conv(concat([x, r * h]), candidate/kernel) "
                  "(+ candidate/bias), LN when normalize): r multiplies h BEFORE the "
                  "convolution."),
    "h_gru": ("which of u and 1 - u keeps the old h?",
              "h = u * h_old + (1 - u) * candidate: u keeps the OLD h."),
    # --- one LSTM step, backward (notebook 5)
    "d_z_o": ("undo h = z_o * tanh(c) for z_o.",
              "h = z_o * tanh(c), so d_z_o = d_h * tanh(c), with c the new (normalised) state."),
    "d_c": ("two paths reach the new c: through h, and from the next step.",
            "d_c = the d_c you were given (from the next step) + d_h * z_o * (1 - tanh(c)**2): "
            "h reads c through tanh, whose derivative is 1 - tanh**2."),
    "d_z_o_in": ("back through the sigmoid, then (with normalize) through z_o's layer norm.",
                 "d_z_o * z_o * (1 - z_o); then, with normalize, layer_norm_backward("
                 "cache['z_o_in'], params['z_o/gamma'], ...)[0]."),
    "d_c_in": ("c_in reaches the loss through its layer norm and through z_o's peephole.",
               "with normalize, d_c back through LN(c): layer_norm_backward(cache['c_in'], "
               "params['c/gamma'], d_c)[0] (d_c itself without); with "
               "peephole add d_z_o_in * W_co, since z_o's peephole reads c_in."),
    "d_z_f": ("undo c_in = c_prev * z_f + z_i * z for z_f.",
              "c_in = c_prev * z_f + z_i * z, so d_z_f = d_c_in * c_prev."),
    "d_z_i": ("undo c_in = c_prev * z_f + z_i * z for z_i.",
              "c_in = c_prev * z_f + z_i * z, so d_z_i = d_c_in * z (z after its tanh)."),
    "d_z": ("undo c_in = c_prev * z_f + z_i * z for z.",
            "c_in = c_prev * z_f + z_i * z, so d_z = d_c_in * z_i."),
    "d_z_f_in": ("back through the sigmoid (forget_bias is a constant), then the layer norm.",
                 "d_z_f * z_f * (1 - z_f), then with normalize layer_norm_backward on "
                 "cache['z_f_in'] with params['z_f/gamma']."),
    "d_z_i_in": ("back through the sigmoid, then the layer norm.",
                 "d_z_i * z_i * (1 - z_i), then with normalize layer_norm_backward on "
                 "cache['z_i_in'] with params['z_i/gamma']."),
    "d_z_in": ("back through tanh, then the layer norm.",
               "d_z * (1 - z**2), then with normalize layer_norm_backward on cache['z_in'] "
               "with params['z/gamma']."),
    "d_c_prev": ("the old c is read by the memory update and by two peepholes.",
                 "d_c_prev = d_c_in * z_f (the forget gate's path: the memory's highway "
                 "through time), + d_z_i_in * W_ci + d_z_f_in * W_cf with peephole."),
    "d_x": ("the four *_in gradients are the blocks of d_y; undo the convolution.",
            "d_y = concat([d_z_in, d_z_i_in, d_z_f_in, d_z_o_in]) on the channel axis; "
            "d_xh, d_kernel = conv_nd_backward(concat([x, h_prev]), kernel, d_y); d_x is "
            "d_xh's first C channels."),
    "d_h_prev": ("x comes first in the concat.",
                 "d_h_prev is the last F channels of d_xh from conv_nd_backward."),
    "d_kernel": ("the kernel's gradient comes out of the same conv_nd_backward.",
                 "d_kernel is the second result of conv_nd_backward(concat([x, h_prev]), "
                 "kernel, d_y), with d_y = concat([d_z_in, d_z_i_in, d_z_f_in, d_z_o_in])."),
    "d_bias": ("the bias is added at every pixel of every sample.",
               "d_bias = d_y summed over the batch and every pixel (4F values)."),
    "d_W_ci": ("a peephole weight is shared by every sample of the batch.",
               "z_i_in = block 1 + W_ci * c_prev: d_W_ci = (d_z_i_in * c_prev) summed over "
               "the batch."),
    "d_W_cf": ("a peephole weight is shared by every sample of the batch.",
               "z_f_in = block 2 + W_cf * c_prev: d_W_cf = (d_z_f_in * c_prev) summed over "
               "the batch."),
    "d_W_co": ("which c did z_o's peephole read in the forward?",
               "z_o_in = block 3 + W_co * c_in: d_W_co = (d_z_o_in * c_in) summed over the "
               "batch, with c_in the new c BEFORE its layer norm."),
    "d_/gamma": ("layer_norm_backward returns three things.",
                 "d_gamma and d_beta of a layer norm are the 2nd and 3rd results of "
                 "layer_norm_backward(its input, its gamma, the gradient of its output)."),
    # --- backpropagation through time (notebook 5)
    "d_inputs": ("at step t the gradient reaching h is the output's d_outputs[t] plus what "
                 "step t + 1 handed back.",
                 "for t = T-1 .. 0: d_x, d_prev, d_p = lstm_step_backward(d_outputs[:, t], "
                 "d_state, caches[t], params, cell); d_inputs[:, t] = d_x; d_state = d_prev; "
                 "add d_p into d_params."),
    "d_initial_state": ("what is left of d_state after the loop reaches t = 0?",
                        "the d_state after the last (t = 0) backward step is the gradient "
                        "with respect to the initial state."),
    "d_params": ("every step uses the same weights.",
                 "each parameter's gradient is the sum over all steps of that step's d_params."),
    # --- convolution (notebook 1)
    "padding": ("TensorFlow's SAME: the output has ceil(n / stride) values; how many zeros "
                "does that take, and which side gets the odd one?",
                "out = ceil(n / s); total = max((out - 1) * s + (k - 1) * d + 1 - n, 0); "
                "before = total // 2, after = total - before."),
    "y": ("cross-correlation: output pixel i reads x[i - before + j] * kernel[j], no flip.",
          "pad x with (before, after) zeros on the spatial axis (TensorFlow's SAME), then "
          "y = sum over j of xp[:, j:j + W] @ kernel[j]  (each [B, W, C] @ [C, F])."),
    # --- sequences (notebook 4)
    "output": ("past a row's length the output is zero.",
               "output = where(t < sequence_length[b], h_new, 0) for each row b."),
    "state_c": ("past a row's length the state is carried, not reset.",
                "c = where(t < sequence_length[b], c_new, c_old): zero only if it was zero."),
    "state_h": ("past a row's length the state is carried, not reset.",
                "h = where(t < sequence_length[b], h_new, h_old)."),
    "reversed": ("only the first sequence_length[b] steps of row b are reversed; the padding "
                 "stays where it is.",
                 "out[b, t] = x[b, length_b - 1 - t] for t < length_b, x[b, t] after."),
    # --- the bug hunt (notebook 6)
    "gate": ("compare every gate of the suspect with refconv's at every step, and take the "
             "earliest step, then the first gate in computed order.",
             "for each t, for each name in vocabulary.LSTM_QUANTITIES: the first name whose "
             "arrays differ beyond 1e-10 is the gate; its t is the step."),
}
HINTS["step"] = HINTS["gate"]


def hint_text(name, level, kind="LSTM"):
    """The hint of tier ``level`` (1 nudge, 2 formula) for the quantity ``name``, or None."""
    key = name
    if name == "h" and kind == "GRU":
        key = "h_gru"
    elif name.startswith("d_") and name.endswith(("/gamma", "/beta")):
        key = "d_/gamma"
    elif name in ("padding_before", "padding_after"):
        key = "padding"
    elif name in ("d_initial_c", "d_initial_h"):
        key = "d_initial_state"
    elif name == "d_x" and kind == "BPTT":     # the loop's d_inputs[:, t], not one step's d_x
        key = "d_inputs"
    elif name.startswith("d_") and name not in HINTS and kind == "BPTT":
        key = "d_params"
    tiers = HINTS.get(key)
    if tiers is None:
        return None
    return tiers[min(max(int(level), 1), len(tiers)) - 1]
