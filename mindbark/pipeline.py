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
from .generation.sampling import Rng
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
        return as_voice(self.semantic[i], self.fine[i])


def as_voice(semantic: np.ndarray, fine: np.ndarray) -> dict:
    """One generation's semantic tokens (N,) and codes (8, T) as a voice preset dict."""
    return {"semantic_prompt": semantic, "coarse_prompt": fine[:C.N_COARSE_CODEBOOKS], "fine_prompt": fine}


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


_SUBMODELS = {"semantic": "semantic", "coarse": "coarse_acoustics", "fine": "fine_acoustics"}


class _Stage:
    """Times a stage, gives it a progress bar (or none when silent), and lets its sub-model go when it ends."""

    def __init__(self, model, timings: dict, name: str, silent: bool):
        self.model, self.timings, self.name, self.silent = model, timings, name, silent

    def __enter__(self):
        self.start = time.perf_counter()
        self.bar = tqdm(desc=self.name, unit="tok" if self.name != "fine" else "pass", disable=self.silent,
                        leave=False)
        return self.bar

    def __exit__(self, *exc):
        self.bar.close()
        self.model.release(_SUBMODELS[self.name])
        self.timings[self.name] = self.timings.get(self.name, 0.0) + time.perf_counter() - self.start


def as_rng(seed, batch: int | None = None) -> Rng:
    """A generator for an int, None or a Generator (returned as is); for a list of those, one generator per item.

    Args:
        batch: the batch size a list of seeds must match.
    """
    if not isinstance(seed, (list, tuple)):
        return seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
    if batch is not None and len(seed) != batch:
        raise ValueError(f"{len(seed)} seeds for a batch of {batch} texts")
    return [as_rng(s) for s in seed]


def _items_rng(rng: Rng, items: list) -> Rng:
    return rng if isinstance(rng, np.random.Generator) else [rng[i] for i in items]


def stages(model) -> tuple:
    """The semantic, coarse and fine stage functions of `model`'s engine: the host-sampling ones, or those of its
    `device_engine` (`generation.device`), which take the same arguments."""
    engine = getattr(model, "device_engine", None)
    if engine is None:
        return generate_semantic, generate_coarse, generate_fine
    return engine.semantic, engine.coarse, engine.fine


def text_to_semantic(model, input_ids: np.ndarray, attention_mask: np.ndarray | None = None, history_prompt=None,
                     config: GenerationConfig = GenerationConfig(), seed=None, silent: bool = True,
                     timings: dict | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Semantic tokens (B, N) padded with SEMANTIC_PAD_TOKEN, and their lengths (B,).

    Args:
        model: a loaded `BarkModel`.
        input_ids: (B, T) tokenizer ids (from `BarkProcessor`).
        attention_mask: (B, T), 0 on padding.
        history_prompt: None, one voice preset dict for all items, or a list with one per item.
        config: per-stage sampling settings (only `config.semantic` is used).
        seed: an int (reproducible), None, or a numpy Generator to continue; or a list of those, one per item:
            each item then samples from its own generator only, so its result equals its solo run with that seed.
        silent: no progress bar.
        timings: if given, seconds spent are added under "semantic".
    """
    input_ids = np.atleast_2d(np.asarray(input_ids))
    mask = None if attention_mask is None else np.atleast_2d(np.asarray(attention_mask))
    voices = _voices(history_prompt, input_ids.shape[0])
    with _Stage(model, {} if timings is None else timings, "semantic", silent) as bar:
        bar.total = config.semantic.max_new_tokens
        history = np.stack([semantic_history(None if v is None else v["semantic_prompt"]) for v in voices])
        return stages(model)[0](model.semantic, text_prompt(input_ids, mask), history, config.semantic,
                                as_rng(seed, len(voices)), bar)


def semantic_to_codes(model, semantic: np.ndarray, lengths: np.ndarray, history_prompt=None,
                      config: GenerationConfig = GenerationConfig(), seed=None, silent: bool = True,
                      timings: dict | None = None) -> list[np.ndarray]:
    """Coarse and fine stages: one (8, frames) code array per item of semantic tokens (B, N) with lengths (B,).

    Arguments as `text_to_semantic`. Every item's codes equal its unbatched run's (greedy, or sampled with a seed
    per item).
    """
    semantic = np.atleast_2d(np.asarray(semantic, np.int64))
    lengths = np.asarray(lengths, np.int64).reshape(-1)
    voices = _voices(history_prompt, semantic.shape[0])
    rng = as_rng(seed, len(voices))
    timings = {} if timings is None else timings
    codes = [None] * semantic.shape[0]
    _, coarse_stage, fine_stage = stages(model)
    for items in _groups(voices):
        voice = voices[items[0]]
        with _Stage(model, timings, "coarse", silent) as bar:
            bar.total = int(coarse_lengths(lengths[items]).max())
            coarse, frames = coarse_stage(model.coarse_acoustics, semantic[items], lengths[items], voice,
                                          config.coarse, _items_rng(rng, items), bar)
        with _Stage(model, timings, "fine", silent) as bar:
            fine = fine_stage(model.fine_acoustics, coarse, frames, voice, config.fine, _items_rng(rng, items), bar)
        for j, i in enumerate(items):
            codes[i] = fine[j]
    return codes


def codes_to_audio(model, codes: np.ndarray, timings: dict | None = None) -> np.ndarray:
    """One item's waveform (T,) from its codes (8, frames); seconds spent are added to timings["codec"]."""
    start = time.perf_counter()
    # items are decoded one by one at their own lengths: the codec's LSTM would carry padding into the audio
    audio = (model.codec_model.decode(Tensor(codes[None], ms.int32)).asnumpy()[0] if codes.shape[1]
             else np.zeros(0, np.float32))
    if timings is not None:
        timings["codec"] = timings.get("codec", 0.0) + time.perf_counter() - start
    return audio


def semantic_to_audio(model, semantic: np.ndarray, lengths: np.ndarray, history_prompt=None,
                      config: GenerationConfig = GenerationConfig(), seed=None, silent: bool = True,
                      timings: dict | None = None) -> GenerationResult:
    """Coarse, fine and codec stages for semantic tokens (B, N) with lengths (B,); arguments as `text_to_semantic`."""
    timings = {} if timings is None else timings
    lengths = np.asarray(lengths, np.int64).reshape(-1)
    codes = semantic_to_codes(model, semantic, lengths, history_prompt, config, seed, silent, timings)
    audio = [codes_to_audio(model, c, timings) for c in codes]
    semantic = np.atleast_2d(np.asarray(semantic, np.int64))
    return GenerationResult(audio=audio, semantic=[semantic[i, :n] for i, n in enumerate(lengths)], fine=codes,
                            sample_rate=model.sample_rate, timings=timings)


def generate(model, input_ids: np.ndarray, attention_mask: np.ndarray | None = None, history_prompt=None,
             config: GenerationConfig = GenerationConfig(), seed=None, silent: bool = True,
             timings: dict | None = None) -> GenerationResult:
    """Text token ids to waveforms through all four stages; arguments as `text_to_semantic`.

    A batched item's result equals its unbatched run's (greedy, or sampled with a seed per item): items keep their
    own lengths in every stage.
    """
    rng = as_rng(seed, np.atleast_2d(np.asarray(input_ids)).shape[0])
    timings = {} if timings is None else timings
    semantic, lengths = text_to_semantic(model, input_ids, attention_mask, history_prompt, config, rng, silent,
                                         timings)
    return semantic_to_audio(model, semantic, lengths, history_prompt, config, rng, silent, timings)
