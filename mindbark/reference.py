"""The PyTorch reference: `transformers` Bark models with random weights at a given size.

Used by the parity tests and the benchmark; needs the `torch` extra (`pip install mindbark[torch]`).
"""

import json
from pathlib import Path

import numpy as np

CONFIGS = Path(__file__).resolve().parent.parent / "configs"


def randomize(module, seed: int = 0):
    """Fill every weight with values that keep activations and logits O(1), so parity at 1e-4 is a real check.

    `transformers` zero-initialises EnCodec codebooks, which would make the codec test vacuous. Token embeddings get
    std 1/sqrt(width) as in trained GPTs: the fine model's heads are its embeddings, and unit-variance rows would
    give logits of std ~sqrt(width), where fp32 summation order alone moves them by 1e-4.
    """
    import torch

    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in module.named_parameters():
            if name.endswith(("original0", "weight_g")):  # weight-norm magnitude: the filter's norm
                p.copy_(0.5 + torch.rand(p.shape, generator=g))
            elif ("layernorm" in name or "layer_norm" in name) and name.endswith("weight"):
                p.copy_(1 + 0.1 * torch.randn(p.shape, generator=g))
            elif p.ndim == 1:
                p.copy_(0.1 * torch.randn(p.shape, generator=g))
            elif "embed" in name:
                p.copy_(torch.randn(p.shape, generator=g) / p.shape[1] ** 0.5)
            else:
                fan_in = int(np.prod(p.shape[1:]))
                p.copy_(torch.randn(p.shape, generator=g) / fan_in ** 0.5)
        for name, b in module.named_buffers():
            if name.endswith("codebook.embed"):
                b.copy_(torch.randn(b.shape, generator=g))


def hf_bark(config: str, seed: int = 0):
    """A `transformers` `BarkModel` in eval mode with random weights.

    Args:
        config: a name in `configs/` (`tiny`, `bark-small`, `bark`) or a path to a Bark config.json.
        seed: fixes the weights.
    """
    import torch
    from transformers import BarkConfig, BarkModel

    path = CONFIGS / f"{config}.json" if (CONFIGS / f"{config}.json").exists() else Path(config)
    d = json.loads(path.read_text())
    torch.manual_seed(seed)
    model = BarkModel(BarkConfig(**d)).eval()
    randomize(model, seed)
    model.generation_config = hf_generation_config()
    return model


def shape_for_generation(model):
    """Zero the coarse head's rows for ids >= 12048 (pads, infer token), as a trained Bark behaves.

    `transformers` lets the second codebook's argmax land on them, Suno excludes them; a trained model never ranks
    them first, but random weights would, and greedy parity would then test that quirk instead of the model.
    """
    import torch

    with torch.no_grad():
        model.coarse_acoustics.lm_head.weight[12_048:] = 0
    return model


def hf_generation_config():
    """Bark's generation config as the hub holds it, with the sub-configs as plain dicts.

    transformers 5.x's `BarkModel.generate` re-wraps them with `**`, so BarkGenerationConfig objects fail there.
    """
    from transformers.models.bark.generation_configuration_bark import BarkGenerationConfig

    gen = BarkGenerationConfig()
    for name in ("semantic_config", "coarse_acoustics_config", "fine_acoustics_config"):
        sub = getattr(gen, name).to_dict()
        setattr(gen, name, {k: v for k, v in sub.items() if not k.startswith("_") and k != "transformers_version"})
    return gen


def save_hf_bark(model, path: Path):
    """`save_pretrained` plus generation_config.json in the hub's layout (transformers cannot save Bark's)."""
    from transformers import GenerationConfig

    kept, model.generation_config = model.generation_config, GenerationConfig()
    try:
        model.save_pretrained(path)
    finally:
        model.generation_config = kept
    gen = hf_generation_config()
    layout = {"semantic_config": gen.semantic_config, "coarse_acoustics_config": gen.coarse_acoustics_config,
              "fine_acoustics_config": gen.fine_acoustics_config, "sample_rate": gen.sample_rate,
              "codebook_size": gen.codebook_size}
    (Path(path) / "generation_config.json").write_text(json.dumps(layout, indent=2))
    return path


def hf_encodec(seed: int = 0, config: str = "bark-small"):
    """`transformers`' EnCodec 24 kHz (the codec of a Bark config in `configs/`) in eval mode with random weights."""
    import torch
    from transformers import EncodecConfig, EncodecModel

    d = json.loads((CONFIGS / f"{config}.json").read_text())["codec_config"]
    torch.manual_seed(seed)
    model = EncodecModel(EncodecConfig(**d)).eval()
    randomize(model, seed)
    return model


def hf_hubert(seed: int = 0, **config):
    """`transformers`' `HubertModel` (HuBERT base's shapes unless `config` overrides them) in eval mode with random
    weights."""
    import torch
    from transformers import HubertConfig, HubertModel

    torch.manual_seed(seed)
    model = HubertModel(HubertConfig(**config)).eval()
    randomize(model, seed)
    return model


class TorchQuantizer:
    """The published quantizer's architecture (`CustomTokenizer` of bark-voice-cloning-HuBERT-quantizer, MIT), as a
    torch module: LSTM, for version 1 a linear layer to 4096, a linear layer to the semantic ids, log-softmax."""

    def __new__(cls, input_size: int = 768, hidden_size: int = 1024, output_size: int = 10_000, version: int = 0,
                seed: int = 0):
        import torch
        from torch import nn

        class CustomTokenizer(nn.Module):
            def __init__(self):
                super().__init__()
                self.lstm = nn.LSTM(input_size, hidden_size, 2, batch_first=True)
                self.intermediate = nn.Linear(hidden_size, 4096) if version == 1 else None
                self.fc = nn.Linear(4096 if version == 1 else hidden_size, output_size)
                self.softmax = nn.LogSoftmax(dim=1)

            def forward(self, x):  # (N, input_size) -> (N, output_size)
                x, _ = self.lstm(x)
                if self.intermediate is not None:
                    x = self.intermediate(x)
                return self.softmax(self.fc(x))

            @torch.no_grad()
            def get_token(self, x):
                return torch.argmax(self(x), dim=1)

        torch.manual_seed(seed)
        model = CustomTokenizer().eval()
        randomize(model, seed)
        return model
