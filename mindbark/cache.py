"""What mindbark keeps in its cache home (`paths.mindbark_home()`), how big it is, and removing what is stale.

Models stay until cleared (converting one again takes minutes). Graphs and kernels are made again on demand: a
graph whose MindSpore version or mindbark source is not this one's, and a kernel library built from other sources
or for another CPU or compiler, will not be loaded again, so `prune` removes them. Leftovers of an interrupted
write (hidden temporaries an hour old) go too.
"""

import shutil
import time
from dataclasses import dataclass
from pathlib import Path

from . import graphs, kernels
from .paths import converted_dir, graphs_dir, kernels_dir, mindbark_home, read_marker

_STALE_TEMPORARY_S = 3600  # a conversion or download still writing its temporaries is younger than this


@dataclass
class Entry:
    """One thing in the cache: a model, or the graphs or kernels of this or another version."""

    kind: str  # "model", "graphs", "kernels" or "leftover"
    name: str
    paths: list
    size: int
    current: bool = True  # False: never loaded again, `prune` removes it

    @property
    def files(self) -> int:
        return sum(1 for p in self.paths for _ in (p.rglob("*") if p.is_dir() else [p]))


def size_of(path: Path) -> int:
    if path.is_file() or path.is_symlink():
        return path.lstat().st_size
    return sum(f.lstat().st_size for f in path.rglob("*") if f.is_file() or f.is_symlink())


def _models(home: Path) -> list[Entry]:
    found = []
    for parent, prefix in ((home, ""), (converted_dir(), "converted/")):
        if not parent.is_dir():
            continue
        for d in sorted(parent.iterdir()):
            meta = read_marker(d) if d.is_dir() and not d.name.startswith(".") else None
            if meta is not None:
                found.append(Entry("model", prefix + d.name, [d], size_of(d)))
    return found


def _graphs() -> list[Entry]:
    directory = graphs_dir()
    if not directory.is_dir():
        return []
    current, by_name = graphs.stamp(), {True: [], False: []}
    for f in sorted(directory.glob("*.mindir")):
        match = graphs.FILE.fullmatch(f.name)
        by_name[bool(match and match["stamp"] == current)].append(f)
    return [Entry("graphs", "this version" if fresh else "other versions", files, sum(map(size_of, files)), fresh)
            for fresh, files in sorted(by_name.items(), reverse=True) if files]


def _kernels() -> list[Entry]:
    directory = kernels_dir()
    if not directory.is_dir():
        return []
    current = kernels.current_library()
    libraries = sorted(directory.glob("cpu_ops-*.so"))
    mine = [f for f in libraries if f == current]
    others = [f for f in libraries if f != current]
    return [Entry("kernels", label, files, sum(map(size_of, files)), fresh)
            for label, files, fresh in (("this build", mine, True), ("other builds", others, False)) if files]


def _leftovers(home: Path) -> list[Entry]:
    old = time.time() - _STALE_TEMPORARY_S
    found = []
    for parent in (home, converted_dir(), graphs_dir(), kernels_dir()):
        if parent.is_dir():
            found += [p for p in parent.iterdir() if p.name.startswith(".") and p.lstat().st_mtime < old]
    return [Entry("leftover", "interrupted writes", found, sum(map(size_of, found)), False)] if found else []


def inventory() -> list[Entry]:
    """Everything in the cache home, models first."""
    home = mindbark_home()
    if not home.is_dir():
        return []
    return _models(home) + _graphs() + _kernels() + _leftovers(home)


def prune() -> tuple[int, int]:
    """Remove the graphs and kernels no process of this mindbark will load, and leftovers of interrupted writes.

    Returns:
        (files removed, bytes freed).
    """
    files = freed = 0
    for entry in inventory():
        if entry.current:
            continue
        files, freed = files + entry.files, freed + entry.size
        for p in entry.paths:
            if p.is_dir() and not p.is_symlink():
                shutil.rmtree(p)
            else:
                p.unlink(missing_ok=True)
    return files, freed


def clear() -> int:
    """Remove the whole cache home (models included); returns the bytes freed."""
    home = mindbark_home()
    if not home.exists():
        return 0
    freed = size_of(home)
    shutil.rmtree(home)
    return freed
