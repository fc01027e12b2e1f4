"""The few array ops the compiled graphs use most, called as MindSpore primitives.

MindSpore's functional ops (`ops.softmax`, `ops.concat`, `ops.split`, `ops.arange`) are Python wrappers whose
argument checks the graph compiler parses and evaluates again at every call site. Measured on MindSpore 2.10 CPU,
compile time per call: softmax 16 ms against 1 ms as `ops.Softmax`, concat 10 against 1, split 8 against 1,
arange 34 against 1 as `ops.Range`, and a split into a list of sections (one StridedSlice per section, built in
Python) 120 ms against 5 for one StridedSlice. The codec graph alone compiled in 4.4 s, of which ~1.2 s was these.
The results are the same kernels; only the compile time differs.
"""

from mindspore import ops


def softmax(x):
    """Softmax over the last axis."""
    return ops.Softmax(-1)(x)


def concat(xs, axis: int):
    """`xs` (a tuple or list of tensors) joined along `axis`."""
    return ops.Concat(axis)(tuple(xs))


def split(x, size: int, axis: int):
    """`x` cut into equal parts of `size` along `axis`, which `size` must divide."""
    return ops.Split(axis, x.shape[axis] // size)(x)


def arange(n: int):
    """0, 1, ..., n - 1 as int64."""
    return ops.Range()(0, n, 1)


def rows(x, start: int, n: int):
    """Rows start..start+n-1 of a (B, T, C) signal."""
    return ops.StridedSlice()(x, (0, start, 0), (x.shape[0], start + n, x.shape[2]), (1, 1, 1))
