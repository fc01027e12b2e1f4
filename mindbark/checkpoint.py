"""Strict loading of mindbark safetensors into Cells.

MindSpore's own `load_checkpoint` matches names by suffix and casts silently; here every name must match exactly,
every shape must agree, and the only cast is the explicit one to the model's dtype.
"""

from pathlib import Path

import numpy as np
from mindspore import Tensor, nn

from .errors import ConversionError


def weight_shapes(cell: nn.Cell) -> dict:
    """Names and shapes of a Cell's weights (KV caches are created with requires_grad=False and are not weights)."""
    return {name: tuple(p.shape) for name, p in cell.parameters_and_names() if p.requires_grad}


def check_weights(tensors: dict, expected: dict, where: str):
    """Raise ConversionError naming the first missing, unexpected or mis-shaped tensor."""
    missing = sorted(set(expected) - set(tensors))
    if missing:
        raise ConversionError(f"{where}: missing tensor {missing[0]}" + (f" (and {len(missing) - 1} more)"
                                                                           if len(missing) > 1 else ""))
    unexpected = sorted(set(tensors) - set(expected))
    if unexpected:
        raise ConversionError(f"{where}: unexpected tensor {unexpected[0]}" + (
            f" (and {len(unexpected) - 1} more)" if len(unexpected) > 1 else ""))
    for name, shape in expected.items():
        if tuple(tensors[name].shape) != shape:
            raise ConversionError(f"{where}: tensor {name} has shape {tuple(tensors[name].shape)}, "
                                  f"the model expects {shape}")


def load_weights(cell: nn.Cell, path: Path):
    """Fill `cell`'s weights from the safetensors file at `path`, cast to each parameter's dtype."""
    from safetensors import SafetensorError
    from safetensors.numpy import load_file

    try:
        tensors = load_file(str(path))
    except (SafetensorError, OSError, ValueError) as e:
        raise ConversionError(f"{path}: corrupt or unreadable weights ({e})") from None
    check_weights(tensors, weight_shapes(cell), str(path))
    for name, p in cell.parameters_and_names():
        if name in tensors:
            p.set_data(Tensor(np.ascontiguousarray(tensors[name]), dtype=p.dtype))
