"""refconv against PyTorch ConvLSTMs, through ``from_torch`` and ``to_torch``, in float64.

The model under test is written here the way ndrplz/ConvLSTM_pytorch writes
its ConvLSTM (one Conv2d over ``cat([x, h])``, blocks i, f, o, g split off the
output channels, ``k // 2`` zeros on both sides, layers in ``cell_list``), and
a second, differently written PyTorch ConvLSTM (1-D and 3-D, blocks i, f, g, o
over ``cat([h, x])``, ``padding="same"``) shows the one-line general form.
Weights and biases are random and non-zero; outputs and every layer's final
``h`` and ``c`` must agree to ``rtol=1e-10``.
"""

import warnings

import numpy as np
import pytest

from _frameworks import assert_close, report_worst, require

from refconv import LSTMStateTuple, MultiRNNCell, dynamic_rnn
from refconv.interop import PaddingWarning, from_torch, to_torch

torch = require("torch")
nn = torch.nn


@pytest.fixture(scope="module", autouse=True)
def _report(request):
    yield
    report_worst(request, "PyTorch", f"PyTorch {torch.__version__}")


# --- the model of ndrplz/ConvLSTM_pytorch -----------------------------------------

class NdrplzCell(nn.Module):
    """One layer: ``conv(cat([x, h]))`` split into i, f, o, g; padding ``k // 2`` on both sides."""

    def __init__(self, input_dim, hidden_dim, kernel_size, bias):
        super().__init__()
        self.hidden_dim = hidden_dim
        self.conv = nn.Conv2d(input_dim + hidden_dim, 4 * hidden_dim, kernel_size,
                              padding=(kernel_size[0] // 2, kernel_size[1] // 2), bias=bias)

    def forward(self, x, state):
        h, c = state
        i, f, o, g = torch.split(self.conv(torch.cat([x, h], dim=1)), self.hidden_dim, dim=1)
        c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
        h = torch.sigmoid(o) * torch.tanh(c)
        return h, c


class NdrplzConvLSTM(nn.Module):
    """Layers of :class:`NdrplzCell`; input ``[B, T, C, H, W]``, or ``[T, B, ...]`` unless
    ``batch_first``.

    Returns ``(outputs, states)``: per layer (only the last unless
    ``return_all_layers``) the outputs ``[B, T, F, H, W]`` and ``[h, c]``. As in
    ndrplz, every layer starts from zeros (it has no initial-state argument).
    """

    def __init__(self, input_dim, hidden_dims, kernel_sizes, batch_first=False, bias=True,
                 return_all_layers=False):
        super().__init__()
        self.batch_first, self.return_all_layers = batch_first, return_all_layers
        inputs = [input_dim, *hidden_dims[:-1]]
        self.cell_list = nn.ModuleList(NdrplzCell(c, f, k, bias)
                                       for c, f, k in zip(inputs, hidden_dims, kernel_sizes))

    def forward(self, x):
        if not self.batch_first:
            x = x.permute(1, 0, 2, 3, 4)
        batch, steps, _, height, width = x.shape
        outputs, states = [], []
        for cell in self.cell_list:
            h = c = x.new_zeros(batch, cell.hidden_dim, height, width)
            sequence = []
            for t in range(steps):
                h, c = cell(x[:, t], [h, c])
                sequence.append(h)
            x = torch.stack(sequence, dim=1)
            outputs.append(x)
            states.append([h, c])
        if not self.return_all_layers:
            outputs, states = outputs[-1:], states[-1:]
        return outputs, states


# --- another PyTorch ConvLSTM: 1-D to 3-D, i f g o, cat([h, x]), padding "same" -------

class OtherCell(nn.Module):
    def __init__(self, channels, filters, kernel):
        super().__init__()
        conv = {1: nn.Conv1d, 2: nn.Conv2d, 3: nn.Conv3d}[len(kernel)]
        self.gates = conv(filters + channels, 4 * filters, kernel, padding="same")

    def forward(self, x, h, c):
        i, f, g, o = self.gates(torch.cat([h, x], dim=1)).chunk(4, dim=1)
        c = f.sigmoid() * c + i.sigmoid() * g.tanh()
        return o.sigmoid() * c.tanh(), c


class OtherConvLSTM(nn.Module):
    def __init__(self, channels, filters, kernels):
        super().__init__()
        self.cells = nn.ModuleList(OtherCell(c, f, k) for c, f, k
                                   in zip([channels, *filters[:-1]], filters, kernels))

    def forward(self, x, states):
        """``x [B, T, C, *shape]``, ``states`` a list of ``(h, c)``: top outputs and new states."""
        states = list(states)
        outputs = []
        for t in range(x.shape[1]):
            y = x[:, t]
            for layer, cell in enumerate(self.cells):
                y, c = cell(y, *states[layer])
                states[layer] = (y, c)
            outputs.append(y)
        return torch.stack(outputs, dim=1), states


def randomize(model, seed, scale=0.5):
    """Every parameter, biases included, uniform in ``[-scale, scale]``: nothing is zero or one."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            p.copy_((torch.rand(p.shape, generator=generator, dtype=p.dtype) * 2 - 1) * scale)
    return model


def t(a):
    return torch.from_numpy(np.ascontiguousarray(a))


def n(x):
    return x.detach().numpy()


# --- tests ------------------------------------------------------------------------

@pytest.mark.parametrize("batch_first", [True, False])
def test_ndrplz_stack_matches(batch_first):
    """Three layers, odd kernels (some anisotropic), every layer's outputs and states compared."""
    model = NdrplzConvLSTM(2, [3, 4, 2], [(3, 3), (5, 3), (1, 3)], batch_first=batch_first,
                           return_all_layers=True).double()
    randomize(model, seed=int(batch_first))
    rng = np.random.default_rng(0)
    shape = [7, 6]
    x = rng.standard_normal((3, 5, 2, *shape) if batch_first else (5, 3, 2, *shape))
    outputs, states = model(t(x))

    multi = from_torch(model.state_dict(), shape)
    assert isinstance(multi, MultiRNNCell) and len(multi.cells) == 3
    ref_outputs, ref_state, gates = dynamic_rnn(multi, x, time_major=not batch_first,
                                                return_gates=True)
    def batch_major(a):  # ndrplz's outputs are [B, T, ...] whatever its input's layout
        return a if batch_first else a.swapaxes(0, 1)

    assert_close(batch_major(ref_outputs), n(outputs[-1]), "PyTorch", "top layer outputs")
    for layer in range(3):
        assert_close(batch_major(gates[layer]["h"]), n(outputs[layer]), "PyTorch",
                     f"layer {layer} outputs")
        h, c = states[layer]  # ndrplz's [h, c]; refconv's LSTMStateTuple(c, h)
        assert_close(ref_state[layer].h, n(h), "PyTorch", f"layer {layer} final h")
        assert_close(ref_state[layer].c, n(c), "PyTorch", f"layer {layer} final c")


def test_ndrplz_cell_from_a_random_state_and_without_bias():
    """ndrplz's ConvLSTM starts from zeros; its cell, stepped by hand, takes any state."""
    cell = randomize(NdrplzCell(3, 4, (3, 5), bias=False).double(), seed=3)
    rng = np.random.default_rng(3)
    shape = [6, 8]
    x = rng.standard_normal((2, 4, 3, *shape))
    h, c = rng.standard_normal((2, 2, 4, *shape))
    state = [t(h), t(c)]
    outputs = []
    for step in range(x.shape[1]):
        state = cell(t(x[:, step]), state)
        outputs.append(n(state[0]))

    ref = from_torch(cell.state_dict(), shape, prefix="conv.")  # one layer, no {layer}
    assert ref.params["bias"].tolist() == [0.0] * 16
    ref_outputs, ref_state = dynamic_rnn(ref, x, initial_state=LSTMStateTuple(c, h))
    assert_close(ref_outputs, np.stack(outputs, axis=1), "PyTorch", "outputs")
    assert_close(ref_state.h, n(state[0]), "PyTorch", "final h")
    assert_close(ref_state.c, n(state[1]), "PyTorch", "final c")


def test_even_kernel_padding_is_detected():
    """k // 2 on both sides of an even kernel is not SAME: the model breaks, from_torch warns."""
    model = randomize(NdrplzConvLSTM(2, [3], [(2, 3)], batch_first=True).double(), seed=5)
    x = torch.zeros(1, 2, 2, 6, 6, dtype=torch.float64)
    with pytest.raises(RuntimeError):  # the convolution is one row taller than the state
        model(x)
    with pytest.warns(PaddingWarning, match=r"even on axes \[0\]"):
        from_torch(model.state_dict(), [6, 6])
    with pytest.warns(PaddingWarning):
        to_torch(from_torch(model.state_dict(), [6, 6], padding="same"))


@pytest.mark.filterwarnings("ignore:Using padding='same' with even kernel")  # torch's perf note
def test_even_kernel_with_torch_same_padding_matches():
    """PyTorch's padding="same" puts the extra zero after, as SAME: no warning, same numbers."""
    model = randomize(OtherConvLSTM(2, [3], [(2, 3)]).double(), seed=6)
    rng = np.random.default_rng(6)
    shape = [5, 6]
    x = rng.standard_normal((2, 4, 2, *shape))
    h, c = rng.standard_normal((2, 2, 3, *shape))
    outputs, states = model(t(x), [(t(h), t(c))])
    with warnings.catch_warnings():
        warnings.simplefilter("error", PaddingWarning)
        cell = from_torch(model.state_dict(), shape, prefix="cells.{layer}.gates.",
                          gate_order="ifgo", input_order="hx", padding="same")
    ref_outputs, ref_state = dynamic_rnn(cell, x, initial_state=(LSTMStateTuple(c, h),))
    assert_close(ref_outputs, n(outputs), "PyTorch", "outputs")
    assert_close(ref_state[0].c, n(states[0][1]), "PyTorch", "final c")


@pytest.mark.parametrize("kernels, shape", [([(3,), (5,)], [9]),
                                            ([(3, 1, 3), (1, 3, 3)], [4, 3, 5])])
def test_general_form_1d_and_3d(kernels, shape):
    """Another layout described in one line: blocks i f g o, cat([h, x]), padding "same"."""
    model = randomize(OtherConvLSTM(2, [3, 2], kernels).double(), seed=len(shape))
    rng = np.random.default_rng(len(shape))
    x = rng.standard_normal((2, 3, 2, *shape))
    initial = [tuple(rng.standard_normal((2, 2, f, *shape))) for f in (3, 2)]  # (h, c) per layer
    outputs, states = model(t(x), [(t(h), t(c)) for h, c in initial])

    multi = from_torch(model.state_dict(), shape, prefix="cells.{layer}.gates.",
                       gate_order="ifgo", input_order="hx", padding="same")
    ref_outputs, ref_state = dynamic_rnn(
        multi, x, initial_state=tuple(LSTMStateTuple(c, h) for h, c in initial))
    assert_close(ref_outputs, n(outputs), "PyTorch", "outputs")
    for layer, (h, c) in enumerate(states):
        assert_close(ref_state[layer].h, n(h), "PyTorch", f"layer {layer} final h")
        assert_close(ref_state[layer].c, n(c), "PyTorch", f"layer {layer} final c")


def test_to_torch_loads_into_the_models():
    """refconv cells (forget_bias 1, random biases) exported; both PyTorch models compute them."""
    rng = np.random.default_rng(8)
    shape = [5, 6]
    source = randomize(NdrplzConvLSTM(2, [3, 2], [(3, 3), (1, 5)]).double(), seed=8)
    multi = from_torch(source.state_dict(), shape)
    for cell in multi.cells:
        cell.forget_bias = 1.0  # not in the models: to_torch folds it into the forget bias

    model = NdrplzConvLSTM(2, [3, 2], [(3, 3), (1, 5)], batch_first=True,
                           return_all_layers=True).double()
    model.load_state_dict(to_torch(multi))
    x = rng.standard_normal((2, 4, 2, *shape))
    outputs, states = model(t(x))
    ref_outputs, ref_state = dynamic_rnn(multi, x)
    assert_close(ref_outputs, n(outputs[-1]), "PyTorch", "outputs (ndrplz)")
    assert_close(ref_state[1].c, n(states[1][1]), "PyTorch", "final c (ndrplz)")

    other = OtherConvLSTM(2, [3, 2], [(3, 3), (1, 5)]).double()
    other.load_state_dict(to_torch(multi, prefix="cells.{layer}.gates.", gate_order="ifgo",
                                   input_order="hx", padding="same"))
    zeros = [(torch.zeros(2, f, *shape, dtype=torch.float64),) * 2 for f in (3, 2)]
    outputs, states = other(t(x), zeros)
    assert_close(ref_outputs, n(outputs), "PyTorch", "outputs (other layout)")
    assert_close(ref_state[0].h, n(states[0][0]), "PyTorch", "final h (other layout)")


def test_ndrplz_without_bias_round_trip_and_every_layer_on_the_fast_path():
    """ndrplz with bias=False: from_torch, to_torch(bias=False) and load_state_dict (strict);
    its return_all_layers=True is dynamic_rnn(..., return_all_layers=True), no gates needed."""
    kernels = [(3, 3), (1, 3)]
    source = randomize(NdrplzConvLSTM(2, [3, 2], kernels, batch_first=False, bias=False,
                                      return_all_layers=True).double(), seed=10)
    multi = from_torch(source.state_dict(), [5, 6])
    model = NdrplzConvLSTM(2, [3, 2], kernels, batch_first=False, bias=False,
                           return_all_layers=True).double()
    with pytest.raises(RuntimeError, match="Unexpected key"):  # what to_torch wrote before
        model.load_state_dict(to_torch(multi))
    model.load_state_dict(to_torch(multi, bias=False))  # strict: every key, no other
    for name, value in source.state_dict().items():
        assert torch.equal(model.state_dict()[name], value)

    x = np.random.default_rng(10).standard_normal((4, 2, 2, 5, 6))  # [T, B, ...]: time major
    outputs, states = model(t(x))
    layers, ref_state = dynamic_rnn(multi, x, time_major=True, return_all_layers=True)
    for layer in range(2):
        # ndrplz returns [B, T, ...] even when batch_first=False; refconv's time_major [T, B, ...]
        assert_close(layers[layer].swapaxes(0, 1), n(outputs[layer]), "PyTorch",
                     f"layer {layer} outputs, batch_first=False")
        assert_close(ref_state[layer].c, n(states[layer][1]), "PyTorch", f"layer {layer} c")


def test_float32_and_bfloat16_weights_widen_exactly():
    """A float32 or bfloat16 model's weights arrive in float64 unchanged (widening is exact)."""
    model = randomize(NdrplzConvLSTM(2, [3], [(3, 3)]), seed=9)  # float32
    for dtype in (torch.float32, torch.bfloat16):
        state_dict = model.to(dtype).state_dict()
        cell = from_torch(state_dict, [4, 4]).cells[0]
        assert cell.params["kernel"].dtype == np.float64
        exported = to_torch(cell)["cell_list.0.conv.weight"]
        assert torch.equal(exported, state_dict["cell_list.0.conv.weight"].double())
