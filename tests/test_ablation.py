"""refconv.ablation: notebook 07's measurements.

Oracles: refconv's own reference run (``dynamic_rnn(..., reference=True)``, to the
last bit), a forget gate clamped by weights alone (``tasks.clamp_forget_gate``), the
same interventions run one by one, plain loops and counts, and the kernel's reach
``d * (k // 2) + t * (k // 2)`` worked out by hand.
"""

import numpy as np
import pytest

from refconv import ConvLSTMCell, ablation, dynamic_rnn, tasks


def _cell(rng, shape=(7, 9), filters=3, kernel=(3, 3), channels=2, dilation=1):
    cell = ConvLSTMCell(list(shape), filters, list(kernel), normalize=False, peephole=True,
                        forget_bias=float(rng.uniform(-1, 2)), dilation_rate=dilation)
    cell.build(channels, seed=int(rng.integers(1000)))
    for key, value in cell.params.items():        # nothing 0 or 1: non-zero biases and peepholes
        cell.params[key] = value + rng.normal(0, 0.3, value.shape)
    return cell


@pytest.mark.parametrize("seed", [0, 1])
def test_forced_run_with_nothing_forced_is_refconvs_run_to_the_last_bit(seed):
    rng = np.random.default_rng(seed)
    cell = _cell(rng, dilation=1 + seed)
    x = rng.standard_normal((2, 5, 7, 9, 2))
    h, gates = ablation.forced_run(cell, x)
    h_ref, _, gates_ref = dynamic_rnn(cell, x, return_gates=True, reference=True)
    np.testing.assert_array_equal(h, h_ref)
    for name in gates_ref:
        np.testing.assert_array_equal(gates[name], gates_ref[name])


def test_a_forced_forget_gate_is_a_forget_gate_clamped_by_weights():
    rng = np.random.default_rng(2)
    cell = _cell(rng)
    x = rng.standard_normal((2, 5, 7, 9, 2))
    h, gates = ablation.forced_run(cell, x, [("z_f", 0.3, range(5), [1])])
    clamped = tasks.clamp_forget_gate(cell, 0.3, channels=[1])
    h_clamped, _, gates_clamped = dynamic_rnn(clamped, x, return_gates=True, reference=True)
    np.testing.assert_allclose(h, h_clamped, rtol=1e-12, atol=1e-14)
    assert np.all(gates["z_f"][..., 1] == 0.3)
    assert not np.allclose(h, ablation.forced_run(cell, x)[0])


def test_forcing_acts_only_on_its_frames_channels_and_rows():
    rng = np.random.default_rng(3)
    cell = _cell(rng)
    x = rng.standard_normal((4, 6, 7, 9, 2))
    free = ablation.forced_run(cell, x)[1]
    _, gates = ablation.forced_run(cell, x, [("z_i", 0.0, [2, 3], [0, 2], slice(1, 3)),
                                             ("z_o", 1.0, [4], None, slice(1, 3))])
    assert np.all(gates["z_i"][1:3, 2:4][..., [0, 2]] == 0.0)
    assert np.all(gates["z_o"][1:3, 4] == 1.0)
    for rows in (slice(0, 1), slice(3, 4)):       # the rows not forced are the free run's
        for name in gates:
            np.testing.assert_array_equal(gates[name][rows], free[name][rows])
    for name in gates:                             # nothing changes before the first forced frame
        np.testing.assert_array_equal(gates[name][:, :2], free[name][:, :2])
    np.testing.assert_array_equal(gates["z_i"][1:3, 2, ..., 1], free["z_i"][1:3, 2, ..., 1])


def test_ablation_in_one_batch_equals_each_intervention_run_alone():
    cell, readout, _, _ = tasks.load("memory_lstm")
    x, y = tasks.held_out("memory_lstm", batch_size=3)

    def error(p):
        return float(np.mean((p - y)[:, 8:] ** 2))

    table = ablation.ablation(cell, readout, x, error, range(2, 8), 1)
    base = error(ablation.read_out(ablation.forced_run(cell, x)[0], readout))
    assert len(table) == 2 * len(ablation.INTERVENTIONS)
    for (gate, value, which), ratio in table.items():
        h = ablation.forced_run(cell, x, [(gate, value, range(2, 8), [1] if which == "main" else None)])[0]
        assert ratio == pytest.approx(error(ablation.read_out(h, readout)) / base, rel=1e-12)


