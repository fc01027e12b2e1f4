import shutil

import pytest

from reference import hf_bark, save_hf_bark, shape_for_generation


def pytest_configure(config):
    config.addinivalue_line("markers", "slow: real bark-small shapes; seconds to minutes")


@pytest.fixture(scope="session")
def tiny_hf():
    """A `transformers` BarkModel at the tiny config (real vocabularies and context, width 16) with random weights."""
    return shape_for_generation(hf_bark("tiny", seed=0))


@pytest.fixture(scope="session")
def tiny_hf_dir(tiny_hf, tmp_path_factory):
    return save_hf_bark(tiny_hf, tmp_path_factory.mktemp("hf") / "tiny-bark")


@pytest.fixture(scope="session")
def tiny_dir(tiny_hf_dir, tmp_path_factory):
    from mindbark.convert import convert_checkpoint

    return convert_checkpoint(tiny_hf_dir, tmp_path_factory.mktemp("mb") / "tiny-bark")


@pytest.fixture(scope="session")
def tiny_model(tiny_dir):
    from mindbark import BarkModel

    return BarkModel.from_pretrained(tiny_dir, device="cpu")


@pytest.fixture
def hf_copy(tiny_hf_dir, tmp_path):
    """A scratch copy of the tiny Hugging Face checkpoint that a test may damage."""
    return shutil.copytree(tiny_hf_dir, tmp_path / "src")
