"""The four networks of Bark in one container, loaded from a converted mindbark directory."""

from pathlib import Path

import mindspore as ms

from ..checkpoint import load_weights
from ..config import BarkConfig
from ..dtypes import parse_dtype
from ..errors import ConversionError
from ..graphs import GraphStore, default_dir
from ..jit import use_store
from ..paths import FORMAT_VERSION, read_marker
from ..weight_formats import check_format
from .codec import EncodecDecoder
from .fine import FineGPT
from .gpt import GPT, KVCaches


def build_submodels(cfg: BarkConfig, dtype=ms.float32, weights: str = "fp32") -> dict:
    """The four networks with lazily-initialised (unallocated) weights, keyed by sub-model name.

    The semantic and coarse models share their KV caches: they never run at once. `weights`: how the GPTs'
    projections are stored (`weight_formats`).
    """
    caches = KVCaches()
    return {
        "semantic": GPT(cfg.semantic, dtype, caches, weights),
        "coarse_acoustics": GPT(cfg.coarse_acoustics, dtype, caches, weights),
        "fine_acoustics": FineGPT(cfg.fine_acoustics, dtype, weights),
        "codec_model": EncodecDecoder(cfg.codec, dtype),
    }


class BarkNetworks:
    """Bark's semantic, coarse and fine GPTs and the EnCodec decoder, and where their weights came from.

    Args:
        config: the sub-model shapes.
        dtype: parameter dtype for all four networks ("float32", "float16", ... or a MindSpore dtype).
        offload: keep only the running GPT stage's weights in host memory (see `release`).
        weights: how the GPTs' projections are stored: "fp32" (memory-mapped from the file), or "bf16" / "int8"
            (`weight_formats`, packed at load into memory of their own; CPU, float32 only).
    """

    def __init__(self, config: BarkConfig, dtype=ms.float32, offload: bool = True, weights: str = "fp32"):
        self.config = config
        self.offload = offload
        self.weights = check_format(weights)
        self._mapped = {}
        models = build_submodels(config, parse_dtype(dtype), weights)
        self.semantic = models["semantic"]
        self.coarse_acoustics = models["coarse_acoustics"]
        self.fine_acoustics = models["fine_acoustics"]
        self.codec_model = models["codec_model"]
        self.sample_rate = config.codec.sampling_rate
        self.path = None
        self.graphs = None
        self.set_train(False)

    @classmethod
    def load(cls, path, dtype="float32", offload: bool = True, graph_cache: str | Path | bool | None = None,
             weights: str = "fp32"):
        """The networks of the converted directory `path`, weights memory-mapped (arguments as `__init__`'s, and
        `graph_cache` as `use_graph_cache`'s)."""
        path = Path(path)
        meta = read_marker(path)
        if meta is None:
            raise ConversionError(f"{path} is not a converted mindbark model (no readable mindbark.json)")
        if meta.get("format_version") != FORMAT_VERSION:
            raise ConversionError(f"{path}: mindbark format {meta.get('format_version')} is not supported "
                                  f"(expected {FORMAT_VERSION}); convert the checkpoint again")
        model = cls(BarkConfig.from_file(path / "config.json"), dtype, offload, weights)
        for name, cell in model.submodels().items():
            model._mapped[name] = load_weights(cell, path / f"{name}.safetensors")
            if weights != "fp32":  # the fp32 pages just packed are read no more
                model._mapped[name].release()
        model.path = path
        model.use_graph_cache(graph_cache)
        return model

    def submodels(self) -> dict:
        return {"semantic": self.semantic, "coarse_acoustics": self.coarse_acoustics,
                "fine_acoustics": self.fine_acoustics, "codec_model": self.codec_model}

    def release(self, name: str):
        """With `offload`, drop sub-model `name`'s weights from memory until it runs again (the pipeline calls
        this when a stage ends). Weights memory-mapped from a local file go back to the page cache and cost a
        minor page fault per 4 KiB page to map again."""
        if self.offload and name in self._mapped:
            self._mapped[name].release()

    def set_train(self, mode: bool = False):
        for cell in self.submodels().values():
            cell.set_train(mode)
        return self

    def use_graph_cache(self, directory: str | Path | bool | None = None):
        """Save compiled graphs to `directory` and load them from it in later processes.

        Args:
            directory: None or True: `$MINDBARK_GRAPH_CACHE`, else `graphs/` in mindbark's cache home; False:
                compile in memory only.
        """
        directory = default_dir() if directory is None or directory is True else directory
        self.graphs = GraphStore(Path(directory)) if directory else None
        for cell in self.submodels().values():
            use_store(cell, self.graphs)
