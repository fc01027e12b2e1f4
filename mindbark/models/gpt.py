"""Bark's GPT (nanoGPT with split input/output vocabularies) and its key/value cache.

The causal model serves the semantic and coarse stages, through two compiled graphs in gpt-fast's shape: a prompt
chunk places T new positions at start..start+T-1, attending causally to each other and to the positions cached
before `start` (one dynamic-shape graph for every past length, and for every chunk length where its attention is
mindbark's kernel: a whole prompt then runs as one chunk, unpadded); a decode step places one new position per
sequence and attends to the whole cache (static shapes: decoding compiles once per batch size).

The cache lives in host memory and is handed to the graph as inputs, which MindSpore reads without copying; the
graph returns the new keys and values and the host writes them in place. Writing a cache Parameter inside the
graph instead made MindSpore snapshot the whole cache on every step that also read it.

A decode step is bound by reading the weights. Where mindbark's CPU kernels apply, the whole step is one kernel
(`kernels/decode_step.cc`: the embeddings, the projections and the LM head streamed row by row, attention over the
allowed cached positions only), which returns the logits and the new keys and values as one row per sequence. Prompt
chunks and the fine model's passes stay GEMMs, with each layer's attention one kernel (`kernels/attention.cc`) that
takes the heads straight from the qkv projection.

MindSpore's CPU kernels for Transpose, broadcasting binary ops and GeLU keep private buffers of several times
their output for the life of a compiled graph, which made every graph hold gigabytes. Heads are therefore split
and merged with split/concat, biases go through BiasAdd, masks are tiled to full shape once per graph, and GELU is
written with erf.
"""

import mindspore as ms
import numpy as np
from mindspore import Tensor, nn, ops
from mindspore.ops import DataType

from .. import kernels
from ..config import GPTConfig
from ..graph_ops import arange, concat, softmax, split
from ..jit import compiled
from ..layers import GELU, Embedding, LayerNorm, Linear, linear
from ..memory import zero_pages

_MAX = float(np.finfo(np.float32).max)
PREFILL_CHUNK = 128  # positions per prompt chunk where its graph has a static length (no attention kernel)


def attention_bias(mask, n_head: int):
    """A bool mask (B, 1, Tq, Tk), True where a query may look, as an additive bias: 0 or float32's minimum,
    tiled to (B, n_head, Tq, Tk) so adding it to the scores broadcasts nothing."""
    bias = (mask.astype(ms.float32) - 1.0) * _MAX
    return ops.tile(bias, (1, n_head, 1, 1))


def _scores(q, k):
    s = ops.BatchMatMul(transpose_b=True)(q, k)  # (B, nh, Tq, Tk)
    return s if s.dtype == ms.float32 else s.astype(ms.float32)


def attend(q, k, v, bias=None, k_past=None, v_past=None, past_bias=None):
    """Scaled dot-product attention over (B, nh, T, hs) tensors, softmax in fp32.

    With `k_past`/`v_past` (B, nh, L, hs) the queries also see those keys, under `past_bias`; one softmax spans
    both. The scale goes on q (Tq x hs values) rather than on the scores (Tq x Tk): on CPU every elementwise pass
    over the scores costs as much as a GEMM here.
    """
    q = q * float(1 / np.sqrt(q.shape[-1]))
    scores = _scores(q, k)
    if bias is not None:
        scores = scores + bias
    if k_past is not None:
        scores = concat([_scores(q, k_past) + past_bias, scores], axis=-1)
    probs = softmax(scores)
    if probs.dtype != v.dtype:
        probs = probs.astype(v.dtype)
    if k_past is None:
        return ops.BatchMatMul()(probs, v)  # (B, nh, Tq, hs)
    past = k_past.shape[2]
    return ops.BatchMatMul()(probs[..., :past], v_past) + ops.BatchMatMul()(probs[..., past:], v)


