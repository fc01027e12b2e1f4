"""`tiny-random`: a tiny Bark with seeded random weights, built without PyTorch, for offline smoke runs.

It has Bark's real vocabularies and context (so voice presets and the whole data path work) at width 16, and a
small cased BERT vocabulary. Its audio is noise: the weights are random.
"""

import hashlib
import re
import string
from pathlib import Path

import numpy as np
from safetensors.numpy import save_file

from .checkpoint import weight_shapes
from .config import BarkConfig
from .convert.writer import atomic_directory
from .models.bark import build_submodels
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
        for name, cell in build_submodels(cfg).items():
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
    if all(meta.get(k) == v for k, v in wanted.items()):
        return dst
    return build_tiny_random(dst, seed)


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()[:16]
