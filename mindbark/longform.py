"""Text of any length -> one waveform: split into chunks, spoken in one voice in batches, joined with silence.

Bark speaks about 13 s per generation and reads at most 256 text ids, so a long text is split into sentence-sized
chunks (`split.split_text`). The first chunk runs alone: its audio comes soonest, and without a preset its own
generation becomes the voice of every later chunk, so an unnamed voice stays the same. The other chunks run in
batches; a batched chunk's result equals its unbatched run, so the batch size changes speed only: each chunk
samples from a generator of its own, spawned from the seed (`chunk_rngs`).
"""

from collections.abc import Iterator
from dataclasses import dataclass, field

import numpy as np

from . import constants as C
from . import pipeline
from .generation.config import GenerationConfig, LongFormOptions
from .split import split_text
from .voices import load_voice

__all__ = ["Chunk", "LongFormOptions", "LongResult", "generate_long", "join", "split", "stream"]


@dataclass
class Chunk:
    """Chunk `index` of `total`: its text, audio (T,) and generation as a voice preset (`semantic_prompt`, ...)."""

    index: int
    total: int
    text: str
    audio: np.ndarray
    voice: dict


@dataclass
class LongResult:
    """The joined audio (T,), its chunks, and seconds spent per stage over all of them."""

    audio: np.ndarray
    chunks: list
    sample_rate: int
    timings: dict = field(default_factory=dict)


def split(processor, text: str, max_chars: int = LongFormOptions.max_chars) -> list[str]:
    """`text` as chunks the semantic model reads whole; ValueError when there is nothing to say."""
    chunks = split_text(text, max_chars, processor.count_tokens, C.MAX_INPUT_SEMANTIC_LENGTH)
    if not chunks:
        raise ValueError("text is empty")
    return chunks


def chunk_rngs(seed, n: int) -> list[np.random.Generator]:
    """One random generator per chunk, spawned from `seed` (an int, None or a Generator to continue).

    A chunk's sampling then depends on the seed and its index alone, never on which chunks share its batch.
    """
    return pipeline.as_rng(seed).spawn(n)


def stream(model, processor, text: str | list[str], history_prompt=None, config: GenerationConfig = GenerationConfig(),
           options: LongFormOptions = LongFormOptions(), seed=None, silent: bool = True,
           timings: dict | None = None) -> Iterator[Chunk]:
    """Yield each chunk of `text` as soon as its audio is decoded, in order.

    Args:
        model: a loaded `BarkModel`. processor: its `BarkProcessor`.
        text: what to say, any length; or a list of chunks already cut (each read up to 256 ids).
        history_prompt: a voice (preset name, `.npz` path or dict); None: the first chunk's voice for all.
        config: per-stage sampling settings, for every chunk.
        options: chunk size, batch size, silence.
        seed: an int (reproducible), None, or a numpy Generator to continue.
        silent: no progress bars.
        timings: if given, seconds spent per stage are added to it.
    """
    chunks = split(processor, text, options.max_chars) if isinstance(text, str) else list(text)
    if not chunks:
        raise ValueError("no text chunks")
    voice = None if history_prompt is None else load_voice(history_prompt, model.path)
    rngs = chunk_rngs(seed, len(chunks))
    timings = {} if timings is None else timings
    starts = [0] + list(range(1, len(chunks), options.batch_size))
    for start, end in zip(starts, starts[1:] + [len(chunks)]):
        inputs = processor(chunks[start:end])
        semantic, lengths = pipeline.text_to_semantic(model, inputs["input_ids"], inputs["attention_mask"], voice,
                                                      config, rngs[start:end], silent, timings)
        codes = pipeline.semantic_to_codes(model, semantic, lengths, voice, config, rngs[start:end], silent,
                                           timings)
        for j, fine in enumerate(codes):
            audio = pipeline.codes_to_audio(model, fine, timings)
            chunk = Chunk(start + j, len(chunks), chunks[start + j], audio,
                          pipeline.as_voice(semantic[j, :lengths[j]], fine))
            yield chunk
        if voice is None:
            voice = chunk.voice  # the first chunk ran alone: its voice carries to the rest


def join(audio: list, sample_rate: int, silence: float) -> np.ndarray:
    """Waveforms end to end with `silence` seconds between them."""
    gap = np.zeros(int(round(silence * sample_rate)), np.float32)
    parts = [p for a in audio for p in (gap, a)][1:]
    return np.concatenate(parts).astype(np.float32) if parts else np.zeros(0, np.float32)


def generate_long(model, processor, text: str | list[str], history_prompt=None,
                  config: GenerationConfig = GenerationConfig(), options: LongFormOptions = LongFormOptions(),
                  seed=None, silent: bool = True, on_chunk=None) -> LongResult:
    """Speak `text` of any length in one voice; arguments as `stream`.

    The audio is the chunks' audio joined with `options.silence` seconds between them. `on_chunk`, if given, is
    called with each `Chunk` as soon as its audio is ready.
    """
    timings, chunks = {}, []
    for chunk in stream(model, processor, text, history_prompt, config, options, seed, silent, timings):
        chunks.append(chunk)
        if on_chunk is not None:
            on_chunk(chunk)
    sample_rate = model.sample_rate
    return LongResult(join([c.audio for c in chunks], sample_rate, options.silence), chunks, sample_rate, timings)
