"""What an operator sets for `mindbark serve`: the model, batching, limits, voices and the API key."""

import math
import os
from dataclasses import dataclass, field
from pathlib import Path

from ..generation.config import LongFormOptions, max_tokens_for
from ..weight_formats import check_format

API_KEY_ENV = "MINDBARK_API_KEY"


@dataclass(frozen=True)
class ServeConfig:
    """Settings of one serving process (a Ray Serve replica runs one each).

    Args:
        model: `bark-small`, `bark`, `tiny-random` or a model directory (see `mindbark.hub.resolve_model`).
        device / dtype / offload / weights: as `BarkModel.from_pretrained`.
        host / port: where uvicorn listens; 127.0.0.1 unless the operator opens it.
        batch_size: chunks generated together, across requests.
        batch_wait: seconds the scheduler waits for more chunks once one arrived at an idle model (little beside a
            generation's seconds, and enough for clients that start together to meet).
        max_queue: requests admitted at once (waiting or generating); more get 429.
        max_input_chars: longest `input` accepted (413 beyond).
        max_duration: the most seconds of audio per chunk a request may ask for (None: Bark's ~15 s).
        request_timeout: seconds a request may take in all (504 beyond).
        chunk_chars / silence: how long inputs are cut and joined, as the CLI's --chunk-chars / --silence.
        voices_dir: a directory of `NAME.npz` voices the clients may name, besides the presets.
        api_key: clients must send `Authorization: Bearer KEY` when set.
        shutdown_timeout: seconds in-flight requests get to finish at shutdown before they are cancelled.
    """

    model: str = "bark-small"
    device: str | None = None
    dtype: str = "float32"
    offload: bool = True
    weights: str = "fp32"
    host: str = "127.0.0.1"
    port: int = 8000
    batch_size: int = 8
    batch_wait: float = 0.1
    max_queue: int = 64
    max_input_chars: int = 4096
    max_duration: float | None = None
    request_timeout: float = 600.0
    chunk_chars: int = LongFormOptions.max_chars
    silence: float = LongFormOptions.silence
    voices_dir: Path | None = None
    api_key: str | None = field(default=None, repr=False)
    shutdown_timeout: float = 30.0

    def __post_init__(self):
        check_format(self.weights)
        for name in ("batch_size", "max_queue", "max_input_chars"):
            value = getattr(self, name)
            if not (isinstance(value, int) and value >= 1):
                raise ValueError(f"{name} must be an integer >= 1, got {value!r}")
        for name in ("batch_wait", "shutdown_timeout"):
            if not (math.isfinite(getattr(self, name)) and getattr(self, name) >= 0):
                raise ValueError(f"{name} must be >= 0 seconds, got {getattr(self, name)!r}")
        if not (math.isfinite(self.request_timeout) and self.request_timeout > 0):
            raise ValueError(f"request_timeout must be > 0 seconds, got {self.request_timeout!r}")
        if self.max_duration is not None:
            max_tokens_for(self.max_duration)  # raises for a bad value
        self.options()
        if self.voices_dir is not None and not Path(self.voices_dir).is_dir():
            raise ValueError(f"voices_dir {str(self.voices_dir)!r} is not a directory")
        if self.api_key is not None and not self.api_key:
            raise ValueError("the API key is empty")

    def options(self) -> LongFormOptions:
        """How inputs are chunked and joined (the batch size is the scheduler's)."""
        return LongFormOptions(max_chars=self.chunk_chars, batch_size=self.batch_size, silence=self.silence)


def read_api_key(path: str | os.PathLike | None = None, environ=os.environ) -> str | None:
    """The API key from a file (its first line), else from $MINDBARK_API_KEY; None when neither is given.

    A file keeps the key out of the process list and the environment of child processes.
    """
    if path is not None:
        lines = Path(path).read_text(encoding="utf-8").splitlines()
        key = lines[0].strip() if lines else ""
        if not key:
            raise ValueError(f"API key file {str(path)!r} is empty")
        return key
    return environ.get(API_KEY_ENV) or None
