"""Where mindbark keeps what it makes, and the marker that makes a directory a converted mindbark model.

    $MINDBARK_HOME (default ~/.cache/mindbark)
        bark-small/, bark/, tiny-random/   models resolved by name, converted once
        converted/                         Hugging Face directories passed as paths, converted once each
        graphs/                            compiled graphs (MindIR), one file per graph and argument signature
        kernels/                           the CPU kernel library, one file per source, compiler and CPU
"""

import json
import os
from pathlib import Path

MARKER = "mindbark.json"  # present in every directory mindbark's converter wrote
FORMAT_VERSION = 1


def mindbark_home() -> Path:
    """`$MINDBARK_HOME`, else `mindbark` in `$XDG_CACHE_HOME` (default `~/.cache`)."""
    home = os.environ.get("MINDBARK_HOME")
    return Path(home) if home else Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "mindbark"


def converted_dir() -> Path:
    return mindbark_home() / "converted"


def graphs_dir() -> Path:
    return mindbark_home() / "graphs"


def kernels_dir() -> Path:
    return mindbark_home() / "kernels"


def read_marker(path: Path) -> dict | None:
    """The marker of a converted directory, or None where there is none (or it is unreadable)."""
    try:
        meta = json.loads((Path(path) / MARKER).read_text())
    except (OSError, ValueError):
        return None
    return meta if isinstance(meta, dict) else None


def is_current(path: Path) -> bool:
    """Whether `path` holds a model converted in the format this mindbark reads."""
    meta = read_marker(path)
    return meta is not None and meta.get("format_version") == FORMAT_VERSION


def write_marker(dst: Path, meta: dict):
    """Mark `dst` as a converted model of the current format; `meta` says where it came from."""
    meta = {"format_version": FORMAT_VERSION, **meta}
    (Path(dst) / MARKER).write_text(json.dumps(meta, indent=2, sort_keys=True) + "\n")
