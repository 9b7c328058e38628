"""Pictures of what a convolutional LSTM/GRU does, step by step.

Each function takes the arrays that ``dynamic_rnn(..., return_gates=True)``
returns and gives back a matplotlib ``Figure``; :func:`to_png` draws it into the
PNG a notebook or the site shows (``fig.savefig(path)`` works too).

Two choices make the pictures comparable across time steps, runs and cells:

- every quantity has a FIXED colour range (a sigmoid gate always spans
  [0, 1]), so "brighter" means the same thing in every column and every
  figure; a range fitted to the data would hide a gate stuck half-open;
- sigmoid gates use a sequential colour map (0 = closed, 1 = open), signed
  quantities a diverging one (white = 0).

The figures are built with matplotlib's object-oriented API, not pyplot, so
importing this module or drawing needs no display and touches no global state.

Every figure is drawn for the page that shows it (:mod:`refconv.figures`): at most
``WIDTH`` inches wide, no text under ``SMALLEST`` points. A figure with more to show
than fits is split into rows, never drawn with smaller text.
"""

import math

import numpy as np

from .checks import check_data_format
from .figures import PNG, SMALLEST, STYLE, WIDTH, figure, png_text, style, to_png

__all__ = ["WIDTH", "SMALLEST", "STYLE", "style", "figure", "LABELS", "RANGES", "gate_grid",
           "picture_grid", "gate_traces", "channel_means", "saturation",
           "frame_strip", "heatmaps", "to_png", "png_text", "PNG"]

# The article's names and what each quantity is for.
LABELS = {
    "x": "x: input frame",
    "z": "z: fusion of x and h",
    "z_i": "z_i: input (memory) gate",
    "z_f": "z_f: forget gate",
    "z_o": "z_o: output gate",
    "c": "c: cell state",
    "h": "h: hidden state",
    "r": "r: reset gate",
    "u": "u: update gate",
    "candidate": "candidate: proposed new h",
}

# Fixed colour ranges. Gates come out of a sigmoid; z, the candidate and h come
# out of tanh (the default activation). c is layer-normalised (mean 0, variance
# 1 over the frame when normalize=True), so [-3, 3] holds nearly all of it.
RANGES = {
    "x": (0.0, 1.0),
    "z": (-1.0, 1.0),
    "z_i": (0.0, 1.0),
    "z_f": (0.0, 1.0),
    "z_o": (0.0, 1.0),
    "c": (-3.0, 3.0),
    "h": (-1.0, 1.0),
    "r": (0.0, 1.0),
    "u": (0.0, 1.0),
    "candidate": (-1.0, 1.0),
}

_SEQUENTIAL = "viridis"   # 0 (dark) .. 1 (bright): how far a gate is open
_DIVERGING = "RdBu_r"     # blue < 0 < red, white at 0
_INPUT = "gray"
_COLUMNS = 6              # most time steps side by side in WIDTH (each about 0.75 in)


