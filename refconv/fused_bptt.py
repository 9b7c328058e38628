"""Backpropagation through time for the ConvLSTM on the fast path: chunked, gate-major, threaded.

:func:`refconv.lstm_step_backward` undoes :func:`refconv.lstm_step` line by line over
whole frames; this module computes the same gradients (the tests hold the two to
1e-12 in float64) the way :mod:`refconv.fused` computes the forward: chunk by chunk,
each gate a contiguous run of pixels, on a thread pool. The forward runs on a
:class:`refconv.fused.Runner` that records, per step, the input, the previous
state and the convolution's output ``y`` (in the runner's chunk layout) and the
layer norms' statistics; each backward step then makes four passes over the chunks:

    A: redo the step's gates from y; d_z_o and d_c through h = z_o * tanh(c);
       layer norm's frame sums for z_o and c                              (barrier)
    B: finish those layer norms; d_z_f, d_z_i, d_z through
       c = c_prev * z_f + z_i * z; frame sums for z, z_i, z_f              (barrier)
    C: finish those; d_y, d_c_prev; d_kernel += patches(concat([x, h])) @ d_y^T (barrier)
    D: d_concat([x, h]) = conv(d_y, the kernel flipped and transposed)

Layer norm's backward, per frame, with ``g = d_out * gamma`` and ``v_hat`` the
normalised input (as in :func:`refconv.layer_norm_backward`)::

    d_v = (g - mean(g) - v_hat * mean(g * v_hat)) / std

The convolution's backward with respect to its input is itself a convolution:
of ``d_y``, padded the other way round (``after`` zeros before, ``before`` after),
with the kernel flipped along every spatial axis and its two channel axes swapped.

Covered: the seed's activations (tanh and sigmoid), peepholes and layer norm on or
off, either data format, every sequence the same length. Anything else goes
through the readable backward (:mod:`refconv.bptt` chooses).
"""

import numpy as np

from .activations import sigmoid, tanh
from .conv import conv_padding
from .fused import Runner, _map
from .lstm import ConvLSTMCell, LSTMStateTuple

__all__ = ["supports", "lstm_grad"]


def supports(cell, lengths):
    """Whether :func:`lstm_grad` computes this run's gradients."""
    return (isinstance(cell, ConvLSTMCell) and cell._default_input_conv and lengths is None
            and cell.activation in (tanh, np.tanh) and cell.recurrent_activation is sigmoid)


def lstm_grad(cell, params, x_bt, d_out_bt, state, d_state):
    """Gradients of a ConvLSTM run, as :func:`refconv.dynamic_rnn_grad` (batch-major views).

    Args:
        x_bt: ``[B, T, *frame]``; d_out_bt: ``[B, T, *S]``; state, d_state: LSTMStateTuples.

    Returns:
        ``(d_inputs [B, T, *frame], LSTMStateTuple(d_c0, d_h0), d_params)``.
    """
    batch, steps = x_bt.shape[:2]
    run = Runner(cell, params, batch, x_bt.dtype, state)
    run.records = []
    for t in range(steps):
        run.step(x_bt[:, t])
    back = _Backward(run, params)
    d_inputs = np.empty(x_bt.shape, x_bt.dtype)
    d_c = run._to_gate_major(d_state.c)
    d_h = run._to_gate_major(d_state.h)
    for t in reversed(range(steps)):
        record = run.records.pop()
        back.step(record, d_out_bt[:, t], d_c, d_h, d_inputs[:, t])
    d_initial = LSTMStateTuple(run._from_gate_major(d_c), run._from_gate_major(d_h))
    return d_inputs, d_initial, back.parameter_gradients()


