"""The user-facing API: drop-in generate(), Suno-style helpers, seeds, stopping, reusable voices, WAV files."""

import numpy as np
import pytest
import soundfile as sf

from mindbark import generate_audio, load_voice, save_voice, semantic_to_waveform, text_to_semantic, write_wav
from mindbark.generation.config import config_from_kwargs
from mindbark.pipeline import generate

SHORT = dict(semantic_max_new_tokens=12)


def test_seed_article_usage(tiny_model, tiny_processor):
    """The MindNLP snippet, with only the import changed."""
    model, processor = tiny_model, tiny_processor
    model.set_train(False)
    inputs = processor("你好,欢迎使用Bark模型!", voice_preset=None)
    audio = model.generate(**inputs, pad_token_id=10, **SHORT)
    assert model.generation_config.sample_rate == 24_000
    assert audio.shape[0] == 1 and audio.shape[1] > 0
    audio, lengths = model.generate(**processor(["Hello", "my dog is cute"], voice_preset="announcer"),
                                    return_output_lengths=True, **SHORT)
    assert audio.shape == (2, max(lengths))


def test_mindnlp_evaluation_pattern(tiny_dir):
    """MindSpore NLP's Bark evaluation as written there (loading, generate's arguments), with only the import
    changed: the networks container underneath must keep it working."""
    from mindbark import BarkModel, BarkProcessor

    processor = BarkProcessor.from_pretrained(tiny_dir)
    model = BarkModel.from_pretrained(tiny_dir)
    model.set_train(False)
    audio = model.generate(**processor("你好,欢迎使用Bark模型!"), pad_token_id=10)
    assert audio.shape[0] == 1 and audio.shape[1] > 0
    assert model.generation_config.sample_rate == 24_000


def test_seeded_sampling_is_reproducible(tiny_model, tiny_processor):
    a = generate_audio("Hello world", tiny_model, tiny_processor, seed=7, max_duration=0.5, silent=True)
    b = generate_audio("Hello world", tiny_model, tiny_processor, seed=7, max_duration=0.5, silent=True)
    assert a.size == 36 * 320  # 0.5 s: 24 semantic tokens -> 72 coarse tokens -> 36 frames of 320 samples
    np.testing.assert_array_equal(a, b)
    s1 = text_to_semantic("Hello world", tiny_model, tiny_processor, seed=1, max_new_tokens=30, silent=True)
    s2 = text_to_semantic("Hello world", tiny_model, tiny_processor, seed=2, max_new_tokens=30, silent=True)
    assert not np.array_equal(s1, s2)


def test_stopping_rules(tiny_model, tiny_processor):
    # with random weights p(EOS) is ~1e-4: a tiny min_eos_p stops at once, none lets max_new_tokens decide
    assert len(text_to_semantic("Hello", tiny_model, tiny_processor, temp=None, min_eos_p=1e-9, silent=True)) == 0
    tokens = text_to_semantic("Hello", tiny_model, tiny_processor, temp=None, min_eos_p=None, max_new_tokens=9,
                              silent=True)
    assert len(tokens) == 9 and tokens.max() < 10_000
    audio = semantic_to_waveform(tokens[:0], tiny_model, silent=True)
    assert audio.shape == (0,)
    inputs = tiny_processor("Hello")
    forced = generate(tiny_model, inputs["input_ids"], inputs["attention_mask"], None, config_from_kwargs(
        do_sample=False, semantic_min_eos_p=1e-9, semantic_min_new_tokens=5, semantic_max_new_tokens=9))
    assert len(forced.semantic[0]) == 5  # EOS forbidden for 5 tokens, then the tiny min_eos_p stops it


