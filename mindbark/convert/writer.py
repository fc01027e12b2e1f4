"""Write a converted mindbark directory all at once: built beside the target, then renamed into place."""

import json
import os
import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path

from ..errors import ConversionError

# files a Bark snapshot carries that mindbark needs unchanged (tokenizer, generation settings, voices)
CARRIED_FILES = ("config.json", "generation_config.json", "tokenizer.json", "tokenizer_config.json", "vocab.txt",
                 "special_tokens_map.json", "speaker_embeddings_path.json")
CARRIED_DIRS = ("speaker_embeddings",)


@contextmanager
def atomic_directory(dst: Path, overwrite: bool):
    """Yield a temporary directory that becomes `dst` only if the block finishes without error."""
    if dst.exists() and not overwrite:
        raise ConversionError(f"{dst} already exists (pass overwrite to replace it)")
    dst.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{dst.name}.", dir=dst.parent))
    umask = os.umask(0)
    os.umask(umask)
    tmp.chmod(0o777 & ~umask)  # mkdtemp's private 0700 would make a shared model cache unreadable to others
    try:
        yield tmp
        for f in tmp.rglob("*"):
            if f.is_file():  # safetensors writes 0600; a shared model cache must stay readable
                f.chmod(0o666 & ~umask)
        if dst.exists():
            old = Path(tempfile.mkdtemp(prefix=f".{dst.name}.old.", dir=dst.parent))
            os.replace(dst, old / "dir")
            os.replace(tmp, dst)
            shutil.rmtree(old)
        else:
            os.replace(tmp, dst)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def carry_files(src: Path, dst: Path):
    for name in CARRIED_FILES:
        if (src / name).is_file():
            shutil.copyfile(src / name, dst / name)
    for name in CARRIED_DIRS:
        if (src / name).is_dir():
            shutil.copytree(src / name, dst / name)

