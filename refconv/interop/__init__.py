"""Weights in and out of other frameworks' ConvLSTMs: Keras, PyTorch, TensorFlow 1, Flax.

An engineer who wants to know whether their framework computes a ConvLSTM
right loads its weights here, runs refconv in float64 on the same inputs, and
compares. Every importer returns refconv cells with ``params`` set; every
exporter is its importer's inverse. refconv never imports a framework: the few
functions that hand back a framework's objects (:func:`to_torch`,
:func:`load_tf1_checkpoint`) import it when called.

The layouts (SPEC, last table), for ``C_in`` input channels, ``F`` filters and
a kernel ``k`` (N ints)::

    framework           weights                                      gate blocks
    ------------------  -------------------------------------------  ----------------
    refconv, seed, TF1  kernel [*k, C_in + F, 4F], bias [4F]         z, z_i, z_f, z_o
    Keras 3 (and 2)     kernel [*k, C_in, 4F],                       i, f, c, o
                        recurrent_kernel [*k, F, 4F], bias [4F]
    PyTorch (ndrplz)    cell_list.N.conv.weight [4F, C_in + F, *k],  i, f, o, g
                        cell_list.N.conv.bias [4F]
    Flax (JAX)          ih.kernel [*k, C_in, 4F], ih.bias [4F],      i, g, f, o
                        hh.kernel [*k, F, 4F], hh.bias [4F]

One module per framework (:mod:`.keras`, :mod:`.torch`, :mod:`.tf1`,
:mod:`.flax`), each named after it, and what they share in :mod:`._common`.

Only refconv and the seed have peepholes, layer normalisation and a
``forget_bias`` option; Keras and PyTorch keep the forget bias in the bias
values, Flax adds a fixed 1 at every step. PyTorch is channels first and
ndrplz pads ``k // 2`` on both sides.

Every framework's candidate block (Keras's ``c``, PyTorch's and Flax's ``g``) is refconv's
``z``: the fusion of x and h, squashed by ``activation`` (tanh), not a gate.
Keras splits refconv's one kernel in two: ``conv(concat([x, h]), kernel)``
equals ``conv(x, kernel[..., :C_in, :]) + conv(h, kernel[..., C_in:, :])``,
so the two layouts hold the same numbers.

States: refconv (like TF1) has ``LSTMStateTuple(c, h)``; Keras returns
``[h, c]`` (``outputs, h, c = layer(x)`` with ``return_state=True``) and takes
``initial_state=[h, c]``; ndrplz's cell takes ``[h, c]`` and returns ``(h, c)``.
:func:`state_from_keras` and :func:`state_to_keras` swap them. Flax's carry is
``(c, h)``, refconv's order.
"""

from ._common import InteropWarning, PaddingWarning
from .flax import flax_rnn, from_flax, to_flax
from .keras import from_keras, keras_version_of, state_from_keras, state_to_keras, to_keras
from .tf1 import from_tf1, load_tf1_checkpoint, to_tf1
from .torch import from_torch, to_torch

__all__ = ["from_keras", "to_keras", "state_from_keras", "state_to_keras",
           "from_torch", "to_torch", "from_tf1", "to_tf1", "load_tf1_checkpoint",
           "from_flax", "to_flax", "flax_rnn", "keras_version_of",
           "InteropWarning", "PaddingWarning"]
