"""Text -> semantic tokens with the causal semantic GPT.

The model sees embed(text) + embed(semantic history) summed over 256 positions, then the infer token (257
positions), and decodes from there with the KV cache.
"""

import mindspore as ms
import numpy as np
from mindspore import Tensor

from .. import constants as C
from ..models.gpt import GPT
from .config import SemanticConfig
from .sampling import Rng, pick


def text_prompt(input_ids: np.ndarray, attention_mask: np.ndarray | None) -> np.ndarray:
    """Tokenizer ids (B, T) -> the model's text tokens (B, 256): offset, padding replaced by Bark's text pad."""
    ids = input_ids[:, :C.MAX_INPUT_SEMANTIC_LENGTH].astype(np.int64) + C.TEXT_ENCODING_OFFSET
    if attention_mask is not None:
        ids = np.where(attention_mask[:, :ids.shape[1]].astype(bool), ids, C.TEXT_PAD_TOKEN)
    pad = C.MAX_INPUT_SEMANTIC_LENGTH - ids.shape[1]
    return np.pad(ids, ((0, 0), (0, pad)), constant_values=C.TEXT_PAD_TOKEN)


def semantic_history(prompt: np.ndarray | None) -> np.ndarray:
    """A voice's semantic prompt -> its last 256 tokens, right-padded with the semantic pad."""
    hist = np.zeros(0, np.int64) if prompt is None else np.asarray(prompt, np.int64)[-C.MAX_INPUT_SEMANTIC_LENGTH:]
    return np.pad(hist, (0, C.MAX_INPUT_SEMANTIC_LENGTH - len(hist)), constant_values=C.SEMANTIC_PAD_TOKEN)


def generate_semantic(gpt: GPT, text: np.ndarray, history: np.ndarray, cfg: SemanticConfig, rng: Rng,
                      progress=None) -> tuple[np.ndarray, np.ndarray]:
    """Semantic tokens for a batch.

    Args:
        gpt: the semantic model.
        text: (B, 256) text tokens from `text_prompt`.
        history: (B, 256) histories from `semantic_history`.
        cfg: sampling and stopping settings.
        rng: random generator, or one per item (unused when greedy).
        progress: optional tqdm-like bar, advanced once per token.

    Returns:
        tokens (B, N) with SEMANTIC_PAD_TOKEN after each sequence's end, and lengths (B,).
    """
    b = text.shape[0]
    gpt.setup_cache(b)
    keys = Tensor(np.ones((b, gpt.config.block_size), bool))
    x = gpt.embed(Tensor(text, ms.int32)) + gpt.embed(Tensor(history, ms.int32))  # (B, 256, C)
    gpt.prefill(x, keys)
    # the infer token goes through the decode step's graph: as the 257th prompt position it would cost a whole
    # padded prefill chunk
    logits = gpt.forward(np.full((b, 1), C.SEMANTIC_INFER_TOKEN), x.shape[1], keys)
    pos = x.shape[1] + 1  # the first new token's position
    out = SemanticTokens(b, cfg.max_new_tokens)
    for n in range(cfg.max_new_tokens):
        # only real semantic ids and EOS may be sampled; the rest of the output vocabulary is never a target
        relevant = logits[:, 0, :C.SEMANTIC_VOCAB_SIZE + 1].copy()
        may_stop = n >= cfg.min_new_tokens
        if not may_stop:
            relevant[:, C.SEMANTIC_PAD_TOKEN] = -np.inf
        nxt, probs = pick(relevant, cfg, rng, out.running)
        stop = nxt == C.SEMANTIC_PAD_TOKEN
        if cfg.min_eos_p is not None and may_stop:
            stop |= probs[:, C.SEMANTIC_PAD_TOKEN] >= cfg.min_eos_p
        if not out.add(n, nxt, stop, progress):
            break
        logits = gpt.forward(nxt[:, None], pos + n, keys)
    return out.result()


class SemanticTokens:
    """A batch's semantic tokens as they are picked: each sequence stops at its first end, or at `max_new`."""

    def __init__(self, batch: int, max_new: int):
        self.tokens = np.full((batch, max_new), C.SEMANTIC_PAD_TOKEN, np.int64)
        self.lengths = np.full(batch, max_new, np.int64)
        self.running = np.ones(batch, bool)

    def add(self, n: int, nxt: np.ndarray, stop: np.ndarray, progress=None) -> bool:
        """Record token `n` (B,) of every running sequence, or its end where `stop`; False when all have ended."""
        self.lengths[self.running & stop] = n
        self.running &= ~stop
        self.tokens[self.running, n] = nxt[self.running]
        if progress is not None:
            progress.update(1)
        return bool(self.running.any()) and n < self.tokens.shape[1] - 1

    def result(self) -> tuple[np.ndarray, np.ndarray]:
        """Tokens (B, N) with SEMANTIC_PAD_TOKEN after each sequence's end, and lengths (B,)."""
        return self.tokens[:, :self.lengths.max()], self.lengths
