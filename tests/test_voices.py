"""Voice presets: the shipped ones, broken ones, the Hugging Face checkpoint layout, and saving."""

import json
import os
from pathlib import Path

import numpy as np
import pytest

import mindbark
from mindbark.voices import PROMPT_KEYS, list_voices, load_voice, save_voice, validate_voice

PRESETS = Path(mindbark.__file__).parent / "presets"


def good_voice(t_semantic=20, seed=0) -> dict:
    rng = np.random.default_rng(seed)
    t_coarse = int(round(t_semantic * 75 / 49.9))
    return {"semantic_prompt": rng.integers(0, 10_000, t_semantic, dtype=np.int32),
            "coarse_prompt": rng.integers(0, 1024, (2, t_coarse), dtype=np.uint16),
            "fine_prompt": rng.integers(0, 1024, (8, t_coarse), dtype=np.int64)}


def test_every_shipped_preset_loads():
    names = list_voices()
    assert names == sorted(names) and len(names) == 271
    assert {"announcer", "en_speaker_1", "speaker_0", "v2/en_speaker_6", "v2/zh_speaker_9"} <= set(names)
    for name in names:
        voice = load_voice(name)
        assert list(voice) == list(PROMPT_KEYS)
        assert all(a.dtype == np.int64 for a in voice.values())
        assert voice["coarse_prompt"].shape[0] == 2 and voice["fine_prompt"].shape[0] == 8
        assert voice["coarse_prompt"].shape[1] == voice["fine_prompt"].shape[1]
        with np.load(PRESETS / f"{name}.npz") as raw:
            for key in PROMPT_KEYS:
                np.testing.assert_array_equal(voice[key], raw[key])


def test_shipped_files_keep_suno_layout():
    assert (PRESETS / "LICENSE").is_file() and (PRESETS / "README.md").is_file()
    assert len(list(PRESETS.glob("*.npz"))) == 141 and len(list(PRESETS.glob("v2/*.npz"))) == 130
    # real presets mix dtypes: announcer is all uint16; the others hold int64 semantic/coarse and int32 fine
    dtypes = {a.dtype for n in ("announcer", "v2/en_speaker_6") for a in np.load(PRESETS / f"{n}.npz").values()}
    assert dtypes == {np.dtype(np.uint16), np.dtype(np.int32), np.dtype(np.int64)}


def test_load_from_path_and_dict(tmp_path):
    voice = good_voice()
    np.savez(tmp_path / "v.npz", **voice)
    for source in (tmp_path / "v.npz", str(tmp_path / "v.npz"), voice, str(tmp_path / "v")):
        if source == str(tmp_path / "v"):
            (tmp_path / "v").write_bytes((tmp_path / "v.npz").read_bytes())  # a preset file without the suffix
        loaded = load_voice(source)
        for key in PROMPT_KEYS:
            np.testing.assert_array_equal(loaded[key], voice[key])
            assert loaded[key].dtype == np.int64
    assert load_voice(voice)["fine_prompt"] is not voice["fine_prompt"]  # a copy, never the caller's array


def _broken(key, value):
    voice = good_voice()
    if value is None:
        del voice[key]
    else:
        voice[key] = value
    return voice


