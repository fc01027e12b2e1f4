"""`mindbark` / `scripts/infer.py`: the one-shot command, the console and `mindbark serve` behind one entry point.

Library errors (ValueError, TypeError, OSError and their kin ConversionError, FileNotFoundError) end here as one
`error:` line on stderr and a non-zero status; anything else is a bug and keeps its traceback.
"""

import os
import sys
from pathlib import Path

from ..errors import one_line
from ..voices import list_voices
from .args import ArgumentError, parse_args, wants_console


def main(argv=None) -> int:
    """Run the command line `argv` (default: sys.argv[1:]); returns the exit status."""
    os.environ.setdefault("GLOG_v", "3")  # MindSpore's C++ [WARNING] lines, if it is not imported yet
    argv = sys.argv[1:] if argv is None else list(argv)
    try:
        return _run(argv)
    except ArgumentError as e:
        return _fail(e, 2)
    except BrokenPipeError:  # the reader left early, as in `mindbark --list-voices | head`
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # so the exit-time flush stays quiet
        return 1
    except (ValueError, TypeError, OSError) as e:
        return _fail(one_line(e), 1)
    except KeyboardInterrupt:
        return _fail("interrupted", 130)


def _run(argv: list) -> int:
    # the commands below bring MindSpore in (seconds, and its own start-up lines), so each is imported only when
    # it runs: `--help`, `--list-voices` and a bad command line stay fast and quiet
    if argv[:1] == ["cache"]:
        from . import cache

        return cache.run(argv[1:])
    if argv[:1] == ["serve"]:
        from . import serve

        return serve.main(argv[1:])
    args = parse_args(argv)
    if args.list_voices:
        return _list_voices(args)
    if wants_console(args):
        from . import console

        return console.run(args)
    from . import oneshot

    return oneshot.run(args)


def _list_voices(args) -> int:
    model_dir = args.model if args.model and Path(args.model).expanduser().is_dir() else None
    print("\n".join(list_voices(model_dir)))
    return 0


def _fail(message, status: int) -> int:
    print(f"error: {message}", file=sys.stderr, flush=True)
    return status
