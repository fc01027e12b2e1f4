"""The console, driven as a person would: lines piped in, and a terminal (a pty) for Ctrl-C and Ctrl-D.

Each session is one process doing many things (a process pays ~10 s of graph compilation); environment and caches
as in test_cli.py.
"""

import fcntl
import os
import pty
import select
import struct
import subprocess
import sys
import termios
import time
from pathlib import Path

import pytest
import soundfile as sf

from mindbark import load_voice

ROOT = Path(__file__).resolve().parent.parent
INFER = ROOT / "scripts" / "infer.py"
SAMPLES_03 = 21 * 320  # 0.3 s of audio


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    base = tmp_path_factory.getbasetemp()  # shared with test_cli.py: tiny-random is built once
    env = {k: v for k, v in os.environ.items() if k not in ("GLOG_v", "HF_HUB_CACHE", "HUGGINGFACE_HUB_CACHE",
                                                             "MINDBARK_DEVICE", "MS_COMPILER_CACHE_ENABLE")}
    env.update(MINDBARK_HOME=str(base / "cli-mindbark-home"), HF_HOME=str(base / "cli-hf-home"), HF_HUB_OFFLINE="1",
               TERM="dumb")
    return env


def test_console_from_a_pipe(env, tiny_dir, tmp_path):
    wavs = tmp_path / "wavs"
    wavs.mkdir()
    (wavs / "out_002.wav").write_bytes(b"keep")
    story = tmp_path / "story.txt"
    story.write_text("Hello world. " * 20 + "\n\nMy dog is cute!\n", encoding="utf-8")  # 260 + 15 characters
    lines = ["nowhere-model", "bark", str(tiny_dir),  # a bad path, an offline model, then a converted checkpoint
             "/bogus", "/voice nobody", "/voice announcer", "", "/temp -1 0", "/temp x 0", "/seed 3",
             "Hello [laughs]", "/temp 0 0", "Hello again", f"/save {tmp_path / 'voice'}", "/voices", "/settings",
             "/help", "/voice none", "/seed none", "/file missing.txt", f"/file {story}", "exit", "never said"]
    run = subprocess.run([sys.executable, str(INFER), "--console", "--silent", "--device", "cpu", "--max-duration",
                          "0.3", "--out-dir", str(wavs)], input="\n".join(lines) + "\n", capture_output=True,
                         text=True, env=env, cwd=tmp_path, timeout=300)
    assert run.returncode == 0, run.stderr
    errors = run.stderr.splitlines()
    assert [e.split(":")[0] for e in errors] == ["error"] * 8, run.stderr
    # each error says what to do at the console: a folder typed at the prompt, /voices to list the voices
    for fragment, error in zip(["'nowhere-model' is neither a directory", "give its path (./bark) as the model",
                                "unknown command /bogus", "(/voices gives all 271 names)", "text is empty",
                                "temperature must be >= 0", "not a number: 'x'", "No such file or directory"],
                               errors):
        assert fragment in error
    out = run.stdout
    assert f"model [1]> {tiny_dir}\nloading {tiny_dir} ...\n" in out  # each line echoed after its prompt
    assert f"> Hello [laughs]\nwrote {wavs / 'out_001.wav'}: 0.28 s of audio (semantic " in out
    assert f"> Hello again\nwrote {wavs / 'out_003.wav'}: 0.28 s" in out  # out_002.wav was taken
    assert "voice: announcer" in out and "v2/en_speaker_6" in out and "/seed N" in out
    assert "temperatures text 0.0 wave 0.0 fine 0.5" in out
    # 260 characters of one paragraph make two chunks of at most 200, the second paragraph a third
    assert f"> /file {story}\nchunk 1/3 ready\nchunk 2/3 ready\nchunk 3/3 ready\nwrote {wavs / 'out_004.wav'}: " \
           "1.34 s" in out  # 3 chunks of 0.28 s and 2 silences of 0.25 s
    assert out.rstrip().endswith("> exit\nbye") and "never said" not in out
    for name in ("out_001.wav", "out_003.wav"):
        audio, rate = sf.read(wavs / name)
        assert rate == 24_000 and len(audio) == SAMPLES_03
    assert len(sf.read(wavs / "out_004.wav")[0]) == 3 * SAMPLES_03 + 2 * 6000
    assert (wavs / "out_002.wav").read_bytes() == b"keep" and len(list(wavs.iterdir())) == 4
    assert load_voice(str(tmp_path / "voice.npz"))["semantic_prompt"].shape == (14,)


