"""The single wrapper around `mindspore.jit`, so API changes between MindSpore releases land here only."""

import inspect

import mindspore as ms

from .graphs import GraphStore, first_call, signature, stored_graph


class Graph:
    """`fn` compiled into a static graph, one per argument signature. With a `store`, each graph is loaded from
    disk when an earlier process saved it, and saved when not."""

    def __init__(self, fn, dynamic: dict | None, owner, name: str):
        graph = ms.jit(fn, capture_mode="ast")
        self._jit = ms.enable_dynamic(**dynamic)(graph) if dynamic else graph
        self._fn = fn
        self._dynamic = dynamic or {}
        self._names = list(inspect.signature(fn).parameters)
        self._owner = owner
        self._name = name
        self._runners = {}
        self.store: GraphStore | None = None

    def __call__(self, *args):
        if self.store is None:
            return self._jit(*args)
        specs = tuple(self._dynamic.get(name, a) if a is not None else None for name, a in zip(self._names, args))
        key = repr(signature(specs))
        given = tuple(a for a in args if a is not None)
        if key not in self._runners:
            runner = stored_graph(self.store, self._fn, self._owner, self._name, args, specs)
            out = None if runner is None else first_call(runner, given, self._name)
            self._runners[key] = None if out is None else runner
            return self._jit(*args) if out is None else out
        runner = self._runners[key]
        return self._jit(*args) if runner is None else runner(*given)


def compiled(fn, owner, name: str, dynamic: dict | None = None) -> Graph:
    """Compile `fn` (a function or bound Cell method of `owner`, whose parameters it reads) into static graphs.

    `dynamic` maps argument names to Tensor specs (a tuple of them for a tuple argument) whose None dimensions may
    take any size without a new compile. Give such a graph a function object of its own: marking a bound method
    dynamic made MindSpore compile its static graphs with dynamic-shape kernels too, which are slower.
    `name` tells the model's graphs apart on disk.
    """
    return Graph(fn, dynamic, owner, name)


def use_store(cell, store: GraphStore | None):
    """Save and load every graph of `cell` (one of the four sub-models) through `store`; None: memory only."""
    for value in vars(cell).values():
        if isinstance(value, Graph):
            value.store = store
