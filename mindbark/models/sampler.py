"""Choosing the next token inside a compiled graph: greedy, or temperature sampling with top-k / top-p, seeded.

The device engine's graphs end here, so only the chosen ids leave the device. The rules are the host sampler's
(`generation.sampling`): top-k, then top-p over the top-k survivors' probabilities (before the temperature), then
softmax at the temperature. A draw is Gumbel-max over uniform noise hashed from (the row's seed, draw, column):
no random state lives in a kernel, so a seed gives the same tokens on every call, graph and process, and no noise
crosses from the host. Greedy takes the argmax of the unfiltered logits, as the host does.

Settings arrive as tensors, so one compiled graph serves every temperature, top-k and top-p.
"""

import mindspore as ms
import numpy as np
from mindspore import Tensor, ops

from ..graph_ops import arange, softmax

# murmur3's 32-bit finalizer constants, as signed int32 (the products wrap as uint32's do)
_M1, _M2 = 0x85EBCA6B - 2**32, 0xC2B2AE35 - 2**32
_GOLDEN = 0x9E3779B9 - 2**32


def settings(temperature: float | None, top_k: int | None, top_p: float | None, vocab: int) -> tuple:
    """A stage's sampling settings (host side) as the graph reads them: a mode, a constant of the compiled graph
    ("greedy"; "sample"; "filter", sampling after top-k / top-p, which sorts the logits), and (temperature, top_k,
    top_p) as a float32 tensor, which one graph serves for every value."""
    if not temperature:
        return "greedy", Tensor(np.array([1.0, vocab, 2.0], np.float32))
    k = vocab if top_k is None else min(int(top_k), vocab)
    p = 2.0 if top_p is None or top_p >= 1 else float(top_p)  # 2: a cumulative sum never reaches it
    mode = "sample" if k == vocab and p > 1 else "filter"
    return mode, Tensor(np.array([temperature, k, p], np.float32))


def _shr(x, n: int):
    """Logical right shift of int32 `x` by n bits (RightShift is arithmetic on signed ints)."""
    return ops.bitwise_and(ops.RightShift()(x, ops.fill(ms.int32, x.shape, n)), Tensor((1 << (32 - n)) - 1, ms.int32))


def _mix(x):
    """murmur3's finalizer: every input bit flips about half of the output bits."""
    x = ops.bitwise_xor(x, _shr(x, 16)) * Tensor(_M1, ms.int32)
    x = ops.bitwise_xor(x, _shr(x, 13)) * Tensor(_M2, ms.int32)
    return ops.bitwise_xor(x, _shr(x, 16))


def uniform(seeds, draw, v: int):
    """Uniform noise in (0, 1), (N, v): row n a function of its seed `seeds[n]` (int32 (N,)), of `draw` (int32
    (1,), which call this is) and of each element's column only, so a row's noise does not depend on the other
    rows (a batch item samples as it would alone)."""
    n = seeds.shape[0]
    key = ops.tile(_mix(_mix(seeds.reshape(n, 1) * Tensor(_GOLDEN, ms.int32) + draw.reshape(1, 1))), (1, v))
    h = _mix(ops.bitwise_xor(ops.tile(arange(v).astype(ms.int32).reshape(1, v), (n, 1)), key))
    h = _mix(h + key)
    return (_shr(h, 8).astype(ms.float32) + 0.5) * float(2.0 ** -24)


def row_seeds(seeds, t: int):
    """Seeds (B * t,) for the t rows of each of B items with seeds (B,): each row's its own, derived from its
    item's and its index."""
    b = seeds.shape[0]
    rows = ops.tile(seeds.reshape(b, 1), (1, t)) * Tensor(_GOLDEN, ms.int32)
    return _mix(rows + ops.tile(arange(t).astype(ms.int32).reshape(1, t), (b, 1))).reshape(b * t)


def _filtered(logits, top_k, top_p):
    """-inf out the tokens that top-k and top-p exclude (ties with the last one kept stay)."""
    n, v = logits.shape
    ordered = ops.Sort(-1, True)(logits)[0]  # (N, V), descending
    rank = ops.tile(arange(v).astype(ms.float32).reshape(1, v), (n, 1))
    in_k = rank < top_k
    sorted_p = softmax(ops.select(in_k, ordered, ops.fill(ms.float32, (n, v), -np.inf)))
    before = ops.CumSum()(sorted_p, 1) - sorted_p  # mass of the more likely tokens
    kept = ops.logical_and(in_k, before < top_p).astype(ms.int32).sum(axis=1)  # (N,) >= 1: the first always stays
    threshold = ops.gather_elements(ordered, 1, (kept - 1).reshape(n, 1))  # (N, 1) the least likely kept logit
    return ops.select(logits >= ops.tile(threshold, (1, v)), logits, ops.fill(ms.float32, (n, v), -np.inf))


def pick(logits, mode: str, params, seeds, draw):
    """Next ids (N,) int32 for logits (N, V), and the probabilities (N, V) they were drawn from (at greedy: the
    softmax of the logits, as the host sampler gives for `min_eos_p`).

    Args:
        logits: (N, V), any float dtype; sampled in float32.
        mode, params: from `settings(...)`.
        seeds, draw: int32 (N,) and (1,), which pick the noise (`uniform`).
    """
    logits = logits.astype(ms.float32)
    if mode == "greedy":
        return ops.Argmax(-1, ms.int32)(logits), softmax(logits)
    if mode == "filter":
        logits = _filtered(logits, params[1], params[2])
    scaled = logits / params[0]
    gumbel = -ops.log(-ops.log(uniform(seeds, draw, logits.shape[1])))
    return ops.Argmax(-1, ms.int32)(scaled + gumbel), softmax(scaled)
