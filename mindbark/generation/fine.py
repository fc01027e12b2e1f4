"""Coarse codes -> all eight codebooks with the non-causal fine GPT.

Windows of 1024 frames advance by 512; in each, codebooks 2..7 are filled one after another, each from the sum of
the embeddings of the codebooks below it. Up to 512 frames of the voice's fine prompt lead the first window.
Every item of a batch keeps its own windows (its own length decides where they fall and what padding they see), so
a batched item's codes equal its unbatched run; the batch runs the items' n-th windows together.
"""

import math

import mindspore as ms
import numpy as np
from mindspore import Tensor

from .. import constants as C
from ..models.fine import FineGPT
from .config import FineConfig
from .sampling import pick_many


def _frames(coarse: np.ndarray, voice: dict | None, n_books: int) -> tuple[np.ndarray, int]:
    """One item's frames (T', codebooks): its voice's fine prompt, its coarse codes, then padding to a window.

    Codebooks not yet predicted, and the padding, hold CODEBOOK_SIZE, the model's pad id.
    """
    n_coarse, t = coarse.shape
    x = np.full((t, n_books), C.CODEBOOK_SIZE, np.int64)
    x[:, :n_coarse] = coarse.T
    hist = np.zeros((0, n_books), np.int64)
    if voice is not None:
        hist = np.asarray(voice["fine_prompt"], np.int64).T[-C.FINE_HISTORY:]  # (T_h, 8)
    x = np.concatenate([hist, x])
    n_pad = max(0, C.FINE_WINDOW - len(x))  # the non-causal model always sees a full window
    return np.pad(x, ((0, n_pad), (0, 0)), constant_values=C.CODEBOOK_SIZE), len(hist)


def _windows(t: int, n_history: int, length: int) -> list[tuple[int, int]]:
    """(start, first frame to fill) of each window over an item of `t` frames (Suno's schedule)."""
    n_loops = max(0, math.ceil((t - (C.FINE_WINDOW - n_history)) / C.FINE_HISTORY)) + 1
    return [(min(i * C.FINE_HISTORY, length - C.FINE_WINDOW),
             min(n_history + i * C.FINE_HISTORY, length - C.FINE_HISTORY)) for i in range(n_loops)]


def generate_fine(gpt: FineGPT, coarse: np.ndarray, frames: np.ndarray, voice: dict | None, cfg: FineConfig,
                  rng: np.random.Generator, progress=None) -> list[np.ndarray]:
    """Fine codes for a batch sharing one voice.

    Args:
        gpt: the fine model.
        coarse: (B, n_coarse, T) codes in [0, CODEBOOK_SIZE); item i's are valid up to frames[i].
        frames: (B,) frame counts.
        voice: voice preset dict or None.
        cfg: sampling settings (greedy when temperature is None or 0).
        rng: random generator (unused when greedy).
        progress: optional tqdm-like bar, advanced once per codebook pass.

    Returns:
        one (8, frames[i]) array per item.
    """
    b, n_coarse, _ = coarse.shape
    n_books = gpt.config.n_codes_total
    items = [_frames(coarse[i, :, :frames[i]], voice, n_books) for i in range(b)]
    n_history = items[0][1]
    plans = [_windows(int(frames[i]), n_history, len(x)) for i, (x, _) in enumerate(items)]
    for n in range(max(len(p) for p in plans)):
        # an item out of windows rides along on its last one (one batch shape, one graph); its result is dropped
        live = [n < len(p) for p in plans]
        at = [p[min(n, len(p) - 1)] for p in plans]
        window = np.stack([x[start:start + C.FINE_WINDOW] for (x, _), (start, _) in zip(items, at)])
        for book in range(n_coarse, n_books):
            logits = gpt.forward(Tensor(window, ms.int32), book).asnumpy()  # (B, 1024, V)
            for i, (start, fill) in enumerate(at):
                if live[i]:
                    rel = fill - start
                    window[i, rel:, book] = pick_many(logits[i, rel:, :C.CODEBOOK_SIZE], cfg, rng)
            if progress is not None:
                progress.update(1)
        for i, (start, fill) in enumerate(at):
            if live[i]:
                rel = fill - start
                items[i][0][fill:fill + C.FINE_WINDOW - rel, n_coarse:] = window[i, rel:, n_coarse:]
    return [x[n_history:n_history + frames[i]].T for i, (x, _) in enumerate(items)]
