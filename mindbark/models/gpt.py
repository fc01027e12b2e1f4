"""Bark's GPT (nanoGPT with split input/output vocabularies) and a static key/value cache.

The causal model serves the semantic and coarse stages. Keys and values are written by absolute position into a
preallocated cache of `block_size` slots, and attention always spans all slots under a mask, so a decode step has
one fixed shape and compiles once.
"""

import itertools

import mindspore as ms
import numpy as np
from mindspore import Parameter, Tensor, nn, ops

from ..config import GPTConfig
from ..jit import compiled
from ..layers import Embedding, LayerNorm, Linear

_NEG = float(np.finfo(np.float32).min)
_CACHE_IDS = itertools.count()


def attend(q, k, v, mask=None):
    """Scaled dot-product attention in fp32; `mask` (B, 1, Tq, Tk) True where a query may look."""
    scores = ops.BatchMatMul(transpose_b=True)(q, k).astype(ms.float32) / float(np.sqrt(q.shape[-1]))
    if mask is not None:
        scores = ops.select(mask, scores, ops.full_like(scores, _NEG))
    probs = ops.softmax(scores, axis=-1).astype(v.dtype)
    return ops.BatchMatMul()(probs, v)  # (B, nh, Tq, hs)


class SelfAttention(nn.Cell):
    def __init__(self, cfg: GPTConfig, dtype):
        super().__init__()
        self.n_head = cfg.n_head
        self.c_attn = Linear(cfg.n_embd, 3 * cfg.n_embd, bias=cfg.bias, dtype=dtype)
        self.c_proj = Linear(cfg.n_embd, cfg.n_embd, bias=cfg.bias, dtype=dtype)
        self.k_cache = None
        self.v_cache = None

    def construct(self, x, mask, cache_idx):
        b, t, c = x.shape
        qkv = self.c_attn(x).reshape(b, t, 3, self.n_head, c // self.n_head).transpose(2, 0, 3, 1, 4)
        q, k, v = qkv[0], qkv[1], qkv[2]  # (B, nh, T, hs)
        if self.k_cache is not None:
            k = ops.scatter_nd_update(self.k_cache, cache_idx, k)  # (B, nh, L, hs)
            v = ops.scatter_nd_update(self.v_cache, cache_idx, v)
        y = attend(q, k, v, mask)
        return self.c_proj(y.transpose(0, 2, 1, 3).reshape(b, t, c))


class MLP(nn.Cell):
    def __init__(self, cfg: GPTConfig, dtype):
        super().__init__()
        self.c_fc = Linear(cfg.n_embd, 4 * cfg.n_embd, bias=cfg.bias, dtype=dtype)
        self.c_proj = Linear(4 * cfg.n_embd, cfg.n_embd, bias=cfg.bias, dtype=dtype)

    def construct(self, x):
        return self.c_proj(ops.gelu(self.c_fc(x), approximate="none"))


class Block(nn.Cell):
    """Pre-LayerNorm transformer block. Bark's causal models drop LayerNorm biases with `bias`, the fine model
    keeps them always."""

    def __init__(self, cfg: GPTConfig, causal: bool, dtype):
        super().__init__()
        ln_bias = cfg.bias if causal else True
        self.ln_1 = LayerNorm(cfg.n_embd, bias=ln_bias, dtype=dtype)
        self.attn = SelfAttention(cfg, dtype)
        self.ln_2 = LayerNorm(cfg.n_embd, bias=ln_bias, dtype=dtype)
        self.mlp = MLP(cfg, dtype)

    def construct(self, x, mask, cache_idx):
        x = x + self.attn(self.ln_1(x), mask, cache_idx)
        return x + self.mlp(self.ln_2(x))


class GPT(nn.Cell):
    """Causal Bark GPT with a static KV cache.

    Args:
        cfg: shapes of the model.
        dtype: parameter and compute dtype (attention softmax runs in fp32).
    """

    def __init__(self, cfg: GPTConfig, dtype=ms.float32):
        super().__init__()
        self.config = cfg
        self.dtype = dtype
        self.wte = Embedding(cfg.input_vocab_size, cfg.n_embd, dtype)
        self.wpe = Embedding(cfg.block_size, cfg.n_embd, dtype)
        self.h = nn.CellList([Block(cfg, True, dtype) for _ in range(cfg.n_layer)])
        self.ln_f = LayerNorm(cfg.n_embd, bias=cfg.bias, dtype=dtype)
        self.lm_head = Linear(cfg.n_embd, cfg.output_vocab_size, bias=False, dtype=dtype)
        self.batch_size = 0
        self._caches = {}
        self._step = compiled(self.construct)

    def setup_cache(self, batch_size: int):
        """Make the KV cache hold `batch_size` sequences of up to `block_size` positions.

        One cache per batch size is allocated on first use and kept: MindSpore reuses a compiled graph for the
        same Cell and input shapes, bound to the Parameters it was compiled with, so a batch size must always
        find the same cache. Slots past a query's position are masked out and every slot up to it was written by
        the current sequence, so stale entries from an earlier sequence are never read.
        """
        if batch_size not in self._caches:
            cfg = self.config
            shape = (batch_size, cfg.n_head, cfg.block_size, cfg.n_embd // cfg.n_head)
            tag = f"{next(_CACHE_IDS)}.b{batch_size}"
            self._caches[batch_size] = [
                (Parameter(ops.zeros(shape, self.dtype), name=f"kv_cache.{tag}.{i}.k", requires_grad=False),
                 Parameter(ops.zeros(shape, self.dtype), name=f"kv_cache.{tag}.{i}.v", requires_grad=False))
                for i in range(cfg.n_layer)]
        for block, (k, v) in zip(self.h, self._caches[batch_size]):
            block.attn.k_cache, block.attn.v_cache = k, v
        self.batch_size = batch_size

    def embed(self, ids: Tensor) -> Tensor:
        """Token embeddings (B, T, C) of input ids (B, T)."""
        return self.wte(ids)

    def construct(self, x, start, key_mask, out_idx=None):
        """Logits (B, T, V) for embeddings `x` (B, T, C) placed at positions start..start+T-1.

        `key_mask` (B, block_size) is True for the cache slots a sequence may attend to (False for padding);
        causality is added from positions. With `out_idx` (a (1,) tensor), only that position's logits (B, 1, V)
        are computed.
        """
        b, t, _ = x.shape
        n_head, slots = self.config.n_head, self.config.block_size
        pos = start + ops.arange(t)  # (T,)
        x = x + self.wpe(pos).expand_dims(0)
        causal = ops.arange(slots).reshape(1, slots) <= pos.reshape(t, 1)  # (T, L)
        mask = ops.logical_and(causal.reshape(1, 1, t, slots), key_mask.reshape(b, 1, 1, slots))
        cache_idx = ops.stack([
            ops.arange(b).reshape(b, 1, 1).broadcast_to((b, n_head, t)),
            ops.arange(n_head).reshape(1, n_head, 1).broadcast_to((b, n_head, t)),
            pos.reshape(1, 1, t).broadcast_to((b, n_head, t)),
        ], axis=-1)  # (B, nh, T, 3): where each new key/value goes
        for block in self.h:
            x = block(x, mask, cache_idx)
        if out_idx is not None:
            x = ops.gather(x, out_idx, 1)
        return self.lm_head(self.ln_f(x))

    def forward(self, x: Tensor, start: int, key_mask: Tensor, out_idx: int | None = None) -> Tensor:
        """Run the compiled graph; `setup_cache` must have been called for this batch size.

        Args:
            x: input embeddings (B, T, C).
            start: absolute position of x[:, 0].
            key_mask: (B, block_size) bool, False for padding slots.
            out_idx: if given, return only the logits of x[:, out_idx] as (B, 1, V).
        """
        if x.shape[0] != self.batch_size:
            raise RuntimeError(f"call setup_cache({x.shape[0]}) before forward")
        idx = None if out_idx is None else Tensor([out_idx], ms.int64)
        return self._step(x, Tensor(start, ms.int64), key_mask, idx)
