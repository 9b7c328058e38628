"""The ConvGRU on the fast path: its forward passes, and beside them its backward passes.

Forward, a step per group of chunks, a barrier after each pass::

    pass 1: y = conv(concat([x, h])); stats of r, u
    pass 2: r, u; r * h into the candidate convolution's input
    pass 3: y = conv(concat([x, r * h])); stats of the candidate
    pass 4: candidate, h = u * h + (1 - u) * candidate

The state ``h`` is kept gate-major between steps.

Backward (:func:`gru_grad`): the forward runs on a :class:`GRURunner` that records,
per step, the input, the previous ``h`` (gate-major), both convolutions' outputs
(in the chunk layout) and the layer norms' statistics; each backward step then
makes five passes over the chunks (without layer norm, C and D are one)::

    A: redo r, u, the candidate from the recorded outputs; r * h_prev into
       concat([x, r * h_prev]); d_u, the direct part of d_h_prev and d_candidate
       through h = u * h_prev + (1 - u) * candidate; frame sums for LN(candidate) (barrier)
    B: finish LN(candidate): d_y_candidate;
       d_candidate/kernel += patches(concat([x, r * h_prev])) @ d_y_candidate^T    (barrier)
    C: d_concat([x, r * h_prev]) = conv(d_y_candidate, its kernel flipped and
       transposed): d_x's first part, d_r, d_h_prev's second part;
       frame sums for LN(r), LN(u)                                                 (barrier)
    D: finish those: d_y_gates; d_gates/kernel += patches(concat([x, h_prev])) @ d_y_gates^T
                                                                                   (barrier)
    E: d_concat([x, h_prev]) = conv(d_y_gates, its kernel flipped and transposed):
       d_x's second part, d_h_prev's third part

A convolution's backward with respect to its input is itself a convolution
(:mod:`refconv.fast.conv_back`). The backward covers the candidate's tanh, layer norm on
or off, either data format, every sequence the same length (:func:`backward_covers`).
"""

import numpy as np

from ..activations import sigmoid, tanh
from ..gru import ConvGRUCell
from ..vocabulary import GRU_BLOCKS, GRU_NORMS
from .conv_back import InputGradient, KernelGradient
from .conv_chunk import ChunkConvolution
from .layout import CHUNK_BYTES, GROUP_BYTES
from .norm_stats import combine_sums, finish_gradient, gradient_sums, normalized_input
from .pool import parallel_map
from .runner import Runner, activate, activate_affine_by_exp, column

__all__ = ["GRURunner", "backward_covers", "gru_grad"]


