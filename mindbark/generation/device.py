"""The device engine's stages: Bark's generation with the KV caches on the device and the sampling in the graphs.

Each stage runs the same schedule as its host twin (`semantic`, `coarse`, `fine`: the same prompts, windows and
bookkeeping, shared with them), but a decode step returns only the sampled ids (B,) and an end flag (B,), and a
fine pass returns the window's codes with the sampled codebook written in, which the next pass reads on the
device. The random draws come from a seed per item, taken once per stage from the caller's generator (or each
item's own), and a count of draws (`models.sampler`): a seed gives the same tokens on every run, and an item's
noise does not depend on the others in its batch.
"""

import mindspore as ms
import numpy as np
from mindspore import Tensor, nn, ops

from .. import constants as C
from ..graph_ops import arange
from ..jit import compiled
from ..models.device_gpt import DeviceGPT
from ..models.fine import FineGPT
from ..models.gpt import GPT
from ..models.sampler import pick, row_seeds, settings
from .coarse import OFFSETS, sliding_windows
from .config import CoarseConfig, FineConfig, SemanticConfig
from .fine import fine_windows
from .semantic import SemanticTokens


def _seeds(rng, batch: int) -> np.ndarray:
    """A noise seed per item (B,) int32: from one generator for the batch, or from each item's own."""
    if isinstance(rng, np.random.Generator):
        return rng.integers(0, 2**31 - 1, batch).astype(np.int32)
    return np.array([g.integers(0, 2**31 - 1) for g in rng], np.int32)


class DeviceFine(nn.Cell):
    """A fine pass that samples in the graph: the window's codes (B, T, n_codes_total) in, the same codes with
    codebook `book` replaced from frame `rel` on out."""

    def __init__(self, fine: FineGPT):
        super().__init__()
        self.fine = fine
        self._fill = compiled(self.fill, self, "device_fine")

    def fill(self, codes, book, rel, mode, params, seeds, draw):
        b, t, n = codes.shape
        logits = self.fine(codes, book)[:, :, :C.CODEBOOK_SIZE]  # (B, T, 1024): the pad ids are never targets
        ids, _ = pick(logits.reshape(b * t, C.CODEBOOK_SIZE), mode, params, row_seeds(seeds, t), draw)
        target = ops.logical_and((arange(t) >= rel).reshape(1, t, 1), (arange(n) == book).reshape(1, 1, n))
        return ops.select(ops.tile(target, (b, 1, 1)), ops.tile(ids.reshape(b, t, 1), (1, 1, n)), codes)


