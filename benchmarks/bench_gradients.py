"""Forward vs forward+backward time and the memory backpropagation through time keeps.

The seed's 2-D configuration by default: 640x480 frames, 3 input channels,
12 filters, 3x3 kernel, batch 4, T = 8, ConvLSTM with layer norm and peepholes.

    python benchmarks/bench_gradients.py                 # float64, the seed's sizes
    python benchmarks/bench_gradients.py --dtype float32 --cell gru

Prints the forward time (``dynamic_rnn``, the fast path), the forward+backward
time (``dynamic_rnn_grad``: refconv.fast.lstm_grad or gru_grad) and their ratio
(target: at most 3), backward / forward, the forward as the backward runs it
(recording every step) and the backward's own passes, the baseline of one NumPy matrix product of the
convolution's im2col shape (M = B*H*W, K = prod(kernel) * (C_in + F), N = 4F)
per step, and the peak memory traced while computing gradients at two
sequence lengths, from which the memory per extra time step follows. Forward and
forward+backward are run interleaved, best of ``--repeats`` each, in wall time and in
CPU time (all threads): on a loaded machine compare the CPU-time ratio.

The records are fresh memory in every call: glibc returns large blocks to the
system when they are freed, and the first write to each page costs a page fault
(on this project's virtual machines 0.5-1 GB/s, against 4-7 GB/s into memory the
process has written before). So forward + backward is timed twice: with fresh
memory, and with one :class:`refconv.fast.Workspace` passed to every call (what a
training loop does: ``dynamic_rnn_grad(..., workspace=ws)`` keeps the records'
memory for the next call; its first call, which fills it, is a warm-up and not
counted: the best of ``--repeats`` is, and ``--repeats`` is at least 2).
"""

import argparse
import time
import tracemalloc

import numpy as np

import refconv
from refconv import fast


def make(args, timesteps, seed=0):
    rng = np.random.default_rng(seed)
    shape = [args.height, args.width]
    if args.cell == "lstm":
        cell = refconv.ConvLSTMCell(shape, args.filters, [3, 3])
    else:
        cell = refconv.ConvGRUCell(shape, args.filters, [3, 3])
    cell.build(args.channels, seed=seed)
    inputs = rng.standard_normal((args.batch, timesteps, *shape, args.channels)).astype(args.dtype)
    d_outputs = rng.standard_normal((args.batch, timesteps, *shape, args.filters)).astype(args.dtype)
    return cell, inputs, d_outputs


def best_of(fn, repeats):
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def best_of_both(fns, repeats, every=None):
    """Each of ``fns`` run ``repeats`` times, interleaved (a, b, a, b, ...), so that a change
    in the machine's load falls on both: per fn, the best wall time and the best CPU time
    (``time.process_time``: every thread of this process; on a loaded machine the wall
    time is mostly waiting for a core, the CPU time is not). ``every``: a list to append
    each turn's wall times to (one list per turn, in the order of ``fns``)."""
    wall = [float("inf")] * len(fns)
    cpu = [float("inf")] * len(fns)
    for _ in range(repeats):
        turn = []
        for k, fn in enumerate(fns):
            start, start_cpu = time.perf_counter(), time.process_time()
            fn()
            turn.append(time.perf_counter() - start)
            wall[k] = min(wall[k], turn[-1])
            cpu[k] = min(cpu[k], time.process_time() - start_cpu)
        if every is not None:
            every.append(turn)
    return wall, cpu


