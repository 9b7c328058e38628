"""refconv: convolutional LSTM and GRU cells in plain NumPy/SciPy, a reference and a textbook.

The cells compute what TensorFlow 1's seed ``ConvLSTMCell``/``ConvGRUCell``
mean, with the article's names for the LSTM's parts: ``z`` (fusion of x and
h), ``z_i`` (input, "memory" gate), ``z_f`` (forget gate), ``z_o`` (output gate),
``c`` (cell state), ``h`` (hidden state).
"""

from .activations import hard_sigmoid, hard_sigmoid_keras2, sigmoid
from .conv import conv_nd, conv_nd_naive, conv_output_size, conv_padding
from .gru import ConvGRUCell, GRUCache, gru_step
from .layer_norm import layer_norm
from .lstm import ConvLSTMCell, LSTMCache, LSTMStateTuple, lstm_step
from .rnn import MultiRNNCell, bidirectional_dynamic_rnn, dynamic_rnn, reverse_sequence

__version__ = "0.1.0"

__all__ = [
    "ConvLSTMCell", "ConvGRUCell", "MultiRNNCell", "LSTMStateTuple",
    "dynamic_rnn", "bidirectional_dynamic_rnn", "reverse_sequence",
    "conv_nd", "conv_nd_naive", "conv_output_size", "conv_padding",
    "layer_norm", "sigmoid", "hard_sigmoid", "hard_sigmoid_keras2",
    "lstm_step", "gru_step", "LSTMCache", "GRUCache",
]
