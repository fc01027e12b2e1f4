"""A batched item's result equals its unbatched run (greedy), whatever the other items' lengths."""

import numpy as np
import pytest

from mindbark.generation.config import config_from_kwargs
from mindbark.generation.fine import generate_fine
from mindbark.voices import load_voice

GREEDY = config_from_kwargs(do_sample=False)


@pytest.mark.parametrize("voice_name", [None, "announcer"])
def test_fine_windows_follow_each_items_length(tiny_model, voice_name):
    """1300 frames need three windows, 400 one and 700 two (two and one with a 512-frame voice prompt)."""
    voice = None if voice_name is None else load_voice(voice_name)
    frames = np.array([400, 1300, 700])
    coarse = np.random.RandomState(0).randint(0, 1024, (3, 2, frames.max()))
    batch = generate_fine(tiny_model.fine_acoustics, coarse, frames, voice, GREEDY.fine, np.random.default_rng())
    for i, n in enumerate(frames):
        one = generate_fine(tiny_model.fine_acoustics, coarse[i:i + 1, :, :n], frames[i:i + 1], voice, GREEDY.fine,
                            np.random.default_rng())
        assert batch[i].shape == (8, n)
        np.testing.assert_array_equal(batch[i][:2], coarse[i, :, :n])
        np.testing.assert_array_equal(batch[i], one[0])


def test_sampled_items_with_their_own_seeds_equal_their_solo_runs(tiny_model, tiny_processor):
    """Each item draws from its own generator, and only while it runs: lengths differ (EOS sampled, min_eos_p) and
    so do voices (the coarse and fine stages run per voice), yet every item's tokens equal its run alone."""
    from mindbark.pipeline import generate

    # random weights put p(EOS) near 1e-4: this threshold ends the items at different steps
    sampled = config_from_kwargs(semantic_max_new_tokens=24, semantic_min_eos_p=2e-4, semantic_min_new_tokens=2)
    texts = ["Hello world.", "My dog is cute, hello!", "Bark laughs [laughter] at my dog?"]
    announcer = load_voice("announcer")
    voices = [announcer, None, announcer]  # items 0 and 2 share their coarse and fine batch
    seeds = [3, 11, 7]
    inputs = tiny_processor(texts)
    batch = generate(tiny_model, inputs["input_ids"], inputs["attention_mask"], voices, sampled, seeds)
    assert len(batch.semantic[0]) != len(batch.semantic[2])  # the items stopped at different steps
    for i, text in enumerate(texts):
        one = tiny_processor(text)
        alone = generate(tiny_model, one["input_ids"], one["attention_mask"], voices[i], sampled, seeds[i])
        np.testing.assert_array_equal(batch.semantic[i], alone.semantic[0])
        np.testing.assert_array_equal(batch.fine[i], alone.fine[0])
        np.testing.assert_array_equal(batch.audio[i], alone.audio[0])
    with pytest.raises(ValueError, match="2 seeds for a batch of 3"):
        generate(tiny_model, inputs["input_ids"], inputs["attention_mask"], voices, sampled, seeds[:2])
