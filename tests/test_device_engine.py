"""The device engine on CPU: its KV cache and sampling live in the compiled graphs, and it runs MindSpore's ops
(LayerNorm, erf GELU, `nn.LSTM`, per-tap convolutions) where the CPU engine runs mindbark's kernels, as on GPU and
Ascend. Greedy generation against `transformers` for both engines is in test_generation_parity.py.

fp16 against torch fp32: fp16 keeps 11 significant bits (eps 2^-10 ~ 9.8e-4). Every matmul, LayerNorm output and
residual add rounds to it, about ten roundings per layer, and errors of that size add up through the model rather
than cancel; the logits are formed from fp16 hidden states. Observed at the tiny config: at most 2.6 eps times the
largest |logit| (semantic 0.008, coarse 0.013, fine 0.010 at |logit| <= 5; the codec 0.0044 at |sample| <= 1.9).
The bound is 8 eps times the largest reference magnitude: three times that margin, and a planted bug (a wrong
scale, a mask off by one) moves logits by O(1).
"""

import mindspore as ms
import numpy as np
import pytest
import torch
from mindspore import Tensor

from mindbark import BarkModel, set_device
from mindbark.bark import choose_engine
from mindbark.generation.config import config_from_kwargs
from mindbark.models.device_gpt import CHUNK
from mindbark.models.sampler import settings
from mindbark.pipeline import generate, stages
from mindbark.voices import load_voice

ATOL = 1e-4
FP16_BOUND = 8 * 2.0**-10  # times the largest reference magnitude (module docstring)


def _ids(vocab, shape, seed):
    return np.random.RandomState(seed).randint(0, vocab, shape)


def _device_logits(model, name, ids):
    """Logits (B, T, V) of ids (B, T): all but the last CHUNK + 3 positions as a prompt (two chunks, the second
    padded), then one decode step per position, each reading and writing the device cache."""
    gpt = getattr(model, name)
    runner = model.device_engine.gpt(gpt, ids.shape[0])
    keys = Tensor(np.ones((ids.shape[0], gpt.config.block_size), bool))
    n_prompt = ids.shape[1] - 3
    runner.prefill(ids[:, :n_prompt], keys)
    steps = [runner.logits(ids[:, i - 1], i - 1, keys) for i in range(n_prompt, ids.shape[1] + 1)]
    return np.stack(steps, axis=1), n_prompt - 1


@pytest.mark.parametrize("dtype", ["float32", "float16"])
@pytest.mark.parametrize("name", ["semantic", "coarse_acoustics"])
def test_logits_match_reference(tiny_hf, request, name, dtype):
    """Against torch fp32: within 1e-4 in fp32, within the fp16 bound in fp16 (module docstring)."""
    model = request.getfixturevalue("tiny_device" if dtype == "float32" else "tiny_fp16")
    gpt = getattr(model, name)
    ids = _ids(gpt.config.input_vocab_size, (2, CHUNK + 10), seed=1)
    with torch.no_grad():
        ref = getattr(tiny_hf, name)(input_ids=torch.tensor(ids)).logits.numpy()[:, CHUNK + 6:]
    out, first = _device_logits(model, name, ids)
    assert first == CHUNK + 6
    if dtype == "float32":
        np.testing.assert_allclose(out, ref, atol=ATOL, rtol=0)
    else:
        _within_fp16(out, ref)


def test_uses_mindspore_ops(tiny_device, tiny_model):
    """The device engine's networks are built without mindbark's CPU kernels: its parity tests cover the ops GPU
    and Ascend run."""
    codec = tiny_device.codec_model.decoder.layers
    assert codec[1].recurrence is None and codec[0].sum_taps is None
    assert tiny_device.semantic.h[0].mlp.gelu.kernel is None and tiny_device.semantic.ln_f.kernel is None
    if tiny_model.semantic.ln_f.kernel is None:
        pytest.skip("no C++ compiler here: the CPU engine runs MindSpore's ops too")


def test_decode_step_returns_only_ids_and_end_flag(tiny_device):
    """What a decode step hands the host: the ids (B,) and the end flags (B,); its keys and values go to the
    device cache."""
    gpt = tiny_device.semantic
    runner = tiny_device.device_engine.gpt(gpt, 3)
    keys = Tensor(np.ones((3, gpt.config.block_size), bool))
    heads = gpt.lm_head.weight[:10_001].reshape(1, 10_001, -1)
    before = runner.kv[0].asnumpy()[:, :, 5].copy()
    out = runner._step(Tensor(np.array([1, 2, 3], np.int32)), Tensor(5, ms.int64), keys, heads,
                       Tensor([0], ms.int32), Tensor(0, ms.int64), Tensor(10_000, ms.int32),
                       Tensor(1.0, ms.float32), Tensor(0.5, ms.float32), *settings(0.7, None, None, 10_001),
                       Tensor([1, 2, 3], ms.int32), Tensor([0], ms.int32))
    assert isinstance(out, tuple) and len(out) == 2
    ids, end = out
    assert (ids.shape, ids.dtype, end.shape, end.dtype) == ((3,), ms.int32, (3,), ms.bool_)
    written = runner.kv[0].asnumpy()[:, :, 5]
    assert not np.array_equal(written, before) and np.abs(written).max() > 0


