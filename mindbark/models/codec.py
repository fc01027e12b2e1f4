"""The decoder half of EnCodec 24 kHz as Bark uses it: residual-VQ lookup, then the SEANet decoder.

Layer names and indices follow `transformers`' `EncodecModel` (`decoder.layers.N...`) so conversion is a copy once
weight norm is folded.
"""

import mindspore as ms
from mindspore import Parameter, Tensor, nn, ops
from mindspore.common.initializer import initializer

from ..config import CodecConfig
from ..jit import compiled
from ..layers import Conv1d, ConvTranspose1d


def _pad1d(x, left: int, right: int, mode: str):
    """Pad the time axis by concatenation (ops.pad is several times slower on CPU).

    Reflect padding of a signal shorter than the pad gets zeros first, as EnCodec does.
    """
    length = x.shape[-1]
    extra = max(left, right) - length + 1 if mode == "reflect" and length <= max(left, right) else 0
    if extra:
        x = ops.concat([x, ops.zeros(x.shape[:-1] + (extra,), x.dtype)], axis=-1)
    if mode == "reflect":
        parts = [ops.flip(x[..., 1:left + 1], (-1,))] if left else []
        parts += [x] + ([ops.flip(x[..., x.shape[-1] - right - 1:-1], (-1,))] if right else [])
    else:
        zeros = [ops.zeros(x.shape[:-1] + (n,), x.dtype) for n in (left, right)]
        parts = ([zeros[0]] if left else []) + [x] + ([zeros[1]] if right else [])
    x = ops.concat(parts, axis=-1) if len(parts) > 1 else x
    return x[..., : x.shape[-1] - extra]


