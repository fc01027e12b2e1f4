"""Conversion of Suno's original checkpoints (bark's .pt files, EnCodec's .th), made by those packages' own classes.

Needs Suno's `bark` and facebookresearch's `encodec` (`pip install --no-deps bark encodec einops funcy`: their
torchaudio dependency does not load beside a CPU-only torch and then breaks `transformers`); skipped without them.
"""

import argparse
import importlib.machinery
import importlib.util
import json
import shutil
import sys
import types
from pathlib import Path

import mindspore as ms
import numpy as np
import pytest
import torch
from mindspore import Tensor
from safetensors.numpy import load_file, save_file

from mindbark import BarkModel, ConversionError
from mindbark.convert import convert_checkpoint
from mindbark.convert.suno import CODEC_FILE, ENCODEC_24KHZ

pytestmark = pytest.mark.filterwarnings("ignore:.*weight_norm.*:FutureWarning")  # encodec's, from torch
ROOT = Path(__file__).resolve().parent.parent
ATOL = 1e-4
SUBMODELS = ("semantic", "coarse_acoustics", "fine_acoustics", "codec_model")

# Bark's real vocabularies and context at width 16
TINY = {"n_layer": 2, "n_head": 2, "n_embd": 16, "block_size": 1024, "dropout": 0.0}
ARGS = {
    "text": {**TINY, "input_vocab_size": 129_600, "output_vocab_size": 10_048, "bias": False},
    "coarse": {**TINY, "input_vocab_size": 12_096, "output_vocab_size": 12_096, "bias": False},
    "fine": {**TINY, "input_vocab_size": 1056, "output_vocab_size": 1056, "bias": True, "n_codes_total": 8,
             "n_codes_given": 1},
}


def _import_references():
    """Suno's `bark.model` / `bark.model_fine` and `encodec`, or skip.

    encodec (and bark, through it) imports torchaudio for file I/O only; PyPI's torchaudio does not load beside a
    CPU-only torch of another release, so a stand-in module serves that import and is removed afterwards.
    """
    if importlib.util.find_spec("bark") is None or importlib.util.find_spec("encodec") is None:
        pytest.skip("needs Suno's bark and facebookresearch's encodec (pip install --no-deps bark encodec einops "
                    "funcy)")
    from transformers import BertTokenizer  # noqa: F401  (bark imports it; load it before the stand-in)

    stand_in = None
    try:
        import torchaudio  # noqa: F401
    except (ImportError, OSError):
        for name in [m for m in sys.modules if m == "torchaudio" or m.startswith("torchaudio.")]:
            del sys.modules[name]
        stand_in = types.ModuleType("torchaudio")
        stand_in.__spec__ = importlib.machinery.ModuleSpec("torchaudio", None)
        sys.modules["torchaudio"] = stand_in
    try:
        import encodec
        from bark import model, model_fine
    finally:
        if stand_in is not None and sys.modules.get("torchaudio") is stand_in:
            del sys.modules["torchaudio"]
    return types.SimpleNamespace(model=model, model_fine=model_fine, encodec=encodec)


def _randomize(module, seed):
    """Weights that keep activations O(1), so parity at 1e-4 is a real check (encodec's codebooks are buffers)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in module.named_parameters():
            if name.endswith("weight_g"):
                p.copy_(0.5 + torch.rand(p.shape, generator=g))
            elif ".ln_" in name and name.endswith("weight"):
                p.copy_(1 + 0.1 * torch.randn(p.shape, generator=g))
            elif p.ndim == 1:
                p.copy_(0.1 * torch.randn(p.shape, generator=g))
            else:
                p.copy_(torch.randn(p.shape, generator=g) / np.prod(p.shape[1:]) ** 0.5)
        for name, b in module.named_buffers():
            if name.endswith("_codebook.embed"):
                b.copy_(torch.randn(b.shape, generator=g))
    return module.eval()


def _save_suno(model, args: dict, path: Path):
    """As Suno's training saved them: compiled-model names and a numpy scalar among the metadata."""
    state = {f"_orig_mod.{k}": v for k, v in model.state_dict().items()}
    torch.save({"model": state, "model_args": dict(args), "iter_num": 1000, "best_val_loss": np.float64(2.5),
                "config": {"learning_rate": 3e-4}}, path)