def gate_grid(gates, names, sample=0, channel=0, frames=None, title=None,
              data_format="channels_last", ranges=None, steps=None):
    """A grid of pictures: one row per quantity, one column per time step.

    Args:
        gates: dict name -> array ``[B, T, *shape, F]`` (channels_last) or
            ``[B, T, F, *shape]`` (channels_first), ``shape`` of 1 to 3 axes.
        names: the rows, top to bottom, e.g. ``["z", "z_i", "z_f", "z_o", "c", "h"]``
            for the LSTM or ``["r", "u", "candidate", "h"]`` for the GRU.
        sample: which batch row to show.
        channel: which of the F state channels to show.
        frames: optional input video ``[B, T, *shape, C]`` (same layout),
            shown as a first row (its channel 0), in the range ``ranges["x"]``.
        title: the figure's title; a description of what is shown by default.
        data_format: ``"channels_last"`` or ``"channels_first"``.
        ranges: dict name -> (lo, hi) overriding the fixed colour ranges
            (``RANGES``); needed for a name that ``RANGES`` does not know.
        steps: which time steps to show (default all of them).

    A 2-D frame is shown as an image, a 1-D frame as a one-row image, a 3-D
    frame by its middle slice along the first spatial axis.

    Returns:
        A ``Figure`` with ``rows * len(steps)`` image axes (row by row; more than
        ``_COLUMNS`` steps are split into blocks of rows, one below the other), then
        one colour bar axes per row of each block.
    """
    ranges = _ranges(ranges)
    rows = [("x", _sequence("frames", frames))] if frames is not None else []
    rows += [(name, array) for name, array in _pick(gates, names)]
    timesteps = _same_length(rows)
    steps = _steps(steps, timesteps)
    for name, array in rows:
        _check_index("sample", sample, array.shape[0], name)
        if name != "x":
            _check_index("channel", channel, _channels(array, data_format), name)

    spatial = rows[0][1].ndim - 3
    if title is None:
        title = f"sample {sample}, state channel {channel}"
        if spatial == 3:
            title += " (middle slice along the first spatial axis)"
    # The input has its own channels; its channel 0 is the frame we feed.
    lines = [(LABELS.get(name, name).replace(": ", ":\n", 1),
              [_picture(array, sample, t, 0 if name == "x" else channel, data_format)
               for t in range(timesteps)], _range(name, ranges),
              _colour_map(name, *_range(name, ranges)),
              name if name in LABELS else "")   # (another name: the row label says it)
             for name, array in rows]
    return picture_grid(lines, steps, title)


def picture_grid(rows, steps, title=None, step_titles=None, bars=True):
    """Rows of pictures, one column per step; more than six steps go on in a second block.

    What :func:`gate_grid` draws, for any sequences of pictures.

    Args:
        rows: one ``(label, pictures, (lo, hi), cmap, bar_label)`` per row: its label
            (left of the row), its pictures (one 2-D array per step; a 1-D one is shown as
            a one-row image), its fixed colour range and map, its colour bar's label.
        steps: the steps to show (indices into each row's pictures).
        title: the figure's title.
        step_titles: each column's title, one per step (default ``"t={step}"``).
        bars: a colour bar per row (of each block).

    Returns:
        A ``Figure`` with ``len(rows) * len(steps)`` image axes (row by row, block by
        block), then the colour bars.
    """
    steps = list(steps)
    step_titles = [f"t={t}" for t in steps] if step_titles is None else list(step_titles)
    if len(step_titles) != len(steps):
        raise ValueError(f"step_titles: expected one per step ({len(steps)}), got "
                         f"{len(step_titles)}")
    blocks = math.ceil(len(steps) / _COLUMNS)
    per = math.ceil(len(steps) / blocks)
    with style():
        fig = figure(min(1.6 + 0.7 * bars + 0.78 * per, WIDTH),
                     0.8 * len(rows) * blocks + 0.3 * blocks + 0.4)
        axes = fig.subplots(len(rows) * blocks, per, squeeze=False)
        for extra in axes[len(rows) * (blocks - 1):, len(steps) - per * (blocks - 1):].flat:
            extra.set_visible(False)   # the last block's empty places (kept: bars align)
        for block in range(blocks):
            shown = steps[block * per:(block + 1) * per]
            titles = step_titles[block * per:(block + 1) * per]
            for row, (label, pictures, (lo, hi), cmap, bar_label) in enumerate(rows):
                line = axes[block * len(rows) + row]
                for col, t in enumerate(shown):
                    picture = np.asarray(pictures[t])
                    image = line[col].imshow(picture[None, :] if picture.ndim == 1 else picture,
                                             cmap=cmap, vmin=lo, vmax=hi,
                                             interpolation="nearest",
                                             aspect="auto" if picture.ndim == 1
                                             or picture.shape[0] == 1 else "equal")
                    line[col].set_xticks([])
                    line[col].set_yticks([])
                    if row == 0:
                        line[col].set_title(titles[col])
                line[0].set_ylabel(label, rotation=0, ha="right", va="center")
                if bars:
                    bar = fig.colorbar(image, ax=line, fraction=0.04, pad=0.02, aspect=7)
                    bar.set_ticks([lo, (lo + hi) / 2, hi])
                    bar.set_label(bar_label)
        if title:
            fig.suptitle(title)
    return fig


