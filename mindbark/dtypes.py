"""Compute dtypes by name, as users and the command line give them, and their numpy twins."""

from functools import lru_cache

import mindspore as ms
import numpy as np

_DTYPES = {"float32": ms.float32, "fp32": ms.float32, "float16": ms.float16, "fp16": ms.float16,
           "bfloat16": ms.bfloat16, "bf16": ms.bfloat16}


def parse_dtype(dtype) -> ms.dtype:
    """A MindSpore dtype for "float32" / "float16" / "bfloat16" (or their short names), or a dtype as given."""
    if isinstance(dtype, str):
        if dtype.lower() not in _DTYPES:
            raise ValueError(f"unknown dtype {dtype!r}: choose one of float32, float16, bfloat16")
        return _DTYPES[dtype.lower()]
    return dtype


@lru_cache(maxsize=None)
def numpy_dtype(dtype: ms.dtype) -> np.dtype:
    """The numpy dtype a MindSpore Tensor of `dtype` converts to (bfloat16 too), without MindSpore's deprecated
    `dtype_to_nptype`, which warns on every call."""
    return ms.Tensor(0, dtype).asnumpy().dtype
