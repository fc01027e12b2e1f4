"""Conversion of Hugging Face-format and Suno's original Bark checkpoints into mindbark directories."""

import hashlib
from pathlib import Path

from safetensors.numpy import save_file

from ..checkpoint import check_weights, weight_shapes
from ..config import BarkConfig
from ..errors import ConversionError
from ..models.bark import build_submodels
from ..models.encodec_encoder import EncodecEncoder
from ..paths import MARKER, converted_dir, write_marker
from .mapping import map_tensors
from .reader import read_hf_tensors
from .suno import convert_suno, is_suno_dir
from .tables import ENCODER
from .writer import atomic_directory, carry_files

__all__ = ["ConversionError", "convert_checkpoint", "convert_cached"]


def convert_checkpoint(src, dst, overwrite: bool = False, codec=None, size: str | None = None) -> Path:
    """Convert the Bark checkpoint in `src` (what `suno/bark-small` and `suno/bark` hold) into `dst`.

    The result holds one safetensors file per sub-model plus the carried config, tokenizer and speaker files, and
    EnCodec's encoder in `codec_encoder.safetensors`, which only voices made from recordings load.
    Nothing is left at `dst` if any check fails. A directory of Suno's original `.pt` files (no `config.json`)
    is read by `suno.convert_suno` into the same layout.

    Args:
        src: Hugging Face-format directory (`config.json` and `model.safetensors` or `pytorch_model.bin`), or
            Suno's `text_2.pt`, `coarse_2.pt`, `fine_2.pt` (or the small `text.pt` ...).
        dst: directory to create.
        overwrite: replace `dst` if it exists.
        codec: Suno's files only: EnCodec's `encodec_24khz-d7cc33bc.th` (default: in `src`, else torch.hub's cache).
        size: Suno's files only: "large" or "small", when `src` holds both.
    """
    src, dst = Path(src), Path(dst)
    if not (src / "config.json").is_file() and is_suno_dir(src):
        return convert_suno(src, dst, overwrite, codec=codec, size=size)
    if codec is not None or size is not None:
        raise ConversionError(f"{src}: codec and size apply only to Suno's checkpoints (text_2.pt ...)")
    if not (src / "config.json").is_file():
        raise ConversionError(f"{src}: no config.json; expected a Hugging Face-format Bark directory "
                              "or Suno's text/coarse/fine .pt files")
    try:
        cfg = BarkConfig.from_file(src / "config.json")
    except ValueError as e:
        raise ConversionError(str(e)) from None
    mapped = map_tensors(read_hf_tensors(src), cfg)
    cells = {**build_submodels(cfg), ENCODER: EncodecEncoder(cfg.codec)}
    if not mapped[ENCODER]:  # a checkpoint saved without EnCodec's encoder still generates
        del mapped[ENCODER], cells[ENCODER]
    for name, cell in cells.items():
        check_weights(mapped[name], weight_shapes(cell), f"{src} ({name})")
    with atomic_directory(dst, overwrite) as tmp:
        for name, tensors in mapped.items():
            save_file(tensors, str(tmp / f"{name}.safetensors"), metadata={"format": "mindbark"})
        carry_files(src, tmp)
        write_marker(tmp, {"source_format": "transformers"})
    return dst


def convert_cached(src: Path, convert=None) -> Path:
    """Convert `src` (a directory, or a single checkpoint file) once into the cache and return the converted
    directory; later calls reuse it. A changed file (size or time) converts again.

    Args:
        src: what to convert.
        convert: `(src, dst, overwrite)` -> dst; default `convert_checkpoint` (Bark).
    """
    src = src.resolve()
    stamp = hashlib.sha256(str(src).encode())
    for f in sorted(src.iterdir()) if src.is_dir() else [src]:
        if f.is_file():
            st = f.stat()
            stamp.update(f"{f.name}:{st.st_size}:{st.st_mtime_ns}".encode())
    dst = converted_dir() / f"{src.name}-{stamp.hexdigest()[:16]}"
    if not (dst / MARKER).exists():
        (convert or convert_checkpoint)(src, dst, overwrite=True)
    return dst