class DeviceEngine:
    """Runs the semantic, coarse and fine stages of `networks` on the device engine's graphs.

    Args:
        networks: a `BarkNetworks` (or anything with its `semantic`, `coarse_acoustics`, `fine_acoustics`).
    """

    def __init__(self, networks):
        self.networks = networks
        self._gpts = {}
        self.fine_pass = DeviceFine(networks.fine_acoustics)
        self.fine_pass.set_train(False)

    def gpt(self, gpt: GPT, batch: int) -> DeviceGPT:
        """`gpt`'s device runner for `batch` sequences; the last batch size per model is kept (its cache is
        block_size positions per sequence on the device)."""
        runner = self._gpts.get(id(gpt))
        if runner is None or runner.batch != batch:
            runner = self._gpts[id(gpt)] = DeviceGPT(gpt, batch)
            runner.set_train(False)
        return runner

    def semantic(self, gpt: GPT, text: np.ndarray, history: np.ndarray, cfg: SemanticConfig,
                 rng: np.random.Generator, progress=None) -> tuple[np.ndarray, np.ndarray]:
        """As `semantic.generate_semantic`."""
        b = text.shape[0]
        runner = self.gpt(gpt, b)
        keys = Tensor(np.ones((b, gpt.config.block_size), bool))
        runner.prefill(gpt.embed(Tensor(text, ms.int32)) + gpt.embed(Tensor(history, ms.int32)), keys)
        # only real semantic ids and EOS may be sampled: the head's first SEMANTIC_VOCAB_SIZE + 1 rows
        heads = gpt.lm_head.weight[:C.SEMANTIC_VOCAB_SIZE + 1].reshape(1, C.SEMANTIC_VOCAB_SIZE + 1, -1)
        sampling = settings(cfg.temperature, cfg.top_k, cfg.top_p, C.SEMANTIC_VOCAB_SIZE + 1)
        offsets, seeds = Tensor([0], ms.int32), Tensor(_seeds(rng, b))
        pos = text.shape[1]  # the infer token's position
        ids = np.full(b, C.SEMANTIC_INFER_TOKEN, np.int32)
        out = SemanticTokens(b, cfg.max_new_tokens)
        for n in range(cfg.max_new_tokens):
            ids, end = runner.step(ids, pos + n, keys, heads, offsets, pos, C.SEMANTIC_PAD_TOKEN,
                                   n >= cfg.min_new_tokens, cfg.min_eos_p, sampling, seeds, n)
            if not out.add(n, ids.asnumpy().astype(np.int64), end.asnumpy(), progress):
                break
        return out.result()

    def coarse(self, gpt: GPT, semantic: np.ndarray, lengths: np.ndarray, voice: dict | None, cfg: CoarseConfig,
               rng: np.random.Generator, progress=None) -> tuple[np.ndarray, np.ndarray]:
        """As `coarse.generate_coarse`."""
        b = semantic.shape[0]
        runner = self.gpt(gpt, b)
        keys = Tensor(np.ones((b, gpt.config.block_size), bool))
        weight = gpt.lm_head.weight
        heads = ops.stack([weight[lo:lo + C.CODEBOOK_SIZE] for lo in OFFSETS])  # (2, 1024, C)
        offsets = Tensor(OFFSETS, ms.int32)
        sampling = settings(cfg.temperature, cfg.top_k, cfg.top_p, C.CODEBOOK_SIZE)
        seeds, draws = Tensor(_seeds(rng, b)), [0]

        def window(prompt: np.ndarray, n: int, _done: int) -> np.ndarray:  # an item's draws count its own steps
            # the prompt's last position goes through the decode step, which samples the first new token
            runner.prefill(prompt[:, :-1], keys)
            ids, new, origin = prompt[:, -1], [], prompt.shape[1] - 1
            for step in range(n):
                ids, _ = runner.step(ids, origin + step, keys, heads, offsets, origin, -1, False, None, sampling,
                                     seeds, draws[0])
                draws[0] += 1
                new.append(ids)
                if progress is not None:
                    progress.update(1)
            return ops.stack(new, axis=1).asnumpy().astype(np.int64)  # one transfer per window

        return sliding_windows(semantic, lengths, voice, cfg, window)

    def fine(self, gpt: FineGPT, coarse: np.ndarray, frames: np.ndarray, voice: dict | None, cfg: FineConfig,
             rng: np.random.Generator, progress=None) -> list[np.ndarray]:
        """As `fine.generate_fine`."""
        mode, params = settings(cfg.temperature, cfg.top_k, cfg.top_p, C.CODEBOOK_SIZE)
        seeds, draws = _seeds(rng, coarse.shape[0]), [0] * coarse.shape[0]  # each item counts its own draws

        def fill(window: np.ndarray, rel: int, n_coarse: int, item: int) -> np.ndarray:
            codes = Tensor(window, ms.int32)
            for book in range(n_coarse, gpt.config.n_codes_total):
                codes = self.fine_pass._fill(codes, Tensor(book, ms.int64), Tensor(rel, ms.int64), mode, params,
                                             Tensor(seeds[item:item + 1]), Tensor([draws[item]], ms.int32))
                draws[item] += 1
                if progress is not None:
                    progress.update(1)
            return codes.asnumpy().astype(np.int64)  # one transfer per window

        return fine_windows(coarse, frames, voice, gpt.config.n_codes_total, fill)
