"""The fast path: a whole ConvLSTM or ConvGRU step in cache-sized chunks, on every core.

:mod:`refconv.lstm` and :mod:`refconv.gru` are written to be read: one equation
per line, each over the whole frame. This package computes the same numbers (the
tests hold the two to 1e-12 in float64) several times faster, for five reasons:

1. **Chunks** (:mod:`.layout`). A step is done a chunk of output pixels at a time,
   each chunk's patches built in a buffer that stays in cache, and every
   elementwise line applied to the chunk while it is still in cache.
2. **Gate-major.** The convolution is computed as ``kernel^T @ patches^T``, so a
   chunk's convolution output is ``[gates * F, n]``: each gate of each channel is
   a contiguous run of pixels, and every elementwise line a long contiguous loop.
3. **Every core** (:mod:`.pool`). NumPy releases the GIL in copies, matrix
   products and ufunc loops, so chunks run on a small thread pool.
4. **Cheap sigmoid.** ``sigmoid(v) = 1 / (1 + exp(-v))`` in place, the sign folded
   into layer norm's scale: NumPy's ``exp`` costs half its ``tanh``.
5. **No thin products** (:mod:`.conv_chunk`). A convolution with few output
   channels (the GRU's) moves its last kernel axis into the product's rows and
   adds shifted slices: BLAS runs a thin product at half its rate.

Layer norm's statistics are over a whole frame, so a step makes several passes
over its chunks with a barrier after each (:mod:`.norm_stats`). The passes are in
:mod:`.lstm` and :mod:`.gru` (each forward and backward; the backward's input
gradient of a convolution in :mod:`.conv_back`); :mod:`.run` says which cells are
covered and loops over time.

The fast path depends on the cells (their options); the cells never import it.
:mod:`refconv.dispatch` decides, by one rule, when it runs.
"""

from .layout import CHUNK_BYTES, GROUP_BYTES, WIDE_CHUNK_BYTES, Layout
from .gru import GRURunner, gru_grad
from .lstm import LSTMRunner, lstm_grad
from .pool import threads
from .run import (StackRunner, grad, record_forward, run_sequence, runner, supports,
                  supports_backward)
from .workspace import Workspace

__all__ = ["supports", "supports_backward", "runner", "run_sequence", "record_forward",
           "grad", "lstm_grad", "gru_grad", "LSTMRunner", "GRURunner", "StackRunner", "Layout", "threads",
           "Workspace", "CHUNK_BYTES", "WIDE_CHUNK_BYTES", "GROUP_BYTES"]