def gate_traces(gates, names, sample=0, ranges=None):
    """Each quantity's mean over space and channels, against time.

    Args:
        gates: dict name -> array ``[B, T, ...]`` (either layout: the mean
            over all non-batch, non-time axes does not care).
        names: which quantities, one small plot each, top to bottom.
        sample: which batch row.
        ranges: overrides of the fixed y ranges, as in ``gate_grid``.

    The band around each line is +-1 standard deviation over space and
    channels: a gate whose mean sits at 0.5 may be half-open everywhere or
    open in one place and shut in another, and the band tells which.

    Returns:
        A ``Figure`` with one axes per name, sharing the time axis.
    """
    ranges, rows, timesteps, time, fig, axes = _over_time(gates, names, ranges)
    for ax, (name, array) in zip(axes, rows):
        _check_index("sample", sample, array.shape[0], name)
        values = array[sample].reshape(timesteps, -1)            # [T, everything else]
        mean, spread = values.mean(axis=1), values.std(axis=1)
        ax.fill_between(time, mean - spread, mean + spread, alpha=0.25, linewidth=0)
        ax.plot(time, mean, marker="o", markersize=3)
        ax.set_ylim(*_range(name, ranges))
        _label_row(ax, name)
    _time_axis(axes[-1], time, timesteps)
    fig.suptitle(f"mean over space and channels (band: +-1 std), sample {sample}", fontsize=10)
    return fig


def channel_means(gates, names, sample=0, data_format="channels_last", ranges=None):
    """Each state channel's mean over space, against time: one line per channel.

    ``gate_traces`` averages the channels together; this keeps them apart, so
    a channel whose gate stays shut while another's opens is visible.

    Args:
        gates: dict name -> array ``[B, T, *shape, F]`` (or ``[B, T, F, *shape]``).
        names: which quantities, one small plot each, top to bottom.
        sample: which batch row.
        data_format: ``"channels_last"`` or ``"channels_first"``.
        ranges: overrides of the fixed y ranges, as in ``gate_grid``.

    Returns:
        A ``Figure`` with one axes per name; axes ``i`` has one line per channel.
    """
    ranges, rows, timesteps, time, fig, axes = _over_time(gates, names, ranges)
    for ax, (name, array) in zip(axes, rows):
        _check_index("sample", sample, array.shape[0], name)
        values = array[sample] if check_data_format(data_format) == "channels_last" else \
            np.moveaxis(array[sample], 1, -1)
        means = values.reshape(timesteps, -1, values.shape[-1]).mean(axis=1)   # [T, F]
        for f in range(means.shape[1]):
            ax.plot(time, means[:, f], marker="o", markersize=2.5, linewidth=1.2,
                    label=f"channel {f}")
        ax.set_ylim(*_range(name, ranges))
        _label_row(ax, name)
    if means.shape[1] <= 8:
        axes[0].legend(fontsize=SMALLEST, ncol=min(means.shape[1], 4), loc="upper right")
    _time_axis(axes[-1], time, timesteps)
    fig.suptitle(f"mean over space of each state channel, sample {sample}", fontsize=10)
    return fig


def saturation(gates, names, low=0.1, high=0.9):
    """The share of gate values that are nearly shut (< low) or nearly open (> high).

    Meant for the sigmoid gates (z_i, z_f, z_o, r, u). A saturated gate passes
    almost no gradient (the sigmoid is flat there): a gate that is mostly
    saturated from the first steps of an untrained network learns slowly.

    Args:
        gates: dict name -> array ``[B, T, ...]`` (either layout).
        names: which gates, one small plot each.
        low, high: the thresholds, ``low < high``.

    Returns:
        A ``Figure`` with one axes per name; shares are over the whole batch,
        space and channels, per time step.
    """
    if not low < high:
        raise ValueError(f"low, high: expected low < high, got low={low}, high={high}")
    _, rows, timesteps, time, fig, axes = _over_time(gates, names, None)
    for ax, (name, array) in zip(axes, rows):
        values = np.moveaxis(array, 1, 0).reshape(timesteps, -1)  # [T, batch and the rest]
        ax.plot(time, (values < low).mean(axis=1), marker="v", markersize=3,
                label=f"< {low:g} (nearly shut)")
        ax.plot(time, (values > high).mean(axis=1), marker="^", markersize=3,
                label=f"> {high:g} (nearly open)")
        ax.set_ylim(-0.03, 1.03)
        _label_row(ax, name)
    axes[0].legend(fontsize=SMALLEST, loc="upper right")
    _time_axis(axes[-1], time, timesteps)
    fig.suptitle("gate saturation: share of values near 0 or 1", fontsize=10)
    return fig


