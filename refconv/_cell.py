"""What ConvLSTMCell and ConvGRUCell share: their arguments, parameter building and checking.

Nothing here is maths; the gates live in ``lstm.py`` and ``gru.py``.
"""

import math
import threading

import numpy as np

from . import memory
from .activations import get_activation
from .checks import CHANNELS_FIRST  # noqa: F401  (refconv.interop imports it from here, for now)
from .checks import (CHANNELS_LAST, check_data_format, check_float_array, check_float_dtype,
                     check_int, check_ints)

# Taken by a first call that builds its cell: two threads calling one unbuilt cell at
# once must not each build (with fresh entropy) and then run on weights the cell no longer
# has. One lock for every cell (a lock per cell would stop cells from being copied or
# pickled); only first calls take it.
_BUILD_LOCK = threading.Lock()


def glorot_uniform(rng, shape):
    """TensorFlow's default initialiser, ``U(-l, l)`` with ``l = sqrt(6 / (fan_in + fan_out))``.

    Fans as TensorFlow counts them: the last axis is fan-out, the one before it
    fan-in, and every axis before those multiplies both (a convolution's
    receptive field; for a peephole weight ``[H, W, F]`` that is ``H``).
    """
    if len(shape) == 1:
        fan_in = fan_out = shape[0]
    else:
        receptive = math.prod(shape[:-2])
        fan_in, fan_out = shape[-2] * receptive, shape[-1] * receptive
    limit = math.sqrt(6.0 / max(fan_in + fan_out, 1))
    return rng.uniform(-limit, limit, size=shape)


