"""Read a Hugging Face-format Bark checkpoint's tensors as numpy arrays, with weight norm folded."""

import json
from pathlib import Path

import numpy as np

from ..errors import ConversionError

_WEIGHT_NORM = {  # (magnitude, direction) suffixes: new and old torch weight-norm parametrizations
    ".parametrizations.weight.original0": ".parametrizations.weight.original1",
    ".weight_g": ".weight_v",
}


def _weight_files(src: Path) -> list[Path]:
    for index_name in ("model.safetensors.index.json", "pytorch_model.bin.index.json"):
        index = src / index_name
        if index.exists():
            try:
                shards = sorted(set(json.loads(index.read_text())["weight_map"].values()))
            except (ValueError, KeyError) as e:
                raise ConversionError(f"{index}: not a valid shard index ({e})") from None
            return [src / s for s in shards]
    for name in ("model.safetensors", "pytorch_model.bin"):
        if (src / name).exists():
            return [src / name]
    raise ConversionError(f"{src}: no model.safetensors or pytorch_model.bin found")


def _read_safetensors(path: Path) -> dict:
    from safetensors import SafetensorError
    from safetensors.numpy import load_file

    try:
        return load_file(str(path))
    except (SafetensorError, OSError, ValueError) as e:
        raise ConversionError(f"{path}: corrupt or truncated safetensors file ({e})") from None


def _read_torch_bin(path: Path) -> dict:
    try:
        import torch
    except ImportError:
        raise ConversionError(f"{path}: reading .bin checkpoints needs PyTorch (pip install torch), "
                              "or convert from model.safetensors instead") from None
    try:
        state = torch.load(str(path), map_location="cpu", weights_only=True)
    except Exception as e:  # torch raises many types for a damaged zip or pickle
        raise ConversionError(f"{path}: corrupt or truncated PyTorch checkpoint ({e})") from None
    return {k: v.float().numpy() if v.is_floating_point() else v.numpy() for k, v in state.items()}


def fold_weight_norm(tensors: dict) -> dict:
    """Replace each (g, v) weight-norm pair with weight = g * v / ||v||, the norm taken over the axes where g has
    size 1: all but axis 0 for EnCodec's convolutions, all but the taps for HuBERT's positional one (dim=2)."""
    out = dict(tensors)
    for g_suffix, v_suffix in _WEIGHT_NORM.items():
        for name in [n for n in tensors if n.endswith(g_suffix)]:
            base = name[: -len(g_suffix)]
            v_name = base + v_suffix
            if v_name not in tensors:
                raise ConversionError(f"weight-norm tensor {name} has no matching {v_name}")
            g = out.pop(name).astype(np.float64)
            v = out.pop(v_name).astype(np.float64)
            if g.ndim != v.ndim or any(a not in (1, b) for a, b in zip(g.shape, v.shape)):
                raise ConversionError(f"weight-norm tensors {name} {g.shape} and {v_name} {v.shape} do not match")
            axes = tuple(i for i, n in enumerate(g.shape) if n == 1)
            norm = np.sqrt((v ** 2).sum(axis=axes, keepdims=True))
            out[base + ".weight"] = (g * v / norm).astype(np.float32)
    return out


def read_hf_tensors(src: Path) -> dict:
    """All tensors of the checkpoint in `src`, weight norm folded."""
    tensors = {}
    for path in _weight_files(src):
        if not path.exists():
            raise ConversionError(f"{path}: shard listed in the index is missing")
        tensors.update(_read_safetensors(path) if path.suffix == ".safetensors" else _read_torch_bin(path))
    return fold_weight_norm(tensors)
