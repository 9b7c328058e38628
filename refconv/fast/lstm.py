"""The ConvLSTM on the fast path: its forward passes, and beside them its backward passes.

Forward, a step per group of chunks (a barrier after each pass; without layer
norm, passes 2 and 3 are one)::

    pass 1: y = conv(concat([x, h])) (+ peepholes on z_i, z_f); stats of z, z_i, z_f
    pass 2: z, z_i, z_f; c = c * z_f + z_i * z (+ peephole on z_o); stats of z_o, c
    pass 3: z_o, LN(c), h = z_o * tanh(c)

Backward (:func:`lstm_grad`): the forward runs on an :class:`LSTMRunner` that
records, per step, the input, the previous state, the convolution's output ``y``
(in the chunk layout) and the layer norms' statistics; each backward step then
makes four passes over the chunks:

    A: redo the step's gates from y, tanh(c) as the step's output h / z_o (the
       next record's h_prev); d_z_o and d_c through h = z_o * tanh(c);
       layer norm's frame sums for z_o and c                              (barrier)
    B: finish those layer norms; d_z_f, d_z_i, d_z through
       c = c_prev * z_f + z_i * z; frame sums for z, z_i, z_f              (barrier)
    C: finish those; d_y, d_c_prev; d_kernel += patches(concat([x, h])) @ d_y^T (barrier)
    D: d_concat([x, h]) = conv(d_y, the kernel flipped and transposed)

The convolution's backward with respect to its input is itself a convolution:
of ``d_y``, padded the other way round (``after`` zeros before, ``before`` after),
with the kernel flipped along every spatial axis and its two channel axes swapped
(:mod:`refconv.fast.conv_back`).

The backward covers the seed's activations (tanh and sigmoid), peepholes and layer
norm on or off, either data format, every sequence the same length
(:func:`backward_covers`).
"""

import numpy as np

from ..activations import sigmoid, tanh
from ..lstm import ConvLSTMCell, LSTMStateTuple
from ..vocabulary import LSTM_BLOCKS, LSTM_NORMS, LSTM_PEEPHOLES
from .conv_back import InputGradient, KernelGradient
from .layout import CHUNK_BYTES, GROUP_BYTES
from .norm_stats import (combine_sums, finish_gradient, gradient_sums, normalize,
                         normalized_input)
from .pool import parallel_map
from .runner import Runner, activate, activate_affine_by_exp, column

__all__ = ["LSTMRunner", "backward_covers", "lstm_grad"]


