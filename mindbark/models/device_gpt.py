"""A causal GPT run for accelerators: its KV cache lives on the device and is written inside the compiled graphs,
and each decode step samples its token there too.

`DeviceGPT` wraps a `GPT` (the same cells and weights) for one batch size. Two static-shape graphs:
`prompt_chunk` places CHUNK positions (a fixed bucket: a prompt's last chunk is padded, its padding lies after the
prompt and is overwritten by decoding before anything reads it); `decode_step` places one position per sequence,
picks the next ids with `sampler.pick` and returns them (B,) and an end flag (B,) only. Both attend to all
block_size cache slots under a mask (slots before `start` that `key_mask` allows), and write their new keys and
values into the cache Parameters with ScatterNdUpdate; nothing of the cache crosses to the host.

The cache is one Parameter per layer's keys and per layer's values, (B, nh, block_size, hs) each, created with the
wrapper and never reallocated: a compiled graph stays bound to the Parameters it was compiled with.
"""

import mindspore as ms
import numpy as np
from mindspore import Parameter, ParameterTuple, Tensor, nn, ops

from ..graph_ops import arange, concat
from ..jit import compiled
from .gpt import GPT
from .sampler import pick

CHUNK = 128  # positions per prompt chunk: Bark's prompts (257 semantic, at most 887 coarse) fill a few


def _slots(b: int, n: int, t: int, start):
    """ScatterNd indices (B, nh, T, 3) of positions start..start+T-1 of every sequence and head."""
    batch = ops.tile(arange(b).reshape(b, 1, 1, 1), (1, n, t, 1))
    heads = ops.tile(arange(n).reshape(1, n, 1, 1), (b, 1, t, 1))
    pos = ops.tile((start + arange(t)).reshape(1, 1, t, 1), (b, n, 1, 1))
    return concat([batch, heads, pos], axis=3)


