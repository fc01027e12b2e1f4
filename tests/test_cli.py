"""`scripts/infer.py` one-shot: a real process on the tiny random model, and every bad input as one `error:` line.

Processes run offline with their caches in tmp dirs. Generation stays at 0.3 s: random weights never emit
end-of-speech, so --max-duration sets the length. (MindSpore's compile cache, MS_COMPILER_CACHE_ENABLE, would save
the ~10 s of graph compilation per process but is unsafe: it hands back graphs by compile order, so a process that
compiles other shapes gets wrong-shaped audio.)
"""

import io
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from mindbark import load_voice
from mindbark.cli import main

ROOT = Path(__file__).resolve().parent.parent
INFER = ROOT / "scripts" / "infer.py"
SAMPLES_03 = 21 * 320  # 0.3 s: 14 semantic tokens -> 42 coarse tokens -> 21 codec frames of 320 samples


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    """Environment for CLI processes: offline, caches in tmp dirs; GLOG_v unset (the CLI must quieten MindSpore)."""
    base = tmp_path_factory.getbasetemp()  # shared with test_console.py: tiny-random is built once
    env = {k: v for k, v in os.environ.items() if k not in ("GLOG_v", "HF_HUB_CACHE", "HUGGINGFACE_HUB_CACHE",
                                                             "MINDBARK_DEVICE", "MS_COMPILER_CACHE_ENABLE")}
    env.update(MINDBARK_HOME=str(base / "cli-mindbark-home"), HF_HOME=str(base / "cli-hf-home"), HF_HUB_OFFLINE="1")
    return env


def infer(*args, env, cwd, stdin=""):
    return subprocess.run([sys.executable, str(INFER), *map(str, args)], input=stdin, capture_output=True,
                          text=True, env=env, cwd=cwd, timeout=300)


def one_error(stderr: str) -> str:
    lines = [ln for ln in stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), stderr
    return lines[0]


def test_oneshot_tiny_random_without_torch(env, tmp_path):
    blocked = tmp_path / "blocked"
    for name in ("torch", "transformers"):
        (blocked / name).mkdir(parents=True)
        (blocked / name / "__init__.py").write_text(f"raise ImportError('{name} is blocked in this test')\n")
    work = tmp_path / "work"
    work.mkdir()
    (work / "out_001.wav").write_bytes(b"keep")
    run = infer("--model", "tiny-random", "--voice", "announcer", "--seed", 1, "--max-duration", 0.3, "--silent",
                "--device", "cpu", "--save-voice", "mine", env={**env, "PYTHONPATH": str(blocked)}, cwd=work,
                stdin="Hello [laughs]\n")  # piped text, no --text
    assert run.returncode == 0 and run.stderr == "", run.stderr  # not even MindSpore's [WARNING] lines
    lines = run.stdout.splitlines()
    assert lines[0] == "tiny-random: random weights, the audio is noise"
    assert lines[1] == "wrote out_002.wav: 0.28 s of audio at 24000 Hz"  # out_001.wav was taken
    assert lines[2].startswith("time: semantic ") and all(f"{s} " in lines[2] for s in ("coarse", "fine", "codec"))
    assert lines[3] == "saved voice mine.npz"
    audio, rate = sf.read(work / "out_002.wav")
    assert rate == 24_000 and len(audio) == SAMPLES_03 and audio.std() > 0
    assert (work / "out_001.wav").read_bytes() == b"keep"
    assert load_voice(str(work / "mine.npz"))["fine_prompt"].shape == (8, 21)


def installed(*args, env, cwd):
    """The installed `mindbark` command (what pip's console-script wrapper runs: `from mindbark.cli import main`)."""
    script = shutil.which("mindbark", path=str(Path(sys.executable).parent))
    command = [script] if script else [sys.executable, "-c", "import sys; from mindbark.cli import main; sys.exit(main())"]
    return subprocess.run([*command, *map(str, args)], capture_output=True, text=True, env=env, cwd=cwd, timeout=300)


def test_installed_command_is_quiet(env, tmp_path):
    """`import mindbark.cli` must not import MindSpore before main() quietens it (it printed ~165 lines a run)."""
    help_ = installed("--help", env=env, cwd=tmp_path)
    assert help_.returncode == 0 and help_.stderr == "" and "--voice" in help_.stdout
    assert one_error(installed("--top-p", "2", env=env, cwd=tmp_path).stderr).startswith("error: argument --top-p")
    run = installed("--model", "tiny-random", "--text", "Hello", "--max-duration", 0.3, "--silent", "--out",
                    tmp_path / "a.wav", env=env, cwd=tmp_path)
    assert run.returncode == 0 and run.stderr == "", run.stderr
    assert sf.info(tmp_path / "a.wav").frames == SAMPLES_03
    bad_voice = installed("--model", "tiny-random", "--text", "Hello", "--voice", "nobody", env=env, cwd=tmp_path)
    assert bad_voice.returncode == 1 and one_error(bad_voice.stderr).endswith("(--list-voices gives all 271 names)")


