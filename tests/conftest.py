import os
import shutil

import pytest

# tests compile in memory unless they ask for a graph cache (tests/test_graphs.py): nothing written to the home
# directory, and CLI subprocesses inherit it
os.environ["MINDBARK_GRAPH_CACHE"] = "off"

from mindbark.reference import hf_bark, save_hf_bark, shape_for_generation


def pytest_configure(config):
    config.addinivalue_line("markers", "slow: real bark-small shapes; seconds to minutes")


@pytest.fixture(scope="session")
def tiny_hf():
    """A `transformers` BarkModel at the tiny config (real vocabularies and context, width 16) with random weights."""
    return shape_for_generation(hf_bark("tiny", seed=0))


# a small cased BERT vocabulary, enough for the texts the tests speak
VOCAB = (["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + list("[],.!?♪") + list("你好欢迎使用模型") +
         "Hello hello world my dog is cute laughter laughs Bark B ##ark".split() +
         [chr(c) for c in range(ord("a"), ord("z") + 1)])


@pytest.fixture(scope="session")
def tiny_hf_dir(tiny_hf, tmp_path_factory):
    path = save_hf_bark(tiny_hf, tmp_path_factory.mktemp("hf") / "tiny-bark")
    (path / "vocab.txt").write_text("\n".join(VOCAB) + "\n", encoding="utf-8")
    return path


@pytest.fixture(scope="session")
def tiny_dir(tiny_hf_dir, tmp_path_factory):
    from mindbark.convert import convert_checkpoint

    return convert_checkpoint(tiny_hf_dir, tmp_path_factory.mktemp("mb") / "tiny-bark")


@pytest.fixture(scope="session")
def tiny_model(tiny_dir):
    from mindbark import BarkModel

    return BarkModel.from_pretrained(tiny_dir, device="cpu")


@pytest.fixture(scope="session")
def tiny_device(tiny_dir):
    """The tiny model on the device engine (KV cache and sampling in the graphs, MindSpore's ops), on CPU."""
    from mindbark import BarkModel

    return BarkModel.from_pretrained(tiny_dir, device="cpu", engine="device")


@pytest.fixture(scope="session")
def engines(tiny_model, tiny_device):
    """The tiny model by engine name, for tests that hold both engines to the same reference."""
    return {"cpu": tiny_model, "device": tiny_device}


@pytest.fixture(scope="session")
def tiny_processor(tiny_dir):
    from mindbark import BarkProcessor

    return BarkProcessor.from_pretrained(tiny_dir)


@pytest.fixture
def hf_copy(tiny_hf_dir, tmp_path):
    """A scratch copy of the tiny Hugging Face checkpoint that a test may damage."""
    return shutil.copytree(tiny_hf_dir, tmp_path / "src")
