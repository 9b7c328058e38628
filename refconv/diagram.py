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

import textwrap

from matplotlib.patches import FancyArrowPatch, FancyBboxPatch

from .figures import SMALLEST, WIDTH, figure, style

__all__ = ["step_diagram"]

_COLOURS = {"input": "#dddddd", "conv": "#f4d58d", "block": "#bcd7ee", "ln": "#c9e7c0",
            "gate": "#f2b8b5", "state": "#e0c8f0", "op": "#ffffff"}


def step_diagram(peephole=True, normalize=True, forget_bias=1.0):
    """A ``Figure`` of one ConvLSTM step with the given options (the seed's defaults by default).

    The step reads top to bottom: the inputs and the one convolution, then the four
    blocks side by side (each through its peephole, layer norm and squashing), then
    the new state and output. It is ``viz.WIDTH`` wide with text of ``viz.SMALLEST``
    points or more, so a page shows it at full size.
    """
    if not isinstance(peephole, bool) or not isinstance(normalize, bool):
        raise TypeError(f"peephole, normalize: expected True or False, got {peephole!r}, {normalize!r}")
    with style():
        fig = figure(WIDTH, 9.1)
    ax = fig.subplots()
    ax.set_xlim(0, 14)            # half an inch a unit, across and down
    ax.set_ylim(-1.7, 16.4)
    ax.set_axis_off()
    purple = "#7a4fa0"

    def box(x, y, text, kind, width=2.9, height=1.0):
        ax.add_patch(FancyBboxPatch((x - width / 2, y - height / 2), width, height,
                                    boxstyle="round,pad=0.05", facecolor=_COLOURS[kind],
                                    edgecolor="0.25", linewidth=1))
        ax.text(x, y, text, ha="center", va="center", fontsize=SMALLEST)
        return (x, y, width, height)

    def side(b, where):
        """The middle of a box's side: "left", "right", "top" or "bottom"."""
        x, y, width, height = b
        return {"left": (x - width / 2, y), "right": (x + width / 2, y),
                "top": (x, y + height / 2), "bottom": (x, y - height / 2)}[where]

    def arrow(start, end, colour="0.2"):
        ax.add_patch(FancyArrowPatch(start, end, arrowstyle="-|>", mutation_scale=11,
                                     color=colour, linewidth=1.2, shrinkA=0, shrinkB=0))

    def line(points, colour=purple, dashed=False):
        xs, ys = zip(*points)
        ax.plot(xs, ys, color=colour, linewidth=1.2, linestyle="--" if dashed else "-")

    # Inputs and the one convolution.
    x_in = box(1.6, 15.2, "$x_t$\n[B, *S, C_in]", "input", width=2.6)
    h_in = box(1.6, 13.8, "$h_{t-1}$\n[B, *S, F]", "input", width=2.6)
    cat = box(4.9, 14.5, "concat\n(channels)", "op", width=2.0)
    conv = box(9.0, 14.5, "conv(xh, kernel)\nkernel [*k, C_in+F, 4F]"
               + ("" if normalize else "\n+ bias [4F]"), "conv", width=4.2,
               height=1.0 if normalize else 1.4)
    arrow(side(x_in, "right"), side(cat, "left"))
    arrow(side(h_in, "right"), side(cat, "left"))
    arrow(side(cat, "right"), side(conv, "left"))

    # The four blocks side by side, each down through its peephole, LN and squashing.
    columns = {"z": 1.8, "z_i": 5.2, "z_f": 8.6, "z_o": 12.0}
    squash = {"z": "tanh", "z_i": "σ", "z_f": f"σ( · + {forget_bias:g})", "z_o": "σ"}
    meaning = {"z": "fusion of x and h", "z_i": "input gate", "z_f": "forget gate",
               "z_o": "output gate"}
    ends, peeps = {}, {}
    for name, x in columns.items():
        block = box(x, 11.8, f"${name}$\n{meaning[name]}", "block")
        arrow(side(conv, "bottom"), side(block, "top"))
        last = block
        if peephole and name != "z":
            which = "$c_t$ (new)" if name == "z_o" else "$c_{t-1}$ (old)"
            peeps[name] = box(x, 10.2, f"+ $W_{{c{name[-1]}}}$ ∘ {which}", "state")
            last = peeps[name]
            arrow(side(block, "bottom"), side(last, "top"))
        if normalize:
            ln = box(x, 8.6, "LN", "ln", width=1.4)
            arrow(side(last, "bottom"), side(ln, "top"))
            last = ln
        gate = box(x, 7.0, squash[name], "gate", width=2.4)
        arrow(side(last, "bottom"), side(gate, "top"))
        ends[name] = gate

    # The peepholes' own boxes name the c they read (old for z_i and z_f, new for z_o).
    # c_t = z_f * c_{t-1} + z_i * tanh(z), then LN(c_t), then h_t.
    new_c = box(3.6, 4.4, "$c_t = z_f ∘ c_{t-1}$\n$+\\ z_i ∘ \\tanh(z)$", "state",
                width=3.4, height=1.2)
    for name in ("z", "z_i", "z_f"):
        arrow(side(ends[name], "bottom"), side(new_c, "top"))
    c_in = box(1.5, 1.9, "$c_{t-1}$\n(the state)", "state", width=2.2)
    line([side(c_in, "right"), (3.6, 1.9)])
    arrow((3.6, 1.9), side(new_c, "bottom"), colour=purple)
    ax.text(0.3, 0.8, "$c_{t-1}$: into the forget gate's product"
            + (" and the peepholes of $z_i$, $z_f$" if peephole else ""), fontsize=SMALLEST,
            color=purple)
    if peephole:   # the new c (before its LN) up into z_o's peephole
        right = side(peeps["z_o"], "left")
        line([(5.3, 4.7), (10.3, 4.7), (10.3, right[1]), right], dashed=True)
        ax.text(7.8, 4.8, "new c" + (" (before LN)" if normalize else "") + "\ninto z_o's peephole",
                fontsize=SMALLEST, color=purple, ha="center", va="bottom")
    if normalize:
        ln_c = box(8.0, 3.0, "LN($c_t$)", "ln", width=1.6)
        arrow((3.6 + 1.7, 4.0), side(ln_c, "left"))   # from c_t's corner: the dashed line leaves above
        c_state = ln_c
    else:
        c_state = new_c
    h_out = box(11.9, 3.0, "$h_t = z_o ∘ \\tanh(%s)$" % ("LN(c_t)" if normalize else "c_t"),
                "gate", width=3.6)
    arrow(side(ends["z_o"], "bottom"), side(h_out, "top"))
    start = side(c_state, "right") if normalize else (c_state[0] + 1.7, c_state[1] - 0.3)
    arrow(start, side(h_out, "left"))
    ax.text(8.0, 1.8, "to step t+1: " + ("$c_t$ := LN($c_t$)\n(the normalised c is the state)"
                                          if normalize else "$c_t$"),
            fontsize=SMALLEST, ha="center", va="center", color=purple)
    arrow(side(c_state, "bottom") if normalize else (c_state[0] + 0.9, c_state[1] - 0.6),
          (8.0, 2.15) if normalize else (7.0, 2.0), colour=purple)
    ax.text(11.9, 1.8, "$h_t$: output\nand next step's h", fontsize=SMALLEST, ha="center",
            va="center")
    arrow(side(h_out, "bottom"), (11.9, 2.1))

    # What a learner must not miss.
    if normalize:
        notes = ("LN subtracts the mean over the whole frame, so a bias added before it "
                 "vanishes: with layer norm the cell has no bias (LN's beta plays its part), "
                 "and the forget bias is added after LN. The state carried on is LN(c_t): "
                 "gradients back through time pass through layer norm's Jacobian; Ba et al. "
                 "(2016) carry the unnormalised c.")
    else:
        notes = ("Without layer norm each block has a bias; the forget bias is added to "
                 "z_f's before its sigmoid (Shi et al. 2015's cell when peepholes are on).")
    ax.text(0.1, 0.2, textwrap.fill(notes, 100), fontsize=SMALLEST, color="0.25", va="top")
    options = f"peephole={peephole}, normalize={normalize}, forget_bias={forget_bias:g}"
    ax.set_title(f"One step of the seed's ConvLSTM cell; ∘: element-wise product\n({options})")
    return fig
