"""Generation settings, the one source of their defaults: per stage (Suno's end-user defaults, sampling, not
`transformers`' greedy ones), and how a long text is cut, batched and joined."""

import math
from dataclasses import dataclass, replace

from .. import constants as C


@dataclass(frozen=True)
class Sampling:
    """How one stage picks tokens.

    Args:
        temperature: softmax temperature; None or 0 means greedy (argmax).
        top_k: keep only the k most likely tokens (None: all).
        top_p: keep the smallest set of tokens whose probability reaches top_p (None or 1: all).
    """

    temperature: float | None = 0.7
    top_k: int | None = None
    top_p: float | None = None

    def __post_init__(self):
        if self.temperature is not None and not self.temperature >= 0:
            raise ValueError(f"temperature must be >= 0 (0 or None: greedy), got {self.temperature}")
        if self.top_k is not None and (int(self.top_k) != self.top_k or self.top_k < 1):
            raise ValueError(f"top_k must be a positive integer, got {self.top_k}")
        if self.top_p is not None and not 0 < self.top_p <= 1:
            raise ValueError(f"top_p must be in (0, 1], got {self.top_p}")

    @property
    def greedy(self) -> bool:
        return not self.temperature


@dataclass(frozen=True)
class SemanticConfig(Sampling):
    """Text -> semantic tokens.

    Args:
        min_eos_p: stop once p(end of sequence) reaches this (None: only when EOS is picked).
        max_new_tokens: at most this many semantic tokens (Bark's limit, `MAX_SEMANTIC_TOKENS`, is ~15 s of audio).
        min_new_tokens: EOS is forbidden before this many tokens (transformers' name; the benchmark uses it to
            force equal work).
    """

    min_eos_p: float | None = 0.2
    max_new_tokens: int = C.MAX_SEMANTIC_TOKENS
    min_new_tokens: int = 0

    def __post_init__(self):
        super().__post_init__()
        if self.min_eos_p is not None and not 0 < self.min_eos_p <= 1:
            raise ValueError(f"min_eos_p must be in (0, 1], got {self.min_eos_p}")
        if not 1 <= self.max_new_tokens <= C.MAX_SEMANTIC_TOKENS:
            raise ValueError(f"max_new_tokens must be in [1, {C.MAX_SEMANTIC_TOKENS}], got {self.max_new_tokens}")
        if not 0 <= self.min_new_tokens <= self.max_new_tokens:
            raise ValueError(f"min_new_tokens must be in [0, max_new_tokens], got {self.min_new_tokens}")


@dataclass(frozen=True)
class CoarseConfig(Sampling):
    """Semantic -> the first two codebooks, in sliding windows.

    Args:
        max_history: coarse tokens of history each window sees (Suno: 630).
        window: coarse tokens generated per window (Suno: 60).
    """

    max_history: int = C.MAX_COARSE_HISTORY
    window: int = C.COARSE_SLIDING_WINDOW

    def __post_init__(self):
        super().__post_init__()
        if self.max_history % 2 or not 0 <= self.max_history <= C.MAX_COARSE_HISTORY:
            raise ValueError(f"max_history must be even and in [0, {C.MAX_COARSE_HISTORY}], got {self.max_history}")
        if self.window % 2 or not 2 <= self.window <= C.CONTEXT_WINDOW - C.MAX_INPUT_SEMANTIC_LENGTH - 1 - \
                self.max_history:
            raise ValueError(f"window must be even and fit the context beside the history, got {self.window}")


@dataclass(frozen=True)
class FineConfig(Sampling):
    """Coarse -> all eight codebooks. Suno samples at 0.5."""

    temperature: float | None = 0.5


@dataclass(frozen=True)
class GenerationConfig:
    semantic: SemanticConfig = SemanticConfig()
    coarse: CoarseConfig = CoarseConfig()
    fine: FineConfig = FineConfig()
    sample_rate: int = C.SAMPLE_RATE


def max_tokens_for(max_duration: float | None) -> int:
    """Semantic tokens for at most `max_duration` seconds of audio (None: Bark's limit, about 15 s)."""
    if max_duration is None:
        return C.MAX_SEMANTIC_TOKENS
    if not max_duration > 0:
        raise ValueError(f"max_duration must be > 0 seconds, got {max_duration}")
    return max(1, min(C.MAX_SEMANTIC_TOKENS, int(max_duration * C.SEMANTIC_RATE_HZ)))


@dataclass(frozen=True)
class LongFormOptions:
    """How a long text is cut, batched and joined.

    Args:
        max_chars: characters per chunk at most; about 13 s of speech, Bark's comfortable length.
        batch_size: chunks generated together after the first.
        silence: seconds of silence between chunks.
    """

    max_chars: int = 200
    batch_size: int = 8
    silence: float = 0.25

    def __post_init__(self):
        if not (isinstance(self.max_chars, int) and self.max_chars >= 1):
            raise ValueError(f"max_chars must be an integer >= 1, got {self.max_chars!r}")
        if not (isinstance(self.batch_size, int) and self.batch_size >= 1):
            raise ValueError(f"batch_size must be an integer >= 1, got {self.batch_size!r}")
        if not (math.isfinite(self.silence) and self.silence >= 0):
            raise ValueError(f"silence must be >= 0 seconds, got {self.silence!r}")


_STAGE_KEYS = {  # transformers' argument names -> ours, per stage
    "semantic": {"temperature": "temperature", "top_k": "top_k", "top_p": "top_p", "min_eos_p": "min_eos_p",
                 "max_new_tokens": "max_new_tokens", "min_new_tokens": "min_new_tokens"},
    "coarse": {"temperature": "temperature", "top_k": "top_k", "top_p": "top_p",
               "max_coarse_history": "max_history", "sliding_window_len": "window"},
    "fine": {"temperature": "temperature", "top_k": "top_k", "top_p": "top_p"},
}
_PREFIXES = {"semantic_": "semantic", "coarse_": "coarse", "fine_": "fine"}
# accepted for drop-in compatibility with transformers / MindNLP calls; they change nothing here
# (padding after EOS is tracked by lengths, not by a pad id)
_IGNORED = {"pad_token_id", "output_scores", "return_dict_in_generate", "renormalize_logits"}


def config_from_kwargs(base: GenerationConfig = GenerationConfig(), **kwargs) -> GenerationConfig:
    """Apply `transformers`-style generate() arguments: unprefixed ones go to every stage that has them,
    `semantic_` / `coarse_` / `fine_` prefixed ones to that stage only (and win). `do_sample=False` means greedy.
    """
    per_stage = {stage: {} for stage in _STAGE_KEYS}
    for prefixed in (False, True):
        for key, value in kwargs.items():
            prefix = next((p for p in _PREFIXES if key.startswith(p)), None)
            if (prefix is not None) != prefixed:
                continue
            stages = [_PREFIXES[prefix]] if prefix else list(_STAGE_KEYS)
            name = key[len(prefix):] if prefix else key
            if name in _IGNORED:
                continue
            known = [s for s in stages if name in _STAGE_KEYS[s] or name == "do_sample"]
            if not known:
                raise TypeError(f"generate() got an unexpected argument {key!r}")
            for stage in known:
                per_stage[stage][name] = value
    stages = {}
    for stage, args in per_stage.items():
        sampling = args.pop("do_sample", None)
        fields = {_STAGE_KEYS[stage][k]: v for k, v in args.items()}
        if sampling is False:
            fields["temperature"] = None
        stages[stage] = replace(getattr(base, stage), **fields)
    return replace(base, **stages)