class ConvCell:
    """Plumbing common to the two cells; subclasses define the maths.

    A subclass sets ``quantities`` (what ``return_gates`` gives) and implements
    ``_param_specs(in_channels)``
    (name -> (shape, initialiser)), ``_step``/``_step_backward``, ``_gates``,
    ``_slim``/``_rebuild`` (what backpropagation through time keeps of a step),
    ``_check_state`` and ``zero_state``.
    """

    quantities = ()

    def __init__(self, shape, filters, kernel, activation, normalize, data_format):
        self.shape = check_ints(shape, "shape")
        self.filters = check_int(filters, "filters")
        self.kernel = check_ints(kernel, "kernel", n=len(self.shape))
        self.data_format = check_data_format(data_format)
        self.activation = get_activation(activation, "activation")
        if not isinstance(normalize, (bool, np.bool_)):
            raise TypeError(f"normalize: expected True or False, got {normalize!r}")
        self.normalize = bool(normalize)
        self.in_channels = None
        self.params = None

    # --- layout -----------------------------------------------------------
    @property
    def channel_axis(self):
        """Channel axis of a batched frame ``[B, ...]``: -1 or 1."""
        return -1 if self.data_format == CHANNELS_LAST else 1

    @property
    def state_shape(self):
        """Spatial size of the state (equal to ``shape`` unless the input convolution shrinks it)."""
        return list(self.shape)

    def _frame(self, spatial, channels):
        spatial = list(spatial)
        return (*spatial, channels) if self.data_format == CHANNELS_LAST else (channels, *spatial)

    @property
    def output_size(self):
        """One frame of ``h`` without the batch axis: ``S``."""
        return self._frame(self.state_shape, self.filters)

    # --- parameters -------------------------------------------------------
    def build(self, in_channels, seed=None):
        """Create ``self.params`` for inputs with ``in_channels`` channels.

        Args:
            in_channels: ``C_in``, channels of one input frame.
            seed: int, ``np.random.SeedSequence`` or None (fresh entropy). The
                same seed gives the same bits.

        Example:
            >>> import numpy as np, refconv
            >>> cell = refconv.ConvLSTMCell([8, 8], filters=4, kernel=[3, 3])
            >>> cell.build(2, seed=0)
            >>> cell.params["kernel"].shape          # [*kernel, C_in + F, 4F]
            (3, 3, 6, 16)
            >>> again = refconv.ConvLSTMCell([8, 8], filters=4, kernel=[3, 3])
            >>> again.build(2, seed=0)
            >>> all(np.array_equal(cell.params[k], again.params[k]) for k in cell.params)
            True
        """
        in_channels = check_int(in_channels, "in_channels")
        specs = self._param_specs(in_channels)
        # float64 parameters, and the initialiser's draw of the largest one
        sizes = [math.prod(shape) for shape, _ in specs.values()]
        memory.require(8 * (sum(sizes) + max(sizes)), "build",
                       "use fewer filters, input channels or a smaller kernel")
        rng = np.random.default_rng(seed)
        self.in_channels = in_channels
        self.params = {name: init(rng, shape) if callable(init) else np.full(shape, float(init))
                       for name, (shape, init) in specs.items()}

    def _checked_params(self, dtype, params=None, in_channels=None):
        """``params`` (default: the cell's), checked against SPEC's names and shapes for
        ``in_channels`` input channels (default: the cell's) and cast to ``dtype``."""
        params = self.params if params is None else params
        in_channels = self.in_channels if in_channels is None else in_channels
        if not isinstance(params, dict):
            raise TypeError(f"params: expected a dict of arrays, got {type(params).__name__}")
        specs = self._param_specs(in_channels)
        unknown = sorted(set(params) - set(specs))
        missing = sorted(set(specs) - set(params))
        if unknown or missing:
            raise ValueError(f"params: expected exactly the keys {sorted(specs)}; "
                             f"missing {missing}, unexpected {unknown}")
        out = {}
        for name, (shape, _) in specs.items():
            value = np.asarray(params[name])
            if value.dtype.kind not in "fiu":
                raise TypeError(f"params[{name!r}]: expected a real numeric array, "
                                f"got dtype {value.dtype}")
            if value.shape != tuple(shape):
                raise ValueError(f"params[{name!r}]: expected shape {tuple(shape)}, "
                                 f"got {value.shape}")
            out[name] = value.astype(dtype, copy=False)
        return out

    # --- checking frames and states -----------------------------------------
    def _prepare(self, full_shape, lead, dtype, argument="x"):
        """Check the shape of a batch of frames, build on first use, return cast params.

        Validate, then mutate: the cell changes (``params`` built, ``in_channels`` learnt
        for hand-assigned params) only once every check has passed, so a failed call
        leaves it as it was; and a first call builds under a lock, once, whatever the
        number of threads calling.

        Args:
            full_shape: shape of the array, leading axes included.
            lead: names of the leading axes, e.g. ``["B"]`` or ``["B", "T"]``.
        """
        n = len(self.shape)
        frame_shape = tuple(full_shape[len(lead):])
        expected = "[" + ", ".join([*lead, *map(str, self._frame(self.shape, "C"))]) + "]"
        got = list(full_shape)
        if len(full_shape) != len(lead) + n + 1:
            raise ValueError(f"{argument}: expected shape {expected} ({n} spatial axes, "
                             f"{self.data_format}), got {got}")
        ca = -1 if self.data_format == CHANNELS_LAST else 0
        spatial = list(frame_shape[:-1] if ca == -1 else frame_shape[1:])
        channels = frame_shape[ca]
        if spatial != self.shape:
            other = list(frame_shape[1:] if ca == -1 else frame_shape[:-1])
            hint = ""
            if other == self.shape:  # the frames fit the other layout: say which
                flip = CHANNELS_FIRST if ca == -1 else CHANNELS_LAST
                hint = (f"; these frames look {flip} (channels on axis "
                        f"{len(lead) if ca == -1 else len(full_shape) - 1}): build the cell with "
                        f"data_format=\"{flip}\", or move the channel axis")
            raise ValueError(f"{argument}: expected shape {expected} (spatial size {self.shape}, "
                             f"{self.data_format}), got {got}{hint}")
        dtype = check_float_dtype(dtype, f"dtype of {argument}")
        params, in_channels = self.params, self.in_channels
        if params is not None and in_channels is not None:  # built: no lock, no change
            return self._checked(params, in_channels, channels, dtype, argument, got)
        with _BUILD_LOCK:
            if self.params is None:  # the first call builds, once
                self.build(channels)
                return self._checked(self.params, self.in_channels, channels, dtype, argument,
                                     got)
            params, in_channels = self.params, self.in_channels
            if in_channels is None:  # params assigned by hand, without build(): learn C_in
                in_channels = check_int(channels, f"channels of {argument}")
            try:
                checked = self._checked(params, in_channels, channels, dtype, argument, got)
            except ValueError as error:
                raise ValueError(f"{argument}: {channels} channels (shape {got}) do not fit the "
                                 f"assigned params: {error}") from None
            self.in_channels = in_channels  # only now, every check passed
            return checked

    def _checked(self, params, in_channels, channels, dtype, argument, got):
        if channels != in_channels:
            raise ValueError(f"{argument}: expected {in_channels} channels (the cell was "
                             f"built for {in_channels}), got {channels} (shape {got})")
        return self._checked_params(dtype, params, in_channels)

    def _check_state_array(self, value, batch_size, dtype, argument):
        value = check_float_array(value, argument)
        expected = (batch_size, *self.output_size)
        if value.shape != expected:
            raise ValueError(f"{argument}: expected shape {list(expected)}, got {list(value.shape)}")
        if value.dtype != dtype:
            raise TypeError(f"{argument}: expected dtype {dtype} (the inputs' dtype), "
                            f"got {value.dtype}")
        return value

    def _zeros(self, batch_size, dtype):
        batch_size = check_int(batch_size, "batch_size", minimum=0)
        dtype = check_float_dtype(dtype)
        return np.zeros((batch_size, *self.output_size), dtype=dtype)

    # How a call runs is decided above the cells: refconv.dispatch sets this to its step(),
    # so that the cells never import the fast path (the fast path imports the cells).
    run_step = None

    def __call__(self, x, state, *, reference=False):
        """One step on a batch of frames ``x`` ``[B, ...]``: ``(h, new_state)``.

        ``reference=True`` runs the readable step function; otherwise the fast path
        runs where it covers the cell (:func:`refconv.dispatch.choose`).

        Example:
            >>> import numpy as np, refconv
            >>> cell = refconv.ConvGRUCell([6, 6], filters=3, kernel=[3, 3])
            >>> cell.build(1, seed=0)
            >>> x = np.random.default_rng(1).random((2, 6, 6, 1))    # [B, *shape, C]
            >>> h, state = cell(x, cell.zero_state(2))
            >>> h.shape, bool(np.array_equal(h, state))
            ((2, 6, 6, 3), True)
        """
        return self.run_step(x, state, reference=reference)

    def __repr__(self):
        return (f"{type(self).__name__}(shape={self.shape}, filters={self.filters}, "
                f"kernel={self.kernel}, data_format={self.data_format!r}, "
                f"built={'no' if self.params is None else self.in_channels})")