def split_heads(x, n: int, head_size: int):
    """(B, T, n * hs) -> (B, n, T, hs) without a Transpose kernel."""
    b, t, _ = x.shape
    if t == 1:
        return x.reshape(b, n, 1, head_size)
    return concat(split(x, head_size, axis=2), axis=1).reshape(b, n, t, head_size)


def merge_heads(y):
    """(B, nh, T, hs) -> (B, T, nh * hs) without a Transpose kernel."""
    b, n, t, hs = y.shape
    if t == 1:
        return y.reshape(b, 1, n * hs)
    return concat(split(y, 1, axis=1), axis=3).reshape(b, t, n * hs)


def decode_step_kernel(dtype, n_layer: int):
    """mindbark's kernel for a whole decode step of a causal GPT of `n_layer` blocks (`kernels/decode_step.cc`),
    where it applies: fp32 on MindSpore's CPU backend; else None. It takes the new positions as ids or as
    embeddings, and projection weights in any of `weight_formats`' formats."""
    if dtype != ms.float32:
        return None
    f32, i32, i64, u16, u8 = (DataType.F32_Default, DataType.I32_Default, DataType.I64_Default, DataType.U16_Default,
                              DataType.U8_Default)
    formats = []
    for x in (i32, f32):
        for w in (f32, u16, u8):
            block = (f32, f32, w, f32, w, f32, f32, f32, w, f32, w, f32)
            formats.append((x, f32, f32, i64, DataType.BOOL_Default, f32, f32, w, f32, *block * n_layer, f32, f32))
    return kernels.custom_op("DecodeStep", 9 + len(block) * n_layer + 1, formats)


def attention_kernel(causal: bool, dtype):
    """mindbark's kernel for the attention of many query rows (`kernels/attention.cc`), where it applies: fp32 on
    MindSpore's CPU backend; else None. Causal: `CausalAttention`, over a cache's past too; else `FullAttention`."""
    if dtype != ms.float32:
        return None
    return kernels.custom_op("CausalAttention", 5, sgemm=True) if causal else \
        kernels.custom_op("FullAttention", 2, sgemm=True)


