"""mindbark's attention kernel for many query rows (`kernels/attention.cc`: prompt chunks, fine passes) against
torch in float64, with the masks a chunk meets: past slots with holes and trailing masked ones, new keys with holes,
a query that may see nothing, and more query rows than one of the kernel's blocks (128)."""

import mindspore as ms
import numpy as np
import pytest
import torch
from mindspore import Tensor

from mindbark.models.gpt import attention_kernel


def _reference(q, k, v, allowed):
    """Softmax attention in float64: q (B, nh, T, hs), k and v (B, nh, S, hs), allowed (B, T, S). A query that
    may see nothing averages every value, as the ops' additive float32-min bias made it."""
    q, k, v = (torch.from_numpy(a).double() for a in (q, k, v))
    scores = q @ k.transpose(-1, -2) / np.sqrt(q.shape[-1])
    mask = torch.from_numpy(allowed)[:, None]
    blind = ~mask.any(-1, keepdim=True)
    probs = torch.softmax(scores.masked_fill(~mask, float("-inf")).masked_fill(blind, 0.0), -1)
    return (probs @ v).numpy()


def _heads(x, n):
    b, t, c = x.shape
    return x.reshape(b, t, n, c // n).transpose(0, 2, 1, 3)


def _merged(y):
    b, n, t, hs = y.shape
    return y.transpose(0, 2, 1, 3).reshape(b, t, n * hs)


# fp32 rounds the hs-term dot products and the (L + T)-term weighted sums: errors stay under ~(hs + L + T) * 2^-24
# of the values' size, 2e-5 here (observed: 1e-7); a 0.1% error in the scores' scale gives 4e-4
TOLERANCE = 2e-5


def test_causal_attention_over_a_past_matches_torch():
    ms.set_device("CPU")
    kernel = attention_kernel(True, ms.float32)
    assert kernel is not None, "the kernel library did not build here"
    rng = np.random.default_rng(0)
    b, n, hs, t, past = 2, 4, 16, 200, 37
    qkv = rng.standard_normal((b, t, 3 * n * hs), np.float32)
    k_past, v_past = (rng.standard_normal((b, n, past, hs), np.float32) for _ in range(2))
    past_ok = rng.random((b, past)) < 0.7
    past_ok[1] = False  # the second sequence has no past, and its first new key is masked: query 0 sees nothing
    past_ok[0, -5:] = False  # trailing masked slots, which the kernel skips
    own_ok = rng.random((b, t)) < 0.8
    own_ok[1, 0] = False
    y = kernel(Tensor(qkv), Tensor(k_past), Tensor(v_past), Tensor(past_ok.astype(np.float32)),
               Tensor(own_ok.astype(np.float32))).asnumpy()

    q, k, v = (_heads(part, n) for part in np.split(qkv, 3, axis=2))
    causal = np.tril(np.ones((t, t), bool))
    allowed = np.concatenate([np.broadcast_to(past_ok[:, None], (b, t, past)), causal & own_ok[:, None]], axis=2)
    assert not allowed[1, 0].any()
    ref = _reference(q, np.concatenate([k_past, k], 2), np.concatenate([v_past, v], 2), allowed)
    np.testing.assert_allclose(y, _merged(ref), rtol=0, atol=TOLERANCE * np.abs(v).max())


def test_full_attention_matches_torch():
    ms.set_device("CPU")
    kernel = attention_kernel(False, ms.float32)
    assert kernel is not None
    rng = np.random.default_rng(1)
    b, n, hs, t = 2, 3, 32, 300
    qkv = rng.standard_normal((b, t, 3 * n * hs), np.float32)
    y = kernel(Tensor(qkv), Tensor(np.zeros(n, np.float32))).asnumpy()
    q, k, v = (_heads(part, n) for part in np.split(qkv, 3, axis=2))
    ref = _reference(q, k, v, np.ones((b, t, t), bool))
    np.testing.assert_allclose(y, _merged(ref), rtol=0, atol=TOLERANCE * np.abs(v).max())


@pytest.mark.parametrize("dtype", [ms.float16, ms.bfloat16])
def test_not_for_other_dtypes(dtype):
    assert attention_kernel(True, dtype) is None and attention_kernel(False, dtype) is None
