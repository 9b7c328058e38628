"""The ConvGRU on the fast path: its forward passes (its backward is the readable one).

A step per group of chunks, a barrier after each pass::

    pass 1: y = conv(concat([x, h])); stats of r, u
    pass 2: r, u; r * h into the candidate convolution's input
    pass 3: y = conv(concat([x, r * h])); stats of the candidate
    pass 4: candidate, h = u * h + (1 - u) * candidate

The state ``h`` is kept gate-major between steps.
"""

import numpy as np

from ..activations import sigmoid
from ..vocabulary import GRU_BLOCKS, GRU_NORMS
from .runner import Runner, activate, column, gate_major

__all__ = ["GRURunner"]


class GRURunner(Runner):
    """A ConvGRUCell run forward on the fast path. Arguments as
    :class:`refconv.fast.runner.Runner`."""

    kernel_name = "gates/kernel"
    blocks = GRU_BLOCKS
    norms = GRU_NORMS

    def __init__(self, cell, params, batch, dtype, state, **sizes):
        super().__init__(cell, params, batch, dtype, state, **sizes)
        self.w_candidate = gate_major(params["candidate/kernel"], self.taps)
        self.bias = None if cell.normalize else column(params["gates/bias"])
        self.bias_candidate = None if cell.normalize else column(params["candidate/bias"])
        self.xrh = np.zeros_like(self.xh)  # concat([x, r * h]), the candidate's input
        self.y_candidate = [np.empty(self.filters * n, self.dtype) for n in self.layout.sizes]
        self.set_state(state)

    def set_state(self, h):
        """Start from ``h`` (the cell's data format)."""
        self.h = self.layout.to_gate_major(h)
        self._start(h)

    def state(self):
        """The current state ``h``, in the cell's data format (a new array)."""
        return self._thaw(self._h_out.copy())

    def _write_x(self, x_first):
        super()._write_x(x_first)
        self.layout.frame_view(self.xrh, slice(0, self.in_channels))[...] = x_first

    def candidate_of(self, i, chunk):
        """Chunk ``i``'s candidate convolution output ``[F, n]``."""
        return self.output(self.y_candidate, i, chunk, self.filters)

    def _group(self, group):
        normalize = self.cell.normalize
        if normalize:
            parts = self.in_parallel(self._conv_pass, group)
            stats = [self._combine(group, [p[g] for p in parts]) for g in range(2)]
        else:
            self.in_parallel(self._conv_pass, group)
            stats = None
        self.in_parallel(lambda i, chunk: self._reset(i, chunk, stats), group)
        parts = self.in_parallel(self._candidate_conv, group)
        stats = self._combine(group, parts) if normalize else None
        self.in_parallel(lambda i, chunk: self._output(i, chunk, stats), group)

    def _conv_pass(self, i, chunk):
        """Pass 1: y = conv(concat([x, h])) (+ bias); stats of r and u."""
        y = self.conv(self.w, self.xh, chunk, self.y_of(i, chunk))
        if self.bias is not None:
            y += self.bias[:, :, 0]
        self._export("y_gates", y, chunk)
        r, u = self.split(y, chunk, 2)
        if self.cell.normalize:
            return self._stats(r), self._stats(u)
        return None

    def _reset(self, i, chunk, stats):
        """Pass 2: r, u = sigmoid(LN(r)), sigmoid(LN(u)); r * h into the candidate's input."""
        r, u = self.split(self.y_of(i, chunk), chunk, 2)
        if stats is not None:
            self._gate(r, chunk, stats[0], "r", sigmoid)
            self._gate(u, chunk, stats[1], "u", sigmoid)
        else:
            activate(sigmoid, r)
            activate(sigmoid, u)
        r *= self.layout.state_view(self.h, chunk)
        self.layout.write_rows(self.xrh, slice(self.in_channels, None), r, chunk)

    def _candidate_conv(self, i, chunk):
        """Pass 3: y = conv(concat([x, r * h])) (+ bias); its stats."""
        y = self.conv(self.w_candidate, self.xrh, chunk, self.candidate_of(i, chunk))
        if self.bias_candidate is not None:
            y += self.bias_candidate[:, :, 0]
        self._export("y_candidate", y, chunk)
        if self.cell.normalize:
            return self._stats(self.split(y, chunk, 1)[0])
        return None

    def _output(self, i, chunk, stats):
        """Pass 4: candidate = tanh(LN(y)); h = u * h + (1 - u) * candidate."""
        candidate = self.split(self.candidate_of(i, chunk), chunk, 1)[0]
        _, u = self.split(self.y_of(i, chunk), chunk, 2)
        if stats is not None:
            self._gate(candidate, chunk, stats, "candidate", self.cell.activation)
        else:
            activate(self.cell.activation, candidate)
        h = self.layout.state_view(self.h, chunk)
        h -= candidate               # h = candidate + u * (h - candidate)
        h *= u
        h += candidate
        self._write_h(h, chunk)