def test_long_text_file_streamed_in_chunks(env, tmp_path):
    story = tmp_path / "story.txt"
    story.write_text("Hello world. My dog is cute!\n\n[laughs] Hello again, my dog.\n", encoding="utf-8")
    run = infer("--model", "tiny-random", "--text-file", story, "--out", "long.wav", "--stream", "--chunk-chars", 16,
                "--silence", 0.1, "--max-duration", 0.3, "--seed", 2, "--silent", "--device", "cpu", env=env,
                cwd=tmp_path)
    assert run.returncode == 0 and run.stderr == "", run.stderr
    lines = run.stdout.splitlines()
    # chunks: "Hello world." "My dog is cute!" "[laughs] Hello" "again," "my dog."
    assert [ln.split(" after ")[0] for ln in lines[1:6]] == [f"chunk {i}/5" for i in range(1, 6)]
    assert all(ln.endswith(f"wrote long.part00{i}.wav") for i, ln in enumerate(lines[1:6], 1))
    assert lines[6] == "wrote long.wav: 1.80 s of audio in 5 chunks at 24000 Hz"
    joined, _ = sf.read(tmp_path / "long.wav")
    parts = [sf.read(tmp_path / f"long.part00{i}.wav")[0] for i in range(1, 6)]
    assert len(joined) == sum(len(p) for p in parts) + 4 * 2400 and all(len(p) == SAMPLES_03 for p in parts)
    np.testing.assert_allclose(joined[:SAMPLES_03], parts[0], atol=1e-4)
    np.testing.assert_array_equal(joined[SAMPLES_03:SAMPLES_03 + 2400], 0)


def test_errors_from_a_real_process(env, tmp_path):
    bad = infer("--text", "hi", "--top-p", 2, env=env, cwd=tmp_path)
    assert bad.returncode == 2 and one_error(bad.stderr) == "error: argument --top-p: must be in (0, 1], got 2 " \
                                                          "(see --help)"
    offline = infer("--text", "hi", "--model", "bark", "--out", "a.wav", env=env, cwd=tmp_path)
    assert offline.returncode == 1 and "hf download suno/bark --local-dir bark" in one_error(
        offline.stderr)
    assert list(tmp_path.iterdir()) == []