def test_forced_run_rejects_bad_forces():
    rng = np.random.default_rng(4)
    cell = _cell(rng)
    x = np.zeros((1, 3, 7, 9, 2))
    for force, word in [(("z", 0.5, [0], None), "expected a gate"),
                        (("z_f", 1.5, [0], None), "value in \\[0, 1\\]"),
                        (("z_f", 0.5, [3], None), "frames in \\[0, 3\\)"),
                        (("z_f", 0.5, [0], [3]), "channels in \\[0, 3\\)"),
                        (("z_f", 0.5, [0], None, [0]), "rows as a slice")]:
        with pytest.raises(ValueError, match=word):
            ablation.forced_run(cell, x, [force])
    normalised = ConvLSTMCell([7, 9], 3, [3, 3])
    normalised.build(2)
    with pytest.raises(ValueError, match="normalize=False"):
        ablation.forced_run(normalised, x)
    with pytest.raises(ValueError, match="task: expected one of"):
        ablation.task_tables("nope")
    with pytest.raises(ValueError, match="how: expected 'mean' or 'zero'"):
        ablation.peephole_variant(cell, "median")


@pytest.mark.parametrize("kernel,dilation", [(1, 1), (3, 1), (5, 1), (7, 1), (3, 2), (3, 3), (5, 2)])
def test_reach_cone_is_the_kernels_reach(kernel, dilation):
    r = kernel // 2
    cone = ablation.reach_cone(kernel, dilation, steps=5, width=61, seed=kernel + dilation)
    for t, row in enumerate(cone):
        reach = dilation * r + t * r
        assert np.all(row[np.abs(np.arange(61) - 30) > reach] == 0.0)      # exactly nothing outside
        assert row[30 - reach] > 0 and row[30 + reach] > 0                  # the edge is reached


def test_reach_profile_counts_pixels_by_distance():
    inputs = np.zeros((1, 1, 8, 8, 1))
    inputs[0, 0, 2:4, 2:4] = 1.0                    # the shape read
    targets = np.zeros((1, 1, 8, 8, 1))
    targets[0, 0, 2:6, 2:6] = 1.0                   # it grew: pixels 1 and 2 away
    p = np.zeros((1, 1, 8, 8, 1))
    p[0, 0, 4, 2:6] = 0.5                           # some at distance 1, one at 2 (4,4), (4,5)
    profile = ablation.reach_profile(p, inputs, targets, distances=(1, 2))
    away = np.maximum(np.maximum(2 - np.arange(8), np.arange(8) - 3), 0)   # 1-D distance to [2, 3]
    chess = np.maximum.outer(away, away)
    wanted = targets[0, 0, ..., 0] > 0.5
    for d in (1, 2):
        mask = wanted & (chess == d)
        assert profile[d] == (pytest.approx(p[0, 0, ..., 0][mask].mean()), int(mask.sum()))


def test_bootstrap_saturation_and_border_profile_by_hand():
    num, den = np.array([1.0, 2.0, 3.0]), np.array([2.0, 2.0, 2.0])
    ratio, lo, hi = ablation.bootstrap_ratio(num, den, seed=0)
    assert ratio == 1.0 and lo <= ratio <= hi and lo >= 0.5 and hi <= 1.5
    assert ablation.bootstrap_ratio(np.ones(5), np.ones(5), seed=1) == (1.0, 1.0, 1.0)
    gate = np.random.default_rng(5).uniform(size=(3, 4, 2))
    left, right = ablation.saturation(gate, 0.2, 0.7)
    for k in range(2):
        values = gate[..., k].ravel()
        assert left[k] == sum(v < 0.2 for v in values) / values.size
        assert right[k] == sum(v > 0.7 for v in values) / values.size
    frames = np.random.default_rng(6).standard_normal((2, 6, 8))
    profile = ablation.border_profile(frames, depth=3)
    for t in range(2):
        centre = frames[t, 2:4, 3:5].mean()
        for d in range(3):
            ring = [frames[t, i, j] for i in range(6) for j in range(8)
                    if min(i, j, 5 - i, 7 - j) == d]
            assert profile[t, d] == pytest.approx(np.mean(np.abs(np.array(ring) - centre)), rel=1e-12)


def test_position_free_peepholes_make_no_ring_at_the_first_step():
    cell = tasks.load("memory_lstm")[0]
    mean = ablation.peephole_variant(cell, "mean")
    zero = ablation.peephole_variant(cell, "zero")
    for key in ("W_ci", "W_cf", "W_co"):
        np.testing.assert_allclose(mean.params[key], np.broadcast_to(cell.params[key].mean(axis=(0, 1)),
                                                                     cell.params[key].shape))
        assert not zero.params[key].any() and cell.params[key].std() > 0       # the original kept
    blank = np.zeros((1, 3, 16, 16, 2))
    for variant in (mean, zero):
        z_o = ablation.forced_run(variant, blank)[1]["z_o"][0]
        spread = np.ptp(z_o, axis=(1, 2))                        # [T, F]: over the frame
        assert np.all(spread[0] == 0.0) and np.all(spread[1] > 0)  # padding acts from t = 1
    trained = np.ptp(ablation.forced_run(cell, blank)[1]["z_o"][0, 0], axis=(0, 1))
    assert np.all(trained > 0)                                     # per-pixel peepholes at t = 0