class LSTMRunner(Runner):
    """A ConvLSTMCell run forward on the fast path; ``records`` (a list) keeps each step for
    :func:`lstm_grad`. Arguments as :class:`refconv.fast.runner.Runner`."""

    kernel_name = "kernel"
    blocks = LSTM_BLOCKS
    norms = LSTM_NORMS

    def __init__(self, cell, params, batch, dtype, state, **options):
        super().__init__(cell, params, batch, dtype, state, **options)
        f = self.filters
        self.bias = None if cell.normalize else column(params["bias"])
        self.peep = {}
        if cell.peephole:
            for name in LSTM_PEEPHOLES:
                w = params[name]  # [*S, F] (channels_last) or [F, *S]
                w = (w.reshape(f, self.pixels) if self.channels_first
                     else w.reshape(self.pixels, f).T)
                self.peep[name] = np.ascontiguousarray(w).reshape(f, 1, self.pixels)
        self.records = None  # a list to record each step in, for lstm_grad
        self.set_state(state)

    def set_state(self, state):
        """Start from ``LSTMStateTuple(c, h)`` (the cell's data format)."""
        self.c = self.layout.to_gate_major(state.c)
        self._start(state.h)

    def state(self):
        """The current state, ``LSTMStateTuple(c, h)`` in the cell's data format (new arrays)."""
        c = self.layout.from_gate_major(self.c, self.cell.output_size)
        return self._thaw(LSTMStateTuple(c, self._h_out.copy()))

    def _record(self, x):
        if self.records is not None:  # what the backward (lstm_grad) needs
            self.records.append({"x": x, "h_prev": self._recorded(self._h_out),
                                 "c_prev": self._recorded(self.c),
                                 "y": self.workspace.empty(4 * self.c.size, self.dtype),
                                 "stats": []})

    def _group(self, group):
        if not self.cell.normalize:
            # Pass 3 writes h where pass 1 of a neighbouring chunk reads: keep the barrier.
            self.in_parallel(self._conv_pass, group)
            self.in_parallel(self._cell_state_and_output, group)
            return
        parts = self.in_parallel(self._conv_pass, group)
        stats = [self._combine(group, [p[g] for p in parts]) for g in range(3)]
        parts = self.in_parallel(lambda i, chunk: self._cell_state(i, chunk, stats), group)
        stats_out = [self._combine(group, [p[g] for p in parts]) for g in range(2)]
        if self.records is not None:
            self.records[-1]["stats"].append((stats, stats_out))
        self.in_parallel(lambda i, chunk: self._output(i, chunk, stats_out), group)

    def _conv_pass(self, i, chunk):
        """Pass 1: y = conv(concat([x, h])) (+ bias), peepholes on z_i and z_f; their stats."""
        cell = self.cell
        y = self.conv(self.conv_xh, self.xh, chunk, self.y_of(i, chunk))
        if self.bias is not None:
            y += self.bias[:, :, 0]
        self._export("y", y, chunk)
        if self.records is not None:
            self.layout.state_view(self.records[-1]["y"], chunk, 4)[...] = y.reshape(
                4 * self.filters, chunk[1] - chunk[0], -1)
        z, z_i, z_f, _ = self.split(y, chunk, 4)
        if cell.peephole:
            pixels = self.layout.pixels_of(chunk)
            c_prev = self.layout.state_view(self.c, chunk)
            peep = self.scratch("peephole", z.shape)
            z_i += np.multiply(self.peep["W_ci"][:, :, pixels], c_prev, out=peep)
            z_f += np.multiply(self.peep["W_cf"][:, :, pixels], c_prev, out=peep)
        if cell.normalize:
            return self._stats(z), self._stats(z_i), self._stats(z_f)
        return None

    def _cell_state(self, i, chunk, stats):
        """Pass 2: z, z_i, z_f and the new c (+ peephole on z_o); stats of z_o and c."""
        cell = self.cell
        z, z_i, z_f, z_o = self.split(self.y_of(i, chunk), chunk, 4)
        c = self.layout.state_view(self.c, chunk)
        sigma = cell.recurrent_activation
        if cell.normalize:
            self._gate(z, chunk, stats[0], "z", cell.activation)
            self._gate(z_i, chunk, stats[1], "z_i", sigma)
            self._gate(z_f, chunk, stats[2], "z_f", sigma, shift=cell.forget_bias)
        else:
            z_f += cell.forget_bias
            activate(sigma, z_f)
            activate(sigma, z_i)
            activate(cell.activation, z)
        c *= z_f                     # c = c * z_f + z_i * z
        c += np.multiply(z_i, z, out=z_i)
        if cell.peephole:
            pixels = self.layout.pixels_of(chunk)
            z_o += np.multiply(self.peep["W_co"][:, :, pixels], c, out=z_f)
        if cell.normalize:
            return self._stats(z_o), self._stats(c)
        return None

    def _output(self, i, chunk, stats):
        """Pass 3: z_o = sigmoid(LN(z_o)), c = LN(c), h = z_o * tanh(c)."""
        cell = self.cell
        _, _, h, z_o = self.split(self.y_of(i, chunk), chunk, 4)  # z_f's rows are free: h goes there
        c = self.layout.state_view(self.c, chunk)
        if cell.normalize:
            self._gate(z_o, chunk, stats[0], "z_o", cell.recurrent_activation)
            normalize(c, chunk, stats[1], *self.ln["c"])
        else:
            activate(cell.recurrent_activation, z_o)
        if cell.activation is tanh or cell.activation is np.tanh:
            np.tanh(c, out=h)
        else:
            h[...] = cell.activation(c)
        h *= z_o
        self._write_h(h, chunk)

    def _cell_state_and_output(self, i, chunk):
        """Passes 2 and 3 at once, when there is no layer norm to wait for."""
        self._cell_state(i, chunk, None)
        self._output(i, chunk, None)


