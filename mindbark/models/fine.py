"""Bark's fine model: a non-causal GPT that fills codebook `n` from the sum of the embeddings of codebooks 0..n."""

import mindspore as ms
from mindspore import Tensor, nn, ops

from ..config import GPTConfig
from ..graph_ops import arange, split
from ..jit import compiled
from ..layers import Embedding, LayerNorm, Linear, linear
from .gpt import Block


class FineGPT(nn.Cell):
    """Non-causal GPT with one embedding per codebook and one LM head per predicted codebook.

    With `tie_word_embeddings` (Bark's checkpoints), head `i` is the embedding table of codebook `i + n_codes_given`,
    so no separate head weights exist.

    Args:
        cfg: shapes of the model.
        dtype: parameter and compute dtype.
        weights: how the blocks' projections are stored (`weight_formats`); the heads are embedding tables, fp32.
    """

    def __init__(self, cfg: GPTConfig, dtype=ms.float32, weights: str = "fp32"):
        super().__init__()
        self.config = cfg
        self.wtes = nn.CellList([Embedding(cfg.input_vocab_size, cfg.n_embd, dtype) for _ in range(cfg.n_codes_total)])
        self.wpe = Embedding(cfg.block_size, cfg.n_embd, dtype)
        self.h = nn.CellList([Block(cfg, False, dtype, weights) for _ in range(cfg.n_layer)])
        self.ln_f = LayerNorm(cfg.n_embd, dtype=dtype)
        n_heads = cfg.n_codes_total - cfg.n_codes_given
        self.lm_heads = None if cfg.tie_word_embeddings else nn.CellList(
            [Linear(cfg.n_embd, cfg.output_vocab_size, bias=False, dtype=dtype) for _ in range(n_heads)])
        self._step = compiled(self.construct, self, "fine")

    def construct(self, codes, codebook_idx):
        """Logits (B, T, V) for codebook `codebook_idx` (a scalar tensor) given codes (B, T, n_codes_total)."""
        b, t, n = codes.shape
        books = split(codes, 1, axis=2)
        x = self.wtes[0](books[0].reshape(b, t))
        for i in range(1, n):
            # codebooks above the predicted one are not seen; the factor is tiled, as a broadcasting multiply
            # would keep several times its output for the graph's life (see gpt.py)
            keep = ops.tile((codebook_idx >= i).astype(x.dtype).reshape(1, 1, 1), (b, t, x.shape[2]))
            x = x + self.wtes[i](books[i].reshape(b, t)) * keep
        x = x + self.wpe(ops.tile(arange(t).reshape(1, t), (b, 1)))
        for block in self.h:
            x, _, _ = block(x)
        x = self.ln_f(x)
        given = self.config.n_codes_given
        if self.lm_heads is None:
            heads = ops.stack([self.wtes[i].weight for i in range(given, n)])  # (n - given, V, C)
        else:
            heads = ops.stack([head.weight for head in self.lm_heads])
        w = ops.gather(heads, codebook_idx - given, 0)  # (V, C)
        return linear(x, w)

    def forward(self, codes: Tensor, codebook_idx: int) -> Tensor:
        """Run the compiled graph for one codebook index (n_codes_given <= idx < n_codes_total)."""
        cfg = self.config
        if not cfg.n_codes_given <= codebook_idx < cfg.n_codes_total:
            raise ValueError(f"codebook_idx must be in [{cfg.n_codes_given}, {cfg.n_codes_total}), got {codebook_idx}")
        return self._step(codes, Tensor(codebook_idx, ms.int64))
