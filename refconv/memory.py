"""Memory before work: what a call will hold, checked against what is free, before allocating.

NumPy allocates lazily: an output array that fits in RAM but not in what is free
is handed out, and the process then grows page by page until the kernel kills it,
after minutes of swapping. The time loops and their gradients (and ``compare``)
therefore estimate the bytes a call will hold and raise ``MemoryError`` at once,
with the estimate, ``MemAvailable`` and the way out.
"""

import math

__all__ = ["available_memory", "require", "run_bytes"]


def available_memory():
    """``MemAvailable`` from ``/proc/meminfo`` in bytes, or None where there is none."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


def require(needed, what, way_out):
    """Raise ``MemoryError`` when ``needed`` bytes exceed what is available now.

    Args:
        needed: the estimate, in bytes.
        what: the call, for the message (``"dynamic_rnn"``).
        way_out: what the caller can do instead, one sentence.
    """
    available = available_memory()
    if available is not None and needed > available:
        raise MemoryError(f"{what}: needs about {needed / 2**30:.2f} GiB (estimated before "
                          f"allocating), and {available / 2**30:.2f} GiB are available "
                          f"(MemAvailable in /proc/meminfo); {way_out}")


WAY_OUT = ("use refconv.stream_rnn (memory for one step, whatever T), fewer time steps or a "
           "smaller batch, or return_gates=False")


def run_bytes(cell, batch, steps, itemsize, *, return_gates=False, all_layers=False,
              gradients=False):
    """The bytes one direction of a time loop holds beyond its inputs.

    Counted per state frame (``B * prod(S) * itemsize`` per channel) and layer:

    * outputs ``T * F`` (every layer's with ``all_layers``, else the top's);
    * with ``return_gates``, each quantity of ``cell.quantities`` ``T * F``;
    * with ``gradients``, the forward's record of each step (the state it started
      from and the convolution outputs: LSTM ``c, h, y`` = 6F, GRU ``h, y`` = 4F),
      the inputs' gradient, the parameters' gradients;
    * a step's working set: about 24 state-sized arrays, the readable
      convolution's patch matrix (``prod(kernel) * (C_in + F)`` channels) and its
      zero-padded input (each axis ``n + (k - 1) * dilation``).

    Args:
        cell: a ConvLSTMCell, ConvGRUCell or MultiRNNCell (``in_channels`` known or not).
        batch: B; steps: T; itemsize: bytes of the dtype.
    """
    layers = getattr(cell, "cells", [cell])
    total, in_channels = 0, None
    for i, layer in enumerate(layers):
        frame = batch * math.prod(layer.state_shape) * itemsize
        f = layer.filters
        if all_layers or i == len(layers) - 1:
            total += steps * f * frame
        if return_gates:
            total += len(layer.quantities) * steps * f * frame
        if gradients:
            kept = 6 if hasattr(layer, "peephole") else 4  # LSTM: c, h, 4F y; GRU: h, 3F y
            total += steps * kept * f * frame
        channels = (in_channels or layer.in_channels or 1) + f
        total += (24 * f + math.prod(layer.kernel) * channels) * frame
        # The padded input of a step's convolution: a dilated kernel pads by (k - 1) * d.
        dilation = getattr(layer, "dilation_rate", [1] * len(layer.shape))
        padded = math.prod(n + (k - 1) * d for n, k, d in zip(layer.shape, layer.kernel,
                                                              dilation))
        total += batch * padded * channels * itemsize
        in_channels = f
    return total