# --- the backward ------------------------------------------------------------------

def backward_covers(cell, lengths):
    """Whether :func:`lstm_grad` computes this run's gradients."""
    return (isinstance(cell, ConvLSTMCell) and cell._default_input_conv and lengths is None
            and cell.activation in (tanh, np.tanh) and cell.recurrent_activation is sigmoid)


def lstm_grad(cell, params, x_bt, d_out_bt, state, d_state, *, chunk_bytes=CHUNK_BYTES,
              group_bytes=GROUP_BYTES, workspace=None):
    """Gradients of a ConvLSTM run, as :func:`refconv.dynamic_rnn_grad` (batch-major views).

    Args:
        x_bt: ``[B, T, *frame]``; d_out_bt: ``[B, T, *S]``; state, d_state: LSTMStateTuples.
        chunk_bytes, group_bytes: the chunk plan's sizes (None: the convolution's own,
            as :class:`refconv.fast.runner.Runner`). The default is 8 MiB whatever the
            convolution: the backward's passes ran 0.85-0.9x the time at 8 MiB against the
            forward's 32 MiB for the LSTM (``benchmarks/bench_gradients.py``).
        workspace: a :class:`refconv.fast.Workspace` to take the records' memory and the
            large buffers from, and to give them back to (each record once the backward is
            past it); None: new memory, each record freed once the backward is past it.

    Returns:
        ``(d_inputs [B, T, *frame], LSTMStateTuple(d_c0, d_h0), d_params)``.
    """
    batch, steps = x_bt.shape[:2]
    run = LSTMRunner(cell, params, batch, x_bt.dtype, state, chunk_bytes=chunk_bytes,
                     group_bytes=group_bytes, workspace=workspace)
    run.records = []
    for t in range(steps):
        run.step(x_bt[:, t])
    back = LSTMBackward(run, params)
    d_inputs = np.empty(x_bt.shape, x_bt.dtype)
    d_c = run.layout.to_gate_major(d_state.c)
    d_h = run.layout.to_gate_major(d_state.h)
    h, later = run._h_out, None   # the last step's output; the record after this one
    for t in reversed(range(steps)):
        record = run.records.pop()
        back.step(record, h, d_out_bt[:, t], d_c, d_h, d_inputs[:, t])
        h = record["h_prev"]      # the output of step t - 1
        if workspace is not None and later is not None:  # else freed here, as later goes
            workspace.give(later["h_prev"], later["c_prev"], later["y"])
        later = record
    frame = cell.output_size
    d_initial = LSTMStateTuple(run.layout.from_gate_major(d_c, frame),
                               run.layout.from_gate_major(d_h, frame))
    d_params = back.parameter_gradients()
    if workspace is not None:
        if later is not None:
            workspace.give(later["h_prev"], later["c_prev"], later["y"])
        back.release()
        run.release()
        workspace.trim()
    return d_inputs, d_initial, d_params


