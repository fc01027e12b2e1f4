"""One text in, one WAV file out (or, with --voice-from and --save-voice only, a voice made from a recording).
Every input is checked before the model is loaded."""

import sys
from dataclasses import replace
from pathlib import Path

from . import session as S
from .args import DEFAULT_MODEL, voice_only


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


def save_voice_only(args, out=print) -> int:
    """Make a voice from --voice-from's recording and save it to --save-voice; returns the exit status."""
    target = S.check_writable(S.voice_path(args.save_voice))
    S.check_recording(args.voice_from)
    S.check_device(args.device)
    path = S.resolve(args.model or DEFAULT_MODEL, out)
    cloner = S.cloner(args, path, out)
    voice = cloner.voice(args.voice_from, log=out)
    saved = S.save_voice(target, voice["semantic_prompt"], voice["coarse_prompt"], voice["fine_prompt"])
    out(f"saved voice {saved} (from {args.voice_from}: {S.voice_seconds(voice):.1f} s; "
        f"{S.voice_timing_line(cloner.timings)})")
    return 0


def run(args, stdin=None, out=print) -> int:
    """Speak one text from the parsed command line into a WAV file; returns the exit status."""
    if voice_only(args):
        return save_voice_only(args, out)
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
    if args.voice_from is not None:
        S.check_recording(args.voice_from)
    S.check_device(args.device, args.dtype, args.engine, args.weights)
    path = S.resolve(args.model or DEFAULT_MODEL, out)
    S.voice_for(settings.voice, path, "--list-voices")  # an unknown voice fails before the model loads
    speaker = S.Speaker(path, args.device, args.dtype, args.offload, engine=args.engine, weights=args.weights)
    cloned = None
    if args.voice_from is not None:
        cloner = S.cloner(args, speaker.model, out)
        cloned = cloner.voice(args.voice_from, log=out)
        out(f"voice from {args.voice_from}: {S.voice_seconds(cloned):.1f} s ({S.voice_timing_line(cloner.timings)})")
        settings = replace(settings, voice=cloned)
    parts = S.PartWriter(target, speaker.model.sample_rate, out) if args.stream else None
    result = speaker.say(text, settings, args.seed, args.silent, parts)
    written = S.write_numbered(numbered, result) if numbered else S.write(target, result)
    chunks = f" in {len(result.chunks)} chunks" if len(result.chunks) > 1 else ""
    out(f"wrote {written}: {S.duration(result):.2f} s of audio{chunks} at {result.sample_rate} Hz")
    out(f"time: {S.timing_line(result.timings)}")
    if args.save_voice is not None:
        saved = S.save_result_voice(args.save_voice, result) if cloned is None else \
            S.save_voice(args.save_voice, cloned["semantic_prompt"], cloned["coarse_prompt"], cloned["fine_prompt"])
        out(f"saved voice {saved}")
    return 0
