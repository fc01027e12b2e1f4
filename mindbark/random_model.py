"""`tiny-random`: a tiny Bark with seeded random weights, built without PyTorch, for offline smoke runs.

It has Bark's real vocabularies and context (so voice presets and the whole data path work) at width 16, and a
small cased BERT vocabulary. Its audio is noise: the weights are random. A tiny HuBERT and quantizer of the same
kind make voices from recordings offline (`tiny_random_hubert_dir`, `tiny_random_quantizer_dir`).
"""

import hashlib
import json
import re
import string
from dataclasses import asdict
from pathlib import Path

import numpy as np
from safetensors.numpy import save_file

from .checkpoint import weight_shapes
from .config import BarkConfig, HubertConfig, QuantizerConfig
from .convert import voice as voice_convert
from .convert.tables import ENCODER
from .convert.writer import atomic_directory
from .models.bark import build_submodels
from .models.encodec_encoder import EncodecEncoder
from .models.hubert import HubertModel
from .models.quantizer import HUBERT_LAYER, SemanticQuantizer
from .paths import FORMAT_VERSION, mindbark_home, read_marker, write_marker

NAME = "tiny-random"
CONFIG = Path(__file__).resolve().parent.parent / "configs" / "tiny.json"
SEED = 0

_SPECIALS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
_WORDS = "Hello hello world the a is my dog cute laughs laughter music sighs I you it and".split()


def vocabulary() -> list[str]:
    """A cased BERT WordPiece vocabulary: specials, ASCII letters and digits, punctuation, a few words, `##` pieces."""
    chars = list(string.ascii_letters + string.digits + string.punctuation) + ["♪", "—", "…"]
    pieces = ["##" + c for c in string.ascii_letters + string.digits]
    seen, vocab = set(), []
    for token in _SPECIALS + chars + _WORDS + pieces:
        if token not in seen:
            seen.add(token)
            vocab.append(token)
    return vocab


def random_weights(shapes: dict, rng: np.random.Generator) -> dict:
    """float32 arrays for `{name: shape}` that keep activations and logits O(1).

    LayerNorm gains near 1, biases small, token and position embeddings of std 1/sqrt(width) (the fine model's heads
    are its embeddings), codec codebooks of unit std, every other matrix normal / sqrt(fan_in).
    """
    out = {}
    for name, shape in sorted(shapes.items()):
        noise = rng.standard_normal(shape, dtype=np.float32)
        if len(shape) == 1:
            out[name] = 1 + 0.1 * noise if ".ln" in f".{name}" else 0.1 * noise
        elif name.endswith("codebook.embed"):
            out[name] = noise
        elif name.startswith(("wte", "wpe")):
            out[name] = noise / np.sqrt(shape[1])
        else:
            out[name] = noise / np.sqrt(np.prod(shape[1:]))
    return {k: v.astype(np.float32) for k, v in out.items()}


def _quieten(codec: dict):
    """Scale the codec's output convolution so the noise sits near -20 dBFS instead of clipping, with no DC."""
    last = max(int(m.group(1)) for m in map(re.compile(r"decoder\.layers\.(\d+)\.conv\.weight").fullmatch, codec)
               if m)
    codec[f"decoder.layers.{last}.conv.weight"] *= 0.2
    codec[f"decoder.layers.{last}.conv.bias"][:] = 0


def build_tiny_random(dst, seed: int = SEED, config=CONFIG) -> Path:
    """Write a mindbark directory with random weights at `dst` (replacing it), all at once.

    Args:
        dst: directory to create.
        seed: the weights' random seed.
        config: a Hugging Face-layout Bark `config.json` (default: `configs/tiny.json`).
    """
    config, dst = Path(config), Path(dst)
    if not config.is_file():
        raise FileNotFoundError(f"tiny-random needs {config}, which ships with mindbark's source tree "
                                "(run from a checkout or an editable install)")
    cfg = BarkConfig.from_file(config)
    rng = np.random.default_rng(seed)
    with atomic_directory(dst, overwrite=True) as tmp:
        for name, cell in {**build_submodels(cfg), ENCODER: EncodecEncoder(cfg.codec)}.items():
            weights = random_weights(weight_shapes(cell), rng)
            if name == "codec_model":
                _quieten(weights)
            save_file(weights, str(tmp / f"{name}.safetensors"), metadata={"format": "mindbark"})
        (tmp / "config.json").write_bytes(config.read_bytes())
        (tmp / "vocab.txt").write_text("\n".join(vocabulary()) + "\n", encoding="utf-8")
        write_marker(tmp, {"source_format": "random", "seed": seed,
                           "config_sha256": _digest(config)})
    return dst


def tiny_random_dir(seed: int = SEED) -> Path:
    """The tiny random model in mindbark's cache (`mindbark_home()/tiny-random`), built on first use.

    It is rebuilt when the seed, mindbark's format or `configs/tiny.json` changed since.
    """
    dst = mindbark_home() / NAME
    meta = read_marker(dst) or {}
    wanted = {"format_version": FORMAT_VERSION, "seed": seed,
              "config_sha256": _digest(CONFIG) if CONFIG.is_file() else None}
    if all(meta.get(k) == v for k, v in wanted.items()) and (dst / f"{ENCODER}.safetensors").is_file():
        return dst
    return build_tiny_random(dst, seed)


# HuBERT base's layout at width 32, with the layers the quantizer reads; and a quantizer reading it
TINY_HUBERT = HubertConfig(conv_dim=(32,) * 7, hidden_size=32, num_hidden_layers=HUBERT_LAYER, num_attention_heads=2,
                           intermediate_size=64, num_conv_pos_embeddings=16, num_conv_pos_embedding_groups=4)
TINY_QUANTIZER = QuantizerConfig(input_size=32, hidden_size=32)


def _tiny_voice_dir(kind: str, cell, config: dict, weights_file: str, seed: int) -> Path:
    """mindbark_home()/tiny-random-<kind>: `cell`'s weights drawn at random, built on first use (and again when
    the seed, the format or the config changed)."""
    dst = mindbark_home() / f"{NAME}-{kind}"
    wanted = {"format_version": FORMAT_VERSION, "kind": kind, "source_format": "random", "seed": seed,
              "config": config}
    if read_marker(dst) == wanted:
        return dst
    with atomic_directory(dst, overwrite=True) as tmp:
        save_file(random_weights(weight_shapes(cell), np.random.default_rng(seed)), str(tmp / weights_file),
                  metadata={"format": "mindbark"})
        (tmp / "config.json").write_text(json.dumps(config, indent=2) + "\n")
        write_marker(tmp, wanted)
    return dst


def tiny_random_hubert_dir(seed: int = SEED) -> Path:
    """A tiny HuBERT with random weights (`TINY_HUBERT`), in mindbark's cache."""
    config = {"model_type": "hubert", **{k: list(v) if isinstance(v, tuple) else v
                                         for k, v in asdict(TINY_HUBERT).items()}}
    return _tiny_voice_dir("hubert", HubertModel(TINY_HUBERT, HUBERT_LAYER), config, voice_convert.HUBERT_FILE, seed)


def tiny_random_quantizer_dir(seed: int = SEED) -> Path:
    """A quantizer with random weights reading `tiny_random_hubert_dir`'s features, in mindbark's cache."""
    return _tiny_voice_dir("quantizer", SemanticQuantizer(TINY_QUANTIZER), asdict(TINY_QUANTIZER),
                           voice_convert.QUANTIZER_FILE, seed)


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()[:16]
