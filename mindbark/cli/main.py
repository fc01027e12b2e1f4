"""`mindbark` / `scripts/infer.py`: the one-shot command, the console and `mindbark serve` behind one entry point.

Library errors (ValueError, TypeError, OSError and their kin ConversionError, FileNotFoundError) end here as one
`error:` line on stderr and a non-zero status; anything else is a bug and keeps its traceback.
"""

import os
import sys
from pathlib import Path

from ..errors import one_line
from .args import ArgumentError, parse_args, wants_console


def main(argv=None) -> int:
    """Run the command line `argv` (default: sys.argv[1:]); returns the exit status."""
    os.environ.setdefault("GLOG_v", "3")  # MindSpore's C++ [WARNING] lines, if it is not imported yet
    argv = sys.argv[1:] if argv is None else list(argv)
    try:
        if argv[:1] == ["serve"]:
            from . import serve

            return serve.main(argv[1:])
        args = parse_args(argv)
    except ArgumentError as e:
        return _fail(e, 2)
    except (ValueError, OSError) as e:  # `serve`'s settings and missing extra
        return _fail(one_line(e), 1)
    try:
        if args.list_voices:
            return _list_voices(args)
        if wants_console(args):
            from . import console

            return console.run(args)
        from . import oneshot

        return oneshot.run(args)
    except BrokenPipeError:  # the reader left early, as in `mindbark --list-voices | head`
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # so the exit-time flush stays quiet
        return 1
    except (ValueError, TypeError, OSError) as e:
        return _fail(one_line(e), 1)
    except KeyboardInterrupt:
        return _fail("interrupted", 130)


def _list_voices(args) -> int:
    from ..voices import list_voices

    model_dir = args.model if args.model and Path(args.model).expanduser().is_dir() else None
    print("\n".join(list_voices(model_dir)))
    return 0


def _fail(message, status: int) -> int:
    print(f"error: {message}", file=sys.stderr, flush=True)
    return status
