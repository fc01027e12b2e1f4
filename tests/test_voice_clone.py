"""Voices from recordings: EnCodec's encoder, HuBERT and the semantic quantizer against their PyTorch references
(random weights at the real shapes), the whole voice against the torch reference pipeline, a generation with it,
conversion, and every bad input as one clear error.

The reference pipeline is the voice-cloning forks': `transformers`' EncodecModel.encode at 6 kbps, `transformers`'
HubertModel's hidden_states[9], the quantizer's torch module (its published architecture, `reference.TorchQuantizer`).
It shares mindbark's audio front end (reading, resampling with soxr) and its cut of the prompts (`prompt_lengths`):
what is compared is the networks' tokens.
"""

import json
import time
import zipfile

import numpy as np
import pytest
import soundfile as sf
import torch
from mindspore import Tensor

from mindbark import BarkModel, BarkProcessor, ConversionError, generate_audio, load_voice
from mindbark.audio import resample
from mindbark.convert import convert_checkpoint
from mindbark.convert.voice import convert_hubert, convert_quantizer
from mindbark.random_model import vocabulary
from mindbark.reference import CONFIGS, TorchQuantizer, hf_bark, hf_encodec, hf_hubert, save_hf_bark
from mindbark.voice_clone import KEEP_SECONDS, VoiceCloner, check_recording, prompt_lengths

# HuBERT's layer-9 states are post-LayerNorm, of unit scale (|h| up to ~4): fp32 sums over 768-3072 terms through
# nine layers differ by ~1e-6 relative between the two frameworks' kernels (measured 5e-6 at most), so 1e-4 leaves
# room for other CPUs' summation orders while a wrong op (a missing mask, a shifted tap) moves them by O(0.1).
HUBERT_ATOL = 1e-4
HUBERT_LAYER = 9


@pytest.fixture(scope="module")
def refs():
    torch.set_num_threads(2)
    return {"codec": hf_encodec(0), "hubert": hf_hubert(0), "quantizer": TorchQuantizer(seed=0)}


@pytest.fixture(scope="module")
def dirs(refs, tmp_path_factory):
    """Converted directories: a Bark with tiny GPTs and the real EnCodec, HuBERT base and the quantizer."""
    root = tmp_path_factory.mktemp("voice")
    config = json.loads((CONFIGS / "tiny.json").read_text())
    config["codec_config"] = json.loads((CONFIGS / "bark-small.json").read_text())["codec_config"]
    (root / "bark.json").write_text(json.dumps(config))
    bark = hf_bark(str(root / "bark.json"))
    bark.codec_model.load_state_dict(refs["codec"].state_dict())
    src = save_hf_bark(bark, root / "bark-hf")
    (src / "vocab.txt").write_text("\n".join(vocabulary()) + "\n", encoding="utf-8")
    refs["hubert"].save_pretrained(root / "hubert-hf")
    torch.save(refs["quantizer"].state_dict(), root / "quantizer.pth")
    return {"bark": convert_checkpoint(src, root / "bark"),
            "hubert": convert_hubert(root / "hubert-hf", root / "hubert"),
            "quantizer": convert_quantizer(root / "quantizer.pth", root / "quantizer")}


@pytest.fixture(scope="module")
def cloner(dirs):
    return VoiceCloner.load(dirs["bark"], dirs["hubert"], dirs["quantizer"], device="cpu", graph_cache=False)


