"""Build `transformers` Bark models with random weights at a given size, for parity tests and the benchmark."""

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
            elif "layernorm" in name and name.endswith("weight"):
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


def hf_bark(config_name: str, seed: int = 0):
    """A `transformers` `BarkModel` in eval mode, shaped by `configs/<config_name>.json`, random weights."""
    import torch
    from transformers import BarkConfig, BarkModel

    d = json.loads((CONFIGS / f"{config_name}.json").read_text())
    torch.manual_seed(seed)
    model = BarkModel(BarkConfig(**d)).eval()
    randomize(model, seed)
    return model


def save_hf_bark(model, path: Path):
    """`save_pretrained` plus the hub's generation_config.json layout (transformers cannot save Bark's)."""
    model.save_pretrained(path)
    gen = model.generation_config.to_dict()
    (Path(path) / "generation_config.json").write_text(json.dumps(gen, indent=2, default=str))
    return path
