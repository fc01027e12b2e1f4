#!/usr/bin/env python
"""Bark text-to-audio from the command line: one WAV file, or an interactive console.

    python scripts/infer.py --text "Hello [laughs]" --out hello.wav
    python scripts/infer.py                      # console
    python scripts/infer.py --help
"""

import os
import sys
from pathlib import Path

os.environ.setdefault("GLOG_v", "3")  # before MindSpore is imported: silences its C++ [WARNING] lines
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # this checkout's mindbark, installed or not

from mindbark.cli import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
