"""Strict loading of mindbark safetensors into Cells.

MindSpore's own `load_checkpoint` matches names by suffix and casts silently; here every name must match exactly,
every shape must agree, and the only cast is the explicit one to the model's dtype.
"""

import json
import mmap
from pathlib import Path

import numpy as np
from mindspore import Tensor, nn

from .dtypes import numpy_dtype
from .errors import ConversionError
from .memory import LargePages, advise_large_pages, trim_heap


def checkpoint_layouts(cell: nn.Cell) -> dict:
    """{weight name: (shape in checkpoints, function from that array to the parameter's layout)} for the weights a
    layer keeps in another layout than torch's (`checkpoint_layout` of its Cell)."""
    out = {}
    for prefix, sub in cell.cells_and_names():
        for local, layout in getattr(sub, "checkpoint_layout", {}).items():
            out[f"{prefix}.{local}" if prefix else local] = layout
    return out


def weight_shapes(cell: nn.Cell) -> dict:
    """Names and checkpoint shapes of a Cell's weights."""
    layouts = checkpoint_layouts(cell)
    return {name: layouts[name][0] if name in layouts else tuple(p.shape)
            for name, p in cell.parameters_and_names() if p.requires_grad}


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


_DTYPES = {"F32": np.float32, "F16": np.float16, "F64": np.float64, "I64": np.int64, "I32": np.int32}


def map_safetensors(path: Path) -> tuple[dict, np.memmap]:
    """The tensors of a safetensors file as read-only numpy arrays over one memory map of it, and the map.

    Nothing is read until a tensor's pages are touched, and those pages are the file's own (shared with the page
    cache, never copied): a model holds its weights once, and rows it never reads (most of the semantic model's
    text embedding) cost no memory. The library validates the file; it has no zero-copy reader, so the offsets
    come from the header it validated (8-byte length, JSON, then the data).
    """
    from safetensors import SafetensorError, safe_open

    try:
        with safe_open(str(path), framework="numpy"):
            pass
        with open(path, "rb") as f:
            header_len = int.from_bytes(f.read(8), "little")
            header = json.loads(f.read(header_len))
        data = np.memmap(path, dtype=np.uint8, mode="r", offset=8 + header_len)
    except (SafetensorError, OSError, ValueError) as e:
        raise ConversionError(f"{path}: corrupt or unreadable weights ({e})") from None
    tensors = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        if info["dtype"] not in _DTYPES:
            raise ConversionError(f"{path}: tensor {name} has unsupported dtype {info['dtype']}")
        begin, end = info["data_offsets"]
        tensors[name] = data[begin:end].view(_DTYPES[info["dtype"]]).reshape(info["shape"])
    return tensors, data


def large_page_weights(cell: nn.Cell) -> set:
    """Names of the weights a Cell's layers want in 2 MiB pages (`large_pages` of its Cells)."""
    return {f"{prefix}.{local}" if prefix else local
            for prefix, sub in cell.cells_and_names() for local in getattr(sub, "large_pages", ())}


def load_weights(cell: nn.Cell, path: Path) -> "MappedWeights":
    """Point `cell`'s weights at the safetensors file at `path` (memory-mapped); weights in another layout or
    dtype than the file's are converted into memory of their own.

    Weights its layers stream whole (`large_page_weights`) are asked for 2 MiB pages: in the file's map where they
    stay there, else in one block of their own (`memory.LargePages`)."""
    tensors, mapping = map_safetensors(path)
    check_weights(tensors, weight_shapes(cell), str(path))
    layouts = checkpoint_layouts(cell)
    large = large_page_weights(cell)
    params = dict(cell.parameters_and_names())
    converted = [name for name in large if name in layouts or numpy_dtype(params[name].dtype) != tensors[name].dtype]
    if converted:
        block = LargePages(LargePages.size((params[name].shape, numpy_dtype(params[name].dtype))
                                           for name in converted))
    for name, p in params.items():
        if name in tensors:
            array = tensors[name]
            if name in layouts:
                array = layouts[name][1](array)
            if name in converted:  # cast, if need be, in the one copy into the block
                copy = block.array(array.shape, numpy_dtype(p.dtype))
                copy[...] = array
                array = copy
            elif array.dtype != numpy_dtype(p.dtype) or not array.flags.c_contiguous or not array.flags.aligned:
                array = np.ascontiguousarray(array, dtype=numpy_dtype(p.dtype))
            elif name in large:
                advise_large_pages(array)
            p.set_data(Tensor.from_numpy(array))
    return MappedWeights(mapping)


class MappedWeights:
    """The memory map a sub-model's weights live in."""

    def __init__(self, mapping: np.memmap):
        self.mapping = mapping

    def release(self):
        """Hand the pages read so far back to the OS page cache. The weights stay valid: the next read maps them
        again from the cache (a minor fault, no disk read unless memory pressure evicted them).

        Also returns freed heap to the OS: the finished stage's temporaries are free, but glibc keeps them.
        """
        self.mapping._mmap.madvise(mmap.MADV_DONTNEED)
        trim_heap()