def frame_strip(video, sample=0, channel=0, data_format="channels_last", vrange=(0.0, 1.0)):
    """The input frames in a row, one per time step.

    Args:
        video: ``[B, T, *shape, C]`` (channels_last) or ``[B, T, C, *shape]``.
        sample, channel: which batch row and which input channel.
        data_format: ``"channels_last"`` or ``"channels_first"``.
        vrange: the fixed grey range, (0, 1) for ``refconv.data.moving_shapes``.

    Returns:
        A ``Figure`` with T image axes (in two or more rows when T is over 8).
    """
    video = _sequence("video", video)
    _check_index("sample", sample, video.shape[0], "video")
    _check_index("channel", channel, _channels(video, data_format), "video")
    timesteps, spatial = video.shape[1], video.ndim - 3
    lines = math.ceil(timesteps / (_COLUMNS + 2))   # without a label and a bar, 8 fit
    per = math.ceil(timesteps / lines)
    with style():
        fig = figure(min(0.85 * per + 0.3, WIDTH), 1.05 * lines + 0.45)
        axes = fig.subplots(lines, per, squeeze=False).flat
        for t, ax in enumerate(axes):
            if t >= timesteps:
                fig.delaxes(ax)
                continue
            ax.imshow(_picture(video, sample, t, channel, data_format), cmap=_INPUT,
                      vmin=vrange[0], vmax=vrange[1], interpolation="nearest",
                      aspect="auto" if spatial == 1 else "equal")
            ax.set_xticks([])
            ax.set_yticks([])
            ax.set_title(f"t={t}")
    fig.suptitle(f"input frames, sample {sample}, channel {channel}")
    return fig