def speech(seconds: float, rate: int, seed: int = 0, channels: int = 1) -> np.ndarray:
    """A voice-like test signal: a gliding harmonic tone with noise, (samples, channels)."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * rate)) / rate
    f0 = 120 + 40 * np.sin(2 * np.pi * 0.7 * t)
    tone = sum(np.sin(2 * np.pi * np.cumsum(k * f0) / rate) / k for k in range(1, 6))
    x = 0.2 * tone * (0.6 + 0.4 * np.sin(2 * np.pi * 3 * t)) + 0.02 * rng.standard_normal(len(t))
    return np.stack([x * (1 - 0.3 * c) for c in range(channels)], axis=1).astype(np.float32)


@pytest.mark.parametrize("samples", [960, 75 * 320 + 101, 260 * 320])  # one piece; a ragged start; two chunks
def test_codec_encoder_codes_equal_transformers(refs, cloner, samples):
    audio = 0.3 * np.random.default_rng(samples).standard_normal((1, samples)).astype(np.float32)
    codes = cloner.encoder.encode(audio, cloner.codec.quantizer, 8)
    whole = audio[:, samples % 320:]  # whole frames: the first samples % 320 are not encoded
    with torch.no_grad():
        ref = refs["codec"].encode(torch.tensor(whole)[:, None], bandwidth=6.0).audio_codes[0].numpy()
    assert codes.shape == ref.shape == (1, 8, samples // 320)
    np.testing.assert_array_equal(codes, ref)  # ids: exactly


@pytest.mark.parametrize("seconds", [1.0, 4.4, 20.0])  # buckets of 250, 250 and 1000 frames
def test_hubert_hidden_states(refs, cloner, seconds):
    audio = 0.1 * np.random.default_rng(int(seconds * 10)).standard_normal(int(seconds * 16_000))
    audio = audio.astype(np.float32)
    n = cloner.hubert.frames(len(audio))
    out = cloner.hubert.hidden_states(audio).asnumpy()[0, :n]
    with torch.no_grad():
        ref = refs["hubert"](torch.tensor(audio)[None], output_hidden_states=True).hidden_states[HUBERT_LAYER]
    ref = ref[0].numpy()
    assert out.shape == ref.shape == (n, 768) and np.abs(ref).max() > 1  # unit-scale states, not near zero
    np.testing.assert_allclose(out, ref, atol=HUBERT_ATOL, rtol=0)


@pytest.mark.parametrize("version", [0, 1])
def test_quantizer_ids(refs, cloner, tmp_path, version):
    if version == 0:
        ref, quantizer = refs["quantizer"], cloner.quantizer
    else:
        ref = TorchQuantizer(version=1, seed=3)
        torch.save(ref.state_dict(), tmp_path / "v1.pth")
        from mindbark.checkpoint import load_weights
        from mindbark.models.quantizer import SemanticQuantizer
        from mindbark.voice_clone import quantizer_config

        converted = convert_quantizer(tmp_path / "v1.pth", tmp_path / "v1")
        quantizer = SemanticQuantizer(quantizer_config(converted))
        load_weights(quantizer, converted / "quantizer.safetensors")
        assert quantizer.intermediate is not None
    features = np.random.default_rng(version).standard_normal((300, 768)).astype(np.float32)
    ids = quantizer.ids(Tensor(features[None]), 300)
    np.testing.assert_array_equal(ids, ref.get_token(torch.tensor(features)).numpy())


def reference_voice(refs, path) -> dict:
    """The torch reference pipeline on the part of the recording mindbark reads."""
    rec, _ = check_recording(path)
    wav24 = resample(rec.samples, rec.sample_rate, 24_000)
    wav16 = resample(wav24, 24_000, 16_000)
    with torch.no_grad():
        codes = refs["codec"].encode(torch.tensor(wav24[len(wav24) % 320:])[None, None], bandwidth=6.0)
        codes = codes.audio_codes[0, 0].numpy()
        features = refs["hubert"](torch.tensor(wav16)[None], output_hidden_states=True).hidden_states[HUBERT_LAYER]
    semantic = refs["quantizer"].get_token(features[0]).numpy()
    n_semantic, n_coarse = prompt_lengths(codes.shape[1], len(semantic))
    fine = codes[:, -n_coarse:]
    return {"semantic_prompt": semantic[-n_semantic:], "coarse_prompt": fine[:2], "fine_prompt": fine}


def test_voice_equals_the_torch_pipeline_and_generates(refs, dirs, cloner, tmp_path):
    path = tmp_path / "speech.flac"  # stereo at 44.1 kHz; under 5 s, so HuBERT's graph of the tests above serves
    sf.write(path, speech(4.9, 44_100, channels=2), 44_100)
    notes = []
    voice = cloner.voice(path, log=notes.append)
    assert notes == []
    ref = reference_voice(refs, path)
    assert voice["fine_prompt"].shape == (8, 367) and voice["semantic_prompt"].shape == (244,)
    for key in ref:
        np.testing.assert_array_equal(voice[key], ref[key], err_msg=key)  # token for token

    model = BarkModel.from_pretrained(dirs["bark"], device="cpu", graph_cache=False)
    audio = generate_audio("Hello", model, BarkProcessor.from_pretrained(dirs["bark"]), history_prompt=voice,
                           text_temp=0, waveform_temp=0, max_duration=0.2, silent=True)
    assert audio.ndim == 1 and len(audio) > 0 and np.isfinite(audio).all()


def test_prompt_lengths_follow_barks_rates():
    assert prompt_lengths(1125, 749) == (698, 1050)  # 15 s read, 14 s kept
    assert prompt_lengths(300, 199) == (199, 300)  # a 4 s recording: all of it
    assert prompt_lengths(300, 250) == (199, 300)  # never more semantic ids than 49.9 per 75 frames


# --- bad input: one clear line, before anything loads -----------------------------------------------------------

def _files(tmp_path) -> dict:
    sf.write(tmp_path / "empty.wav", np.zeros((0, 1), np.float32), 16_000)
    sf.write(tmp_path / "silence.wav", np.zeros(32_000, np.float32), 16_000)
    sf.write(tmp_path / "short.wav", speech(0.5, 16_000), 16_000)
    (tmp_path / "garbage.wav").write_bytes(b"RIFF\x00\x00not a wav at all" * 10)
    (tmp_path / "notes.txt").write_text("hello")
    (tmp_path / "folder").mkdir()
    return {"empty.wav": "holds no audio", "silence.wav": "is silent", "short.wav": "is 0.50 s long; a voice needs "
            "at least 1 s", "garbage.wav": "cannot read", "notes.txt": "cannot read", "folder": "is a directory",
            "missing.wav": "does not exist"}


def test_bad_recordings(tmp_path):
    for name, message in _files(tmp_path).items():
        with pytest.raises(ValueError, match=message):
            check_recording(tmp_path / name)
    with pytest.raises(ValueError, match="needs its sample_rate"):
        check_recording(np.ones(16_000))
    with pytest.raises(ValueError, match="sample_rate applies to arrays"):
        check_recording(tmp_path / "short.wav", 16_000)


@pytest.mark.parametrize("suffix, subtype", [(".ogg", "VORBIS"), (".flac", "PCM_24"), (".wav", "PCM_16")])
def test_formats(tmp_path, suffix, subtype):
    path = tmp_path / f"speech{suffix}"
    sf.write(path, speech(1.5, 48_000, channels=2), 48_000, subtype=subtype)
    rec, _ = check_recording(path)
    assert rec.sample_rate == 48_000 and rec.samples.ndim == 1 and abs(rec.seconds - 1.5) < 0.01


def test_arrays_channels_and_pcm():
    stereo = speech(2, 22_050, channels=2)
    rec, _ = check_recording(stereo, 22_050)
    np.testing.assert_allclose(rec.samples, stereo.mean(axis=1), atol=1e-7)
    pcm = (stereo[:, 0] * 32767).astype(np.int16)
    np.testing.assert_allclose(check_recording(pcm, 22_050)[0].samples, stereo[:, 0], atol=1e-4)


def test_a_30_minute_file_reads_only_its_end(tmp_path):
    path = tmp_path / "long.wav"
    with sf.SoundFile(path, "w", 16_000, 1, "PCM_16") as f:
        for i in range(30):  # a minute at a time: the test's memory stays small too
            f.write(speech(60, 16_000, seed=i))
    start = time.perf_counter()
    rec, _ = check_recording(path)
    assert time.perf_counter() - start < 2.0
    assert rec.seconds == 1800 and len(rec.samples) == (KEEP_SECONDS + 1) * 16_000
    with sf.SoundFile(path) as f:
        f.seek(f.frames - len(rec.samples))
        np.testing.assert_array_equal(rec.samples, f.read(dtype="float32"))


@pytest.fixture
def offline(tmp_path, monkeypatch):
    for var in ("HF_HUB_CACHE", "HUGGINGFACE_HUB_CACHE"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("MINDBARK_DEVICE", "cpu")
    monkeypatch.setenv("MINDBARK_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_cli_bad_recordings_are_one_line_and_write_nothing(offline, capsys, monkeypatch):
    from mindbark.cli import main

    def loaded(*args, **kwargs):
        raise AssertionError("a network was loaded")

    monkeypatch.setattr("mindbark.cli.session.VoiceCloner.load", loaded)
    for name, message in _files(offline).items():
        before = sorted(p.name for p in offline.iterdir())
        assert main(["--model", "tiny-random", "--voice-from", name, "--save-voice", "me.npz"]) == 1
        out, err = capsys.readouterr()
        lines = err.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0], err
        assert sorted(p.name for p in offline.iterdir()) == before  # no voice, no temporary file
    assert main(["--voice", "x", "--voice-from", "y.wav", "--text", "hi"]) == 2
    assert "give --voice or --voice-from, not both" in capsys.readouterr().err


def test_cli_and_console_with_tiny_random(offline, capsys):
    from mindbark.cli import main
    from mindbark.cli.args import build_parser, parse_args
    from mindbark.cli.console import Console

    assert "right to use" in build_parser().format_help()
    sf.write(offline / "long.wav", speech(17, 16_000), 16_000)  # the voice keeps its last 14 s
    assert main(["--model", "tiny-random", "--voice-from", "long.wav", "--save-voice", "me", "--silent"]) == 0
    out = capsys.readouterr().out
    assert "note: long.wav is 17.0 s long; the voice keeps its last 14 s" in out
    assert "saved voice me.npz (from long.wav: 14.0 s" in out
    voice = load_voice("me.npz")
    assert voice["fine_prompt"].shape == (8, 1050) and voice["semantic_prompt"].shape == (698,)
    sf.write(offline / "me.wav", speech(2.5, 16_000), 16_000)

    lines = ["/voice-from missing.wav", "/voice-from me.wav", "/settings", "Hello", "stop"]
    outs, errs = [], []
    args = parse_args(["--model", "tiny-random", "--max-duration", "0.2", "--silent", "--device", "cpu", "--seed",
                       "1"])
    import io

    assert Console(args, io.StringIO("\n".join(lines) + "\n"), outs.append, errs.append).run() == 0
    assert len(errs) == 1 and "missing.wav does not exist" in errs[0]
    assert any(line.startswith("voice: from me.wav (2.5 s;") for line in outs), outs
    assert any(line.startswith("voice from me.wav, temperatures") for line in outs), outs
    assert (offline / "out_001.wav").is_file()


# --- conversion -------------------------------------------------------------------------------------------------

def test_hubert_conversion_is_strict(refs, dirs, tmp_path):
    src = tmp_path / "src"
    refs["hubert"].save_pretrained(src)
    from safetensors.numpy import load_file, save_file

    tensors = load_file(str(src / "model.safetensors"))
    tensors["encoder.layers.3.attention.rotary"] = np.zeros(2, np.float32)
    save_file(tensors, str(src / "model.safetensors"))
    with pytest.raises(ConversionError, match="unknown tensor encoder.layers.3.attention.rotary"):
        convert_hubert(src, tmp_path / "out")
    assert not (tmp_path / "out").exists()
    config = json.loads((src / "config.json").read_text())
    (src / "config.json").write_text(json.dumps({**config, "do_stable_layer_norm": True}))
    with pytest.raises(ConversionError, match="unsupported HuBERT do_stable_layer_norm"):
        convert_hubert(src, tmp_path / "out")


def test_quantizer_conversion_reads_info_and_refuses_others(refs, tmp_path):
    path = tmp_path / "q.pth"
    torch.save(refs["quantizer"].state_dict(), path)
    with zipfile.ZipFile(path, "a") as z:  # as CustomTokenizer.save notes its sizes
        z.writestr("q/.info", json.dumps({"input_size": 768, "hidden_size": 1024, "output_size": 10000,
                                          "version": 1}))
    with pytest.raises(ConversionError, match="its .info says"):
        convert_quantizer(path, tmp_path / "out")
    torch.save({"weight": torch.zeros(3)}, path)
    with pytest.raises(ConversionError, match="not a HuBERT quantizer"):
        convert_quantizer(path, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_names_resolve_offline_with_one_line(offline):
    from mindbark import hub

    with pytest.raises(FileNotFoundError, match=r"hf download facebook/hubert-base-ls960 --local-dir "
                                                r"hubert-base-ls960`, copy that folder here and give its path "
                                                r"\(./hubert-base-ls960\) as --hubert"):
        hub.resolve_hubert("hubert-base")
    with pytest.raises(FileNotFoundError, match="hf download GitMylo/bark-voice-cloning "
                                                "quantifier_hubert_base_ls960_14.pth"):
        hub.resolve_quantizer("quantizer-en")
    assert hub.resolve_hubert("tiny-random") == hub.resolve_hubert("tiny-random")  # built once


def test_names_convert_from_the_hf_cache_once(offline, refs, dirs):
    import shutil

    from mindbark import hub

    root = offline / "hf" / "hub" / "models--facebook--hubert-base-ls960"
    snap = root / "snapshots" / "abc"
    refs["hubert"].save_pretrained(snap)
    (root / "refs").mkdir()
    (root / "refs" / "main").write_text("abc")
    q = offline / "hf" / "hub" / "models--GitMylo--bark-voice-cloning" / "snapshots" / "def"
    q.mkdir(parents=True)
    shutil.copy(dirs["quantizer"].parent / "quantizer.pth", q / "quantifier_hubert_base_ls960_14.pth")
    news = []
    first = hub.resolve_hubert("hubert-base", log=news.append), hub.resolve_quantizer("quantizer-en", log=news.append)
    assert first == (hub.resolve_hubert("hubert-base"), hub.resolve_quantizer("quantizer-en"))
    assert len(news) == 2 and all(line.startswith("converting") for line in news)


def test_a_bark_converted_without_the_encoder_is_converted_again(offline, dirs):
    import shutil

    from mindbark import hub

    old = shutil.copytree(dirs["bark"], offline / "home" / "bark-small")  # as an earlier mindbark left it
    (old / "codec_encoder.safetensors").unlink()
    assert hub.resolve_model("bark-small") == old  # generation does not need it
    src = offline / "hf" / "hub" / "models--suno--bark-small" / "snapshots" / "abc"
    shutil.copytree(dirs["bark"].parent / "bark-hf", src)
    news = []
    assert hub.resolve_model("bark-small", log=news.append, with_encoder=True) == old
    assert (old / "codec_encoder.safetensors").is_file() and news[0].endswith("converting suno/bark-small again")