def test_saved_generation_is_a_reusable_voice(tiny_model, tiny_processor, tmp_path):
    tokens = text_to_semantic("Hello", tiny_model, tiny_processor, temp=None, min_eos_p=None, max_new_tokens=20,
                              silent=True)
    voice, audio = semantic_to_waveform(tokens, tiny_model, temp=None, fine_temp=None, output_full=True, silent=True)
    assert voice["fine_prompt"].shape == (8, len(audio) // 320)
    path = save_voice(tmp_path / "mine.npz", **{k.split("_")[0]: v for k, v in voice.items()})
    loaded = load_voice(path)
    for key in voice:
        np.testing.assert_array_equal(loaded[key], voice[key])
    greedy = dict(text_temp=None, waveform_temp=None, silent=True)
    plain = text_to_semantic("Hello", tiny_model, tiny_processor, temp=None, min_eos_p=None, max_new_tokens=20)
    voiced = text_to_semantic("Hello", tiny_model, tiny_processor, history_prompt=str(path), temp=None,
                              min_eos_p=None, max_new_tokens=20)
    assert not np.array_equal(plain, voiced)
    assert generate_audio("Hello", tiny_model, tiny_processor, history_prompt=loaded, max_duration=0.3,
                          **greedy).size > 0


def test_batch_with_a_voice_per_item_equals_single_runs(tiny_model, tiny_processor):
    cfg = config_from_kwargs(do_sample=False, semantic_min_eos_p=None, semantic_max_new_tokens=16)
    voices = [load_voice("announcer"), None, load_voice("v2/de_speaker_3")]
    inputs = tiny_processor(["Hello world", "my dog is cute", "laughter"])
    batch = generate(tiny_model, inputs["input_ids"], inputs["attention_mask"], voices, cfg)
    for i, voice in enumerate(voices):
        one = generate(tiny_model, inputs["input_ids"][i:i + 1], inputs["attention_mask"][i:i + 1], voice, cfg)
        np.testing.assert_array_equal(batch.semantic[i], one.semantic[0])
        np.testing.assert_array_equal(batch.fine[i], one.fine[0])
        np.testing.assert_allclose(batch.audio[i], one.audio[0], atol=1e-5)
    assert set(batch.timings) == {"semantic", "coarse", "fine", "codec"}


def test_bad_generation_arguments(tiny_model, tiny_processor):
    inputs = tiny_processor("Hello")
    with pytest.raises(ValueError, match="temperature must be >= 0"):
        tiny_model.generate(**inputs, temperature=-1)
    with pytest.raises(ValueError, match="top_p must be in"):
        tiny_model.generate(**inputs, coarse_top_p=1.5)
    with pytest.raises(TypeError, match="unexpected argument 'semantic_beams'"):
        tiny_model.generate(**inputs, semantic_beams=3)
    with pytest.raises(ValueError, match="unknown voice preset"):
        tiny_model.generate(inputs["input_ids"], history_prompt="xx_speaker_99")


def test_write_wav(tmp_path):
    audio = np.sin(np.linspace(0, 100, 24_000)).astype(np.float32) * 0.5
    path = write_wav(tmp_path / "a.wav", audio, 24_000)
    data, rate = sf.read(path)
    assert rate == 24_000 and len(data) == 24_000 and np.abs(data - audio).max() < 1e-4
    with pytest.raises(OSError, match="does not exist"):
        write_wav(tmp_path / "missing" / "a.wav", audio, 24_000)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.wav"]


def test_unwritable_paths_say_what_the_os_said(tmp_path, monkeypatch):
    """The error is the OS's own reason; a read-only file system is not "permission denied". (Tests run as root in
    CI, where permission bits do not stop a write, so the OS's refusal is simulated at the call that meets it.)"""
    import errno
    import os
    import tempfile

    audio = np.zeros(240, np.float32)

    def refused(*args, **kwargs):
        raise OSError(errno.EROFS, os.strerror(errno.EROFS))

    monkeypatch.setattr(tempfile, "mkstemp", refused)
    with pytest.raises(OSError, match=r"^cannot write .*a\.wav: Read-only file system$"):
        write_wav(tmp_path / "a.wav", audio, 24_000)
    assert list(tmp_path.iterdir()) == []