BROKEN = {
    "missing key": (_broken("coarse_prompt", None), r"missing 'coarse_prompt'"),
    "semantic rank": (_broken("semantic_prompt", np.zeros((1, 20), np.int64)), r"semantic_prompt has shape \(1, 20\)"),
    "coarse rank": (_broken("coarse_prompt", np.zeros(30, np.int64)), r"coarse_prompt has shape \(30,\)"),
    "coarse rows": (_broken("coarse_prompt", np.zeros((3, 30), np.int64)), r"coarse_prompt has 3 codebook rows"),
    "fine rows": (_broken("fine_prompt", np.zeros((7, 30), np.int64)), r"fine_prompt has 7 codebook rows"),
    "fine transposed": (_broken("fine_prompt", np.zeros((30, 8), np.int64)), r"fine_prompt has 30 codebook rows"),
    "float dtype": (_broken("fine_prompt", np.zeros((8, 30), np.float32)), r"fine_prompt has dtype float32"),
    "bool dtype": (_broken("semantic_prompt", np.ones(20, bool)), r"semantic_prompt has dtype bool"),
    "semantic too big": (_broken("semantic_prompt", np.full(20, 10_000)),
                         r"semantic_prompt ids must lie in \[0, 10000\), found values in \[10000, 10000\]"),
    "coarse negative": (_broken("coarse_prompt", np.full((2, 30), -1)), r"coarse_prompt ids must lie in \[0, 1024\)"),
    "fine too big": (_broken("fine_prompt", np.full((8, 30), 1024, np.uint16)),
                     r"fine_prompt ids must lie in \[0, 1024\)"),
    "empty semantic": (_broken("semantic_prompt", np.zeros(0, np.int64)), r"semantic_prompt has 0 frames"),
    "empty fine": (_broken("fine_prompt", np.zeros((8, 0), np.int64)), r"fine_prompt has 0 frames"),
    "one coarse frame": (_broken("coarse_prompt", np.zeros((2, 1), np.int64)), r"coarse_prompt has 1 frames"),
}


@pytest.mark.parametrize("case", sorted(BROKEN))
def test_broken_presets_name_the_fault(case, tmp_path):
    voice, message = BROKEN[case]
    with pytest.raises(ValueError, match=message):
        load_voice(voice)
    np.savez(tmp_path / "broken.npz", **voice)
    with pytest.raises(ValueError, match=f"broken.npz'?: {message}"):
        load_voice(tmp_path / "broken.npz")


def test_unreadable_files(tmp_path):
    (tmp_path / "text.npz").write_text("not a zip")
    (tmp_path / "empty.npz").write_bytes(b"")
    np.save(tmp_path / "single.npy", np.arange(3))
    os.replace(tmp_path / "single.npy", tmp_path / "single.npz")
    for name in ("text.npz", "empty.npz", "single.npz"):
        with pytest.raises(ValueError, match=f"{name}' is not a readable .npz"):
            load_voice(tmp_path / name)
    with pytest.raises(ValueError, match="does not exist.*did you mean 'en_speaker_1'"):
        load_voice(str(tmp_path / "en_speaker_1.npz"))


def test_unknown_name_suggests_close_ones():
    with pytest.raises(ValueError, match=r"unknown voice preset 'v2/en_speakr_6'; did you mean 'v2/en_speaker_6'"):
        load_voice("v2/en_speakr_6")
    with pytest.raises(ValueError, match=r"unknown voice preset 'zzz' \(list_voices\(\) gives all 271 names\)"):
        load_voice("zzz")
    with pytest.raises(TypeError, match="not int"):
        load_voice(6)
    with pytest.raises(ValueError, match="not a directory"):
        load_voice("announcer", model_dir="/nonexistent/checkpoint")


def hub_checkpoint(root: Path, voices: dict) -> Path:
    """Write voices as a Hugging Face Bark snapshot does: one .npy per prompt and a json table of paths."""
    table = {"repo_or_path": "suno/bark"}  # a hub id: meaningless for files on disk
    for name, voice in voices.items():
        table[name] = {}
        for key in PROMPT_KEYS:
            rel = f"speaker_embeddings/{name}_{key}.npy"
            (root / rel).parent.mkdir(parents=True, exist_ok=True)
            np.save(root / rel, voice[key])
            table[name][key] = rel
    (root / "speaker_embeddings_path.json").write_text(json.dumps(table))
    return root


