"""`BarkModel`: the four sub-models of Bark, loaded from a converted mindbark directory."""

import json
from dataclasses import dataclass
from pathlib import Path

import mindspore as ms

from ..checkpoint import load_weights
from ..config import BarkConfig
from ..errors import ConversionError
from ..device import set_device
from .codec import EncodecDecoder
from .fine import FineGPT
from .gpt import GPT

MARKER = "mindbark.json"  # present in every directory mindbark's converter wrote
FORMAT_VERSION = 1


@dataclass(frozen=True)
class AudioConfig:
    sample_rate: int


def build_submodels(cfg: BarkConfig, dtype=ms.float32) -> dict:
    """The four networks with lazily-initialised (unallocated) weights, keyed by sub-model name."""
    return {
        "semantic": GPT(cfg.semantic, dtype),
        "coarse_acoustics": GPT(cfg.coarse_acoustics, dtype),
        "fine_acoustics": FineGPT(cfg.fine_acoustics, dtype),
        "codec_model": EncodecDecoder(cfg.codec, dtype),
    }


_DTYPES = {"float32": ms.float32, "fp32": ms.float32, "float16": ms.float16, "fp16": ms.float16,
           "bfloat16": ms.bfloat16, "bf16": ms.bfloat16}


def parse_dtype(dtype) -> ms.dtype:
    if isinstance(dtype, str):
        if dtype.lower() not in _DTYPES:
            raise ValueError(f"unknown dtype {dtype!r}: choose one of float32, float16, bfloat16")
        return _DTYPES[dtype.lower()]
    return dtype


class BarkModel:
    """Bark's semantic, coarse and fine GPTs and the EnCodec decoder.

    Args:
        config: the sub-model shapes.
        dtype: parameter dtype for all four networks.
    """

    def __init__(self, config: BarkConfig, dtype=ms.float32):
        self.config = config
        models = build_submodels(config, parse_dtype(dtype))
        self.semantic = models["semantic"]
        self.coarse_acoustics = models["coarse_acoustics"]
        self.fine_acoustics = models["fine_acoustics"]
        self.codec_model = models["codec_model"]
        self.generation_config = AudioConfig(sample_rate=config.codec.sampling_rate)
        self.set_train(False)

    def submodels(self) -> dict:
        return {"semantic": self.semantic, "coarse_acoustics": self.coarse_acoustics,
                "fine_acoustics": self.fine_acoustics, "codec_model": self.codec_model}

    def set_train(self, mode: bool = False) -> "BarkModel":
        for cell in self.submodels().values():
            cell.set_train(mode)
        return self

    @classmethod
    def from_pretrained(cls, path, device: str | None = None, dtype="float32") -> "BarkModel":
        """Load a mindbark directory, or a Hugging Face-format Bark directory (converted once into the cache).

        Args:
            path: directory written by `scripts/convert_checkpoint.py`, or a Hugging Face snapshot of
                `suno/bark-small` / `suno/bark`.
            device: "cpu", "gpu" or "ascend"; None reads `MINDBARK_DEVICE` or picks what is available.
            dtype: "float32" (default), "float16" or "bfloat16".
        """
        set_device(device)
        path = Path(path)
        if not path.is_dir():
            raise FileNotFoundError(f"model directory {path} does not exist")
        if not (path / MARKER).exists():
            from ..convert import convert_cached

            path = convert_cached(path)
        meta = json.loads((path / MARKER).read_text())
        if meta.get("format_version") != FORMAT_VERSION:
            raise ConversionError(f"{path}: mindbark format {meta.get('format_version')} is not supported "
                                  f"(expected {FORMAT_VERSION}); convert the checkpoint again")
        model = cls(BarkConfig.from_file(path / "config.json"), dtype)
        for name, cell in model.submodels().items():
            load_weights(cell, path / f"{name}.safetensors")
        model.path = path
        return model
