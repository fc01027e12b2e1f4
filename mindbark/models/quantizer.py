"""The community's HuBERT-to-semantic quantizer (`CustomTokenizer` of bark-voice-cloning-HuBERT-quantizer, MIT):
HuBERT base's layer-9 features to Bark's semantic ids, one per frame.

A 2-layer LSTM (768 -> 1024), for version-1 checkpoints a linear layer to 4096, and a linear layer to the 10 000
semantic ids; the id is the argmax (the published module's log-softmax does not move it). Names follow its state
dict (`lstm.weight_ih_l0`, `fc.weight`), under mindbark's LSTM cell (`lstm.lstm.`).
"""

import mindspore as ms
import numpy as np
from mindspore import Tensor, nn, ops

from ..config import QuantizerConfig
from ..jit import compiled
from ..layers import LSTM, Linear

HUBERT_LAYER = 9  # the HuBERT layer the published quantizers were trained on


class SemanticQuantizer(nn.Cell):
    """HuBERT features (1, T, input_size) to semantic ids (1, T).

    Args:
        cfg: the quantizer's sizes and version.
        dtype: parameter dtype.
    """

    LAYERS = 2

    def __init__(self, cfg: QuantizerConfig, dtype=ms.float32):
        super().__init__()
        self.config = cfg
        self.dtype = dtype
        self.lstm = LSTM(cfg.input_size, cfg.hidden_size, self.LAYERS)
        self.intermediate = Linear(cfg.hidden_size, cfg.INTERMEDIATE, dtype=dtype) if cfg.version == 1 else None
        self.fc = Linear(cfg.INTERMEDIATE if cfg.version == 1 else cfg.hidden_size, cfg.output_size, dtype=dtype)
        self.argmax = ops.Argmax(axis=-1, output_type=ms.int32)
        self._step = compiled(self.construct, self, "quantizer")

    def construct(self, x):
        b = x.shape[0]
        zeros = ops.zeros((self.LAYERS, b, self.config.hidden_size), x.dtype)
        y, _, _ = self.lstm.run(x, zeros, zeros)
        if self.intermediate is not None:
            y = self.intermediate(y)
        return self.argmax(self.fc(y))

    def ids(self, features: Tensor, n: int) -> np.ndarray:
        """Semantic ids (n,) of the first n frames of features (1, T, input_size); the LSTM runs forward, so later
        (padding) frames change nothing before them."""
        return self._step(features).asnumpy()[0, :n].astype(np.int64)
