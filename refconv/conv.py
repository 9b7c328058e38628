"""N-D cross-correlation, the one operation every gate of a ConvLSTM is made of.

Two implementations of the same function, kept side by side and tested
against each other and against ``scipy.signal.correlate``:

* :func:`conv_nd_naive`: the obvious one. For every kernel offset, take the
  shifted (and strided, dilated) slice of the padded input and multiply its
  channels by that offset's ``[C_in, C_out]`` matrix; sum over offsets.
  Read this one to learn what a convolution layer computes.
* :func:`conv_nd`: the fast one. It builds the im2col matrix of patches block by
  block (a few MB at a time) and does one matrix product per block, so the
  BLAS library does the arithmetic while the patches stay in cache.

Conventions (TensorFlow's, as in ``tf.nn.convolution``):

* no kernel flip (cross-correlation);
* kernel layout ``[*kernel_size, C_in, C_out]``;
* ``x`` is ``[B, *spatial, C_in]`` (``channels_last``) or ``[B, C_in, *spatial]``
  (``channels_first``);
* ``SAME`` padding: output size ``ceil(n / s)``; total padding
  ``max((out - 1) * s + (k - 1) * d + 1 - n, 0)``, ``total // 2`` before, the
  rest after (an even kernel pads one more zero after than before);
* ``VALID``: no padding, output size ``floor((n - (k - 1) * d - 1) / s) + 1``.
"""

import math

import numpy as np

from .checks import check_data_format, check_float_array, check_padding, check_per_axis

__all__ = ["conv_nd", "conv_nd_naive", "conv_nd_backward", "conv_nd_backward_naive",
           "conv_output_size", "conv_padding"]

# Patches are built this many bytes at a time: big enough that one matrix
# product per block runs near BLAS speed, small enough to stay in L2/L3 cache.
BLOCK_BYTES = 6 * 2**20


