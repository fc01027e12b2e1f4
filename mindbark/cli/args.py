"""Command-line arguments of `mindbark` / `scripts/infer.py`, checked before anything slow happens."""

import argparse
import math
import sys

from ..generation.config import GenerationConfig, LongFormOptions
from ..weight_formats import FORMATS

DESCRIPTION = "Bark text-to-audio in MindSpore: write one WAV file, or talk to it in a console."
EPILOG = """examples:
  mindbark --text "Hello [laughs], this is Bark." --out hello.wav
  echo "Bonjour!" | mindbark --voice v2/fr_speaker_1 --out bonjour.wav
  mindbark                      # console (stdin is a terminal)
  mindbark --model tiny-random --text "smoke test" --max-duration 1   # offline, random weights
  mindbark cache                # what is in mindbark's cache and how big; `mindbark cache --help`
  mindbark serve --help         # an HTTP API for applications (pip install -e ".[serve]")
  mindbark --voice-from speech.wav --text "Hi, it's me." --out me.wav  # speak in a recording's voice
  mindbark --voice-from speech.wav --save-voice me.npz                  # keep it: later --voice me.npz

--model takes bark-small (default), bark, tiny-random or a directory (a Hugging Face snapshot or a converted model).
A temperature of 0 means greedy decoding.

--voice-from makes a voice from the last 14 s of a recording (wav, flac, ogg); the first time it downloads and
converts HuBERT base (~380 MB) and the English semantic quantizer (--hubert, --quantizer pick others).
Clone only voices you have the right to use: your own, or with the speaker's consent."""

DEVICES = ("cpu", "gpu", "ascend")
DTYPES = ("float32", "float16", "bfloat16")
ENGINES = ("cpu", "device")
DEFAULT_MODEL = "bark-small"
_GENERATION, _LONG = GenerationConfig(), LongFormOptions()


class ArgumentError(ValueError):
    """A bad command line, reported as one `error:` line with exit status 2."""


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # argparse prints usage and exits; we want one line, raised to main()
        raise ArgumentError(f"{message} (see --help)")


def _temperature(text: str) -> float:
    value = _float(text)
    if not value >= 0:
        raise argparse.ArgumentTypeError(f"must be >= 0 (0 means greedy), got {text}")
    return value


def _probability(text: str) -> float | None:
    if text.lower() == "none":
        return None
    value = _float(text)
    if not 0 < value <= 1:
        raise argparse.ArgumentTypeError(f"must be in (0, 1], got {text}")
    return value


def _positive(text: str) -> float:
    value = _float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be > 0, got {text}")
    return value


def _non_negative(text: str) -> float:
    value = _float(text)
    if not value >= 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, got {text}")
    return value


def _int_at_least(low: int):
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None
        if value < low:
            raise argparse.ArgumentTypeError(f"must be >= {low}, got {text}")
        return value
    return parse


_positive_int = _int_at_least(1)
_seed = _int_at_least(0)


def _float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"not a finite number: {text!r}")
    return value


