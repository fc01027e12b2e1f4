"""`mindbark cache`: what mindbark keeps on disk and how big it is; `prune` removes what is stale, `clear` all."""

import argparse
import sys

from .. import cache
from ..paths import mindbark_home
from .args import ArgumentError, is_terminal

USAGE = "mindbark cache [list | prune | clear [--yes]]"


class _Parser(argparse.ArgumentParser):
    def error(self, message):
        raise ArgumentError(f"{message} (see mindbark cache --help)")


def parse_args(argv) -> argparse.Namespace:
    p = _Parser(prog="mindbark cache", usage=USAGE, description=(
        "mindbark's cache: converted models, compiled graphs and the CPU kernel library, in $MINDBARK_HOME "
        "(default ~/.cache/mindbark)."))
    p.add_argument("action", nargs="?", default="list", choices=("list", "prune", "clear"),
                   help="list: what is there and how big (default); prune: remove the graphs and kernels this "
                        "version will not load again, and leftovers of interrupted writes; clear: remove it all, "
                        "models included")
    p.add_argument("--yes", action="store_true", help="clear without asking")
    return p.parse_args(argv)


def human(size: int) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if size < 1000 or unit == "GB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1000


def run(argv, stdin=None, out=print) -> int:
    args = parse_args(argv)
    stdin = sys.stdin if stdin is None else stdin
    if args.action == "prune":
        files, freed = cache.prune()
        out(f"removed {files} files, {human(freed)}" if files else "nothing stale")
        return 0
    if args.action == "clear":
        return _clear(args, stdin, out)
    entries = cache.inventory()
    out(f"{mindbark_home()} (set MINDBARK_HOME to move it)")
    for e in entries:
        files = f"{e.files} file{'s' if e.files != 1 else ''}" if e.kind != "model" else ""
        note = "" if e.current else "   stale: mindbark cache prune removes it"
        out(f"  {e.kind:<9}{e.name:<34}{files:>10}{human(e.size):>11}{note}")
    out(f"  {'total':<43}{human(sum(e.size for e in entries)):>22}" if entries else "  empty")
    return 0


def _clear(args, stdin, out) -> int:
    home = mindbark_home()
    if not home.exists():
        out("nothing to clear")
        return 0
    size = human(cache.size_of(home))
    if not args.yes:
        if not is_terminal(stdin):
            raise ArgumentError(f"clear removes {home} ({size}, converted models included): pass --yes")
        print(f"remove {home} ({size}, converted models included)? [y/N] ", end="", flush=True)
        if stdin.readline().strip().lower() not in ("y", "yes"):
            out("kept")
            return 1
    out(f"removed {home}, {human(cache.clear())}")
    return 0
