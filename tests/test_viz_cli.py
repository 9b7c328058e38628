"""refconv.viz figures and the ``refconv demo`` command."""

import subprocess
import sys

import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
import pytest  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from refconv import cli, viz  # noqa: E402
from refconv.data import moving_shapes  # noqa: E402

LSTM = ["z", "z_i", "z_f", "z_o", "c", "h"]
GRU = ["r", "u", "candidate", "h"]
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def fake_gates(names, shape=(12, 10), batch=2, steps=4, filters=3, seed=0,
               data_format="channels_last"):
    """Gate-like arrays, deliberately in a narrow band so a fitted colour range would show."""
    rng = np.random.default_rng(seed)
    frame = tuple(shape) + (filters,) if data_format == "channels_last" else (filters,) + tuple(shape)
    return {name: rng.uniform(0.4, 0.6, size=(batch, steps) + frame) for name in names}


def images(fig, rows, steps):
    """The image of each grid cell, row by row (grid axes come before the colour bars)."""
    return [[fig.axes[r * steps + t].images[0] for t in range(steps)] for r in range(rows)]


@pytest.mark.parametrize("names", [LSTM, GRU], ids=["lstm", "gru"])
@pytest.mark.parametrize("with_frames", [False, True])
def test_gate_grid_layout_and_fixed_ranges(names, with_frames):
    gates = fake_gates(names)
    frames = moving_shapes(batch_size=2, timesteps=4, shape=(12, 10)) if with_frames else None
    fig = viz.gate_grid(gates, names, frames=frames)
    assert isinstance(fig, Figure)
    rows = ["x"] * with_frames + names
    # one image per row and step, then one colour bar per row
    assert len(fig.axes) == len(rows) * 4 + len(rows)
    for name, row in zip(rows, images(fig, len(rows), 4)):
        for image in row:
            assert image.get_clim() == viz.RANGES[name]
    assert viz.RANGES["z_f"] == (0.0, 1.0) and viz.RANGES["r"] == (0.0, 1.0)
    assert viz.RANGES["h"] == (-1.0, 1.0) and viz.RANGES["candidate"] == (-1.0, 1.0)
    assert viz.RANGES["c"] == (-3.0, 3.0)
    assert [fig.axes[t].get_title() for t in range(4)] == ["t=0", "t=1", "t=2", "t=3"]
    labels = [fig.axes[r * 4].get_ylabel().replace("\n", " ") for r in range(len(rows))]
    assert labels == [viz.LABELS[name] for name in rows]
    bars = [ax.get_ylabel() for ax in fig.axes[len(rows) * 4:]]
    assert bars == rows


def test_row_labels_name_the_gates():
    assert viz.LABELS["z_f"] == "z_f: forget gate"
    assert viz.LABELS["z_i"] == "z_i: input (memory) gate"
    assert viz.LABELS["z"] == "z: fusion of x and h"
    assert viz.LABELS["z_o"] == "z_o: output gate"
    assert viz.LABELS["c"] == "c: cell state"
    assert viz.LABELS["h"] == "h: hidden state"
    assert viz.LABELS["r"] == "r: reset gate"
    assert viz.LABELS["u"] == "u: update gate"
    assert viz.LABELS["candidate"].startswith("candidate")


def test_gate_grid_colour_maps():
    fig = viz.gate_grid(fake_gates(["z_f", "h"]), ["z_f", "h"])
    gate, signed = images(fig, 2, 4)
    assert gate[0].get_cmap().name == "viridis"      # sequential: 0 shut .. 1 open
    assert signed[0].get_cmap().name == "RdBu_r"     # diverging: white at 0


def test_gate_grid_ranges_override_and_unknown_names():
    gates = fake_gates(["c", "y"])
    fig = viz.gate_grid(gates, ["c"], ranges={"c": (-5, 5)})
    assert images(fig, 1, 4)[0][0].get_clim() == (-5.0, 5.0)
    with pytest.raises(ValueError, match="ranges.*'y'"):
        viz.gate_grid(gates, ["y"])
    fig = viz.gate_grid(gates, ["y"], ranges={"y": (0, 2)})
    assert images(fig, 1, 4)[0][0].get_clim() == (0.0, 2.0)


def test_gate_grid_shows_the_chosen_sample_channel_and_steps():
    gates = fake_gates(["z_o"], batch=3, filters=4)
    fig = viz.gate_grid(gates, ["z_o"], sample=2, channel=3, steps=[1, 3])
    assert len(fig.axes) == 2 + 1
    shown = [ax.images[0].get_array() for ax in fig.axes[:2]]
    np.testing.assert_array_equal(shown[0], gates["z_o"][2, 1, ..., 3])
    np.testing.assert_array_equal(shown[1], gates["z_o"][2, 3, ..., 3])
    assert [ax.get_title() for ax in fig.axes[:2]] == ["t=1", "t=3"]


