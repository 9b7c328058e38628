"""Seeded synthetic video: shapes that bounce around a box.

A convolutional recurrent cell is only interesting when something *moves*: its
gates decide what of the last frame to keep and what of the new one to let in.
`moving_shapes` makes such a video from nothing but a seed, so tests, notebooks
and the demo never download a data set, and the same seed always gives the
same bits.

Every shape is described by a signed distance: negative inside, positive
outside, zero on the edge, in pixels. A pixel's brightness is
``clip(0.5 - distance, 0, 1)``, a one-pixel linear ramp across the edge. That
is close to the share of the pixel the shape covers, so edges are anti-aliased
and a shape moving by a fraction of a pixel still changes the frame: the motion
is smooth, not a jump from pixel to pixel.
"""

import numbers

import numpy as np

from .checks import check_count, check_float_dtype

__all__ = ["moving_shapes", "KINDS"]

# Which shapes each number of spatial axes draws from. In 1-D a box and a ball
# are the same thing, a segment.
KINDS = {
    1: ("segment",),
    2: ("square", "disc", "triangle"),
    3: ("cube", "ball"),
}

# The smallest spatial size we accept: below this a shape has no room to move.
MIN_SIZE = 8


def moving_shapes(batch_size=2, timesteps=12, shape=(48, 48), channels=1, n_shapes=2,
                  seed=0, dtype=np.float64, data_format="channels_last"):
    """A batch of videos of shapes moving at constant velocity, bouncing off the walls.

    Args:
        batch_size: B, the number of independent videos.
        timesteps: T, frames per video.
        shape: the spatial size, 1 to 3 ints, each >= 8. 1-D videos show
            moving segments, 2-D ones squares, discs and triangles, 3-D ones
            cubes and balls.
        channels: C. Each shape gets its own colour: one brightness in
            [0.5, 1] per channel.
        n_shapes: shapes per video. Where shapes overlap the brighter wins
            (a per-channel maximum), so values stay in [0, 1].
        seed: an int >= 0 for ``np.random.default_rng``. Same arguments and
            seed give identical bits.
        dtype: a floating dtype; the video is computed in float64 and cast.
        data_format: ``"channels_last"`` or ``"channels_first"``.

    Returns:
        An array in [0, 1]: ``[B, T, *shape, C]`` for channels_last,
        ``[B, T, C, *shape]`` for channels_first. The background is 0.

    Raises:
        TypeError: an argument has the wrong type (e.g. a float timestep count,
            an integer dtype).
        ValueError: an argument has the right type but a bad value.
    """
    batch_size = check_count("batch_size", batch_size, minimum=1)
    timesteps = check_count("timesteps", timesteps, minimum=1)
    channels = check_count("channels", channels, minimum=1)
    n_shapes = check_count("n_shapes", n_shapes, minimum=1)
    seed = check_count("seed", seed, minimum=0)
    shape = _spatial_shape(shape)
    dtype = check_float_dtype(dtype)
    if data_format not in ("channels_last", "channels_first"):
        raise ValueError(
            f"data_format: expected 'channels_last' or 'channels_first', got {data_format!r}")

    ndim = len(shape)
    kinds = KINDS[ndim]
    smallest = min(shape)
    rng = np.random.default_rng(seed)

    # Draw every random number up front, in one fixed order, with the same
    # count per shape whatever its kind: the stream (and so the video) depends
    # only on the arguments. Sizes and speeds scale with the frame so a video
    # looks alike at 16x16 and at 128x128.
    size = (batch_size, n_shapes)
    kind = rng.integers(len(kinds), size=size)
    radius = rng.uniform(0.12, 0.24, size=size) * smallest     # half-width, pixels
    start = rng.uniform(0.0, 1.0, size=size + (ndim,))          # share of the free range
    direction = rng.normal(size=size + (ndim,))
    speed = np.maximum(rng.uniform(0.03, 0.06, size=size) * smallest, 0.5)  # pixels/frame
    angle = rng.uniform(0.0, 2.0 * np.pi, size=size)            # triangles only
    colour = rng.uniform(0.5, 1.0, size=size + (channels,))

    direction /= np.linalg.norm(direction, axis=-1, keepdims=True)
    velocity = direction * speed[..., None]

    # Pixel centres sit at integer coordinates; pixel i covers [i - 0.5, i + 0.5].
    grid = np.indices(shape, dtype=np.float64)                  # [ndim, *shape]
    extent = np.asarray(shape, dtype=np.float64)
    steps = np.arange(timesteps, dtype=np.float64)[:, None]     # [T, 1]

    video = np.zeros((batch_size, timesteps) + shape + (channels,))
    for b in range(batch_size):
        for k in range(n_shapes):
            r = radius[b, k]
            # The centre may go from touching the low wall to touching the high
            # one; every shape fits in a ball of radius r around its centre.
            lo, hi = r - 0.5, extent - 0.5 - r
            centres = _bounce(lo + start[b, k] * (hi - lo) + velocity[b, k] * steps, lo, hi)
            for t in range(timesteps):
                offset = grid - centres[t].reshape((ndim,) + (1,) * ndim)
                distance = _signed_distance(kinds[kind[b, k]], offset, r, angle[b, k])
                cover = np.clip(0.5 - distance, 0.0, 1.0)       # [*shape]
                np.maximum(video[b, t], cover[..., None] * colour[b, k], out=video[b, t])

    if data_format == "channels_first":
        video = np.moveaxis(video, -1, 2)
    return np.ascontiguousarray(video, dtype=dtype)


