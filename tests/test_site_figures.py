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


# ---- what a reader sees in the page: docs/check_site.py's inline rule, and the figures
# refconv draws meeting it at the width the site's content column has.

import hashlib  # noqa: E402
import sys  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

from refconv import diagram  # noqa: E402
from refconv.data import moving_shapes  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "docs"))
import check_site  # noqa: E402


def _page_problems(tmp_path, png, shown=None):
    """check_site's problems for ``png`` as a notebook figure in a page, shown ``shown``
    CSS px wide (default: as the site shows it, its physical size up to the column)."""
    name = f"figure_{hashlib.sha1(png).hexdigest()[:12]}.png"   # check_site caches by path
    (tmp_path / name).write_bytes(png)
    with Image.open(io.BytesIO(png)) as image:
        natural, dpi = image.width, image.info["dpi"][0]
    if shown is None:
        shown = min(natural * 96 / dpi, check_site.COLUMN)
    sizes = []
    problems = check_site.image_problems(
        tmp_path, "http://127.0.0.1:1/page.html",
        [{"src": name, "alt": "gates over time", "shown": shown, "natural": natural,
          "output": True, "link": name}], sizes)
    return problems, sizes


def _texts(width, size):
    figure = Figure(figsize=(width, 2.0))
    figure.subplots().set_title("z_f: forget gate", fontsize=size)
    figure.suptitle("gates", fontsize=size)
    figure.axes[0].tick_params(labelsize=size)
    return viz.to_png(figure)


def test_the_site_check_fails_a_figure_whose_text_is_under_9_pt_as_shown(tmp_path):
    # 9 pt text in a figure 12 in wide, shown in a 688 px column: 9 * 688 / (12 * 96) pt.
    problems, sizes = _page_problems(tmp_path, _texts(12.0, 9))
    assert [pt for pt, _, _ in sizes] == [pytest.approx(9 * 688 / (12 * 96), abs=0.01)]
    assert len(problems) == 1 and "5.4 pt as shown in the page (under 9" in problems[0]
    # The same text in a figure as wide as the column is shown at 9 pt: no problem.
    problems, sizes = _page_problems(tmp_path, _texts(688 / 96, 9))
    assert problems == [] and sizes[0][0] == pytest.approx(9, abs=0.01)
    # 8.5 pt text shown at full size is under 9 pt too.
    problems, _ = _page_problems(tmp_path, _texts(6.0, 8.5))
    assert "8.5 pt as shown" in "".join(problems)
    # A hidden figure (shown 0 px wide) is not measured.
    assert _page_problems(tmp_path, _texts(12.0, 9), shown=0) == ([], [])


def _gates(names, steps, seed=0):
    rng = np.random.default_rng(seed)
    return {name: rng.uniform(0, 1, (2, steps, 12, 12, 3)) for name in names}


LSTM = ["z", "z_i", "z_f", "z_o", "c", "h"]
FIGURES = {
    "gate_grid, 4 steps": lambda: viz.gate_grid(_gates(LSTM, 4), LSTM),
    "gate_grid, 10 steps and frames": lambda: viz.gate_grid(
        _gates(LSTM, 10), LSTM, frames=moving_shapes(batch_size=2, timesteps=10, shape=(12, 12))),
    "gate_grid, 13 steps": lambda: viz.gate_grid(_gates(["z_f"], 13), ["z_f"]),
    "frame_strip, 12 steps": lambda: viz.frame_strip(
        moving_shapes(batch_size=1, timesteps=12, shape=(16, 16))),
    "gate_traces": lambda: viz.gate_traces(_gates(LSTM, 10), LSTM),
    "channel_means": lambda: viz.channel_means(_gates(LSTM, 10), LSTM),
    "saturation": lambda: viz.saturation(_gates(["z_i", "z_f", "z_o"], 10), ["z_i", "z_f", "z_o"]),
    "heatmaps, 7 pictures": lambda: viz.heatmaps([np.ones((32, 32))] * 7, list("abcdefg"),
                                                 title="seven", width=13),
    "heatmaps, annotated 1-D": lambda: viz.heatmaps([np.arange(12.0), np.ones(3), np.arange(10.0)],
                                                    ["x", "w", "y"]),
    "heatmaps, annotated matrices": lambda: viz.heatmaps([np.eye(8)] * 3, ["a", "b", "c"]),
    "picture_grid, no bars": lambda: viz.picture_grid(
        [("cue", np.zeros((10, 8, 8)), (0, 1), "gray", "")], range(10), "a task", bars=False),
    **{f"step_diagram({p}, {n})": (lambda p=p, n=n: diagram.step_diagram(peephole=p, normalize=n))
       for p in (True, False) for n in (True, False)},
}


@pytest.mark.parametrize("name", list(FIGURES))
def test_every_figure_function_is_read_at_9_pt_or_more_in_the_sites_column(name, tmp_path):
    """Each figure function's PNG as the site shows it in a 1280 px window (its physical
    size, at most the 688 px column): no text under 9 pt (check_site's rule, from the
    metadata to_png writes), and no wider than ``viz.WIDTH``."""
    figure = FIGURES[name]()
    png = viz.to_png(figure)
    assert figure.get_size_inches()[0] <= viz.WIDTH <= check_site.COLUMN / 96
    problems, sizes = _page_problems(tmp_path, png)
    assert problems == [], problems
    assert sizes[0][0] >= viz.SMALLEST >= check_site.MIN_TEXT_PT


def test_the_style_sets_the_smallest_sizes_and_figure_keeps_to_the_column():
    assert all(viz.STYLE[key] >= viz.SMALLEST for key in viz.STYLE if key.endswith("size"))
    with viz.style():
        axes = viz.figure(3.0, 2.0).subplots()
        assert axes.get_xticklabels()[0].get_fontsize() == viz.SMALLEST
        axes.plot([0, 1], label="a")
        assert axes.legend().get_texts()[0].get_fontsize() == viz.SMALLEST
    with pytest.raises(ValueError, match=r"width, height: expected 0 < width <= 7.0"):
        viz.figure(9.0, 3.0)


def test_to_png_breaks_a_title_or_label_longer_than_its_panel_into_lines_never_smaller():
    words = "the forget gate of every channel over every step of the held-out video"
    figure = viz.figure(4.0, 3.0)
    left, right = figure.subplots(1, 2)
    left.set_title(words)
    left.set_xlabel(words)
    right.set_title("short")
    figure.suptitle(words + ", " + words)
    size = left.title.get_fontsize()
    viz.to_png(figure)
    renderer = figure.canvas.get_renderer()
    for text, room in ((left.title, left), (left.xaxis.label, left),
                       (figure._suptitle, None)):
        assert "\n" in text.get_text() and " ".join(text.get_text().split()) in (
            words, words + ", " + words)
        width = text.get_window_extent(renderer).width
        assert width <= (figure.bbox.width if room is None else
                         room.get_window_extent(renderer).width) * 1.02
    assert right.get_title() == "short" and left.title.get_fontsize() == size
