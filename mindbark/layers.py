"""Thin building blocks over MindSpore `ops` with PyTorch's parameter names and layouts (`weight`, `bias`).

Keeping torch layouts makes checkpoint conversion a name table, and avoids `nn` quirks (`embedding_table`,
`gamma`/`beta`, `Conv1dTranspose`'s `pad_mode='same'` default). Every op here has CPU, GPU and Ascend kernels.
Biases go through BiasAdd: a broadcasting add keeps private buffers of several times its output per compiled graph
on CPU.
"""

import mindspore as ms
import numpy as np
from mindspore import Parameter, Tensor, nn, ops
from mindspore.common.initializer import initializer
from mindspore.ops import DataType

from . import kernels, weight_formats
from .graph_ops import concat, rows, split


def _param(shape, dtype, name) -> Parameter:
    # real values always come from a checkpoint; a lazy initializer allocates nothing until then
    return Parameter(initializer("zeros", shape, dtype), name=name)


class GELU(nn.Cell):
    """Exact (erf) GELU: mindbark's CPU kernel where it applies (`kernels`), else written out with erf, since
    MindSpore's GeLU kernel is slower still and keeps several times its output on CPU."""

    def __init__(self):
        super().__init__()
        self.kernel = kernels.custom_op("Gelu", 1)

    def construct(self, x):
        if self.kernel is not None and x.dtype == ms.float32:
            return self.kernel(x)
        return x * (ops.erf(x * float(1 / np.sqrt(2))) + 1.0) * 0.5


def linear(x, weight, bias=None):
    """x @ weight.T + bias over the last axis of x, with fp32 `weight` (out, in) as in torch: MatMul with
    transpose_b reads that layout directly (Dense was many times slower on CPU)."""
    y = ops.MatMul(transpose_b=True)(x.reshape(-1, x.shape[-1]), weight)
    if bias is not None:
        y = ops.bias_add(y, bias)
    return y.reshape(x.shape[:-1] + (weight.shape[0],))


GEMV_ROWS = 8  # up to this many rows (a decode step's batch) a product runs as mindbark's Gemv kernel


class Projection(nn.Cell):
    """x @ W.T + bias for weights W (out, in) stored in one of `weight_formats`' formats.

    A few rows go through mindbark's Gemv kernel where it applies (a decode step: the time is the weights' read,
    and the kernel streams them in at the memory's bandwidth), more rows through MatMul. bf16 and int8 weights need
    the kernels: a few rows run Gemv on them directly, more rows (prompts, the fine model) unpack them to fp32 for
    MatMul.
    """

    def __init__(self, fmt: str = "fp32"):
        super().__init__()
        f32, u16, u8 = DataType.F32_Default, DataType.U16_Default, DataType.U8_Default
        self.gemv = kernels.custom_op("Gemv", 3, [(f32, f32, f32, f32), (f32, u16, f32, f32), (f32, u8, f32, f32)])
        self.unpack = None if fmt == "fp32" else kernels.custom_op("Dequantize", 2, [(u16, f32, f32), (u8, f32, f32)])
        if fmt != "fp32" and (self.gemv is None or self.unpack is None):
            raise ValueError(f"{fmt} weights need mindbark's CPU kernels (MindSpore's CPU backend and a C++ "
                             "compiler); use fp32 weights")

    def construct(self, x, weight, bias=None):
        x2 = x.reshape(-1, x.shape[-1])
        if self.gemv is None or x2.shape[0] > GEMV_ROWS:
            return linear(x, weight if self.unpack is None else self.unpack(weight, x2), bias)
        n = weight.shape[0]
        y = self.gemv(x2, weight, bias if bias is not None else ops.zeros((n,), ms.float32))
        return y.reshape(x.shape[:-1] + (n,))


