"""Write the committed regression anchor: a few golden cases, float64, with their SHA-256s.

Run once, from the repository root, only when refconv's numbers for a fixed seed
change on purpose (a new initializer, a fixed bug), and say why in the commit:

    python tests/data/golden/write_anchor.py

``tests/test_golden_anchor.py`` recomputes every case from the configuration
stored in ``manifest.json`` and holds today's code to these numbers at 1e-12.
The cases cover LSTM and GRU, 1-3 D, both layouts, layer norm and peepholes on
and off, sequence lengths (0, partial, full, and none: the default fused
ConvLSTM backward), both directions, and every gradient.
"""

import os

from refconv.golden import write_golden

HERE = os.path.dirname(os.path.abspath(__file__))

ANCHOR_CASES = [
    dict(name="lstm_2d_cl_ln_peep_lengths", cell="lstm", shape=[5, 4], filters=2, kernel=[3, 2],
         normalize=True, peephole=True, forget_bias=1.0, data_format="channels_last",
         bidirectional=False, sequence_length=[4, 0, 2]),
    dict(name="lstm_2d_cf_peep_full", cell="lstm", shape=[5, 4], filters=2, kernel=[3, 3],
         normalize=False, peephole=True, forget_bias=1.0, data_format="channels_first",
         bidirectional=False, sequence_length=None),
    dict(name="lstm_3d_cl_nopeep_lengths", cell="lstm", shape=[3, 4, 3], filters=2,
         kernel=[1, 3, 2], normalize=False, peephole=False, forget_bias=0.5,
         data_format="channels_last", bidirectional=False, sequence_length=[2, 4, 3]),
    dict(name="gru_1d_cf_ln_lengths", cell="gru", shape=[7], filters=3, kernel=[2],
         normalize=True, data_format="channels_first", bidirectional=False,
         sequence_length=[4, 4, 1]),
    dict(name="gru_2d_cl_full", cell="gru", shape=[4, 5], filters=2, kernel=[3, 3],
         normalize=False, data_format="channels_last", bidirectional=False,
         sequence_length=None),
    dict(name="lstm_1d_cl_ln_bidirectional", cell="lstm", shape=[6], filters=2, kernel=[3],
         normalize=True, peephole=True, forget_bias=1.0, data_format="channels_last",
         bidirectional=True, sequence_length=[4, 0, 2]),
    dict(name="gru_1d_cf_bidirectional", cell="gru", shape=[6], filters=2, kernel=[2],
         normalize=False, data_format="channels_first", bidirectional=True,
         sequence_length=[3, 4, 1]),
]
for seed, case in enumerate(ANCHOR_CASES):
    case.update(seed=1000 + seed, batch=3, timesteps=4, in_channels=2, dtype="float64")

if __name__ == "__main__":
    manifest = write_golden(HERE, cases=ANCHOR_CASES)
    total = sum(os.path.getsize(os.path.join(HERE, e["file"])) for e in manifest["cases"].values())
    print(f"{len(manifest['cases'])} cases, {total / 1e3:.0f} KB in {HERE}")
