"""Long-form generation: chunks in one voice, batched like unbatched, streamed like joined."""

import numpy as np
import pytest

from mindbark.generation.config import config_from_kwargs
from mindbark.longform import LongFormOptions, generate_long, join, split, stream
from mindbark.pipeline import generate

GREEDY = config_from_kwargs(do_sample=False, semantic_min_eos_p=None, semantic_max_new_tokens=12)
TEXT = ("Hello world. My dog is cute! Bark laughs [laughter] at my dog? Hello hello world, my dog. "
        "你好，欢迎使用模型。Bark is cute.")


def test_chunks_fit_and_keep_the_text(tiny_processor):
    chunks = split(tiny_processor, TEXT, max_chars=24)
    assert len(chunks) > 4 and all(len(c) <= 24 for c in chunks)
    assert "".join(chunks).replace(" ", "") == TEXT.replace(" ", "")
    assert any("[laughter]" in c for c in chunks)
    with pytest.raises(ValueError, match="text is empty"):
        split(tiny_processor, " \n\t ")


@pytest.mark.parametrize("voice", [None, "announcer"])
def test_batched_equals_unbatched_and_one_wav(tiny_model, tiny_processor, voice):
    options = LongFormOptions(max_chars=24, batch_size=8, silence=0.1)
    long = generate_long(tiny_model, tiny_processor, TEXT, voice, GREEDY, options)
    one_by_one = generate_long(tiny_model, tiny_processor, TEXT, voice, GREEDY,
                               LongFormOptions(max_chars=24, batch_size=1, silence=0.1))
    n = len(long.chunks)
    assert n == len(split(tiny_processor, TEXT, 24)) and n > 4
    for a, b in zip(long.chunks, one_by_one.chunks):
        np.testing.assert_array_equal(a.voice["fine_prompt"], b.voice["fine_prompt"])
        np.testing.assert_allclose(a.audio, b.audio, atol=1e-5)
    gap = int(round(0.1 * long.sample_rate))
    assert len(long.audio) == sum(len(c.audio) for c in long.chunks) + (n - 1) * gap
    np.testing.assert_array_equal(long.audio[len(long.chunks[0].audio):][:gap], 0)
    assert set(long.timings) == {"semantic", "coarse", "fine", "codec"}


def test_unnamed_voice_carries_the_first_chunk(tiny_model, tiny_processor):
    chunks = list(stream(tiny_model, tiny_processor, TEXT, None, GREEDY, LongFormOptions(max_chars=24)))
    inputs = tiny_processor(chunks[2].text)
    alone = generate(tiny_model, inputs["input_ids"], inputs["attention_mask"], chunks[0].voice, GREEDY)
    np.testing.assert_allclose(chunks[2].audio, alone.audio[0], atol=1e-5)


def test_stream_yields_the_joined_audio(tiny_model, tiny_processor):
    options = LongFormOptions(max_chars=40, batch_size=3, silence=0.05)
    streamed = list(stream(tiny_model, tiny_processor, TEXT, "announcer", GREEDY, options, seed=1))
    whole = generate_long(tiny_model, tiny_processor, TEXT, "announcer", GREEDY, options, seed=1)
    assert [c.index for c in streamed] == list(range(len(whole.chunks)))
    np.testing.assert_array_equal(join([c.audio for c in streamed], whole.sample_rate, 0.05), whole.audio)


def test_sampled_long_form_is_reproducible_at_any_batch_size(tiny_model, tiny_processor):
    sampled = config_from_kwargs(semantic_max_new_tokens=12)
    a = generate_long(tiny_model, tiny_processor, TEXT, None, sampled, LongFormOptions(max_chars=60), seed=7)
    b = generate_long(tiny_model, tiny_processor, TEXT, None, sampled, LongFormOptions(max_chars=60), seed=7)
    np.testing.assert_array_equal(a.audio, b.audio)
    one_by_one = generate_long(tiny_model, tiny_processor, TEXT, None, sampled,
                               LongFormOptions(max_chars=60, batch_size=1), seed=7)
    assert len(a.chunks) > 2
    for x, y in zip(a.chunks, one_by_one.chunks):
        np.testing.assert_array_equal(x.voice["fine_prompt"], y.voice["fine_prompt"])
    np.testing.assert_array_equal(a.audio, one_by_one.audio)


@pytest.mark.parametrize("options, message", [
    (dict(max_chars=0), "max_chars"), (dict(batch_size=0), "batch_size"), (dict(silence=-1.0), "silence"),
    (dict(silence=float("nan")), "silence")])
def test_bad_options(options, message):
    with pytest.raises(ValueError, match=message):
        LongFormOptions(**options)
