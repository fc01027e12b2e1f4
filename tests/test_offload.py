"""Weights are memory-mapped once, those streamed whole in 2 MiB pages where the OS gives them; with offload a
finished stage's pages go back to the OS and come back intact."""

import shutil
from pathlib import Path

import numpy as np
import pytest

from mindbark import BarkModel, weight_formats
from mindbark.checkpoint import map_safetensors
from mindbark.generation.config import config_from_kwargs
from mindbark.memory import LARGE_PAGE
from mindbark.pipeline import generate

GREEDY = config_from_kwargs(do_sample=False, semantic_min_eos_p=None, semantic_max_new_tokens=12)


def _resident_kib(path: Path) -> int:
    """Resident KiB of this process's mappings of `path` (Linux)."""
    total, inside = 0, False
    for line in Path("/proc/self/smaps").read_text().splitlines():
        head = line.split()
        if head and "-" in head[0] and len(head) >= 5:
            inside = line.endswith(str(path))
        elif inside and head[0] == "Rss:":
            total += int(head[1])
    return total


@pytest.mark.skipif(not Path("/proc/self/smaps").exists(), reason="reads Linux's /proc/self/smaps")
def test_release_drops_the_pages_and_keeps_the_weights(tiny_dir, tmp_path):
    # a checkpoint of its own: the session's other models map tiny_dir's files, and their pages count too
    own = shutil.copytree(tiny_dir, tmp_path / "tiny-bark")
    model = BarkModel.from_pretrained(own, device="cpu")
    path = (Path(own) / "semantic.safetensors").resolve()
    weight = model.semantic.h[0].attn.c_attn.weight
    before = weight.asnumpy().copy()
    assert _resident_kib(path) > 0  # the weights are the file's pages, not a copy
    model.release("semantic")
    assert _resident_kib(path) == 0
    np.testing.assert_array_equal(weight.asnumpy(), before)


def mapping(address: int) -> tuple:
    """The file (or "") of this process's mapping that holds `address`, and its VmFlags ("hg": asked for huge
    pages); Linux."""
    inside = False
    for line in Path("/proc/self/smaps").read_text().splitlines():
        head = line.split()
        if head and "-" in head[0] and len(head) >= 5:
            begin, end = (int(x, 16) for x in head[0].split("-"))
            inside, file = begin <= address < end, head[5] if len(head) > 5 else ""
        elif inside and head[0] == "VmFlags:":
            return file, head[1:]
    raise LookupError(f"{address:#x} is not mapped")


@pytest.mark.skipif(not Path("/proc/self/smaps").exists(), reason="reads Linux's /proc/self/smaps")
@pytest.mark.parametrize("fmt", ["fp32", "bf16"])  # the tiny model is too narrow for int8
def test_streamed_weights_are_asked_for_large_pages(tiny_dir, fmt):
    model = BarkModel.from_pretrained(tiny_dir, device="cpu", weights=fmt)
    gpt = model.semantic
    path = (Path(tiny_dir) / "semantic.safetensors").resolve()
    tensors, _ = map_safetensors(path)
    projections = {name: p.asnumpy() for name, p in gpt.parameters_and_names()
                   if p.ndim == 2 and not name.startswith(("wte.", "wpe."))}  # the blocks' and the LM head's
    assert len(projections) == 4 * len(gpt.h) + 1
    for name, array in projections.items():
        file, flags = mapping(array.ctypes.data)
        assert "hg" in flags, name
        # fp32: still the file's own pages; bf16: packed into memory of their own, values as packed
        assert (file == str(path)) == (fmt == "fp32"), name
        np.testing.assert_array_equal(array, weight_formats.pack(tensors[name], fmt))
    if fmt != "fp32":  # one block, which starts on a 2 MiB boundary (the heap may be advised too)
        assert min(array.ctypes.data for array in projections.values()) % LARGE_PAGE == 0
    table = gpt.wte.weight.asnumpy()  # read a few rows at a time: 2 MiB pages would map far more than it reads
    assert "hg" not in mapping(table.ctypes.data + table.nbytes // 2)[1]


def test_offload_changes_nothing_in_the_audio(tiny_dir, tiny_processor):
    inputs = tiny_processor(["Hello world", "my dog is cute"])
    runs = []
    for offload in (True, False):
        model = BarkModel.from_pretrained(tiny_dir, device="cpu", offload=offload)
        runs.append([generate(model, inputs["input_ids"], inputs["attention_mask"], None, GREEDY, seed=0)
                     for _ in range(2)])  # the second call re-reads released weights
    ref = runs[1][0]
    for result in runs[0] + runs[1][1:]:
        for a, b in zip(result.audio, ref.audio):
            np.testing.assert_array_equal(a, b)
