"""Bark's GPT (nanoGPT with split input/output vocabularies) and a static key/value cache.

The causal model serves the semantic and coarse stages. Keys and values are written by absolute position into a
preallocated cache of `block_size` slots. A decode step attends to all slots under a mask, so it has one fixed
shape and compiles once; a prefill starts at position 0 and attends to its own keys only.
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


def attention_bias(mask):
    """A bool mask (True where a query may look) as the additive bias `attend` takes: 0 or float32's minimum."""
    return ops.select(mask, ops.zeros(mask.shape, ms.float32), ops.full(mask.shape, _NEG, dtype=ms.float32))


def attend(q, k, v, bias=None):
    """Scaled dot-product attention, softmax in fp32; `bias` (B, 1, Tq, Tk) from `attention_bias`.

    The scale goes on q (Tq x hs values) rather than on the scores (Tq x Tk), and masking is one add: on CPU every
    elementwise pass over the scores costs as much as a GEMM here.
    """
    scores = ops.BatchMatMul(transpose_b=True)(q * float(1 / np.sqrt(q.shape[-1])), k)  # (B, nh, Tq, Tk)
    if scores.dtype != ms.float32:
        scores = scores.astype(ms.float32)
    if bias is not None:
        scores = scores + bias
    probs = ops.softmax(scores, axis=-1)
    if probs.dtype != v.dtype:
        probs = probs.astype(v.dtype)
    return ops.BatchMatMul()(probs, v)  # (B, nh, Tq, hs)


class SelfAttention(nn.Cell):
    def __init__(self, cfg: GPTConfig, dtype):
        super().__init__()
        self.n_head = cfg.n_head
        self.c_attn = Linear(cfg.n_embd, 3 * cfg.n_embd, bias=cfg.bias, dtype=dtype)
        self.c_proj = Linear(cfg.n_embd, cfg.n_embd, bias=cfg.bias, dtype=dtype)
        self.k_cache = None
        self.v_cache = None
        # row writes into a flat (B * nh * L, hs) cache: on CPU ScatterNdUpdate copied the whole cache per step
        self.write = ops.ScatterUpdate()

    def construct(self, x, bias, cache_rows):
        b, t, c = x.shape
        hs = c // self.n_head
        qkv = self.c_attn(x).reshape(b, t, 3, self.n_head, hs).transpose(2, 0, 3, 1, 4)
        q, k, v = qkv[0], qkv[1], qkv[2]  # (B, nh, T, hs)
        if self.k_cache is not None:
            slots = self.k_cache.shape[0] // (b * self.n_head)
            k_all = self.write(self.k_cache, cache_rows, k.reshape(-1, hs))
            v_all = self.write(self.v_cache, cache_rows, v.reshape(-1, hs))
            if t == 1:  # a decode step reads the cache; a prefill (from position 0) has all its keys at hand
                k = k_all.reshape(b, self.n_head, slots, hs)
                v = v_all.reshape(b, self.n_head, slots, hs)
            else:
                k = ops.depend(k, k_all)
                v = ops.depend(v, v_all)
        y = attend(q, k, v, bias)
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

    def construct(self, x, bias, cache_rows):
        x = x + self.attn(self.ln_1(x), bias, cache_rows)
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
            shape = (batch_size * cfg.n_head * cfg.block_size, cfg.n_embd // cfg.n_head)  # (B * nh * L, hs)
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
        are computed. More than one position is a prefill and must start at 0.
        """
        b, t, _ = x.shape
        n_head, slots = self.config.n_head, self.config.block_size
        keys = slots if t == 1 else t  # the key positions attention reads: the cache, or the prefill's own
        pos = start + ops.arange(t)  # (T,)
        x = x + self.wpe(pos).expand_dims(0)
        causal = ops.arange(keys).reshape(1, keys) <= pos.reshape(t, 1)  # (T, keys)
        allowed = ops.logical_and(causal.reshape(1, 1, t, keys), key_mask[:, :keys].reshape(b, 1, 1, keys))
        bias = attention_bias(allowed)  # (B, 1, T, keys)
        # the flat cache row of each new key/value, in (B, nh, T) order
        cache_rows = (ops.arange(b * n_head).reshape(b * n_head, 1) * slots + pos.reshape(1, t)).reshape(-1)
        for block in self.h:
            x = block(x, bias, cache_rows)
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
        if x.shape[1] > 1 and start != 0:
            raise ValueError(f"a prefill of {x.shape[1]} positions must start at 0, not {start}")
        idx = None if out_idx is None else Tensor([out_idx], ms.int64)
        return self._step(x, Tensor(start, ms.int64), key_mask, idx)