def test_hub_layout_resolves_names(tmp_path):
    mine, announcer = good_voice(seed=1), good_voice(seed=2)
    ckpt = hub_checkpoint(tmp_path, {"v2/my_voice": mine, "announcer": announcer})
    names = list_voices(ckpt)
    assert "v2/my_voice" in names and "repo_or_path" not in names and "v2/en_speaker_6" in names
    np.testing.assert_array_equal(load_voice("v2/my_voice", model_dir=ckpt)["coarse_prompt"], mine["coarse_prompt"])
    # the checkpoint's own table wins over a shipped preset of the same name
    np.testing.assert_array_equal(load_voice("announcer", ckpt)["semantic_prompt"], announcer["semantic_prompt"])
    assert load_voice("v2/en_speaker_6", ckpt)["fine_prompt"].shape[0] == 8  # shipped ones still resolve
    with pytest.raises(ValueError, match="unknown voice preset 'v2/my_voic'; did you mean 'v2/my_voice'"):
        load_voice("v2/my_voic", ckpt)


def test_hub_layout_written_by_transformers(tmp_path):
    from transformers import BarkProcessor as HFBarkProcessor, BertTokenizerFast

    voice = good_voice(seed=3)
    src = hub_checkpoint(tmp_path / "src", {"de_speaker_3": voice})
    table = json.loads((src / "speaker_embeddings_path.json").read_text())
    table["repo_or_path"] = str(src)
    tokenizer = BertTokenizerFast(vocab={"[PAD]": 0, "[UNK]": 1}, do_lower_case=False)
    HFBarkProcessor(tokenizer=tokenizer, speaker_embeddings=table).save_pretrained(str(tmp_path / "out"))
    loaded = load_voice("de_speaker_3", model_dir=tmp_path / "out")
    for key in PROMPT_KEYS:
        np.testing.assert_array_equal(loaded[key], voice[key])


def test_hub_layout_errors(tmp_path):
    ckpt = hub_checkpoint(tmp_path, {"a": good_voice(), "b": good_voice()})
    table = json.loads((ckpt / "speaker_embeddings_path.json").read_text())
    table["a"]["fine_prompt"] = "../../etc/passwd.npy"
    del table["b"]["semantic_prompt"]
    table["c"] = dict(table["a"], fine_prompt="speaker_embeddings/gone.npy")
    (ckpt / "speaker_embeddings_path.json").write_text(json.dumps(table))
    with pytest.raises(ValueError, match="'a' of .*fine_prompt path '../../etc/passwd.npy' points outside"):
        load_voice("a", ckpt)
    with pytest.raises(ValueError, match="'b' of .*missing 'semantic_prompt'"):
        load_voice("b", ckpt)
    with pytest.raises(ValueError, match="'c' of .*cannot read fine_prompt"):
        load_voice("c", ckpt)
    (ckpt / "speaker_embeddings_path.json").write_text("{not json")
    with pytest.raises(ValueError, match="unreadable speaker embeddings table"):
        list_voices(ckpt)


def test_save_voice_round_trip(tmp_path):
    voice = load_voice("announcer")
    path = save_voice(tmp_path / "presets" / "mine", voice["semantic_prompt"].astype(np.uint16),
                      voice["coarse_prompt"], voice["fine_prompt"])
    assert path == tmp_path / "presets" / "mine.npz" and os.listdir(path.parent) == ["mine.npz"]
    with np.load(path) as raw:
        assert sorted(raw.files) == sorted(PROMPT_KEYS)
    again = load_voice(str(path))
    for key in PROMPT_KEYS:
        np.testing.assert_array_equal(again[key], voice[key])


def test_save_voice_leaves_nothing_on_failure(tmp_path, monkeypatch):
    voice = good_voice()
    target = save_voice(tmp_path / "v.npz", *voice.values())
    before = target.read_bytes()
    with pytest.raises(ValueError, match="fine_prompt has 7 codebook rows"):
        save_voice(tmp_path / "other.npz", voice["semantic_prompt"], voice["coarse_prompt"], voice["fine_prompt"][:7])

    def fail(*args):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", fail)
    with pytest.raises(OSError, match="disk full"):
        save_voice(target, *good_voice(seed=5).values())
    assert os.listdir(tmp_path) == ["v.npz"] and target.read_bytes() == before


def test_validate_voice_drops_extra_keys():
    voice = dict(good_voice(), extra=np.zeros(3))
    assert list(validate_voice(voice)) == list(PROMPT_KEYS)