@pytest.mark.parametrize("shape, picture", [
    ((16,), (1, 16)),            # 1-D: a one-row image
    ((12, 10), (12, 10)),        # 2-D: the image
    ((6, 8, 10), (8, 10)),       # 3-D: the middle slice along the first axis
])
def test_gate_grid_dimensions_and_layouts(shape, picture):
    last = fake_gates(GRU, shape=shape)
    first = {name: np.moveaxis(array, -1, 2) for name, array in last.items()}
    frames = moving_shapes(batch_size=2, timesteps=4, shape=tuple(max(s, 8) for s in shape))
    frames = frames[(slice(None), slice(None)) + tuple(slice(0, s) for s in shape)]
    fig_last = viz.gate_grid(last, GRU, channel=1, frames=frames)
    fig_first = viz.gate_grid(first, GRU, channel=1, frames=np.moveaxis(frames, -1, 2),
                              data_format="channels_first")
    for a, b in zip(fig_last.axes[:20], fig_first.axes[:20]):
        assert a.images[0].get_array().shape == picture
        np.testing.assert_array_equal(a.images[0].get_array(), b.images[0].get_array())
    if len(shape) == 3:
        middle = last["h"][0, 2, shape[0] // 2, :, :, 1]
        np.testing.assert_array_equal(fig_last.axes[4 * 4 + 2].images[0].get_array(), middle)


@pytest.mark.parametrize("kwargs, message", [
    (dict(names=["nope"]), "names"),
    (dict(names="z_f"), "names"),
    (dict(names=[]), "names"),
    (dict(names=["z_f"], sample=5), "sample"),
    (dict(names=["z_f"], channel=3), "channel"),
    (dict(names=["z_f"], steps=[4]), "steps"),
    (dict(names=["z_f"], data_format="NC"), "data_format"),
    (dict(names=["z_f"], ranges={"z_f": (1, 0)}), "lo < hi"),
])
def test_gate_grid_bad_arguments(kwargs, message):
    with pytest.raises((ValueError, TypeError), match=message):
        viz.gate_grid(fake_gates(LSTM), **kwargs)


def test_gate_grid_rejects_wrong_ranks_and_lengths():
    gates = fake_gates(["z_f", "z_o"])
    with pytest.raises(ValueError, match="4 to 6 dims"):
        viz.gate_grid({"z_f": gates["z_f"][0, 0]}, ["z_f"])
    gates["z_o"] = gates["z_o"][:, :3]
    with pytest.raises(ValueError, match="time steps"):
        viz.gate_grid(gates, ["z_f", "z_o"])


def test_gate_traces_plot_the_mean_per_step():
    gates = fake_gates(LSTM, batch=2, steps=5)
    fig = viz.gate_traces(gates, LSTM, sample=1)
    assert isinstance(fig, Figure)
    assert len(fig.axes) == len(LSTM)
    for ax, name in zip(fig.axes, LSTM):
        mean = gates[name][1].reshape(5, -1).mean(axis=1)
        np.testing.assert_allclose(ax.lines[0].get_ydata(), mean)
        assert ax.get_ylim() == viz.RANGES[name]


def test_saturation_counts_shut_and_open_values():
    gates = fake_gates(["z_i", "z_f"], batch=2, steps=3)
    gates["z_f"][:, 1] = 0.95          # step 1: everything nearly open
    gates["z_f"][0, 2] = 0.01          # step 2: half of the batch nearly shut
    fig = viz.saturation(gates, ["z_i", "z_f"], low=0.1, high=0.9)
    assert len(fig.axes) == 2
    shut, open_ = (line.get_ydata() for line in fig.axes[1].lines)
    np.testing.assert_allclose(shut, [0, 0, 0.5])
    np.testing.assert_allclose(open_, [0, 1, 0])
    np.testing.assert_allclose(fig.axes[0].lines[0].get_ydata(), 0)
    with pytest.raises(ValueError, match="low"):
        viz.saturation(gates, ["z_f"], low=0.9, high=0.1)


def test_frame_strip():
    video = moving_shapes(batch_size=2, timesteps=5, channels=2, shape=(16, 16))
    fig = viz.frame_strip(video, sample=1, channel=1)
    assert isinstance(fig, Figure)
    assert len(fig.axes) == 5
    for t, ax in enumerate(fig.axes):
        assert ax.images[0].get_clim() == (0.0, 1.0)
        np.testing.assert_array_equal(ax.images[0].get_array(), video[1, t, :, :, 1])
    with pytest.raises(ValueError, match="channel"):
        viz.frame_strip(video, channel=2)


def test_importing_viz_needs_no_pyplot():
    code = "import sys, refconv.viz, refconv.cli; assert 'matplotlib.pyplot' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)


def test_no_subcommand_prints_help_and_returns_2(capsys):
    assert cli.main([]) == 2
    assert "demo" in capsys.readouterr().out


def test_python_dash_m_refconv_without_command_exits_2():
    done = subprocess.run([sys.executable, "-m", "refconv"], capture_output=True, text=True)
    assert done.returncode == 2
    assert "usage: refconv" in done.stdout


def test_demo_writes_png_files(tmp_path, capsys):
    out = tmp_path / "demo"
    assert cli.main(["demo", "--out", str(out)]) == 0
    printed = capsys.readouterr().out.splitlines()
    assert printed[0] == str(out.resolve())
    expected = ["lstm_gates.png", "gru_gates.png", "lstm_traces.png",
                "lstm_saturation.png", "input_frames.png",
                "trained_lstm_gates.png", "trained_gru_gates.png"]
    assert sorted(line.strip() for line in printed[1:]) == sorted(expected)
    for name in expected:
        content = (out / name).read_bytes()
        assert content.startswith(PNG_MAGIC), name
        assert 1000 < len(content) < 300_000, (name, len(content))


def test_demo_is_reproducible(tmp_path):
    args = ["--seed", "3", "--timesteps", "3", "--size", "16"]
    assert cli.main(["demo", "--out", str(tmp_path / "a")] + args) == 0
    assert cli.main(["demo", "--out", str(tmp_path / "b")] + args) == 0
    for name in ["lstm_gates.png", "gru_gates.png", "trained_lstm_gates.png"]:
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()


@pytest.mark.parametrize("args", [["--size", "4"], ["--timesteps", "0"], ["--seed", "-1"],
                                  ["--size", "big"]])
def test_demo_rejects_bad_options(args, tmp_path, capsys):
    with pytest.raises(SystemExit) as raised:
        cli.main(["demo", "--out", str(tmp_path)] + args)
    assert raised.value.code == 2
    assert args[0] in capsys.readouterr().err


def test_channel_means_plot_one_line_per_channel():
    gates = fake_gates(["z_f", "h"], batch=2, steps=5, filters=3)
    fig = viz.channel_means(gates, ["z_f", "h"], sample=1)
    assert len(fig.axes) == 2
    for ax, name in zip(fig.axes, ["z_f", "h"]):
        assert len(ax.lines) == 3
        for f, line in enumerate(ax.lines):
            np.testing.assert_allclose(line.get_ydata(), gates[name][1, ..., f].reshape(5, -1).mean(1))
        assert ax.get_ylim() == viz.RANGES[name]
    first = {name: np.moveaxis(a, -1, 2) for name, a in gates.items()}
    fig_first = viz.channel_means(first, ["z_f"], sample=1, data_format="channels_first")
    for a, b in zip(fig.axes[0].lines, fig_first.axes[0].lines):
        np.testing.assert_allclose(a.get_ydata(), b.get_ydata())
    with pytest.raises(ValueError, match="data_format"):
        viz.channel_means(gates, ["z_f"], data_format="NC")


def test_heatmaps_show_each_array_with_its_range_and_label():
    signal, kernel = np.arange(6.0) - 2, np.array([[1.0, -1.0], [0.5, 0.0]])
    fig = viz.heatmaps([signal, kernel], ["x", "w"], ranges=[(-3, 3), None],
                       labels=["value of x", None], title="two arrays")
    images_, bars = fig.axes[:2], fig.axes[2:]
    np.testing.assert_array_equal(images_[0].images[0].get_array(), signal[None, :])
    assert images_[0].images[0].get_clim() == (-3.0, 3.0)
    assert images_[1].images[0].get_clim() == (-1.0, 1.0)      # fitted, symmetric about 0
    assert images_[0].images[0].get_cmap().name == "RdBu_r"
    assert [ax.get_title() for ax in images_] == ["x", "w"]
    assert [ax.get_ylabel() for ax in bars] == ["value of x", "w"]
    assert len(images_[0].texts) == 6 and images_[0].texts[0].get_text() == "-2"
    assert fig.get_suptitle() == "two arrays"
    gaps = viz.heatmaps([np.array([[0.0, np.nan], [2.0, 3.0]])], ["with a gap"])
    assert [t.get_text() for t in gaps.axes[0].texts] == ["0", "2", "3"]
    assert gaps.axes[0].images[0].get_clim() == (0.0, 3.0)
    positive = viz.heatmaps([np.ones((3, 3))], ["ones"], annotate=False)
    assert positive.axes[0].images[0].get_cmap().name == "viridis"
    assert not positive.axes[0].texts


@pytest.mark.parametrize("kwargs, message", [
    (dict(arrays=np.zeros(3), titles=["a"]), "list of arrays"),
    (dict(arrays=[np.zeros((2, 2, 2))], titles=["a"]), "1-D or 2-D"),
    (dict(arrays=[np.zeros(3)], titles=["a", "b"]), "titles"),
    (dict(arrays=[np.zeros(3)], titles=["a"], ranges=[(1, 0)]), "lo < hi"),
])
def test_heatmaps_bad_arguments(kwargs, message):
    with pytest.raises((ValueError, TypeError), match=message):
        viz.heatmaps(**kwargs)


def test_to_png_is_a_small_deterministic_png_that_jupyter_shows():
    gates = fake_gates(LSTM, steps=3)
    png = viz.to_png(viz.gate_grid(gates, LSTM), dpi=60)
    assert isinstance(png, bytes) and png.startswith(PNG_MAGIC)
    assert png._repr_png_() == bytes(png)
    assert len(repr(png)) < 60 and "PNG" in repr(png)
    assert viz.to_png(viz.gate_grid(gates, LSTM), dpi=60) == png
    full = viz.to_png(viz.gate_grid(gates, LSTM), dpi=60, colours=None)
    assert full.startswith(PNG_MAGIC) and len(png) < len(full)
    with pytest.raises(TypeError, match="Figure"):
        viz.to_png("not a figure")
    with pytest.raises(ValueError, match="colours"):
        viz.to_png(Figure(), colours=1)


def test_demo_renders_the_notebooks_with_their_figures(tmp_path, capsys):
    """The README's main command renders the notebooks: here only notebook 4, the quickest."""
    from PIL import Image

    out = tmp_path / "demo"
    assert cli.main(["demo", "--out", str(out), "--notebooks", "04"]) == 0
    printed = capsys.readouterr().out
    notebook = out / "notebooks" / "04_time.ipynb"
    figures = sorted((out / "notebooks" / "04_time").glob("figure_*.png"))
    assert notebook.exists() and len(figures) >= 4, printed
    assert "04_time.ipynb: " in printed and "figures in 04_time/" in printed
    for figure in figures:
        with Image.open(figure) as image:
            image.verify()
    assert cli.main(["demo", "--out", str(out), "--notebooks", "99"]) == 2
    assert "no notebook starts with" in capsys.readouterr().err


def test_more_than_six_steps_go_on_in_a_second_block_of_rows():
    """Seven steps: two blocks of four columns (the last place of the second block empty,
    hidden), each image the step its title names, a colour bar per row of each block."""
    gates = fake_gates(["z_f", "h"], steps=7)
    fig = viz.gate_grid(gates, ["z_f", "h"], sample=1, channel=2)
    grid, bars = fig.axes[:16], fig.axes[16:]
    assert len(bars) == 4 and [bar.get_ylabel() for bar in bars] == ["z_f", "h", "z_f", "h"]
    assert fig.get_size_inches()[0] <= viz.WIDTH
    hidden = [ax for ax in grid if not ax.get_visible()]
    assert hidden == [grid[11], grid[15]]                     # block 2, column 4, both rows
    shown = [ax for ax in grid if ax.get_visible()]
    titles = [ax.get_title() for ax in shown if ax.get_title()]
    assert titles == [f"t={t}" for t in range(7)]
    for block, steps in enumerate([range(4), range(4, 7)]):
        for row, name in enumerate(["z_f", "h"]):
            for col, t in enumerate(steps):
                ax = grid[(2 * block + row) * 4 + col]
                np.testing.assert_array_equal(ax.images[0].get_array(), gates[name][1, t, ..., 2])


def test_picture_grid_names_each_column_and_refuses_a_title_list_of_the_wrong_length():
    pictures = np.arange(3 * 4 * 5, dtype=float).reshape(3, 4, 5)
    fig = viz.picture_grid([("cue", pictures, (0, 59), "gray", "")], [0, 2], "two steps",
                           ["t=0\nshown", "t=2\nblank"], bars=False)
    assert [ax.get_title() for ax in fig.axes] == ["t=0\nshown", "t=2\nblank"]
    np.testing.assert_array_equal(fig.axes[1].images[0].get_array(), pictures[2])
    assert fig.axes[0].get_ylabel() == "cue" and fig.get_suptitle() == "two steps"
    with pytest.raises(ValueError, match=r"step_titles: expected one per step \(2\), got 1"):
        viz.picture_grid([("cue", pictures, (0, 59), "gray", "")], [0, 2], None, ["t=0"])
