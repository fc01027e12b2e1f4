"""Projection weights held as fp32, bf16 or int8 (`weight_formats`, the `Gemv` and `Dequantize` kernels).

Three claims, each tested on its own:
- packing loses no more than the format allows (bf16: half an ulp of 8 bits; int8: half a step of its block's
  scale);
- the kernels compute with exactly the weights the packed ones stand for, to fp32's rounding: a projection against
  a float64 product with the unpacked weights, and whole GPTs against transformers given the unpacked weights;
- what packing changes in a model's output stays small: logits against the fp32 model's, and greedy tokens.
"""

import json

import mindspore as ms
import numpy as np
import pytest
import torch
from mindspore import Tensor

from mindbark import BarkModel, weight_formats
from mindbark.convert import convert_checkpoint
from mindbark.device import set_device
from mindbark.layers import Projection
from mindbark.reference import CONFIGS, hf_bark, save_hf_bark, shape_for_generation

FORMATS = weight_formats.FORMATS
U = 2.0 ** -24  # fp32's unit roundoff


@pytest.mark.parametrize("fmt", ["bf16", "int8"])
def test_packing_loses_only_what_the_format_allows(fmt):
    w = np.random.default_rng(0).standard_normal((5, 96)).astype(np.float32) * 0.02
    w[1, :32] = 0  # an all-zero block has scale 0
    w[2, 5] = 3.0  # one outlier widens its own block's step only
    back = weight_formats.unpack(weight_formats.pack(w, fmt), fmt)
    if fmt == "bf16":
        bound = np.abs(w) * 2.0 ** -8  # 8 significant bits kept, rounded to nearest: half an ulp of 2^-7
    else:
        blocks = np.abs(w).reshape(5, 3, 32).max(axis=2) / 127
        bound = np.repeat(blocks, 32, axis=1) / 2 * (1 + 1e-6)
    assert np.all(np.abs(back - w) <= bound)
    assert np.all(back[1, :32] == 0)


def test_int8_needs_whole_blocks():
    with pytest.raises(ValueError, match="multiple of 32"):
        weight_formats.pack(np.ones((2, 48), np.float32), "int8")


def test_unknown_format_is_named():
    with pytest.raises(ValueError, match="fp32, bf16, int8"):
        weight_formats.check_format("int4")


def _project(fmt, x, w, bias):
    set_device("cpu")  # before the first graph runs: the model loads below select it again
    cell = Projection(fmt)
    packed = Tensor(weight_formats.pack(w, fmt))
    fn = ms.jit(cell.construct, capture_mode="ast")
    return fn(Tensor(x), packed, None if bias is None else Tensor(bias)).asnumpy()


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("rows", [1, 3, 20])  # a decode step (Gemv), a batch of them, a prompt (MatMul)
@pytest.mark.parametrize("with_bias", [True, False])
def test_projection_computes_with_the_packed_weights(fmt, rows, with_bias):
    rng = np.random.default_rng(rows)
    k, n = 96, 37  # three int8 blocks, six vector widths; 37 outputs leave a tail past every group of four
    x = rng.standard_normal((rows, k)).astype(np.float32)
    w = rng.standard_normal((n, k)).astype(np.float32) * 0.05
    bias = rng.standard_normal(n).astype(np.float32) if with_bias else None
    exact_w = weight_formats.unpack(weight_formats.pack(w, fmt), fmt).astype(np.float64)
    ref = x.astype(np.float64) @ exact_w.T + (0 if bias is None else bias)
    # any fp32 sum of k products, then the bias, is within (k + 1) u of the sum of magnitudes (Higham, 3.1)
    bound = (k + 1) * U * (np.abs(x) @ np.abs(exact_w).T + (0 if bias is None else np.abs(bias)))
    out = _project(fmt, x, w, bias)
    assert out.shape == (rows, n)
    assert np.all(np.abs(out - ref) <= bound)


def _wide_tiny_config(tmp_path):
    """configs/tiny.json with GPTs 64 wide: int8 needs rows of whole 32-weight blocks (the tiny ones are 16)."""
    config = json.loads((CONFIGS / "tiny.json").read_text())
    for name in ("semantic_config", "coarse_acoustics_config", "fine_acoustics_config"):
        config[name]["hidden_size"] = 64
    path = tmp_path / "config.json"
    path.write_text(json.dumps(config))
    return path


