"""refconv.tasks and notebooks/data/train_gates.py: the trained cells of notebook 07.

Oracles: central finite differences of the loss (for the readout's and the
cell's gradients); the files' own bytes, produced twice (for reproducibility);
the gate values a clamped cell must have by construction (sigmoid of a known
number); the thresholds measured on the shipped weights (the same ones notebook
07 asserts).
"""

import json
import pathlib
import subprocess
import sys
import zipfile

import numpy as np
import pytest

from refconv import ablation, tasks

REPO = pathlib.Path(__file__).resolve().parents[1]
SCRIPT = REPO / "notebooks" / "data" / "train_gates.py"


def test_tasks_are_seeded_and_shaped():
    x, y = tasks.memory_batch(3, seed=5)
    assert x.shape == (3, 10, 16, 16, 2) and y.shape == (3, 10, 16, 16, 1)
    steps = tasks.SHOW + tasks.BLANK
    assert np.all(x[:, tasks.SHOW:, ..., 0] == 0)                     # the picture goes blank
    assert np.all(x[:, :steps, ..., 1] == 0) and np.all(x[:, steps:, ..., 1] == 1)  # the cue
    np.testing.assert_array_equal(y[:, steps:, ..., 0], x[:, :1, ..., 0].repeat(2, axis=1))
    assert np.all(y[:, :steps] == 0)
    np.testing.assert_array_equal(tasks.memory_batch(3, seed=5)[0], x)
    assert not np.array_equal(tasks.memory_batch(3, seed=6)[0], x)

    x, y = tasks.motion_batch(3, seed=2, speeds=(2,))
    assert x.shape == y.shape == (3, 8, 16, 16, 1)
    np.testing.assert_array_equal(x[:, 1:], y[:, :-1])                 # the target is the next frame


def test_forget_task_replaces_the_shape_after_a_reset():
    x, y = tasks.forget_batch(48, seed=10 ** 6)
    memory_x, memory_y = tasks.memory_batch(48, seed=10 ** 6)
    assert x.shape == (48, 10, 16, 16, 3) and y.shape == (48, 10, 16, 16, 1)
    signal = x[..., 2].max(axis=(2, 3))                             # [B, T]
    with_reset = signal.max(axis=1) == 1
    assert 12 < with_reset.sum() < 36                               # about half the videos
    assert np.all(signal.sum(axis=1) <= 1)                          # one reset frame at most
    frames = signal.argmax(axis=1)[with_reset]
    assert set(frames) == set(tasks.RESET_FRAMES) and min(frames) > tasks.SHOW
    np.testing.assert_array_equal(ablation.reset_frames(x), np.where(with_reset, signal.argmax(axis=1), -1))
    for b in np.flatnonzero(with_reset):
        r = signal[b].argmax()
        assert np.all(x[b, r, ..., 2] == 1)                         # everywhere on its frame
        np.testing.assert_array_equal(x[b, :r + 1, ..., :2], memory_x[b, :r + 1])  # as before, up to r
        second = x[b, r + 1, ..., 0]
        assert second.max() == 1 and not np.array_equal(second, memory_x[b, 0, ..., 0])
        np.testing.assert_array_equal(x[b, r + 2, ..., 0], second)  # shown for two frames
        assert np.all(x[b, r + 3:, ..., 0] == 0)
        np.testing.assert_array_equal(y[b, tasks.SHOW + tasks.BLANK:, ..., 0], [second, second])
        assert np.all(y[b, :tasks.SHOW + tasks.BLANK] == 0)
    np.testing.assert_array_equal(x[~with_reset, ..., :2], memory_x[~with_reset])
    np.testing.assert_array_equal(y[~with_reset], memory_y[~with_reset])
    np.testing.assert_array_equal(tasks.forget_batch(48, seed=10 ** 6)[0], x)


def test_occlusion_task_hides_the_shape_behind_the_bar():
    x, y = tasks.occlusion_batch(5, seed=4)
    assert x.shape == (5, 10, 16, 16, 2) and y.shape == (5, 10, 16, 16, 1)
    bar = x[..., 1]
    assert set(np.unique(bar)) == {0.0, 1.0}
    assert np.all(bar.sum(axis=2).max(axis=-1) == 16)                     # whole columns
    assert np.all((bar == 1).sum(axis=(2, 3)) == 16 * tasks.BAR)
    np.testing.assert_array_equal(x[..., 0], y[..., 0] * (1 - bar))       # visible = target off the bar
    hidden = (y[..., 0] * bar).sum(axis=(2, 3))                           # [B, T]
    assert (hidden > 1).all(axis=0)[3:7].all()                            # behind the bar mid-video
    assert (x[..., 0].sum(axis=(2, 3)) > 1)[:, [0, -1]].all()             # seen before and after
    # it moves 1 pixel a frame sideways: the centre of the whole shape
    grid = np.indices(tasks.SHAPE)[1].reshape(-1)
    frames = y[..., 0].reshape(5, 10, -1)
    columns = frames @ grid / frames.sum(-1)
    assert abs(np.median(np.abs(np.diff(columns, axis=1))) - 1.0) < 0.05   # the walls clip a few


