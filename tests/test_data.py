"""refconv.data.moving_shapes: shapes, ranges, seeding, motion, argument checks."""

import numpy as np
import pytest

from refconv.data import moving_shapes

SHAPES = [(40,), (24, 20), (12, 10, 14)]


@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: f"{len(s)}d")
@pytest.mark.parametrize("data_format", ["channels_last", "channels_first"])
def test_shape_range_dtype(shape, data_format):
    video = moving_shapes(batch_size=3, timesteps=5, shape=shape, channels=2,
                          data_format=data_format)
    expected = (3, 5) + shape + (2,) if data_format == "channels_last" else (3, 5, 2) + shape
    assert video.shape == expected
    assert video.dtype == np.float64
    assert video.min() == 0.0            # background
    assert 0.4 < video.max() <= 1.0      # colours are drawn in [0.5, 1]
    assert np.isfinite(video).all()


@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: f"{len(s)}d")
def test_channels_first_is_channels_last_transposed(shape):
    last = moving_shapes(shape=shape, channels=3, seed=4)
    first = moving_shapes(shape=shape, channels=3, seed=4, data_format="channels_first")
    np.testing.assert_array_equal(first, np.moveaxis(last, -1, 2))


def test_float32_is_float64_cast():
    wide = moving_shapes(seed=2)
    narrow = moving_shapes(seed=2, dtype=np.float32)
    assert narrow.dtype == np.float32
    np.testing.assert_array_equal(narrow, wide.astype(np.float32))


@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: f"{len(s)}d")
def test_same_seed_same_bits_other_seed_differs(shape):
    first = moving_shapes(shape=shape, seed=7)
    again = moving_shapes(shape=shape, seed=7)
    other = moving_shapes(shape=shape, seed=8)
    assert first.tobytes() == again.tobytes()
    assert not np.array_equal(first, other)


@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: f"{len(s)}d")
def test_every_frame_moves(shape):
    video = moving_shapes(batch_size=4, timesteps=15, shape=shape, seed=1)
    change = np.abs(np.diff(video, axis=1)).reshape(4, 14, -1).sum(axis=-1)
    assert (change > 0).all(), "a frame equals the one before it"


def test_sub_pixel_edges():
    # Anti-aliased edges: values strictly between 0 and 1 exist, so motion is smooth.
    video = moving_shapes(shape=(48, 48), seed=0)
    between = (video > 0.01) & (video < 0.99 * video.max())
    assert between.any()


@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: f"{len(s)}d")
def test_shapes_stay_inside_the_frame(shape):
    # One shape bouncing for a long time: its total brightness (its area times
    # its colour) stays nearly constant, so it never slides out through a wall
    # (half-way through a wall it would lose half of it). Only nearly: a small
    # shape's pixel count wobbles with its sub-pixel position.
    video = moving_shapes(batch_size=4, timesteps=120, shape=shape, n_shapes=1, seed=5)
    mass = video.reshape(4, 120, -1).sum(axis=-1)
    assert (mass.min(axis=1) > 0.75 * mass.max(axis=1)).all(), mass.min(axis=1) / mass.max(axis=1)


def test_constant_speed_between_bounces():
    # In 1-D a segment's centre of mass is its centre to within a few
    # thousandths of a pixel: it moves by the same distance every frame,
    # except in the frames where it hits a wall.
    video = moving_shapes(batch_size=1, timesteps=60, shape=(64,), n_shapes=1, seed=3)[0, :, :, 0]
    x = np.arange(64)
    centre = (video * x).sum(axis=1) / video.sum(axis=1)
    step = np.abs(np.diff(centre))
    typical = np.median(step)
    assert typical >= 0.5
    assert np.isclose(step, typical, atol=0.02).mean() > 0.7
    assert (step <= typical + 0.02).all()          # a bounce only shortens a step


def test_channels_get_their_own_colour():
    video = moving_shapes(batch_size=1, timesteps=2, channels=3, n_shapes=1, seed=0)
    peaks = video.reshape(-1, 3).max(axis=0)
    assert (peaks >= 0.5).all() and (peaks <= 1.0).all()
    assert len(set(peaks.round(6))) > 1


@pytest.mark.parametrize("kwargs, error, words", [
    (dict(batch_size=0), ValueError, ["batch_size", "0"]),
    (dict(batch_size=1.5), TypeError, ["batch_size", "1.5"]),
    (dict(timesteps=True), TypeError, ["timesteps", "True"]),
    (dict(timesteps=-2), ValueError, ["timesteps", "-2"]),
    (dict(channels=0), ValueError, ["channels", ">= 1", "0"]),
    (dict(n_shapes=0), ValueError, ["n_shapes", "0"]),
    (dict(seed=-1), ValueError, ["seed", "-1"]),
    (dict(seed=None), TypeError, ["seed", "None"]),
    (dict(shape=()), ValueError, ["shape", "1 to 3"]),
    (dict(shape=(16, 16, 16, 16)), ValueError, ["shape", "1 to 3", "4"]),
    (dict(shape=(4, 16)), ValueError, ["shape", ">= 8", "[4, 16]"]),
    (dict(shape=(16.0, 16)), TypeError, ["shape", "16.0", "float"]),
    (dict(shape="48"), TypeError, ["shape", "'48'"]),
    (dict(shape=48), TypeError, ["shape", "48"]),
    (dict(dtype=np.int32), TypeError, ["dtype", "floating", "int32"]),
    (dict(dtype="no such type"), TypeError, ["dtype", "no such type"]),
    (dict(data_format="NCHW"), ValueError, ["data_format", "channels_last", "'NCHW'"]),
])
def test_bad_arguments(kwargs, error, words):
    with pytest.raises(error) as raised:
        moving_shapes(**kwargs)
    for word in words:
        assert word in str(raised.value)