def conv_output_size(n, k, stride=1, dilation=1, padding="SAME"):
    """Output length of one spatial axis of length ``n`` (TensorFlow's rule)."""
    padding = check_padding(padding)
    if padding == "SAME":
        return -(-n // stride)  # ceil(n / stride)
    return (n - (k - 1) * dilation - 1) // stride + 1


def conv_padding(n, k, stride=1, dilation=1, padding="SAME"):
    """Zeros added ``(before, after)`` one spatial axis of length ``n``.

    ``SAME`` splits the total as TensorFlow does: ``total // 2`` before and the
    rest after, so an even kernel (or a stride that does not divide ``n``)
    pads one more zero after than before.
    """
    padding = check_padding(padding)
    if padding == "VALID":
        return (0, 0)
    out = conv_output_size(n, k, stride, dilation, "SAME")
    total = max((out - 1) * stride + (k - 1) * dilation + 1 - n, 0)
    return (total // 2, total - total // 2)


def conv_nd_naive(x, kernel, strides=1, padding="SAME", dilations=1,
                  data_format="channels_last"):
    """N-D cross-correlation by a loop over kernel offsets (the obvious way).

    Equations::

        xp = pad(x)                                     # SAME or VALID
        y[b, o, :] = sum_j  xp[b, o * s + j * d, :] @ kernel[j, :, :]

    where ``o`` runs over output positions and ``j`` over kernel offsets (both
    N-D indices), ``s`` is the stride and ``d`` the dilation.

    Args:
        x: ``[B, *spatial, C_in]`` (channels_last) or ``[B, C_in, *spatial]``.
        kernel: ``[*kernel_size, C_in, C_out]``.
        strides, dilations: an int or N ints.
        padding: ``"SAME"`` or ``"VALID"`` (any case).
        data_format: ``"channels_last"`` or ``"channels_first"``.

    Returns:
        ``[B, *out_spatial, C_out]`` or ``[B, C_out, *out_spatial]``.
    """
    x, kernel, strides, dilations, padding, channels_first = _check_conv_args(
        x, kernel, strides, dilations, padding, data_format)
    if channels_first:
        x = np.moveaxis(x, 1, -1)
    xp, out_shape = _pad(x, kernel.shape[:-2], strides, dilations, padding)
    c_out = kernel.shape[-1]
    y = np.zeros((x.shape[0], *out_shape, c_out), dtype=np.result_type(x, kernel))
    for j in np.ndindex(*kernel.shape[:-2]):
        # The input pixels that kernel offset j meets, one per output pixel.
        window = tuple(slice(jj * d, jj * d + (o - 1) * s + 1, s)
                       for jj, d, o, s in zip(j, dilations, out_shape, strides))
        y += xp[(slice(None), *window)] @ kernel[j]
    if channels_first:
        y = np.moveaxis(y, -1, 1)
    return y


def conv_nd(x, kernel, strides=1, padding="SAME", dilations=1,
            data_format="channels_last", *, block_bytes=BLOCK_BYTES):
    """N-D cross-correlation, fast: block-wise im2col and one matrix product per block.

    Same arguments, result and conventions as :func:`conv_nd_naive` (which
    see); the two agree to rounding.

    The patch matrix of a whole input (``B * prod(out) x prod(k) * C_in``) would
    be ``prod(k)`` times larger than the input. Built a block of output rows at
    a time it stays in cache, and each block's matrix product writes straight
    into its slice of the output (``block_bytes``: about the size of one block's patches).
    """
    x, kernel, strides, dilations, padding, channels_first = _check_conv_args(
        x, kernel, strides, dilations, padding, data_format)
    if channels_first:
        x = np.moveaxis(x, 1, -1)
    k_shape = kernel.shape[:-2]
    c_in, c_out = kernel.shape[-2:]
    xp, out_shape = _pad(x, k_shape, strides, dilations, padding)
    dtype = np.result_type(x, kernel)
    taps = math.prod(k_shape) * c_in
    w = kernel.reshape(taps, c_out).astype(dtype, copy=False)
    y = np.empty((x.shape[0], *out_shape, c_out), dtype=dtype)

    for out_index, block, _ in _im2col_blocks(xp, out_shape, k_shape, strides, dilations, dtype,
                                              block_bytes):
        np.matmul(block.reshape(-1, taps), w, out=y[out_index].reshape(-1, c_out))
    if channels_first:
        y = np.moveaxis(y, -1, 1)
    return y


def conv_nd_backward_naive(x, kernel, d_y, strides=1, padding="SAME", dilations=1,
                           data_format="channels_last"):
    """Gradients of ``sum(conv_nd(x, kernel, ...) * d_y)`` by a loop over kernel offsets.

    The forward adds, for every offset ``j``, ``xp[window_j] @ kernel[j]``. Its
    backward, offset by offset::

        d_kernel[j]     = sum over b, o of  xp[b, o * s + j * d, :]^T  d_y[b, o, :]
        d_xp[window_j] += d_y @ kernel[j]^T
        d_x             = d_xp without its padding

    Args:
        x, kernel, strides, padding, dilations, data_format: as :func:`conv_nd_naive`.
        d_y: shaped like the convolution's output.

    Returns:
        ``(d_x, d_kernel)``, shaped like ``x`` and ``kernel``.
    """
    x, kernel, strides, dilations, padding, channels_first = _check_conv_args(
        x, kernel, strides, dilations, padding, data_format)
    if channels_first:
        x, d_y = np.moveaxis(x, 1, -1), np.moveaxis(np.asarray(d_y), 1, -1)
    xp, out_shape = _pad(x, kernel.shape[:-2], strides, dilations, padding)
    d_y = _check_d_y(d_y, (x.shape[0], *out_shape, kernel.shape[-1]), channels_first)
    dtype = np.result_type(x, kernel, d_y)
    d_xp = np.zeros(xp.shape, dtype=dtype)
    d_kernel = np.zeros(kernel.shape, dtype=dtype)
    batch_and_out = tuple(range(d_y.ndim - 1))
    for j in np.ndindex(*kernel.shape[:-2]):
        window = (slice(None), *(slice(jj * d, jj * d + (o - 1) * s + 1, s)
                                 for jj, d, o, s in zip(j, dilations, out_shape, strides)))
        d_kernel[j] = np.tensordot(xp[window], d_y, axes=(batch_and_out, batch_and_out))
        d_xp[window] += d_y @ kernel[j].T
    d_x = _unpad(d_xp, x.shape, kernel.shape[:-2], strides, dilations, padding)
    if channels_first:
        d_x = np.moveaxis(d_x, -1, 1)
    return d_x, d_kernel


def conv_nd_backward(x, kernel, d_y, strides=1, padding="SAME", dilations=1,
                     data_format="channels_last", *, block_bytes=BLOCK_BYTES):
    """Gradients of ``sum(conv_nd(x, kernel, ...) * d_y)``, block by block as the forward.

    Per block of output rows, with ``cols`` the block's im2col patches (rebuilt,
    not stored: they are ``prod(kernel)`` times the input)::

        d_kernel += cols^T @ d_y_block
        d_cols    = d_y_block @ kernel^T      then scattered back onto d_xp (col2im)

    Same arguments and result as :func:`conv_nd_backward_naive`; ``block_bytes`` as
    :func:`conv_nd`.
    """
    x, kernel, strides, dilations, padding, channels_first = _check_conv_args(
        x, kernel, strides, dilations, padding, data_format)
    if channels_first:
        x, d_y = np.moveaxis(x, 1, -1), np.moveaxis(np.asarray(d_y), 1, -1)
    k_shape = kernel.shape[:-2]
    c_in, c_out = kernel.shape[-2:]
    xp, out_shape = _pad(x, k_shape, strides, dilations, padding)
    d_y = _check_d_y(d_y, (x.shape[0], *out_shape, c_out), channels_first)
    dtype = np.result_type(x, kernel, d_y)
    taps = math.prod(k_shape) * c_in
    w = kernel.reshape(taps, c_out).astype(dtype, copy=False)
    d_w = np.zeros((taps, c_out), dtype=dtype)
    d_xp = np.zeros(xp.shape, dtype=dtype)

    for out_index, block, windows in _im2col_blocks(xp, out_shape, k_shape, strides,
                                                    dilations, dtype, block_bytes):
        d_y_block = np.ascontiguousarray(d_y[out_index]).reshape(-1, c_out)
        d_w += block.reshape(-1, taps).T @ d_y_block
        np.matmul(d_y_block, w.T, out=block.reshape(-1, taps))  # the block now holds d_cols
        for j, window in windows:
            d_xp[window] += block[(Ellipsis, *j, slice(None))]
    d_x = _unpad(d_xp, x.shape, kernel.shape[:-2], strides, dilations, padding)
    if channels_first:
        d_x = np.moveaxis(d_x, -1, 1)
    return d_x, d_w.reshape(kernel.shape)


def _im2col_blocks(xp, out_shape, k_shape, strides, dilations, dtype, block_bytes):
    """Yield the im2col patches of a padded channels_last ``xp``, a block of output rows at a time.

    A block is ``n_b`` whole samples, or ``n_r`` output rows of one sample,
    whichever keeps it near ``block_bytes``. Yields ``(out_index, block,
    windows)``: ``out_index`` selects the block's outputs (``y[out_index]``),
    ``block`` is ``[n_b, n_r, *out_rest, *kernel, C_in]`` (reused: copy what you
    keep), and ``windows`` pairs each kernel offset ``j`` with the slice of
    ``xp`` it read.
    """
    batch, c_in = xp.shape[0], xp.shape[-1]
    rows, rest = out_shape[0], out_shape[1:]
    row_bytes = max(math.prod(rest) * math.prod(k_shape) * c_in * dtype.itemsize, 1)
    n_r = max(1, min(rows, block_bytes // row_bytes))
    n_b = max(1, block_bytes // (row_bytes * rows)) if n_r == rows else 1
    cols = np.empty((min(n_b, batch), n_r, *rest, *k_shape, c_in), dtype=dtype)
    for b0 in range(0, batch, n_b):
        nb = min(n_b, batch - b0)
        for r0 in range(0, rows, n_r):
            nr = min(n_r, rows - r0)
            block = cols[:nb, :nr]
            windows = []
            for j in np.ndindex(*k_shape):
                first = slice(r0 * strides[0] + j[0] * dilations[0],
                              (r0 + nr - 1) * strides[0] + j[0] * dilations[0] + 1, strides[0])
                others = tuple(slice(jj * d, jj * d + (o - 1) * s + 1, s)
                               for jj, d, o, s in zip(j[1:], dilations[1:], rest, strides[1:]))
                window = (slice(b0, b0 + nb), first, *others)
                block[(Ellipsis, *j, slice(None))] = xp[window]
                windows.append((j, window))
            yield (slice(b0, b0 + nb), slice(r0, r0 + nr)), block, windows


def _check_d_y(d_y, expected, channels_first):
    d_y = np.asarray(d_y)
    if d_y.dtype.kind not in "fiu":
        raise TypeError(f"d_y: expected a real numeric array, got dtype {d_y.dtype}")
    if d_y.shape != expected:
        shown = (expected[0], expected[-1], *expected[1:-1]) if channels_first else expected
        got = (d_y.shape[0], d_y.shape[-1], *d_y.shape[1:-1]) if channels_first else d_y.shape
        raise ValueError(f"d_y: expected the output's shape {list(shown)}, got {list(got)}")
    return d_y


def _unpad(xp, shape, k_shape, strides, dilations, padding):
    """The part of a padded channels_last array ``xp`` that the unpadded ``shape`` came from."""
    before = [conv_padding(n, k, s, d, padding)[0]
              for n, k, s, d in zip(shape[1:-1], k_shape, strides, dilations)]
    return xp[(slice(None), *(slice(b, b + n) for b, n in zip(before, shape[1:-1])), slice(None))]


def _pad(x, k_shape, strides, dilations, padding):
    """Zero-pad the spatial axes of a channels_last ``x``; also return the output size."""
    pads = [conv_padding(n, k, s, d, padding)
            for n, k, s, d in zip(x.shape[1:-1], k_shape, strides, dilations)]
    out_shape = tuple(conv_output_size(n, k, s, d, padding)
                      for n, k, s, d in zip(x.shape[1:-1], k_shape, strides, dilations))
    if any(pads_axis != (0, 0) for pads_axis in pads):
        x = np.pad(x, [(0, 0), *pads, (0, 0)])
    return x, out_shape


def _check_conv_args(x, kernel, strides, dilations, padding, data_format):
    # The cells' dtype rule: float32 or float64 only (float16 overflows to inf, integers
    # would silently compute in float64 or wrap).
    x = check_float_array(x, "x")
    kernel = check_float_array(kernel, "kernel")
    check_data_format(data_format)
    channels_first = data_format == "channels_first"
    c_in = (x.shape[1] if channels_first else x.shape[-1]) if x.ndim >= 3 else None
    # [*k, C_in] for [*k, C_in, C_out]: the kernel lacks an axis, x is right
    no_c_out = kernel.ndim == x.ndim - 1 and kernel.shape[-1] == c_in
    if kernel.ndim < 3 or no_c_out:
        also = " (or has x an axis too many?)" if kernel.ndim >= 2 and \
            kernel.shape[-2] == c_in else ""
        raise ValueError(f"kernel: expected shape [*kernel_size, C_in, C_out] (rank "
                         f"{max(x.ndim, 3)} for x of shape {x.shape}), got shape {kernel.shape}"
                         + (f"; its last axis is x's {c_in} input channels: its C_out axis is "
                            f"missing{also}" if no_c_out else ""))
    n = kernel.ndim - 2
    if x.ndim != n + 2:
        raise ValueError(f"x: expected rank {n + 2} ([B, {n} spatial axes, C]) for a kernel "
                         f"with {n} spatial axes, got shape {x.shape}")
    if c_in != kernel.shape[-2]:
        other = x.shape[-1] if channels_first else x.shape[1]
        hint = (f"; axis {-1 if channels_first else 1} has {other}: is x "
                f"{'channels_last' if channels_first else 'channels_first'}? pass data_format="
                f"\"{'channels_last' if channels_first else 'channels_first'}\""
                if other == kernel.shape[-2] else "")
        raise ValueError(f"x: expected {kernel.shape[-2]} input channels (kernel shape "
                         f"{kernel.shape}), got {c_in} (x shape {x.shape}, {data_format}){hint}")
    if min(kernel.shape) < 1:
        raise ValueError(f"kernel: expected every size >= 1, got shape {kernel.shape}")
    strides = check_per_axis(strides, n, "strides")
    dilations = check_per_axis(dilations, n, "dilations")
    padding = check_padding(padding)
    spatial = x.shape[2:] if channels_first else x.shape[1:-1]
    if padding == "VALID":
        for axis, (size, k, d) in enumerate(zip(spatial, kernel.shape[:-2], dilations)):
            if (k - 1) * d + 1 > size:
                raise ValueError(
                    f"x: spatial axis {axis} has size {size}, smaller than the dilated kernel "
                    f"({(k - 1) * d + 1}); VALID padding would leave no output")
    return x, kernel, strides, dilations, padding, channels_first
