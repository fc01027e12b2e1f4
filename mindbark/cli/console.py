"""The interactive console: pick a model, then type lines of text and hear them as numbered WAV files.

It reads from a terminal (with line editing) or from a pipe; from a pipe it prints no bare prompts but echoes each
line after its prompt, so a transcript reads like a session. A bad line costs one `error:` line, never the session.
"""

import sys
import textwrap
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path

import numpy as np

from ..errors import one_line
from . import session as S
from .args import DEFAULT_MODEL, is_terminal

LEAVE = {"stop", "exit", "quit", "/stop", "/exit", "/quit"}
MODELS = {"": DEFAULT_MODEL, "1": DEFAULT_MODEL, "2": "bark"}
MENU = "model size: 1) bark-small (default)  2) bark (large)  -- or a name or directory; stop to leave"
HELP = """\
  TEXT                    say TEXT; non-verbal cues like [laughter], [sighs], [music] or ♪ are allowed;
                          a long text is spoken in chunks with one voice, joined into one file
  /file PATH              say the text of a UTF-8 file (any length)
  /voice NAME|PATH.npz    speak with a voice preset (/voice none: a new random voice each time)
  /voice-from AUDIO       speak in the voice of a recording (wav, flac, ogg; its last 14 s); clone only
                          voices you have the right to use
  /voices                 list the voice presets
  /seed N                 reproducible from here on (/seed none: random)
  /temp TEXT WAVE [FINE]  sampling temperatures (0: greedy)
  /duration SECONDS       at most this much audio (/duration none: up to ~15 s)
  /save PATH.npz          save the last generation as a voice preset
  /settings               show the current settings
  /help                   this list
  stop, exit, Ctrl-D      leave; Ctrl-C cancels a generation, and leaves at the prompt"""


