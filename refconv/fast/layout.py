"""The chunk plan and the layouts of the fast path: where each pixel of a batch of states lives.

* **Chunks.** A step is done a chunk of output pixels at a time: a few rows of one
  frame, or a few small frames, ``(b0, b1, r0, r1)`` (frames ``b0:b1``, rows
  ``r0:r1`` of the first spatial axis), so that a chunk's patch matrix (about
  ``chunk_bytes``) and its gates stay in cache.
* **Groups.** Chunks whose frames complete their layer-norm statistics together:
  at most about ``group_bytes`` of convolution output (a larger frame is a group alone).
* **Gate-major.** A state array in the runner's layout is chunk after chunk, each
  chunk a contiguous ``[F, nb, m]`` block (``nb`` frames, ``m`` pixels of each), so
  that every line of a step runs on contiguous memory.
* **Padded, channels first.** ``concat([x, h])`` lives in a zero-padded
  ``[B, C + F, *padded]`` buffer: writing x and h into it is the concatenation, and a
  patch row is a long contiguous run of one channel's pixels, which copies fast.

This is the API the forward runners and the backward share.
"""

import math

import numpy as np

from ..conv import conv_padding

__all__ = ["CHUNK_BYTES", "WIDE_CHUNK_BYTES", "GROUP_BYTES", "Layout"]

# A chunk's patch matrix (prod(k) * (C_in + F) rows, all kernel offsets) is about this
# many bytes where the convolution runs as shifted sums (the GRU's thin products: their
# row patches are 1 / k_last of it), and WIDE_CHUNK_BYTES where it is one product (the
# LSTM's 4F rows). Measured, 2 threads, 8 against 32 MiB, the steps of
# benchmarks/bench_step.py: the LSTM's one product ran 0.75-0.9x the time at 32 MiB
# (fewer, longer products and barriers); the GRU's shifted sums 1.0-1.1x, so they keep 8.
CHUNK_BYTES = 8 * 2**20
WIDE_CHUNK_BYTES = 32 * 2**20
# One group of frames (whose layer-norm statistics are completed together) holds
# at most about this many bytes of convolution output; a larger frame is a group alone.
GROUP_BYTES = 64 * 2**20


