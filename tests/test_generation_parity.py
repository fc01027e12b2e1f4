"""Greedy generation against `transformers`' `BarkModel.generate` with the same weights and parameters, on both
engines (the CPU engine, and the device engine with its KV cache and sampling in the graphs).

Greedy argmax is exact here: the fixture's logits are well separated (see `reference.shape_for_generation`), and
every stage is compared: semantic tokens, coarse and fine codes through the final codes, and the waveform.

A batch differs from transformers on purpose: transformers' fine stage reads a shorter item's coarse codes past its
end (generated for the longest item), so its batched items differ from their solo runs. mindbark keeps each item at
its own length, so a batched item is compared with the reference's unbatched run of that item.
"""

import numpy as np
import pytest
import torch
from transformers.models.bark.generation_configuration_bark import (BarkCoarseGenerationConfig,
                                                                    BarkFineGenerationConfig,
                                                                    BarkSemanticGenerationConfig)

from mindbark.generation.config import GenerationConfig, config_from_kwargs
from mindbark.pipeline import stages, generate
from mindbark.voices import load_voice

GREEDY = dict(do_sample=False, semantic_min_eos_p=None, semantic_max_new_tokens=48, fine_temperature=None)


def _inputs(lengths, seed=0):
    rs = np.random.RandomState(seed)
    ids = rs.randint(0, 119_547, (len(lengths), 256))
    mask = (np.arange(256)[None] < np.array(lengths)[:, None]).astype(np.int64)
    return ids * mask, mask


def _hf(hf, ids, mask, voice, **kw):
    history = None if voice is None else {k: torch.tensor(v) for k, v in voice.items()}
    with torch.no_grad():
        semantic = hf.semantic.generate(torch.tensor(ids), history_prompt=history, attention_mask=torch.tensor(mask),
                                        semantic_generation_config=_stage_config(hf, "semantic"), do_sample=False,
                                        max_new_tokens=kw["semantic_max_new_tokens"],
                                        min_eos_p=kw["semantic_min_eos_p"])
        audio, lengths = hf.generate(input_ids=torch.tensor(ids), attention_mask=torch.tensor(mask),
                                     history_prompt=history, return_output_lengths=True, **kw)
    return semantic.numpy(), [audio[i, :n].numpy() for i, n in enumerate(lengths)]


def _stage_config(hf, stage):
    """The reference's generation config of one stage: "semantic", "coarse_acoustics" or "fine_acoustics"."""
    cls = {"semantic": BarkSemanticGenerationConfig, "coarse_acoustics": BarkCoarseGenerationConfig,
           "fine_acoustics": BarkFineGenerationConfig}[stage]
    return cls(**getattr(hf.generation_config, f"{stage}_config"))


# min_eos_p 5e-4 ends the three random-weight sequences at 30, 30 and 27 tokens (found by running the reference)
@pytest.mark.parametrize("engine", ["cpu", "device"])
@pytest.mark.parametrize("voice_name, lengths, min_eos_p", [
    (None, [17], None),
    (None, [20, 7, 35], 5e-4),
    ("v2/en_speaker_6", [17], None),
    ("v2/en_speaker_6", [20, 7, 35], None),
])
def test_greedy_generation_matches_reference(tiny_hf, engines, engine, voice_name, lengths, min_eos_p):
    voice = None if voice_name is None else load_voice(voice_name)
    ids, mask = _inputs(lengths)
    kw = dict(GREEDY, semantic_min_eos_p=min_eos_p)
    result = generate(engines[engine], ids, mask, voice, config_from_kwargs(**kw))
    for i in range(len(lengths)):
        ref_semantic, ref_audio = _hf(tiny_hf, ids[i:i + 1], mask[i:i + 1], voice, **kw)
        ref_tokens = ref_semantic[0][ref_semantic[0] != 10_000]  # the reference pads finished rows with EOS
        np.testing.assert_array_equal(result.semantic[i], ref_tokens)
        assert result.audio[i].shape == ref_audio[0].shape
        np.testing.assert_allclose(result.audio[i], ref_audio[0], atol=1e-4, rtol=0)
    if min_eos_p is not None:
        assert len({len(s) for s in result.semantic}) > 1, "the stopping rule should end items at different lengths"


@pytest.mark.parametrize("engine", ["cpu", "device"])
def test_stages_match_reference(tiny_hf, engines, engine):
    """Coarse and fine codes from each reference sub-model's generate, fed the same semantic tokens: the coarse
    stage runs four sliding windows."""

    voice = load_voice("announcer")
    history = {k: torch.tensor(v) for k, v in voice.items()}
    semantic = np.random.RandomState(3).randint(0, 10_000, (2, 70))
    semantic[1, 50:] = 10_000
    cfgs = dict(semantic_generation_config=_stage_config(tiny_hf, "semantic"),
                coarse_generation_config=_stage_config(tiny_hf, "coarse_acoustics"))
    fine_cfg = _stage_config(tiny_hf, "fine_acoustics")
    with torch.no_grad():
        ref_coarse, _ = tiny_hf.coarse_acoustics.generate(torch.tensor(semantic), history_prompt=history,
                                                          codebook_size=1024, return_output_lengths=True,
                                                          do_sample=False, **cfgs)
    greedy = config_from_kwargs(do_sample=False)
    lengths = (semantic != 10_000).sum(1)
    model = engines[engine]
    coarse_stage, fine_stage = stages(model)[1:]
    coarse, frames = coarse_stage(model.coarse_acoustics, semantic, lengths, voice, greedy.coarse,
                                  np.random.default_rng())
    ref = (ref_coarse.numpy().reshape(2, -1, 2).transpose(0, 2, 1) - 10_000) % 1024
    np.testing.assert_array_equal(coarse, ref)
    assert list(frames) == [105, 75]
    fine = fine_stage(model.fine_acoustics, coarse, frames, voice, greedy.fine, np.random.default_rng())
    for i, n in enumerate(frames):
        with torch.no_grad():
            ref_fine = tiny_hf.fine_acoustics.generate(ref_coarse[i:i + 1, :2 * n], history_prompt=history,
                                                       codebook_size=1024, fine_generation_config=fine_cfg, **cfgs)
        np.testing.assert_array_equal(fine[i], ref_fine.numpy()[0])


def test_defaults_are_suno_sampling():
    cfg = GenerationConfig()
    assert (cfg.semantic.temperature, cfg.coarse.temperature, cfg.fine.temperature) == (0.7, 0.7, 0.5)
    assert cfg.semantic.min_eos_p == 0.2 and cfg.semantic.max_new_tokens == 768
    assert (cfg.coarse.max_history, cfg.coarse.window) == (630, 60)
