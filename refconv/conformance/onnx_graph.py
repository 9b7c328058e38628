"""Finding a ConvLSTM's gates in an ONNX graph, by what they are (needs ``onnx``).

Both PyTorch exporters unroll the time loop into one ``Conv -> Split(4)`` per
layer and step. :func:`locate` follows each of the four blocks through
elementwise ops with constant operands (a forget bias ``Add``, a ``Mul``, a
``Cast``, a ``Clip``) to its activation, and finds each step's ``c`` and
``h`` from the gates' products; :func:`instrument` makes them graph outputs,
which ONNX Runtime cannot fuse away.
"""

from onnx import TensorProto, helper, numpy_helper

__all__ = ["locate", "not_exposed", "gate_path", "instrument", "NDRPLZ_BLOCKS", "PASS_THROUGH",
           "ACTIVATIONS"]

# ndrplz's blocks of the convolution's output channels, in refconv's names.
NDRPLZ_BLOCKS = ("z_i", "z_f", "z_o", "z")  # i, f, o, g

# Ops a gate's block may pass through on its way to the activation, each with constants as
# its other inputs: a forget bias (Add), a scale (Mul, Div), a dtype change (Cast), a clamp.
PASS_THROUGH = ("Add", "Sub", "Mul", "Div", "Cast", "Clip", "Identity")
# What a gate's activation can be in ONNX (a planted or ported model may use any of them).
ACTIVATIONS = ("Sigmoid", "Tanh", "HardSigmoid", "Relu", "LeakyRelu", "Elu", "Selu",
               "Softsign", "Softplus", "HardSwish", "Gelu")


def locate(model, blocks=NDRPLZ_BLOCKS):
    """Each layer's and step's tensors, by refconv's names: ``{(layer, step): {name: tensor}}``.

    A step is a ``Split`` into four of a ``Conv``'s output; the layer is the
    ``Conv``'s weight (numbered in order of first use), the step the order of
    that weight's splits in the graph. ``blocks`` names the split's outputs in
    order (ndrplz: i, f, o, g = z_i, z_f, z_o, z); each gate is the activation
    its block reaches through elementwise ops with constant operands
    (:data:`PASS_THROUGH`: a forget bias ``Add``, a ``Mul``, a ``Cast``, a
    ``Clip``), found by :func:`gate_path`; a block that reaches none is left out
    (:func:`not_exposed` names it). ``c`` is the ``Add`` fed by the products of
    the gates, ``h`` the ``Mul`` of ``tanh(c)``; where the graph is not of that
    form they are left out.
    """
    if sorted(blocks) != sorted(("z", "z_i", "z_f", "z_o")):
        raise ValueError(f"blocks: expected z, z_i, z_f, z_o in some order, got {blocks}")
    graph = _Graph(model)
    found = {}
    for layer, step, split in graph.steps():
        names = {}
        for name, block in zip(blocks, split.output):
            path = gate_path(graph, block)
            if path is not None:
                names[name] = path[-1].output[0]
        names.update(_state(names, graph.readers))
        found[(layer, step)] = names
    return found


def not_exposed(located):
    """``["layer0 z_f", ...]``: the gates :func:`locate` found at no step of their layer."""
    layers = sorted({layer for layer, _ in located})
    return [f"layer{layer} {name}" for layer in layers for name in ("z", "z_i", "z_f", "z_o")
            if not any(name in names for (l, _), names in located.items() if l == layer)]


class _Graph:
    """An ONNX graph's nodes by what they produce and read, and its constants."""

    def __init__(self, model):
        self.nodes = list(model.graph.node)
        self.producer = {out: node for node in self.nodes for out in node.output}
        self.readers = {}
        for node in self.nodes:
            for name in node.input:
                self.readers.setdefault(name, []).append(node)
        self.initializers = {init.name: init for init in model.graph.initializer}

    def constant(self, name):
        """The value of tensor ``name`` if the graph fixes it (an initializer, a Constant node,
        through Cast/Identity), else None."""
        while True:
            if name in self.initializers:
                return numpy_helper.to_array(self.initializers[name])
            node = self.producer.get(name)
            if node is None:
                return None
            if node.op_type == "Constant":
                return numpy_helper.to_array(node.attribute[0].t) \
                    if node.attribute and node.attribute[0].name == "value" else None
            if node.op_type not in ("Cast", "Identity"):
                return None
            name = node.input[0]

    def steps(self):
        """``(layer, step, split node)`` for every ``Conv -> Split(4)`` of the graph."""
        weights, counts = [], {}
        for node in self.nodes:
            if node.op_type != "Split" or len(node.output) != 4:
                continue
            conv = self.producer.get(node.input[0])
            if conv is None or conv.op_type not in ("Conv", "ConvInteger"):
                continue
            weight = _source(conv.input[1], self.producer)
            if weight not in weights:
                weights.append(weight)
            layer = weights.index(weight)
            counts[layer] = counts.get(layer, -1) + 1
            yield layer, counts[layer], node


def gate_path(graph, block):
    """The nodes from a gate's ``block`` to its activation: ``[op, ..., activation]``, or None.

    Each step follows the one node reading the tensor; an op of :data:`PASS_THROUGH` is
    followed only when its other inputs are constants (a ``Mul`` by another gate is the
    cell's product, not part of the gate). None when the block is read by more than one
    node, or reaches an op that is neither.
    """
    path, tensor = [], block
    while len(path) <= 16:
        readers = graph.readers.get(tensor, [])
        if len(readers) != 1:
            return None
        node = readers[0]
        path.append(node)
        if node.op_type in ACTIVATIONS:
            return path
        others = [name for name in node.input[1:] if name] if node.input[0] == tensor else \
            [name for name in node.input if name and name != tensor]
        if node.op_type not in PASS_THROUGH or \
                any(graph.constant(name) is None for name in others):
            return None
        tensor = node.output[0]
    return None


def _source(name, producer):
    """The initializer behind a weight input, through Cast, Identity or DequantizeLinear nodes."""
    node = producer.get(name)
    while node is not None and node.op_type in ("Cast", "Identity", "DequantizeLinear"):
        name = node.input[0]
        node = producer.get(name)
    return name


def _state(gates, readers):
    """``c`` (the Add of two products of gates) and ``h`` (the Mul reading tanh(c)) of one step."""
    products = {m.output[0] for g in gates.values() for m in readers.get(g, [])
                if m.op_type == "Mul"}
    adds = {a.output[0]: a for p in products for a in readers.get(p, [])
            if a.op_type == "Add" and all(i in products for i in a.input)}
    if len(adds) != 1:
        return {}
    c = next(iter(adds))
    squashed = [t.output[0] for t in readers.get(c, []) if t.op_type == "Tanh"]
    h = [m.output[0] for s in squashed for m in readers.get(s, []) if m.op_type == "Mul"]
    return {"c": c, "h": h[0]} if len(h) == 1 else {"c": c}


def instrument(model, located=None):
    """A copy of ``model`` whose graph also outputs every located tensor (see :func:`locate`)."""
    located = locate(model) if located is None else located
    copy = type(model)()
    copy.CopyFrom(model)
    existing = {o.name for o in copy.graph.output}
    for names in located.values():
        for tensor in names.values():
            if tensor not in existing:
                copy.graph.output.append(helper.make_tensor_value_info(tensor, TensorProto.FLOAT,
                                                                       None))
                existing.add(tensor)
    return copy
