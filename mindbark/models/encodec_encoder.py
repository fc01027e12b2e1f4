"""The encoder half of EnCodec 24 kHz: the SEANet encoder, then residual-VQ encoding into codebook ids.

Bark's checkpoints carry it beside the decoder; mindbark keeps it in a file of its own (`codec_encoder.safetensors`),
loaded only to make a voice from a recording. Layer names and indices follow `transformers`' `EncodecModel`
(`encoder.layers.N...`). Like the decoder (`codec.py`), every layer is causal: left-padded convolutions (the first
chunk's padding is the signal's start reflected) and a forward LSTM, so audio is encoded in fixed chunks that carry
each layer's state: one compiled graph for every length, and codes equal to a one-shot encode. Audio is cut to
whole frames first (see `encode`), so no layer pads on the right.
"""

import mindspore as ms
import numpy as np
from mindspore import Tensor, nn, ops

from ..config import CodecConfig
from ..graph_ops import concat, split
from ..jit import compiled
from ..layers import StridedConv1d
from .codec import LSTM, PaddedConv1d, Quantizer, ResnetBlock, Stack, _tail, causal_context

CHUNK = 250  # frames per compiled encoder step: 3.3 s of audio


class Downsample(nn.Cell):
    """EnCodec's strided causal conv (kernel 2 * stride): left-padded by `stride` rows, the previous chunk's last
    ones or the signal's start reflected."""

    def __init__(self, cfg: CodecConfig, in_ch: int, out_ch: int, stride: int, dtype=ms.float32):
        super().__init__()
        self.conv = StridedConv1d(in_ch, out_ch, 2 * stride, stride, dtype=dtype)
        self.reflect = cfg.pad_mode == "reflect"
        self.state_shape = (stride, in_ch)

    def construct(self, x, context, first):  # (B, T, C) -> (B, T / stride, Cout), new context
        context = causal_context(x, context, first, self.reflect)
        return self.conv(concat([context, x], axis=1)), _tail(x, context.shape[1])


class SEANetEncoder(Stack):
    """EnCodec's SEANet encoder on channels-last signals: (B, T * hop_length, channels) -> (B, T, hidden)."""

    def __init__(self, cfg: CodecConfig, dtype=ms.float32):
        layers = [PaddedConv1d(cfg, cfg.audio_channels, cfg.num_filters, cfg.kernel_size, dtype=dtype)]
        ch = cfg.num_filters
        for ratio in reversed(cfg.upsampling_ratios):
            layers += [ResnetBlock(cfg, ch, cfg.dilation_growth_rate ** j, dtype)
                       for j in range(cfg.num_residual_layers)]
            layers += [nn.ELU(), Downsample(cfg, ch, 2 * ch, ratio, dtype)]
            ch *= 2
        layers += [LSTM(ch, cfg.num_lstm_layers), nn.ELU(),
                   PaddedConv1d(cfg, ch, cfg.hidden_size, cfg.last_kernel_size, dtype=dtype)]
        super().__init__(layers)


def rvq_encode(x, codebooks, n_q: int):
    """Residual VQ: per level the nearest codebook row by Euclidean distance, subtracted before the next level.

    Args:
        x: (N, D) embeddings.
        codebooks: (n_q, K, D).
    Returns:
        (n_q, N) int32 ids.
    """
    argmax = ops.Argmax(axis=-1, output_type=ms.int32)
    matmul = ops.MatMul(transpose_b=True)
    books = split(codebooks, 1, axis=0)
    xx = (x * x).sum(axis=1, keepdims=True)
    ids = ()
    for i in range(n_q):
        e = books[i].reshape(codebooks.shape[1], codebooks.shape[2])
        # the distance as transformers writes it, terms in its order: the same rounding decides near ties alike
        dist = -((xx - 2 * matmul(x, e)) + (e * e).sum(axis=1).reshape(1, -1))
        idx = argmax(dist)
        ids = ids + (idx.reshape(1, -1),)
        x = x - ops.gather(e, idx, 0)
        if i + 1 < n_q:
            xx = (x * x).sum(axis=1, keepdims=True)
    return concat(ids, axis=0)


class EncodecEncoder(nn.Cell):
    """24 kHz audio (B, T * hop_length) to codes (B, n_q, T) at 75 Hz.

    The codebooks are the decoder's (`EncodecDecoder.quantizer`), passed in: they are stored once, with the decoder.

    Args:
        cfg: codec shapes.
        dtype: parameter dtype of the convolutions.
    """

    def __init__(self, cfg: CodecConfig, dtype=ms.float32):
        super().__init__()
        self.config = cfg
        self.dtype = dtype
        self.encoder = SEANetEncoder(cfg, dtype)
        self._step = compiled(self.construct, self, "codec_encoder")

    def construct(self, audio, states, first, codebooks):
        """Codes (B, n_q, T) for audio (B, T * hop_length) that follows the chunk `states` came from (or starts the
        signal, when `first`), and the states after it."""
        b, n = audio.shape
        y, states = self.encoder(audio.reshape(b, n, 1), states, first)  # (B, T, D)
        t, d = y.shape[1], y.shape[2]
        ids = rvq_encode(y.reshape(b * t, d), codebooks, codebooks.shape[0])  # (n_q, B * T)
        return ops.transpose(ids.reshape(-1, b, t), (1, 0, 2)), states

    def encode(self, audio: np.ndarray, quantizer: Quantizer, n_q: int) -> np.ndarray:
        """Codes (B, n_q, T // hop_length) of float audio (B, T) at 24 kHz, CHUNK frames at a time.

        Only whole frames are encoded: a length that is not a multiple of hop_length loses its first T % hop_length
        samples (under 14 ms), so the codes end with the audio and no layer pads its end. The last chunk is padded
        with zeros and its codes dropped: nothing depends on later samples. Every chunk has CHUNK frames, so one
        graph serves every length but the shortest.

        Args:
            audio: (B, T) samples.
            quantizer: the decoder's residual-VQ tables.
            n_q: codebooks to encode (8 for Bark: 6 kbps).
        """
        hop = self.config.hop_length
        b, t = audio.shape
        if not 1 <= n_q <= len(quantizer.layers):
            raise ValueError(f"n_q {n_q} is not in [1, {len(quantizer.layers)}]")
        frames = t // hop
        if frames == 0:
            raise ValueError(f"audio of {t} samples is shorter than one codec frame ({hop})")
        audio = np.asarray(audio, np.float32)[:, t - frames * hop:]
        # a signal shorter than the last convolution's padding is reflected after zeros, as EnCodec pads it: that
        # needs its true length, so it is encoded in one piece of its own size
        size = CHUNK if frames > self.config.last_kernel_size else frames
        audio = np.pad(audio, ((0, 0), (0, (-frames % size) * hop)))
        books = ops.stack([quantizer.layers[i].codebook.embed for i in range(n_q)])
        states, codes = self.encoder.initial_states(b, self.dtype), []
        for i, start in enumerate(range(0, audio.shape[1], size * hop)):
            chunk = Tensor(audio[:, start:start + size * hop], self.dtype)
            out, states = self._step(chunk, ms.mutable(states), Tensor(i == 0), books)
            codes.append(out.asnumpy())
        return np.concatenate(codes, axis=2)[:, :, :frames].astype(np.int64)
