"""Compute dtypes by name, as users and the command line give them."""

import mindspore as ms

_DTYPES = {"float32": ms.float32, "fp32": ms.float32, "float16": ms.float16, "fp16": ms.float16,
           "bfloat16": ms.bfloat16, "bf16": ms.bfloat16}


def parse_dtype(dtype) -> ms.dtype:
    """A MindSpore dtype for "float32" / "float16" / "bfloat16" (or their short names), or a dtype as given."""
    if isinstance(dtype, str):
        if dtype.lower() not in _DTYPES:
            raise ValueError(f"unknown dtype {dtype!r}: choose one of float32, float16, bfloat16")
        return _DTYPES[dtype.lower()]
    return dtype