class DeviceGPT(nn.Cell):
    """`gpt` with a device-resident KV cache for `batch` sequences and in-graph sampling.

    Args:
        gpt: the causal model (semantic or coarse); its weights are shared, not copied.
        batch: sequences per call.
    """

    def __init__(self, gpt: GPT, batch: int):
        super().__init__()
        cfg = gpt.config
        self.gpt = gpt
        self.batch = batch
        self.config = cfg
        shape = (batch, cfg.n_head, cfg.block_size, cfg.n_embd // cfg.n_head)
        # a fresh Tensor each: Parameters built from one Tensor would share its memory
        self.kv = ParameterTuple(Parameter(Tensor(np.zeros(shape, np.float32), gpt.dtype), name=f"kv_cache.{i}")
                                 for i in range(2 * cfg.n_layer))
        # compiled in memory only: the graph store binds a loaded graph to weights, not to a cache it writes
        self._chunk = compiled(self.prompt_chunk, self, "device_chunk")
        self._step = compiled(self.decode_step, self, "device_step")
        self._logits = compiled(self.step_logits, self, "device_logits")

    def _write(self, new, start):
        """Store new keys and values (2 * n_layer, B, nh, T, hs) at positions start..start+T-1."""
        _, b, n, t, _ = new.shape
        slots = _slots(b, n, t, start)
        for i in range(len(self.kv)):
            ops.scatter_nd_update(self.kv[i], slots, new[i])
        return start + t

    def _forward(self, x, start, key_mask, head):
        """Logits (B, T, V') of x (ids (B, T) or embeddings (B, T, C)) at start.., over the cached positions before
        `start`; the new keys and values are written to the cache."""
        b, slots = x.shape[0], self.config.block_size
        before = (arange(slots) < start).reshape(1, slots)
        past_keys = ops.logical_and(ops.tile(before, (b, 1)), key_mask)  # (B, block_size)
        t = x.shape[1]
        out_idx = None if t == 1 else Tensor([0], ms.int64)  # a chunk's logits are not read: one row suffices
        logits, new = self.gpt.prompt_chunk(x, start, key_mask, tuple(self.kv), past_keys, out_idx, head)
        return ops.depend(logits, self._write(new, start))

    def prompt_chunk(self, x, start, key_mask):
        """Write CHUNK positions (ids (B, CHUNK) or embeddings (B, CHUNK, C)) at start..; returns the next
        position."""
        head = self.gpt.lm_head.weight[:1]
        return ops.depend(start + x.shape[1], self._forward(x, start, key_mask, head))

    def step_logits(self, ids, start, key_mask, head):
        """Logits (B, V') (float32) for ids (B,) at position `start`, as `decode_step` samples from them."""
        return self._forward(ids.reshape(-1, 1), start, key_mask, head).astype(ms.float32).reshape(ids.shape[0], -1)

    def decode_step(self, ids, start, key_mask, heads, offsets, origin, eos, may_stop, min_eos_p, mode, params,
                    seeds, draw):
        """The next ids (B,) int32, with their offset in the output vocabulary, and an end flag (B,) bool, for ids
        (B,) at position `start`.

        Args:
            ids: (B,) int32, this position's input.
            start: int64 scalar, its position.
            key_mask: (B, block_size) bool, False for padding slots.
            heads: (S, V', C) LM head rows; step s = start - origin samples from heads[s % S] (Bark's coarse
                model alternates between its two codebooks' rows), and its ids are offset by offsets[s % S].
            offsets: (S,) int32.
            origin: int64 scalar, the position whose step samples from heads[0].
            eos: int32 scalar, the end id among the V' (no end: -1).
            may_stop: float32 scalar, 0 while the end id is forbidden.
            min_eos_p: float32 scalar, end once p(end) reaches it (2: never).
            mode, params: `sampler.settings`.
            seeds, draw: int32 (B,) and (1,), each sequence's noise seed and this draw's number.
        """
        book = (start - origin) % heads.shape[0]
        logits = self.step_logits(ids, start, key_mask, ops.gather(heads, book, 0))  # (B, V')
        b, v = logits.shape
        is_eos = ops.tile((arange(v).astype(ms.int32) == eos).reshape(1, v), (b, 1))
        forbid = ops.logical_and(is_eos, may_stop < 0.5)
        logits = ops.select(forbid, ops.fill(ms.float32, (b, v), -np.inf), logits)
        nxt, probs = pick(logits, mode, params, seeds, draw)
        p_eos = ops.select(is_eos, probs, ops.zeros((b, v), ms.float32)).sum(axis=1)
        end = ops.logical_or(nxt == eos, ops.logical_and(p_eos >= min_eos_p, may_stop > 0.5))
        return nxt + ops.gather(offsets, book, 0), end

    def prefill(self, x, key_mask: Tensor):
        """Write prompts `x` (ids (B, T) numpy, or embeddings (B, T, C) a Tensor, which stays on the device) at
        positions 0..T-1, in CHUNK-position chunks (the last padded by repeating its last position)."""
        t = x.shape[1]
        padded = t + -t % CHUNK
        if padded > self.config.block_size:
            raise ValueError(f"a prompt of {t} positions padded to {padded} exceeds the context of "
                             f"{self.config.block_size}")
        if isinstance(x, Tensor):
            if padded > t:
                x = ops.concat([x, ops.tile(x[:, -1:], (1, padded - t, 1))], 1)
        else:
            x = Tensor(np.pad(np.asarray(x, np.int32), ((0, 0), (0, padded - t)), mode="edge"))
        for start in range(0, t, CHUNK):
            self._chunk(x[:, start:start + CHUNK], Tensor(start, ms.int64), key_mask)

    def logits(self, ids, start: int, key_mask: Tensor, head: Tensor | None = None) -> np.ndarray:
        """Logits (B, V) (numpy) that a decode step at `start` would sample from, for ids (B,): for tests and
        diagnostics; generation calls `step`."""
        head = self.gpt.lm_head.weight if head is None else head
        return self._logits(Tensor(np.asarray(ids, np.int32)), Tensor(start, ms.int64), key_mask, head).asnumpy()

    def step(self, ids, start: int, key_mask: Tensor, heads: Tensor, offsets: Tensor, origin: int, eos: int,
             may_stop: bool, min_eos_p: float | None, sampling: tuple, seeds: Tensor, draw: int) -> tuple:
        """Run `decode_step` (arguments as there; `ids` a Tensor from the last step or numpy, `sampling` the
        (mode, params) of `sampler.settings`). Returns the next ids and end flags as device Tensors; `asnumpy`
        brings them to the host."""
        if not isinstance(ids, Tensor):
            ids = Tensor(np.asarray(ids, np.int32))
        return self._step(ids, Tensor(start, ms.int64), key_mask, heads, offsets, Tensor(origin, ms.int64),
                          Tensor(eos, ms.int32), Tensor(float(may_stop), ms.float32),
                          Tensor(2.0 if min_eos_p is None else min_eos_p, ms.float32), *sampling, seeds,
                          Tensor([draw], ms.int32))