@pytest.fixture
def offline(tmp_path, monkeypatch):
    for var in ("HF_HUB_CACHE", "HUGGINGFACE_HUB_CACHE"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("MINDBARK_DEVICE", "cpu")  # this process's other tests run on the CPU backend
    monkeypatch.setenv("MINDBARK_HOME", str(tmp_path / "mindbark"))
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.chdir(tmp_path)
    return tmp_path


BAD = [  # (arguments, standard input, exit status, what the message says)
    (["--text", "  "], "", 1, "text is empty (--text)"),
    ([], " \n", 1, "text is empty (standard input)"),
    (["--text", "-"], "", 1, "text is empty (standard input)"),
    (["--text-file", "missing.txt"], "", 1, "No such file or directory"),
    (["--text", "hi", "--text-file", "x.txt"], "", 2, "give --text or --text-file, not both"),
    (["--text", "hi", "--text-temp", "-1"], "", 2, "argument --text-temp: must be >= 0 (0 means greedy), got -1"),
    (["--text", "hi", "--fine-temp=-0.5"], "", 2, "argument --fine-temp: must be >= 0"),
    (["--text", "hi", "--waveform-temp", "hot"], "", 2, "argument --waveform-temp: not a number: 'hot'"),
    (["--text", "hi", "--top-p", "0"], "", 2, "argument --top-p: must be in (0, 1], got 0"),
    (["--text", "hi", "--top-p", "1.5"], "", 2, "argument --top-p: must be in (0, 1], got 1.5"),
    (["--text", "hi", "--top-k", "0"], "", 2, "argument --top-k: must be >= 1"),
    (["--text", "hi", "--max-duration", "0"], "", 2, "argument --max-duration: must be > 0"),
    (["--text", "hi", "--device", "tpu"], "", 2, "argument --device: 'tpu' is not one of cpu, gpu, ascend"),
    (["--text", "hi", "--dtype", "int8"], "", 2, "argument --dtype: 'int8' is not one of float32, float16, bfloat16"),
    (["--text", "hi", "--dtype", "bfloat16"], "", 1, "bfloat16 needs a GPU or Ascend: MindSpore's CPU MatMul has no "
                                                    "bfloat16 kernel"),
    (["--text", "hi", "--engine", "host"], "", 2, "argument --engine: 'host' is not one of cpu, device"),
    (["--text", "hi", "--weights", "int4"], "", 2, "argument --weights: 'int4' is not one of fp32, bf16, int8"),
    (["--text", "hi", "--weights", "int8", "--engine", "device"], "", 1, "int8 weights run on the CPU engine only"),
    (["--text", "hi", "--weights", "bf16", "--dtype", "float16"], "", 1, "bf16 weights compute in float32"),
    (["--text", "hi", "--out", "nodir/a.wav"], "", 1, "cannot write nodir/a.wav: directory nodir does not exist"),
    (["--text", "hi", "--out", "."], "", 1, "cannot write .: it is a directory"),
    (["--text", "hi", "--out-dir", "nodir"], "", 1, "directory nodir does not exist"),
    (["--text", "hi", "--save-voice", "nodir/v"], "", 1, "cannot write nodir/v.npz"),
    (["--text", "hi", "--model", "nowhere"], "", 1, "model 'nowhere' is neither a directory nor one of"),
    (["--text", "hi", "--model", "bark-small"], "", 1, "HF_HUB_OFFLINE is set; on a connected machine run "
                                                      "`pip install huggingface_hub` and `hf download suno/bark-small"),
    (["--text", "hi", "--model", "TINY", "--voice", "nobody"], "", 1, "unknown voice preset 'nobody'"),
    (["--text", "hi", "--model", "TINY", "--voice", "gone.npz"], "", 1, "voice preset file 'gone.npz' does not exist"),
    (["--console", "--text", "hi"], "", 2, "--console reads its texts interactively"),
    (["--text", "hi", "--silence", "-1"], "", 2, "argument --silence: must be >= 0, got -1"),
    (["--text", "hi", "--batch-size", "0"], "", 2, "argument --batch-size: must be >= 1, got 0"),
    (["--text", "hi", "--chunk-chars", "x"], "", 2, "argument --chunk-chars: not an integer: 'x'"),
    (["--text", "hi", "--bogus"], "", 2, "unrecognized arguments: --bogus"),
]


@pytest.mark.parametrize("argv, stdin, status, message", BAD, ids=[" ".join(b[0]) or "stdin" for b in BAD])
def test_bad_input_fails_before_loading(argv, stdin, status, message, offline, tiny_dir, capsys, monkeypatch):
    def loaded(*args, **kwargs):
        raise AssertionError("the model was loaded")

    monkeypatch.setattr("mindbark.cli.session.Speaker", loaded)
    monkeypatch.setattr(sys, "stdin", io.StringIO(stdin))
    assert main([str(tiny_dir) if a == "TINY" else a for a in argv]) == status
    out, err = capsys.readouterr()
    assert message in one_error(err) and out == ""
    assert sorted(p.name for p in offline.iterdir()) == []


def test_bad_model_directories(offline, tiny_dir, capsys):
    corrupt = shutil.copytree(tiny_dir, offline / "corrupt")
    (corrupt / "semantic.safetensors").write_bytes(b"not safetensors")
    (offline / "empty").mkdir()
    for model, message in [(corrupt, "semantic.safetensors: corrupt or unreadable weights"),
                           (offline / "empty", "no config.json")]:
        assert main(["--text", "hi", "--model", str(model), "--device", "cpu", "--out", "a.wav"]) == 1
        assert message in one_error(capsys.readouterr().err)
    assert not (offline / "a.wav").exists()


def test_device_engine(offline, tiny_dir, capsys):
    assert main(["--text", "hi", "--model", str(tiny_dir), "--device", "cpu", "--engine", "device", "--max-duration",
                 "0.2", "--seed", "1", "--silent", "--out", "a.wav"]) == 0
    assert capsys.readouterr().out.startswith("wrote a.wav: ")
    assert sf.info(offline / "a.wav").frames > 0


def test_packed_weights(offline, tiny_dir, capsys):
    assert main(["--text", "hi", "--model", str(tiny_dir), "--device", "cpu", "--weights", "bf16", "--max-duration",
                 "0.2", "--seed", "1", "--silent", "--out", "a.wav"]) == 0
    assert capsys.readouterr().out.startswith("wrote a.wav: ")
    # the tiny model's 16-wide rows hold no whole block of 32 int8 weights
    assert main(["--text", "hi", "--model", str(tiny_dir), "--device", "cpu", "--weights", "int8", "--out",
                 "b.wav"]) == 1
    assert "int8 weights need rows of a multiple of 32 values, not 16" in one_error(capsys.readouterr().err)
    assert not (offline / "b.wav").exists()


def test_unavailable_device(offline, tiny_dir, capsys):
    from mindbark.device import _available

    if _available("GPU"):
        pytest.skip("a GPU is available here")
    assert main(["--text", "hi", "--model", str(tiny_dir), "--device", "gpu"]) == 1
    assert "device 'gpu' was asked for but MindSpore reports it unavailable" in one_error(capsys.readouterr().err)


def test_list_voices(offline, capsys):
    assert main(["--list-voices"]) == 0
    names = capsys.readouterr().out.split()
    assert {"announcer", "v2/en_speaker_6", "v2/zh_speaker_9"} <= set(names)


@pytest.mark.parametrize("flag, offload", [([], True), (["--no-offload"], False)])
def test_offload_flag_reaches_the_model(flag, offload, offline, tiny_dir, capsys, monkeypatch):
    seen = {}

    def from_pretrained(path, **kwargs):
        seen.update(kwargs)
        raise ValueError("stopped after the load call")

    monkeypatch.setattr("mindbark.cli.session.BarkModel.from_pretrained", from_pretrained)
    assert main(["--text", "hi", "--model", str(tiny_dir), "--device", "cpu", *flag]) == 1
    assert "stopped after the load call" in one_error(capsys.readouterr().err)
    assert seen["offload"] is offload