class Console:
    """A console session over `stdin`, printing with `out` (results) and `err` (one-line errors).

    Args:
        args: the parsed command line (model, device, dtype, voice, seed, temperatures, out_dir, silent).
    """

    def __init__(self, args, stdin=None, out=None, err=None):
        self.args = args
        self.stdin = sys.stdin if stdin is None else stdin
        self.out = out or (lambda line: print(line, flush=True))
        self.err = err or (lambda line: print(line, file=sys.stderr, flush=True))
        self.interactive = is_terminal(self.stdin)
        self.settings = S.Settings.from_args(args)
        self.rng = None if args.seed is None else np.random.default_rng(args.seed)
        self.numbered = S.Numbered(args.out_dir)
        self.speaker = None
        self.last = None
        self.cloner = None  # --voice-from's networks, loaded at the first /voice-from
        self.cloned_from = None

    def run(self) -> int:
        self.settings.config()
        S.check_writable(self.numbered.peek())
        S.check_device(self.args.device, self.args.dtype, self.args.engine, self.args.weights)
        if self.interactive:
            try:
                import readline  # noqa: F401  (line editing and history for input())
            except ImportError:
                pass
        try:
            self.speaker = self._load(self.args.model) if self.args.model else self._choose_model()
            if self.speaker is not None:
                self._check_voice()
                if self.args.voice_from is not None:
                    try:
                        self._voice_from(self.args.voice_from)
                    except (ValueError, TypeError, OSError) as e:
                        self.err(f"error: {one_line(e)}; speaking with a random voice")
                self.out(f"type a line of text to hear it (/help for commands, stop to leave); "
                         f"files go to {self.numbered.directory}")
                while self._step():
                    pass
        except KeyboardInterrupt:
            self.out("")
        self.out("bye")
        return 0

    def ask(self, prompt: str) -> str | None:
        """One line of input, or None at its end."""
        if self.interactive:
            try:
                return input(prompt)
            except EOFError:
                self.out("")
                return None
        line = self.stdin.readline()
        if not line:
            return None
        line = line.rstrip("\r\n")
        self.out(f"{prompt}{line}")
        return line

    def _choose_model(self):
        self.out(MENU)
        while True:
            answer = self.ask("model [1]> ")
            if answer is None or answer.strip().lower() in LEAVE:
                return None
            try:
                return self._load(MODELS.get(answer.strip(), answer.strip()))
            except (ValueError, TypeError, OSError) as e:
                self.err(f"error: {one_line(e)}")

    def _load(self, name: str):
        path = S.resolve(name, self.out)
        self.out(f"loading {name} ...")
        return S.Speaker(path, self.args.device, self.args.dtype, self.args.offload, listing="/voices",
                         engine=self.args.engine, weights=self.args.weights)

    def _check_voice(self):
        if self.settings.voice is not None:
            try:
                self.speaker.voice(self.settings.voice)
            except (ValueError, TypeError, OSError) as e:
                self.err(f"error: {one_line(e)}; speaking with a random voice")
                self.settings = replace(self.settings, voice=None)

    def _step(self) -> bool:
        """Read and act on one line; False when the session ends."""
        line = self.ask("> ")
        if line is None or line.strip().lower() in LEAVE:
            return False
        line = line.strip()
        try:
            if line.startswith("/"):
                self._command(*line[1:].split(maxsplit=1))
            else:
                self._say(line)
        except (ValueError, TypeError, OSError) as e:
            self.err(f"error: {one_line(e)}")
        return True

    def _say(self, text: str):
        if not text:
            raise ValueError("text is empty: type something to say, /help for commands")
        try:
            result = self.speaker.say(text, self.settings, self.rng, self.args.silent, self._chunk_ready)
            path = S.write_numbered(self.numbered, result)
        except KeyboardInterrupt:
            self.out("cancelled")
            return
        self.last = result
        self.out(f"wrote {path}: {S.duration(result):.2f} s of audio ({S.timing_line(result.timings)})")

    def _chunk_ready(self, chunk):
        if chunk.total > 1:
            self.out(f"chunk {chunk.index + 1}/{chunk.total} ready")

    def _command(self, name: str = "", rest: str = ""):
        words = rest.split()
        if name == "help":
            self.out(HELP)
        elif name == "file":
            if not rest.strip():
                raise ValueError("usage: /file PATH")
            self._say(Path(rest.strip()).expanduser().read_text(encoding="utf-8").strip())
        elif name == "voices":
            names = S.list_voices(self.speaker.model.path)
            self.out(textwrap.fill("  ".join(names), width=100))
        elif name == "voice":
            if not rest:
                self.out(f"voice: {self._voice_name()}")
                return
            voice = None if rest.strip().lower() == "none" else rest.strip()
            if voice is not None:
                self.speaker.voice(voice)
            self.settings = self.settings.updated(voice=voice)
            self.out(f"voice: {self._voice_name()}")
        elif name == "voice-from":
            if not rest.strip():
                raise ValueError("usage: /voice-from AUDIO (a wav, flac or ogg recording)")
            self._voice_from(rest.strip())
        elif name == "seed":
            seed = _one(words, "/seed N or /seed none")
            if seed.lower() == "none":
                self.rng = None
            else:
                n = _int(seed)
                if n < 0:
                    raise ValueError(f"a seed is >= 0, got {n}")
                self.rng = np.random.default_rng(n)
            self.out(f"seed: {seed}")
        elif name == "temp":
            if not 2 <= len(words) <= 3:
                raise ValueError("usage: /temp TEXT WAVE [FINE], e.g. /temp 0.7 0.7 (0: greedy)")
            temps = dict(zip(("text_temp", "waveform_temp", "fine_temp"), map(_float, words)))
            self.settings = self.settings.updated(**temps)
            self.out(self._describe())
        elif name == "duration":
            value = _one(words, "/duration SECONDS or /duration none")
            self.settings = self.settings.updated(max_duration=None if value.lower() == "none" else _float(value))
            self.out(self._describe())
        elif name == "save":
            if self.last is None:
                raise ValueError("nothing generated yet to save")
            self.out(f"saved voice {S.save_result_voice(_one(words, '/save PATH.npz'), self.last)}")
        elif name == "settings":
            self.out(self._describe())
        else:
            raise ValueError(f"unknown command /{name} (/help lists them)")

    def _voice_from(self, audio: str):
        path = str(Path(audio).expanduser())
        S.check_recording(path)  # a bad file fails before the networks load
        if self.cloner is None:
            self.cloner = S.cloner(self.args, self.speaker.model, self.out)
        voice = self.cloner.voice(path, log=self.out)
        self.settings = self.settings.updated(voice=voice)
        self.cloned_from = path
        self.out(f"voice: from {path} ({S.voice_seconds(voice):.1f} s; {S.voice_timing_line(self.cloner.timings)})")

    def _voice_name(self) -> str:
        voice = self.settings.voice
        if voice is None:
            return "none (random)"
        return f"from {self.cloned_from}" if isinstance(voice, Mapping) else voice

    def _describe(self) -> str:
        s = self.settings
        return (f"voice {self._voice_name()}, temperatures text {s.text_temp} wave {s.waveform_temp} fine "
                f"{s.fine_temp}, max duration {s.max_duration or 'none'}, top-k {s.top_k}, top-p {s.top_p}, "
                f"min-eos-p {s.min_eos_p}")


def _one(words: list, usage: str) -> str:
    if len(words) != 1:
        raise ValueError(f"usage: {usage}")
    return words[0]


def _float(word: str) -> float:
    try:
        return float(word)
    except ValueError:
        raise ValueError(f"not a number: {word!r}") from None


def _int(word: str) -> int:
    try:
        return int(word)
    except ValueError:
        raise ValueError(f"not an integer: {word!r}") from None


def run(args, stdin=None) -> int:
    """Run a console session from the parsed command line; returns the exit status."""
    return Console(args, stdin).run()
