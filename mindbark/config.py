"""Sub-model configs as frozen dataclasses, read from a Hugging Face-layout Bark `config.json`.

mindbark keeps that layout on disk (in `configs/` and in converted checkpoints) so the same file describes a model
for `transformers` and for mindbark.
"""

import json
import math
from dataclasses import dataclass, field
from pathlib import Path


@dataclass(frozen=True)
class GPTConfig:
    """A Bark GPT: the causal semantic and coarse models, and the non-causal fine model.

    Args:
        block_size: positions the model embeds (its context).
        input_vocab_size / output_vocab_size: Bark splits the two (the semantic model reads text ids, writes
            semantic ids).
        n_layer / n_head / n_embd: depth, heads, width.
        bias: whether linear and LayerNorm layers carry biases (False for Bark's causal models).
        n_codes_total / n_codes_given: fine model only: codebooks embedded, and how many come from the coarse model.
        tie_word_embeddings: fine model only: LM head `i` reuses the embedding of codebook `i + 1`.
    """

    block_size: int
    input_vocab_size: int
    output_vocab_size: int
    n_layer: int
    n_head: int
    n_embd: int
    bias: bool = True
    n_codes_total: int = 8
    n_codes_given: int = 1
    tie_word_embeddings: bool = True

    def __post_init__(self):
        if self.n_embd % self.n_head:
            raise ValueError(f"n_embd ({self.n_embd}) must be divisible by n_head ({self.n_head})")

    @classmethod
    def from_hf(cls, d: dict) -> "GPTConfig":
        return cls(
            block_size=d.get("block_size", 1024),
            input_vocab_size=d.get("input_vocab_size", 10_048),
            output_vocab_size=d.get("output_vocab_size", 10_048),
            n_layer=d.get("num_layers", 12),
            n_head=d.get("num_heads", 12),
            n_embd=d.get("hidden_size", 768),
            bias=d.get("bias", True),
            n_codes_total=d.get("n_codes_total", 8),
            n_codes_given=d.get("n_codes_given", 1),
            tie_word_embeddings=d.get("tie_word_embeddings", True),
        )


