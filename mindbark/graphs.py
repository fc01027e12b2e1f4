"""Compiled graphs kept on disk as MindIR, so a later process loads in well under a second what took seconds to
compile.

A file holds the graph only; its parameters are bound at load to the model's own (memory-mapped) weights, so no
weight is stored twice and a converted model's weights may change without invalidating a graph. A file's name is
a digest of everything else the graph depends on: MindSpore's version and backend, mindbark's source, the model's
class, config and parameter shapes, and the call's argument shapes. MindSpore's own compile cache was no option:
it names graphs by compile order only, and handed a later process another shape's graph (silently wrong results
on 2.10).

A file's name starts with a stamp of the MindSpore version and mindbark's source, so the graphs no later process
will load are told apart (`mindbark cache prune`); the directory is kept under a size (`max_bytes`) by removing
the graphs used least recently.
"""

import hashlib
import json
import logging
import os
import re
import time
from functools import lru_cache
from pathlib import Path

import mindspore as ms
from mindspore import nn

from . import kernels
from .errors import one_line
from .files import replacing
from .memory import trim_heap
from .paths import graphs_dir

log = logging.getLogger(__name__)

ENV = "MINDBARK_GRAPH_CACHE"
MAX_ENV = "MINDBARK_GRAPH_CACHE_MB"
_OFF = {"0", "off", "false", "no", ""}
# a bark-small or bark model's graphs at one batch size are a few MB; this holds hundreds of signatures
DEFAULT_MAX_MB = 512
FILE = re.compile(r"(?P<name>.+)-(?P<stamp>[0-9a-f]{12})-(?P<key>[0-9a-f]{32})\.mindir")


def default_dir() -> Path | None:
    """`$MINDBARK_GRAPH_CACHE` (a directory, or 0/off for none), else `graphs/` in mindbark's cache home."""
    value = os.environ.get(ENV)
    if value is not None:
        return None if value.strip().lower() in _OFF else Path(value)
    return graphs_dir()


@lru_cache(maxsize=1)
def _source_digest() -> str:
    """Every module and kernel source of the package: any change to the code may change a graph."""
    h = hashlib.sha256()
    root = Path(__file__).parent
    for f in sorted([*root.rglob("*.py"), *root.rglob("*.cc")]):
        h.update(str(f.relative_to(root)).encode() + b"\0" + f.read_bytes() + b"\0")
    return h.hexdigest()


def stamp() -> str:
    """What every graph this mindbark and MindSpore save shares in its file name."""
    return hashlib.sha256(f"{ms.__version__}\0{_source_digest()}".encode()).hexdigest()[:12]


def max_bytes() -> int:
    """The graph directory's size limit: `$MINDBARK_GRAPH_CACHE_MB` megabytes, else 512."""
    value = os.environ.get(MAX_ENV, "").strip()
    try:
        mb = float(value) if value else DEFAULT_MAX_MB
    except ValueError:
        raise ValueError(f"{MAX_ENV}={value!r} is not a number of megabytes") from None
    return int(mb * 2**20)


def bound(directory: Path, limit: int, keep: Path | None = None) -> list[Path]:
    """Remove the graph files of `directory` used least recently (their modification time, which a load
    renews) until the rest fit in `limit` bytes; `keep` stays. Returns what was removed."""
    files = []
    for f in Path(directory).glob("*.mindir"):
        try:
            st = f.stat()
        except OSError:  # removed meanwhile by another process
            continue
        files.append((st.st_mtime, st.st_size, f))
    total = sum(size for _, size, _ in files)
    removed = []
    for _, size, f in sorted(files, key=lambda item: item[0]):
        if total <= limit:
            break
        if f == keep:
            continue
        f.unlink(missing_ok=True)
        total -= size
        removed.append(f)
    return removed


def signature(value):
    """What a graph specializes on in an argument: None-ness, tuple structure, shape and dtype."""
    if value is None:
        return None
    if isinstance(value, (tuple, list)):
        return [signature(v) for v in value]
    return [list(value.shape), str(value.dtype)]


