"""HuBERT base as the voice cloner reads it: 16 kHz audio to the hidden states after one transformer layer.

Names follow `transformers`' `HubertModel` (`feature_extractor.conv_layers.N.conv`, `feature_projection.projection`,
`encoder.pos_conv_embed.conv`, `encoder.layers.N.attention.q_proj` ...), so conversion is a copy once weight norm is
folded. Signals run channels-last (B, T, C), every convolution a matmul on rows.

HuBERT is not causal (its transformer attends both ways, its first GroupNorm normalises over the whole signal), so a
signal runs in one piece. It is zero-padded to a bucket of BUCKET frames, one compiled graph per bucket, and masks
keep the padding out of every result: GroupNorm's statistics, the positional convolution's input (zeros past the
end, as its own padding gives) and attention's keys; each frame then equals an unpadded run's.
"""

import math

import mindspore as ms
import numpy as np
from mindspore import Tensor, nn, ops

from ..config import HubertConfig
from ..graph_ops import arange, concat, rows, split
from ..jit import compiled
from ..layers import GELU, LayerNorm, Linear, StridedConv1d, _param
from .gpt import attend, attention_bias, merge_heads, split_heads

BUCKET = 250  # frames (5 s) per length bucket: three graphs cover the 15 s a voice keeps
GROUP_NORM_EPS = 1e-5  # torch's GroupNorm default, which HuBERT's config does not set


def _valid(n, length: int):
    """(length,) float32: 1 on the first n rows (n an int32 scalar tensor), 0 past them."""
    return (arange(length) < n.astype(ms.int64)).astype(ms.float32)


class ChannelNorm(nn.Cell):
    """GroupNorm with one group per channel: each channel normalised over the valid rows of the signal.

    The sums over rows are matmuls with the valid-row mask; the per-channel scale is tiled to the signal's shape,
    as a broadcasting multiply's CPU kernel would keep buffers of 4x its output, the model's largest, for the
    graph's life (fine.py). MindSpore's inference BatchNorm, which would apply it in one op, is far slower on CPU.
    """

    def __init__(self, dim: int, dtype=ms.float32):
        super().__init__()
        self.weight = _param((dim,), dtype, "weight")
        self.bias = _param((dim,), dtype, "bias")

    def construct(self, x, n):  # (1, T, C), valid rows n -> (1, T, C)
        _, t, c = x.shape
        valid = _valid(n, t).reshape(1, t)
        count = n.astype(ms.float32)
        flat = x.reshape(t, c)
        mean = ops.matmul(valid, flat) / count  # (1, C)
        centred = ops.bias_add(flat, -mean.reshape(c))
        var = ops.matmul(valid, centred * centred) / count
        scale = self.weight.reshape(1, c) / ops.sqrt(var + GROUP_NORM_EPS)
        return ops.bias_add(centred * ops.tile(scale, (t, 1)), self.bias).reshape(1, t, c)


class ConvLayer(nn.Cell):
    """A feature-encoder convolution and its GELU; the first one also group-normed (HuBERT base)."""

    def __init__(self, cfg: HubertConfig, i: int, dtype=ms.float32):
        super().__init__()
        in_ch = cfg.conv_dim[i - 1] if i else 1
        self.conv = StridedConv1d(in_ch, cfg.conv_dim[i], cfg.conv_kernel[i], cfg.conv_stride[i], cfg.conv_bias,
                                  dtype)
        self.layer_norm = ChannelNorm(cfg.conv_dim[i], dtype) if i == 0 else None
        self.act = GELU()

    def construct(self, x, n=None):
        x = self.conv(x)
        if self.layer_norm is not None:
            x = self.layer_norm(x, n)
        return self.act(x)


class FeatureEncoder(nn.Cell):
    def __init__(self, cfg: HubertConfig, dtype=ms.float32):
        super().__init__()
        self.conv_layers = nn.CellList([ConvLayer(cfg, i, dtype) for i in range(len(cfg.conv_dim))])

    def construct(self, x, n0):  # (B, S, 1) samples, n0 valid rows after the first conv -> (B, T, C)
        x = self.conv_layers[0](x, n0)
        for i in range(1, len(self.conv_layers)):
            x = self.conv_layers[i](x)
        return x