def test_a_force_may_hold_a_value_per_video_pixel_and_channel():
    rng = np.random.default_rng(7)
    cell = _cell(rng)
    x = rng.standard_normal((4, 5, 7, 9, 2))
    held = rng.uniform(size=(2, 7, 9, 2))
    _, gates = ablation.forced_run(cell, x, [("z_f", held, [3], [0, 2], slice(1, 3))])
    np.testing.assert_array_equal(gates["z_f"][1:3, 3][..., [0, 2]], held)
    free = ablation.forced_run(cell, x)[1]
    np.testing.assert_array_equal(gates["z_f"][1:3, 3, ..., 1], free["z_f"][1:3, 3, ..., 1])
    with pytest.raises(ValueError, match="value in \\[0, 1\\]"):
        ablation.forced_run(cell, x, [("z_f", held + 1, [3], [0, 2], slice(1, 3))])


def test_forget_test_against_each_video_run_alone():
    """forget_test's counterfactual, its z_f and its held error, rebuilt video by video."""
    rng = np.random.default_rng(8)
    cell = _cell(rng, shape=(16, 16), filters=3, channels=3)
    readout = {"w": rng.normal(0, 1, (3, 1)), "b": np.array([-1.0])}
    x, y = tasks.forget_batch(10, seed=3)
    frames = ablation.reset_frames(x)
    assert np.all(frames[frames >= 0] >= tasks.RESET_FRAMES[0]) and (frames < 0).any()
    result = ablation.forget_test(cell, readout, x, y)
    channel = result["channel"]
    gates = dynamic_rnn(cell, x, return_gates=True, reference=True)[2]
    assert channel == ablation.main_channel("forget", gates, x)
    recall = slice(tasks.SHOW + tasks.BLANK, None)
    z_f, calm_z_f, trained, held = [], [], [], {"main": [], "all": []}
    for b in np.flatnonzero(frames >= 0):
        t, inside = frames[b], x[b, 0, ..., 0] > 0.5
        calm = x[b:b + 1].copy()
        calm[0, :, ..., 2] = 0.0
        calm[0, t:, ..., 0] = 0.0                  # nothing happens from the reset on
        g = dynamic_rnn(cell, x[b:b + 1], return_gates=True, reference=True)[2]["z_f"][0]
        c = dynamic_rnn(cell, calm, return_gates=True, reference=True)[2]["z_f"][0]
        z_f.append([g[t + k][inside, channel].mean() for k in ablation.AROUND])
        calm_z_f.append([c[t + k][inside, channel].mean() for k in ablation.AROUND])
        h = ablation.forced_run(cell, x[b:b + 1])[0]
        trained.append(np.mean((ablation.read_out(h, readout) - y[b:b + 1])[:, recall] ** 2))
        for which, channels in (("main", [channel]), ("all", [0, 1, 2])):
            force = [("z_f", c[t + k][None][..., channels], [t + k], channels)
                     for k in (0, 1)]             # the reset frame and the next
            h = ablation.forced_run(cell, x[b:b + 1], force)[0]
            held[which].append(np.mean((ablation.read_out(h, readout) - y[b:b + 1])[:, recall] ** 2))
    np.testing.assert_allclose(result["z_f"]["reset"], np.mean(z_f, axis=0), rtol=1e-12)
    np.testing.assert_allclose(result["z_f"]["no reset"], np.mean(calm_z_f, axis=0), rtol=1e-12)
    assert result["error"] == pytest.approx(np.mean(trained), rel=1e-12)
    for which in held:
        assert result["ratio"][which] == pytest.approx(np.mean(held[which]) / np.mean(trained), rel=1e-10)
    drops = np.mean(z_f, axis=0) / np.mean(calm_z_f, axis=0)
    assert result["drop"] == pytest.approx(min(drops[ablation.AROUND.index(k)] for k in (0, 1)))
    with pytest.raises(ValueError, match="with a reset"):
        ablation.forget_test(cell, readout, x[frames < 0], y[frames < 0])


def test_the_forgetting_channel_is_the_one_whose_z_f_falls_most():
    x, _ = tasks.forget_batch(8, seed=4)
    frames = ablation.reset_frames(x)
    gates = {"z_f": np.full((8, 10, 16, 16, 3), 0.9)}
    for b in np.flatnonzero(frames >= 0):              # channel 2 falls on the frame after
        gates["z_f"][b, frames[b] + 1, ..., 2] = 0.1    # the reset; channel 0 a little, on it
        gates["z_f"][b, frames[b], ..., 0] = 0.6
    assert ablation.main_channel("forget", gates, x) == 2
    gates["z_f"][..., 2] = 0.9
    assert ablation.main_channel("forget", gates, x) == 0