@pytest.fixture(scope="module")
def suno(tmp_path_factory):
    """A small-size Suno cache directory with EnCodec 24 kHz beside it, and the torch modules that made it."""
    refs = _import_references()
    root = tmp_path_factory.mktemp("suno") / "bark_v0"
    root.mkdir()
    torch.manual_seed(0)
    m = refs.model
    modules = {
        "semantic": _randomize(m.GPT(m.GPTConfig(**ARGS["text"])), 1),
        "coarse_acoustics": _randomize(m.GPT(m.GPTConfig(**ARGS["coarse"])), 2),
        "fine_acoustics": _randomize(refs.model_fine.FineGPT(refs.model_fine.FineGPTConfig(**ARGS["fine"])), 3),
        "codec_model": _randomize(refs.encodec.EncodecModel.encodec_model_24khz(pretrained=False), 4),
    }
    for stem, name in (("text", "semantic"), ("coarse", "coarse_acoustics"), ("fine", "fine_acoustics")):
        _save_suno(modules[name], ARGS[stem], root / f"{stem}.pt")
    torch.save(modules["codec_model"].state_dict(), root / CODEC_FILE)
    return root, modules


@pytest.fixture(scope="module")
def converted(suno, tmp_path_factory):
    return convert_checkpoint(suno[0], tmp_path_factory.mktemp("mb-suno") / "bark")


@pytest.fixture(scope="module")
def model(converted):
    return BarkModel.from_pretrained(converted, device="cpu")


# Suno's and EnCodec's names to those of `transformers`' BarkModel (which the strict transformers-format path checks)
_TO_HF = (("transformer.wtes.", "input_embeds_layers."), ("transformer.wte.", "input_embeds_layer."),
          ("transformer.wpe.", "position_embeds_layer."), ("transformer.ln_f.", "layernorm_final."),
          ("transformer.h.", "layers."), (".ln_1.", ".layernorm_1."), (".ln_2.", ".layernorm_2."),
          (".attn.c_attn.", ".attn.att_proj."), (".attn.c_proj.", ".attn.out_proj."), (".mlp.c_fc.", ".mlp.in_proj."),
          (".mlp.c_proj.", ".mlp.out_proj."), (".model.", ".layers."), (".conv.conv.", ".conv."),
          (".convtr.convtr.", ".conv."), ("quantizer.vq.", "quantizer."), ("._codebook.", ".codebook."),
          (".weight_g", ".parametrizations.weight.original0"), (".weight_v", ".parametrizations.weight.original1"))


def _hf_name(name: str) -> str:
    for old, new in _TO_HF:
        name = name.replace(old, new)
    return name


@pytest.fixture(scope="module")
def converted_from_hf(suno, converted, tmp_path_factory):
    """The same weights written in the `transformers` format (names and config.json), then converted."""
    src = tmp_path_factory.mktemp("hf-suno") / "bark"
    src.mkdir()
    state = {f"{name}.{_hf_name(k)}": v.numpy().copy() for name, module in suno[1].items()
             for k, v in module.state_dict().items()}
    save_file(state, str(src / "model.safetensors"))
    shutil.copyfile(converted / "config.json", src / "config.json")
    return convert_checkpoint(src, tmp_path_factory.mktemp("mb-hf") / "bark")


def test_same_as_transformers_conversion(converted, converted_from_hf):
    for name in (*SUBMODELS, "codec_encoder"):  # the encoder too, whose parity the transformers path shows
        a = load_file(str(converted / f"{name}.safetensors"))
        b = load_file(str(converted_from_hf / f"{name}.safetensors"))
        assert a.keys() == b.keys(), name
        for k in a:
            np.testing.assert_array_equal(a[k], b[k], err_msg=f"{name}: {k}")


def test_layout_and_marker(converted):
    names = {f.name for f in converted.iterdir()}
    assert names == {"config.json", "mindbark.json", "codec_encoder.safetensors",
                     *(f"{n}.safetensors" for n in SUBMODELS)}
    meta = json.loads((converted / "mindbark.json").read_text())
    assert meta["source_format"] == "suno" and meta["format_version"] == 1
    assert meta["source_files"] == sorted(["text.pt", "coarse.pt", "fine.pt", CODEC_FILE])
    config = json.loads((converted / "config.json").read_text())
    bark_small = json.loads((ROOT / "configs" / "bark-small.json").read_text())
    assert config["codec_config"] == ENCODEC_24KHZ == bark_small["codec_config"]
    for name in SUBMODELS[:3]:  # bark-small's layout, at the tiny width
        key = f"{name}_config"
        assert config[key] == {**bark_small[key], "num_layers": 2, "num_heads": 2, "hidden_size": 16}, name
    from transformers import BarkConfig as HFBarkConfig

    hf = HFBarkConfig(**config)  # the layout transformers reads
    assert (hf.semantic_config.input_vocab_size, hf.fine_acoustics_config.n_codes_given) == (129_600, 1)


# The Cells run eagerly below: the converted weights are under test here, and the compiled paths (`forward`,
# `decode`) have their own parity tests; compiling them again would triple this file's time.


