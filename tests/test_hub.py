"""Model resolution: names to mindbark's cache, the Hugging Face cache or a download; and the tiny random model.

Nothing here touches the network: HF_HUB_OFFLINE is set, caches live in tmp dirs, and `huggingface_hub` is faked.
"""

import importlib.metadata
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import types
from pathlib import Path

import numpy as np
import pytest

from mindbark import hub
from mindbark.random_model import build_tiny_random, random_weights, tiny_random_dir, vocabulary

HOW_TO = "hf download suno/bark-small --local-dir bark-small"


@pytest.fixture
def caches(tmp_path, monkeypatch):
    """Empty mindbark and Hugging Face caches, offline."""
    for var in ("HF_HUB_CACHE", "HUGGINGFACE_HUB_CACHE", "XDG_CACHE_HOME"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("MINDBARK_HOME", str(tmp_path / "mindbark"))
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    return tmp_path


def test_the_offline_message_names_a_command_that_exists():
    """`huggingface_hub` 2.x dropped `huggingface-cli`: the command the message names must be one the installed
    package provides, taking the arguments given."""
    command = re.search(r"`(hf download [^`]+)`", hub.how_to_get("suno/bark-small")).group(1).split()
    provided = {ep.name for ep in importlib.metadata.distribution("huggingface_hub").entry_points
                if ep.group == "console_scripts"}
    assert command[0] in provided
    script = shutil.which(command[0], path=str(Path(sys.executable).parent)) or shutil.which(command[0])
    usage = subprocess.run([script, *command[1:2], "--help"], capture_output=True, text=True, timeout=120,
                           env={**os.environ, "HF_HUB_OFFLINE": "1"})
    assert usage.returncode == 0 and all(option in usage.stdout for option in command[2:] if option.startswith("--"))


def _snapshot(src, cache, repo="suno/bark-small", commit="0123abcd", main=True):
    """Lay `src` out as the hub cache does: models--org--name/snapshots/<commit>/, refs/main naming it."""
    root = cache / f"models--{repo.replace('/', '--')}"
    snap = shutil.copytree(src, root / "snapshots" / commit)
    if main:
        (root / "refs").mkdir(parents=True, exist_ok=True)
        (root / "refs" / "main").write_text(commit)
    return snap


def test_paths_and_unknown_names(caches, tiny_dir):
    assert hub.resolve_model(str(tiny_dir)) == tiny_dir
    with pytest.raises(FileNotFoundError, match="neither a directory nor one of bark-small, bark, tiny-random"):
        hub.resolve_model("bark-medium")
    (caches / "file").write_text("x")
    with pytest.raises(FileNotFoundError, match="is a file"):
        hub.resolve_model(str(caches / "file"))


def test_offline_with_nothing_on_disk_is_one_message(caches):
    with pytest.raises(FileNotFoundError) as info:
        hub.resolve_model("bark-small")
    message = str(info.value)
    assert "\n" not in message and "HF_HUB_OFFLINE" in message and HOW_TO in message
    assert "give its path (./bark-small) as the model" in message  # as the CLI and the console both take it
    with pytest.raises(FileNotFoundError, match="suno/bark --local-dir bark"):
        hub.resolve_model("suno/bark")
    assert not (caches / "mindbark" / "bark-small").exists()


def test_hf_cache_snapshot_is_converted_once(caches, tiny_hf_dir, monkeypatch):
    _snapshot(tiny_hf_dir, caches / "hf" / "hub")
    news = []
    path = hub.resolve_model("bark-small", log=news.append)
    assert path == caches / "mindbark" / "bark-small"
    assert json.loads((path / "mindbark.json").read_text())["source_format"] == "transformers"
    assert (path / "vocab.txt").is_file() and len(news) == 1 and "converting suno/bark-small" in news[0]

    def no_conversion(*args, **kwargs):
        raise AssertionError("converted twice")

    monkeypatch.setattr(hub, "convert_checkpoint", no_conversion)
    assert hub.resolve_model("bark-small") == path


def test_hf_hub_cache_variable_and_incomplete_snapshots(caches, tiny_hf_dir, monkeypatch):
    custom = caches / "elsewhere"
    monkeypatch.setenv("HF_HUB_CACHE", str(custom))
    assert hub.hf_hub_cache() == custom
    # a snapshot that stopped after config.json is passed over, also when refs/main names it
    partial = custom / "models--suno--bark" / "snapshots" / "partial"
    partial.mkdir(parents=True)
    shutil.copy(tiny_hf_dir / "config.json", partial)
    (custom / "models--suno--bark" / "refs").mkdir()
    (custom / "models--suno--bark" / "refs" / "main").write_text("partial")
    assert hub.find_snapshot("suno/bark") is None
    whole = _snapshot(tiny_hf_dir, custom, repo="suno/bark", commit="older", main=False)
    assert hub.find_snapshot("suno/bark") == whole


def _fake_hub(monkeypatch, files=None, fail=None, src=None, calls=None):
    module = types.ModuleType("huggingface_hub")

    def list_repo_files(repo_id):
        if fail:
            raise fail
        return files

    def snapshot_download(repo_id, allow_patterns=None):
        calls.append((repo_id, allow_patterns))
        return str(shutil.copytree(src, hub.hf_hub_cache() / "downloaded"))

    module.list_repo_files, module.snapshot_download = list_repo_files, snapshot_download
    monkeypatch.setitem(sys.modules, "huggingface_hub", module)
    monkeypatch.setattr(hub, "_check_resolvable", lambda endpoint: None)  # no DNS lookups in tests


def test_download_failures_are_one_message(caches, monkeypatch):
    monkeypatch.delenv("HF_HUB_OFFLINE")
    monkeypatch.setitem(sys.modules, "huggingface_hub", None)  # not installed
    with pytest.raises(FileNotFoundError, match=r"huggingface_hub is not installed \(pip install 'mindbark\[hub\]'\)"):
        hub.resolve_model("bark-small")
    _fake_hub(monkeypatch, fail=ConnectionError("Name or service not known\nmore detail"))
    with pytest.raises(FileNotFoundError) as info:
        hub.resolve_model("bark-small")
    assert str(info.value).startswith("cannot download suno/bark-small (Name or service not known); on a connected")
    assert "\n" not in str(info.value) and HOW_TO in str(info.value)


def test_no_network_fails_fast(caches, monkeypatch):
    def no_dns(host, port):
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    for var in ("HF_HUB_OFFLINE", "HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setattr(socket, "getaddrinfo", no_dns)
    monkeypatch.setitem(sys.modules, "huggingface_hub", types.ModuleType("huggingface_hub"))  # never reached
    with pytest.raises(FileNotFoundError, match=r"cannot download suno/bark-small \(cannot resolve huggingface.co: "
                                                r"Name or service not known\); on a connected machine"):
        hub.resolve_model("bark-small")


def test_download_fetches_config_tokenizer_and_safetensors_only(caches, tiny_hf_dir, monkeypatch):
    monkeypatch.delenv("HF_HUB_OFFLINE")
    calls, news = [], []
    files = ["config.json", "vocab.txt", "model.safetensors", "pytorch_model.bin", "text_2.pt",
             "speaker_embeddings/en_speaker_0_semantic_prompt.npy", "speaker_embeddings_path.json"]
    _fake_hub(monkeypatch, files=files, src=tiny_hf_dir, calls=calls)
    path = hub.resolve_model("bark-small", log=news.append)
    assert (path / "mindbark.json").is_file() and [n.split()[0] for n in news] == ["downloading", "converting"]
    (repo, patterns), = calls
    assert repo == "suno/bark-small" and "model.safetensors" in patterns and "vocab.txt" in patterns
    assert not {"pytorch_model.bin", "text_2.pt", "speaker_embeddings_path.json"} & set(patterns)


def test_tiny_random_is_built_once_and_loads(caches):
    path = tiny_random_dir()
    assert path == caches / "mindbark" / "tiny-random"
    assert {p.name for p in path.iterdir()} == {"semantic.safetensors", "coarse_acoustics.safetensors",
                                                 "fine_acoustics.safetensors", "codec_model.safetensors",
                                                 "codec_encoder.safetensors", "config.json", "vocab.txt",
                                                 "mindbark.json"}
    umask = os.umask(0)
    os.umask(umask)
    assert (path / "semantic.safetensors").stat().st_mode & 0o777 == 0o666 & ~umask  # a cache others may read
    stamp = (path / "semantic.safetensors").stat().st_mtime_ns
    assert tiny_random_dir() == path and (path / "semantic.safetensors").stat().st_mtime_ns == stamp
    assert hub.resolve_model("tiny-random") == path

    from mindbark import BarkModel, BarkProcessor

    model = BarkModel.from_pretrained(path, device="cpu")  # strict: every name and shape matches
    assert model.generation_config.sample_rate == 24_000
    ids = BarkProcessor.from_pretrained(path).tokenizer.encode("Hello [laughs], Bark 42!", add_special_tokens=False)
    assert "[UNK]" not in ids.tokens and ids.tokens[:3] == ["Hello", "[", "laughs"]


def test_tiny_random_weights_are_seeded_and_tame(tmp_path):
    shapes = {"h.0.ln_1.weight": (16,), "h.0.attn.c_attn.weight": (48, 16), "wte.weight": (100, 16),
              "h.0.mlp.c_fc.bias": (64,)}
    a, b = random_weights(shapes, np.random.default_rng(1)), random_weights(shapes, np.random.default_rng(1))
    for name in shapes:
        np.testing.assert_array_equal(a[name], b[name])
        assert a[name].dtype == np.float32 and a[name].shape == shapes[name]
    assert abs(a["h.0.ln_1.weight"].mean() - 1) < 0.1 and abs(a["h.0.mlp.c_fc.bias"]).max() < 0.5
    x = np.random.default_rng(0).standard_normal((1000, 16))
    assert 0.5 < (x @ a["h.0.attn.c_attn.weight"].T).std() < 2  # activations stay O(1)
    vocab = vocabulary()
    assert vocab[:5] == ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] and len(vocab) == len(set(vocab))
    assert {"A", "z", "7", "[", "]", ".", "##s"} <= set(vocab)
    with pytest.raises(FileNotFoundError, match="tiny-random needs"):
        build_tiny_random(tmp_path / "x", config=tmp_path / "missing.json")
    assert not (tmp_path / "x").exists()
