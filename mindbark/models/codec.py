"""The decoder half of EnCodec 24 kHz as Bark uses it: residual-VQ lookup, then the SEANet decoder.

Layer names and indices follow `transformers`' `EncodecModel` (`decoder.layers.N...`) so conversion is a copy once
weight norm is folded. Signals run channels-last (B, T, C): every convolution is then a matmul on rows, and no
Transpose kernel is needed (on CPU those keep twice their output for the life of the graph).

Every layer of the 24 kHz decoder is causal (left-padded convolutions, right-trimmed transposed ones, a forward
LSTM), so codes are decoded in fixed chunks that carry each layer's state to the next: one compiled graph serves
every length, memory stays that of one chunk, and the audio equals a one-shot decode.
"""

import mindspore as ms
import numpy as np
from mindspore import Parameter, Tensor, nn, ops
from mindspore.common.initializer import initializer

from .. import kernels, layers
from ..config import CodecConfig
from ..graph_ops import concat, rows
from ..jit import compiled
from ..layers import Conv1d, ConvTranspose1d

# frames per compiled decoder step; a step costs its frames' work only (no fixed cost per step to amortize), so
# a larger chunk would only pad more
CHUNK = 128


def _tail(x, n: int):
    """The last n rows of (B, T, C)."""
    return rows(x, x.shape[1] - n, n)


def causal_context(x, context, first, reflect: bool):
    """The rows a causal conv reads before chunk x (B, T, C): the previous chunk's last rows (`context`), or at the
    signal's start (`first`) its reflection, x[pad], ..., x[1] (zeros without `reflect`), as EnCodec pads."""
    pad = context.shape[1]
    if reflect:
        # a signal no longer than the padding is reflected after zeros are appended, as EnCodec does
        short = x.shape[1] <= pad
        ext = concat([x, ops.zeros((x.shape[0], pad + 1 - x.shape[1], x.shape[2]), x.dtype)], 1) if short else x
        start = ops.gather(ext, Tensor(np.arange(pad, 0, -1), ms.int32), 1)
    else:
        start = ops.zeros(context.shape, x.dtype)
    return ops.select(ops.tile(first.reshape(1, 1, 1), context.shape), start, context)


class PaddedConv1d(nn.Cell):
    """EnCodec's causal conv: left-padded by (k - 1) * dilation rows so the output keeps T rows.

    The padding is the end of the previous chunk's input (`context`, carried as state) or, at the start of the
    signal, its reflection (or zeros, per `pad_mode`). On CPU in fp32 the taps are summed on the outputs by a kernel
    of mindbark's; elsewhere the context is concatenated to the chunk for `Conv1d`.
    """

    def __init__(self, cfg: CodecConfig, in_ch: int, out_ch: int, kernel_size: int, dilation: int = 1,
                 dtype=ms.float32):
        super().__init__()
        self.conv = Conv1d(in_ch, out_ch, kernel_size, dilation, dtype)
        self.pad = (kernel_size - 1) * dilation
        self.reflect = cfg.pad_mode == "reflect"
        self.state_shape = (self.pad, in_ch)
        self.sum_taps = kernels.custom_op("CausalTaps", 3) if self.pad else None

    def construct(self, x, context=None, first=None):  # (B, T, C) -> (B, T, Cout), new context
        if not self.pad:
            return self.conv(x), None
        context = causal_context(x, context, first, self.reflect)
        if self.sum_taps is not None and x.dtype == ms.float32 and x.shape[1] >= self.pad:
            return self._taps_on_outputs(x, context), _tail(x, self.pad)
        x = concat([context, x], axis=1)
        return self.conv(x), _tail(x, self.pad)

    def _taps_on_outputs(self, x, context):
        """One matmul of the chunk and one of its context by every tap's weight at once, and the taps summed on
        those outputs by mindbark's kernel (`kernels/conv.cc`): no concatenated input, no copied windows, which
        on CPU cost more than the matmuls."""
        k, out_ch, in_ch = self.conv.weight.shape
        w = self.conv.weight.reshape(k * out_ch, in_ch)
        b, t, _ = x.shape
        z = self.conv.matmul(x.reshape(b * t, in_ch), w).reshape(b, t, k * out_ch)
        zc = self.conv.matmul(context.reshape(b * self.pad, in_ch), w).reshape(b, self.pad, k * out_ch)
        return self.sum_taps(z, zc, self.conv.bias)


