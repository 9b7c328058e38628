"""Pictures of what a convolutional LSTM/GRU does, step by step.

Each function takes the arrays that ``dynamic_rnn(..., return_gates=True)``
returns and gives back a matplotlib ``Figure``; save it with
``fig.savefig(path)`` or let a notebook show it.

Two choices make the pictures comparable across time steps, runs and cells:

- every quantity has a FIXED colour range (a sigmoid gate always spans
  [0, 1]), so "brighter" means the same thing in every column and every
  figure; a range fitted to the data would hide a gate stuck half-open;
- sigmoid gates use a sequential colour map (0 = closed, 1 = open), signed
  quantities a diverging one (white = 0).

The figures are built with matplotlib's object-oriented API, not pyplot, so
importing this module or drawing needs no display and touches no global state.
"""

import numpy as np
from matplotlib.figure import Figure

from .checks import check_data_format

__all__ = ["LABELS", "RANGES", "gate_grid", "gate_traces", "channel_means", "saturation",
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
        A ``Figure`` with ``rows * len(steps)`` image axes, then one colour bar
        axes per row.
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
    fig = Figure(figsize=(0.95 * len(steps) + 2.9, 0.95 * len(rows) + 0.7),
                 layout="constrained")
    axes = fig.subplots(len(rows), len(steps), squeeze=False)
    for row, (name, array) in enumerate(rows):
        lo, hi = _range(name, ranges)
        for col, t in enumerate(steps):
            ax = axes[row, col]
            # The input has its own channels; its channel 0 is the frame we feed.
            picture = _picture(array, sample, t, 0 if name == "x" else channel, data_format)
            image = ax.imshow(picture, cmap=_colour_map(name, lo, hi), vmin=lo, vmax=hi,
                              interpolation="nearest", aspect="auto" if spatial == 1 else "equal")
            ax.set_xticks([])
            ax.set_yticks([])
            if row == 0:
                ax.set_title(f"t={t}", fontsize=9)
        axes[row, 0].set_ylabel(LABELS.get(name, name).replace(": ", ":\n", 1),
                                rotation=0, ha="right", va="center", fontsize=9)
        bar = fig.colorbar(image, ax=axes[row, :], fraction=0.025, pad=0.01, aspect=8)
        bar.set_ticks([lo, (lo + hi) / 2, hi])
        bar.ax.tick_params(labelsize=7)
        bar.set_label(name, fontsize=8)

    if title is None:
        title = f"sample {sample}, state channel {channel}"
        if spatial == 3:
            title += " (middle slice along the first spatial axis)"
    fig.suptitle(title, fontsize=11)
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
        axes[0].legend(fontsize=6, ncol=min(means.shape[1], 4), loc="upper right")
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
    axes[0].legend(fontsize=7, loc="upper right")
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
        A ``Figure`` with T image axes.
    """
    video = _sequence("video", video)
    _check_index("sample", sample, video.shape[0], "video")
    _check_index("channel", channel, _channels(video, data_format), "video")
    timesteps, spatial = video.shape[1], video.ndim - 3
    fig = Figure(figsize=(0.95 * timesteps + 0.4, 1.6), layout="constrained")
    axes = fig.subplots(1, timesteps, squeeze=False)[0]
    for t, ax in enumerate(axes):
        ax.imshow(_picture(video, sample, t, channel, data_format), cmap=_INPUT,
                  vmin=vrange[0], vmax=vrange[1], interpolation="nearest",
                  aspect="auto" if spatial == 1 else "equal")
        ax.set_xticks([])
        ax.set_yticks([])
        ax.set_title(f"t={t}", fontsize=9)
    fig.suptitle(f"input frames, sample {sample}, channel {channel}", fontsize=10)
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
        width: the figure's width in inches (default: from the arrays' widths).

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
    widths = [max(w, max(widths) / 4) for w in widths]   # a 3 x 3 kernel beside a frame stays visible
    if width is None:
        width = min(2.2 + 0.3 * sum(widths) + 1.0 * n, 13.0)
    # Tall enough for the tallest picture at the width it gets (colour bars take ~1/4).
    tallest = max(0.75 * width * w / sum(widths) * p.shape[0] / p.shape[1]
                  for w, p in zip(widths, pictures))
    height = min(max(tallest + 0.8, 1.3), 6.0) + (0.3 if title else 0)
    fig = Figure(figsize=(width, height), layout="constrained")
    axes = fig.subplots(1, n, squeeze=False, width_ratios=widths)[0]
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
        if annotate or (annotate is None and picture.size <= 64):
            for (r, c), value in np.ndenumerate(picture):
                if np.isnan(value):          # a blank cell: nothing there
                    continue
                red, green, blue, _ = image.cmap(image.norm(value))
                dark = 0.299 * red + 0.587 * green + 0.114 * blue < 0.5   # white text on dark
                ax.text(c, r, fmt.format(value), ha="center", va="center", fontsize=8,
                        color="white" if dark else "black")
        ax.set_xticks([])
        ax.set_yticks([])
        ax.set_title(titles[i], fontsize=10)
        bar = fig.colorbar(image, ax=ax, fraction=0.05, pad=0.02, shrink=0.9)
        bar.ax.tick_params(labelsize=7)
        bar.set_label(labels[i] if labels[i] is not None else titles[i], fontsize=8)
    if title:
        fig.suptitle(title, fontsize=11)
    return fig


class PNG(bytes):
    """The bytes of a PNG file that Jupyter shows as a picture (``_repr_png_``)."""

    def _repr_png_(self):
        return bytes(self)

    def __repr__(self):  # Jupyter also stores the text form: keep it short
        return f"<PNG image, {len(self)} bytes>"


def to_png(figure, dpi=150, colours=256):
    """Draw ``figure`` into a PNG a page can show sharp: 150 dpi, a palette, optimised.

    150 dpi keeps 8-point text legible when a browser shows the figure scaled
    down to a page's width, and crisp at full size (a click on the site opens it);
    a palette of 256 colours keeps the committed notebooks small (a grid of noisy
    gates in full colour is several times larger and looks the same). The PNG
    says what it shows: its ``Description`` text is the figure's title and its
    panels' titles (the site's alt text), its ``Smallest text`` the size in
    points of its smallest text, and its physical size is the figure's (the pHYs
    chunk holds ``dpi``). The result is deterministic: the same figure gives the
    same bytes.

    Args:
        figure: a matplotlib ``Figure``.
        dpi: dots per inch (at least 10).
        colours: palette size (2 to 256), or None for full colour.

    Returns:
        A :class:`PNG` (``bytes``); as a notebook cell's last value it is shown.

    Example:
        >>> from matplotlib.figure import Figure
        >>> figure = Figure(figsize=(2, 1))
        >>> _ = figure.suptitle("a gate")
        >>> png = to_png(figure)
        >>> png[:8] == b"\\x89PNG\\r\\n\\x1a\\n", png_text(png)["Description"]
        (True, 'a gate')
    """
    import io

    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from PIL import Image, PngImagePlugin   # Pillow: a dependency of matplotlib

    if not isinstance(figure, Figure):
        raise TypeError(f"figure: expected a matplotlib Figure, got {type(figure).__name__}")
    if colours is not None and not 2 <= colours <= 256:
        raise ValueError(f"colours: expected 2 to 256 or None, got {colours!r}")
    if not dpi >= 10:
        raise ValueError(f"dpi: expected 10 or more, got {dpi!r}")
    canvas = FigureCanvasAgg(figure)
    figure.set_dpi(dpi)
    canvas.draw()
    image = Image.fromarray(np.asarray(canvas.buffer_rgba())[..., :3])
    if colours is not None:
        image = image.quantize(colours, method=Image.Quantize.FASTOCTREE)
    info = PngImagePlugin.PngInfo()
    description, smallest = _describe(figure)
    info.add_text("Description", description)
    if smallest is not None:
        info.add_text("Smallest text", f"{smallest:g} pt")
    buffer = io.BytesIO()
    image.save(buffer, format="png", optimize=True, dpi=(dpi, dpi), pnginfo=info)
    return PNG(buffer.getvalue())


def png_text(png):
    """The text chunks of a PNG's bytes (what :func:`to_png` wrote), as a dict."""
    import io

    from PIL import Image

    with Image.open(io.BytesIO(bytes(png))) as image:
        return dict(getattr(image, "text", {}))


