"""How the GPTs' projection weights may be stored on CPU: fp32 (as converted), bf16 or int8, packed from fp32 at
load time. The smaller formats halve or nearly quarter the bytes a decode step reads; every product and sum stays
fp32 (mindbark's `Gemv` and `Dequantize` kernels read these layouts).

- bf16: the upper 16 bits of each fp32, rounded to nearest even.
- int8: each row in blocks of 32 weights with one fp32 scale (max |w| / 127) per block, as ggml's q8_0; a row is
  its K / 32 scales' bytes, then its K int8 weights.
"""

import numpy as np

FORMATS = ("fp32", "bf16", "int8")
Q8_BLOCK = 32


def check_format(name: str) -> str:
    """`name` if it is a weight format, else ValueError naming the choices."""
    if name not in FORMATS:
        raise ValueError(f"unknown weight format {name!r}: choose one of {', '.join(FORMATS)}")
    return name


def packed_shape(shape: tuple, fmt: str) -> tuple:
    """The shape of (N, K) fp32 weights packed in `fmt` (elements of its numpy dtype)."""
    n, k = shape
    return (n, k + k // Q8_BLOCK * 4) if fmt == "int8" else (n, k)


def packed_dtype(fmt: str) -> np.dtype:
    return {"fp32": np.dtype(np.float32), "bf16": np.dtype(np.uint16), "int8": np.dtype(np.uint8)}[fmt]


def pack(w: np.ndarray, fmt: str) -> np.ndarray:
    """(N, K) fp32 weights in format `fmt`, a new C-contiguous array of `packed_dtype(fmt)`."""
    w = np.ascontiguousarray(w, dtype=np.float32)
    if fmt == "fp32":
        return w
    if fmt == "bf16":
        bits = w.view(np.uint32)
        rounding = ((bits >> 16) & 1) + 0x7FFF  # to nearest, ties to even
        return ((bits + rounding) >> 16).astype(np.uint16)
    n, k = w.shape
    if k % Q8_BLOCK:
        raise ValueError(f"int8 weights need rows of a multiple of {Q8_BLOCK} values, not {k}")
    blocks = w.reshape(n, k // Q8_BLOCK, Q8_BLOCK)
    scales = np.abs(blocks).max(axis=2) / 127
    q = np.rint(blocks / np.where(scales == 0, 1, scales)[..., None]).astype(np.int8)
    return np.concatenate([scales.astype(np.float32).view(np.uint8), q.reshape(n, k).view(np.uint8)], axis=1)


def unpack(packed: np.ndarray, fmt: str) -> np.ndarray:
    """The fp32 weights (N, K) that packed weights stand for: what the kernels compute with."""
    if fmt == "fp32":
        return packed
    if fmt == "bf16":
        return (packed.astype(np.uint32) << 16).view(np.float32)
    n, width = packed.shape
    k = width // (Q8_BLOCK + 4) * Q8_BLOCK
    scales = np.ascontiguousarray(packed[:, :k // Q8_BLOCK * 4]).view(np.float32)
    q = packed[:, k // Q8_BLOCK * 4:].view(np.int8).reshape(n, k // Q8_BLOCK, Q8_BLOCK)
    return (q.astype(np.float32) * scales[..., None]).reshape(n, k)
