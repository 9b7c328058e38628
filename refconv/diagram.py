"""One step of the seed's ConvLSTM cell, drawn by code: what flows where, and where layer norm sits.

:func:`step_diagram` draws SPEC.md's step (the article's names ``z``, ``z_i``,
``z_f``, ``z_o``, ``c``, ``h``) for the cell's options: peepholes and layer norm
on or off. Reading it left to right:

* ``x_t`` and ``h_{t-1}`` are concatenated and go through **one** convolution
  whose ``4F`` output channels are split into four blocks;
* the peepholes add ``W_ci * c_{t-1}`` to ``z_i`` and ``W_cf * c_{t-1}`` to
  ``z_f`` (the *old* state) and ``W_co * c_t`` to ``z_o`` (the *new* one, before
  its layer norm);
* layer norm (LN) follows each block; a bias before it would vanish (LN
  subtracts the mean over the frame), so with layer norm the cell has none, and
  the forget bias is added *after* LN, just before the sigmoid;
* ``c_t = z_f * c_{t-1} + z_i * tanh(z)``, then LN: the state carried to the
  next step is ``LN(c_t)``, unlike the classic cell (and Ba et al. 2016's
  layer-normalised LSTM), which carry ``c_t`` itself.
"""

from matplotlib.figure import Figure
from matplotlib.patches import FancyArrowPatch, FancyBboxPatch

__all__ = ["step_diagram"]

_COLOURS = {"input": "#dddddd", "conv": "#f4d58d", "block": "#bcd7ee", "ln": "#c9e7c0",
            "gate": "#f2b8b5", "state": "#e0c8f0", "op": "#ffffff"}


