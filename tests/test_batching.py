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