class GRURunner(Runner):
    """A ConvGRUCell run forward on the fast path. Arguments as
    :class:`refconv.fast.runner.Runner`."""

    kernel_name = "gates/kernel"
    blocks = GRU_BLOCKS
    norms = GRU_NORMS

    def __init__(self, cell, params, batch, dtype, state, **options):
        super().__init__(cell, params, batch, dtype, state, **options)
        self.conv_candidate = ChunkConvolution(params["candidate/kernel"])  # of concat([x, r * h])
        self.bias = None if cell.normalize else column(params["gates/bias"])
        self.bias_candidate = None if cell.normalize else column(params["candidate/bias"])
        # concat([x, r * h]), the candidate's input, padded with zeros
        self.xrh = self.layout.padded_buffer(self.xh.shape[1], self.workspace.zeros)
        self._y_candidate_base, self.y_candidate = self.workspace.empty_each(
            [self.filters * n for n in self.layout.sizes], self.dtype)
        self.records = None  # a list to record each step in, for gru_grad
        self.set_state(state)

    def release(self):
        super().release()
        self.workspace.give(self.xrh, self._y_candidate_base)

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

    def _record(self, x):
        if self.records is not None:  # what the backward (gru_grad) needs
            self.records.append({"x": x, "h_prev": self._recorded(self.h),
                                 "y_gates": self.workspace.empty(2 * self.h.size, self.dtype),
                                 "y_candidate": self.workspace.empty(self.h.size, self.dtype),
                                 "stats": []})

    def _conv_out(self, name, i, chunk):
        """Where chunk ``i``'s convolution ``name`` (``"y_gates"``, ``"y_candidate"``) goes,
        ``[parts * F, n]``: this step's record, when recording (the activations then go to the
        chunk's reused buffer: the record keeps y with no copy), else that buffer."""
        if self.records is None:
            return self.y_of(i, chunk) if name == "y_gates" else self.candidate_of(i, chunk)
        parts = 2 if name == "y_gates" else 1
        return self.layout.state_view(self.records[-1][name], chunk, parts).reshape(
            parts * self.filters, -1)

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
        stats_candidate = self._combine(group, parts) if normalize else None
        if self.records is not None:
            self.records[-1]["stats"].append((stats, stats_candidate))
        self.in_parallel(lambda i, chunk: self._output(i, chunk, stats_candidate), group)

    def _conv_pass(self, i, chunk):
        """Pass 1: y = conv(concat([x, h])) (+ bias); stats of r and u."""
        y = self.conv(self.conv_xh, self.xh, chunk, self._conv_out("y_gates", i, chunk))
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
        y_r, y_u = self.split(self._conv_out("y_gates", i, chunk), chunk, 2)   # r, u or the record
        if stats is not None:
            self._gate(y_r, chunk, stats[0], "r", sigmoid, out=r)
            self._gate(y_u, chunk, stats[1], "u", sigmoid, out=u)
        else:
            activate(sigmoid, y_r, out=r)
            activate(sigmoid, y_u, out=u)
        r *= self.layout.state_view(self.h, chunk)
        self.layout.write_rows(self.xrh, slice(self.in_channels, None), r, chunk)

    def _candidate_conv(self, i, chunk):
        """Pass 3: y = conv(concat([x, r * h])) (+ bias); its stats."""
        y = self.conv(self.conv_candidate, self.xrh, chunk, self._conv_out("y_candidate", i, chunk))
        if self.bias_candidate is not None:
            y += self.bias_candidate[:, :, 0]
        self._export("y_candidate", y, chunk)
        if self.cell.normalize:
            return self._stats(self.split(y, chunk, 1)[0])
        return None

    def _output(self, i, chunk, stats):
        """Pass 4: candidate = tanh(LN(y)); h = u * h + (1 - u) * candidate."""
        candidate = self.split(self.candidate_of(i, chunk), chunk, 1)[0]
        y = self.split(self._conv_out("y_candidate", i, chunk), chunk, 1)[0]  # or the record
        _, u = self.split(self.y_of(i, chunk), chunk, 2)
        if stats is not None:
            self._gate(y, chunk, stats, "candidate", self.cell.activation, out=candidate)
        else:
            activate(self.cell.activation, y, out=candidate)
        h = self.layout.state_view(self.h, chunk)
        h -= candidate               # h = candidate + u * (h - candidate)
        h *= u
        h += candidate
        self._write_h(h, chunk)


# --- the backward ------------------------------------------------------------------

def backward_covers(cell, lengths):
    """Whether :func:`gru_grad` computes this run's gradients."""
    return (isinstance(cell, ConvGRUCell) and lengths is None
            and cell.activation in (tanh, np.tanh))


def gru_grad(cell, params, x_bt, d_out_bt, state, d_state, *, chunk_bytes=CHUNK_BYTES,
             group_bytes=GROUP_BYTES, workspace=None):
    """Gradients of a ConvGRU run, as :func:`refconv.dynamic_rnn_grad` (batch-major views).

    Args:
        x_bt: ``[B, T, *frame]``; d_out_bt: ``[B, T, *S]``; state, d_state: ``[B, *S]``.
        chunk_bytes, group_bytes: the chunk plan's sizes (None: the convolution's own,
            as :class:`refconv.fast.runner.Runner`). The default is 8 MiB whatever the
            convolution: the backward's passes ran 0.85-0.9x the time at 8 MiB against the
            forward's 32 MiB for the LSTM (``benchmarks/bench_gradients.py``).
        workspace: as :func:`refconv.fast.lstm_grad`'s.

    Returns:
        ``(d_inputs [B, T, *frame], d_h0 [B, *S], d_params)``.
    """
    batch, steps = x_bt.shape[:2]
    run = GRURunner(cell, params, batch, x_bt.dtype, state, chunk_bytes=chunk_bytes,
                    group_bytes=group_bytes, workspace=workspace)
    run.records = []
    for t in range(steps):
        run.step(x_bt[:, t])
    back = GRUBackward(run, params)
    d_inputs = np.empty(x_bt.shape, x_bt.dtype)
    d_h = run.layout.to_gate_major(d_state)
    for t in reversed(range(steps)):
        record = run.records.pop()
        back.step(record, d_out_bt[:, t], d_h, d_inputs[:, t])
        if workspace is not None:  # else the record's memory is freed here
            workspace.give(record["h_prev"], record["y_gates"], record["y_candidate"])
    d_h0, d_params = run.layout.from_gate_major(d_h, cell.output_size), back.parameter_gradients()
    if workspace is not None:
        back.release()
        run.release()
        workspace.trim()
    return d_inputs, d_h0, d_params


