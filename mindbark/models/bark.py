"""`BarkModel`: the four sub-models of Bark, loaded from a converted mindbark directory."""

import json
from dataclasses import dataclass
from pathlib import Path

import mindspore as ms
import numpy as np

from ..checkpoint import load_weights
from ..config import BarkConfig
from ..errors import ConversionError
from ..device import set_device
from ..graphs import GraphStore, default_dir
from ..jit import use_store
from .codec import EncodecDecoder
from .fine import FineGPT
from .gpt import GPT, KVCaches

MARKER = "mindbark.json"  # present in every directory mindbark's converter wrote
FORMAT_VERSION = 1


@dataclass(frozen=True)
class AudioConfig:
    sample_rate: int


def build_submodels(cfg: BarkConfig, dtype=ms.float32) -> dict:
    """The four networks with lazily-initialised (unallocated) weights, keyed by sub-model name.

    The semantic and coarse models share their KV caches: they never run at once.
    """
    caches = KVCaches()
    return {
        "semantic": GPT(cfg.semantic, dtype, caches),
        "coarse_acoustics": GPT(cfg.coarse_acoustics, dtype, caches),
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


def _numpy(x):
    if x is None or isinstance(x, np.ndarray):
        return x
    return x.asnumpy() if hasattr(x, "asnumpy") else np.asarray(x)


class BarkModel:
    """Bark's semantic, coarse and fine GPTs and the EnCodec decoder.

    Args:
        config: the sub-model shapes.
        dtype: parameter dtype for all four networks.
        offload: keep only the running GPT stage's weights in host memory (see `release`).
    """

    def __init__(self, config: BarkConfig, dtype=ms.float32, offload: bool = True):
        self.config = config
        self.offload = offload
        self._mapped = {}
        models = build_submodels(config, parse_dtype(dtype))
        self.semantic = models["semantic"]
        self.coarse_acoustics = models["coarse_acoustics"]
        self.fine_acoustics = models["fine_acoustics"]
        self.codec_model = models["codec_model"]
        self.generation_config = AudioConfig(sample_rate=config.codec.sampling_rate)
        self.path = None
        self.graphs = None
        self.set_train(False)

    def submodels(self) -> dict:
        return {"semantic": self.semantic, "coarse_acoustics": self.coarse_acoustics,
                "fine_acoustics": self.fine_acoustics, "codec_model": self.codec_model}

    def release(self, name: str):
        """With `offload`, drop sub-model `name`'s weights from memory until it runs again (the pipeline calls
        this when a stage ends). Weights memory-mapped from a local file go back to the page cache, which costs a
        minor page fault per 4 KiB page to map again (~0.05 s for bark-small's largest sub-model)."""
        if self.offload and name in self._mapped:
            self._mapped[name].release()

    def set_train(self, mode: bool = False) -> "BarkModel":
        for cell in self.submodels().values():
            cell.set_train(mode)
        return self

    def generate(self, input_ids, attention_mask=None, history_prompt=None, return_output_lengths: bool = False,
                 seed: int | None = None, silent: bool = True, **kwargs):
        """Waveforms (B, T) at 24 kHz for tokenized text, as `transformers`' `BarkModel.generate`.

        Defaults are Suno's (sampling at 0.7 / 0.7 / 0.5, min_eos_p 0.2); pass `do_sample=False` for greedy.

        Args:
            input_ids: (B, T) ids from `BarkProcessor` (numpy or MindSpore).
            attention_mask: (B, T), 0 on padding.
            history_prompt: a voice preset (dict or name) for all items, or a list with one per item.
            return_output_lengths: also return each waveform's length (the rest is zero padding).
            seed: makes sampling reproducible.
            silent: no progress bars.
            kwargs: `temperature`, `do_sample`, `top_k`, `top_p`, `min_eos_p`, `max_new_tokens`,
                `max_coarse_history`, `sliding_window_len`; prefixed with `semantic_`, `coarse_` or `fine_` for
                one stage only.
        """
        from ..generation.config import config_from_kwargs
        from ..pipeline import generate
        from ..voices import load_voice

        config = config_from_kwargs(**kwargs)
        ids = _numpy(input_ids)
        voices = history_prompt if isinstance(history_prompt, (list, tuple)) else [history_prompt]
        voices = [None if v is None else load_voice(v, self.path) for v in voices]
        result = generate(self, ids, _numpy(attention_mask), voices if len(voices) > 1 else voices[0], config,
                          seed, silent)
        lengths = [len(a) for a in result.audio]
        audio = np.zeros((len(lengths), max(lengths)), np.float32)
        for i, a in enumerate(result.audio):
            audio[i, :len(a)] = a
        audio = ms.Tensor(audio)
        return (audio, lengths) if return_output_lengths else audio

    @classmethod
    def from_pretrained(cls, path, device: str | None = None, dtype="float32", offload: bool = True,
                        graph_cache: str | Path | bool | None = None) -> "BarkModel":
        """Load a mindbark directory, or a Hugging Face-format Bark directory (converted once into the cache).

        Args:
            path: directory written by `scripts/convert_checkpoint.py`, or a Hugging Face snapshot of
                `suno/bark-small` / `suno/bark`.
            device: "cpu", "gpu" or "ascend"; None reads `MINDBARK_DEVICE` or picks what is available.
            dtype: "float32" (default), "float16" or "bfloat16".
            offload: keep only the running GPT stage's weights in host memory (default; costs ~1% of a
                generation's time on CPU and saves the other sub-models' weights, ~1 GB at bark-small). The
                codec's (46 MB) stay: mapping them again would cost ~10% of its short decode.
            graph_cache: a directory to save compiled graphs in and load them from in later processes (seconds
                of compilation each); None: `$MINDBARK_GRAPH_CACHE`, else `graphs/` in mindbark's cache home;
                False: compile in memory only.
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
        model = cls(BarkConfig.from_file(path / "config.json"), dtype, offload)
        for name, cell in model.submodels().items():
            model._mapped[name] = load_weights(cell, path / f"{name}.safetensors")
        model.path = path
        model.use_graph_cache(graph_cache)
        return model

    def use_graph_cache(self, directory: str | Path | bool | None = None):
        """Save compiled graphs to `directory` and load them from it (arguments as `from_pretrained`'s
        `graph_cache`)."""
        directory = default_dir() if directory is None or directory is True else directory
        self.graphs = GraphStore(Path(directory)) if directory else None
        for cell in self.submodels().values():
            use_store(cell, self.graphs)
