"""One text in, one WAV file out. Every input is checked before the model is loaded."""

import sys
from pathlib import Path

from . import session as S
from .args import DEFAULT_MODEL


def read_text(args, stdin=None) -> str:
    """The text from --text, --text-file or standard input (`--text -`, or piped when --text is absent)."""
    stdin = sys.stdin if stdin is None else stdin
    if args.text_file is not None:
        text = Path(args.text_file).read_text(encoding="utf-8")
        where = f"text file {args.text_file}"
    elif args.text is not None and args.text != "-":
        text, where = args.text, "--text"
    else:
        if stdin is None:
            raise ValueError("no text: pass --text, --text-file, or pipe it to standard input")
        text, where = stdin.read(), "standard input"
    if not text.strip():
        raise ValueError(f"text is empty ({where})")
    return text.strip()


def run(args, stdin=None, out=print) -> int:
    """Speak one text from the parsed command line into a WAV file; returns the exit status."""
    settings = S.Settings.from_args(args)
    settings.config()
    text = read_text(args, stdin)
    numbered = None
    if args.out is not None:
        target = S.check_writable(Path(args.out))
    else:
        numbered = S.Numbered(args.out_dir)
        target = S.check_writable(numbered.peek())
    if args.save_voice is not None:
        S.check_writable(S.voice_path(args.save_voice))
    S.check_device(args.device, args.dtype, args.engine)
    path = S.resolve(args.model or DEFAULT_MODEL, out)
    S.voice_for(settings.voice, path, "--list-voices")  # an unknown voice fails before the model loads
    speaker = S.Speaker(path, args.device, args.dtype, args.offload, engine=args.engine)
    parts = S.PartWriter(target, speaker.model.sample_rate, out) if args.stream else None
    result = speaker.say(text, settings, args.seed, args.silent, parts)
    written = S.write_numbered(numbered, result) if numbered else S.write(target, result)
    chunks = f" in {len(result.chunks)} chunks" if len(result.chunks) > 1 else ""
    out(f"wrote {written}: {S.duration(result):.2f} s of audio{chunks} at {result.sample_rate} Hz")
    out(f"time: {S.timing_line(result.timings)}")
    if args.save_voice is not None:
        out(f"saved voice {S.save_result_voice(args.save_voice, result)}")
    return 0
