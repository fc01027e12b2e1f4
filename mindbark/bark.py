"""`BarkModel`: Bark as users load and call it, in `transformers`' shape (`from_pretrained`, `generate`).

The networks and their weights are `models.bark.BarkNetworks`; this layer adds what a user expects around them:
picking the device, converting a Hugging Face directory on first use, and text-to-waveform generation.
"""

from contextlib import nullcontext
from pathlib import Path

import mindspore as ms
import numpy as np

from . import kernels
from .convert import convert_cached
from .device import set_device
from .dtypes import parse_dtype
from .generation.config import GenerationConfig, config_from_kwargs
from .generation.device import DeviceEngine
from .hub import resolve_model
from .models.bark import BarkNetworks
from .paths import MARKER
from .pipeline import generate
from .voices import load_voice
from .weight_formats import check_format


ENGINES = ("cpu", "device")


def choose_engine(engine: str | None, target: str, dtype, weights: str = "fp32") -> str:
    """The engine for backend `target` ("CPU", "GPU", "Ascend"): `engine` if given and possible, else the
    device engine on GPU and Ascend and the CPU engine on CPU. One-line errors for what cannot run."""
    if engine is None:
        engine = "cpu" if target == "CPU" else "device"
    if engine not in ENGINES:
        raise ValueError(f"unknown engine {engine!r}: choose one of {', '.join(ENGINES)}")
    if check_format(weights) != "fp32":
        if target != "CPU" or engine != "cpu":
            raise ValueError(f"{weights} weights run on the CPU engine only (mindbark's CPU kernels read them)")
        if parse_dtype(dtype) != ms.float32:
            raise ValueError(f"{weights} weights compute in float32: leave dtype at float32")
        if kernels.library() is None:
            raise ValueError(f"{weights} weights need mindbark's CPU kernels, which are switched off "
                             f"({kernels.ENV}) or could not be built (no C++ compiler); use fp32 weights")
    if parse_dtype(dtype) == ms.bfloat16:
        if target == "CPU":
            raise ValueError("bfloat16 needs a GPU or Ascend: MindSpore's CPU MatMul has no bfloat16 kernel "
                             "(use float32 or float16)")
        if engine == "cpu":
            raise ValueError("bfloat16 runs on the device engine only: the CPU engine keeps its KV cache in numpy, "
                             "which has no bfloat16")
    return engine


def _numpy(x):
    if x is None or isinstance(x, np.ndarray):
        return x
    return x.asnumpy() if hasattr(x, "asnumpy") else np.asarray(x)


class BarkModel(BarkNetworks):
    """Bark's four networks with `transformers`-style loading and generation.

    `generation_config` holds the defaults `generate` starts from (Suno's: sampling at 0.7 / 0.7 / 0.5,
    min_eos_p 0.2) and the output `sample_rate`.
    """

    def __init__(self, config, dtype=ms.float32, offload: bool = True, weights: str = "fp32"):
        super().__init__(config, dtype, offload, weights)
        self.generation_config = GenerationConfig(sample_rate=self.sample_rate)
        self.engine = "cpu"
        self.device_engine = None

    def use_engine(self, engine: str):
        """Generate with the "cpu" engine (host KV cache, host sampling) or the "device" one
        (`generation.device`)."""
        if engine not in ENGINES:
            raise ValueError(f"unknown engine {engine!r}: choose one of {', '.join(ENGINES)}")
        self.engine = engine
        self.device_engine = DeviceEngine(self) if engine == "device" else None

    @classmethod
    def from_pretrained(cls, path, device: str | None = None, dtype="float32", offload: bool = True,
                        graph_cache: str | Path | bool | None = None, engine: str | None = None,
                        weights: str = "fp32") -> "BarkModel":
        """Load a model by directory or name; a Hugging Face-format directory is converted once into the cache.

        Args:
            path: directory written by `scripts/convert_checkpoint.py`, or a Hugging Face snapshot of
                `suno/bark-small` / `suno/bark`; where no such directory exists, a name: `bark-small`, `bark`
                (or `suno/...`: found in the Hugging Face cache or downloaded, converted once) or `tiny-random`
                (random weights, for offline smoke runs).
            device: "cpu", "gpu" or "ascend"; None reads `MINDBARK_DEVICE` or picks what is available.
            dtype: "float32" (default), "float16" or "bfloat16".
            offload: keep only the running GPT stage's weights in host memory (default; a little time for the
                other sub-models' memory). The codec's weights stay: mapping them again would cost a large share
                of its short decode.
            graph_cache: a directory to save compiled graphs in and load them from in later processes; None:
                `$MINDBARK_GRAPH_CACHE`, else `graphs/` in mindbark's cache home; False: compile in memory only.
                The device engine compiles in memory only.
            engine: "cpu" (KV cache and sampling on the host; the default on CPU) or "device" (KV cache and
                sampling in the compiled graphs, static shapes; the default on GPU and Ascend). On CPU the device
                engine runs MindSpore's ops where the CPU engine runs mindbark's kernels, as GPU and Ascend do.
            weights: how the GPTs' projection weights are held on CPU: "fp32" (default, exact), or "bf16" / "int8"
                (packed at load: half / about a quarter of the bytes each decode step reads, fp32 arithmetic,
                slightly different audio; README, Performance).
        """
        target = set_device(device)
        engine = choose_engine(engine, target, dtype, weights)
        path = Path(path)
        if not path.is_dir():
            path = resolve_model(path)
        if not (path / MARKER).exists():
            path = convert_cached(path)
        device_engine = engine == "device"
        with kernels.disabled() if device_engine else nullcontext():
            model = cls.load(path, dtype, offload, False if device_engine else graph_cache, weights)
        model.use_engine(engine)
        return model

    def generate(self, input_ids, attention_mask=None, history_prompt=None, return_output_lengths: bool = False,
                 seed: int | None = None, silent: bool = True, **kwargs):
        """Waveforms (B, T) at 24 kHz for tokenized text, as `transformers`' `BarkModel.generate`.

        Defaults are `generation_config`'s (Suno's); pass `do_sample=False` for greedy.

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
        config = config_from_kwargs(self.generation_config, **kwargs)
        voices = history_prompt if isinstance(history_prompt, (list, tuple)) else [history_prompt]
        voices = [None if v is None else load_voice(v, self.path) for v in voices]
        result = generate(self, _numpy(input_ids), _numpy(attention_mask), voices if len(voices) > 1 else voices[0],
                          config, seed, silent)
        lengths = [len(a) for a in result.audio]
        audio = np.zeros((len(lengths), max(lengths)), np.float32)
        for i, a in enumerate(result.audio):
            audio[i, :len(a)] = a
        audio = ms.Tensor(audio)
        return (audio, lengths) if return_output_lengths else audio
