"""Conversion: strict name/shape checks, clear errors, nothing half-written, deterministic output."""

import hashlib
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.numpy import load_file, save_file

from mindbark import BarkModel, ConversionError
from mindbark.convert import convert_checkpoint

ROOT = Path(__file__).resolve().parent.parent


def _rewrite(src: Path, edit):
    path = src / "model.safetensors"
    tensors = load_file(str(path))
    edit(tensors)
    save_file(tensors, str(path))


def _digests(d: Path) -> dict:
    return {f.name: hashlib.sha256(f.read_bytes()).hexdigest() for f in sorted(d.iterdir())}


def _no_leftovers(parent: Path):
    assert [p.name for p in parent.iterdir() if p.name.startswith(".")] == []


def test_output_layout(tiny_dir):
    names = {f.name for f in tiny_dir.iterdir()}
    assert {"config.json", "generation_config.json", "mindbark.json", "semantic.safetensors",
            "coarse_acoustics.safetensors", "fine_acoustics.safetensors", "codec_model.safetensors"} <= names
    codec = load_file(str(tiny_dir / "codec_model.safetensors"))
    assert not any(k.startswith("encoder") or "parametrizations" in k for k in codec)
    # EnCodec's encoder, for voices made from recordings, in a file generation never loads
    encoder = load_file(str(tiny_dir / "codec_encoder.safetensors"))
    assert encoder and all(k.startswith("encoder.layers.") and "parametrizations" not in k for k in encoder)


def test_converting_twice_gives_identical_files(tiny_hf_dir, tmp_path):
    a = convert_checkpoint(tiny_hf_dir, tmp_path / "a")
    b = convert_checkpoint(tiny_hf_dir, tmp_path / "b")
    assert _digests(a) == _digests(b)


@pytest.mark.parametrize("edit, message", [
    (lambda t: t.pop("semantic.layers.1.mlp.in_proj.weight"), "missing tensor h.1.mlp.c_fc.weight"),
    (lambda t: t.update({"semantic.layers.0.attn.rotary": np.zeros(3, np.float32)}),
     "unknown tensor semantic.layers.0.attn.rotary"),
    (lambda t: t.update({"coarse_acoustics.lm_head.weight": np.zeros((7, 16), np.float32)}),
     r"tensor lm_head.weight has shape \(7, 16\)"),
])
def test_bad_tensors_are_named_and_nothing_is_written(hf_copy, tmp_path, edit, message):
    _rewrite(hf_copy, edit)
    with pytest.raises(ConversionError, match=message):
        convert_checkpoint(hf_copy, tmp_path / "out")
    assert not (tmp_path / "out").exists()
    _no_leftovers(tmp_path)


def test_truncated_file(hf_copy, tmp_path):
    path = hf_copy / "model.safetensors"
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(ConversionError, match="corrupt or truncated"):
        convert_checkpoint(hf_copy, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_not_a_checkpoint(tmp_path):
    with pytest.raises(ConversionError, match="no config.json"):
        convert_checkpoint(tmp_path, tmp_path / "out")


def test_existing_destination_kept_unless_overwrite(tiny_hf_dir, tmp_path):
    dst = tmp_path / "out"
    dst.mkdir()
    (dst / "keep").write_text("x")
    with pytest.raises(ConversionError, match="already exists"):
        convert_checkpoint(tiny_hf_dir, dst)
    assert (dst / "keep").exists()
    convert_checkpoint(tiny_hf_dir, dst, overwrite=True)
    assert not (dst / "keep").exists() and (dst / "mindbark.json").exists()
    _no_leftovers(tmp_path)


def test_torch_bin_with_old_weight_norm_names(tiny_hf, tiny_dir, tmp_path):
    """The hub's pytorch_model.bin predates torch's parametrized weight norm: weight_g / weight_v."""
    src = tmp_path / "bin"
    src.mkdir()
    (src / "config.json").write_text((tiny_dir / "config.json").read_text())
    state = {k.replace("parametrizations.weight.original0", "weight_g")
              .replace("parametrizations.weight.original1", "weight_v"): v
             for k, v in tiny_hf.state_dict().items()}
    torch.save(state, src / "pytorch_model.bin")
    out = convert_checkpoint(src, tmp_path / "out")
    for name in ("semantic", "fine_acoustics", "codec_model"):
        a = load_file(str(out / f"{name}.safetensors"))
        b = load_file(str(tiny_dir / f"{name}.safetensors"))
        assert a.keys() == b.keys()
        for k in a:
            np.testing.assert_allclose(a[k], b[k], atol=1e-6, err_msg=k)


def test_loading_checks_the_converted_files(tiny_dir, tmp_path):
    import shutil

    broken = shutil.copytree(tiny_dir, tmp_path / "m")
    tensors = load_file(str(broken / "fine_acoustics.safetensors"))
    tensors.pop("ln_f.bias")
    save_file(tensors, str(broken / "fine_acoustics.safetensors"))
    with pytest.raises(ConversionError, match="missing tensor ln_f.bias"):
        BarkModel.from_pretrained(broken, device="cpu")
    meta = json.loads((broken / "mindbark.json").read_text())
    meta["format_version"] = 99
    (broken / "mindbark.json").write_text(json.dumps(meta))
    with pytest.raises(ConversionError, match="convert the checkpoint again"):
        BarkModel.from_pretrained(broken, device="cpu")


def test_from_pretrained_converts_hf_directories_once(tiny_hf_dir, tmp_path, monkeypatch):
    monkeypatch.setenv("MINDBARK_HOME", str(tmp_path))
    model = BarkModel.from_pretrained(tiny_hf_dir, device="cpu")
    assert model.generation_config.sample_rate == 24_000
    converted = list((tmp_path / "converted").iterdir())
    assert len(converted) == 1
    stamp = (converted[0] / "mindbark.json").stat().st_mtime_ns
    BarkModel.from_pretrained(tiny_hf_dir, device="cpu")
    assert (converted[0] / "mindbark.json").stat().st_mtime_ns == stamp


def test_cli(tiny_hf_dir, tmp_path):
    script = str(ROOT / "scripts" / "convert_checkpoint.py")
    ok = subprocess.run([sys.executable, script, str(tiny_hf_dir), str(tmp_path / "ok")],
                        capture_output=True, text=True, cwd=ROOT)
    assert ok.returncode == 0, ok.stderr
    bad = subprocess.run([sys.executable, script, str(tmp_path / "nowhere"), str(tmp_path / "bad")],
                         capture_output=True, text=True, cwd=ROOT)
    assert bad.returncode == 1
    lines = [ln for ln in bad.stderr.splitlines() if ln.strip() and "WARNING" not in ln]
    assert len(lines) == 1 and lines[0].startswith("error:") and "no config.json" in lines[0]
    assert not (tmp_path / "bad").exists()
