"""The few array ops the compiled graphs use most, called as MindSpore primitives.

MindSpore's functional ops (`ops.softmax`, `ops.concat`, `ops.split`, `ops.arange`) are Python wrappers whose
argument checks the graph compiler parses and evaluates again at every call site, and a split into a list of
sections builds one StridedSlice per section in Python. Called as primitives they cost the compiler a fraction of
that (README, Performance); the kernels that run are the same.
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