class Linear(nn.Cell):
    """y = x @ weight.T + bias, with `weight` of shape (out, in) as in torch, stored in format `weights`
    (`weight_formats`: packed from the checkpoint's fp32 at load)."""

    def __init__(self, in_features: int, out_features: int, bias: bool = True, dtype=ms.float32,
                 weights: str = "fp32"):
        super().__init__()
        if weights == "fp32":
            self.weight = _param((out_features, in_features), dtype, "weight")
        else:
            if dtype != ms.float32:
                raise ValueError(f"{weights} weights compute in float32, not {dtype}")
            shape = weight_formats.packed_shape((out_features, in_features), weights)
            self.weight = _param(shape, ms.uint16 if weights == "bf16" else ms.uint8, "weight")
            self.checkpoint_layout = {"weight": ((out_features, in_features),
                                                 lambda w: weight_formats.pack(w, weights))}
        self.bias = _param((out_features,), dtype, "bias") if bias else None
        self.project = Projection(weights) if dtype == ms.float32 else None
        self.large_pages = ("weight",)  # read whole by every decode step (`checkpoint.load_weights`)

    def construct(self, x):
        if self.project is None:
            return linear(x, self.weight, self.bias)
        return self.project(x, self.weight, self.bias)


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
        self.kernel = kernels.custom_op("LayerNorm", 3)

    def construct(self, x):
        bias = self.bias if self.bias is not None else self.zeros
        if x.dtype != ms.float32:  # statistics in float32, as torch keeps them for half precision
            return self.norm(x.astype(ms.float32), self.weight.astype(ms.float32), bias.astype(ms.float32))[0] \
                .astype(x.dtype)
        if self.kernel is not None:
            return self.kernel(x, self.weight, bias)
        return self.norm(x, self.weight, bias)[0]


class Conv1d(nn.Cell):
    """Unpadded 1-D convolution over channels-last signals (B, T + (k-1)*d, Cin) -> (B, T, Cout); callers pad.

    One matmul per tap, summed: MindSpore's CPU conv kernels are far slower on EnCodec's shapes, and
    channels-last keeps every matmul in the (rows, in) x (out, in)^T form its CPU GEMM runs fastest. The weight
    is kept tap-major (k, out, in); checkpoints hold torch's (out, in, k) (`checkpoint_layout`).
    """

    def __init__(self, in_ch: int, out_ch: int, kernel_size: int, dilation: int = 1, dtype=ms.float32):
        super().__init__()
        self.weight = _param((kernel_size, out_ch, in_ch), dtype, "weight")
        self.bias = _param((out_ch,), dtype, "bias")
        self.dilation = dilation
        self.checkpoint_layout = {"weight": ((out_ch, in_ch, kernel_size), lambda w: w.transpose(2, 0, 1))}
        self.matmul = ops.MatMul(transpose_b=True)

    def construct(self, x):
        k, out_ch, in_ch = self.weight.shape
        b = x.shape[0]
        t = x.shape[1] - (k - 1) * self.dilation
        if k * out_ch < in_ch:
            return self._narrow(x, t)
        y = None
        # the taps' weights by split: StridedSlice copies them slowly on CPU, a full-length one (k == 1) slowest
        taps = split(self.weight, 1, axis=0)
        for j in range(k):
            w = taps[j]
            window = x if k == 1 else rows(x, j * self.dilation, t)
            tap = self.matmul(window.reshape(b * t, in_ch), w.reshape(out_ch, in_ch))
            y = tap if y is None else y + tap
        return ops.bias_add(y, self.bias).reshape(b, t, out_ch)

    def _narrow(self, x, t: int):
        """A conv with fewer outputs than inputs over all its taps (EnCodec's last: 7 taps, 32 channels in, 1 out):
        one matmul gives every tap's output at every row, and those narrow outputs are shifted and summed instead of
        the wide inputs (each input window would be a copy of the chunk's width).
        The codec's convs reach it where mindbark's CPU kernels do not apply (`PaddedConv1d`)."""
        k, out_ch, in_ch = self.weight.shape
        b, rows_in = x.shape[0], x.shape[1]
        z = self.matmul(x.reshape(b * rows_in, in_ch), self.weight.reshape(k * out_ch, in_ch))
        taps = split(z.reshape(b, rows_in, k * out_ch), out_ch, axis=2)
        y = rows(taps[0], 0, t)
        for j in range(1, k):
            y = y + rows(taps[j], j * self.dilation, t)
        return ops.bias_add(y.reshape(b * t, out_ch), self.bias).reshape(b, t, out_ch)