@pytest.mark.parametrize("temperature, top_k, top_p", [(None, None, None), (0.7, None, None), (1.0, 5, None),
                                                      (1.0, None, 0.5), (0.5, 10, 0.8)])
def test_sampler_follows_host_rules(temperature, top_k, top_p):
    """The in-graph sampler draws from the host sampler's distribution (top-k, then top-p before the temperature);
    probabilities in fp32 against the host's fp64, within 1e-6 of values <= 1. Its draws follow them: 4000 copies
    of each row (each with a seed of its own) give frequencies within 0.05 total variation of them, where sampling
    noise alone gives about 0.02 over these 40 tokens."""
    from mindbark.generation.config import Sampling
    from mindbark.generation.sampling import pick as host_pick
    from mindbark.jit import compiled
    from mindbark.models.sampler import pick

    set_device("cpu")  # before the first op: a later set_device fails once the runtime is up
    logits = np.random.RandomState(0).randn(3, 40).astype(np.float32) * 2
    mode, params = settings(temperature, top_k, top_p, 40)

    def sample(x, p, seeds, draw):
        return pick(x, mode, p, seeds, draw)

    seeds = Tensor(np.arange(12_000, dtype=np.int32))
    ids, probs = compiled(sample, None, "pick")(Tensor(np.repeat(logits, 4000, axis=0)), params, seeds,
                                                Tensor([0], ms.int32))
    host_ids, host_probs = host_pick(logits, Sampling(temperature, top_k, top_p), np.random.default_rng(0))
    np.testing.assert_allclose(probs.asnumpy()[::4000], host_probs, atol=1e-6, rtol=0)
    ids = ids.asnumpy().reshape(3, 4000)
    if temperature is None:
        assert (ids == host_ids[:, None]).all()
        return
    for row in range(3):
        freq = np.bincount(ids[row], minlength=40) / ids.shape[1]
        assert 0.5 * np.abs(freq - host_probs[row]).sum() < 0.05


def test_seeded_sampling_is_reproducible(tiny_device):
    ids = np.random.RandomState(0).randint(0, 119_547, (2, 256)) * (np.arange(256) < 12)
    mask = (np.arange(256) < 12)[None].repeat(2, 0).astype(np.int64)
    # top-k and top-p (the sorting path) in the semantic stage, plain sampling in the others
    cfg = config_from_kwargs(semantic_max_new_tokens=8, semantic_min_eos_p=None, semantic_top_k=50,
                             semantic_top_p=0.9)
    runs = [generate(tiny_device, ids, mask, None, cfg, seed=seed) for seed in (7, 7, 8)]
    for a, b in zip(runs[0].fine, runs[1].fine):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(runs[0].semantic[0], runs[1].semantic[0])
    assert not np.array_equal(runs[0].semantic[0], runs[2].semantic[0])
    assert not np.array_equal(runs[0].semantic[0], runs[0].semantic[1]), "batch items draw their own noise"



def test_batched_item_samples_as_alone(tiny_device):
    """With a generator per item, an item's noise depends on its own seed only: batched, it samples the tokens of
    its solo run."""
    from mindbark.generation.semantic import semantic_history, text_prompt

    ids = np.random.RandomState(2).randint(0, 119_547, (3, 256)) * (np.arange(256) < 10)
    text = text_prompt(ids, (np.arange(256) < 10)[None].repeat(3, 0))
    history = np.stack([semantic_history(None)] * 3)
    cfg = config_from_kwargs(semantic_max_new_tokens=12, semantic_min_eos_p=None).semantic
    semantic = stages(tiny_device)[0]

    def run(items):
        return semantic(tiny_device.semantic, text[items], history[items], cfg,
                        [np.random.default_rng(10 + i) for i in items])[0]

    np.testing.assert_array_equal(run([0, 1, 2])[2], run([2])[0])


