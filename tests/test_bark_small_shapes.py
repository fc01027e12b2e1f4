"""One parity pass at the real bark-small shapes (random weights): the same route the benchmark takes."""

import mindspore as ms
import numpy as np
import pytest
import torch
from mindspore import Tensor

from mindbark.reference import hf_bark, save_hf_bark

pytestmark = pytest.mark.slow
ATOL = 1e-4


@pytest.fixture(scope="module")
def pair(tmp_path_factory):
    from mindbark import BarkModel
    from mindbark.convert import convert_checkpoint

    hf = hf_bark("bark-small", seed=1)
    src = save_hf_bark(hf, tmp_path_factory.mktemp("hf-small") / "bark-small")
    dst = convert_checkpoint(src, tmp_path_factory.mktemp("mb-small") / "bark-small")
    return hf, BarkModel.from_pretrained(dst, device="cpu")


def test_bark_small_submodels(pair):
    hf, model = pair
    rs = np.random.RandomState(0)
    for name, vocab in (("semantic", 129_600), ("coarse_acoustics", 12_096)):
        ids = rs.randint(0, vocab, (1, 44))
        with torch.no_grad():
            ref = getattr(hf, name)(input_ids=torch.tensor(ids)).logits.numpy()
        gpt = getattr(model, name)
        gpt.setup_cache(1)
        keys = Tensor(np.ones((1, 1024), bool))
        # a prompt of 40, then decode steps: the step's attention at a real head width (64; the tiny models' are 8)
        out = [gpt.forward(gpt.embed(Tensor(ids[:, :40], ms.int32)), 0, keys)]
        out += [gpt.forward(ids[:, i:i + 1], i, keys) for i in range(40, 44)]
        np.testing.assert_allclose(np.concatenate(out, axis=1), ref, atol=ATOL, rtol=0, err_msg=name)
    codes = rs.randint(0, 1024, (1, 64, 8))
    with torch.no_grad():
        ref = hf.fine_acoustics(3, torch.tensor(codes)).logits.numpy()
    np.testing.assert_allclose(model.fine_acoustics.forward(Tensor(codes, ms.int32), 3).asnumpy(), ref,
                               atol=ATOL, rtol=0)
    codes = rs.randint(0, 1024, (1, 8, 75))
    with torch.no_grad():
        ref = hf.codec_decode(torch.tensor(codes)).numpy()
    np.testing.assert_allclose(model.codec_model.decode(Tensor(codes, ms.int32)).asnumpy(), ref, atol=ATOL, rtol=0)
