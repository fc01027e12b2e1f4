"""Thin building blocks over MindSpore `ops` with PyTorch's parameter names and layouts (`weight`, `bias`).

Keeping torch layouts makes checkpoint conversion a name table, and avoids `nn` quirks (`embedding_table`,
`gamma`/`beta`, `Conv1dTranspose`'s `pad_mode='same'` default). Every op here has CPU, GPU and Ascend kernels.
"""

import mindspore as ms
import numpy as np
from mindspore import Parameter, Tensor, nn, ops
from mindspore.common.initializer import initializer


def _param(shape, dtype, name) -> Parameter:
    # real values always come from a checkpoint; a lazy initializer allocates nothing until then
    return Parameter(initializer("zeros", shape, dtype), name=name)


class Linear(nn.Cell):
    """y = x @ weight.T + bias, with `weight` of shape (out, in) as in torch."""

    def __init__(self, in_features: int, out_features: int, bias: bool = True, dtype=ms.float32):
        super().__init__()
        self.weight = _param((out_features, in_features), dtype, "weight")
        self.bias = _param((out_features,), dtype, "bias") if bias else None
        # MatMul with transpose_b reads torch's layout directly (Dense was ~20x slower on CPU)
        self.matmul = ops.MatMul(transpose_b=True)

    def construct(self, x):
        y = self.matmul(x.reshape(-1, x.shape[-1]), self.weight)
        if self.bias is not None:
            y = y + self.bias
        return y.reshape(x.shape[:-1] + (self.weight.shape[0],))


class Embedding(nn.Cell):
    """Lookup rows of `weight` (num, dim)."""

    def __init__(self, num: int, dim: int, dtype=ms.float32):
        super().__init__()
        self.weight = _param((num, dim), dtype, "weight")

    def construct(self, ids):
        return ops.gather(self.weight, ids, 0)


class LayerNorm(nn.Cell):
    """LayerNorm over the last axis, eps 1e-5 as torch; optional bias (Bark's causal models have none)."""

    def __init__(self, dim: int, bias: bool = True, dtype=ms.float32):
        super().__init__()
        self.weight = _param((dim,), dtype, "weight")
        self.bias = _param((dim,), dtype, "bias") if bias else None
        self.zeros = Tensor(np.zeros((dim,), np.float32), dtype)
        self.norm = ops.LayerNorm(begin_norm_axis=-1, begin_params_axis=-1, epsilon=1e-5)

    def construct(self, x):
        bias = self.bias if self.bias is not None else self.zeros
        return self.norm(x, self.weight, bias)[0]


class Conv1d(nn.Cell):
    """Unpadded 1-D convolution, `weight` (out, in, k); callers pad explicitly."""

    def __init__(self, in_ch: int, out_ch: int, kernel_size: int, stride: int = 1, dilation: int = 1,
                 dtype=ms.float32):
        super().__init__()
        self.weight = _param((out_ch, in_ch, kernel_size), dtype, "weight")
        self.bias = _param((out_ch,), dtype, "bias")
        self.stride = stride
        self.dilation = dilation

    def construct(self, x):  # (B, C, T)
        return ops.conv1d(x, self.weight, self.bias, stride=self.stride, dilation=self.dilation)


class ConvTranspose1d(nn.Cell):
    """Unpadded transposed 1-D convolution, `weight` (in, out, k) as torch; output length (T-1)*stride + k."""

    def __init__(self, in_ch: int, out_ch: int, kernel_size: int, stride: int = 1, dtype=ms.float32):
        super().__init__()
        self.weight = _param((in_ch, out_ch, kernel_size), dtype, "weight")
        self.bias = _param((out_ch,), dtype, "bias")
        self.out_ch = out_ch
        self.kernel_size = kernel_size
        self.stride = stride
        # no 1-D transposed conv kernel on CPU: run the 2-D one on a height-1 image
        self.deconv = ops.Conv2DTranspose(out_channel=out_ch, kernel_size=(1, kernel_size), pad_mode="valid",
                                          stride=(1, stride))

    def construct(self, x):  # (B, C, T)
        b, _, t = x.shape
        out_len = (t - 1) * self.stride + self.kernel_size
        y = self.deconv(x.expand_dims(2), self.weight.expand_dims(2), (b, self.out_ch, 1, out_len))
        return y.squeeze(2) + self.bias.reshape(1, -1, 1)