class PaddedConvTranspose1d(nn.Cell):
    """EnCodec's causal upsampling conv (kernel 2 * stride): the overhang past each chunk (no bias) is carried
    into the next chunk's first rows, and past the signal's end it is trimmed."""

    def __init__(self, cfg: CodecConfig, in_ch: int, out_ch: int, kernel_size: int, stride: int, dtype=ms.float32):
        super().__init__()
        self.conv = ConvTranspose1d(in_ch, out_ch, kernel_size, stride, dtype)
        self.state_shape = (stride, out_ch)

    def construct(self, x, overhang, first=None):  # (B, T, C) -> (B, T * stride, Cout), new overhang
        return self.conv(x, overhang)


class LSTM(layers.LSTM):
    """Residual LSTM over time on a (B, T, C) signal; its state (h and c stacked) carries across chunks."""

    def __init__(self, dim: int, num_layers: int, dtype=ms.float32):
        super().__init__(dim, dim, num_layers, dtype)
        self.state_shape = (2, num_layers, dim)  # per batch item: the batch axis goes after num_layers

    def construct(self, x, state, first=None):
        y, h, c = self.run(x, state[0], state[1])
        return y + x, ops.stack([h, c])


class ResnetBlock(nn.Cell):
    def __init__(self, cfg: CodecConfig, dim: int, dilation: int, dtype=ms.float32):
        super().__init__()
        hidden = dim // cfg.compress
        self.block = nn.CellList([  # ELU, conv, ELU, conv: the indices are transformers' names
            nn.ELU(),
            PaddedConv1d(cfg, dim, hidden, cfg.residual_kernel_size, dilation=dilation, dtype=dtype),
            nn.ELU(),
            PaddedConv1d(cfg, hidden, dim, 1, dtype=dtype),
        ])
        self.shortcut = PaddedConv1d(cfg, dim, dim, 1, dtype=dtype) if cfg.use_conv_shortcut else None
        self.state_shape = self.block[1].state_shape

    def construct(self, x, context, first):
        y, context = self.block[1](self.block[0](x), context, first)
        y, _ = self.block[3](self.block[2](y))
        return (x if self.shortcut is None else self.shortcut(x)[0]) + y, context


class Stack(nn.Cell):
    """Layers run in order on channels-last chunks; every layer with a `state_shape` takes the state the previous
    chunk left and returns its own (`state_shapes`), the rest (ELUs) are plain functions."""

    def __init__(self, layers: list):
        super().__init__()
        self.layers = nn.CellList(layers)  # names follow transformers' {encoder,decoder}.layers.N
        self.stateful = tuple(hasattr(layer, "state_shape") for layer in layers)
        self.state_shapes = [layer.state_shape for layer in layers if hasattr(layer, "state_shape")]

    def initial_states(self, batch: int, dtype) -> tuple:
        """The states before a signal's first chunk: zeros."""
        shapes = [(s[0], s[1], batch, s[2]) if len(s) == 3 else (batch,) + s for s in self.state_shapes]
        return tuple(Tensor(np.zeros(shape, np.float32), dtype) for shape in shapes)

    def construct(self, x, states, first):
        new = ()
        for i in range(len(self.layers)):
            if self.stateful[i]:
                x, state = self.layers[i](x, states[len(new)], first)
                new = new + (state,)
            else:
                x = self.layers[i](x)
        return x, new


