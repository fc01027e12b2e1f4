"""Thin building blocks over MindSpore `ops` with PyTorch's parameter names and layouts (`weight`, `bias`).

Keeping torch layouts makes checkpoint conversion a name table, and avoids `nn` quirks (`embedding_table`,
`gamma`/`beta`, `Conv1dTranspose`'s `pad_mode='same'` default). Every op here has CPU, GPU and Ascend kernels.
Biases go through BiasAdd: a broadcasting add keeps private buffers of 4x its output per compiled graph on CPU.
"""

import mindspore as ms
import numpy as np
from mindspore import Parameter, Tensor, nn, ops
from mindspore.common.initializer import initializer


def _param(shape, dtype, name) -> Parameter:
    # real values always come from a checkpoint; a lazy initializer allocates nothing until then
    return Parameter(initializer("zeros", shape, dtype), name=name)


def gelu(x):
    """Exact (erf) GELU. Written out because MindSpore's CPU GeLU kernel is slower and keeps 4x its output."""
    return x * (ops.erf(x * float(1 / np.sqrt(2))) + 1.0) * 0.5


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
            y = ops.bias_add(y, self.bias)
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
    """Unpadded 1-D convolution, `weight` (out, in, k) as torch; callers pad explicitly.

    Computed as one matmul over stacked shifted copies of the input (im2col): MindSpore's CPU conv kernels ran
    50-300x slower than that on EnCodec's shapes.
    """

    def __init__(self, in_ch: int, out_ch: int, kernel_size: int, stride: int = 1, dilation: int = 1,
                 dtype=ms.float32):
        super().__init__()
        if stride != 1:
            raise ValueError("only stride 1 is implemented (all of EnCodec's decoder convolutions)")
        self.weight = _param((out_ch, in_ch, kernel_size), dtype, "weight")
        self.bias = _param((out_ch,), dtype, "bias")
        self.kernel_size = kernel_size
        self.dilation = dilation

    def construct(self, x):  # (B, Cin, T + (k-1)*d) -> (B, Cout, T)
        out_ch, in_ch, k = self.weight.shape
        t = x.shape[-1] - (k - 1) * self.dilation
        if k == 1:
            cols, w = x, self.weight.reshape(out_ch, in_ch)
        else:
            cols = ops.concat([x[:, :, j * self.dilation: j * self.dilation + t] for j in range(k)], axis=1)
            w = self.weight.transpose(0, 2, 1).reshape(out_ch, k * in_ch)  # tap-major, as cols
        return ops.matmul(w, cols) + self.bias.reshape(1, -1, 1)


class ConvTranspose1d(nn.Cell):
    """Unpadded transposed 1-D convolution, `weight` (in, out, k) as torch; output length (T-1)*stride + k.

    One matmul gives every tap's contribution (B, Cout, k, T); taps are then overlap-added a stride apart
    (MindSpore's CPU transposed conv was ~100x slower).
    """

    def __init__(self, in_ch: int, out_ch: int, kernel_size: int, stride: int = 1, dtype=ms.float32):
        super().__init__()
        self.weight = _param((in_ch, out_ch, kernel_size), dtype, "weight")
        self.bias = _param((out_ch,), dtype, "bias")
        self.stride = stride

    def construct(self, x):  # (B, Cin, T)
        in_ch, out_ch, k = self.weight.shape
        b, _, t = x.shape
        s = self.stride
        chunks = -(-k // s)
        w = self.weight
        if chunks * s != k:  # pad taps to whole strides
            w = ops.concat([w, ops.zeros((in_ch, out_ch, chunks * s - k), w.dtype)], axis=2)
        w = w.reshape(in_ch, out_ch * chunks * s).transpose(1, 0)  # (Cout*chunks*s, Cin)
        z = ops.matmul(w, x).reshape(b, out_ch, chunks, s, t)  # tap c*s + j of input frame t
        z = z.transpose(0, 1, 2, 4, 3).reshape(b, out_ch, chunks, t * s)  # lands at (t + c) * s + j
        y = z[:, :, 0]
        for c in range(1, chunks):  # overlap-add by concatenation: ops.pad is several times slower on CPU
            y = ops.concat([y[:, :, :c * s], y[:, :, c * s:] + z[:, :, c, :(t - c) * s], z[:, :, c, (t - c) * s:]],
                           axis=2)
        return y[:, :, :(t - 1) * s + k] + self.bias.reshape(1, -1, 1)