def _describe(figure):
    """``(text, smallest)``: what ``figure`` shows, from its titles (the suptitle, then
    each panel's title or y label), and the size in points of its smallest visible text
    (None without text)."""
    def shown(artist):
        return artist.get_visible() and artist.get_text().strip()

    title = getattr(figure, "_suptitle", None)   # Figure.get_suptitle: matplotlib 3.8+
    parts = [title.get_text().strip()] if title is not None and shown(title) else []
    panels = []
    for ax in figure.axes:
        if ax.get_label() == "<colorbar>":
            continue
        for label in (ax.get_title().strip(), ax.get_ylabel().strip()):
            if label and label not in panels:
                panels.append(label)
    if panels:
        parts.append(("panels: " if parts else "") + "; ".join(panels))
    sizes = [text.get_fontsize() for text in figure.findobj(
        lambda a: hasattr(a, "get_text") and hasattr(a, "get_fontsize")) if shown(text)]
    text = ". ".join(" ".join(part.split()) for part in parts) or "a figure without a title"
    return text, (min(sizes) if sizes else None)


# ---------------------------------------------------------------- helpers

def _over_time(gates, names, ranges):
    """What a plot of quantities against time starts with: one axes per name, sharing time."""
    ranges = _ranges(ranges)
    rows = _pick(gates, names)
    timesteps = _same_length(rows)
    time = np.arange(timesteps)
    fig = Figure(figsize=(6.4, 1.25 * len(rows) + 0.8), layout="constrained")
    axes = fig.subplots(len(rows), 1, sharex=True, squeeze=False)[:, 0]
    return ranges, rows, timesteps, time, fig, axes


def _label_row(ax, name):
    ax.set_ylabel(LABELS.get(name, name).replace(": ", ":\n", 1), fontsize=8)
    ax.tick_params(labelsize=7)
    ax.grid(alpha=0.3)


def _time_axis(ax, time, timesteps):
    ax.set_xlabel("time step t")
    ax.set_xticks(time if timesteps <= 20 else np.linspace(0, timesteps - 1, 6).round())


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
