"""Audio files: WAV writing (files that appear whole or not at all), and reading recordings to make voices from."""

import math
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf
import soxr

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


# what soundfile (libsndfile) reads; others (mp3 on old libsndfile builds, m4a) are refused by name
AUDIO_FORMATS = "wav, flac or ogg"
SILENCE = 1e-4  # peak amplitude under which a recording holds nothing to clone


@dataclass(frozen=True)
class Recording:
    """Mono float32 samples (the end of a recording, see `read_audio`), their rate, and the whole file's length."""

    samples: np.ndarray
    sample_rate: int
    seconds: float


def read_audio(path, keep_seconds: float) -> Recording:
    """The last `keep_seconds` of an audio file (wav, flac, ogg), mixed down to mono; only that part is read, so a
    long file costs no more than a short one.

    Raises:
        ValueError: a missing file, a directory, an unreadable or unsupported file, or one without audio, in one line.
    """
    path = Path(path).expanduser()
    if path.is_dir():
        raise ValueError(f"{path} is a directory, not an audio file")
    if not path.is_file():
        raise ValueError(f"audio file {path} does not exist")
    try:
        with sf.SoundFile(str(path)) as f:
            total, rate = f.frames, f.samplerate
            keep = min(total, int(math.ceil(keep_seconds * rate)))
            if total > keep:
                f.seek(total - keep)
            data = f.read(keep, dtype="float32", always_2d=True)
    except (sf.LibsndfileError, RuntimeError, OSError) as e:
        detail = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise ValueError(f"cannot read {path} as audio ({AUDIO_FORMATS}): {detail}") from None
    if total == 0 or data.size == 0:
        raise ValueError(f"{path} holds no audio")
    return Recording(data.mean(axis=1), rate, total / rate)


def to_mono(audio, sample_rate: int, keep_seconds: float) -> Recording:
    """An in-memory recording, (samples,) or (samples, channels), as `read_audio` returns a file: the last
    `keep_seconds`, mono, float32."""
    audio = np.asarray(audio)
    if audio.ndim not in (1, 2) or audio.size == 0:
        raise ValueError(f"audio must be a non-empty (samples,) or (samples, channels) array, got shape {audio.shape}")
    if not np.issubdtype(audio.dtype, np.floating) and not np.issubdtype(audio.dtype, np.integer):
        raise ValueError(f"audio has dtype {audio.dtype}; expected float samples in [-1, 1] or integer PCM")
    if np.issubdtype(audio.dtype, np.integer):  # PCM: full scale is the type's range
        audio = audio / float(np.iinfo(audio.dtype).max + 1)
    audio = audio.reshape(len(audio), -1)
    keep = min(len(audio), int(math.ceil(keep_seconds * sample_rate)))
    return Recording(audio[len(audio) - keep:].mean(axis=1).astype(np.float32), sample_rate, len(audio) / sample_rate)


def resample(audio: np.ndarray, rate: int, target: int) -> np.ndarray:
    """`audio` (samples,) from `rate` to `target` Hz with soxr's high-quality band-limited resampler."""
    if rate == target:
        return np.asarray(audio, np.float32)
    return soxr.resample(np.asarray(audio, np.float32), rate, target, quality="HQ").astype(np.float32)
