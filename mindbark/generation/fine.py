"""Coarse codes -> all eight codebooks with the non-causal fine GPT.

Windows of 1024 frames advance by 512; in each, codebooks 2..7 are filled one after another, each from the sum of
the embeddings of the codebooks below it. Up to 512 frames of the voice's fine prompt lead the first window.
Every item keeps its own windows (its own length decides where they fall and what padding they see), so a batched
item's codes equal its unbatched run. Items run one after another: a window pass is compute-bound on CPU, so a
batch of windows is no faster per item than one alone, and each new batch size would compile another graph.
"""

import math

import mindspore as ms
import numpy as np
from mindspore import Tensor

from .. import constants as C
from ..models.fine import FineGPT
from .config import FineConfig
from .sampling import Rng, item_rng, pick_many


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
                  rng: Rng, progress=None) -> list[np.ndarray]:
    """Fine codes for a batch sharing one voice.

    Args:
        gpt: the fine model.
        coarse: (B, n_coarse, T) codes in [0, CODEBOOK_SIZE); item i's are valid up to frames[i].
        frames: (B,) frame counts.
        voice: voice preset dict or None.
        cfg: sampling settings (greedy when temperature is None or 0).
        rng: random generator, or one per item (unused when greedy).
        progress: optional tqdm-like bar, advanced once per codebook pass.

    Returns:
        one (8, frames[i]) array per item.
    """
    n_books = gpt.config.n_codes_total

    def fill(window: np.ndarray, rel: int, n_coarse: int, item: int):
        for book in range(n_coarse, n_books):
            logits = gpt.forward(Tensor(window, ms.int32), book).asnumpy()  # (1, 1024, V)
            window[0, rel:, book] = pick_many(logits[0, rel:, :C.CODEBOOK_SIZE], cfg, item_rng(rng, item))
            if progress is not None:
                progress.update(1)
        return window

    return fine_windows(coarse, frames, voice, n_books, fill)


def fine_windows(coarse: np.ndarray, frames: np.ndarray, voice: dict | None, n_books: int, fill) -> list[np.ndarray]:
    """Suno's fine windows over each item (arguments as `generate_fine`'s); `fill(window, rel, n_coarse, item)`
    returns item `item`'s window (1, 1024, n_books) with codebooks n_coarse.. filled from frame `rel` on."""
    return [_fine_item(coarse[i, :, :frames[i]], voice, n_books, fill, i) for i in range(coarse.shape[0])]


def _fine_item(coarse: np.ndarray, voice: dict | None, n_books: int, fill, item: int) -> np.ndarray:
    """(8, T) codes for item `item`'s coarse codes (n_coarse, T)."""
    n_coarse, t = coarse.shape
    x, n_history = _frames(coarse, voice, n_books)
    for start, fill_from in _windows(t, n_history, len(x)):
        rel = fill_from - start
        window = fill(x[None, start:start + C.FINE_WINDOW].copy(), rel, n_coarse, item)  # (1, 1024, 8)
        x[fill_from:fill_from + C.FINE_WINDOW - rel, n_coarse:] = window[0, rel:, n_coarse:]
    return x[n_history:n_history + t].T