@pytest.mark.parametrize("name", ["semantic", "coarse_acoustics"])
def test_causal_logits_match_suno(suno, model, name):
    ref_model, gpt = suno[1][name], getattr(model, name)
    ids = np.random.RandomState(7).randint(0, gpt.config.input_vocab_size, (2, 11))
    with torch.no_grad():
        ref = ref_model(torch.tensor(ids))[0].numpy()  # Suno returns the last position's logits
    gpt.setup_cache(2)
    keys = Tensor(np.ones((2, gpt.config.block_size), bool))
    no_past = Tensor(np.zeros((2, 1), bool))  # a prompt from position 0: one masked slot, as `forward` gives it
    out, _ = gpt.prompt_chunk(gpt.embed(Tensor(ids, ms.int32)), Tensor(0, ms.int64), keys, gpt.cache.prefix(1), no_past)
    np.testing.assert_allclose(out.asnumpy()[:, -1:], ref, atol=ATOL, rtol=0)


def test_fine_logits_match_suno(suno, model):
    codes = np.random.RandomState(8).randint(0, 1025, (2, 16, 8))
    for idx in range(1, 8):
        with torch.no_grad():
            ref = suno[1]["fine_acoustics"](idx, torch.tensor(codes)).numpy()
        out = model.fine_acoustics(Tensor(codes, ms.int32), Tensor(idx, ms.int64)).asnumpy()
        np.testing.assert_allclose(out, ref, atol=ATOL, rtol=0, err_msg=f"codebook {idx}")


def test_codec_decode_matches_encodec(suno, model):
    codec = suno[1]["codec_model"]
    codes = np.random.RandomState(9).randint(0, 1024, (1, 8, 6))
    with torch.no_grad():
        ref = codec.decoder(codec.quantizer.decode(torch.tensor(codes).transpose(0, 1)))[:, 0].numpy()
    states = model.codec_model.decoder.initial_states(len(codes), model.codec_model.dtype)
    out = model.codec_model(Tensor(codes, ms.int32), states, Tensor(True))[0].asnumpy()
    assert out.shape == ref.shape == (1, 6 * 320)
    assert ref.std() > 0.05
    np.testing.assert_allclose(out, ref, atol=ATOL, rtol=0)


def _edit_pt(path: Path, edit):
    ckpt = torch.load(path, weights_only=False)
    edit(ckpt)
    torch.save(ckpt, path)


def _no_leftovers(parent: Path):
    assert [p.name for p in parent.iterdir() if p.name.startswith(".")] == []


@pytest.fixture
def suno_copy(suno, tmp_path):
    """Scratch copy of the Suno checkpoints (without the codec, passed by path) that a test may damage."""
    src = tmp_path / "src"
    src.mkdir()
    for stem in ("text", "coarse", "fine"):
        shutil.copyfile(suno[0] / f"{stem}.pt", src / f"{stem}.pt")
    return src, suno[0] / CODEC_FILE


def test_older_checkpoint_forms(suno_copy, converted, tmp_path):
    """No `_orig_mod.` prefix, one shared `vocab_size`, and the causal-mask buffer of torch without SDPA."""
    src, codec = suno_copy

    def edit(ckpt):
        ckpt["model"] = {k.removeprefix("_orig_mod."): v for k, v in ckpt["model"].items()}
        ckpt["model"]["transformer.h.0.attn.bias"] = torch.ones(1, 1, 1024, 1024).tril()
        args = ckpt["model_args"]
        args["vocab_size"] = args.pop("input_vocab_size")
        del args["output_vocab_size"]

    _edit_pt(src / "coarse.pt", edit)
    out = convert_checkpoint(src, tmp_path / "out", codec=codec)
    for name in ("coarse_acoustics", "codec_model"):
        a, b = load_file(str(out / f"{name}.safetensors")), load_file(str(converted / f"{name}.safetensors"))
        assert a.keys() == b.keys() and all(np.array_equal(a[k], b[k]) for k in a)


def _pop_tensor(name):
    return lambda c: c["model"].pop(f"_orig_mod.{name}")


def _set_tensor(name, value):
    return lambda c: c["model"].__setitem__(f"_orig_mod.{name}", value)


