"""Conversion of Suno's original Bark checkpoints and EnCodec's 24 kHz state dict into mindbark directories.

Suno's `bark` package caches `text_2.pt`, `coarse_2.pt`, `fine_2.pt` (large) or `text.pt`, `coarse.pt`, `fine.pt`
(small) in `~/.cache/suno/bark_v0/`. Each is a `torch.save` dict: `model_args` (nanoGPT's shape arguments),
`model` (the state dict, names prefixed `_orig_mod.` by `torch.compile`) and training metadata. The codec is
facebookresearch's `encodec_24khz-d7cc33bc.th`, a plain state dict that torch.hub caches in
`~/.cache/torch/hub/checkpoints/`. The result is the layout the `transformers`-format path writes; its
`config.json` is a Hugging Face Bark config built from `model_args` and EnCodec 24 kHz's defaults.

Suno's files hold no tokenizer (Suno loads `bert-base-multilingual-cased` from the hub). A tokenizer file
(`vocab.txt` or `tokenizer.json`) found beside the `.pt` files is carried; otherwise copy that snapshot's
`vocab.txt` into the converted directory before using `BarkProcessor`. `BarkModel` loads without it.
"""

import json
import re
import shutil
import zipfile
from pathlib import Path

import numpy as np
from safetensors.numpy import save_file

from ..checkpoint import check_weights, weight_shapes
from ..config import BarkConfig, GPTConfig
from ..constants import (CODEBOOK_SIZE, COARSE_INFER_TOKEN, N_COARSE_CODEBOOKS, SEMANTIC_INFER_TOKEN,
                         SEMANTIC_PAD_TOKEN, SEMANTIC_VOCAB_SIZE)
from ..errors import ConversionError
from ..models.bark import build_submodels
from ..models.encodec_encoder import EncodecEncoder
from ..paths import write_marker
from . import suno_tables
from .mapping import rename
from .reader import fold_weight_norm
from .tables import ENCODER
from .writer import atomic_directory

SIZES = {"large": "_2", "small": ""}  # file-name suffix of each model size
STAGES = {"semantic": "text", "coarse_acoustics": "coarse", "fine_acoustics": "fine"}  # sub-model: file stem
CODEC_FILE = "encodec_24khz-d7cc33bc.th"
TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "vocab.txt", "special_tokens_map.json")
TOKENIZER_HINT = ("Suno's checkpoints carry no tokenizer: copy vocab.txt from a `bert-base-multilingual-cased` "
                  "snapshot (what Suno's bark loads) into the converted directory to use BarkProcessor")

# Suno's GPTConfig / FineGPTConfig defaults (bark/model.py, bark/model_fine.py): its loader builds the config with
# `GPTConfig(**model_args)`, so a missing argument means this value
_SUNO_DEFAULTS = {"block_size": 1024, "input_vocab_size": 10_048, "output_vocab_size": 10_048, "n_layer": 12,
                  "n_head": 12, "n_embd": 768, "bias": True, "dropout": 0.0}
_FINE_DEFAULTS = {"n_codes_total": 8, "n_codes_given": 1}
_HF_NAMES = {"n_layer": "num_layers", "n_head": "num_heads", "n_embd": "hidden_size"}  # the rest keep their names

# EnCodec 24 kHz as `transformers` describes it: the codec_config of suno/bark-small and suno/bark
ENCODEC_24KHZ = {
    "target_bandwidths": [1.5, 3.0, 6.0, 12.0, 24.0], "sampling_rate": 24_000, "audio_channels": 1,
    "normalize": False, "chunk_length_s": None, "overlap": None, "hidden_size": 128, "num_filters": 32,
    "num_residual_layers": 1, "upsampling_ratios": [8, 5, 4, 2], "norm_type": "weight_norm", "kernel_size": 7,
    "last_kernel_size": 7, "residual_kernel_size": 3, "dilation_growth_rate": 2, "use_causal_conv": True,
    "pad_mode": "reflect", "compress": 2, "num_lstm_layers": 2, "trim_right_ratio": 1.0, "codebook_size": 1024,
    "codebook_dim": 128, "use_conv_shortcut": True, "model_type": "encodec",
}

# the ids Bark's pipeline feeds and reads (constants.py): (sub-model, argument, least size, what needs it)
_VOCAB_NEEDS = (
    ("semantic", "input_vocab_size", SEMANTIC_INFER_TOKEN + 1, "text ids and the semantic infer token"),
    ("semantic", "output_vocab_size", SEMANTIC_PAD_TOKEN + 1, "semantic ids and EOS"),
    ("coarse_acoustics", "input_vocab_size", COARSE_INFER_TOKEN + 1,
     "the semantic ids text.pt writes, the coarse codes and the infer token"),
    ("coarse_acoustics", "output_vocab_size", SEMANTIC_VOCAB_SIZE + N_COARSE_CODEBOOKS * CODEBOOK_SIZE,
     "its coarse codebooks"),
    ("fine_acoustics", "input_vocab_size", CODEBOOK_SIZE + 1, "the codec's codebook ids and the pad id"),
    ("fine_acoustics", "output_vocab_size", CODEBOOK_SIZE, "the codec's codebook ids"),
)


