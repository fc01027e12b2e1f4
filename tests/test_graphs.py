"""Saved graphs: a model that loads its compiled graphs from disk generates exactly what one compiling them does."""

import logging

import numpy as np
import pytest
from mindspore import Tensor

from mindbark import BarkModel, load_voice
from mindbark.generation.config import config_from_kwargs
from mindbark.graphs import ENV, GraphStore, default_dir
from mindbark.pipeline import generate

GREEDY = config_from_kwargs(do_sample=False, semantic_min_eos_p=None, semantic_max_new_tokens=12)


def _run(model, inputs):
    return generate(model, inputs["input_ids"], inputs["attention_mask"], load_voice("en_speaker_1"), GREEDY)


def _same(a, b):
    for x, y in zip(a.semantic, b.semantic):
        np.testing.assert_array_equal(x, y)
    for x, y in zip(a.fine, b.fine):
        np.testing.assert_array_equal(x, y)
    for x, y in zip(a.audio, b.audio):
        np.testing.assert_allclose(x, y, rtol=0, atol=1e-6)


@pytest.fixture(scope="module")
def reference(tiny_model, tiny_processor):
    """Greedy results of the in-memory graphs, batch 2 (prompt chunks, decode steps, fine windows, codec)."""
    inputs = tiny_processor(["Hello world", "my dog is cute"])
    return inputs, _run(tiny_model, inputs)


def test_saved_then_loaded_graphs_generate_the_same(tiny_dir, reference, tmp_path):
    inputs, want = reference
    first = BarkModel.from_pretrained(tiny_dir, device="cpu", graph_cache=tmp_path)
    _same(_run(first, inputs), want)
    assert first.graphs.saved == first.graphs.loaded > 0
    saved = sorted(p.name for p in tmp_path.iterdir())
    assert all(name.endswith(".mindir") for name in saved)  # no temporary file left behind

    later = BarkModel.from_pretrained(tiny_dir, device="cpu", graph_cache=tmp_path)  # as a later process would
    _same(_run(later, inputs), want)
    assert later.graphs.saved == 0 and later.graphs.loaded == first.graphs.saved
    assert sorted(p.name for p in tmp_path.iterdir()) == saved
    weights = sum(p.stat().st_size for p in tiny_dir.glob("*.safetensors"))
    assert sum(p.stat().st_size for p in tmp_path.iterdir()) < weights / 4  # graphs only: weights are bound at load


def test_another_batch_size_gets_graphs_of_its_own(tiny_dir, tiny_model, tiny_processor, tmp_path):
    model = BarkModel.from_pretrained(tiny_dir, device="cpu", graph_cache=tmp_path)
    _run(model, tiny_processor(["Hello world", "my dog is cute"]))
    one = tiny_processor(["Hello world"])
    _same(_run(BarkModel.from_pretrained(tiny_dir, device="cpu", graph_cache=tmp_path), one), _run(tiny_model, one))


def test_a_loaded_prompt_chunk_graph_compiles_once_for_every_past_and_chunk_length(tiny_dir, tmp_path):
    for process in ("saves", "loads"):
        model = BarkModel.from_pretrained(tiny_dir, device="cpu", graph_cache=tmp_path)
        gpt = model.semantic
        assert gpt.chunks_in_one
        gpt.setup_cache(1)
        keys = Tensor(np.ones((1, gpt.config.block_size), bool))
        # pasts of 1 (masked), 4 and 8 slots; chunks of 4, 4 and 3 positions
        gpt.prefill(np.arange(11).reshape(1, 11), keys, chunk=4)
        model.release("semantic")  # as the pipeline does: no weight pages stay mapped for later tests
        (runner,) = gpt._chunk_ids._runners.values()
        assert len(runner.compile_cache) == 1, process


def test_a_damaged_graph_file_is_compiled_again(tiny_dir, reference, tmp_path, caplog):
    inputs, want = reference
    _run(BarkModel.from_pretrained(tiny_dir, device="cpu", graph_cache=tmp_path), inputs)
    victim = sorted(tmp_path.iterdir())[0]
    victim.write_bytes(victim.read_bytes()[:100])
    model = BarkModel.from_pretrained(tiny_dir, device="cpu", graph_cache=tmp_path)
    with caplog.at_level(logging.WARNING, logger="mindbark.graphs"):
        _same(_run(model, inputs), want)
    assert model.graphs.saved == 1 and "unusable" in caplog.text
    assert victim.stat().st_size > 100


def test_a_loaded_graph_that_fails_to_run_is_compiled_in_memory(tiny_dir, reference, tmp_path, caplog,
                                                                 monkeypatch):
    inputs, want = reference
    first = BarkModel.from_pretrained(tiny_dir, device="cpu", graph_cache=tmp_path)
    _run(first, inputs)

    def fails(*args):
        raise RuntimeError("kernel launch failed\n(C++ context)")

    monkeypatch.setattr(GraphStore, "load", lambda self, path, owner, dynamic=None: fails)
    model = BarkModel.from_pretrained(tiny_dir, device="cpu", graph_cache=tmp_path)
    with caplog.at_level(logging.WARNING, logger="mindbark.graphs"):
        _same(_run(model, inputs), want)
    warnings = [r.getMessage() for r in caplog.records if r.name == "mindbark.graphs"]
    assert warnings and all("failed at its first call (kernel launch failed)" in w for w in warnings)
    assert len(warnings) == first.graphs.saved  # once per graph, not per call


def test_an_unwritable_cache_falls_back_to_memory(tiny_dir, reference, tmp_path, caplog):
    inputs, want = reference
    blocked = tmp_path / "file"
    blocked.write_text("not a directory")
    model = BarkModel.from_pretrained(tiny_dir, device="cpu", graph_cache=blocked / "graphs")
    with caplog.at_level(logging.WARNING, logger="mindbark.graphs"):
        _same(_run(model, inputs), want)
    assert model.graphs.saved == 0 and "compiling it in memory" in caplog.text


def test_the_cache_directory_follows_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv(ENV, str(tmp_path))
    assert default_dir() == tmp_path
    for off in ("0", "off", "OFF", ""):
        monkeypatch.setenv(ENV, off)
        assert default_dir() is None
    monkeypatch.delenv(ENV)
    monkeypatch.setenv("MINDBARK_HOME", str(tmp_path))
    assert default_dir() == tmp_path / "graphs"