class FeatureProjection(nn.Cell):
    def __init__(self, cfg: HubertConfig, dtype=ms.float32):
        super().__init__()
        self.layer_norm = LayerNorm(cfg.conv_dim[-1], dtype=dtype)
        self.projection = Linear(cfg.conv_dim[-1], cfg.hidden_size, dtype=dtype)

    def construct(self, x):
        return self.projection(self.layer_norm(x))


class PositionalConv(nn.Cell):
    """HuBERT's positional embedding: a grouped convolution (128 taps, 16 groups at base) centred on each frame,
    the frame after the signal's end dropped, then GELU.

    MindSpore's grouped CPU convolution is orders of magnitude slower than matmuls here. Each group's signal is
    unfolded once into windows of BLOCK frames (a concat of BLOCK row slices), and the taps run as k / BLOCK
    batched matmuls, one per block of taps, over row slices of those windows. The weight is kept as (k / BLOCK, groups,
    BLOCK * in, out); checkpoints hold torch's (hidden, hidden / groups, k).
    """

    BLOCK = 16

    def __init__(self, cfg: HubertConfig, dtype=ms.float32):
        super().__init__()
        k, g, dim = cfg.num_conv_pos_embeddings, cfg.num_conv_pos_embedding_groups, cfg.hidden_size
        self.block = math.gcd(k, self.BLOCK)
        cg = dim // g
        self.groups = g
        self.weight = _param((k // self.block, g, self.block * cg, cg), dtype, "weight")
        self.bias = _param((dim,), dtype, "bias")
        self.checkpoint_layout = {"weight": ((dim, cg, k), self._layout)}
        self.act = GELU()

    def _layout(self, w: np.ndarray) -> np.ndarray:
        dim, cg, k = w.shape
        # (g, out, in, k / block, block) -> (k / block, g, block, in, out)
        w = w.reshape(self.groups, cg, cg, k // self.block, self.block).transpose(3, 0, 4, 2, 1)
        return w.reshape(k // self.block, self.groups, self.block * cg, cg)

    def construct(self, x):  # (1, T, C) -> (1, T, C)
        n_blocks, g, width, cg = self.weight.shape
        k = n_blocks * self.block
        _, t, dim = x.shape
        pad = ops.zeros((1, k // 2, dim), x.dtype)
        x = concat([pad, x, pad], axis=1)  # (1, T + k, C): output t reads rows t .. t + k - 1
        xg = concat(split(x, cg, axis=2), axis=0)  # (g, T + k, cg)
        span = t + k - self.block
        windows = concat([rows(xg, j, span) for j in range(self.block)], axis=2)  # (g, span, block * cg)
        blocks = split(self.weight, 1, axis=0)
        y = None
        for i in range(n_blocks):
            part = ops.BatchMatMul()(rows(windows, i * self.block, t), blocks[i].reshape(g, width, cg))
            y = part if y is None else y + part
        y = concat(split(y, 1, axis=0), axis=2).reshape(t, dim)  # groups back side by side
        return self.act(ops.bias_add(y, self.bias).reshape(1, t, dim))


class Attention(nn.Cell):
    def __init__(self, cfg: HubertConfig, dtype=ms.float32):
        super().__init__()
        dim = cfg.hidden_size
        self.n_head = cfg.num_attention_heads
        self.q_proj = Linear(dim, dim, dtype=dtype)
        self.k_proj = Linear(dim, dim, dtype=dtype)
        self.v_proj = Linear(dim, dim, dtype=dtype)
        self.out_proj = Linear(dim, dim, dtype=dtype)

    def construct(self, x, bias):
        hs = x.shape[2] // self.n_head
        q = split_heads(self.q_proj(x), self.n_head, hs)
        k = split_heads(self.k_proj(x), self.n_head, hs)
        v = split_heads(self.v_proj(x), self.n_head, hs)
        return self.out_proj(merge_heads(attend(q, k, v, bias)))


class FeedForward(nn.Cell):
    def __init__(self, cfg: HubertConfig, dtype=ms.float32):
        super().__init__()
        self.intermediate_dense = Linear(cfg.hidden_size, cfg.intermediate_size, dtype=dtype)
        self.output_dense = Linear(cfg.intermediate_size, cfg.hidden_size, dtype=dtype)
        self.act = GELU()

    def construct(self, x):
        return self.output_dense(self.act(self.intermediate_dense(x)))


class EncoderLayer(nn.Cell):
    """A post-norm transformer layer (HuBERT base)."""

    # analysed once and inlined per layer, as the GPTs' blocks (gpt.py): "front" is the policy every backend has
    @ms.lazy_inline(policy="front")
    def __init__(self, cfg: HubertConfig, dtype=ms.float32):
        super().__init__()
        self.attention = Attention(cfg, dtype)
        self.layer_norm = LayerNorm(cfg.hidden_size, dtype=dtype)
        self.feed_forward = FeedForward(cfg, dtype)
        self.final_layer_norm = LayerNorm(cfg.hidden_size, dtype=dtype)

    def construct(self, x, bias):
        x = self.layer_norm(x + self.attention(x, bias))
        return self.final_layer_norm(x + self.feed_forward(x))


class Encoder(nn.Cell):
    def __init__(self, cfg: HubertConfig, dtype=ms.float32):
        super().__init__()
        self.pos_conv_embed = PositionalConv(cfg, dtype)
        self.layer_norm = LayerNorm(cfg.hidden_size, dtype=dtype)
        self.layers = nn.CellList([EncoderLayer(cfg, dtype) for _ in range(cfg.num_hidden_layers)])


class HubertModel(nn.Cell):
    """16 kHz audio to HuBERT's hidden states after `layer` transformer layers (`transformers`' `hidden_states[layer]`
    with `output_hidden_states=True`); the layers past it never run.

    Args:
        cfg: HuBERT's shapes.
        layer: how many transformer layers to run (9 for Bark's semantic quantizers).
        dtype: parameter dtype.
    """

    def __init__(self, cfg: HubertConfig, layer: int, dtype=ms.float32):
        super().__init__()
        if not 0 <= layer <= cfg.num_hidden_layers:
            raise ValueError(f"HuBERT has {cfg.num_hidden_layers} layers; layer {layer} does not exist")
        self.config = cfg
        self.layer = layer
        self.dtype = dtype
        self.feature_extractor = FeatureEncoder(cfg, dtype)
        self.feature_projection = FeatureProjection(cfg, dtype)
        self.encoder = Encoder(cfg, dtype)
        self._step = compiled(self.construct, self, f"hubert-layer{layer}")

    def construct(self, audio, n0, n):
        """Hidden states (1, T, hidden) of padded audio (1, S); n0: valid rows after the first convolution, n: valid
        frames."""
        x = self.feature_projection(self.feature_extractor(audio.reshape(1, audio.shape[1], 1), n0))
        t = x.shape[1]
        valid = _valid(n, t)
        x = x * valid.reshape(1, t, 1)
        x = self.encoder.layer_norm(x + self.encoder.pos_conv_embed(x))
        bias = attention_bias(ops.tile(valid.reshape(1, 1, 1, t), (1, 1, t, 1)), self.config.num_attention_heads)
        for i in range(self.layer):
            x = self.encoder.layers[i](x, bias)
        return x

    def frames(self, samples: int) -> int:
        """Frames HuBERT gives for `samples` of audio (0 under one frame's receptive field)."""
        field, hop = self.config.frame_samples
        return max(0, (samples - field) // hop + 1)

    def hidden_states(self, audio: np.ndarray) -> Tensor:
        """(1, F_bucket, hidden) hidden states of mono 16 kHz audio (S,), F = `frames(S)` of them valid (the rest
        are padding's).

        Raises:
            ValueError: audio shorter than one frame.
        """
        field, hop = self.config.frame_samples
        samples = len(audio)
        n = self.frames(samples)
        if n == 0:
            raise ValueError(f"audio of {samples} samples is shorter than one HuBERT frame ({field})")
        padded = math.ceil(n / BUCKET) * BUCKET
        audio = np.pad(np.asarray(audio, np.float32), (0, (padded - 1) * hop + field - samples))
        n0 = self.feature_extractor.conv_layers[0].conv.out_length(samples)
        return self._step(Tensor(audio[None], self.dtype), Tensor(n0, ms.int32), Tensor(n, ms.int32))