class SelfAttention(nn.Cell):
    def __init__(self, cfg: GPTConfig, causal: bool, dtype, weights: str):
        super().__init__()
        self.n_head = cfg.n_head
        self.c_attn = Linear(cfg.n_embd, 3 * cfg.n_embd, bias=cfg.bias, dtype=dtype, weights=weights)
        self.c_proj = Linear(cfg.n_embd, cfg.n_embd, bias=cfg.bias, dtype=dtype, weights=weights)
        self.causal = causal
        self.kernel = attention_kernel(causal, dtype)
        self.heads = Tensor(np.zeros((cfg.n_head,), np.float32))  # FullAttention reads the head count off it

    def construct(self, x, bias=None, past=None, past_bias=None):
        """Output (B, T, C), and the new keys and values (B, nh, T, hs) each (None from the non-causal kernel).

        Where mindbark's kernel applies (`attention_kernel`), a causal model's `bias` is the (B, T) fp32 map of the
        new keys a query may look at (1, at or before its own position) and `past_bias` the (B, L) one of the past
        slots."""
        b, t, c = x.shape
        n = self.n_head
        qkv = self.c_attn(x)  # (B, T, 3 C)
        if self.kernel is not None and not self.causal:
            return self.c_proj(self.kernel(qkv, self.heads)), None, None
        if self.kernel is not None and past is not None:
            y = self.kernel(qkv, past[0], past[1], past_bias, bias)
            # the cache's keys and values in head layout, each head's columns taken once; T may be dynamic here,
            # so not `split_heads`, which branches on it
            heads = split(qkv, c // n, axis=2)  # q, k, v heads (B, T, hs) each
            k = concat(heads[n:2 * n], axis=1).reshape(b, n, t, c // n)
            v = concat(heads[2 * n:], axis=1).reshape(b, n, t, c // n)
            return self.c_proj(y), k, v
        qkv_heads = split_heads(qkv, 3 * n, c // n)  # (B, 3 nh, T, hs)
        q, k, v = qkv_heads[:, :n], qkv_heads[:, n:2 * n], qkv_heads[:, 2 * n:]
        k_past, v_past = (None, None) if past is None else past
        y = attend(q, k, v, bias, k_past, v_past, past_bias)
        return self.c_proj(merge_heads(y)), k, v


class MLP(nn.Cell):
    def __init__(self, cfg: GPTConfig, dtype, weights: str):
        super().__init__()
        self.c_fc = Linear(cfg.n_embd, 4 * cfg.n_embd, bias=cfg.bias, dtype=dtype, weights=weights)
        self.c_proj = Linear(4 * cfg.n_embd, cfg.n_embd, bias=cfg.bias, dtype=dtype, weights=weights)
        self.gelu = GELU()

    def construct(self, x):
        return self.c_proj(self.gelu(self.c_fc(x)))


class Block(nn.Cell):
    """Pre-LayerNorm transformer block. Bark's causal models drop LayerNorm biases with `bias`, the fine model
    keeps them always. `weights`: the projections' storage format (`weight_formats`)."""

    # one graph for every block, inlined after it is analysed: without it the compiler analyses each of the
    # n_layer copies on its own. Its default policy (a called subgraph) is Ascend-only; "front" works on every
    # backend.
    @ms.lazy_inline(policy="front")
    def __init__(self, cfg: GPTConfig, causal: bool, dtype, weights: str = "fp32"):
        super().__init__()
        ln_bias = cfg.bias if causal else True
        self.ln_1 = LayerNorm(cfg.n_embd, bias=ln_bias, dtype=dtype)
        self.attn = SelfAttention(cfg, causal, dtype, weights)
        self.ln_2 = LayerNorm(cfg.n_embd, bias=ln_bias, dtype=dtype)
        self.mlp = MLP(cfg, dtype, weights)

    def construct(self, x, bias=None, past=None, past_bias=None):
        """Output (B, T, C), and this layer's new keys and values."""
        y, k, v = self.attn(self.ln_1(x), bias, past, past_bias)
        x = x + y
        return x + self.mlp(self.ln_2(x)), k, v


def _or(value, default):
    return default if value is None else value


_NP_DTYPES = {ms.float32: np.float32, ms.float16: np.float16}


class KVCache:
    """Keys and values of `batch` sequences: one host array (2 * n_layer, B, nh, block_size, hs).

    `inputs` are zero-copy Tensor views of it, layer by layer (keys, values), for the graph to read; `tensor` is
    one over all of it.
    """

    def __init__(self, cfg: GPTConfig, batch: int, dtype):
        if dtype not in _NP_DTYPES:
            raise ValueError(f"the KV cache has no host dtype for {dtype}; use float32 or float16")
        hs = cfg.n_embd // cfg.n_head
        # np.zeros maps untouched pages lazily: memory is spent on the positions a sequence reaches
        self.data = np.zeros((2 * cfg.n_layer, batch, cfg.n_head, cfg.block_size, hs), _NP_DTYPES[dtype])
        self.inputs = tuple(Tensor.from_numpy(self.data[i]) for i in range(2 * cfg.n_layer))
        self.tensor = Tensor.from_numpy(self.data)  # all of it at once, for the decode step's kernel
        self.batch = batch

    def clear(self):
        """Forget every position. Attention spans all block_size slots (masked), so slots a sequence never
        reaches still cost a read per step: as zero pages they come from cache, not DRAM."""
        zero_pages(self.data)

    def whole(self) -> tuple:
        """Every layer's keys and values, all block_size slots, as the graph's inputs (zero-copy views).
        `mutable`: a cache of a new batch size must not compile the graph again."""
        return ms.mutable(self.inputs)

    def prefix(self, n: int) -> tuple:
        """Every layer's keys and values at positions 0..n-1, copied: the cache keeps positions inside each head,
        so a prefix is not contiguous, and a prompt chunk that reads only the positions before it costs less than
        one that reads all block_size slots masked."""
        data = np.ascontiguousarray(self.data[:, :, :, :n])
        return ms.mutable(tuple(Tensor.from_numpy(data[i]) for i in range(data.shape[0])))

    def write(self, new: np.ndarray, start: int):
        """Store new keys and values (2 * n_layer, B, nh, T, hs) at positions start..start+T-1."""
        self.data[:, :, :, start:start + new.shape[3]] = new

    def write_rows(self, rows: np.ndarray, start: int):
        """Store one position's keys and values as the decode step's kernel gives them, (B, 1, 2 * n_layer * C):
        per sequence, each layer's key, then value, heads side by side."""
        layers2, b, heads, _, hs = self.data.shape
        self.data[:, :, :, start] = rows.reshape(b, layers2, heads, hs).transpose(1, 0, 2, 3)


class KVCaches:
    """KV caches by layer shape, shared by every GPT built with the same instance.

    The semantic and coarse models never run at once and have the same layer shapes in both Bark sizes, so one
    cache serves both. Only the last batch size asked for is kept for each shape.
    """

    def __init__(self):
        self._caches = {}

    def get(self, cfg: GPTConfig, batch: int, dtype) -> KVCache:
        key = (cfg.n_layer, cfg.n_head, cfg.n_embd, cfg.block_size, dtype)
        cache = self._caches.get(key)
        if cache is None or cache.batch != batch:
            cache = self._caches[key] = KVCache(cfg, batch, dtype)
        return cache


class GPT(nn.Cell):
    """Causal Bark GPT with a KV cache, run through two compiled graphs: `prompt_chunk` (several new positions
    over the cached ones before them) and `decode_step` (one new position per sequence over the whole cache).

    Args:
        cfg: shapes of the model.
        dtype: parameter and compute dtype (attention softmax runs in fp32).
        caches: where its KV caches come from; pass one `KVCaches` to models that may share them.
        weights: how the projections and the LM head are stored (`weight_formats`: "fp32", "bf16", "int8").
    """

    def __init__(self, cfg: GPTConfig, dtype=ms.float32, caches: KVCaches | None = None, weights: str = "fp32"):
        super().__init__()
        self.config = cfg
        self.dtype = dtype
        self.wte = Embedding(cfg.input_vocab_size, cfg.n_embd, dtype)
        self.wpe = Embedding(cfg.block_size, cfg.n_embd, dtype)
        self.h = nn.CellList([Block(cfg, True, dtype, weights) for _ in range(cfg.n_layer)])
        self.ln_f = LayerNorm(cfg.n_embd, bias=cfg.bias, dtype=dtype)
        self.lm_head = Linear(cfg.n_embd, cfg.output_vocab_size, bias=False, dtype=dtype, weights=weights)
        self.caches = caches if caches is not None else KVCaches()
        self.cache = None
        # decode steps run whole in mindbark's kernel (`decode_step_kernel`), which takes absent biases as zeros
        # and its block count as a tensor's length
        self.step_kernel = decode_step_kernel(dtype, cfg.n_layer)
        self.attends_in_one = self.step_kernel is not None
        self.zeros = tuple(Tensor(np.zeros((n * cfg.n_embd,), np.float32)) for n in (1, 3, 4))
        self.blocks = Tensor(np.zeros((cfg.n_layer,), np.float32))
        # and prompt chunks in mindbark's attention kernel (`attention_kernel`), which takes maps too
        self.chunks_in_one = self.h[0].attn.kernel is not None
        self._step = compiled(self.decode_step, self, "step")
        past = ms.Tensor(shape=[None, cfg.n_head, None, cfg.n_embd // cfg.n_head], dtype=dtype)
        keys = ms.Tensor(shape=[None, None], dtype=ms.bool_)
        dynamic = {"past": (past,) * (2 * cfg.n_layer), "past_keys": keys}
        ids, embeddings = dynamic, dynamic
        if self.chunks_in_one:  # no (T, T) mask to build: one graph for every prompt length, nothing padded
            ids = {**dynamic, "x": ms.Tensor(shape=[None, None], dtype=ms.int32)}
            embeddings = {**dynamic, "x": ms.Tensor(shape=[None, None, cfg.n_embd], dtype=dtype)}
        # prompts of ids and of embeddings (the semantic model's) get graphs of their own: a dynamic spec fixes
        # x's rank and dtype
        self._chunk_ids = compiled(self._prompt_chunk_fn(), self, "chunk_ids", dynamic=ids)
        self._chunk_embeddings = compiled(self._prompt_chunk_fn(), self, "chunk", dynamic=embeddings)

    def setup_cache(self, batch_size: int):
        """Make the KV cache hold `batch_size` sequences of up to `block_size` positions.

        Only positions before a call's `start` are read, and the current sequence wrote all of them, so stale
        entries from an earlier sequence (or the other model sharing the cache) are never seen; they are cleared
        all the same, since masked slots are read too.
        """
        self.cache = self.caches.get(self.config, batch_size, self.dtype)
        self.cache.clear()

    @property
    def batch_size(self) -> int:
        return 0 if self.cache is None else self.cache.batch

    def embed(self, ids: Tensor) -> Tensor:
        """Token embeddings (B, T, C) of input ids (B, T)."""
        return self.wte(ids)

    def decode_step(self, x, start, key_mask, past, head=None):
        """Logits (B, 1, V) for one new position per sequence at `start` (ids (B, 1)), and its keys and values
        (2 * n_layer, B, nh, 1, hs).

        `past` is the whole cache (keys, values per layer, block_size slots each); the slots before `start` that
        `key_mask` (B, block_size) allows are attended to. `head` (V', C), rows of the LM head: only those logits
        (B, 1, V') are computed; None: all.

        In mindbark's kernel (`attends_in_one`) the step is that one op: `past` is the cache's one array
        (`KVCache.tensor`), and the output one (B, 1, V' + 2 * n_layer * C): the logits, then each block's key and
        value, heads side by side (`KVCache.write_rows`).
        """
        if self.attends_in_one:
            return self._step_in_kernel(x, start, key_mask, past, head)
        b, slots = x.shape[0], self.config.block_size
        before = (arange(slots) < start).reshape(1, 1, 1, slots)
        past_keys = ops.logical_and(before, key_mask.reshape(b, 1, 1, slots))
        return self._logits(x, start, key_mask, past, past_keys, None, head, step=True)

    def prompt_chunk(self, x, start, key_mask, past, past_keys, out_idx=None, head=None):
        """Logits (B, T, V) for `x` (ids (B, T) or embeddings (B, T, C)) at positions start..start+T-1, and the
        new keys and values (2 * n_layer, B, nh, T, hs).

        The new positions attend causally to each other and to `past`, the cache's first L slots (keys, values
        per layer), where `past_keys` (B, L) is True. `key_mask` (B, block_size) is False for padding slots.
        With `out_idx` (a (1,) tensor) only that position's logits (B, 1, V) are computed; `head` as in
        `decode_step`.
        """
        return self._logits(x, start, key_mask, past, past_keys, out_idx, head)

    def _logits(self, x, start, key_mask, past, past_keys, out_idx, head, step=False):
        """`decode_step`'s (`step`) or `prompt_chunk`'s logits and new keys and values. A prompt chunk in
        mindbark's attention kernel (`chunks_in_one`) may be of any length: its graph has a dynamic T, so nothing
        here branches on T."""
        if x.dtype == ms.int32 or x.dtype == ms.int64:
            x = self.wte(x)
        b, t, _ = x.shape
        n_head = self.config.n_head
        pos = start + arange(t)  # (T,)
        x = x + self.wpe(ops.tile(pos.reshape(1, -1), (b, 1)))  # positions gathered at (B, T): no broadcast add
        own_keys = ops.gather(key_mask, pos, 1)  # (B, T)
        if self.chunks_in_one and not step:
            bias, past_bias = own_keys.astype(ms.float32), past_keys.reshape(b, -1).astype(ms.float32)
        else:
            causal = arange(t).reshape(1, t) <= arange(t).reshape(t, 1)  # (T, T) among the new positions
            bias = attention_bias(ops.logical_and(causal.reshape(1, 1, t, t), own_keys.reshape(b, 1, 1, t)), n_head)
            past_bias = attention_bias(ops.tile(past_keys.reshape(b, 1, 1, -1), (1, 1, t, 1)), n_head)  # (B, nh, T, L)
        new = []
        for i, block in enumerate(self.h):
            x, k, v = block(x, bias, (past[2 * i], past[2 * i + 1]), past_bias)
            new += [k, v]
        if out_idx is not None:
            x = ops.gather(x, out_idx, 1)
        x = self.ln_f(x)
        return (self.lm_head(x) if head is None else self._head(x, head)), ops.stack(new)

    def _step_in_kernel(self, x, start, key_mask, cache, head):
        """`decode_step` in mindbark's kernel: the embeddings, the mask, every block and the head."""
        z1, z3, z4 = self.zeros
        inputs = ()
        for block in self.h:
            attn, mlp = block.attn, block.mlp
            inputs += (block.ln_1.weight, _or(block.ln_1.bias, z1), attn.c_attn.weight, _or(attn.c_attn.bias, z3),
                       attn.c_proj.weight, _or(attn.c_proj.bias, z1), block.ln_2.weight, _or(block.ln_2.bias, z1),
                       mlp.c_fc.weight, _or(mlp.c_fc.bias, z4), mlp.c_proj.weight, _or(mlp.c_proj.bias, z1))
        rows = self.lm_head.weight if head is None else head
        return self.step_kernel(x, self.wte.weight, self.wpe.weight, start, key_mask, self.ln_f.weight,
                                _or(self.ln_f.bias, z1), rows, self.blocks, *inputs, cache)

    def _head(self, x, rows):
        """Logits for `rows` of the LM head (from `head_rows`), in its storage format."""
        if self.lm_head.project is None:
            return linear(x, rows)
        return self.lm_head.project(x, rows)

    def _prompt_chunk_fn(self):
        """`prompt_chunk` as a function of this model's own: MindSpore keeps dynamic-shape specs on the function
        object, which a method shares with every GPT (of other layer counts too)."""

        def chunk(x, start, key_mask, past, past_keys, out_idx, head):
            return self.prompt_chunk(x, start, key_mask, past, past_keys, out_idx, head)

        return chunk

    def forward(self, x, start: int, key_mask: Tensor, out_idx: int | None = None,
                head: Tensor | None = None) -> np.ndarray:
        """Logits (numpy) for `x` at positions start..; the new keys and values are written to the cache.

        One position per sequence runs as a decode step over the whole cache, several as a prompt chunk over the
        cached positions before `start` only. `setup_cache` must have been called for this batch size.

        Args:
            x: input ids (B, T) (numpy or int Tensor) or embeddings (B, T, C).
            start: absolute position of x[:, 0]; the cache must hold positions 0..start-1 of these sequences.
            key_mask: (B, block_size) bool, False for padding slots.
            out_idx: if given, return only the logits of x[:, out_idx] as (B, 1, V).
            head: rows of the LM head (from `head_rows`) to compute logits for, instead of the whole vocabulary.
        """
        x = self._checked(x, start, key_mask)
        if x.shape[1] == 1 and self.attends_in_one:
            out = self._step(x, Tensor(start, ms.int64), key_mask, self.cache.tensor, head).asnumpy()
            v = out.shape[2] - 2 * self.config.n_layer * self.config.n_embd
            self.cache.write_rows(out[:, :, v:], start)
            return out[:, :, :v]
        if x.shape[1] == 1:
            logits, new = self._step(x, Tensor(start, ms.int64), key_mask, self.cache.whole(), head)
        else:
            # a chunk at 0 gets one masked slot: kernels need a non-empty past
            n = max(start, 1)
            keys = Tensor(key_mask.asnumpy()[:, :n] & (np.arange(n) < start))
            idx = None if out_idx is None else Tensor([out_idx], ms.int64)
            chunk = self._chunk_ids if x.ndim == 2 else self._chunk_embeddings
            logits, new = chunk(x, Tensor(start, ms.int64), key_mask, self.cache.prefix(n), keys, idx, head)
        logits = logits.asnumpy()  # first: reading `new` first made every decode step slower (MindSpore 2.10)
        self.cache.write(new.asnumpy(), start)
        return logits

    def _checked(self, x, start: int, key_mask: Tensor):
        """`x` as a Tensor, after checking it fits the cache's batch, the context and the input vocabulary, and
        that `key_mask` covers the context. A kernel given an id outside its table fails, and MindSpore then refuses
        every later run of the process, so bad input must stop here."""
        if isinstance(x, Tensor) and x.dtype in (ms.int32, ms.int64):
            x = x.asnumpy()
        if isinstance(x, np.ndarray) and np.issubdtype(x.dtype, np.integer):
            vocab = self.config.input_vocab_size
            if x.size and (x.min() < 0 or x.max() >= vocab):
                raise ValueError(f"token ids must lie in 0..{vocab - 1}, not {x.min()}..{x.max()}")
            x = Tensor(x.astype(np.int32))  # ids in one dtype: a prompt-chunk graph's dynamic spec fixes it
        elif isinstance(x, np.ndarray):
            x = Tensor(x)
        if x.shape[0] != self.batch_size:
            raise RuntimeError(f"call setup_cache({x.shape[0]}) before forward")
        if not 0 <= start <= self.config.block_size - x.shape[1]:
            raise ValueError(f"positions {start}..{start + x.shape[1] - 1} exceed the context of "
                             f"{self.config.block_size}")
        if tuple(key_mask.shape) != (x.shape[0], self.config.block_size):
            raise ValueError(f"key_mask has shape {tuple(key_mask.shape)}, not {(x.shape[0], self.config.block_size)}")
        return x

    def head_rows(self, lo: int, hi: int) -> Tensor:
        """Rows lo..hi-1 of the LM head (V', C), for `forward`'s `head`: a stage that samples from a slice of the
        vocabulary need not read the rest of the head on every step."""
        return Tensor(self.lm_head.weight.asnumpy()[lo:hi].copy())

    def prefill(self, x, key_mask: Tensor, chunk: int | None = None, head: Tensor | None = None) -> np.ndarray:
        """Logits (B, 1, V) of the last position of prompts `x` (ids (B, T) or embeddings (B, T, C)), which
        fill the cache from position 0.

        Where prompt chunks run in mindbark's attention kernel (`chunks_in_one`), their graph takes any length:
        the prompt runs in one call, or in chunks of `chunk` positions, the last one shorter. Elsewhere it runs in
        chunks of `chunk` (default PREFILL_CHUNK) positions that attend to the cache, so one compiled graph serves
        every prompt length; the last chunk is padded by repeating its last position, after the prompt, where
        nothing reads it before a later position overwrites it. `head` as in `forward`.
        """
        x = x.asnumpy() if isinstance(x, Tensor) else np.asarray(x)
        t = x.shape[1]
        if self.chunks_in_one:
            chunk = chunk or t
        else:
            chunk = chunk or PREFILL_CHUNK
            x = np.pad(x, [(0, 0), (0, -t % chunk)] + [(0, 0)] * (x.ndim - 2), mode="edge")
        for start in range(0, t, chunk):
            logits = self.forward(x[:, start:start + chunk], start, key_mask, out_idx=min(chunk, t - start) - 1,
                                  head=head)
        return logits
