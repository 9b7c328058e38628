"""refconv: convolutional LSTM and GRU cells in plain NumPy/SciPy, a reference and a textbook.

The cells compute what TensorFlow 1's seed ``ConvLSTMCell``/``ConvGRUCell``
mean, with the article's names for the LSTM's parts: ``z`` (fusion of x and
h), ``z_i`` (input, "memory" gate), ``z_f`` (forget gate), ``z_o`` (output gate),
``c`` (cell state), ``h`` (hidden state).
"""

__version__ = "0.1.0"  # before the imports: refconv.golden records it

from .activations import hard_sigmoid, hard_sigmoid_keras2, sigmoid
from .bptt import (BidirectionalRNNGradients, RNNGradients, bidirectional_dynamic_rnn_grad,
                   dynamic_rnn_grad)
from .conv import (conv_nd, conv_nd_backward, conv_nd_backward_naive, conv_nd_naive,
                   conv_output_size, conv_padding)
from . import dispatch, fast, interop
from .compare import Comparison, compare
from .golden import load_case, write_golden
from .gradcheck import GradcheckReport, gradcheck
from .gru import ConvGRUCell, GRUCache, gru_step, gru_step_backward
from .layer_norm import layer_norm, layer_norm_backward
from .lstm import ConvLSTMCell, LSTMCache, LSTMStateTuple, lstm_step, lstm_step_backward
from .rnn import MultiRNNCell, bidirectional_dynamic_rnn, dynamic_rnn, reverse_sequence
from .stream import stream_bidirectional_rnn, stream_rnn

__all__ = [
    "ConvLSTMCell", "ConvGRUCell", "MultiRNNCell", "LSTMStateTuple",
    "dynamic_rnn", "bidirectional_dynamic_rnn", "reverse_sequence",
    "stream_rnn", "stream_bidirectional_rnn",
    "conv_nd", "conv_nd_naive", "conv_output_size", "conv_padding",
    "layer_norm", "sigmoid", "hard_sigmoid", "hard_sigmoid_keras2",
    "lstm_step", "gru_step", "LSTMCache", "GRUCache",
    "dynamic_rnn_grad", "bidirectional_dynamic_rnn_grad", "RNNGradients",
    "BidirectionalRNNGradients", "conv_nd_backward", "conv_nd_backward_naive",
    "layer_norm_backward", "lstm_step_backward", "gru_step_backward",
    "gradcheck", "GradcheckReport", "compare", "Comparison", "write_golden", "load_case",
]
