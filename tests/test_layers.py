"""mindbark's convolutions against torch's, with the weights converted as checkpoints are."""

import numpy as np
import pytest
import torch
from mindspore import Tensor

from mindbark import set_device
from mindbark.layers import Conv1d


@pytest.mark.parametrize("in_ch, out_ch, k, dilation", [
    (32, 1, 7, 1),  # fewer outputs than inputs over all taps (the decoder's last conv): taps summed on the outputs
    (24, 2, 3, 3),
    (5, 3, 3, 2),   # the rest: taps summed on the inputs
    (6, 4, 1, 1),
])
def test_conv1d(in_ch, out_ch, k, dilation):
    set_device("cpu")  # before the first op: a later set_device fails once the runtime is up
    rs = np.random.RandomState(k)
    # weights scaled as a conv's init keep outputs O(1), where 1e-5 is a few ulps of fp32 rounding over the
    # in_ch * k products; unit-variance weights make outputs ~40, whose rounding alone exceeds 1e-5
    weight = (rs.randn(out_ch, in_ch, k) / np.sqrt(in_ch * k)).astype(np.float32)
    bias = rs.randn(out_ch).astype(np.float32)
    x = rs.randn(2, 40 + (k - 1) * dilation, in_ch).astype(np.float32)  # channels-last, already padded
    conv = Conv1d(in_ch, out_ch, k, dilation)
    conv.weight.set_data(Tensor(conv.checkpoint_layout["weight"][1](weight)))
    conv.bias.set_data(Tensor(bias))
    ref = torch.nn.functional.conv1d(torch.tensor(x).transpose(1, 2), torch.tensor(weight), torch.tensor(bias),
                                     dilation=dilation).transpose(1, 2).numpy()
    np.testing.assert_allclose(conv(Tensor(x)).asnumpy(), ref, atol=1e-5, rtol=0)