def test_train_takes_its_batches_from_the_seed():
    """Step 1 of train(seed=s) is the loss of make_cell(s) on batch 1000 s + 1, for two seeds."""
    for seed in (1, 2):
        losses = tasks.train("memory_lstm", steps=1, seed=seed)[2]
        cell, readout = tasks.make_cell("memory_lstm", seed)
        x, y = tasks.batch("memory_lstm", tasks.MODELS["memory_lstm"]["batch_size"], 1000 * seed + 1)
        assert losses[0] == tasks.loss_and_gradients(cell, readout, x, y)[0]


def test_trained_dirs_follow_refconv_trained(tmp_path, monkeypatch):
    monkeypatch.delenv("REFCONV_TRAINED", raising=False)
    assert tasks.trained_dirs() == [tasks.TRAINED / f"seed{s}" for s in tasks.SEEDS]
    for seed in tasks.SEEDS:                       # every shipped seed has every model
        assert sorted(p.stem for p in (tasks.TRAINED / f"seed{seed}").glob("*.npz")) == sorted(tasks.MODELS)
    flat = tmp_path / "flat"
    flat.mkdir()
    (flat / "memory_lstm.npz").write_bytes((tasks.TRAINED / "seed1" / "memory_lstm.npz").read_bytes())
    monkeypatch.setenv("REFCONV_TRAINED", str(flat))
    assert tasks.trained_dirs() == [flat]
    assert list(tasks.load_seeds("memory_lstm")) == [1]
    np.testing.assert_array_equal(tasks.load("memory_lstm")[0].params["W_cf"],
                                  tasks.load("memory_lstm", tasks.TRAINED / "seed1")[0].params["W_cf"])
    for seed in (4, 3):
        (tmp_path / f"seed{seed}").mkdir()
    monkeypatch.setenv("REFCONV_TRAINED", str(tmp_path))
    assert tasks.trained_dirs() == [tmp_path / "seed3", tmp_path / "seed4"]
    monkeypatch.setenv("REFCONV_TRAINED", str(tmp_path / "nope"))
    with pytest.raises(ValueError, match="REFCONV_TRAINED: expected a folder"):
        tasks.trained_dirs()


def test_demo_draws_the_channel_whose_forget_gate_holds_the_memory():
    """The demo's channel: argmax of z_f over the blank stretch, found here by a plain loop."""
    from refconv import dynamic_rnn
    cell = tasks.load("memory_lstm")[0]
    inputs, _ = tasks.memory_batch(1, 10 ** 6)
    gates = dynamic_rnn(cell, inputs, return_gates=True)[2]
    means = {name: [gates[name][0, tasks.SHOW:tasks.SHOW + tasks.BLANK, ..., k].mean()
                    for k in range(cell.filters)] for name in ("z_f", "z_i")}
    channel = int(np.argmax(means["z_f"]))
    assert channel != int(np.argmax(means["z_i"]))     # else this test could not tell them apart
    title = tasks.demo_figures(0)["trained_lstm_gates.png"]._suptitle.get_text()
    assert f"state channel {channel}," in title


def test_motion_speed_is_the_centroid_shift():
    """Away from the walls a shape's centre of brightness moves ``speed`` pixels a frame."""
    for speed in tasks.SPEEDS:
        x, _ = tasks.motion_batch(6, seed=11, speeds=(speed,))
        grid = np.indices(tasks.SHAPE).reshape(2, -1)
        frames = x[..., 0].reshape(6, 8, -1)
        centres = np.einsum("btp,cp->btc", frames, grid) / frames.sum(-1, keepdims=True)
        shift = np.linalg.norm(np.diff(centres, axis=1), axis=-1)
        # most shifts are the speed; a bounce makes a shorter one
        assert np.median(np.abs(shift - speed)) < 0.05, (speed, shift)


@pytest.mark.parametrize("name", ["memory_lstm", "memory_gru", "motion_k7", "motion_k3d3",
                                  "occlusion_lstm"])
def test_gradients_against_finite_differences(name):
    cell, readout = tasks.make_cell(name, seed=3)
    inputs, targets = tasks.batch(name, 2, seed=4)
    inputs, targets = inputs[:, :4], targets[:, :4]
    rng = np.random.default_rng(0)
    for params in cell.params.values():   # away from the initial zeros and ones
        params += rng.normal(0, 0.1, params.shape)
    _, d_cell, d_readout = tasks.loss_and_gradients(cell, readout, inputs, targets)

    def loss():
        return np.mean((tasks.predict(cell, readout, inputs)[1] - targets) ** 2)

    checked = 0
    for params, grads in [(readout, d_readout), (cell.params, d_cell)]:
        for key in params:
            index = tuple(rng.integers(n) for n in params[key].shape)
            old, eps = params[key][index], 1e-6
            params[key][index] = old + eps
            plus = loss()
            params[key][index] = old - eps
            minus = loss()
            params[key][index] = old
            numeric = (plus - minus) / (2 * eps)
            assert grads[key][index] == pytest.approx(numeric, rel=1e-5, abs=1e-11), key
            checked += 1
    assert checked == len(readout) + len(cell.params)


