"""Writing waveforms: WAV files that appear whole or not at all."""

import os
import tempfile
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
    try:  # by trying, so that the error is the OS's own: permission denied, read-only file system, ...
        fd, probe = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".probe", dir=parent)  # as the write will
        os.close(fd)
        os.unlink(probe)
        if path.exists():
            os.close(os.open(path, os.O_WRONLY | os.O_APPEND))  # opened, not changed
    except OSError as e:
        raise OSError(f"cannot write {path}: {e.strerror or e}") from None
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