def heatmaps(arrays, titles, ranges=None, labels=None, cmaps=None, title=None,
             annotate=None, fmt="{:.2g}", width=None):
    """A row of 1-D or 2-D arrays as images, each with its own labelled colour bar.

    For the small arrays a lesson shows side by side: an input, a kernel and
    their cross-correlation; a padded signal; a mask over batch rows and time.

    Args:
        arrays: list of 1-D (shown as one row) or 2-D arrays.
        titles: one title per array.
        ranges: one ``(lo, hi)`` per array, or None for a range that holds the
            array (symmetric about 0 when it has negative values). NaN values
            are left blank.
        labels: one colour-bar label per array (default: its title).
        cmaps: one colour map per array; default diverging (white at 0) for a
            range that straddles 0, sequential otherwise.
        title: the figure's title.
        annotate: write each value in its cell (default: when an array has at
            most 64 values), with ``fmt``.
        width: the figure's width in inches (default: from the arrays' widths), at
            most ``WIDTH``; panels that do not fit side by side go on further rows.

    Returns:
        A ``Figure`` with one image axes per array, then one colour bar each.
    """
    if isinstance(arrays, np.ndarray) or not isinstance(arrays, (list, tuple)) or not arrays:
        raise TypeError("arrays: expected a non-empty list of arrays")
    n = len(arrays)
    titles, ranges, labels, cmaps = (_per_panel(name, value, n) for name, value in
                                     (("titles", titles), ("ranges", ranges),
                                      ("labels", labels), ("cmaps", cmaps)))
    pictures = []
    for i, array in enumerate(arrays):
        array = np.asarray(array, dtype=float)
        if array.ndim not in (1, 2) or array.size == 0:
            raise ValueError(f"arrays[{i}]: expected a non-empty 1-D or 2-D array, "
                             f"got shape {array.shape}")
        pictures.append(array[None, :] if array.ndim == 1 else array)
    widths = [p.shape[1] for p in pictures]
    widths = [max(w, max(widths) / 4) for w in widths]   # a 3 x 3 kernel by a frame stays visible
    # Panels side by side while a row fits (a value's cell about 0.3 in, a panel's colour
    # bar and margins 1 in); the others on the rows below, at the same scale.
    width = min(width or WIDTH, WIDTH)
    annotated = [annotate or (annotate is None and p.size <= 64) for p in pictures]
    # A cell with a value written in it needs about 0.27 in; pictures without values get
    # at most 1.4 in (three to a row). A panel's colour bar and margins take 0.8 in more.
    cell = 0.27 if any(annotated) else min(0.27, 1.4 / max(widths))
    slots = [w + 0.8 / cell for w in widths]        # in cells
    lines = _wrap([cell * slot for slot in slots], width - 0.3)
    widest = max(sum(slots[i] for i in line) for line in lines)
    if len(lines) == 1:
        width = min(width, 0.3 + cell * widest)
    # Each row tall enough for its tallest picture at the width it gets (bars take ~1/4).
    heights = [min(max(max(width * widths[i] / widest * pictures[i].shape[0]
                           / pictures[i].shape[1] for i in line) + 0.8, 1.3), 6.0)
               for line in lines]
    with style():
        fig = figure(width, sum(heights) + (0.3 if title else 0))
        grid = fig.add_gridspec(len(lines), 1, height_ratios=heights)
        axes = []
        for k, line in enumerate(lines):
            ratios = [slots[i] for i in line]
            used = sum(ratios)
            row = grid[k].subgridspec(1, len(line) + (used < widest),
                                      width_ratios=ratios + [widest - used] * (used < widest))
            axes += [fig.add_subplot(row[0, j]) for j in range(len(line))]
        for i, (ax, picture) in enumerate(zip(axes, pictures)):
            if ranges[i] is None:
                lo, hi = float(np.nanmin(picture)), float(np.nanmax(picture))
                if lo < 0:
                    lo, hi = -max(-lo, hi, 1e-12), max(-lo, hi, 1e-12)
                elif lo == hi:
                    hi = lo + 1.0
            else:
                lo, hi = (float(v) for v in ranges[i])
                if not lo < hi:
                    raise ValueError(f"ranges[{i}]: expected lo < hi, got ({lo}, {hi})")
            cmap = cmaps[i] or (_DIVERGING if lo < 0 < hi else _SEQUENTIAL)
            image = ax.imshow(picture, cmap=cmap, vmin=lo, vmax=hi, interpolation="nearest")
            if annotated[i]:
                for (r, c), value in np.ndenumerate(picture):
                    if np.isnan(value):          # a blank cell: nothing there
                        continue
                    red, green, blue, _ = image.cmap(image.norm(value))
                    dark = 0.299 * red + 0.587 * green + 0.114 * blue < 0.5   # white on dark
                    ax.text(c, r, fmt.format(value), ha="center", va="center",
                            fontsize=SMALLEST, color="white" if dark else "black")
            ax.set_xticks([])
            ax.set_yticks([])
            ax.set_title(titles[i])
            bar = fig.colorbar(image, ax=ax, fraction=0.05, pad=0.02, shrink=0.9)
            bar.set_label(labels[i] if labels[i] is not None else titles[i])
    if title:
        fig.suptitle(title)
    return fig


# ---------------------------------------------------------------- helpers

def _over_time(gates, names, ranges):
    """What a plot of quantities against time starts with: one axes per name, sharing time."""
    ranges = _ranges(ranges)
    rows = _pick(gates, names)
    timesteps = _same_length(rows)
    time = np.arange(timesteps)
    with style():
        fig = figure(6.4, 1.25 * len(rows) + 0.8)
        axes = fig.subplots(len(rows), 1, sharex=True, squeeze=False)[:, 0]
    return ranges, rows, timesteps, time, fig, axes