def test_numpy_integers_are_accepted():
    video = moving_shapes(batch_size=np.int64(1), timesteps=np.int32(2),
                          shape=np.array([16, 16]), seed=np.uint8(3))
    assert video.shape == (1, 2, 16, 16, 1)


@pytest.mark.parametrize("seed", range(4))
def test_every_shape_has_its_own_colour(seed):
    """Two shapes, three channels: the lit pixels point in (at least) two colour directions,
    each shape's own; a pixel's colour is its shape's colour times its coverage."""
    video = moving_shapes(batch_size=1, timesteps=6, channels=3, n_shapes=2, seed=seed)
    lit = video.reshape(-1, 3)
    lit = lit[lit.max(axis=1) > 0.2]
    directions = {tuple(v) for v in (lit / lit.max(axis=1, keepdims=True)).round(3)}
    assert len(directions) >= 2, directions


@pytest.mark.parametrize("shape", [(48, 48), (64, 16)])
def test_every_shape_lies_within_its_radius_of_its_centre(shape):
    """A shape's half-width r is at most 0.24 of the frame's smallest side, and no point of it
    lies farther than sqrt(2) r from its centre (a square's corner; a triangle's vertices are
    at r, a disc's edge at r), plus the one-pixel ramp. Measured on single-shape videos at
    the frame of largest mass (not cut by a wall), the centre being the centroid."""
    bound = np.sqrt(2) * 0.24 * min(shape) + 1.0
    for seed in range(6):
        video = moving_shapes(batch_size=8, timesteps=6, shape=shape, n_shapes=1,
                              seed=seed)[..., 0]
        for b in range(8):
            frame = video[b, int(np.argmax(video[b].reshape(6, -1).sum(axis=1)))]
            ys, xs = np.nonzero(frame > 0)
            weight = frame[ys, xs]
            cy, cx = (weight * ys).sum() / weight.sum(), (weight * xs).sum() / weight.sum()
            farthest = np.sqrt((ys - cy) ** 2 + (xs - cx) ** 2).max()
            assert farthest <= bound, (seed, b, farthest, bound)


def _centroids(video):
    """Each frame's centre of mass ``[T, 2]`` of a one-shape 2-D video ``[T, H, W]``."""
    grid = np.indices(video.shape[1:], dtype=np.float64)
    mass = video.sum(axis=(1, 2))
    return np.stack([(video * grid[i]).sum(axis=(1, 2)) / mass for i in range(2)], axis=1)


def test_every_shape_moves_at_a_speed_in_the_documented_range():
    """Speed: 0.03 to 0.06 of the smallest side per frame (at least half a pixel), whatever
    the direction. Measured by the centroid between bounces (a step next to a wall is
    shortened by the bounce, and a cut shape's centroid moves less: the longest steps of each
    video are the free ones)."""
    side = 64
    for seed in range(4):
        video = moving_shapes(batch_size=6, timesteps=8, shape=(side, side), n_shapes=1,
                              seed=seed)[..., 0]
        for b in range(6):
            steps = np.linalg.norm(np.diff(_centroids(video[b]), axis=0), axis=1)
            free = np.sort(steps)[-3:]
            assert free.max() <= 0.06 * side + 0.05, (seed, b, steps)
            assert free.min() >= max(0.03 * side, 0.5) - 0.05, (seed, b, steps)


@pytest.mark.parametrize("shape, kinds", [((64, 64), {"square": 1.0, "disc": np.pi / 4,
                                                      "triangle": 0.5}),
                                          ((32, 32, 32), {"cube": 1.0, "ball": np.pi / 6})])
def test_every_kind_of_shape_is_drawn(shape, kinds):
    """Over 24 one-shape videos each kind of the dimension appears: told apart by how much of
    its bounding box a shape fills (a box all of it, a disc pi/4, a ball pi/6, a triangle at
    most half)."""
    video = moving_shapes(batch_size=24, timesteps=1, shape=shape, n_shapes=1, seed=11)[:, 0, ..., 0]
    seen = set()
    for frame in video:
        lit = np.nonzero(frame > 0.5)
        box = np.prod([axis.max() - axis.min() + 1 for axis in lit])
        fill = (frame > 0.5).sum() / box
        seen.add(min(kinds, key=lambda kind: abs(kinds[kind] - fill)))
    assert seen == set(kinds), seen