@pytest.mark.parametrize("engine", ["cpu", "device"])
@pytest.mark.parametrize("voice_name", [None, "announcer"])
def test_fine_stage_over_several_windows(tiny_hf, engines, engine, voice_name):
    """1100 frames: two fine windows without a voice, three after a voice's 512 frames of history."""
    from transformers.models.bark.generation_configuration_bark import (BarkCoarseGenerationConfig,
                                                                        BarkFineGenerationConfig,
                                                                        BarkSemanticGenerationConfig)

    voice = None if voice_name is None else load_voice(voice_name)
    coarse = np.random.RandomState(4).randint(0, 1024, (1, 2, 1100))
    model = engines[engine]
    greedy = config_from_kwargs(do_sample=False)
    fine = stages(model)[2](model.fine_acoustics, coarse, np.array([1100]), voice, greedy.fine,
                            np.random.default_rng())[0]
    gen = tiny_hf.generation_config
    flat = torch.tensor((coarse[0].T + 10_000 + np.array([0, 1024])).reshape(1, -1))  # as the coarse model gives
    history = None if voice is None else {k: torch.tensor(v) for k, v in voice.items()}
    with torch.no_grad():
        ref = tiny_hf.fine_acoustics.generate(
            flat, history_prompt=history, codebook_size=1024,
            semantic_generation_config=BarkSemanticGenerationConfig(**gen.semantic_config),
            coarse_generation_config=BarkCoarseGenerationConfig(**gen.coarse_acoustics_config),
            fine_generation_config=BarkFineGenerationConfig(**gen.fine_acoustics_config)).numpy()[0]
    np.testing.assert_array_equal(fine, ref)


def test_engine_choice_and_bfloat16():
    assert choose_engine(None, "CPU", "float32") == "cpu"
    assert choose_engine(None, "GPU", "float16") == "device" == choose_engine(None, "Ascend", "bfloat16")
    with pytest.raises(ValueError, match="CPU MatMul has no bfloat16 kernel"):
        choose_engine("device", "CPU", "bfloat16")
    with pytest.raises(ValueError, match="device engine only"):
        choose_engine("cpu", "GPU", "bfloat16")
    with pytest.raises(ValueError, match="unknown engine"):
        choose_engine("tpu", "CPU", "float32")


def test_bfloat16_on_cpu_is_one_line_error(tiny_dir):
    with pytest.raises(ValueError, match="bfloat16 needs a GPU or Ascend"):
        BarkModel.from_pretrained(tiny_dir, device="cpu", dtype="bfloat16")


@pytest.fixture(scope="module")
def tiny_fp16(tiny_dir):
    return BarkModel.from_pretrained(tiny_dir, device="cpu", dtype="float16", engine="device")


def _within_fp16(out, ref):
    bound = FP16_BOUND * np.abs(ref).max()
    err = np.abs(out.astype(np.float32) - ref).max()
    assert err <= bound, f"max error {err:.4g} over the fp16 bound {bound:.4g}"


def test_fp16_fine_and_codec(tiny_hf, tiny_fp16):
    codes = np.random.RandomState(5).randint(0, 1025, (2, 24, 8))
    for idx in range(1, 8):
        with torch.no_grad():
            ref = tiny_hf.fine_acoustics(idx, torch.tensor(codes)).logits.numpy()
        _within_fp16(tiny_fp16.fine_acoustics.forward(Tensor(codes, ms.int32), idx).asnumpy(), ref)
    codes = np.random.RandomState(3).randint(0, 1024, (1, 8, 300))  # three codec chunks, the LSTM's state carried
    with torch.no_grad():
        ref = tiny_hf.codec_decode(torch.tensor(codes)).numpy()
    _within_fp16(tiny_fp16.codec_model.decode(Tensor(codes, ms.int32)).asnumpy(), ref)


def test_fp16_greedy_agreement(tiny_hf, tiny_model, tiny_fp16, capsys):
    """Greedy tokens of fp16 against fp32 over fixed prompts: semantic tokens against torch's, and coarse and fine
    codes, from the reference's semantic tokens, against the fp32 CPU engine's (equal to torch's,
    test_generation_parity.py). fp16 may flip a near tie, and every later token may then differ, so this reports
    agreement (README) and asserts it only loosely."""
    from test_generation_parity import GREEDY, _hf, _inputs

    from mindbark.pipeline import semantic_to_codes

    kw = dict(GREEDY, semantic_max_new_tokens=16)
    semantic, codes = [], []
    for seed, voice_name in [(0, None), (2, "v2/en_speaker_6")]:
        voice = None if voice_name is None else load_voice(voice_name)
        ids, mask = _inputs([9 + 5 * seed], seed=seed)
        result = generate(tiny_fp16, ids, mask, voice, config_from_kwargs(**kw))
        ref_semantic, _ = _hf(tiny_hf, ids, mask, voice, **kw)
        ref_tokens = ref_semantic[0][ref_semantic[0] != 10_000]
        n = min(len(ref_tokens), len(result.semantic[0]))
        semantic.append(float(np.mean(result.semantic[0][:n] == ref_tokens[:n])))
        cfg = config_from_kwargs(**kw)
        half, full = (semantic_to_codes(m, ref_tokens[None], [len(ref_tokens)], voice, cfg)[0]
                      for m in (tiny_fp16, tiny_model))
        codes.append(float(np.mean(half == full)))
    with capsys.disabled():
        print(f"\nfp16 greedy agreement with fp32 per prompt: semantic {semantic}, coarse+fine codes {codes}")
    assert np.mean(semantic) >= 0.75 and np.mean(codes) >= 0.75
