"""What each figure of refconv.viz shows is what its labels say: the data handed to matplotlib.

Not pixels: the arrays in the images, lines and bands, against an independent loop over
the gates, and the colour range and map each label promises.
"""

import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
import pytest  # noqa: E402

from refconv import viz  # noqa: E402


def gates_of(names, batch=2, steps=5, shape=(6, 5), filters=3, seed=0):
    rng = np.random.default_rng(seed)
    return {name: rng.uniform(0.0, 1.0, (batch, steps, *shape, filters)) ** (i + 1)
            for i, name in enumerate(names)}


def band(ax):
    """The band of ``ax`` (its fill_between): ``{t: (lower, upper)}``."""
    (path,) = ax.collections[0].get_paths()
    edges = {}
    for x, y in path.vertices:
        edges.setdefault(round(float(x), 9), set()).add(round(float(y), 9))
    return {t: (min(ys), max(ys)) for t, ys in edges.items()}


@pytest.mark.parametrize("sample", [0, 1])
def test_the_band_is_one_standard_deviation_over_space_and_channels(sample):
    names = ["z_i", "z_f", "c"]
    gates = gates_of(names)
    fig = viz.gate_traces(gates, names, sample=sample)
    assert "+-1 std" in fig.get_suptitle() and f"sample {sample}" in fig.get_suptitle()
    for ax, name in zip(fig.axes, names):
        for t in range(5):
            values = [gates[name][sample, t, i, j, f] for i in range(6) for j in range(5)
                      for f in range(3)]
            mean = sum(values) / len(values)
            std = (sum((v - mean) ** 2 for v in values) / len(values)) ** 0.5
            lower, upper = band(ax)[t]
            assert lower == pytest.approx(mean - std, abs=1e-8), (name, t)
            assert upper == pytest.approx(mean + std, abs=1e-8), (name, t)
            assert ax.lines[0].get_ydata()[t] == pytest.approx(mean, abs=1e-12)
        assert ax.get_ylabel().replace("\n", " ") == viz.LABELS[name]
        assert ax.get_ylim() == viz.RANGES[name]


@pytest.mark.parametrize("data_format", ["channels_last", "channels_first"])
def test_each_channel_line_is_that_channels_spatial_mean(data_format):
    gates = gates_of(["z_f", "h"], steps=4)
    given = gates if data_format == "channels_last" else \
        {name: np.moveaxis(a, -1, 2) for name, a in gates.items()}
    fig = viz.channel_means(given, ["z_f", "h"], sample=1, data_format=data_format)
    for ax, name in zip(fig.axes, ["z_f", "h"]):
        assert [line.get_label() for line in ax.lines] == ["channel 0", "channel 1", "channel 2"]
        for f, line in enumerate(ax.lines):
            expected = [np.mean([gates[name][1, t, i, j, f] for i in range(6) for j in range(5)])
                        for t in range(4)]
            np.testing.assert_allclose(line.get_ydata(), expected, rtol=1e-12)


def test_saturation_lines_are_the_shares_their_legends_name():
    gates = gates_of(["z_i", "u"], steps=3)
    fig = viz.saturation(gates, ["z_i", "u"], low=0.2, high=0.7)
    for ax, name in zip(fig.axes, ["z_i", "u"]):
        shut, open_ = ax.lines
        assert "< 0.2" in shut.get_label() and "> 0.7" in open_.get_label()
        for t in range(3):
            values = gates[name][:, t].ravel()
            assert shut.get_ydata()[t] == pytest.approx(np.count_nonzero(values < 0.2) / values.size)
            assert open_.get_ydata()[t] == pytest.approx(np.count_nonzero(values > 0.7) / values.size)


def test_every_grid_row_shows_its_quantity_in_its_promised_range_and_map():
    names = ["z", "z_i", "c", "h", "r"]
    gates = {name: np.random.default_rng(3).uniform(-2, 2, (1, 3, 4, 4, 2)) for name in names}
    frames = np.random.default_rng(4).uniform(0, 1, (1, 3, 4, 4, 3))
    fig = viz.gate_grid(gates, names, frames=frames, channel=1)
    rows = ["x"] + names
    for r, name in enumerate(rows):
        lo, hi = viz.RANGES[name]
        for t in range(3):
            image = fig.axes[r * 3 + t].images[0]
            expected = frames[0, t, ..., 0] if name == "x" else gates[name][0, t, ..., 1]
            np.testing.assert_array_equal(image.get_array(), expected)
            assert image.get_clim() == (lo, hi)
            signed = lo < 0 < hi
            assert image.get_cmap().name == ("gray" if name == "x" else
                                             "RdBu_r" if signed else "viridis"), name
        bar = fig.axes[len(rows) * 3 + r]
        assert bar.get_ylabel() == name
        assert fig.axes[r * 3].get_ylabel().replace("\n", " ") == viz.LABELS[name]


def test_a_heatmap_of_signed_values_is_centred_on_white_zero():
    for values in ([-1.0, 3.0, 0.5], [-4.0, 1.0], [[-0.2, 0.1], [0.05, 0.0]]):
        fig = viz.heatmaps([np.array(values)], ["signed"])
        lo, hi = fig.axes[0].images[0].get_clim()
        assert lo == -hi == -np.abs(values).max()
        assert fig.axes[0].images[0].get_cmap().name == "RdBu_r"


def test_the_input_strip_shows_each_frame_in_the_range_asked_for():
    video = np.random.default_rng(5).uniform(-1, 2, (2, 3, 6, 5, 2))
    for vrange in ((0.0, 1.0), (-1.0, 2.0)):
        fig = viz.frame_strip(video, sample=1, channel=1, vrange=vrange)
        assert "sample 1, channel 1" in fig.get_suptitle()
        for t, ax in enumerate(fig.axes):
            assert ax.images[0].get_clim() == vrange
            assert ax.images[0].get_cmap().name == "gray"
            np.testing.assert_array_equal(ax.images[0].get_array(), video[1, t, ..., 1])
            assert ax.get_title() == f"t={t}"
