"""The single wrapper around `mindspore.jit`, so API changes between MindSpore releases land here only."""

import mindspore as ms


def compiled(fn):
    """Compile `fn` (a function or bound Cell method) into a static graph; one graph per input shape."""
    return ms.jit(fn, capture_mode="ast")