def recording_forward(cell, inputs):
    """The forward as :func:`refconv.fast.lstm_grad` / ``gru_grad`` run it: every step's
    record (its previous state and convolution outputs) kept for the backward.
    Returns the bytes recorded."""
    dtype = inputs.dtype
    params = cell._checked_params(dtype)
    state = cell.zero_state(inputs.shape[0], dtype)
    run = fast.runner(cell, params, inputs.shape[0], dtype, state)
    run.records = []
    for t in range(inputs.shape[1]):
        run.step(inputs[:, t])
    return sum(a.nbytes for record in run.records for name, a in record.items()
               if name != "x" and isinstance(a, np.ndarray))   # x: a view of the inputs


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cell", choices=["lstm", "gru"], default="lstm")
    parser.add_argument("--dtype", choices=["float64", "float32"], default="float64")
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--timesteps", type=int, default=8)
    parser.add_argument("--height", type=int, default=640)
    parser.add_argument("--width", type=int, default=480)
    parser.add_argument("--channels", type=int, default=3)
    parser.add_argument("--filters", type=int, default=12)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--no-memory", action="store_true",
                        help="skip the peak-memory runs (two more gradient runs, traced)")
    args = parser.parse_args()

    cell, inputs, d_outputs = make(args, args.timesteps)
    recorded, turns = [], []
    workspace = fast.Workspace()
    (forward, recording, both, both_ws), (forward_cpu, recording_cpu, both_cpu, both_ws_cpu) = \
        best_of_both([lambda: refconv.dynamic_rnn(cell, inputs),
                      lambda: recorded.append(recording_forward(cell, inputs)),
                      lambda: refconv.dynamic_rnn_grad(cell, inputs, d_outputs),
                      lambda: refconv.dynamic_rnn_grad(cell, inputs, d_outputs,
                                                       workspace=workspace)],
                     max(args.repeats, 2), every=turns)
    # The workspace against fresh memory, turn by turn (the first turn fills the workspace).
    paired = sorted(turn[3] / turn[2] for turn in turns[1:])
    kept = workspace.nbytes
    workspace.clear()

    # Baseline: the matrix product one step's convolution amounts to, in the same process.
    m = args.batch * args.height * args.width
    k = 9 * (args.channels + args.filters)
    n = (4 if args.cell == "lstm" else 3) * args.filters
    rng = np.random.default_rng(1)
    a = rng.standard_normal((m, k)).astype(args.dtype)
    b = rng.standard_normal((k, n)).astype(args.dtype)
    matmul = best_of(lambda: a @ b, args.repeats)
    del a, b

    print(f"{args.cell} {args.dtype}, batch {args.batch}, T {args.timesteps}, "
          f"{args.height}x{args.width}, {args.channels}+{args.filters} channels in, 3x3")
    print(f"  forward              {forward:8.2f} s   ({forward / args.timesteps / matmul:5.1f}x "
          f"one same-shape matmul per step, matmul {matmul * 1e3:.0f} ms)")
    print(f"  forward + backward   {both:8.2f} s   ({both / forward:.2f}x the forward; "
          f"target <= 3): fresh memory in every call")
    print(f"  forward + backward   {both_ws:8.2f} s   ({both_ws / forward:.2f}x the forward): "
          f"one Workspace in every call ({kept / 2**30:.2f} GiB kept between calls)")
    print(f"  with a Workspace / fresh memory, turn by turn: "
          f"{', '.join(f'{r:.2f}' for r in paired)} (median {np.median(paired):.2f})")
    print(f"  backward / forward   {(both - forward) / forward:8.2f}")
    print(f"  of which: the forward that records {recording:.2f} s ({recording / forward:.2f}x "
          f"the forward; {recorded[-1] / 2**30:.2f} GiB recorded), "
          f"the backward's passes {both - recording:.2f} s ({(both - recording) / forward:.2f}x)")
    print(f"  CPU time (all threads): forward {forward_cpu:.2f} s, forward + backward "
          f"{both_cpu:.2f} s ({both_cpu / forward_cpu:.2f}x the forward), with a Workspace "
          f"{both_ws_cpu:.2f} s ({both_ws_cpu / forward_cpu:.2f}x), the forward that "
          f"records {recording_cpu:.2f} s")
    if args.no_memory:
        return

    # Memory: peak traced allocation of dynamic_rnn_grad at T and T/2.
    peaks = {}
    for steps in sorted({max(args.timesteps // 2, 1), args.timesteps}):
        cell, inputs, d_outputs = make(args, steps)
        tracemalloc.start()
        refconv.dynamic_rnn_grad(cell, inputs, d_outputs)
        peaks[steps] = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        del cell, inputs, d_outputs
    state_bytes = args.batch * args.height * args.width * args.filters * np.dtype(args.dtype).itemsize
    for steps, peak in peaks.items():
        print(f"  peak memory, T={steps:<3}   {peak / 2**30:8.2f} GiB   "
              f"({peak / state_bytes:.1f} state-sized arrays)")
    if len(peaks) == 2:
        (t1, p1), (t2, p2) = sorted(peaks.items())
        per_step = (p2 - p1) / (t2 - t1)
        print(f"  per extra time step  {per_step / 2**20:8.0f} MiB   "
              f"({per_step / state_bytes:.1f} state-sized arrays; inputs and upstream "
              f"gradients included)")


if __name__ == "__main__":
    main()