def test_a_short_run_gives_the_same_bytes(tmp_path):
    """The script, run twice from scratch, writes identical files; members carry a fixed date."""
    outputs = []
    for run in ("a", "b"):
        out = tmp_path / run
        subprocess.run([sys.executable, str(SCRIPT), "memory_lstm", "motion_k3", "--steps", "3",
                        "--out", str(out)], check=True, capture_output=True, cwd=REPO)
        outputs.append({p.name: p.read_bytes() for p in sorted(out.glob("*.npz"))})
    assert sorted(outputs[0]) == ["memory_lstm.npz", "motion_k3.npz"]
    assert outputs[0] == outputs[1]
    with zipfile.ZipFile(tmp_path / "a" / "memory_lstm.npz") as archive:
        assert {info.date_time for info in archive.infolist()} == {(1980, 1, 1, 0, 0, 0)}
    cell, readout, losses, config = tasks.load("memory_lstm", tmp_path / "a")
    assert config["steps"] == 3 and losses.shape == (3,)
    # ... and the file holds what train() computes in this process
    cell2, readout2, losses2 = tasks.train("memory_lstm", steps=3)
    np.testing.assert_allclose(losses, losses2, rtol=1e-12)
    for key in cell.params:
        np.testing.assert_allclose(cell.params[key], cell2.params[key], rtol=1e-10, atol=1e-14)


def test_script_rejects_bad_arguments():
    for args, word in [(["nope"], "NAME"), (["--steps", "0"], "--steps"), (["--seed", "-1"], "--seed")]:
        run = subprocess.run([sys.executable, str(SCRIPT), *args], capture_output=True, text=True,
                             cwd=REPO)
        assert run.returncode == 2 and word in run.stderr, run.stderr


def test_load_never_unpickles_and_names_bad_models(tmp_path):
    with pytest.raises(ValueError, match="name: expected one of .*'nope'"):
        tasks.load("nope")
    np.savez(tmp_path / "memory_lstm.npz", config=np.array([{"a": 1}], dtype=object))
    with pytest.raises(ValueError, match="allow_pickle"):
        tasks.load("memory_lstm", tmp_path)


def test_clamped_forget_gate_holds_its_value():
    cell, _, _, _ = tasks.load("memory_lstm")
    inputs, _ = tasks.held_out("memory_lstm", batch_size=2)
    from refconv import dynamic_rnn
    _, _, gates = dynamic_rnn(cell, inputs, return_gates=True)
    clamped = tasks.clamp_forget_gate(cell, 0.3, channels=[1, 2])
    _, _, clamped_gates = dynamic_rnn(clamped, inputs, return_gates=True)
    np.testing.assert_allclose(clamped_gates["z_f"][..., [1, 2]], 0.3, rtol=1e-14)
    # the other channels are the trained cell's at t = 0 (the states differ later)
    np.testing.assert_array_equal(clamped_gates["z_f"][:, 0, ..., [0, 3]], gates["z_f"][:, 0, ..., [0, 3]])
    assert not np.allclose(gates["z_f"][..., [1, 2]], 0.3)
    assert cell.params["W_cf"].any()       # the original is untouched
    with pytest.raises(ValueError, match="value: expected a number in"):
        tasks.clamp_forget_gate(cell, 1.0)
    with pytest.raises(ValueError, match=r"channels: expected state channels in \[0, 4\)"):
        tasks.clamp_forget_gate(cell, 0.5, channels=[4])


@pytest.mark.parametrize("seed", tasks.SEEDS)
def test_shipped_weights_did_learn(seed):
    """Each shipped seed: trained as its file says, and better than the answers without memory."""
    directory = tasks.TRAINED / f"seed{seed}"
    recall = slice(tasks.SHOW + tasks.BLANK, None)
    for name in ("memory_lstm", "memory_gru", "forget_lstm"):
        cell, readout, losses, config = tasks.load(name, directory)
        assert config["seed"] == seed
        assert json.loads(json.dumps(config))["steps"] == losses.size == tasks.MODELS[name]["steps"]
        inputs, targets = tasks.held_out(name)
        p = tasks.predict(cell, readout, inputs)[1]
        assert np.mean((p - targets)[:, recall] ** 2) < 0.05 * np.mean(targets[:, recall] ** 2), name
    results = {}
    for name in ("motion_k3", "motion_k7", "motion_k3d3"):
        cell, readout, _, _ = tasks.load(name, directory)
        inputs, targets = tasks.motion_batch(12, 10 ** 6 + 3, speeds=(3,))
        results[name] = np.mean((tasks.predict(cell, readout, inputs)[1] - targets) ** 2)
        assert results[name] < np.mean((inputs - targets) ** 2)       # better than copying
    assert results["motion_k7"] < 0.85 * results["motion_k3"]
