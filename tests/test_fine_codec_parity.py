"""Fine GPT and EnCodec decoder against `transformers` with the same weights (fp32, 1e-4)."""

import mindspore as ms
import numpy as np
import pytest
import torch
from mindspore import Tensor

ATOL = 1e-4


def test_fine_every_codebook(tiny_hf, tiny_model):
    fine = tiny_model.fine_acoustics
    # 1024 is the fine model's pad id: include it as the reference's padding does
    codes = np.random.RandomState(5).randint(0, 1025, (2, 24, 8))
    for idx in range(1, 8):
        with torch.no_grad():
            ref = tiny_hf.fine_acoustics(idx, torch.tensor(codes)).logits.numpy()
        out = fine.forward(Tensor(codes, ms.int32), idx).asnumpy()
        np.testing.assert_allclose(out, ref, atol=ATOL, rtol=0, err_msg=f"codebook {idx}")


def test_fine_rejects_codebook_zero(tiny_model):
    with pytest.raises(ValueError, match="codebook_idx"):
        tiny_model.fine_acoustics.forward(Tensor(np.zeros((1, 4, 8)), ms.int32), 0)


@pytest.mark.parametrize("frames", [1, 8, 37, 75, 300])  # 300: three decoder chunks
def test_codec_decode(tiny_hf, tiny_model, frames):
    codes = np.random.RandomState(frames).randint(0, 1024, (2, 8, frames))
    with torch.no_grad():
        ref = tiny_hf.codec_decode(torch.tensor(codes)).numpy()
    out = tiny_model.codec_model.decode(Tensor(codes, ms.int32)).asnumpy()
    assert out.shape == ref.shape == (2, frames * 320)
    assert ref.std() > 0.05  # random weights chosen so the waveform is not near zero
    np.testing.assert_allclose(out, ref, atol=ATOL, rtol=0)
