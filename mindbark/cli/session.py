"""What the one-shot command and the console share: a loaded model, its settings, and speaking one text."""

import itertools
import os
import signal
import threading
import time
from collections.abc import Mapping
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path

from ..audio import check_writable, write_wav
from ..bark import BarkModel, choose_engine
from ..constants import COARSE_RATE_HZ
from ..device import set_device
from ..generation.config import GenerationConfig, LongFormOptions, config_from_kwargs, max_tokens_for
from ..hub import TINY_RANDOM, resolve_model
from ..longform import LongResult, generate_long
from ..processor import BarkProcessor
from ..voice_clone import VoiceCloner, check_recording
from ..voices import UnknownVoiceError, list_voices, load_voice, save_voice

__all__ = ["Numbered", "PartWriter", "Settings", "Speaker", "check_device", "check_recording", "check_writable",
           "cloner", "duration", "list_voices", "resolve", "save_result_voice", "save_voice", "timing_line",
           "voice_for", "voice_path", "voice_seconds", "voice_timing_line", "write_numbered", "write_wav"]

TINY_RANDOM_NOTE = "tiny-random: random weights, the audio is noise"
STAGES = ("semantic", "coarse", "fine", "codec")
_GENERATION, _LONG = GenerationConfig(), LongFormOptions()


@dataclass(frozen=True)
class Settings:
    """Everything that shapes one generation besides the text; temperatures of 0 mean greedy."""

    voice: str | Mapping | None = None  # a preset's name or path, or a voice made from a recording
    text_temp: float = _GENERATION.semantic.temperature
    waveform_temp: float = _GENERATION.coarse.temperature
    fine_temp: float = _GENERATION.fine.temperature
    top_k: int | None = None
    top_p: float | None = None
    min_eos_p: float | None = _GENERATION.semantic.min_eos_p
    max_duration: float | None = None
    silence: float = _LONG.silence
    batch_size: int = _LONG.batch_size
    chunk_chars: int = _LONG.max_chars

    @classmethod
    def from_args(cls, args) -> "Settings":
        return cls(voice=args.voice, text_temp=args.text_temp, waveform_temp=args.waveform_temp,
                   fine_temp=args.fine_temp, top_k=args.top_k, top_p=args.top_p, min_eos_p=args.min_eos_p,
                   max_duration=args.max_duration, silence=args.silence, batch_size=args.batch_size,
                   chunk_chars=args.chunk_chars)

    def config(self) -> GenerationConfig:
        """The per-stage settings; raises ValueError for out-of-range values."""
        return config_from_kwargs(semantic_temperature=self.text_temp, coarse_temperature=self.waveform_temp,
                                  fine_temperature=self.fine_temp, top_k=self.top_k, top_p=self.top_p,
                                  semantic_min_eos_p=self.min_eos_p,
                                  semantic_max_new_tokens=max_tokens_for(self.max_duration))

    def options(self) -> LongFormOptions:
        """How long texts are batched and joined; raises ValueError for out-of-range values."""
        return LongFormOptions(max_chars=self.chunk_chars, batch_size=self.batch_size, silence=self.silence)

    def updated(self, **changes) -> "Settings":
        new = replace(self, **changes)
        new.config()  # fail on the command that set a bad value, not on the next generation
        new.options()
        return new


def resolve(model: str, log) -> Path:
    """The model's directory (converted or downloaded as needed); labels tiny-random."""
    path = resolve_model(model, log=log)
    if model == TINY_RANDOM:
        log(TINY_RANDOM_NOTE)
    return path


def cloner(args, model, log) -> VoiceCloner:
    """The networks `--voice-from` needs, for a loaded `BarkModel` or a model directory; with tiny-random Bark,
    HuBERT and the quantizer default to tiny-random too (an offline smoke run)."""
    tiny = args.model == TINY_RANDOM
    hubert = args.hubert or (TINY_RANDOM if tiny else "hubert-base")
    quantizer = args.quantizer or (TINY_RANDOM if tiny else "quantizer-en")
    return VoiceCloner.load(model, hubert, quantizer, log=log, device=args.device)


def voice_seconds(voice: Mapping) -> float:
    """The audio a voice's prompts hold."""
    return voice["fine_prompt"].shape[1] / COARSE_RATE_HZ


def voice_timing_line(timings: dict) -> str:
    parts = [f"{k} {v:.2f} s" for k, v in timings.items()]
    return f"{', '.join(parts)}; total {sum(timings.values()):.2f} s"


def check_device(device: str | None, dtype: str = "float32", engine: str | None = None, weights: str = "fp32"):
    """Select the backend now, so an unavailable one, or a dtype, engine or weight format it cannot run, fails
    before anything is loaded."""
    try:
        target = set_device(device)
    except RuntimeError as e:  # set_device's "asked for but unavailable"
        raise ValueError(str(e)) from None
    choose_engine(engine, target, dtype, weights)


def voice_for(name: str | Mapping | None, model_dir, listing: str):
    """The checked voice preset for a name or .npz path (None: a random voice); an unknown one names `listing` (how
    this interface lists the voices) in its error."""
    if name is None:
        return None
    try:
        return load_voice(name, model_dir)
    except UnknownVoiceError as e:
        raise ValueError(e.message(listing)) from None


