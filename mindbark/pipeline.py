"""The whole data path in one place: tokens -> semantic -> coarse -> fine -> codec -> waveform."""

import time
from dataclasses import dataclass, field

import mindspore as ms
import numpy as np
from mindspore import Tensor
from tqdm.auto import tqdm

from . import constants as C
from .generation.coarse import coarse_lengths, generate_coarse
from .generation.config import GenerationConfig
from .generation.fine import generate_fine
from .generation.semantic import generate_semantic, semantic_history, text_prompt


@dataclass
class GenerationResult:
    """Per-item outputs of every stage, and seconds spent per stage (semantic, coarse, fine, codec)."""

    audio: list
    semantic: list
    fine: list
    sample_rate: int
    timings: dict = field(default_factory=dict)

    def voice(self, i: int = 0) -> dict:
        """Item `i` as a voice preset, to condition later generations (Suno's `output_full`)."""
        fine = self.fine[i]
        return {"semantic_prompt": self.semantic[i], "coarse_prompt": fine[:C.N_COARSE_CODEBOOKS], "fine_prompt": fine}


def _voices(history_prompt, batch: int) -> list:
    if isinstance(history_prompt, (list, tuple)):
        if len(history_prompt) != batch:
            raise ValueError(f"{len(history_prompt)} voice presets for a batch of {batch} texts")
        return list(history_prompt)
    return [history_prompt] * batch


def _groups(voices: list) -> list:
    """Items sharing a voice run together: the coarse and fine stages need equal history lengths in a batch."""
    groups = {}
    for i, v in enumerate(voices):
        groups.setdefault(id(v), []).append(i)
    return list(groups.values())


class _Stage:
    """Times a stage and gives it a progress bar (or none when silent)."""

    def __init__(self, timings: dict, name: str, silent: bool):
        self.timings, self.name, self.silent = timings, name, silent

    def __enter__(self):
        self.start = time.perf_counter()
        self.bar = tqdm(desc=self.name, unit="tok" if self.name != "fine" else "pass", disable=self.silent,
                        leave=False)
        return self.bar

    def __exit__(self, *exc):
        self.bar.close()
        self.timings[self.name] = self.timings.get(self.name, 0.0) + time.perf_counter() - self.start


def generate(model, input_ids: np.ndarray, attention_mask: np.ndarray | None = None, history_prompt=None,
             config: GenerationConfig = GenerationConfig(), seed: int | None = None,
             silent: bool = True) -> GenerationResult:
    """Text token ids to waveforms.

    Args:
        model: a loaded `BarkModel`.
        input_ids: (B, T) tokenizer ids (from `BarkProcessor`).
        attention_mask: (B, T), 0 on padding.
        history_prompt: None, one voice preset dict for all items, or a list with one per item.
        config: per-stage sampling settings.
        seed: makes sampling reproducible run to run.
        silent: no progress bars.
    """
    input_ids = np.atleast_2d(np.asarray(input_ids))
    mask = None if attention_mask is None else np.atleast_2d(np.asarray(attention_mask))
    b = input_ids.shape[0]
    voices = _voices(history_prompt, b)
    rng = np.random.default_rng(seed)
    timings = {}
    with _Stage(timings, "semantic", silent) as bar:
        history = np.stack([semantic_history(None if v is None else v["semantic_prompt"]) for v in voices])
        sem, sem_len = generate_semantic(model.semantic, text_prompt(input_ids, mask), history, config.semantic,
                                         rng, bar)
    fine_out, frames = [None] * b, np.zeros(b, int)
    for items in _groups(voices):
        voice = voices[items[0]]
        with _Stage(timings, "coarse", silent) as bar:
            bar.total = int(coarse_lengths(sem_len[items]).max())
            coarse, n = generate_coarse(model.coarse_acoustics, sem[items], sem_len[items], voice, config.coarse,
                                        rng, bar)
        with _Stage(timings, "fine", silent) as bar:
            fine = generate_fine(model.fine_acoustics, coarse, voice, config.fine, rng, bar)
        for j, i in enumerate(items):
            fine_out[i], frames[i] = fine[j], n[j]
    audio = []
    with _Stage(timings, "codec", silent):
        for i in range(b):
            # decoded one by one at their own lengths: the codec's LSTM would carry padding into the audio
            codes = Tensor(fine_out[i][None, :, :frames[i]], ms.int32)
            audio.append(model.codec_model.decode(codes).asnumpy()[0] if frames[i] else np.zeros(0, np.float32))
    return GenerationResult(audio=audio, semantic=[sem[i, :sem_len[i]] for i in range(b)],
                            fine=[fine_out[i][:, :frames[i]] for i in range(b)],
                            sample_rate=model.generation_config.sample_rate, timings=timings)