@dataclass(frozen=True)
class CodecConfig:
    """The EnCodec 24 kHz decoder path: residual-VQ codebooks and the SEANet decoder (defaults: encodec_24khz).

    Args:
        codebook_size / codebook_dim / num_quantizers: the residual VQ tables.
        num_filters / upsampling_ratios / kernel sizes / compress / dilation_growth_rate / num_residual_layers /
            num_lstm_layers / use_conv_shortcut: SEANet decoder shape.
        pad_mode / use_causal_conv / trim_right_ratio: how convolutions pad and trim.
    """

    sampling_rate: int = 24_000
    audio_channels: int = 1
    hidden_size: int = 128
    codebook_size: int = 1024
    codebook_dim: int = 128
    num_quantizers: int = 32
    num_filters: int = 32
    upsampling_ratios: tuple = (8, 5, 4, 2)
    kernel_size: int = 7
    last_kernel_size: int = 7
    residual_kernel_size: int = 3
    dilation_growth_rate: int = 2
    num_residual_layers: int = 1
    compress: int = 2
    num_lstm_layers: int = 2
    use_conv_shortcut: bool = True
    use_causal_conv: bool = True
    pad_mode: str = "reflect"
    trim_right_ratio: float = 1.0

    def __post_init__(self):
        # the decoder streams in chunks, which needs every layer causal (EnCodec 24 kHz, the codec Bark uses)
        if not self.use_causal_conv or self.trim_right_ratio != 1.0:
            raise ValueError("only EnCodec's causal configuration is supported (use_causal_conv true, "
                             f"trim_right_ratio 1.0), got {self.use_causal_conv}, {self.trim_right_ratio}")
        if self.pad_mode not in ("reflect", "constant"):
            raise ValueError(f"unsupported codec pad_mode {self.pad_mode!r}: reflect or constant")

    @property
    def hop_length(self) -> int:
        return math.prod(self.upsampling_ratios)

    @classmethod
    def from_hf(cls, d: dict) -> "CodecConfig":
        if d.get("norm_type", "weight_norm") != "weight_norm":
            raise ValueError(f"unsupported codec norm_type {d['norm_type']!r} (Bark's 24 kHz EnCodec uses weight_norm)")
        hidden = d.get("hidden_size", 128)
        rate = d.get("sampling_rate", 24_000)
        ratios = tuple(d.get("upsampling_ratios", (8, 5, 4, 2)))
        frame_rate = math.ceil(rate / math.prod(ratios))
        # transformers derives the quantizer count from the largest bandwidth, so do the same
        bandwidths = d.get("target_bandwidths", [1.5, 3.0, 6.0, 12.0, 24.0])
        codebook_size = d.get("codebook_size", 1024)
        n_q = int(1000 * bandwidths[-1] // (frame_rate * math.ceil(math.log2(codebook_size))))
        return cls(
            sampling_rate=rate,
            audio_channels=d.get("audio_channels", 1),
            hidden_size=hidden,
            codebook_size=codebook_size,
            codebook_dim=d.get("codebook_dim") or hidden,
            num_quantizers=n_q,
            num_filters=d.get("num_filters", 32),
            upsampling_ratios=ratios,
            kernel_size=d.get("kernel_size", 7),
            last_kernel_size=d.get("last_kernel_size", 7),
            residual_kernel_size=d.get("residual_kernel_size", 3),
            dilation_growth_rate=d.get("dilation_growth_rate", 2),
            num_residual_layers=d.get("num_residual_layers", 1),
            compress=d.get("compress", 2),
            num_lstm_layers=d.get("num_lstm_layers", 2),
            use_conv_shortcut=d.get("use_conv_shortcut", True),
            use_causal_conv=d.get("use_causal_conv", True),
            pad_mode=d.get("pad_mode", "reflect"),
            trim_right_ratio=d.get("trim_right_ratio", 1.0),
        )


@dataclass(frozen=True)
class BarkConfig:
    """The four sub-models of Bark."""

    semantic: GPTConfig
    coarse_acoustics: GPTConfig
    fine_acoustics: GPTConfig
    codec: CodecConfig = field(default_factory=CodecConfig)

    @classmethod
    def from_hf(cls, d: dict) -> "BarkConfig":
        missing = [k for k in ("semantic_config", "coarse_acoustics_config", "fine_acoustics_config") if k not in d]
        if missing:
            raise ValueError(f"not a Bark config.json: missing {', '.join(missing)}")
        return cls(
            semantic=GPTConfig.from_hf(d["semantic_config"]),
            coarse_acoustics=GPTConfig.from_hf(d["coarse_acoustics_config"]),
            fine_acoustics=GPTConfig.from_hf(d["fine_acoustics_config"]),
            codec=CodecConfig.from_hf(d.get("codec_config") or {}),
        )

    @classmethod
    def from_file(cls, path: str | Path) -> "BarkConfig":
        path = Path(path)
        try:
            d = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as e:
            raise ValueError(f"cannot read Bark config {path}: {e}") from None
        return cls.from_hf(d)


@dataclass(frozen=True)
class HubertConfig:
    """HuBERT as the voice cloner reads it (defaults: `facebook/hubert-base-ls960`): a stack of strided convolutions
    over 16 kHz audio (the first one group-normed), a projection, a grouped positional convolution and a post-norm
    transformer.

    Args:
        conv_dim / conv_kernel / conv_stride / conv_bias: the feature encoder's convolutions.
        hidden_size / num_hidden_layers / num_attention_heads / intermediate_size: the transformer.
        num_conv_pos_embeddings / num_conv_pos_embedding_groups: the positional convolution's kernel and groups.
    """

    conv_dim: tuple = (512,) * 7
    conv_kernel: tuple = (10, 3, 3, 3, 3, 2, 2)
    conv_stride: tuple = (5, 2, 2, 2, 2, 2, 2)
    conv_bias: bool = False
    hidden_size: int = 768
    num_hidden_layers: int = 12
    num_attention_heads: int = 12
    intermediate_size: int = 3072
    num_conv_pos_embeddings: int = 128
    num_conv_pos_embedding_groups: int = 16

    def __post_init__(self):
        if not len(self.conv_dim) == len(self.conv_kernel) == len(self.conv_stride):
            raise ValueError("conv_dim, conv_kernel and conv_stride must have one entry per convolution")
        if self.hidden_size % self.num_attention_heads or self.hidden_size % self.num_conv_pos_embedding_groups:
            raise ValueError(f"hidden_size {self.hidden_size} must be divisible by num_attention_heads and "
                             "num_conv_pos_embedding_groups")

    @property
    def frame_samples(self) -> tuple[int, int]:
        """(receptive field, hop) of one output frame, in input samples (400 and 320 for HuBERT base)."""
        field, hop = 1, 1
        for k, s in zip(self.conv_kernel, self.conv_stride):
            field += (k - 1) * hop
            hop *= s
        return field, hop

    # what HuBERT base is and this port implements; other variants (HuBERT large's layer-normed convolutions and
    # pre-norm transformer) are refused rather than run wrong
    _FIXED = {"feat_extract_norm": "group", "do_stable_layer_norm": False, "feat_extract_activation": "gelu",
              "hidden_act": "gelu", "feat_proj_layer_norm": True, "layer_norm_eps": 1e-5, "conv_pos_batch_norm": False}

    @classmethod
    def from_hf(cls, d: dict) -> "HubertConfig":
        if d.get("model_type", "hubert") != "hubert":
            raise ValueError(f"not a HuBERT config (model_type {d.get('model_type')!r})")
        for key, value in cls._FIXED.items():
            if key in d and d[key] != value:
                raise ValueError(f"unsupported HuBERT {key} {d[key]!r}: mindbark runs HuBERT base ({value!r})")
        defaults = cls()
        return cls(**{f: tuple(d[f]) if isinstance(d.get(f), list) else d.get(f, getattr(defaults, f))
                      for f in cls.__dataclass_fields__})


@dataclass(frozen=True)
class QuantizerConfig:
    """The community's HuBERT-to-semantic quantizer (`CustomTokenizer`): a 2-layer LSTM, for version 1 a linear
    layer to 4096, and a linear layer to Bark's semantic vocabulary, argmax per frame.

    Args:
        input_size: HuBERT's hidden size (768).
        hidden_size: the LSTM's (1024).
        output_size: semantic ids (10 000).
        version: 0 (LSTM, linear) or 1 (LSTM, linear to 4096, linear).
    """

    input_size: int = 768
    hidden_size: int = 1024
    output_size: int = 10_000
    version: int = 0

    INTERMEDIATE = 4096  # version 1's extra layer

    def __post_init__(self):
        if self.version not in (0, 1):
            raise ValueError(f"unknown quantizer version {self.version} (0 or 1)")
