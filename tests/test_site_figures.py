"""The notebooks' figures as the site shows them: ``refconv.viz.to_png``'s PNGs.

Each PNG is drawn at 150 dpi (its pixel size is the figure's inches times 150, and its
pHYs chunk says 150 dpi), and says what it shows (the ``Description`` text: the title
and each panel's title, the site's alt text) and the size of its smallest text (what
docs/check_site.py holds to 9 pt at full size). The oracle is the figure itself: the
sizes, titles and font sizes set here.
"""

import io

import pytest
from matplotlib.figure import Figure
from PIL import Image

from refconv import viz


def _figure(width=3.0, height=2.0):
    figure = Figure(figsize=(width, height))
    left, right = figure.subplots(1, 2)
    left.set_title("z_f: forget gate", fontsize=10)
    right.set_ylabel("h: hidden state", fontsize=9)
    left.text(0.5, 0.5, "tiny", fontsize=6.5)
    figure.suptitle("gates at step 3", fontsize=12)
    return figure


@pytest.mark.parametrize("width, height", [(3.0, 2.0), (4.2, 1.6)])
def test_to_png_draws_at_150_dpi_by_default(width, height):
    png = viz.to_png(_figure(width, height))
    with Image.open(io.BytesIO(png)) as image:
        assert image.size == (round(width * 150), round(height * 150))
        assert image.info["dpi"] == pytest.approx((150, 150), abs=0.5)
    with Image.open(io.BytesIO(viz.to_png(_figure(width, height), dpi=300))) as image:
        assert image.size == (round(width * 300), round(height * 300))


def test_to_png_says_what_the_figure_shows_and_its_smallest_text():
    text = viz.png_text(viz.to_png(_figure()))
    assert text["Description"] == "gates at step 3. panels: z_f: forget gate; h: hidden state"
    # Tick labels are matplotlib's default 10 pt here; the note is the smallest.
    assert text["Smallest text"] == "6.5 pt"
    bare = viz.png_text(viz.to_png(Figure(figsize=(1, 1))))
    assert bare["Description"] == "a figure without a title" and "Smallest text" not in bare


def test_to_png_refuses_a_dpi_too_small_to_draw():
    with pytest.raises(ValueError, match="dpi: expected 10 or more, got 0"):
        viz.to_png(_figure(), dpi=0)