class Terminal:
    """A process on a pseudo-terminal that is its controlling terminal, so ^C and ^D act as typed."""

    def __init__(self, args, env, cwd):
        master, slave = pty.openpty()
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 100, 0, 0))  # progress bars need a width
        self.proc = subprocess.Popen([sys.executable, str(INFER), *map(str, args)], stdin=slave, stdout=slave,
                                     stderr=slave, env=env, cwd=cwd, start_new_session=True,
                                     preexec_fn=lambda: fcntl.ioctl(0, termios.TIOCSCTTY, 0))
        os.close(slave)
        self.master, self.seen, self.pending = master, b"", b""

    def expect(self, token: str, timeout: float = 120) -> str:
        """Read until `token` appears; returns what came up to and including it."""
        token, end = token.encode(), time.monotonic() + timeout
        while token not in self.pending:
            ready, _, _ = select.select([self.master], [], [], max(0.0, end - time.monotonic()))
            chunk = b""
            if ready:
                try:
                    chunk = os.read(self.master, 4096)
                except OSError:  # the process has gone and closed its side
                    pass
            if not chunk:
                raise AssertionError(f"{token!r} never came; the terminal showed:\n{self.text()}")
            self.seen += chunk
            self.pending += chunk
        cut = self.pending.index(token) + len(token)
        got, self.pending = self.pending[:cut], self.pending[cut:]
        return got.decode(errors="replace")

    def type(self, keys: str):
        os.write(self.master, keys.encode())

    def close(self) -> int:
        try:
            return self.proc.wait(timeout=60)
        finally:
            os.close(self.master)

    def text(self) -> str:
        return self.seen.decode(errors="replace")


def test_console_in_a_terminal_cancels_with_ctrl_c(env, tmp_path):
    term = Terminal(["--model", "tiny-random", "--device", "cpu"], env, tmp_path)  # no --text, a terminal: console
    try:
        assert "tiny-random: random weights" in term.expect("> ")
        term.type("A long sentence that would take a while\r")  # up to 15 s of audio
        term.expect("/768")  # its progress bar has moved: MindSpore is running graphs
        term.type("\x03")
        term.expect("cancelled")
        term.expect("> ")
        term.type("/duration 0.3\r")
        term.expect("> ")
        term.type("Hi\r")  # the next generation works (no lock left taken by the interrupted one)
        assert "wrote out_001.wav: 0.28 s of audio" in term.expect("> ")
        time.sleep(0.5)  # as a person would: CPython's readline misses a SIGINT that comes before it waits for keys
        term.type("\x03")  # at the prompt, after MindSpore has swapped in its own SIGINT handler
        term.expect("bye")
        assert term.close() == 0
    finally:
        if term.proc.poll() is None:
            term.proc.kill()
    assert "Traceback" not in term.text() and "error" not in term.text().lower()
    assert [p.name for p in tmp_path.iterdir()] == ["out_001.wav"]


def test_console_in_a_terminal_leaves_with_ctrl_d(env, tmp_path):
    term = Terminal([], env, tmp_path)
    try:
        term.expect("model [1]> ")
        term.type("\x04")
        term.expect("bye")
        assert term.close() == 0
    finally:
        if term.proc.poll() is None:
            term.proc.kill()
    assert "Traceback" not in term.text()