class _Backward:
    """The backward steps of one run: its buffers, and the parameter gradients summed over steps."""

    def __init__(self, run, params):
        self.run, self.cell = run, run.cell
        f, dtype = run.filters, run.dtype
        kernel = params["kernel"]
        k = run.kernel
        n = len(k)
        # d_y lives in a padded buffer, padded the other way round (see the module notes).
        pads = [conv_padding(size, kk) for size, kk in zip(run.spatial, k)]
        padded = [size + a + b for size, (a, b) in zip(run.spatial, pads)]
        self.inside = tuple(slice(after, after + size)
                            for size, (_, after) in zip(run.spatial, pads))
        # One group's frames at a time (a frame, for large ones): the buffer is reused by
        # every group and step, so its pages are touched once (first touches are slow).
        frames = max(group[-1][1] - group[0][0] for group in run.groups)
        self.dy = np.zeros((frames, 4 * f, *padded), dtype)
        flipped = kernel[(slice(None, None, -1),) * n].swapaxes(-1, -2)   # [*k, 4F, C + F]
        self.w_back = np.ascontiguousarray(flipped.reshape(-1, kernel.shape[-2]).T)
        self.params = params
        self.peep = run.peep
        self.sums = {"kernel": np.zeros((run.taps, 4 * f))}
        if self.cell.normalize:
            for name in ("z", "z_i", "z_f", "z_o", "c"):
                self.sums[name + "/gamma"] = np.zeros(f)
                self.sums[name + "/beta"] = np.zeros(f)
        else:
            self.sums["bias"] = np.zeros(4 * f)
        for name in self.peep:
            self.sums[name] = np.zeros((f, run.pixels))
        longest = max(len(group) for group in run.groups)
        sizes = [max(run.offsets[group[i]][1] for group in run.groups if i < len(group))
                 for i in range(longest)]
        # Per chunk position: 13 arrays [F, n] kept from pass to pass (see _pass_a).
        self.work = [np.empty(13 * f * size, dtype) for size in sizes]

    # --- helpers --------------------------------------------------------------
    def _work(self, i, chunk):
        run = self.run
        n = run.offsets[chunk][1]
        return self.work[i][:13 * run.filters * n].reshape(13, run.filters, chunk[1] - chunk[0], -1)

    def _frame_rows(self, a, chunk, channels):
        """``[channels, nb, m]`` view/copy of a cell-layout ``[B, *S, channels]`` array's chunk."""
        run = self.run
        b0, b1 = chunk[:2]
        _, pixels = run._pixels(chunk)
        if run.first:
            return a.reshape(run.batch, channels, run.pixels)[b0:b1, :, pixels].swapaxes(0, 1)
        return a.reshape(run.batch, run.pixels, channels)[b0:b1, pixels].transpose(2, 0, 1)

    def _ln_forward(self, v, stats, chunk, out):
        """``out = v_hat = (v - mean) / std`` with the forward's recorded statistics."""
        b_first, mean, rstd = stats
        rows = slice(chunk[0] - b_first, chunk[1] - b_first)
        np.subtract(v, mean[rows].astype(v.dtype)[None, :, None], out=out)
        out *= rstd[rows].astype(v.dtype)[None, :, None]
        return out

    def _ln_sums(self, d_out, v_hat, name, scratch):
        """Frame sums of ``g = d_out * gamma`` and ``g * v_hat``; per-channel d_gamma, d_beta parts.

        Returns ``(g, (sum_g [nb], sum_g_vhat [nb]), (d_gamma [F], d_beta [F]))``, g in d_out's place.
        """
        gamma = self.run.ln[name][0]
        np.multiply(d_out, v_hat, out=scratch)
        d_gamma = scratch.sum(axis=(1, 2))
        d_beta = d_out.sum(axis=(1, 2))
        d_out *= gamma
        scratch *= gamma
        return (d_out.sum(axis=(0, 2)), scratch.sum(axis=(0, 2))), (d_gamma, d_beta)

    def _accumulate(self, group, parts):
        """Add the chunks' parameter-gradient parts, in chunk order (the same bits on any thread)."""
        for chunk, (_, grads) in zip(group, parts):
            for name, value in grads.items():
                if name in self.peep:  # [F, m]: the chunk's pixels, batch already summed
                    _, pixels = self.run._pixels(chunk)
                    self.sums[name][:, pixels] += value
                else:
                    self.sums[name] += value

    @staticmethod
    def _combine_sums(group, parts, k):
        if parts[0][0] is None:
            return None
        b_first = group[0][0]
        frames = group[-1][1] - b_first
        s1, s2 = np.zeros(frames), np.zeros(frames)
        for chunk, (sums, _) in zip(group, parts):
            rows = slice(chunk[0] - b_first, chunk[1] - b_first)
            s1[rows] += sums[k][0]
            s2[rows] += sums[k][1]
        return b_first, s1, s2

    def _ln_finish(self, g, v_hat, stats, sums, chunk):
        """In place: ``g <- (g - mean(g) - v_hat * mean(g * v_hat)) / std`` for a chunk."""
        b_first, _, rstd = stats
        _, s1, s2 = sums
        rows = slice(chunk[0] - b_first, chunk[1] - b_first)
        n = self.run.filters * self.run.pixels
        col = lambda a: a[rows].astype(g.dtype)[None, :, None]  # noqa: E731
        g -= col(s1 / n)
        g -= v_hat * col(s2 / n)
        g *= col(rstd)

    # --- one step -------------------------------------------------------------
    def step(self, record, d_out, d_c, d_h, d_x):
        """Backpropagate one recorded step; update d_c and d_h (runner layout) in place, fill d_x."""
        run = self.run
        channels = slice(0, run.in_channels)
        x_first = record["x"] if run.first else np.moveaxis(record["x"], -1, 1)
        h_first = record["h_prev"] if run.first else np.moveaxis(record["h_prev"], -1, 1)
        run._frame_view(run.xh, channels)[...] = x_first
        run._frame_view(run.xh, slice(run.in_channels, None))[...] = h_first
        d_out = np.asarray(d_out)
        for index, group in enumerate(run.groups):
            self._group_start = group[0][0]
            stats = record["stats"][index] if self.cell.normalize else (None, None)
            items = list(enumerate(group))
            parts = _map(lambda item: self._pass_a(*item, record, stats, d_out, d_c, d_h), items)
            sums_a = [self._combine_sums(group, parts, k) for k in range(2)]
            self._accumulate(group, parts)
            parts = _map(lambda item: self._pass_b(*item, record, stats, sums_a, d_c), items)
            sums_b = [self._combine_sums(group, parts, k) for k in range(3)]
            self._accumulate(group, parts)
            parts = _map(lambda item: self._pass_c(*item, record, stats, sums_b, d_c), items)
            self._accumulate(group, parts)
            _map(lambda item: self._pass_d(*item, d_h, d_x), items)

    def _pass_a(self, i, chunk, record, stats, d_out, d_c, d_h):
        """Redo the gates; backward through h = z_o * tanh(c) and LN(z_o), LN(c); frame sums."""
        run, cell = self.run, self.cell
        w = self._work(i, chunk)
        vh_z, vh_i, vh_f, vh_o, vh_c, z, z_i, z_f, z_o, tc, c_in, g_o, g_c = w
        y = run._state_view(record["y"], chunk, 4).reshape(4, run.filters, *w.shape[2:])
        c_prev = run._state_view(record["c_prev"], chunk)
        _, pixels = run._pixels(chunk)
        stats_in, stats_out = stats
        # The forward again, keeping what the backward needs (v_hat: layer norm's normalised input).
        z_in, z_i_in, z_f_in = y[0], y[1].copy(), y[2].copy()
        if cell.peephole:
            z_i_in += self.peep["W_ci"][:, :, pixels] * c_prev
            z_f_in += self.peep["W_cf"][:, :, pixels] * c_prev
        for v, out, act, k, name, shift in ((z_in, vh_z, z, 0, "z", 0.0),
                                            (z_i_in, vh_i, z_i, 1, "z_i", 0.0),
                                            (z_f_in, vh_f, z_f, 2, "z_f", cell.forget_bias)):
            if cell.normalize:
                self._ln_forward(v, stats_in[k], chunk, out)
                gamma, beta = run.ln[name]
                np.multiply(out, gamma, out=act)
                act += beta
            else:
                act[...] = v
            if shift:
                act += shift
            if name == "z":
                np.tanh(act, out=act)
            else:
                run._activate(sigmoid, act)
        np.multiply(c_prev, z_f, out=c_in)
        c_in += z_i * z
        z_o_in = y[3].copy()
        if cell.peephole:
            z_o_in += self.peep["W_co"][:, :, pixels] * c_in
        if cell.normalize:
            self._ln_forward(z_o_in, stats_out[0], chunk, vh_o)
            np.multiply(vh_o, run.ln["z_o"][0], out=z_o)
            z_o += run.ln["z_o"][1]
            self._ln_forward(c_in, stats_out[1], chunk, vh_c)
            np.multiply(vh_c, run.ln["c"][0], out=tc)
            tc += run.ln["c"][1]
        else:
            z_o[...] = z_o_in
            tc[...] = c_in
        run._activate(sigmoid, z_o)
        np.tanh(tc, out=tc)
        # h = z_o * tanh(c): d_h is the output's gradient plus the next step's.
        d_h_total = run._state_view(d_h, chunk) + self._frame_rows(d_out, chunk, run.filters)
        np.multiply(d_h_total, tc, out=g_o)                 # d_z_o (after the sigmoid)
        g_o *= z_o * (1 - z_o)                              # d_z_o_hat
        np.multiply(d_h_total, z_o, out=g_c)
        g_c *= 1 - tc * tc
        g_c += run._state_view(d_c, chunk)                  # d_c (after its layer norm)
        if not cell.normalize:
            return None, {}
        scratch = run._scratch("bw", g_o.shape)
        sums_o, (d_gamma_o, d_beta_o) = self._ln_sums(g_o, vh_o, "z_o", scratch)
        sums_c, (d_gamma_c, d_beta_c) = self._ln_sums(g_c, vh_c, "c", scratch)
        return (sums_o, sums_c), {"z_o/gamma": d_gamma_o, "z_o/beta": d_beta_o,
                                  "c/gamma": d_gamma_c, "c/beta": d_beta_c}

    def _pass_b(self, i, chunk, record, stats, sums, d_c):
        """Finish LN(z_o), LN(c); backward through c = c_prev * z_f + z_i * z; frame sums."""
        run, cell = self.run, self.cell
        w = self._work(i, chunk)
        vh_z, vh_i, vh_f, vh_o, vh_c, z, z_i, z_f, z_o, tc, c_in, g_o, g_c = w
        c_prev = run._state_view(record["c_prev"], chunk)
        _, pixels = run._pixels(chunk)
        if cell.normalize:
            self._ln_finish(g_o, vh_o, stats[1][0], sums[0], chunk)   # d_z_o_in
            self._ln_finish(g_c, vh_c, stats[1][1], sums[1], chunk)   # d_c_in
        grads = {}
        if cell.peephole:
            grads["W_co"] = _batch_sum(g_o * c_in)
            g_c += g_o * self.peep["W_co"][:, :, pixels]
        d_c_prev = run._state_view(d_c, chunk)
        np.multiply(g_c, z_f, out=d_c_prev)
        # The three gradients below the activations go into buffers whose values are no
        # longer needed: tanh(c)'s, c_in's (its peephole part is done) and z_i's (read last).
        d_z_f, d_z_i, d_z = tc, c_in, z_i
        np.multiply(g_c, c_prev, out=d_z_f)                 # c = c_prev * z_f + ...
        d_z_f *= z_f * (1 - z_f)                            # z_f = sigmoid(z_f_hat + forget_bias)
        np.multiply(g_c, z, out=d_z_i)                      # ... + z_i * z
        d_z_i *= z_i * (1 - z_i)                            # z_i = sigmoid(z_i_hat)
        np.multiply(g_c, z_i, out=d_z)
        d_z *= 1 - z * z                                    # z = tanh(z_hat)
        if not cell.normalize:
            return None, grads
        scratch = run._scratch("bw", d_z.shape)
        sums = []
        for d, vh, name in ((d_z, vh_z, "z"), (d_z_i, vh_i, "z_i"), (d_z_f, vh_f, "z_f")):
            frame_sums, (grads[name + "/gamma"], grads[name + "/beta"]) = \
                self._ln_sums(d, vh, name, scratch)
            sums.append(frame_sums)
        return sums, grads

    def _pass_c(self, i, chunk, record, stats, sums, d_c):
        """Finish LN(z), LN(z_i), LN(z_f); d_y, d_c_prev's peephole parts, d_kernel's part."""
        run, cell = self.run, self.cell
        w = self._work(i, chunk)
        vh_z, vh_i, vh_f, vh_o, vh_c, z, z_i, z_f, z_o, tc, c_in, g_o, g_c = w
        d_z, d_z_i, d_z_f, d_z_o = z_i, c_in, tc, g_o       # where pass B left them
        c_prev = run._state_view(record["c_prev"], chunk)
        _, pixels = run._pixels(chunk)
        if cell.normalize:
            self._ln_finish(d_z, vh_z, stats[0][0], sums[0], chunk)
            self._ln_finish(d_z_i, vh_i, stats[0][1], sums[1], chunk)
            self._ln_finish(d_z_f, vh_f, stats[0][2], sums[2], chunk)
        grads = {}
        if cell.peephole:
            grads["W_ci"] = _batch_sum(d_z_i * c_prev)
            grads["W_cf"] = _batch_sum(d_z_f * c_prev)
            d_c_prev = run._state_view(d_c, chunk)
            d_c_prev += d_z_i * self.peep["W_ci"][:, :, pixels]
            d_c_prev += d_z_f * self.peep["W_cf"][:, :, pixels]
        b0, b1, r0, r1 = chunk
        rows = slice(self.inside[0].start + r0, self.inside[0].start + r1)
        g0 = self._group_start
        view = self.dy[(slice(b0 - g0, b1 - g0), slice(None), rows, *self.inside[1:])]
        d_y = run._scratch("d_y", (4, *d_z.shape))
        for k, d in enumerate((d_z, d_z_i, d_z_f, d_z_o)):
            d_y[k] = d
        d_y = d_y.reshape(4 * run.filters, -1)
        view[...] = d_y.reshape(4 * run.filters, b1 - b0, *view.shape[2:]).swapaxes(0, 1)
        if not cell.normalize:
            grads["bias"] = d_y.sum(axis=1)
        grads["kernel"] = run._patches(run.xh, chunk) @ d_y.T   # [K, 4F]
        return None, grads

    def _pass_d(self, i, chunk, d_h, d_x):
        """d_concat([x, h]) = conv(d_y, flipped kernel): d_x into the inputs' gradient, d_h carried."""
        run = self.run
        b0, b1, r0, r1 = chunk
        c_in = run.in_channels
        # Rows a few at a time: these patches are 4F / (C + F) times the forward's.
        step_rows = max(1, (r1 - r0) * (c_in + run.filters) // (4 * run.filters))
        for s0 in range(r0, r1, step_rows if b1 - b0 == 1 else r1 - r0):
            s1 = min(r1, s0 + step_rows) if b1 - b0 == 1 else r1
            sub = (b0, b1, s0, s1)
            g0 = self._group_start  # the d_y buffer holds this group's frames only
            d_xh = self.w_back @ run._patches(self.dy, (b0 - g0, b1 - g0, s0, s1))  # [C + F, n]
            d_xh = d_xh.reshape(c_in + run.filters, b1 - b0, -1)
            _, pixels = run._pixels(sub)
            if run.first:
                d_x.reshape(run.batch, c_in, run.pixels)[b0:b1, :, pixels] = \
                    d_xh[:c_in].swapaxes(0, 1)
            else:
                d_x.reshape(run.batch, run.pixels, c_in)[b0:b1, pixels] = \
                    d_xh[:c_in].transpose(1, 2, 0)
            q0 = pixels.start - run._pixels(chunk)[1].start
            run._state_view(d_h, chunk)[:, :, q0:q0 + d_xh.shape[2]] = d_xh[c_in:]

    def parameter_gradients(self):
        """The summed gradients, shaped and named as the cell's parameters."""
        run, out = self.run, {}
        for name, value in self.params.items():
            total = self.sums[name]
            if name == "kernel":
                total = total.reshape(value.shape)
            elif name in run.peep:
                total = (total.reshape(value.shape) if run.first
                         else total.T.reshape(value.shape))
            out[name] = total.astype(value.dtype)
        return out


def _batch_sum(a):
    """``[F, nb, m] -> [F, m]``: a peephole weight is shared by every sample (in the worker thread)."""
    return a[:, 0] if a.shape[1] == 1 else a.sum(axis=1)