class ConvTranspose1d(nn.Cell):
    """Transposed 1-D convolution with kernel 2 * stride (SEANet's upsampling) over channels-last signals, in
    chunks: (B, T, Cin) and the previous chunk's overhang (B, stride, Cout) -> (B, T * stride, Cout) and this
    chunk's overhang. A signal's first chunk takes a zero overhang; past its end the overhang is dropped, which is
    the right trim of a causal transposed convolution.

    One matmul gives both taps of every input frame (B, T, 2, stride * Cout). Frame i's first tap covers output rows
    i*s..(i+1)*s-1 and its second one the next s rows, so the second taps land shifted by one stride, after the
    previous chunk's overhang: one concat and one add, where summing zero-padded copies of both took two concats,
    two adds and a trim, each over the whole output. The weight is kept as (2 * stride * out, in); checkpoints
    hold torch's (in, out, k) (`checkpoint_layout`).
    """

    def __init__(self, in_ch: int, out_ch: int, kernel_size: int, stride: int, dtype=ms.float32):
        super().__init__()
        if kernel_size != 2 * stride:
            raise ValueError(f"kernel size {kernel_size} is not twice the stride {stride}")
        self.weight = _param((kernel_size * out_ch, in_ch), dtype, "weight")
        self.bias = _param((out_ch,), dtype, "bias")
        self.stride = stride
        self.checkpoint_layout = {"weight": ((in_ch, out_ch, kernel_size), self._layout)}
        self.matmul = ops.MatMul(transpose_b=True)

    @staticmethod
    def _layout(w: np.ndarray) -> np.ndarray:  # (in, out, k) -> (k, out, in) -> (k * out, in)
        return w.transpose(2, 1, 0).reshape(-1, w.shape[0])

    def construct(self, x, overhang):
        b, t, in_ch = x.shape
        s, out_ch = self.stride, self.bias.shape[0]
        z = self.matmul(x.reshape(b * t, in_ch), self.weight).reshape(b, t, 2, s * out_ch)
        # split, not z[:, :, c]: that StridedSlice over a middle axis runs far slower than a copy on CPU
        first, second = split(z, 1, axis=2)
        first, second = first.reshape(b * t * s, out_ch), second.reshape(b, t * s, out_ch)
        shifted = overhang if t == 1 else concat([overhang, rows(second, 0, (t - 1) * s)], axis=1)
        y = ops.bias_add(first, self.bias) + shifted.reshape(b * t * s, out_ch)
        return y.reshape(b, t * s, out_ch), rows(second, (t - 1) * s, s)


