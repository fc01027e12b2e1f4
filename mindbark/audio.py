"""Writing waveforms: WAV files that appear whole or not at all."""

import os
from pathlib import Path

import numpy as np
import soundfile as sf

from .files import replacing


def check_writable(path) -> Path:
    """Fail early, before any generation, if `path` cannot be written; returns it as a Path."""
    path = Path(path)
    if path.is_dir():
        raise OSError(f"cannot write {path}: it is a directory")
    parent = path.parent if str(path.parent) else Path(".")
    if not parent.is_dir():
        raise OSError(f"cannot write {path}: directory {parent} does not exist")
    if not os.access(parent, os.W_OK) or (path.exists() and not os.access(path, os.W_OK)):
        raise OSError(f"cannot write {path}: permission denied")
    return path


def write_wav(path, audio: np.ndarray, sample_rate: int, subtype: str = "PCM_16") -> Path:
    """Write mono audio in [-1, 1] as a WAV file via a temporary file renamed into place.

    Args:
        path: destination; an interrupted write never leaves a truncated file there.
        audio: (T,) float waveform.
        sample_rate: Hz (24000 for Bark).
        subtype: soundfile subtype: "PCM_16" (default, plays everywhere) or "FLOAT".
    """
    path = check_writable(path)
    with replacing(path) as tmp:
        sf.write(tmp, np.clip(np.asarray(audio, np.float32), -1.0, 1.0), sample_rate, subtype=subtype, format="WAV")
    return path
