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
