"""The single wrapper around `mindspore.jit`, so API changes between MindSpore releases land here only."""

import mindspore as ms


def compiled(fn, dynamic: dict | None = None):
    """Compile `fn` (a function or bound Cell method) into a static graph; one graph per input shape.

    `dynamic` maps argument names to Tensor specs (a tuple of them for a tuple argument) whose None dimensions may
    take any size without a new compile. Give such a graph a function object of its own: marking a bound method
    dynamic made MindSpore compile its static graphs with dynamic-shape kernels too (a decode step 22.9 -> 28 ms).
    """
    graph = ms.jit(fn, capture_mode="ast")
    return ms.enable_dynamic(**dynamic)(graph) if dynamic else graph