class SEANetDecoder(Stack):
    """EnCodec's SEANet decoder on channels-last signals: (B, T, hidden) -> (B, T * hop_length, channels)."""

    def __init__(self, cfg: CodecConfig, dtype=ms.float32):
        scale = 2 ** len(cfg.upsampling_ratios)
        layers = [PaddedConv1d(cfg, cfg.hidden_size, scale * cfg.num_filters, cfg.kernel_size, dtype=dtype),
                  LSTM(scale * cfg.num_filters, cfg.num_lstm_layers, dtype)]
        for ratio in cfg.upsampling_ratios:
            ch = scale * cfg.num_filters
            layers += [nn.ELU(), PaddedConvTranspose1d(cfg, ch, ch // 2, 2 * ratio, ratio, dtype)]
            layers += [ResnetBlock(cfg, ch // 2, cfg.dilation_growth_rate ** j, dtype)
                       for j in range(cfg.num_residual_layers)]
            scale //= 2
        layers += [nn.ELU(), PaddedConv1d(cfg, cfg.num_filters, cfg.audio_channels, cfg.last_kernel_size, dtype=dtype)]
        super().__init__(layers)


class Codebook(nn.Cell):
    def __init__(self, cfg: CodecConfig, dtype):
        super().__init__()
        self.embed = Parameter(initializer("zeros", (cfg.codebook_size, cfg.codebook_dim), dtype), name="embed")


class QuantizerLevel(nn.Cell):
    def __init__(self, cfg: CodecConfig, dtype):
        super().__init__()
        self.codebook = Codebook(cfg, dtype)


class Quantizer(nn.Cell):
    """Residual VQ decode: the sum of one codebook vector per level."""

    def __init__(self, cfg: CodecConfig, dtype):
        super().__init__()
        self.layers = nn.CellList([QuantizerLevel(cfg, dtype) for _ in range(cfg.num_quantizers)])

    def construct(self, codes):  # (B, n_q, T) -> (B, T, D)
        x = ops.gather(self.layers[0].codebook.embed, codes[:, 0], 0)
        for i in range(1, codes.shape[1]):
            x = x + ops.gather(self.layers[i].codebook.embed, codes[:, i], 0)
        return x


class EncodecDecoder(nn.Cell):
    """Codes (B, n_q, T) at 75 Hz to a waveform (B, T * hop_length) at 24 kHz.

    Args:
        cfg: codec shapes.
        dtype: parameter dtype of the convolutions.
    """

    def __init__(self, cfg: CodecConfig, dtype=ms.float32):
        super().__init__()
        self.config = cfg
        self.dtype = dtype
        self.quantizer = Quantizer(cfg, dtype)
        self.decoder = SEANetDecoder(cfg, dtype)
        self._step = compiled(self.construct, self, "codec")

    def construct(self, codes, states, first):
        """Waveforms (B, T * hop_length) of codes (B, n_q, T) that follow the ones `states` came from (or start
        the signal, when `first`), and the states after them."""
        y, states = self.decoder(self.quantizer(codes), states, first)
        return y.reshape(y.shape[0], -1), states

    def decode(self, codes: Tensor) -> Tensor:
        """Waveforms (B, T * hop_length) for int codes (B, n_q, T), decoded CHUNK frames at a time.

        The last chunk is padded with code 0 and its audio trimmed: nothing depends on later frames. Codes shorter
        than the first convolution's padding are the exception (EnCodec reflects them after padding with zeros),
        and decode in one piece.
        """
        b, n_q, t = codes.shape
        if not 1 <= n_q <= self.config.num_quantizers:
            raise ValueError(f"codes have {n_q} codebooks; the codec has {self.config.num_quantizers}")
        codes = codes.asnumpy() if isinstance(codes, Tensor) else np.asarray(codes)
        size = CHUNK if t > self.config.kernel_size else t
        codes = np.pad(codes, ((0, 0), (0, 0), (0, -t % size)))
        states, audio = self.decoder.initial_states(b, self.dtype), []
        for i, start in enumerate(range(0, codes.shape[2], size)):
            chunk = Tensor(codes[:, :, start:start + size].astype(np.int32))
            out, states = self._step(chunk, ms.mutable(states), Tensor(i == 0))
            audio.append(out.asnumpy())
        return Tensor(np.concatenate(audio, axis=1)[:, :t * self.config.hop_length])
