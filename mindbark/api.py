"""Suno-style helpers: `generate_audio`, `text_to_semantic`, `semantic_to_waveform`.

Unlike Suno's, they take the model and processor as arguments: mindbark keeps no global models.
"""

import numpy as np

from . import pipeline
from .generation.config import GenerationConfig, config_from_kwargs, max_tokens_for
from .voices import load_voice

_DEFAULT = GenerationConfig()
_TEXT_TEMP = _DEFAULT.semantic.temperature
_WAVEFORM_TEMP = _DEFAULT.coarse.temperature
_FINE_TEMP = _DEFAULT.fine.temperature
_MIN_EOS_P = _DEFAULT.semantic.min_eos_p


def _voice(model, history_prompt):
    return None if history_prompt is None else load_voice(history_prompt, model.path)


def _config(text_temp: float | None = _TEXT_TEMP, waveform_temp: float | None = _WAVEFORM_TEMP,
            fine_temp: float | None = _FINE_TEMP, **kwargs) -> GenerationConfig:
    return config_from_kwargs(semantic_temperature=text_temp, coarse_temperature=waveform_temp,
                              fine_temperature=fine_temp, **kwargs)


def text_to_semantic(text: str, model, processor, history_prompt=None, temp: float | None = _TEXT_TEMP,
                     min_eos_p: float | None = _MIN_EOS_P, max_new_tokens: int = _DEFAULT.semantic.max_new_tokens,
                     seed=None, silent: bool = False) -> np.ndarray:
    """Semantic tokens (N,) for one text.

    Args:
        text: what to say; non-verbal cues like `[laughter]` allowed.
        model: a loaded `BarkModel`. processor: its `BarkProcessor`.
        history_prompt: a voice: preset name, `.npz` path or dict (None: a random voice).
        temp: sampling temperature (None or 0: greedy).
        min_eos_p: stop once p(end) reaches this. max_new_tokens: at most this many tokens.
        seed: makes the result reproducible. silent: no progress bar.
    """
    inputs = processor(text)
    cfg = _config(text_temp=temp, semantic_min_eos_p=min_eos_p, semantic_max_new_tokens=max_new_tokens)
    tokens, lengths = pipeline.text_to_semantic(model, inputs["input_ids"], inputs["attention_mask"],
                                                _voice(model, history_prompt), cfg, seed, silent)
    return tokens[0, :lengths[0]]


def semantic_to_waveform(semantic_tokens: np.ndarray, model, history_prompt=None,
                         temp: float | None = _WAVEFORM_TEMP, fine_temp: float | None = _FINE_TEMP, seed=None, silent: bool = False, output_full: bool = False):
    """Audio (T,) at 24 kHz for semantic tokens; with `output_full`, (voice dict of this generation, audio).

    Args:
        semantic_tokens: (N,) ids from `text_to_semantic`.
        model: a loaded `BarkModel`.
        history_prompt: the voice the semantic tokens were made with.
        temp: coarse sampling temperature; fine_temp: fine one (None or 0: greedy).
        seed: makes the result reproducible. silent: no progress bar.
        output_full: also return the generation as a reusable voice preset (Suno's `output_full`).
    """
    tokens = np.asarray(semantic_tokens, np.int64).reshape(1, -1)
    result = pipeline.semantic_to_audio(model, tokens, [tokens.shape[1]], _voice(model, history_prompt),
                                        _config(waveform_temp=temp, fine_temp=fine_temp), seed, silent)
    return (result.voice(0), result.audio[0]) if output_full else result.audio[0]


def generate_audio(text: str, model, processor, history_prompt=None, text_temp: float | None = _TEXT_TEMP,
                   waveform_temp: float | None = _WAVEFORM_TEMP, min_eos_p: float | None = _MIN_EOS_P,
                   max_duration: float | None = None, seed=None, silent: bool = False, output_full: bool = False):
    """Audio (T,) at 24 kHz for one text, through all four stages; Suno's defaults.

    Args:
        text: what to say; non-verbal cues like `[laughter]` allowed.
        model: a loaded `BarkModel`. processor: its `BarkProcessor`.
        history_prompt: a voice: preset name, `.npz` path or dict (None: a random voice).
        text_temp: semantic temperature. waveform_temp: coarse temperature (fine samples at the fine stage's default, as Suno's).
        min_eos_p: end once p(end of speech) reaches this. max_duration: at most this many seconds.
        seed: makes the result reproducible. silent: no progress bars.
        output_full: also return the generation as a reusable voice preset.
    """
    inputs = processor(text)
    cfg = _config(text_temp, waveform_temp, semantic_min_eos_p=min_eos_p,
                  semantic_max_new_tokens=max_tokens_for(max_duration))
    result = pipeline.generate(model, inputs["input_ids"], inputs["attention_mask"], _voice(model, history_prompt),
                               cfg, seed, silent)
    return (result.voice(0), result.audio[0]) if output_full else result.audio[0]