@pytest.mark.parametrize("stem, edit, message", [
    ("text", _pop_tensor("transformer.h.1.mlp.c_fc.weight"), r"text.pt \(semantic\): missing tensor h.1.mlp.c_fc"),
    ("text", _set_tensor("transformer.h.0.attn.rotary", torch.zeros(3)),
     "text.pt: unknown tensor transformer.h.0.attn.rotary"),
    ("coarse", lambda c: c["model_args"].update(n_embd=32),
     r"coarse.pt \(coarse_acoustics\): tensor wte.weight has shape \(12096, 16\), the model expects "
     r"\(12096, 32\)"),
    ("coarse", lambda c: c["model_args"].update(input_vocab_size=11_000),
     "coarse.pt: input_vocab_size 11000 is too small"),
    ("fine", lambda c: c["model_args"].update(n_codes_total=40), "fine.pt: n_codes_total 40 is more than the 32"),
    ("fine", _set_tensor("lm_heads.2.weight", torch.zeros(1056, 16)), "lm_heads.2.weight is not tied to "
                                                                      "transformer.wtes.3.weight"),
    ("fine", lambda c: c["model_args"].update(rotary=True), "fine.pt: unknown model_args rotary"),
    ("fine", lambda c: c.pop("model_args"), "fine.pt: not a Suno Bark checkpoint"),
    ("fine", lambda c: c.update(config=argparse.Namespace(lr=1)), "fine.pt: holds a pickled argparse.Namespace"),
])
def test_bad_checkpoints_are_named_and_nothing_is_written(suno_copy, tmp_path, stem, edit, message):
    src, codec = suno_copy
    _edit_pt(src / f"{stem}.pt", edit)
    with pytest.raises(ConversionError, match=message):
        convert_checkpoint(src, tmp_path / "out", codec=codec)
    assert not (tmp_path / "out").exists()
    _no_leftovers(tmp_path)


def test_missing_and_ambiguous_files(suno_copy, tmp_path, monkeypatch):
    src, codec = suno_copy
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))  # no cached EnCodec there either
    with pytest.raises(ConversionError, match=f"no {CODEC_FILE}"):
        convert_checkpoint(src, tmp_path / "out")
    (src / "coarse.pt").unlink()
    with pytest.raises(ConversionError, match=r"coarse.pt is missing \(small Bark needs text.pt, coarse.pt, fine.pt"):
        convert_checkpoint(src, tmp_path / "out", codec=codec)
    shutil.copyfile(src / "text.pt", src / "text_2.pt")
    with pytest.raises(ConversionError, match="both large"):
        convert_checkpoint(src, tmp_path / "out", codec=codec)
    with pytest.raises(ConversionError, match="coarse_2.pt is missing"):
        convert_checkpoint(src, tmp_path / "out", codec=codec, size="large")
    assert not (tmp_path / "out").exists()


def test_tokenizer_beside_the_checkpoints_is_carried(suno_copy, tmp_path):
    src, codec = suno_copy
    (src / "vocab.txt").write_text("[PAD]\n[UNK]\n[CLS]\n[SEP]\n[MASK]\nHello\n", encoding="utf-8")
    out = convert_checkpoint(src, tmp_path / "out", codec=codec)
    assert (out / "vocab.txt").read_bytes() == (src / "vocab.txt").read_bytes()


def test_suno_options_with_a_transformers_directory(tmp_path):
    (tmp_path / "hf").mkdir()
    (tmp_path / "hf" / "config.json").write_text("{}")
    with pytest.raises(ConversionError, match="codec and size apply only to Suno's checkpoints"):
        convert_checkpoint(tmp_path / "hf", tmp_path / "out", size="small")


def test_truncated_file(suno_copy, tmp_path):
    src, codec = suno_copy
    path = src / "fine.pt"
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(ConversionError, match="fine.pt: corrupt, truncated"):
        convert_checkpoint(src, tmp_path / "out", codec=codec)
    assert not (tmp_path / "out").exists()


def test_cli_and_from_pretrained(suno, converted, tmp_path, monkeypatch, capsys):
    spec = importlib.util.spec_from_file_location("convert_script", ROOT / "scripts" / "convert_checkpoint.py")
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    assert script.main([str(suno[0]), str(tmp_path / "cli"), "--codec", str(suno[0] / CODEC_FILE)]) == 0
    assert "bert-base-multilingual-cased" in capsys.readouterr().out  # no tokenizer in Suno's files
    assert script.main([str(suno[0]), str(tmp_path / "bad"), "--size", "large"]) == 1
    assert "text_2.pt is missing" in capsys.readouterr().err
    assert not (tmp_path / "bad").exists()

    monkeypatch.setenv("MINDBARK_HOME", str(tmp_path / "home"))
    loaded = BarkModel.from_pretrained(suno[0], device="cpu")  # converted once into the cache
    assert json.loads((loaded.path / "mindbark.json").read_text())["source_format"] == "suno"
    for name in SUBMODELS:
        assert (loaded.path / f"{name}.safetensors").read_bytes() == (converted / f"{name}.safetensors").read_bytes()