def _bounce(position, lo, hi):
    """Fold a straight path into [lo, hi] as if it bounced off both ends.

    Unfolded, a bouncing point moves at constant speed along a line; folding
    that line back and forth (a triangle wave of period 2 * (hi - lo)) gives
    the bounced position at any time without stepping through the collisions.
    """
    width = hi - lo
    phase = np.mod(position - lo, 2.0 * width)
    return lo + width - np.abs(phase - width)


def _signed_distance(kind, offset, radius, angle):
    """Distance in pixels from each grid point to the shape's edge (< 0 inside).

    offset: ``[ndim, *shape]``, grid point minus the shape's centre.
    """
    if kind in ("segment", "square", "cube"):
        # A box is where every |coordinate| <= radius. Taking the largest
        # excess over the axes is exact inside and along the faces, which is
        # where the anti-aliasing ramp lives; only the corners get a bit crisper.
        return np.max(np.abs(offset), axis=0) - radius
    if kind in ("disc", "ball"):
        return np.sqrt(np.sum(offset ** 2, axis=0)) - radius
    if kind == "triangle":
        # An equilateral triangle is the intersection of three half-planes whose
        # outward normals are 120 degrees apart; its circumradius is `radius`,
        # so its inradius (centre-to-edge distance) is radius / 2.
        normals = angle + 2.0 * np.pi * np.arange(3) / 3.0
        along = [np.cos(a) * offset[0] + np.sin(a) * offset[1] for a in normals]
        return np.max(along, axis=0) - radius / 2.0
    raise AssertionError(f"unknown kind {kind!r}")


def _spatial_shape(shape):
    if isinstance(shape, (str, bytes)) or not hasattr(shape, "__len__"):
        raise TypeError(f"shape: expected a sequence of 1 to 3 ints, got {shape!r}")
    if not 1 <= len(shape) <= 3:
        raise ValueError(f"shape: expected 1 to 3 spatial sizes, got {len(shape)}: {list(shape)}")
    sizes = []
    for size in shape:
        if isinstance(size, (bool, np.bool_)) or not isinstance(size, numbers.Integral):
            raise TypeError(f"shape: expected ints, got {size!r} of type "
                            f"{type(size).__name__} in {list(shape)}")
        if size < MIN_SIZE:
            raise ValueError(f"shape: every size must be >= {MIN_SIZE} so a shape has room "
                             f"to move, got {list(shape)}")
        sizes.append(int(size))
    return tuple(sizes)
