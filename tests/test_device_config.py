import json
from pathlib import Path

import pytest

from mindbark import set_device
from mindbark.config import BarkConfig

CONFIGS = Path(__file__).resolve().parent.parent / "configs"


def test_cpu_and_env(monkeypatch):
    assert set_device("cpu") == "CPU"
    monkeypatch.setenv("MINDBARK_DEVICE", "CPU")
    assert set_device() == "CPU"


def test_bad_device_names():
    with pytest.raises(ValueError, match="unknown device 'tpu'"):
        set_device("tpu")


@pytest.mark.parametrize("name, layers, width, heads", [("bark-small", 12, 768, 12), ("bark", 24, 1024, 16)])
def test_shipped_configs(name, layers, width, heads):
    cfg = BarkConfig.from_file(CONFIGS / f"{name}.json")
    for sub in (cfg.semantic, cfg.coarse_acoustics, cfg.fine_acoustics):
        assert (sub.n_layer, sub.n_embd, sub.n_head, sub.block_size) == (layers, width, heads, 1024)
    assert (cfg.semantic.input_vocab_size, cfg.semantic.output_vocab_size) == (129_600, 10_048)
    assert cfg.coarse_acoustics.input_vocab_size == 12_096 and cfg.fine_acoustics.input_vocab_size == 1056
    assert not cfg.semantic.bias and cfg.fine_acoustics.bias
    assert cfg.codec.num_quantizers == 32 and cfg.codec.hop_length == 320


def test_not_a_bark_config(tmp_path):
    (tmp_path / "c.json").write_text(json.dumps({"model_type": "gpt2"}))
    with pytest.raises(ValueError, match="missing semantic_config"):
        BarkConfig.from_file(tmp_path / "c.json")