def file_names(size: str) -> dict:
    """{sub-model: file name} of one model size ("large" or "small")."""
    return {name: f"{stem}{SIZES[size]}.pt" for name, stem in STAGES.items()}


def is_suno_dir(src: Path) -> bool:
    """Whether `src` holds any of Suno's text/coarse/fine checkpoint files."""
    return any((Path(src) / f).is_file() for size in SIZES for f in file_names(size).values())


def _pick_files(src: Path, size: str | None) -> dict:
    if size is not None and size not in SIZES:
        raise ConversionError(f"unknown Suno model size {size!r}: choose large or small")
    if size is None:
        found = [s for s in SIZES if any((src / f).is_file() for f in file_names(s).values())]
        if not found:
            raise ConversionError(f"{src}: no Suno checkpoints (text_2.pt, coarse_2.pt, fine_2.pt or text.pt ...)")
        if len(found) > 1:
            raise ConversionError(f"{src}: holds both large (*_2.pt) and small Suno checkpoints; pass size "
                                  "'large' or 'small'")
        size = found[0]
    names = file_names(size)
    for name, f in names.items():
        if not (src / f).is_file():
            raise ConversionError(f"{src}: {f} is missing ({size} Bark needs {', '.join(names.values())})")
    return {name: src / f for name, f in names.items()}


def find_codec(src: Path, codec=None) -> Path:
    """EnCodec's 24 kHz state dict: `codec` if given, else in `src`, else in torch.hub's checkpoint cache."""
    if codec is not None:
        codec = Path(codec)
        if not codec.is_file():
            raise ConversionError(f"codec checkpoint {codec} does not exist")
        return codec
    candidates = sorted(src.glob("encodec_24khz*.th"))
    if len(candidates) > 1:
        raise ConversionError(f"{src}: several EnCodec checkpoints ({', '.join(c.name for c in candidates)}); "
                              "pass the one to use as codec")
    if candidates:
        return candidates[0]
    hub = Path(_torch(src).hub.get_dir()) / "checkpoints" / CODEC_FILE
    if hub.is_file():
        return hub
    raise ConversionError(f"{src}: no {CODEC_FILE} (EnCodec 24 kHz, the codec Bark decodes with) here or in "
                          f"{hub.parent}; pass its path as codec")


def _numpy_globals() -> list:
    """What a numpy scalar in a checkpoint's metadata unpickles through (Suno's hold some, e.g. the loss)."""
    try:
        from numpy._core.multiarray import scalar
    except ImportError:  # numpy < 2
        from numpy.core.multiarray import scalar
    dtype_classes = [type(np.dtype(t)) for t in (np.float64, np.float32, np.int64, np.int32, np.bool_)]
    # pickles written under numpy 1 name `numpy.core`, which numpy 2 renamed
    return [scalar, (scalar, "numpy.core.multiarray.scalar"), np.dtype, *dtype_classes]


def _torch(path: Path):
    try:
        import torch
    except ImportError:
        raise ConversionError(f"{path}: reading Suno's .pt and EnCodec's .th checkpoints needs PyTorch "
                              "(pip install torch)") from None
    return torch


def _torch_load(path: Path):
    """`torch.load` without executing pickled code; memory-mapped when the file is in torch's zip format."""
    torch = _torch(path)
    try:
        with torch.serialization.safe_globals(_numpy_globals()):
            return torch.load(str(path), map_location="cpu", weights_only=True, mmap=zipfile.is_zipfile(path))
    except Exception as e:  # torch raises many types for a damaged zip or pickle
        unsafe = re.search(r"Unsupported global: GLOBAL (\S+)", str(e))
        if unsafe:
            raise ConversionError(f"{path}: holds a pickled {unsafe.group(1)}, which mindbark does not unpickle (it "
                                  "reads tensors, plain containers and numpy scalars only)") from None
        first = next((ln.strip() for ln in str(e).splitlines() if ln.strip()), type(e).__name__)
        raise ConversionError(f"{path}: corrupt, truncated or not a PyTorch checkpoint ({first})") from None


def _numpy_state(state, path: Path) -> dict:
    torch = _torch(path)

    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise ConversionError(f"{path}: expected a state dict of tensors")
    out = {}
    for k, v in state.items():
        name = k[len("_orig_mod."):] if k.startswith("_orig_mod.") else k  # torch.compile's wrapper prefix
        if name in out:
            raise ConversionError(f"{path}: tensor {name} appears both with and without the _orig_mod. prefix")
        out[name] = v.float().numpy() if v.is_floating_point() else v.numpy()
    return out