class StridedConv1d(nn.Cell):
    """Unpadded 1-D convolution with a stride over channels-last signals: (B, T, Cin) -> (B, (T - k) // s + 1,
    Cout); callers pad.

    The signal is read as blocks of `stride` rows, (B, T / s, s * Cin), a free reshape: output row i reads blocks
    i, i + 1, ... (ceil(k / s) of them), so the convolution is one matmul per block offset over a row slice of the
    blocks, with no copied input windows. A last block only partly under the kernel (k = 3, s = 2) reads its first
    taps' columns only. The weight is kept as (out, k * in), columns tap-major, so a block's weight is a column
    slab; checkpoints hold torch's (out, in, k).
    """

    def __init__(self, in_ch: int, out_ch: int, kernel_size: int, stride: int, bias: bool = True, dtype=ms.float32):
        super().__init__()
        self.weight = _param((out_ch, kernel_size * in_ch), dtype, "weight")
        self.bias = _param((out_ch,), dtype, "bias") if bias else None
        self.kernel_size = kernel_size
        self.stride = stride
        self.checkpoint_layout = {"weight": ((out_ch, in_ch, kernel_size),
                                             lambda w: w.transpose(0, 2, 1).reshape(w.shape[0], -1))}
        self.matmul = ops.MatMul(transpose_b=True)

    def out_length(self, t: int) -> int:
        return (t - self.kernel_size) // self.stride + 1

    def construct(self, x):
        k, s = self.kernel_size, self.stride
        b, t, in_ch = x.shape
        n = (t - k) // s + 1
        n_blocks = (k + s - 1) // s
        used = (n + n_blocks - 1) * s  # rows the blocks cover; past t only a partial block's unused taps would read
        if used > t:
            x = concat([x, ops.zeros((b, used - t, in_ch), x.dtype)], 1)
        elif used < t:
            x = rows(x, 0, used)
        blocks = x.reshape(b, n + n_blocks - 1, s * in_ch)
        if k % s == 0:
            weights = (self.weight,) if n_blocks == 1 else split(self.weight, s * in_ch, axis=1)
        else:  # the last block's taps: the first k % s columns of its input, the last k % s taps of the weight
            taps = split(self.weight, in_ch, axis=1)
            weights = tuple(concat(taps[j * s:min(k, j * s + s)], 1) for j in range(n_blocks))
        y = None
        for j in range(n_blocks):
            width = min(s, k - j * s)
            part = blocks if width == s else concat(split(blocks, in_ch, axis=2)[:width], 2) if width > 1 else \
                split(blocks, in_ch, axis=2)[0]
            window = part if n_blocks == 1 else rows(part, j, n)
            tap = self.matmul(window.reshape(b * n, width * in_ch), weights[j])
            y = tap if y is None else y + tap
        if self.bias is not None:
            y = ops.bias_add(y, self.bias)
        return y.reshape(b, n, y.shape[1])


class LSTM(nn.Cell):
    """A unidirectional multi-layer LSTM over (B, T, C) signals with torch's gate order and parameter names
    (`lstm.weight_ih_l0` ...), from a given state.

    On CPU in fp32 each layer is one GEMM for every step's input projection and mindbark's recurrence kernel
    (`kernels/lstm.cc`), since `nn.LSTM` takes twice torch's time there. Elsewhere `nn.LSTM` runs, in the
    parameters' dtype.
    """

    def __init__(self, input_size: int, hidden_size: int, num_layers: int, dtype=ms.float32):
        super().__init__()
        self.lstm = nn.LSTM(input_size, hidden_size, num_layers, batch_first=True, dtype=dtype)
        self.recurrence = kernels.custom_op("LstmLayer", 4)
        self.matmul = ops.MatMul(transpose_b=True)

    def run(self, x, h0, c0):
        """(B, T, C), (layers, B, H) twice -> (B, T, H) and the last step's h and c, (layers, B, H) each."""
        if self.recurrence is None or x.dtype != ms.float32:
            y, (h, c) = self.lstm(x, (h0, c0))
            return y, h, c
        b, t, _ = x.shape
        y, hs, cs = x, (), ()
        for i in range(self.lstm.num_layers):
            bias = self.lstm.b_ih_list[i] + self.lstm.b_hh_list[i]
            projected = ops.bias_add(self.matmul(y.reshape(b * t, y.shape[2]), self.lstm.w_ih_list[i]), bias)
            steps = self.recurrence(projected.reshape(b, t, projected.shape[1]), self.lstm.w_hh_list[i], h0[i],
                                    c0[i])  # (2, B, T, H): h and c after every step
            h, c = split(steps, 1, axis=0)  # by split: StridedSlice copies steps[0] slowly
            dim = h.shape[-1]
            y = h.reshape(b, t, dim)
            hs = hs + (rows(y, t - 1, 1).reshape(1, b, dim),)
            cs = cs + (rows(c.reshape(b, t, dim), t - 1, 1).reshape(1, b, dim),)
        return y, concat(hs, axis=0), concat(cs, axis=0)