def _label_row(ax, name):
    ax.set_ylabel(LABELS.get(name, name).replace(": ", ":\n", 1), fontsize=SMALLEST)
    ax.tick_params(labelsize=SMALLEST)
    ax.grid(alpha=0.3)


def _time_axis(ax, time, timesteps):
    ax.set_xlabel("time step t", fontsize=SMALLEST)
    ax.set_xticks(time if timesteps <= 20 else np.linspace(0, timesteps - 1, 6).round())


def _wrap(sizes, room):
    """Indices of ``sizes`` in rows, in order, each row's sum at most ``room`` (one at least)."""
    lines = [[]]
    for i, size in enumerate(sizes):
        if lines[-1] and sum(sizes[j] for j in lines[-1]) + size > room:
            lines.append([])
        lines[-1].append(i)
    return lines


def _per_panel(name, value, n):
    if value is None:
        return [None] * n
    if isinstance(value, str) or len(value) != n:
        raise ValueError(f"{name}: expected a list of {n} entries (one per array), got {value!r}")
    return list(value)


def _picture(array, sample, t, channel, data_format):
    """One frame of one channel as a 2-D array that imshow can draw."""
    if data_format == "channels_last":
        frame = array[sample, t, ..., channel]
    elif data_format == "channels_first":
        frame = array[sample, t, channel]
    else:
        raise ValueError(f"data_format: expected 'channels_last' or 'channels_first', "
                         f"got {data_format!r}")
    if frame.ndim == 1:
        return frame[None, :]                    # a one-row image
    if frame.ndim == 3:
        return frame[frame.shape[0] // 2]        # the middle slice
    return frame


def _channels(array, data_format):
    return array.shape[-1] if data_format == "channels_last" else array.shape[2]


def _sequence(what, array):
    """A batch-major sequence [B, T, 1 to 3 spatial axes, channels] as a NumPy array."""
    array = np.asarray(array)
    if not 4 <= array.ndim <= 6:
        raise ValueError(f"{what}: expected [B, T, *shape, C] with 1 to 3 spatial axes "
                         f"(4 to 6 dims), got shape {array.shape}")
    return array


def _pick(gates, names):
    if isinstance(names, str):
        raise TypeError(f"names: expected a list of names, got the string {names!r}")
    if len(names) == 0:
        raise ValueError("names: expected at least one name, got none")
    missing = [name for name in names if name not in gates]
    if missing:
        raise ValueError(f"names: {missing} not in gates, which has {sorted(gates)}")
    return [(name, _sequence(f"gates[{name!r}]", gates[name])) for name in names]


def _same_length(rows):
    lengths = {name: array.shape[1] for name, array in rows}
    if len(set(lengths.values())) != 1:
        raise ValueError(f"gates: expected the same number of time steps in every array, "
                         f"got {lengths}")
    return rows[0][1].shape[1]


def _steps(steps, timesteps):
    steps = list(range(timesteps)) if steps is None else [int(t) for t in steps]
    if not steps or not all(0 <= t < timesteps for t in steps):
        raise ValueError(f"steps: expected time steps in [0, {timesteps}), got {steps}")
    return steps


def _check_index(what, index, size, name):
    if not 0 <= index < size:
        raise ValueError(f"{what}: expected an index in [0, {size}) for {name}, got {index}")


def _ranges(overrides):
    merged = dict(RANGES)
    merged.update(overrides or {})
    return merged


def _range(name, ranges):
    if name not in ranges:
        raise ValueError(f"ranges: no colour range for {name!r}; pass "
                         f"ranges={{{name!r}: (lo, hi)}}")
    lo, hi = ranges[name]
    if not lo < hi:
        raise ValueError(f"ranges: expected lo < hi for {name!r}, got ({lo}, {hi})")
    return float(lo), float(hi)


def _colour_map(name, lo, hi):
    if name == "x":
        return _INPUT
    return _DIVERGING if lo < 0 < hi else _SEQUENTIAL