def _hf_config(args: dict, fine: bool, path: Path) -> dict:
    """Suno's `model_args` as a Hugging Face Bark sub-config (bark-small.json's layout)."""
    args = dict(args)
    if "input_vocab_size" not in args and "vocab_size" in args:  # older checkpoints: one shared vocabulary
        args["input_vocab_size"] = args["output_vocab_size"] = args.pop("vocab_size")
    defaults = {**_SUNO_DEFAULTS, **(_FINE_DEFAULTS if fine else {})}
    unknown = sorted(set(args) - set(defaults))
    if unknown:
        raise ConversionError(f"{path}: unknown model_args {', '.join(unknown)}")
    args = {**defaults, **args}
    return {_HF_NAMES.get(k, k): args[k] for k in defaults}


def read_suno_model(path: Path, name: str) -> tuple[dict, dict]:
    """One of Suno's GPT checkpoints as (Hugging Face sub-config, {mindbark name: float32 array})."""
    ckpt = _torch_load(path)
    if not isinstance(ckpt, dict) or not isinstance(ckpt.get("model_args"), dict) or "model" not in ckpt:
        raise ConversionError(f"{path}: not a Suno Bark checkpoint (expected a dict with model_args and model)")
    fine = name == "fine_acoustics"
    cfg = _hf_config(ckpt["model_args"], fine, path)
    tensors = _numpy_state(ckpt["model"], path)
    if fine:
        given = cfg["n_codes_given"]
        for head in sorted(n for n in tensors if n.startswith("lm_heads.")):
            wte = f"transformer.wtes.{int(head.split('.')[1]) + given}.weight"
            if wte not in tensors or not np.array_equal(tensors[head], tensors[wte]):
                raise ConversionError(f"{path}: {head} is not tied to {wte}, as Bark's fine model ties them")
    return cfg, rename(tensors, suno_tables.FINE if fine else suno_tables.CAUSAL, path)


def read_codec(path: Path) -> tuple[dict, dict]:
    """EnCodec 24 kHz under mindbark's names, weight norm folded: (decoder and codebooks, encoder)."""
    tensors = fold_weight_norm(_numpy_state(_torch_load(path), path))
    encoder = {k: v for k, v in tensors.items() if k.startswith("encoder.")}
    decoder = {k: v for k, v in tensors.items() if k not in encoder}
    return rename(decoder, suno_tables.CODEC, path), rename(encoder, suno_tables.CODEC_ENCODER, path)


def _check_sizes(sub_configs: dict, files: dict, cfg: BarkConfig, codec: Path):
    """Sizes that must agree across files, for the ids one stage hands the next."""
    for name, arg, least, why in _VOCAB_NEEDS:
        value = sub_configs[name][arg]
        if value < least:
            raise ConversionError(f"{files[name]}: {arg} {value} is too small for {why} (needs at least {least}); "
                                  "are these files from the same Bark?")
    fine = cfg.fine_acoustics
    if fine.n_codes_total > cfg.codec.num_quantizers:
        raise ConversionError(f"{files['fine_acoustics']}: n_codes_total {fine.n_codes_total} is more than the "
                              f"{cfg.codec.num_quantizers} codebooks of {codec.name}")


def convert_suno(src, dst, overwrite: bool = False, codec=None, size: str | None = None) -> Path:
    """Convert Suno's Bark checkpoints in `src` and EnCodec 24 kHz into `dst`.

    Args:
        src: directory with text/coarse/fine `.pt` files (`~/.cache/suno/bark_v0`).
        dst: directory to create.
        overwrite: replace `dst` if it exists.
        codec: EnCodec's `encodec_24khz-d7cc33bc.th`; default: found in `src`, else in torch.hub's cache.
        size: "large" (`*_2.pt`) or "small"; needed only when `src` holds both.
    """
    src, dst = Path(src), Path(dst)
    files = _pick_files(src, size)
    codec_path = find_codec(src, codec)
    sub_configs, mapped = {}, {}
    for name, path in files.items():
        sub_configs[name], mapped[name] = read_suno_model(path, name)
        try:
            GPTConfig.from_hf(sub_configs[name])
        except ValueError as e:
            raise ConversionError(f"{path}: {e}") from None
    hf_config = {"model_type": "bark", **{f"{name}_config": c for name, c in sub_configs.items()},
                 "codec_config": ENCODEC_24KHZ}
    cfg = BarkConfig.from_hf(hf_config)
    _check_sizes(sub_configs, files, cfg, codec_path)
    mapped["codec_model"], mapped[ENCODER] = read_codec(codec_path)
    files["codec_model"] = files[ENCODER] = codec_path
    for name, cell in {**build_submodels(cfg), ENCODER: EncodecEncoder(cfg.codec)}.items():
        check_weights(mapped[name], weight_shapes(cell), f"{files[name]} ({name})")
    with atomic_directory(dst, overwrite) as tmp:
        for name, tensors in mapped.items():
            save_file(tensors, str(tmp / f"{name}.safetensors"), metadata={"format": "mindbark"})
        (tmp / "config.json").write_text(json.dumps(hf_config, indent=2) + "\n")
        for f in TOKENIZER_FILES:  # a tokenizer placed beside Suno's files
            if (src / f).is_file():
                shutil.copyfile(src / f, tmp / f)
        write_marker(tmp, {"source_format": "suno",
                           "source_files": sorted({p.name for p in files.values()})})
    return dst