def _choice(choices):
    def parse(text: str) -> str:
        if text.lower() not in choices:
            raise argparse.ArgumentTypeError(f"{text!r} is not one of {', '.join(choices)}")
        return text.lower()

    return parse


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="mindbark", description=DESCRIPTION, epilog=EPILOG,
                formatter_class=argparse.RawDescriptionHelpFormatter)
    what = p.add_argument_group("text and output")
    what.add_argument("--text", help='what to say; non-verbal cues like [laughs] allowed; "-" reads standard input')
    what.add_argument("--text-file", metavar="PATH", help="read the text from a UTF-8 file (any length: long texts "
                                                          "are spoken in chunks, joined into one file)")
    what.add_argument("--out", metavar="PATH.wav", help="WAV file to write (default: the next free out_NNN.wav "
                                                        "in --out-dir)")
    what.add_argument("--out-dir", metavar="DIR", default=".", help="where numbered files go (default: .)")
    what.add_argument("--save-voice", metavar="PATH.npz", help="also save the generation (its first chunk, for a long "
                                                               "text) as a reusable voice preset; with --voice-from, "
                                                               "the recording's voice")
    what.add_argument("--stream", action="store_true", help="write each chunk to its own file (NAME.partNNN.wav) "
                                                            "as soon as it is ready, then the joined file")
    what.add_argument("--console", action="store_true", help="interactive console (the default when there is no "
                                                             "--text and standard input is a terminal)")
    what.add_argument("--list-voices", action="store_true", help="print the voice preset names and exit")

    model = p.add_argument_group("model")
    model.add_argument("--model", metavar="NAME|DIR", help="bark-small (default), bark, tiny-random or a directory")
    model.add_argument("--device", type=_choice(DEVICES), metavar="{cpu,gpu,ascend}",
                       help="where to run (default: the best available)")
    model.add_argument("--dtype", type=_choice(DTYPES), default="float32", metavar="{float32,float16,bfloat16}",
                       help="parameter precision (default float32)")
    model.add_argument("--hubert", metavar="NAME|DIR", help="HuBERT for --voice-from: hubert-base (default), "
                       "tiny-random (the default with --model tiny-random) or a directory")
    model.add_argument("--quantizer", metavar="NAME|PATH", help="semantic quantizer for --voice-from: quantizer-en "
                       "(default), tiny-random, a quantizer .pth (other languages) or a converted directory")
    model.add_argument("--engine", type=_choice(ENGINES), metavar="{cpu,device}",
                       help="cpu: KV cache and sampling on the host (the default on CPU); device: both inside the "
                            "compiled graphs, static shapes (the default on GPU and Ascend)")
    model.add_argument("--weights", type=_choice(FORMATS), default="fp32", metavar="{fp32,bf16,int8}",
                       help="how the GPTs' weights are held on CPU: fp32 (default, exact), bf16 or int8 (faster "
                            "decoding and less memory, audio slightly different; README, Performance)")
    model.add_argument("--no-offload", dest="offload", action="store_false",
                       help="keep all four sub-models' weights in memory (default: only the running stage's; "
                            "~1 GB less at bark-small for ~1%% more time)")

    gen = p.add_argument_group("generation")
    gen.add_argument("--voice", metavar="NAME|PATH.npz",
                     help="voice preset: a name (v2/en_speaker_6, announcer) or an .npz path")
    gen.add_argument("--voice-from", metavar="AUDIO", help="speak in the voice of a recording (wav, flac, ogg; at "
                     "least 1 s, its last 14 s used). Clone only voices you have the right to use. With "
                     "--save-voice and no text: only save that voice")
    gen.add_argument("--seed", type=_seed, metavar="N", help="makes the result reproducible")
    gen.add_argument("--text-temp", type=_temperature, default=_GENERATION.semantic.temperature, metavar="T",
                     help="semantic temperature (default %(default)s)")
    gen.add_argument("--waveform-temp", type=_temperature, default=_GENERATION.coarse.temperature, metavar="T",
                     help="coarse temperature (default %(default)s)")
    gen.add_argument("--fine-temp", type=_temperature, default=_GENERATION.fine.temperature, metavar="T",
                     help="fine temperature (default %(default)s)")
    gen.add_argument("--top-k", type=_positive_int, metavar="K", help="sample among the k most likely tokens")
    gen.add_argument("--top-p", type=_probability, metavar="P", help="nucleus sampling, in (0, 1]")
    gen.add_argument("--min-eos-p", type=_probability, default=_GENERATION.semantic.min_eos_p, metavar="P",
                     help="end speech once p(end) reaches this (default %(default)s; none: only when picked)")
    gen.add_argument("--max-duration", type=_positive, metavar="SECONDS",
                     help="at most this much audio (default and cap: about 15 s)")
    gen.add_argument("--silence", type=_non_negative, default=_LONG.silence, metavar="SECONDS",
                     help="silence between the chunks of a long text (default %(default)s)")
    gen.add_argument("--chunk-chars", type=_positive_int, default=_LONG.max_chars, metavar="N",
                     help="a long text is cut into chunks of at most N characters (default %(default)s, ~13 s of "
                          "speech)")
    gen.add_argument("--batch-size", type=_positive_int, default=_LONG.batch_size, metavar="N",
                     help="chunks of a long text generated together (default %(default)s; the audio is the same)")
    gen.add_argument("--silent", action="store_true", help="no progress bars")
    return p


def parse_args(argv=None) -> argparse.Namespace:
    """Parse and check `argv`; raises ArgumentError with a one-line message."""
    args = build_parser().parse_args(argv)
    if args.text is not None and args.text_file is not None:
        raise ArgumentError("give --text or --text-file, not both")
    if args.console and (args.text is not None or args.text_file is not None):
        raise ArgumentError("--console reads its texts interactively: drop --text / --text-file")
    if args.console and args.out is not None:
        raise ArgumentError("--console numbers its files in --out-dir: drop --out")
    if args.voice is not None and args.voice_from is not None:
        raise ArgumentError("give --voice or --voice-from, not both")
    return args


def voice_only(args: argparse.Namespace) -> bool:
    """`--voice-from AUDIO --save-voice PATH` without a text: make the voice, save it, speak nothing."""
    return (args.voice_from is not None and args.save_voice is not None and args.text is None
            and args.text_file is None and not args.console)


def wants_console(args: argparse.Namespace, stdin=None) -> bool:
    """The console runs when asked for, or when there is no text to read and a person sits at the terminal."""
    stdin = sys.stdin if stdin is None else stdin
    if args.console:
        return True
    if voice_only(args):
        return False
    return args.text is None and args.text_file is None and is_terminal(stdin)


def is_terminal(stream) -> bool:
    """Whether `stream` is an interactive terminal (False for pipes, files and closed streams)."""
    try:
        return stream is not None and stream.isatty()
    except (AttributeError, ValueError):
        return False
