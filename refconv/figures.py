"""Figures for a page: the size and the text every refconv figure is drawn at, and its PNG.

The site (``docs/``) and the notebooks show a figure at its physical size, never wider
than the page's content column. :data:`WIDTH` and :data:`SMALLEST` are the one place
that decides how large a figure may be and how small its text; :data:`STYLE` (applied
by :func:`style`) gives matplotlib's text those sizes; :func:`figure` makes a figure
that keeps to them; :func:`to_png` draws one into the PNG a page shows, saying in it
what the figure shows and how small its smallest text is (``docs/check_site.py``
reads both). :mod:`refconv.viz` re-exports them all.
"""

import matplotlib
import numpy as np
from matplotlib.figure import Figure

__all__ = ["WIDTH", "SMALLEST", "STYLE", "style", "figure", "to_png", "png_text", "PNG"]

# The size a figure is drawn for. The site shows a figure at its physical size (96 CSS
# px per inch) but never wider than its content column: 688 CSS px (7.17 in) in a
# 1280 px window (docs/check_site.py measures it, and fails a figure whose smallest
# text is shown under 9 pt). A figure at most WIDTH wide is shown at full size, so
# text drawn at SMALLEST pt or more is read at that size.
WIDTH = 7.0        # inches
SMALLEST = 9       # points: tick labels, legends, notes, values written in cells
STYLE = {"font.size": 10, "axes.titlesize": 10, "axes.labelsize": 10,
         "xtick.labelsize": SMALLEST, "ytick.labelsize": SMALLEST,
         "legend.fontsize": SMALLEST, "legend.title_fontsize": SMALLEST,
         "figure.titlesize": 11}


def style():
    """A context in which matplotlib draws with ``STYLE`` (the figures' text sizes).

    The figure functions build their figures in it, and :func:`to_png` draws in it
    (matplotlib makes some tick labels only when it draws).

    Example:
        >>> with style():
        ...     fig = figure(3.0, 2.0)
        ...     fig.subplots().get_xticklabels()[0].get_fontsize() == SMALLEST
        True
    """
    return matplotlib.rc_context(STYLE)


def figure(width=WIDTH, height=3.0):
    """A ``Figure`` for a page: ``width`` x ``height`` inches, constrained layout.

    ``width`` is at most ``WIDTH``, so the page shows it at full size; a figure with
    more to show gets more rows, never smaller text.
    """
    if not 0 < width <= WIDTH or not 0 < height:
        raise ValueError(f"width, height: expected 0 < width <= {WIDTH} (viz.WIDTH, what "
                         f"the site shows at full size) and height > 0 inches, got "
                         f"{width!r}, {height!r}")
    with style():
        return Figure(figsize=(width, height), layout="constrained")


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
    chunk holds ``dpi``). A panel's title or axis label longer than the panel's side
    (the figure's title, than the figure) is broken into lines that fit. The result is deterministic: the same
    figure gives the same bytes.

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
    with style():   # tick labels made while drawing get the style's sizes
        canvas.draw()
        if _wrap_titles(figure, canvas.get_renderer()):
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


def _wrap_titles(figure, renderer):
    """Break each title or axis label longer than its panel's side (the suptitle: than
    the figure) into lines that fit, at spaces; True when one was. Text never shrinks."""
    import textwrap

    wrapped = False
    texts = [(figure._suptitle, figure.bbox.width, 0)] \
        if getattr(figure, "_suptitle", None) is not None else []
    for ax in figure.axes:
        if ax.get_label() != "<colorbar>":
            box = ax.get_window_extent(renderer)
            texts += [(ax.title, box.width, 0), (ax.xaxis.label, box.width, 0),
                      (ax.yaxis.label, box.height, 90)]
    for text, room, rotation in texts:
        if not text.get_visible() or not text.get_text().strip() \
                or text.get_rotation() != rotation:   # (a row's label, written across)
            continue
        extent = text.get_window_extent(renderer)
        length = extent.height if rotation else extent.width
        if length <= room * 1.02:
            continue
        lines = text.get_text().split("\n")
        chars = max(8, int(max(map(len, lines)) * room / length * 0.95))   # per line, that fit
        text.set_text("\n".join(textwrap.fill(line, chars, break_on_hyphens=False,
                                               break_long_words=False) for line in lines))
        wrapped = True
    return wrapped


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