def _redo_gates(run, y, c_prev, h, pixels, stats, chunk, work):
    """Pass A's forward again, from the recorded ``y``: into ``y`` itself (dead after this:
    the record is dropped after the step) the v_hat (layer norm's normalised input) of
    z, z_i, z_f, z_o, and into ``work`` v_hat of c; z, z_i, z_f, z_o; tanh(c); c_in.
    The activations through ``exp``, their constants folded into layer norm's scale and
    shift (:func:`refconv.fast.runner.activate_affine_by_exp`); tanh(c) as the step's
    output ``h`` (``[F, nb, m]``) divided by z_o."""
    cell = run.cell
    vh_c, z, z_i, z_f, z_o, tc, c_in = work[:7]
    stats_in, stats_out = stats
    # The gates' inputs: y, plus the peepholes on c_prev (the products in the activations'
    # buffers, not yet used), then normalised in place.
    if cell.peephole:
        y[1] += np.multiply(run.peep["W_ci"][:, :, pixels], c_prev, out=z_i)  # z_i + W_ci c_prev
        y[2] += np.multiply(run.peep["W_cf"][:, :, pixels], c_prev, out=z_f)  # z_f + W_cf c_prev
    for v, act, k, name, shift in ((y[0], z, 0, "z", 0.0), (y[1], z_i, 1, "z_i", 0.0),
                                   (y[2], z_f, 2, "z_f", cell.forget_bias)):
        fn = tanh if name == "z" else sigmoid
        if cell.normalize:
            normalized_input(v, stats_in[k], chunk, v)      # v_hat, in y
            gamma, beta = run.ln[name]
            activate_affine_by_exp(fn, v, gamma, beta + shift, act)
        else:
            activate_affine_by_exp(fn, v, 1.0, shift, act)
    np.multiply(c_prev, z_f, out=c_in)                      # c = c_prev * z_f + z_i * z
    c_in += np.multiply(z_i, z, out=tc)
    if cell.peephole:
        y[3] += np.multiply(run.peep["W_co"][:, :, pixels], c_in, out=z_o)    # z_o + W_co * c
    if cell.normalize:
        normalized_input(y[3], stats_out[0], chunk, y[3])
        activate_affine_by_exp(sigmoid, y[3], *run.ln["z_o"], z_o)
        normalized_input(c_in, stats_out[1], chunk, vh_c)
    else:
        activate_affine_by_exp(sigmoid, y[3], 1.0, 0.0, z_o)
    # tanh(c) without a tanh: h = z_o * tanh(c), so tanh(c) = h / z_o, to a few units in the
    # last place. The tiny number added keeps 0 / 0 out where the sigmoid has underflowed to
    # z_o = 0 (h = 0 there, and tanh(c) is not needed: d_z_o and d_c both carry a factor z_o);
    # it changes no z_o above 2**-969.
    np.add(z_o, np.finfo(z_o.dtype).tiny, out=tc)
    np.divide(h, tc, out=tc)