class GRUBackward:
    """The backward steps of one recorded run: its buffers, and the parameter gradients summed
    over steps. Uses the runner's layout, scratch buffers, layer norms and padded inputs."""

    # The work arrays [F, nb, m] of a chunk, kept from pass to pass; g_r and g_u adjacent,
    # so that together they are d_y_gates ``[2F, n]`` without a copy. Layer norm's v_hat
    # replaces the recorded convolution outputs in the record (:meth:`_v_hats`): no more
    # memory to touch for them, and the record is dropped after the step anyway.
    WORK = ("r", "u", "g_r", "g_u", "g_candidate")

    def __init__(self, run, params):
        self.run, self.cell, self.layout = run, run.cell, run.layout
        f, dtype, layout = run.filters, run.dtype, run.layout
        # d_y lives in padded buffers, padded the other way round (see refconv.fast.lstm),
        # one group's frames at a time, reused by every group and step.
        self.inside = tuple(slice(after, after + size)
                            for size, (_, after) in zip(layout.spatial, layout.pads))
        self.dy = {"gates": run.workspace.zeros((layout.group_frames, 2 * f, *layout.padded),
                                                dtype),
                   "candidate": run.workspace.zeros((layout.group_frames, f, *layout.padded),
                                                    dtype)}
        self.input_gradients = {scope: InputGradient(params[scope + "/kernel"]) for scope in self.dy}
        self.kernel_gradients = {scope: KernelGradient(params[scope + "/kernel"], dtype)
                                 for scope in self.dy}
        self.params = params
        self.sums = {name: np.zeros(value.shape) for name, value in params.items()}
        for scope, blocks in (("gates", 2), ("candidate", 1)):
            self.sums[scope + "/kernel"] = np.zeros((run.taps, blocks * f))
        k = len(self.WORK)
        self._work_base, self.work = run.workspace.empty_each([k * f * size for size in layout.sizes],
                                                              dtype)
        self._group_start = 0

    def release(self):
        """Give the large buffers back to the runner's workspace."""
        self.run.workspace.give(*self.dy.values(), self._work_base)

    def _work(self, i, chunk):
        n, k = self.layout.size(chunk), len(self.WORK)
        return self.work[i][:k * self.run.filters * n].reshape(k, self.run.filters,
                                                               chunk[1] - chunk[0], -1)

    def _accumulate(self, parts):
        """Add the chunks' parameter-gradient parts, in chunk order (the same bits on any thread)."""
        for _, grads in parts:
            for name, value in grads.items():
                self.sums[name] += value

    def _v_hats(self, record, chunk):
        """The chunk's ``v_hat`` of r, u and the candidate (``[F, nb, m]`` each): views of the
        record's convolution outputs, which pass A normalises in place."""
        layout, f = self.layout, self.run.filters
        gates = layout.state_view(record["y_gates"], chunk, 2)
        return (gates[:f], gates[f:], layout.state_view(record["y_candidate"], chunk))

    def _sums(self, d, v_hat, name, grads):
        """Layer norm's frame sums for one gradient; its d_gamma, d_beta parts into ``grads``."""
        scratch = self.run.scratch("bw", d.shape)
        frame_sums, (grads[name + "/gamma"], grads[name + "/beta"]) = gradient_sums(
            d, v_hat, self.run.ln[name][0], scratch)
        return frame_sums

    def _finish(self, g, v_hat, stats, sums, chunk):
        finish_gradient(g, v_hat, stats, sums, chunk, self.run.filters * self.run.pixels,
                        self.run.scratch("finish", g.shape))

    # --- one step -------------------------------------------------------------
    def step(self, record, d_out, d_h, d_x):
        """Backpropagate one recorded step; update d_h (runner layout) in place, fill d_x."""
        run, layout = self.run, self.layout
        x_first = record["x"] if run.channels_first else np.moveaxis(record["x"], -1, 1)
        layout.frame_view(run.xh, slice(0, run.in_channels))[...] = x_first
        layout.frame_view(run.xrh, slice(0, run.in_channels))[...] = x_first
        d_out = np.asarray(d_out)
        for index, group in enumerate(layout.groups):
            self._group_start = group[0][0]
            stats = record["stats"][index] if self.cell.normalize else (None, None)
            items = list(enumerate(group))

            def each(fn, *args):
                return parallel_map(lambda item: fn(*item, record, stats, *args), items)

            parts = each(self._pass_a, d_out, d_h)
            sums = combine_sums(group, parts, 0)
            self._accumulate(parts)
            self._accumulate(each(self._pass_b, sums))
            if self.cell.normalize:
                parts = each(self._pass_c, d_h, d_x)
                sums = [combine_sums(group, parts, k) for k in range(2)]
                self._accumulate(parts)
                self._accumulate(each(self._pass_d, sums))
            else:
                self._accumulate(each(self._pass_c_and_d, d_h, d_x))
            each(self._pass_e, d_h, d_x)

    def _pass_a(self, i, chunk, record, stats, d_out, d_h):
        """Redo r, u, the candidate; backward through h = u * h_prev + (1 - u) * candidate."""
        run, cell, layout = self.run, self.cell, self.layout
        f = run.filters
        w = self._work(i, chunk)
        r, u, g_r, g_u, g_c = w
        v_r, v_u, v_candidate = self._v_hats(record, chunk)   # y, until v_hat
        h_prev = layout.state_view(record["h_prev"], chunk)
        stats_gates, stats_candidate = stats
        # r, u = sigmoid(LN(r)), sigmoid(LN(u)); candidate = tanh(LN(y)): the forward again.
        candidate = g_c   # until its gradient takes its place
        for k, (v, out, name) in enumerate(((v_r, r, "r"), (v_u, u, "u"),
                                            (v_candidate, candidate, "candidate"))):
            fn = sigmoid if name != "candidate" else tanh
            if cell.normalize:
                stats_k = stats_candidate if name == "candidate" else stats_gates[k]
                normalized_input(v, stats_k, chunk, v)          # v_hat, in the record
                activate_affine_by_exp(fn, v, *run.ln[name], out)
            else:
                activate_affine_by_exp(fn, v, 1.0, 0.0, out)
        # concat([x, r * h_prev]) and concat([x, h_prev]), read by passes B and D.
        layout.write_rows(run.xh, slice(run.in_channels, None), h_prev, chunk)
        np.multiply(r, h_prev, out=g_r)
        layout.write_rows(run.xrh, slice(run.in_channels, None), g_r, chunk)
        # h = u * h_prev + (1 - u) * candidate: d_h is the output's gradient plus the next step's.
        d_h_prev = layout.state_view(d_h, chunk)
        d_h_total = run.scratch("d_h", g_u.shape)
        np.add(d_h_prev, layout.take(d_out, chunk, f), out=d_h_total)
        np.subtract(h_prev, candidate, out=g_u)
        g_u *= d_h_total                                   # d_u = d_h * (h_prev - candidate)
        np.multiply(d_h_total, u, out=d_h_prev)            # d_h_prev = d_h * u
        d_h_total -= d_h_prev                              # d_candidate = d_h * (1 - u)
        # candidate = tanh(y)
        np.multiply(candidate, candidate, out=g_c)
        np.subtract(1, g_c, out=g_c)
        g_c *= d_h_total                                   # d_y = d_candidate * (1 - candidate^2)
        if not cell.normalize:
            return None, {}
        grads = {}
        return (self._sums(g_c, v_candidate, "candidate", grads),), grads

    def _pass_b(self, i, chunk, record, stats, sums):
        """Finish LN(candidate): d_y_candidate; d_candidate/kernel's part; d_y into its buffer."""
        run = self.run
        w = self._work(i, chunk)
        g_c = w[4]
        if self.cell.normalize:
            self._finish(g_c, self._v_hats(record, chunk)[2], stats[1], sums, chunk)
        return None, self._conv_grads("candidate", run.xrh, g_c.reshape(run.filters, -1), chunk)

    def _pass_c(self, i, chunk, record, stats, d_h, d_x):
        """d_concat([x, r * h_prev]) = conv(d_y_candidate, flipped kernel): d_x's first part,
        d_r and d_h_prev's second part; through the sigmoids; frame sums for LN(r), LN(u)."""
        run, layout = self.run, self.layout
        c_in = run.in_channels
        w = self._work(i, chunk)
        r, u, g_r, g_u, g_c = w
        vh_r, vh_u, _ = self._v_hats(record, chunk)
        h_prev = layout.state_view(record["h_prev"], chunk)
        d_h_prev = layout.state_view(d_h, chunk)
        d_xh = self._input_gradient("candidate", chunk)
        layout.put(d_x, d_xh[:c_in], chunk)                 # d_x = its candidate part
        d_r_h = d_xh[c_in:]
        np.multiply(d_r_h, h_prev, out=g_r)                 # r * h_prev: d_r
        d_r_h *= r
        d_h_prev += d_r_h                                   # ... and d_h_prev
        # r, u = sigmoid(r), sigmoid(u)
        slope = run.scratch("slope", r.shape)
        for g, gate in ((g_r, r), (g_u, u)):
            np.subtract(1, gate, out=slope)
            slope *= gate
            g *= slope
        if not self.cell.normalize:
            return None, {}
        grads = {}
        return (self._sums(g_r, vh_r, "r", grads), self._sums(g_u, vh_u, "u", grads)), grads

    def _pass_d(self, i, chunk, record, stats, sums):
        """Finish LN(r), LN(u): d_y_gates; d_gates/kernel's part; d_y into its buffer."""
        run = self.run
        w = self._work(i, chunk)
        if self.cell.normalize:
            for k, (g, v_hat) in enumerate(zip(w[2:4], self._v_hats(record, chunk))):
                self._finish(g, v_hat, stats[0][k], sums[k], chunk)
        return None, self._conv_grads("gates", run.xh, w[2:4].reshape(2 * run.filters, -1), chunk)

    def _pass_c_and_d(self, i, chunk, record, stats, d_h, d_x):
        """Passes C and D at once, when there is no layer norm to wait for."""
        self._pass_c(i, chunk, record, stats, d_h, d_x)
        return self._pass_d(i, chunk, record, stats, None)

    def _pass_e(self, i, chunk, record, stats, d_h, d_x):
        """d_concat([x, h_prev]) = conv(d_y_gates, flipped kernel): d_x's and d_h_prev's last parts."""
        layout, c_in = self.layout, self.run.in_channels
        d_h_prev = layout.state_view(d_h, chunk)
        d_xh = self._input_gradient("gates", chunk)
        layout.take(d_x, chunk, c_in)[...] += d_xh[:c_in]
        d_h_prev += d_xh[c_in:]

    # --- the convolutions' backward ----------------------------------------------
    def _conv_grads(self, scope, xh, d_y, chunk):
        """``d_y`` ``[N, n]`` of one convolution: its kernel's (and bias's) part, and
        ``d_y`` written into the padded buffer the transposed convolution reads."""
        run = self.run
        grads = {scope + "/kernel": self.kernel_gradients[scope](run.layout, xh, d_y, chunk,
                                                                 run.scratch)}
        if not self.cell.normalize:
            grads[scope + "/bias"] = d_y.sum(axis=1)
        b0, b1, r0, r1 = chunk
        rows = slice(self.inside[0].start + r0, self.inside[0].start + r1)
        g0 = self._group_start
        view = self.dy[scope][(slice(b0 - g0, b1 - g0), slice(None), rows, *self.inside[1:])]
        view[...] = d_y.reshape(d_y.shape[0], b1 - b0, *view.shape[2:]).swapaxes(0, 1)
        return grads

    def _input_gradient(self, scope, chunk):
        """``d_concat([x, ...])`` ``[C + F, nb, m]`` of a chunk: the convolution of
        ``scope``'s backward with respect to its input (:mod:`refconv.fast.conv_back`)."""
        b0, b1, r0, r1 = chunk
        g0 = self._group_start  # the d_y buffer holds this group's frames only
        return self.input_gradients[scope](self.layout, self.dy[scope],
                                           (b0 - g0, b1 - g0, r0, r1), self.run.scratch)

    def parameter_gradients(self):
        """The summed gradients, shaped and named as the cell's parameters."""
        return {name: self.sums[name].reshape(value.shape).astype(value.dtype)
                for name, value in self.params.items()}