class Layout:
    """The chunk plan of one cell's step on a batch, and the conversions between layouts.

    Args:
        spatial: ``S``'s spatial size; batch: B; filters: F.
        kernel: the convolution's spatial size; taps: ``prod(kernel) * (C_in + F)``.
        out_channels: channels of the step's (first) convolution output (4F or 2F).
        dtype: float32 or float64; channels_first: the cell's data format.
        chunk_bytes, group_bytes: sizes of a chunk's patches and of a group's outputs.
    """

    def __init__(self, spatial, batch, filters, kernel, taps, out_channels, dtype,
                 channels_first, chunk_bytes=CHUNK_BYTES, group_bytes=GROUP_BYTES):
        self.spatial, self.batch, self.filters = tuple(spatial), batch, filters
        self.kernel, self.dtype = tuple(kernel), np.dtype(dtype)
        self.channels_first = channels_first
        self.pixels = math.prod(self.spatial)
        pads = [conv_padding(n, k) for n, k in zip(self.spatial, self.kernel)]
        self.pads = pads
        self.padded = [n + before + after for n, (before, after) in zip(self.spatial, pads)]
        self.inside = tuple(slice(before, before + n) for n, (before, _) in zip(self.spatial, pads))
        self._plan(taps, out_channels, chunk_bytes, group_bytes)

    def _plan(self, taps, out_channels, chunk_bytes, group_bytes):
        """Split the batch into chunks (a few rows of one frame, or a few whole frames) and groups."""
        s, b = self.spatial, self.batch
        row = math.prod(s[1:])
        pixel_bytes = taps * self.dtype.itemsize
        rows = max(1, chunk_bytes // (row * pixel_bytes))
        if rows >= s[0]:  # small frames: several whole frames per chunk
            per = max(1, chunk_bytes // (self.pixels * pixel_bytes))
            chunks = [(b0, min(b0 + per, b), 0, s[0]) for b0 in range(0, b, per)]
        else:
            # An even number of chunks a frame, their rows differing by at most one: two
            # threads get the same work between barriers (17 chunks of 3, 3, ..., 2 rows left
            # one thread a chunk behind the other). Even, not a multiple of the threads:
            # the plan, and so the bits, must not depend on the thread count.
            count = -(-s[0] // rows)
            count += count % 2
            bounds = [r * s[0] // count for r in range(count + 1)]
            chunks = [(b0, b0 + 1, r0, r1) for b0 in range(b)
                      for r0, r1 in zip(bounds, bounds[1:]) if r1 > r0]
        self.chunks = chunks
        self.offsets, start = {}, 0
        for chunk in chunks:
            n = (chunk[1] - chunk[0]) * (chunk[3] - chunk[2]) * row
            self.offsets[chunk] = (start, n)
            start += self.filters * n
        frame_bytes = self.pixels * out_channels * self.dtype.itemsize
        frames = max(1, group_bytes // frame_bytes)
        self.groups = []
        for chunk in chunks:
            if not self.groups or chunk[0] >= self.groups[-1][0][0] + frames and chunk[2] == 0:
                self.groups.append([])
            self.groups[-1].append(chunk)
        # The most pixels a chunk at each position of a group has: the sizes of the work
        # buffers, one per position, reused by every group.
        # An empty batch (B = 0) has no chunks and no groups: every step is a no-op.
        longest = max((len(group) for group in self.groups), default=0)
        self.sizes = [max(self.offsets[group[i]][1] for group in self.groups if i < len(group))
                      for i in range(longest)]
        self.group_frames = max((group[-1][1] - group[0][0] for group in self.groups), default=0)

    # --- one chunk ------------------------------------------------------------
    def size(self, chunk):
        """``n``: the chunk's pixels, all its frames together."""
        return self.offsets[chunk][1]

    def pixels_of(self, chunk):
        """The chunk's pixel range within one frame (a slice of ``prod(S)``)."""
        row = math.prod(self.spatial[1:])
        return slice(chunk[2] * row, chunk[3] * row)

    def state_view(self, a, chunk, parts=1):
        """The chunk's contiguous ``[parts * F, nb, m]`` block of an array in the runner's layout."""
        start, n = self.offsets[chunk]
        start *= parts
        return a[start:start + parts * self.filters * n].reshape(
            parts * self.filters, chunk[1] - chunk[0], -1)

    def take(self, a, chunk, channels):
        """``[channels, nb, m]`` view of a chunk of a cell-layout ``[B, *S, channels]``
        (or ``[B, channels, *S]``) array."""
        b0, b1 = chunk[:2]
        pixels = self.pixels_of(chunk)
        if self.channels_first:
            return a.reshape(self.batch, channels, self.pixels)[b0:b1, :, pixels].swapaxes(0, 1)
        return a.reshape(self.batch, self.pixels, channels)[b0:b1, pixels].transpose(2, 0, 1)

    def put(self, out, block, chunk, pixels=None):
        """Write ``block`` ``[channels, nb, m]`` into a cell-layout array at the chunk's frames
        and ``pixels`` (default: the chunk's)."""
        b0, b1 = chunk[:2]
        pixels = self.pixels_of(chunk) if pixels is None else pixels
        channels = block.shape[0]
        if self.channels_first:  # [B, F, *S]
            out.reshape(self.batch, channels, self.pixels)[b0:b1, :, pixels] = block.swapaxes(0, 1)
        else:                    # [B, *S, F]
            out.reshape(self.batch, self.pixels, channels)[b0:b1, pixels] = block.transpose(1, 2, 0)

    # --- whole arrays -----------------------------------------------------------
    def to_gate_major(self, a):
        """``[B, *S, F]`` (or ``[B, F, *S]``) -> the runner's layout. Always a copy: the
        runners update their state in place."""
        out = np.empty(self.filters * self.batch * self.pixels, self.dtype)
        for chunk in self.chunks:
            self.state_view(out, chunk)[...] = self.take(a, chunk, self.filters)
        return out

    def from_gate_major(self, a, frame):
        """The runner's layout -> a new ``[B, *frame]`` array (``frame``: the cell's output_size)."""
        out = np.empty((self.batch, *frame), self.dtype)
        for chunk in self.chunks:
            self.put(out, self.state_view(a, chunk), chunk)
        return out

    # --- padded buffers ---------------------------------------------------------
    def padded_buffer(self, channels, zeros=np.zeros):
        """A zero ``[B, channels, *padded]`` buffer, from ``zeros(shape, dtype)``."""
        return zeros((self.batch, channels, *self.padded), self.dtype)

    def frame_view(self, buffer, channels, b0=0, b1=None, r0=0, r1=None):
        """The inside of a padded buffer: ``[nb, channels, nr, *S[1:]]``."""
        first = self.inside[0]
        rows = slice(first.start + r0, first.start + (self.spatial[0] if r1 is None else r1))
        return buffer[(slice(b0, b1), channels, rows, *self.inside[1:])]

    def write_rows(self, buffer, channels, block, chunk):
        """Write a chunk's ``[F, nb, m]`` block into the padded buffer's ``channels``."""
        b0, b1, r0, r1 = chunk
        view = self.frame_view(buffer, channels, b0, b1, r0, r1)
        view[...] = block.reshape(block.shape[0], *view.shape[:1], *view.shape[2:]).swapaxes(0, 1)

    def patches(self, buffer, chunk, scratch):
        """The chunk's transposed im2col matrix ``[K, n]`` from a padded ``[B, C, *padded]`` buffer.

        Row ``(j, c)`` (kernel offset j, channel c, in the kernel's
        ``[*k, C, N]`` order) holds channel c of every output pixel of the chunk,
        shifted by j: one slice of the buffer, copied in runs of a whole image row.
        """
        b0, b1, r0, r1 = chunk
        k, s = self.kernel, self.spatial
        c = buffer.shape[1]
        cols = scratch("cols", (*k, c, b1 - b0, r1 - r0, *s[1:]))
        for j in np.ndindex(*k):
            window = (slice(b0, b1), slice(None), slice(r0 + j[0], r1 + j[0]),
                      *(slice(jj, jj + n) for jj, n in zip(j[1:], s[1:])))
            cols[j] = buffer[window].swapaxes(0, 1)  # [nb, C, ...] -> [C, nb, ...]
        return cols.reshape(math.prod(k) * c, -1)

    def row_patches(self, buffer, chunk, scratch):
        """:meth:`patches` without the last kernel axis: ``[prod(k[:-1]) * C, n']``, the
        columns the chunk's pixels with the last spatial axis at its padded length
        (frames of two or more axes; :class:`refconv.fast.conv_chunk.ChunkConvolution`).

        Row ``(j', c)`` holds channel c shifted by the offset j' of the other kernel
        axes, every padded row whole: consecutive rows of the padded buffer are
        adjacent in memory, so each copy is one long run.
        """
        b0, b1, r0, r1 = chunk
        k, s = self.kernel, self.spatial
        c = buffer.shape[1]
        cols = scratch("row_cols", (*k[:-1], c, b1 - b0, r1 - r0, *s[1:-1], self.padded[-1]))
        for j in np.ndindex(*k[:-1]):
            window = (slice(b0, b1), slice(None), slice(r0 + j[0], r1 + j[0]),
                      *(slice(jj, jj + n) for jj, n in zip(j[1:], s[1:-1])), slice(None))
            cols[j] = buffer[window].swapaxes(0, 1)  # [nb, C, ...] -> [C, nb, ...]
        return cols.reshape(math.prod(k[:-1]) * c, -1)