class LSTMBackward:
    """The backward steps of one recorded run: its buffers, and the parameter gradients summed
    over steps. Uses the runner's layout, scratch buffers, layer norms and peepholes."""

    def __init__(self, run, params):
        self.run, self.cell, self.layout = run, run.cell, run.layout
        f, dtype, layout = run.filters, run.dtype, run.layout
        # d_y lives in a padded buffer, padded the other way round (see the module notes).
        self.inside = tuple(slice(after, after + size)
                            for size, (_, after) in zip(layout.spatial, layout.pads))
        # One group's frames at a time (a frame, for large ones): the buffer is reused by
        # every group and step, so its pages are touched once (first touches are slow).
        self.dy = run.workspace.zeros((layout.group_frames, 4 * f, *layout.padded), dtype)
        self.input_gradient = InputGradient(params["kernel"])
        self.kernel_gradient = KernelGradient(params["kernel"], dtype)
        self.params = params
        self.peep = run.peep
        self.sums = {"kernel": np.zeros((run.taps, 4 * f))}
        if self.cell.normalize:
            for name in LSTM_NORMS:
                self.sums[name + "/gamma"] = np.zeros(f)
                self.sums[name + "/beta"] = np.zeros(f)
        else:
            self.sums["bias"] = np.zeros(4 * f)
        for name in self.peep:
            self.sums[name] = run.workspace.zeros((f, run.pixels), np.float64)
        # Per chunk position: the chunk's parts of the three peephole gradients [3, F, m],
        # kept until the pass's barrier adds them in chunk order (new arrays were fresh
        # pages each time).
        self._peep_base, self.peep_parts = run.workspace.empty_each(
            [3 * f * size if self.peep else 0 for size in layout.sizes], dtype)
        # Per chunk position: 9 arrays [F, n] kept from pass to pass (see _pass_a); the v_hat
        # of z, z_i, z_f, z_o are in the record's y (_v_hats).
        self._work_base, self.work = run.workspace.empty_each([9 * f * size for size in layout.sizes],
                                                              dtype)

    def _work(self, i, chunk):
        n = self.layout.size(chunk)
        return self.work[i][:9 * self.run.filters * n].reshape(9, self.run.filters,
                                                                 chunk[1] - chunk[0], -1)

    def _accumulate(self, group, parts):
        """Add the chunks' parameter-gradient parts, in chunk order (the same bits on any thread)."""
        for chunk, (_, grads) in zip(group, parts):
            for name, value in grads.items():
                if name in self.peep:  # [F, m]: the chunk's pixels, batch already summed
                    self.sums[name][:, self.layout.pixels_of(chunk)] += value
                else:
                    self.sums[name] += value

    def _peep_part(self, i, chunk, name):
        """Chunk ``i``'s buffer ``[F, m]`` for its part of peephole ``name``'s gradient."""
        m = self.layout.size(chunk) // (chunk[1] - chunk[0])
        k = LSTM_PEEPHOLES.index(name)
        return self.peep_parts[i][:3 * self.run.filters * m].reshape(3, self.run.filters, m)[k]

    def _v_hats(self, record, chunk):
        """The chunk's ``[4, F, nb, m]`` view of the record's y: after pass A, the v_hat of
        z, z_i, z_f, z_o."""
        f = self.run.filters
        return self.layout.state_view(record["y"], chunk, 4).reshape(4, f, chunk[1] - chunk[0],
                                                                     -1)

    def _sums(self, d, v_hat, name, scratch, grads):
        """Layer norm's frame sums for one gradient; its d_gamma, d_beta parts into ``grads``."""
        frame_sums, (grads[name + "/gamma"], grads[name + "/beta"]) = gradient_sums(
            d, v_hat, self.run.ln[name][0], scratch)
        return frame_sums

    def _finish(self, g, v_hat, stats, sums, chunk):
        finish_gradient(g, v_hat, stats, sums, chunk, self.run.filters * self.run.pixels,
                        self.run.scratch("finish", g.shape))

    # --- one step -------------------------------------------------------------
    def step(self, record, h, d_out, d_c, d_h, d_x):
        """Backpropagate one recorded step, whose output was ``h`` (the cell's layout); update
        d_c and d_h (runner layout) in place, fill d_x."""
        run, layout = self.run, self.layout
        x_first = record["x"] if run.channels_first else np.moveaxis(record["x"], -1, 1)
        h_first = (record["h_prev"] if run.channels_first
                   else np.moveaxis(record["h_prev"], -1, 1))
        layout.frame_view(run.xh, slice(0, run.in_channels))[...] = x_first
        layout.frame_view(run.xh, slice(run.in_channels, None))[...] = h_first
        d_out = np.asarray(d_out)
        for index, group in enumerate(layout.groups):
            self._group_start = group[0][0]
            stats = record["stats"][index] if self.cell.normalize else (None, None)
            items = list(enumerate(group))
            parts = parallel_map(
                lambda item: self._pass_a(*item, record, h, stats, d_out, d_c, d_h), items)
            sums_a = [combine_sums(group, parts, k) for k in range(2)]
            self._accumulate(group, parts)
            parts = parallel_map(lambda item: self._pass_b(*item, record, stats, sums_a, d_c),
                                 items)
            sums_b = [combine_sums(group, parts, k) for k in range(3)]
            self._accumulate(group, parts)
            parts = parallel_map(lambda item: self._pass_c(*item, record, stats, sums_b, d_c),
                                 items)
            self._accumulate(group, parts)
            parallel_map(lambda item: self._pass_d(*item, d_h, d_x), items)

    def _pass_a(self, i, chunk, record, h, stats, d_out, d_c, d_h):
        """Redo the gates; backward through h = z_o * tanh(c) and LN(z_o), LN(c); frame sums."""
        run, layout = self.run, self.layout
        w = self._work(i, chunk)
        vh_c, z, z_i, z_f, z_o, tc, c_in, g_o, g_c = w
        y = self._v_hats(record, chunk)                     # y, until v_hat
        vh_o = y[3]
        c_prev = layout.state_view(record["c_prev"], chunk)
        _redo_gates(run, y, c_prev, layout.take(h, chunk, run.filters), layout.pixels_of(chunk),
                    stats, chunk, w)
        # h = z_o * tanh(c): d_h is the output's gradient plus the next step's.
        # (The products' temporaries in this thread's scratch buffers, here and in passes B
        # and C: new arrays of a chunk's size were fresh pages, 80-90 MB a call.)
        d_h_total = np.add(layout.state_view(d_h, chunk), layout.take(d_out, chunk, run.filters),
                           out=run.scratch("d_h_total", g_o.shape))
        temp = run.scratch("temporary", g_o.shape)
        np.multiply(d_h_total, tc, out=g_o)                 # d_z_o (after the sigmoid)
        g_o *= _sigmoid_slope(z_o, temp)                   # d_z_o_hat
        np.multiply(d_h_total, z_o, out=g_c)
        g_c *= _tanh_slope(tc, temp)
        g_c += layout.state_view(d_c, chunk)                # d_c (after its layer norm)
        if not self.cell.normalize:
            return None, {}
        scratch = run.scratch("bw", g_o.shape)
        grads = {}
        sums = (self._sums(g_o, vh_o, "z_o", scratch, grads),
                self._sums(g_c, vh_c, "c", scratch, grads))
        return sums, grads

    def _pass_b(self, i, chunk, record, stats, sums, d_c):
        """Finish LN(z_o), LN(c); backward through c = c_prev * z_f + z_i * z; frame sums."""
        run, cell, layout = self.run, self.cell, self.layout
        w = self._work(i, chunk)
        vh_c, z, z_i, z_f, z_o, tc, c_in, g_o, g_c = w
        vh_z, vh_i, vh_f, vh_o = self._v_hats(record, chunk)
        c_prev = layout.state_view(record["c_prev"], chunk)
        if cell.normalize:
            self._finish(g_o, vh_o, stats[1][0], sums[0], chunk)   # d_z_o_in
            self._finish(g_c, vh_c, stats[1][1], sums[1], chunk)   # d_c_in
        grads = {}
        temp = run.scratch("temporary", g_o.shape)
        if cell.peephole:
            grads["W_co"] = _batch_sum(np.multiply(g_o, c_in, out=temp),
                                       self._peep_part(i, chunk, "W_co"))
            g_c += np.multiply(g_o, self.peep["W_co"][:, :, layout.pixels_of(chunk)], out=temp)
        d_c_prev = layout.state_view(d_c, chunk)
        np.multiply(g_c, z_f, out=d_c_prev)
        # The three gradients below the activations go into buffers whose values are no
        # longer needed (z_o's, tanh(c)'s, c_in's: its peephole part is done), the three
        # before g_o (d_z_o), so that work[4:8] is d_y = [d_z, d_z_i, d_z_f, d_z_o], no copy.
        d_z, d_z_i, d_z_f = z_o, tc, c_in
        np.multiply(g_c, c_prev, out=d_z_f)                 # c = c_prev * z_f + ...
        d_z_f *= _sigmoid_slope(z_f, temp)                 # z_f = sigmoid(z_f_hat + forget_bias)
        np.multiply(g_c, z, out=d_z_i)                      # ... + z_i * z
        d_z_i *= _sigmoid_slope(z_i, temp)                 # z_i = sigmoid(z_i_hat)
        np.multiply(g_c, z_i, out=d_z)
        d_z *= _tanh_slope(z, temp)                        # z = tanh(z_hat)
        if not cell.normalize:
            return None, grads
        scratch = run.scratch("bw", d_z.shape)
        return [self._sums(d, vh, name, scratch, grads) for d, vh, name in
                ((d_z, vh_z, "z"), (d_z_i, vh_i, "z_i"), (d_z_f, vh_f, "z_f"))], grads

    def _pass_c(self, i, chunk, record, stats, sums, d_c):
        """Finish LN(z), LN(z_i), LN(z_f); d_y, d_c_prev's peephole parts, d_kernel's part."""
        run, cell, layout = self.run, self.cell, self.layout
        w = self._work(i, chunk)
        vh_c, z, z_i, z_f, z_o, tc, c_in, g_o, g_c = w
        vh_z, vh_i, vh_f, vh_o = self._v_hats(record, chunk)
        d_z, d_z_i, d_z_f, d_z_o = z_o, tc, c_in, g_o       # where pass B left them
        c_prev = layout.state_view(record["c_prev"], chunk)
        pixels = layout.pixels_of(chunk)
        if cell.normalize:
            self._finish(d_z, vh_z, stats[0][0], sums[0], chunk)
            self._finish(d_z_i, vh_i, stats[0][1], sums[1], chunk)
            self._finish(d_z_f, vh_f, stats[0][2], sums[2], chunk)
        grads = {}
        if cell.peephole:
            temp = run.scratch("temporary", d_z.shape)
            grads["W_ci"] = _batch_sum(np.multiply(d_z_i, c_prev, out=temp),
                                       self._peep_part(i, chunk, "W_ci"))
            grads["W_cf"] = _batch_sum(np.multiply(d_z_f, c_prev, out=temp),
                                       self._peep_part(i, chunk, "W_cf"))
            d_c_prev = layout.state_view(d_c, chunk)
            d_c_prev += np.multiply(d_z_i, self.peep["W_ci"][:, :, pixels], out=temp)
            d_c_prev += np.multiply(d_z_f, self.peep["W_cf"][:, :, pixels], out=temp)
        b0, b1, r0, r1 = chunk
        rows = slice(self.inside[0].start + r0, self.inside[0].start + r1)
        g0 = self._group_start
        view = self.dy[(slice(b0 - g0, b1 - g0), slice(None), rows, *self.inside[1:])]
        d_y = w[4:8].reshape(4 * run.filters, -1)          # [d_z, d_z_i, d_z_f, d_z_o]
        view[...] = d_y.reshape(4 * run.filters, b1 - b0, *view.shape[2:]).swapaxes(0, 1)
        if not cell.normalize:
            grads["bias"] = d_y.sum(axis=1)
        grads["kernel"] = self.kernel_gradient(layout, run.xh, d_y, chunk, run.scratch)  # [K, 4F]
        return None, grads

    def _pass_d(self, i, chunk, d_h, d_x):
        """d_concat([x, h]) = conv(d_y, flipped kernel): d_x into the inputs' gradient, d_h carried."""
        run, layout = self.run, self.layout
        b0, b1, r0, r1 = chunk
        g0 = self._group_start  # the d_y buffer holds this group's frames only
        d_xh = self.input_gradient(layout, self.dy, (b0 - g0, b1 - g0, r0, r1),
                                   run.scratch)             # [C + F, nb, m]
        layout.put(d_x, d_xh[:run.in_channels], chunk)
        layout.state_view(d_h, chunk)[...] = d_xh[run.in_channels:]

    def release(self):
        """Give the large buffers back to the runner's workspace (after parameter_gradients)."""
        self.run.workspace.give(self.dy, self._work_base, self._peep_base,
                                *(self.sums[name] for name in self.peep))

    def parameter_gradients(self):
        """The summed gradients, shaped and named as the cell's parameters (new arrays)."""
        out = {}
        for name, value in self.params.items():
            total = self.sums[name]
            if name == "kernel":
                total = total.reshape(value.shape)
            elif name in self.peep:
                total = (total.reshape(value.shape) if self.run.channels_first
                         else total.T.reshape(value.shape))
            out[name] = total.astype(value.dtype)
        return out


def _sigmoid_slope(a, out):
    """``out = a * (1 - a)``: sigmoid's derivative, from its output ``a``."""
    np.subtract(1, a, out=out)
    out *= a
    return out


def _tanh_slope(t, out):
    """``out = 1 - t * t``: tanh's derivative, from its output ``t``."""
    np.multiply(t, t, out=out)
    np.subtract(1, out, out=out)
    return out


def _batch_sum(a, out):
    """``out = a`` summed over frames, ``[F, nb, m] -> [F, m]``: a peephole weight is shared
    by every sample (summed in the worker thread)."""
    return np.sum(a, axis=1, out=out)
