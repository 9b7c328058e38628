"""refconv's vocabulary: the names of every quantity and parameter, and their order, in one place.

Every module that lists the quantities of a step, the layer-norm scopes or the
parameter names takes them from here, so that they cannot disagree.

The order is the order in which a step *computes* them (SPEC.md, "one step"):
the LSTM computes the new ``c`` before the output gate ``z_o`` reads it (the
peephole ``W_co`` looks at the new ``c``), so ``c`` comes before ``z_o``.

* ``z``: the fusion of the input ``x`` and the previous hidden state ``h`` (not a gate);
* ``z_i``, ``z_f``, ``z_o``: the input, forget and output gates;
* ``c``, ``h``: the cell state (the memory) and the hidden state (the output);
* GRU: ``r`` (reset gate), ``u`` (update gate), ``candidate`` (the new content).
"""

__all__ = [
    "LSTM_BLOCKS", "LSTM_QUANTITIES", "LSTM_NORMS", "LSTM_PEEPHOLES", "LSTM_BACKWARD_QUANTITIES",
    "GRU_BLOCKS", "GRU_QUANTITIES", "GRU_NORMS",
    "QUANTITIES", "GATES", "TF1_LSTM_NORM_SCOPES", "TF1_GRU_NORM_SCOPES", "tf1_norm_scope",
    "DESCRIPTIONS",
]

# --- the LSTM ------------------------------------------------------------------
# The four blocks of the kernel's output channels, in the seed's order: [*k, C_in + F, 4F].
LSTM_BLOCKS = ("z", "z_i", "z_f", "z_o")
# Every quantity of one step, in the order a step computes them (c before z_o).
LSTM_QUANTITIES = ("z", "z_i", "z_f", "c", "z_o", "h")
# The layer norms, in call order (TF1 names them LayerNorm, LayerNorm_1, ... in this order).
LSTM_NORMS = ("z", "z_i", "z_f", "z_o", "c")
# The peephole weights: W_ci and W_cf read the old c, W_co the new one.
LSTM_PEEPHOLES = ("W_ci", "W_cf", "W_co")
# The gradients one backward step computes on its way, in that order (``lstm_step_backward(...,
# intermediates=True)``): after each gate's activation, then before its layer norm (``_in``,
# the blocks of d_y), then the step's inputs. d_c is through h and the next step only, d_c_in
# through every path (its layer norm and z_o's peephole).
LSTM_BACKWARD_QUANTITIES = ("d_z_o", "d_c", "d_z_o_in", "d_c_in", "d_z_f", "d_z_i", "d_z",
                            "d_z_f_in", "d_z_i_in", "d_z_in", "d_c_prev", "d_x", "d_h_prev")

# --- the GRU -------------------------------------------------------------------
# The two blocks of ``gates/kernel``'s output channels: [*k, C_in + F, 2F].
GRU_BLOCKS = ("r", "u")
GRU_QUANTITIES = ("r", "u", "candidate", "h")
GRU_NORMS = ("r", "u", "candidate")

# Every name a step can return with ``return_gates=True``, LSTM then GRU, in computed order.
QUANTITIES = LSTM_QUANTITIES + GRU_QUANTITIES[:-1]
# The quantities that are gates (squashed to (0, 1)); z, candidate, c and h are not.
GATES = ("z_i", "z_f", "z_o", "r", "u")

# --- TensorFlow 1's layer-norm scopes ------------------------------------------
def tf1_norm_scope(i):
    """TF1 numbers the layer norms of one scope in call order: ``LayerNorm``, ``LayerNorm_1``, ..."""
    return "LayerNorm" if i == 0 else f"LayerNorm_{i}"


TF1_LSTM_NORM_SCOPES = {name: tf1_norm_scope(i) for i, name in enumerate(LSTM_NORMS)}
TF1_GRU_NORM_SCOPES = {"r": "gates/LayerNorm", "u": "gates/LayerNorm_1",
                       "candidate": "candidate/LayerNorm"}

# --- one line each, for figure titles and reports ------------------------------
DESCRIPTIONS = {
    "z": "z: fusion of x and h (the new content)",
    "z_i": "z_i: input (memory) gate",
    "z_f": "z_f: forget gate",
    "z_o": "z_o: output gate",
    "c": "c: cell state (memory)",
    "h": "h: hidden state (output)",
    "r": "r: reset gate",
    "u": "u: update gate",
    "candidate": "candidate: new content",
}
