"""refconv.diagram: the step diagram shows what the cell's options make it compute.

Oracle: SPEC.md's step, read as a checklist of what must be drawn for each option
(a layer norm box per block and for c only with normalize; peephole boxes for z_i, z_f
reading the old c and for z_o reading the new c only with peephole; a bias only without
normalize).
"""

import pytest
from matplotlib.figure import Figure

from refconv import diagram


def texts(fig):
    return [t.get_text() for ax in fig.axes for t in ax.texts]


@pytest.mark.parametrize("peephole", [True, False])
@pytest.mark.parametrize("normalize", [True, False])
def test_the_diagram_follows_the_options(peephole, normalize):
    fig = diagram.step_diagram(peephole=peephole, normalize=normalize)
    assert isinstance(fig, Figure)
    words = texts(fig)
    assert sum(w == "LN" for w in words) == (4 if normalize else 0)     # one per block
    assert any("LN($c_t$)" in w for w in words) == normalize           # the state is LN(c)
    assert any("+ bias" in w for w in words) == (not normalize)        # a bias before LN would vanish
    peepholes = [w for w in words if "$W_{c" in w]
    assert len(peepholes) == (3 if peephole else 0)
    if peephole:
        assert sum("(old)" in w for w in peepholes) == 2 and sum("(new)" in w for w in peepholes) == 1
        assert any("$W_{co}$" in w and "(new)" in w for w in peepholes)
    for name in ("z", "z_i", "z_f", "z_o"):
        assert any(w.startswith(f"${name}$") for w in words), name
    assert any("σ( · + 1)" in w for w in words)                         # the forget bias, after LN


def test_the_diagram_names_bad_options():
    with pytest.raises(TypeError, match="peephole, normalize: expected True or False"):
        diagram.step_diagram(peephole="yes")


@pytest.mark.parametrize("forget_bias", [0.0, 0.5, 2.25])
def test_the_forget_bias_drawn_is_the_one_asked_for(forget_bias):
    words = texts(diagram.step_diagram(forget_bias=forget_bias))
    gates = [w for w in words if w.startswith("σ(")]
    assert gates == [f"σ( · + {forget_bias:g})"], gates        # only z_f's, with its value
    assert sum(w == "σ" for w in words) == 2                      # z_i and z_o: plain sigmoids
    assert any(f"forget_bias={forget_bias:g}" in w for w in [diagram.step_diagram(
        forget_bias=forget_bias).axes[0].get_title()])


def _box_of(fig, label):
    """The (x, y) centre of the box whose text is ``label``."""
    (text,) = [t for t in fig.axes[0].texts if t.get_text() == label]
    return text.get_position()


def _arrows_from(fig, x, y, half_width=1.0, half_height=0.7):
    """The arrows whose tail lies on the box centred at (x, y)."""
    from matplotlib.patches import FancyArrowPatch
    tails = []
    for patch in fig.axes[0].patches:
        if isinstance(patch, FancyArrowPatch) and patch._posA_posB is not None:
            (xa, ya), head = patch._posA_posB
            if abs(xa - x) <= half_width and abs(ya - y) <= half_height:
                tails.append(head)
    return tails


@pytest.mark.parametrize("normalize", [True, False])
def test_the_state_carried_on_and_read_by_h_is_the_normalised_c_with_layer_norm(normalize):
    """With layer norm, the arrows to h_t and to step t+1 leave the LN(c_t) box, not c_t's."""
    fig = diagram.step_diagram(normalize=normalize)
    new_c = _box_of(fig, "$c_t = z_f ∘ c_{t-1}$\n$+\\ z_i ∘ \\tanh(z)$")
    h = _box_of(fig, "$h_t = z_o ∘ \\tanh(%s)$" % ("LN(c_t)" if normalize else "c_t"))
    carried = _box_of(fig, "LN($c_t$)") if normalize else new_c
    heads = _arrows_from(fig, *carried, half_width=1.8, half_height=0.7)
    assert any(abs(hx - h[0]) < 1.9 and abs(hy - h[1]) < 0.6 for hx, hy in heads), heads
    (note,) = [t.get_position() for t in fig.axes[0].texts if t.get_text().startswith("to step t+1")]
    assert any(abs(hx - note[0]) < 1.5 and abs(hy - note[1]) < 0.8 for hx, hy in heads), heads
    if normalize:   # c_t itself goes only into its layer norm (the dashed line is no arrow)
        (head,) = _arrows_from(fig, *new_c, half_width=1.8)
        assert head == pytest.approx((carried[0] - 0.8, carried[1]))