def step_diagram(peephole=True, normalize=True, forget_bias=1.0):
    """A ``Figure`` of one ConvLSTM step with the given options (the seed's defaults by default)."""
    if not isinstance(peephole, bool) or not isinstance(normalize, bool):
        raise TypeError(f"peephole, normalize: expected True or False, got {peephole!r}, {normalize!r}")
    fig = Figure(figsize=(12.5, 6.6), layout="constrained")
    ax = fig.subplots()
    ax.set_xlim(0, 25)
    ax.set_ylim(0, 13.2)
    ax.set_axis_off()

    def box(x, y, text, kind, width=1.9, height=0.9, size=9):
        ax.add_patch(FancyBboxPatch((x - width / 2, y - height / 2), width, height,
                                    boxstyle="round,pad=0.05", facecolor=_COLOURS[kind],
                                    edgecolor="0.25", linewidth=1))
        ax.text(x, y, text, ha="center", va="center", fontsize=size)
        return (x, y, width, height)

    def arrow(a, b, colour="0.2", style="-|>", dashed=False, label=None, rad=0.0):
        (xa, ya, wa, _), (xb, yb, wb, _) = a, b
        start, end = (xa + wa / 2, ya), (xb - wb / 2, yb)
        ax.add_patch(FancyArrowPatch(start, end, arrowstyle=style, mutation_scale=11,
                                     color=colour, linewidth=1.2,
                                     linestyle="--" if dashed else "-",
                                     connectionstyle=f"arc3,rad={rad}"))
        if label:
            ax.text((start[0] + end[0]) / 2, (start[1] + end[1]) / 2 + 0.2, label,
                    fontsize=7, color=colour, ha="center")

    def line(points, colour="0.2", dashed=False):
        xs, ys = zip(*points)
        ax.plot(xs, ys, color=colour, linewidth=1.2, linestyle="--" if dashed else "-")

    # Inputs and the one convolution.
    x_in = box(1.3, 10.6, "$x_t$\n[B, *S, C_in]", "input")
    h_in = box(1.3, 8.4, "$h_{t-1}$\n[B, *S, F]", "input")
    c_in = box(1.3, 2.0, "$c_{t-1}$\n(the state)", "state")
    cat = box(4.2, 9.5, "concat\n(channels)", "op", width=1.7)
    conv = box(7.0, 9.5, "conv(xh, kernel)\nkernel [*k, C_in+F, 4F]"
               + ("" if normalize else "\n+ bias [4F]"), "conv", width=2.9, height=1.3, size=8)
    arrow(x_in, cat)
    arrow(h_in, cat)
    arrow(cat, conv)

    # The four blocks, each through its peephole, LN and squashing.
    rows = {"z": 11.6, "z_i": 9.0, "z_f": 6.4, "z_o": 3.8}
    squash = {"z": "tanh", "z_i": "σ", "z_f": f"σ( · + {forget_bias:g})", "z_o": "σ"}
    meaning = {"z": "fusion of x and h", "z_i": "input gate", "z_f": "forget gate",
               "z_o": "output gate"}
    ends = {}
    for name, y in rows.items():
        block = box(10.6, y, f"${name}$\n{meaning[name]}", "block", width=2.0)
        arrow(conv, block, rad=0.0)
        last = block
        if peephole and name != "z":
            which = "$c_t$ (new)" if name == "z_o" else "$c_{t-1}$ (old)"
            peep = box(13.0, y, f"+ $W_{{c{name[-1]}}}$ ∘ {which}", "state", width=2.3, size=8)
            arrow(last, peep)
            last = peep
        if normalize:
            ln = box(15.3, y, "LN", "ln", width=1.1)
            arrow(last, ln)
            last = ln
        gate = box(17.4, y, squash[name], "gate", width=1.9)
        arrow(last, gate)
        ends[name] = gate

    # The peepholes' own boxes name the c they read (old for z_i and z_f, new for z_o).
    # c_t = z_f * c_{t-1} + z_i * tanh(z), then LN(c_t), then h_t.
    new_c = box(20.2, 7.7, "$c_t = z_f ∘ c_{t-1}$\n$+\\ z_i ∘ \\tanh(z)$", "state",
                width=2.9, height=1.2, size=9)
    for name in ("z", "z_i", "z_f"):
        arrow(ends[name], new_c)
    line([(2.25, 2.0), (19.6, 2.0), (19.6, 7.1)], colour="#7a4fa0")
    ax.text(10.6, 2.15, "$c_{t-1}$: into the forget gate's product"
            + (" and the peepholes of $z_i$, $z_f$" if peephole else ""), fontsize=8,
            color="#7a4fa0", ha="center")
    if peephole:   # the new c (before its LN) into z_o's peephole
        line([(20.2, 7.1), (20.2, 4.9), (13.0, 4.9), (13.0, rows["z_o"] + 0.45)], colour="#7a4fa0",
             dashed=True)
        ax.text(16.6, 5.05, "new c" + (" (before LN)" if normalize else "") + " into z_o's peephole",
                fontsize=7, color="#7a4fa0")
    if normalize:
        ln_c = box(22.8, 7.7, "LN($c_t$)", "ln", width=1.6)
        arrow(new_c, ln_c)
        c_state = ln_c
    else:
        c_state = new_c
    h_out = box(22.8, 3.8, "$h_t = z_o ∘ \\tanh(%s)$" % ("LN(c_t)" if normalize else "c_t"),
                "gate", width=3.2, size=9)
    arrow(ends["z_o"], h_out)
    ax.add_patch(FancyArrowPatch((c_state[0], c_state[1] - 0.45), (h_out[0] + 0.6, h_out[1] + 0.45),
                                 arrowstyle="-|>", mutation_scale=11, color="0.2"))
    ax.text(23.9, 11.0, "to step t+1:\n" + ("$c_t$ := LN($c_t$)\n(the normalised c\nis the state)"
                                             if normalize else "$c_t$"),
            fontsize=8, ha="center", va="center", color="#7a4fa0")
    ax.add_patch(FancyArrowPatch((c_state[0], c_state[1] + 0.45), (23.9, 10.1),
                                 arrowstyle="-|>", mutation_scale=11, color="#7a4fa0"))
    ax.text(24.1, 2.6, "$h_t$: output\nand next step's h", fontsize=8, ha="center")

    # What a learner must not miss.
    notes = []
    if normalize:
        notes.append("LN subtracts the mean over the whole frame, so a bias added before it "
                     "vanishes: with layer norm the cell has no bias (LN's beta plays its part), "
                     "and the forget bias is added after LN.")
        notes.append("The state carried on is LN(c_t): gradients back through time pass "
                     "through layer norm's Jacobian; Ba et al. (2016) carry the unnormalised c.")
    else:
        notes.append("Without layer norm each block has a bias; the forget bias is added to "
                     "z_f's before its sigmoid (Shi et al. 2015's cell when peepholes are on).")
    for k, note in enumerate(notes):
        ax.text(0.3, 0.75 - 0.5 * k, note, fontsize=7.5, color="0.25")
    options = f"peephole={peephole}, normalize={normalize}, forget_bias={forget_bias:g}"
    ax.set_title(f"One step of the seed's ConvLSTM cell ({options}); ∘: element-wise product",
                 fontsize=11)
    return fig
