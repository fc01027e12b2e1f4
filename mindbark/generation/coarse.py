"""Semantic tokens -> the first two EnCodec codebooks with the causal coarse GPT, in sliding windows.

Each window sees up to 256 semantic tokens around the current point, the infer token, and up to `max_history`
coarse tokens (the voice's, then its own), flattened as [cb0, cb1, cb0, cb1, ...] with codebook n offset by
SEMANTIC_VOCAB_SIZE + n * CODEBOOK_SIZE. Every window starts a fresh prefill.
"""

import math

import mindspore as ms
import numpy as np
from mindspore import Tensor

from .. import constants as C
from ..models.gpt import GPT
from .config import CoarseConfig
from .sampling import Rng, pick

# coarse tokens per semantic token: 75 Hz * 2 codebooks / 49.9 Hz
RATIO = C.COARSE_RATE_HZ / C.SEMANTIC_RATE_HZ * C.N_COARSE_CODEBOOKS


def coarse_lengths(semantic_lengths: np.ndarray) -> np.ndarray:
    """Flattened coarse tokens (an even count) owed to each semantic sequence."""
    return np.round(np.floor(semantic_lengths * RATIO / C.N_COARSE_CODEBOOKS) * C.N_COARSE_CODEBOOKS).astype(int)


def _histories(voice: dict | None, max_history: int) -> tuple[np.ndarray, np.ndarray]:
    """A voice's semantic and flattened coarse prompts, trimmed to align in time (Suno's rules)."""
    if voice is None:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    sem = np.asarray(voice["semantic_prompt"], np.int64)
    coarse = np.asarray(voice["coarse_prompt"], np.int64)[:C.N_COARSE_CODEBOOKS]
    offsets = C.SEMANTIC_VOCAB_SIZE + C.CODEBOOK_SIZE * np.arange(C.N_COARSE_CODEBOOKS)[:, None]
    flat = (coarse + offsets).T.reshape(-1)
    n_sem = min(int(np.floor(max_history / RATIO)), len(sem) - len(sem) % 2, int(np.floor(len(flat) / RATIO)))
    n_coarse = int(round(n_sem * RATIO))
    sem = sem[len(sem) - n_sem:]
    flat = flat[len(flat) - n_coarse:]
    return sem, flat[:-2]  # Suno drops the last two for time alignment (sounds better)


def generate_coarse(gpt: GPT, semantic: np.ndarray, lengths: np.ndarray, voice: dict | None, cfg: CoarseConfig,
                    rng: Rng, progress=None) -> tuple[np.ndarray, np.ndarray]:
    """Coarse codes for a batch sharing one voice.

    Args:
        gpt: the coarse model.
        semantic: (B, N) semantic tokens, SEMANTIC_PAD_TOKEN past each length.
        lengths: (B,) semantic lengths.
        voice: voice preset dict or None.
        cfg: sampling and window settings.
        rng: random generator, or one per item (unused when greedy).
        progress: optional tqdm-like bar, advanced once per token.

    Returns:
        codes (B, 2, T) in [0, CODEBOOK_SIZE) for the longest item, and frame counts (B,) per item.
    """
    gpt.setup_cache(semantic.shape[0])
    keys = Tensor(np.ones((semantic.shape[0], gpt.config.block_size), bool))
    n_flat = coarse_lengths(lengths)
    # each step samples one codebook's 1024 ids: only those rows of the 12096-row head are computed
    heads = [gpt.head_rows(lo, lo + C.CODEBOOK_SIZE) for lo in OFFSETS]

    def window(prompt: np.ndarray, n: int, done: int) -> np.ndarray:
        logits = gpt.prefill(prompt, keys, head=heads[0])
        new = []
        for step in range(n):
            # an item past its end draws nothing: with a generator per item, its draws equal its solo run's
            nxt = pick(logits[:, 0], cfg, rng, done + step < n_flat)[0] + OFFSETS[step % C.N_COARSE_CODEBOOKS]
            new.append(nxt)
            if progress is not None:
                progress.update(1)
            if step + 1 < n:
                logits = gpt.forward(nxt[:, None], prompt.shape[1] + step, keys,
                                     head=heads[(step + 1) % C.N_COARSE_CODEBOOKS])
        return np.stack(new, axis=1)

    return sliding_windows(semantic, lengths, voice, cfg, window)


# where each codebook's ids start in the coarse model's vocabulary
OFFSETS = [C.SEMANTIC_VOCAB_SIZE + book * C.CODEBOOK_SIZE for book in range(C.N_COARSE_CODEBOOKS)]


def sliding_windows(semantic: np.ndarray, lengths: np.ndarray, voice: dict | None, cfg: CoarseConfig,
                    window) -> tuple[np.ndarray, np.ndarray]:
    """Suno's sliding windows over a batch sharing one voice (arguments as `generate_coarse`'s); `window(prompt,
    n, done)` generates the next n flattened tokens (B, n), with their vocabulary offsets, after prompts (B, T) and
    the `done` tokens before them, which
    fill the cache from position 0 (windows and histories are even: codebooks alternate from 0).

    Returns:
        as `generate_coarse`.
    """
    b = semantic.shape[0]
    sem = np.where(semantic == C.SEMANTIC_PAD_TOKEN, C.COARSE_SEMANTIC_PAD_TOKEN, semantic)
    sem = np.where(np.arange(sem.shape[1]) < lengths[:, None], sem, C.COARSE_SEMANTIC_PAD_TOKEN)
    n_flat = coarse_lengths(lengths)
    total = int(n_flat.max())
    sem_hist, coarse_hist = _histories(voice, cfg.max_history)
    sem = np.concatenate([np.broadcast_to(sem_hist, (b, len(sem_hist))), sem], axis=1)
    coarse = np.broadcast_to(coarse_hist, (b, len(coarse_hist))).copy()
    max_sem_hist = int(np.floor(cfg.max_history / RATIO))
    done = 0
    for _ in range(math.ceil(total / cfg.window)):
        idx = len(sem_hist) + int(round(done / RATIO))
        window_sem = sem[:, max(0, idx - max_sem_hist):][:, :C.MAX_INPUT_SEMANTIC_LENGTH]
        window_sem = np.pad(window_sem, ((0, 0), (0, C.MAX_INPUT_SEMANTIC_LENGTH - window_sem.shape[1])),
                            constant_values=C.COARSE_SEMANTIC_PAD_TOKEN)
        hist = coarse[:, coarse.shape[1] - min(cfg.max_history, coarse.shape[1]):]
        prompt = np.concatenate([window_sem, np.full((b, 1), C.COARSE_INFER_TOKEN), hist], axis=1)
        new = window(prompt, min(cfg.window, total - done), done)
        coarse = np.concatenate([coarse, new], axis=1)
        done += new.shape[1]
    flat = coarse[:, len(coarse_hist):]
    codes = flat.reshape(b, -1, C.N_COARSE_CODEBOOKS).transpose(0, 2, 1) - C.SEMANTIC_VOCAB_SIZE
    codes -= C.CODEBOOK_SIZE * np.arange(C.N_COARSE_CODEBOOKS)[None, :, None]
    return codes, n_flat // C.N_COARSE_CODEBOOKS