class GraphStore:
    """A directory of saved graphs, with counts of what this process loaded and saved."""

    def __init__(self, directory: Path):
        self.directory = Path(directory)
        self.loaded = 0
        self.saved = 0

    def path(self, owner: nn.Cell, name: str, sig) -> Path:
        params = [[p.name, list(p.shape), str(p.dtype)] for p in owner.get_parameters()]
        key = json.dumps([ms.__version__, ms.get_context("device_target"), _source_digest(), kernels.state(),
                          type(owner).__qualname__, repr(getattr(owner, "config", None)), name, sig, params])
        return self.directory / f"{name}-{stamp()}-{hashlib.sha256(key.encode()).hexdigest()[:32]}.mindir"

    def load(self, path: Path, owner: nn.Cell, dynamic: tuple | None = None) -> nn.GraphCell:
        """The graph at `path` with `owner`'s parameters bound (shared, not copied). `dynamic`: its inputs' specs,
        for a graph saved with dynamic dimensions: MindIR keeps none, and without them every new shape compiled
        the loaded graph again at every new past length."""
        graph = nn.GraphCell(ms.load(str(path)))
        if dynamic is not None:
            graph.set_inputs(*dynamic)
        own = {p.name: p for p in owner.get_parameters()}
        for p in graph.get_parameters():
            mine = own.get(p.name)
            if mine is None or tuple(mine.shape) != tuple(p.shape) or mine.dtype != p.dtype:
                raise ValueError(f"{path.name}: parameter {p.name} does not match the model's")
            p.set_data(mine)  # set_data shares the Tensor's memory: the weights stay where they are mapped
        self.loaded += 1
        try:
            os.utime(path)  # used now: `bound` removes the graphs used least recently first
        except OSError:  # a read-only cache still serves its graphs
            pass
        return graph

    def save(self, fn, args: tuple, path: Path):
        """Compile `fn` for `args` (Tensors, or specs with None dimensions) and write its graph, without weights,
        to `path` atomically."""
        # ms.export would also copy and serialize every weight (longer than compiling, and a peak of a sub-model's
        # weights more) only for us to strip them again; its graph-only steps are these
        from mindspore.graph.api import _JitExecutor

        executor = _JitExecutor(fn, time.time() * 1e9)
        phase = executor.compile(fn.__name__, *args, phase="export.mindir")
        try:
            stream = executor._get_func_graph_proto(fn, phase, "mind_ir")
        finally:
            executor._graph_executor.del_net_res(None, {phase})  # the process runs the graph it loads, not this
            trim_heap()  # and hands the compiler's memory back: a first run's peak is compilation
        self.directory.mkdir(parents=True, exist_ok=True)
        with replacing(path) as tmp:
            tmp.write_bytes(stream)
        self.saved += 1
        bound(self.directory, max_bytes(), keep=path)


def stored_graph(store: GraphStore, fn, owner: nn.Cell, name: str, args: tuple, specs: tuple):
    """A callable taking `args` without their Nones, running `fn`'s graph for this signature from `store` (saved
    there first if missing or unreadable); None if neither works, for the caller to compile in memory.

    `specs` are the compile-time stand-ins for `args` (dynamic dimensions as None)."""
    given = tuple(i for i, a in enumerate(args) if a is not None)
    path = store.path(owner, name, signature(specs))
    inputs = tuple(ms.mutable(tuple(specs[i])) if isinstance(specs[i], (tuple, list)) else specs[i] for i in given)
    dynamic = inputs if any(specs[i] is not args[i] for i in given) else None
    if path.is_file():
        try:
            return store.load(path, owner, dynamic)
        except Exception as e:  # noqa: BLE001 - a bad file is replaced below
            log.warning("mindbark: saved graph %s unusable (%s); compiling it again", path.name, one_line(e))
    try:
        store.save(_without_nones(fn, len(args), given), inputs, path)
        return store.load(path, owner, dynamic)
    except Exception as e:  # noqa: BLE001 - an unwritable cache or a graph MindIR cannot hold
        log.warning("mindbark: could not save graph %s (%s); compiling it in memory", name, one_line(e))
        return None


def first_call(graph, args: tuple, name: str):
    """A loaded graph's first call: its outputs, or None (with a warning) where it fails to run, for the caller to
    compile in memory instead; MindIR loads some graphs that then fail at their first call."""
    try:
        return graph(*args)
    except Exception as e:  # noqa: BLE001 - the in-memory compile reports what is really wrong, if anything
        log.warning("mindbark: saved graph %s failed at its first call (%s); compiling it in memory", name,
                    one_line(e))
        return None


def _without_nones(fn, n: int, given: tuple):
    """`fn` as a function of its non-None arguments only: a graph's inputs are Tensors."""
    def graph(*args):
        full = [None] * n
        for j, i in enumerate(given):
            full[i] = args[j]
        return fn(*full)

    graph.__name__ = getattr(fn, "__name__", "graph")
    return graph
