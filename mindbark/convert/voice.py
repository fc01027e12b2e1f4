"""Conversion of the two networks a voice is made with, besides Bark's EnCodec: HuBERT from a `transformers`
snapshot, and the semantic quantizer from its published `.pth`.

Each becomes a directory of one memory-mappable safetensors file, its config and mindbark's marker, written all at
once; every tensor goes through a declared name table and is checked against the network it loads into.
"""

import json
import zipfile
from dataclasses import asdict
from pathlib import Path

from safetensors.numpy import save_file

from ..checkpoint import check_weights, weight_shapes
from ..config import HubertConfig, QuantizerConfig
from ..constants import SEMANTIC_VOCAB_SIZE
from ..errors import ConversionError
from ..paths import write_marker
from . import tables
from .mapping import rename
from .reader import read_hf_tensors
from .writer import atomic_directory

HUBERT_FILE = "hubert.safetensors"
QUANTIZER_FILE = "quantizer.safetensors"


def read_hubert_config(path: Path) -> HubertConfig:
    try:
        return HubertConfig.from_hf(json.loads(Path(path).read_text(encoding="utf-8")))
    except (OSError, ValueError, TypeError) as e:
        raise ConversionError(f"{path}: not a usable HuBERT config ({e})") from None


def convert_hubert(src, dst, overwrite: bool = False) -> Path:
    """Convert a `transformers` HubertModel snapshot (`facebook/hubert-base-ls960`) into `dst`.

    Args:
        src: directory with `config.json` and `model.safetensors` or `pytorch_model.bin`.
        dst: directory to create.
        overwrite: replace `dst` if it exists.
    """
    from ..models.hubert import HubertModel

    src, dst = Path(src), Path(dst)
    if not (src / "config.json").is_file():
        raise ConversionError(f"{src}: no config.json; expected a transformers HuBERT snapshot")
    cfg = read_hubert_config(src / "config.json")
    mapped = rename(read_hf_tensors(src), tables.HUBERT, src, "a HuBERT weight")
    check_weights(mapped, weight_shapes(HubertModel(cfg, cfg.num_hidden_layers)), str(src))
    with atomic_directory(dst, overwrite) as tmp:
        save_file(mapped, str(tmp / HUBERT_FILE), metadata={"format": "mindbark"})
        (tmp / "config.json").write_bytes((src / "config.json").read_bytes())
        write_marker(tmp, {"kind": "hubert", "source_format": "transformers"})
    return dst


def _quantizer_info(path: Path) -> dict:
    """The sizes a checkpoint saved by `CustomTokenizer.save` notes in a `<name>/.info` member; {} for older ones."""
    try:
        with zipfile.ZipFile(path) as z:
            names = [n for n in z.namelist() if n.endswith("/.info")]
            return json.loads(z.read(names[0]).decode("utf-8")) if names else {}
    except (zipfile.BadZipFile, OSError, ValueError, UnicodeDecodeError) as e:
        raise ConversionError(f"{path}: not a quantizer checkpoint ({e})") from None


def read_quantizer(path) -> tuple[QuantizerConfig, dict]:
    """A quantizer `.pth` (a torch state dict of `CustomTokenizer`) as its config and mindbark's tensors."""
    path = Path(path)
    try:
        import torch  # the .pth is a torch pickle; only conversion needs torch
    except ImportError:
        raise ConversionError(f"{path}: reading a quantizer .pth needs PyTorch (pip install torch)") from None
    info = _quantizer_info(path)
    try:
        state = torch.load(str(path), map_location="cpu", weights_only=True)
    except Exception as e:  # torch raises many types for a damaged zip or pickle
        raise ConversionError(f"{path}: corrupt or not a PyTorch checkpoint ({str(e).splitlines()[0]})") from None
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise ConversionError(f"{path}: expected a state dict of tensors")
    if "lstm.weight_ih_l0" not in state or "fc.weight" not in state:
        raise ConversionError(f"{path}: not a HuBERT quantizer (no lstm.weight_ih_l0 or fc.weight)")
    cfg = QuantizerConfig(input_size=state["lstm.weight_ih_l0"].shape[1],
                          hidden_size=state["lstm.weight_hh_l0"].shape[1], output_size=state["fc.weight"].shape[0],
                          version=1 if "intermediate.weight" in state else 0)
    noted = {k: info[k] for k in ("input_size", "hidden_size", "output_size", "version") if k in info}
    if any(getattr(cfg, k) != v for k, v in noted.items()):
        raise ConversionError(f"{path}: its .info says {noted}, its tensors {asdict(cfg)}")
    tensors = {k: v.float().numpy() for k, v in state.items()}
    return cfg, rename(tensors, tables.QUANTIZER, path, "a quantizer weight")


def convert_quantizer(src, dst, overwrite: bool = False) -> Path:
    """Convert a semantic quantizer `.pth` (e.g. `quantifier_hubert_base_ls960_14.pth`) into `dst`.

    Args:
        src: the `.pth` file.
        dst: directory to create.
        overwrite: replace `dst` if it exists.
    """
    from ..models.quantizer import SemanticQuantizer

    src, dst = Path(src), Path(dst)
    if not src.is_file():
        raise ConversionError(f"quantizer checkpoint {src} does not exist")
    cfg, mapped = read_quantizer(src)
    if cfg.output_size > SEMANTIC_VOCAB_SIZE:
        raise ConversionError(f"{src}: {cfg.output_size} outputs; Bark has {SEMANTIC_VOCAB_SIZE} semantic ids")
    check_weights(mapped, weight_shapes(SemanticQuantizer(cfg)), str(src))
    with atomic_directory(dst, overwrite) as tmp:
        save_file(mapped, str(tmp / QUANTIZER_FILE), metadata={"format": "mindbark"})
        (tmp / "config.json").write_text(json.dumps(asdict(cfg), indent=2) + "\n")
        write_marker(tmp, {"kind": "quantizer", "source_format": "torch",
                           "source_file": src.name})
    return dst
