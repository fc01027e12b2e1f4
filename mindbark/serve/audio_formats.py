"""Waveforms into the response formats of OpenAI's speech API: whole files, or a stream of bytes per chunk.

`pcm` is raw 16-bit little-endian mono at the model's rate (24 kHz), as OpenAI's. A streamed `wav` has the sizes
in its header set to 0xFFFFFFFF (unknown), as streamed WAVs do; players read to the end of the stream.
"""

import io
import struct

import numpy as np
import soundfile as sf

# name -> (soundfile format, subtype, media type)
FORMATS = {
    "wav": ("WAV", "PCM_16", "audio/wav"),
    "flac": ("FLAC", "PCM_16", "audio/flac"),
    "mp3": ("MP3", "MPEG_LAYER_III", "audio/mpeg"),
    "opus": ("OGG", "OPUS", "audio/ogg"),
    "pcm": ("RAW", "PCM_16", "audio/pcm"),
}
STREAMED = ("wav", "pcm")  # formats whose bytes can go out chunk by chunk as they are generated
_UNKNOWN = 0xFFFFFFFF


def media_type(fmt: str) -> str:
    return FORMATS[fmt][2]


def encode(audio: np.ndarray, sample_rate: int, fmt: str) -> bytes:
    """One whole file of `fmt` for mono (T,) float audio in [-1, 1]."""
    container, subtype, _ = FORMATS[fmt]
    buf = io.BytesIO()
    # libsndfile converts to 16 bits for every format, so a wav, a flac and raw pcm hold the same samples
    sf.write(buf, np.clip(np.asarray(audio, np.float32), -1.0, 1.0), sample_rate, subtype=subtype, format=container,
             endian="LITTLE" if fmt == "pcm" else "FILE")
    return buf.getvalue()


def pcm16(audio: np.ndarray, sample_rate: int) -> bytes:
    """(T,) float audio as 16-bit little-endian samples."""
    return encode(audio, sample_rate, "pcm")


def stream_header(sample_rate: int, fmt: str) -> bytes:
    """What a streamed response starts with: a WAV header of unknown length, nothing for raw PCM."""
    if fmt == "pcm":
        return b""
    block = 2  # mono, 16-bit
    return (b"RIFF" + struct.pack("<I", _UNKNOWN) + b"WAVEfmt " +
            struct.pack("<IHHIIHH", 16, 1, 1, sample_rate, sample_rate * block, block, 16) +
            b"data" + struct.pack("<I", _UNKNOWN))
