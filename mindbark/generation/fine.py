"""Coarse codes -> all eight codebooks with the non-causal fine GPT.

Windows of 1024 frames advance by 512; in each, codebooks 2..7 are filled one after another, each from the sum of
the embeddings of the codebooks below it. Up to 512 frames of the voice's fine prompt lead the first window.
"""

import math

import mindspore as ms
import numpy as np
from mindspore import Tensor

from .. import constants as C
from ..models.fine import FineGPT
from .config import FineConfig
from .sampling import pick_many


def generate_fine(gpt: FineGPT, coarse: np.ndarray, voice: dict | None, cfg: FineConfig,
                  rng: np.random.Generator, progress=None) -> np.ndarray:
    """Fine codes for a batch sharing one voice.

    Args:
        gpt: the fine model.
        coarse: (B, n_coarse, T) codes in [0, CODEBOOK_SIZE).
        voice: voice preset dict or None.
        cfg: sampling settings (greedy when temperature is None or 0).
        rng: random generator (unused when greedy).
        progress: optional tqdm-like bar, advanced once per codebook pass.

    Returns:
        (B, 8, T) codes.
    """
    b, n_coarse, t = coarse.shape
    n_books = gpt.config.n_codes_total
    # frames in (T, codebooks) layout; codebooks not yet predicted hold CODEBOOK_SIZE, the model's pad id
    x = np.full((b, t, n_books), C.CODEBOOK_SIZE, np.int64)
    x[:, :, :n_coarse] = coarse.transpose(0, 2, 1)
    n_history = 0
    if voice is not None:
        hist = np.asarray(voice["fine_prompt"], np.int64).T[-C.FINE_HISTORY:]  # (T_h, 8)
        n_history = len(hist)
        x = np.concatenate([np.broadcast_to(hist, (b,) + hist.shape), x], axis=1)
    n_pad = max(0, C.FINE_WINDOW - x.shape[1])  # the non-causal model always sees a full window
    x = np.pad(x, ((0, 0), (0, n_pad), (0, 0)), constant_values=C.CODEBOOK_SIZE)
    n_loops = max(0, math.ceil((t - (C.FINE_WINDOW - n_history)) / C.FINE_HISTORY)) + 1
    for loop in range(n_loops):
        start = min(loop * C.FINE_HISTORY, x.shape[1] - C.FINE_WINDOW)
        fill = min(n_history + loop * C.FINE_HISTORY, x.shape[1] - C.FINE_HISTORY)
        rel = fill - start
        window = x[:, start:start + C.FINE_WINDOW].copy()
        for book in range(n_coarse, n_books):
            logits = gpt.forward(Tensor(window, ms.int32), book).asnumpy()
            window[:, rel:, book] = pick_many(logits[:, rel:, :C.CODEBOOK_SIZE], cfg, rng)
            if progress is not None:
                progress.update(1)
        x[:, fill:fill + C.FINE_WINDOW - rel, n_coarse:] = window[:, rel:, n_coarse:]
    return x[:, n_history:n_history + t].transpose(0, 2, 1)
