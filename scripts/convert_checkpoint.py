#!/usr/bin/env python
"""Convert a Hugging Face-format Bark checkpoint (suno/bark-small, suno/bark) into a mindbark directory.

    python scripts/convert_checkpoint.py SRC DST [--overwrite]
    python scripts/convert_checkpoint.py ~/.cache/suno/bark_v0 DST [--codec encodec_24khz-d7cc33bc.th] [--size small]

SRC may also be Suno's original checkpoints (text_2.pt, coarse_2.pt, fine_2.pt or the small text.pt ...); their
codec, EnCodec's encodec_24khz-d7cc33bc.th, is looked for in SRC and torch.hub's cache unless --codec names it.
"""

import argparse
import sys


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("src", help="directory with config.json and model.safetensors or pytorch_model.bin, or with "
                        "Suno's text/coarse/fine .pt files")
    parser.add_argument("dst", help="directory to create")
    parser.add_argument("--overwrite", action="store_true", help="replace DST if it exists")
    parser.add_argument("--codec", help="Suno checkpoints: EnCodec's encodec_24khz-d7cc33bc.th")
    parser.add_argument("--size", choices=("large", "small"), help="Suno checkpoints: which size, if SRC has both")
    args = parser.parse_args(argv)

    from mindbark.convert import ConversionError, convert_checkpoint
    from mindbark.convert.suno import TOKENIZER_HINT

    try:
        dst = convert_checkpoint(args.src, args.dst, overwrite=args.overwrite, codec=args.codec, size=args.size)
    except (ConversionError, OSError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    print(f"converted {args.src} -> {dst}")
    if not any((dst / f).is_file() for f in ("tokenizer.json", "vocab.txt")):
        print(f"note: {TOKENIZER_HINT}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
