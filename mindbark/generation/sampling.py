"""Choosing the next token from logits on the host: greedy, or temperature sampling with top-k / top-p."""

import numpy as np

from .config import Sampling


def softmax(logits: np.ndarray) -> np.ndarray:
    z = logits - logits.max(axis=-1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=-1, keepdims=True)


def _filter(logits: np.ndarray, top_k: int | None, top_p: float | None) -> np.ndarray:
    """-inf out the tokens that top-k and top-p exclude (the most likely token always survives)."""
    out = logits.astype(np.float64, copy=True)
    if top_k is not None and top_k < out.shape[-1]:
        kth = np.partition(out, -top_k, axis=-1)[..., -top_k, None]
        out[out < kth] = -np.inf
    if top_p is not None and top_p < 1:
        order = np.argsort(-out, axis=-1)
        sorted_p = np.take_along_axis(softmax(out), order, axis=-1)
        drop_sorted = np.cumsum(sorted_p, axis=-1) - sorted_p >= top_p  # mass before this token already enough
        drop = np.zeros_like(drop_sorted)
        np.put_along_axis(drop, order, drop_sorted, axis=-1)
        out[drop] = -np.inf
    return out


Rng = np.random.Generator | list[np.random.Generator]


def _uniform(rng: Rng, n: int, live: np.ndarray | None) -> np.ndarray:
    """(n, 1) draws in [0, 1): from one generator, or row i from `rng[i]` alone and only while `live[i]`.

    A row with its own generator that draws only while its sequence runs sees the same numbers as in its solo run,
    whatever the other rows are and however long the batch goes on after it ended.
    """
    if isinstance(rng, np.random.Generator):
        return rng.random((n, 1))
    if len(rng) != n:
        raise ValueError(f"{len(rng)} random generators for a batch of {n}")
    live = np.ones(n, bool) if live is None else live
    return np.array([[g.random() if alive else 0.0] for g, alive in zip(rng, live)])


def pick(logits: np.ndarray, cfg: Sampling, rng: Rng, live: np.ndarray | None = None
         ) -> tuple[np.ndarray, np.ndarray]:
    """Next tokens (B,) for logits (B, V), and the probabilities (B, V) they were drawn from.

    Args:
        rng: one generator for the batch, or one per row (see `_uniform`).
        live: (B,) rows still generating; with one generator per row, the others draw nothing.
    """
    if cfg.greedy:
        return logits.argmax(axis=-1), softmax(logits.astype(np.float64))
    probs = softmax(_filter(logits, cfg.top_k, cfg.top_p) / cfg.temperature)
    cdf = np.cumsum(probs, axis=-1)
    u = _uniform(rng, probs.shape[0], live) * cdf[:, -1:]
    return np.minimum((cdf < u).sum(axis=-1), probs.shape[-1] - 1), probs


def item_rng(rng: Rng, i: int) -> np.random.Generator:
    """The generator batch item `i` draws from: its own, or the batch's one."""
    return rng if isinstance(rng, np.random.Generator) else rng[i]


def pick_many(logits: np.ndarray, cfg: Sampling, rng: np.random.Generator) -> np.ndarray:
    """Tokens for logits of any leading shape (..., V), e.g. every position of a fine window."""
    flat = logits.reshape(-1, logits.shape[-1])
    return pick(flat, cfg, rng)[0].reshape(logits.shape[:-1])
