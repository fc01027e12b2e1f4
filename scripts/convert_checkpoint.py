#!/usr/bin/env python
"""Convert a Hugging Face-format Bark checkpoint (suno/bark-small, suno/bark) into a mindbark directory.

    python scripts/convert_checkpoint.py SRC DST [--overwrite]
"""

import argparse
import sys


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("src", help="directory with config.json and model.safetensors or pytorch_model.bin")
    parser.add_argument("dst", help="directory to create")
    parser.add_argument("--overwrite", action="store_true", help="replace DST if it exists")
    args = parser.parse_args(argv)

    from mindbark.convert import ConversionError, convert_checkpoint

    try:
        dst = convert_checkpoint(args.src, args.dst, overwrite=args.overwrite)
    except (ConversionError, OSError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    print(f"converted {args.src} -> {dst}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