class PaddedConv1d(nn.Cell):
    """EnCodec's conv: causal (left) or centred padding so the output keeps ceil(T / stride) frames."""

    def __init__(self, cfg: CodecConfig, in_ch: int, out_ch: int, kernel_size: int, stride: int = 1,
                 dilation: int = 1, dtype=ms.float32):
        super().__init__()
        self.conv = Conv1d(in_ch, out_ch, kernel_size, stride, dilation, dtype)
        self.causal = cfg.use_causal_conv
        self.pad_mode = cfg.pad_mode
        self.kernel = (kernel_size - 1) * dilation + 1
        self.stride = stride
        self.padding_total = self.kernel - stride

    def construct(self, x):  # (B, C, T)
        length = x.shape[-1]
        n_frames = -(-(length - self.kernel + self.padding_total) // self.stride)
        extra = n_frames * self.stride + self.kernel - self.padding_total - length
        if self.causal:
            left, right = self.padding_total, extra
        else:
            right = self.padding_total // 2
            left, right = self.padding_total - right, right + extra
        return self.conv(_pad1d(x, left, right, self.pad_mode))


class PaddedConvTranspose1d(nn.Cell):
    """EnCodec's upsampling conv: the kernel's overhang is trimmed (all of it on the right when causal)."""

    def __init__(self, cfg: CodecConfig, in_ch: int, out_ch: int, kernel_size: int, stride: int, dtype=ms.float32):
        super().__init__()
        self.conv = ConvTranspose1d(in_ch, out_ch, kernel_size, stride, dtype)
        total = kernel_size - stride
        right = -int(-total * cfg.trim_right_ratio // 1) if cfg.use_causal_conv else total // 2
        self.trim_left, self.trim_right = total - right, right

    def construct(self, x):
        y = self.conv(x)
        return y[..., self.trim_left: y.shape[-1] - self.trim_right]


class LSTM(nn.Cell):
    """Residual LSTM over time on a (B, C, T) signal."""

    def __init__(self, dim: int, num_layers: int):
        super().__init__()
        self.lstm = nn.LSTM(dim, dim, num_layers)

    def construct(self, x):
        x = x.transpose(2, 0, 1)  # (T, B, C)
        return (self.lstm(x)[0] + x).transpose(1, 2, 0)


class ResnetBlock(nn.Cell):
    def __init__(self, cfg: CodecConfig, dim: int, dilation: int, dtype=ms.float32):
        super().__init__()
        hidden = dim // cfg.compress
        self.block = nn.CellList([
            nn.ELU(),
            PaddedConv1d(cfg, dim, hidden, cfg.residual_kernel_size, dilation=dilation, dtype=dtype),
            nn.ELU(),
            PaddedConv1d(cfg, hidden, dim, 1, dtype=dtype),
        ])
        self.shortcut = PaddedConv1d(cfg, dim, dim, 1, dtype=dtype) if cfg.use_conv_shortcut else nn.Identity()

    def construct(self, x):
        y = x
        for layer in self.block:
            y = layer(y)
        return self.shortcut(x) + y


class SEANetDecoder(nn.Cell):
    def __init__(self, cfg: CodecConfig, dtype=ms.float32):
        super().__init__()
        scale = 2 ** len(cfg.upsampling_ratios)
        layers = [PaddedConv1d(cfg, cfg.hidden_size, scale * cfg.num_filters, cfg.kernel_size, dtype=dtype),
                  LSTM(scale * cfg.num_filters, cfg.num_lstm_layers)]
        for ratio in cfg.upsampling_ratios:
            ch = scale * cfg.num_filters
            layers += [nn.ELU(), PaddedConvTranspose1d(cfg, ch, ch // 2, 2 * ratio, ratio, dtype)]
            layers += [ResnetBlock(cfg, ch // 2, cfg.dilation_growth_rate ** j, dtype)
                       for j in range(cfg.num_residual_layers)]
            scale //= 2
        layers += [nn.ELU(), PaddedConv1d(cfg, cfg.num_filters, cfg.audio_channels, cfg.last_kernel_size, dtype=dtype)]
        self.layers = nn.CellList(layers)

    def construct(self, x):
        for layer in self.layers:
            x = layer(x)
        return x


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

    def construct(self, codes):  # (B, n_q, T) -> (B, D, T)
        x = ops.gather(self.layers[0].codebook.embed, codes[:, 0], 0)
        for i in range(1, codes.shape[1]):
            x = x + ops.gather(self.layers[i].codebook.embed, codes[:, i], 0)
        return x.transpose(0, 2, 1)


BUCKET = 75  # frames (one second at 75 Hz) per compiled decoder graph length


class EncodecDecoder(nn.Cell):
    """Codes (B, n_q, T) at 75 Hz to a waveform (B, T * hop_length) at 24 kHz.

    Args:
        cfg: codec shapes.
        dtype: parameter dtype of the convolutions.
    """

    def __init__(self, cfg: CodecConfig, dtype=ms.float32):
        super().__init__()
        self.config = cfg
        self.quantizer = Quantizer(cfg, dtype)
        self.decoder = SEANetDecoder(cfg, dtype)
        self._step = compiled(self.construct)

    def construct(self, codes):
        return self.decoder(self.quantizer(codes)).squeeze(1)

    def decode(self, codes: Tensor) -> Tensor:
        """Waveforms (B, T * hop_length) for int codes (B, n_q, T).

        Every layer is causal (left-padded convolutions, right-trimmed transposed ones, a forward LSTM), so frames
        appended at the end change nothing before them: codes are padded up to a multiple of BUCKET frames and
        the audio trimmed back, and one compiled graph serves every length in a bucket. The exception is a signal
        shorter than a reflect padding, which EnCodec pads with zeros first; such short codes run unpadded.
        """
        b, n_q, t = codes.shape
        if not 1 <= n_q <= self.config.num_quantizers:
            raise ValueError(f"codes have {n_q} codebooks; the codec has {self.config.num_quantizers}")
        padded = -(-t // BUCKET) * BUCKET
        if padded != t and t > self.config.kernel_size:
            codes = ops.concat([codes, ops.zeros((b, n_q, padded - t), codes.dtype)], axis=2)
        return self._step(codes)[:, :t * self.config.hop_length]