class Speaker:
    """A loaded model and processor that turn texts into audio.

    Args:
        path: a model directory from `resolve`.
        device / dtype / offload / engine / weights: as `BarkModel.from_pretrained`.
        listing: how the interface lists voices, for errors (`--list-voices`, `/voices`).
    """

    def __init__(self, path: Path, device: str | None = None, dtype: str = "float32", offload: bool = True,
                 listing: str = "--list-voices", engine: str | None = None, weights: str = "fp32"):
        self.listing = listing
        self.model = BarkModel.from_pretrained(path, device=device, dtype=dtype, offload=offload, engine=engine,
                                               weights=weights)
        self.processor = BarkProcessor.from_pretrained(self.model.path)

    def voice(self, name: str | None):
        """The checked voice preset for a name or .npz path (None: a random voice)."""
        return voice_for(name, self.model.path, self.listing)

    def say(self, text: str, settings: Settings, seed=None, silent: bool = False, on_chunk=None) -> LongResult:
        """Generate `text` of any length in chunks, joined into one waveform.

        Args:
            seed: an int, None, or a numpy Generator to continue.
            on_chunk: called with each `longform.Chunk` as soon as its audio is ready.
        """
        with interruptible():
            return generate_long(self.model, self.processor, text, self.voice(settings.voice), settings.config(),
                                 settings.options(), seed, silent, on_chunk)


# Packages a KeyboardInterrupt must not land in: tqdm holds its write locks across several bytecodes (an exception
# there leaves a lock taken and the next progress bar waits forever), MindSpore's compiler swallows it (and may
# leave a half-built graph), and threading holds locks too.
_UNINTERRUPTIBLE = {"tqdm", "mindspore", "threading"}


def _interrupt(signum, frame):
    while frame is not None:
        if frame.f_globals.get("__name__", "").partition(".")[0] in _UNINTERRUPTIBLE:
            signal.setitimer(signal.ITIMER_REAL, 0.01)  # SIGALRM tries again in 10 ms
            return
        frame = frame.f_back
    raise KeyboardInterrupt


@contextmanager
def interruptible():
    """Let Ctrl-C cancel a generation cleanly, and give Python its Ctrl-C back afterwards.

    MindSpore puts its own SIGINT handler in place when it runs a graph and leaves it there; that handler answers
    Ctrl-C by sending the process SIGTERM, which would kill it. Inside this block SIGINT and SIGTERM raise
    KeyboardInterrupt instead (so a SIGTERM from outside cancels the generation, not the process), deferred until
    control is back in mindbark's or numpy's code; on the way out the previous handlers are put back.
    """
    if threading.current_thread() is not threading.main_thread():  # only the main thread may set handlers
        yield
        return
    kept = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGALRM)}
    for sig in kept:
        signal.signal(sig, _interrupt)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        for sig, handler in kept.items():
            # getsignal is Python's view: MindSpore's C-level swap of SIGINT does not show, so this undoes it
            signal.signal(sig, handler if handler is not None else signal.SIG_DFL)


def duration(result: LongResult) -> float:
    return len(result.audio) / result.sample_rate


def timing_line(timings: dict) -> str:
    parts = [f"{k} {timings[k]:.2f} s" for k in STAGES if k in timings]
    return f"{', '.join(parts)}; total {sum(timings.values()):.2f} s"


def write(path: Path, result: LongResult) -> Path:
    return write_wav(path, result.audio, result.sample_rate)


class PartWriter:
    """Writes each chunk as `NAME.partNNN.wav` beside `target` as soon as it is ready, and says so with `out`."""

    def __init__(self, target: Path, sample_rate: int, out):
        self.target, self.sample_rate, self.out = Path(target), sample_rate, out
        self.start = time.perf_counter()

    def __call__(self, chunk):
        path = self.target.with_name(f"{self.target.stem}.part{chunk.index + 1:03d}.wav")
        write_wav(path, chunk.audio, self.sample_rate)
        self.out(f"chunk {chunk.index + 1}/{chunk.total} after {time.perf_counter() - self.start:.2f} s: "
                 f"wrote {path}")


def save_result_voice(path, result: LongResult) -> Path:
    """Save the generation (its first chunk: the voice the others carry) as a voice preset (`.npz` appended)."""
    voice = result.chunks[0].voice
    return save_voice(path, voice["semantic_prompt"], voice["coarse_prompt"], voice["fine_prompt"])


def voice_path(path) -> Path:
    """Where `save_voice` writes `path` (it appends .npz when missing)."""
    path = Path(path)
    return path if path.suffix == ".npz" else path.with_name(path.name + ".npz")


class Numbered:
    """`out_001.wav`, `out_002.wav`, ... in a directory; never an existing file.

    A name is reserved by creating it exclusively, so two consoles writing to one directory never pick the same.
    """

    def __init__(self, directory, prefix: str = "out", suffix: str = ".wav"):
        self.directory, self.prefix, self.suffix = Path(directory), prefix, suffix
        self.next = 1

    def peek(self) -> Path:
        return self.directory / f"{self.prefix}_{self._free(self.next):03d}{self.suffix}"

    def reserve(self) -> Path:
        for n in itertools.count(self.next):
            path = self.directory / f"{self.prefix}_{n:03d}{self.suffix}"
            try:
                os.close(os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644))
            except FileExistsError:
                continue
            self.next = n + 1
            return path

    def _free(self, start: int) -> int:
        return next(n for n in itertools.count(start)
                    if not (self.directory / f"{self.prefix}_{n:03d}{self.suffix}").exists())


def write_numbered(numbered: Numbered, result: LongResult) -> Path:
    """Write `result` to the next free numbered file (the reservation is removed if the write fails)."""
    path = numbered.reserve()
    try:
        return write(path, result)
    except BaseException:
        if path.exists() and path.stat().st_size == 0:
            path.unlink()
        raise