@pytest.fixture(scope="module")
def wide(tmp_path_factory):
    """A random transformers BarkModel with 64-wide GPTs, converted, and mindbark loads of it in every format."""
    tmp = tmp_path_factory.mktemp("wide")
    hf = shape_for_generation(hf_bark(str(_wide_tiny_config(tmp)), seed=0))
    converted = convert_checkpoint(save_hf_bark(hf, tmp / "hf"), tmp / "mb")
    models = {fmt: BarkModel.from_pretrained(converted, device="cpu", weights=fmt) for fmt in FORMATS}
    return hf, models


def _with_unpacked_weights(hf, name, fmt):
    """transformers' sub-model `name` with each projection weight replaced by what `fmt` packs it to."""
    sub = getattr(hf, name)
    state = {k: v.clone() for k, v in sub.state_dict().items()}
    for key, value in state.items():
        if value.ndim == 2 and key.endswith(".weight") and ("layers." in key or key == "lm_head.weight"):
            packed = weight_formats.pack(value.numpy(), fmt)
            state[key] = torch.from_numpy(weight_formats.unpack(packed, fmt).copy())
    twin = type(sub)(sub.config).eval()
    twin.load_state_dict(state)
    return twin


def _logits(gpt, ids):
    """Logits of every position: a prefill of 5, then one decode step per position."""
    keys = Tensor(np.ones((ids.shape[0], gpt.config.block_size), bool))
    gpt.setup_cache(ids.shape[0])
    steps = [gpt.forward(ids[:, :5], 0, keys)]
    steps += [gpt.forward(ids[:, i:i + 1], i, keys) for i in range(5, ids.shape[1])]
    return np.concatenate(steps, axis=1)


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("name", ["semantic", "coarse_acoustics"])
def test_gpt_equals_transformers_with_the_unpacked_weights(wide, fmt, name):
    hf, models = wide
    gpt = getattr(models[fmt], name)
    ids = np.random.default_rng(1).integers(0, gpt.config.input_vocab_size, (2, 9))
    with torch.no_grad():
        ref = _with_unpacked_weights(hf, name, fmt)(input_ids=torch.tensor(ids)).logits.numpy()
    # as the fp32 parity tests (test_causal_parity.py): logits of magnitude ~1, fp32 sums of 64-256 products
    np.testing.assert_allclose(_logits(gpt, ids), ref, atol=1e-4, rtol=0)


# Observed here, as a share of the largest fp32 logit: bf16 0.48-0.54% (each weight within 2^-8 of itself),
# int8 1.79-1.85% (each weight within 1/254 of its block's largest). The bounds leave ~4x and ~2.7x: a scale 10%
# off, or a block of weights lost, is several times over them.
@pytest.mark.parametrize("fmt, bound", [("bf16", 0.02), ("int8", 0.05)])
def test_packed_logits_stay_near_fp32(wide, fmt, bound):
    _, models = wide
    ids = np.random.default_rng(2).integers(0, 10_000, (2, 9))
    for name in ("semantic", "coarse_acoustics"):
        ref = _logits(getattr(models["fp32"], name), ids)
        out = _logits(getattr(models[fmt], name), ids)
        assert np.abs(out - ref).max() <= bound * np.abs(ref).max()
        assert (out.argmax(-1) == ref.argmax(-1)).mean() >= 0.9  # the greedy token (all 18 agree here)


def test_weights_need_the_cpu_engine(tiny_dir):
    with pytest.raises(ValueError, match="CPU engine only"):
        BarkModel.from_pretrained(tiny_dir, device="cpu", engine="device", weights="int8")
    with pytest.raises(ValueError, match="float32"):
        BarkModel.from_pretrained(tiny_dir, device="cpu", dtype="float16", weights="bf16")


def test_weights_need_the_kernels(tiny_dir, monkeypatch):
    from mindbark import kernels

    monkeypatch.setenv(kernels.ENV, "off")
    kernels.library.cache_clear()
    try:
        with pytest.raises(ValueError, match="bf16 weights need mindbark's CPU kernels"):
            BarkModel.from_pretrained(tiny_dir, device="cpu", weights="bf16")
    finally:
        monkeypatch.delenv(kernels.ENV)
        kernels.library.cache_clear()
