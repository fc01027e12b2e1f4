"""Voice presets ("history prompts"): Bark's speaker prompts, found by name, checked, and saved.

A preset is three integer arrays: `semantic_prompt` (T_s,), `coarse_prompt` (2, T_c) and `fine_prompt` (8, T_c).
A name resolves from a checkpoint's `speaker_embeddings_path.json` first (the Hugging Face layout), then from the
presets shipped in `mindbark/presets` (Suno's `bark/assets/prompts`, same names: `announcer`, `v2/en_speaker_6`).
"""

import difflib
import json
import os
import zipfile
from collections.abc import Mapping
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Union

import numpy as np
from numpy.typing import ArrayLike

from .constants import CODEBOOK_SIZE, N_COARSE_CODEBOOKS, N_FINE_CODEBOOKS, SEMANTIC_VOCAB_SIZE
from .files import replacing

Voice = dict[str, np.ndarray]
VoiceLike = Union[str, os.PathLike, Mapping]

PROMPT_KEYS = ("semantic_prompt", "coarse_prompt", "fine_prompt")
SPEAKER_EMBEDDINGS_JSON = "speaker_embeddings_path.json"

# key -> (codebook rows, or None for the 1-D semantic prompt; exclusive upper bound of its ids)
_SPECS = {
    "semantic_prompt": (None, SEMANTIC_VOCAB_SIZE),
    "coarse_prompt": (N_COARSE_CODEBOOKS, CODEBOOK_SIZE),
    "fine_prompt": (N_FINE_CODEBOOKS, CODEBOOK_SIZE),
}
# The coarse stage keeps n = min(even T_s, floor(2 T_c / 3.006)) semantic frames of history. With fewer than 2
# semantic or coarse frames n is 0, and the reference's `[-0:]` slice then keeps the whole semantic prompt against
# an empty coarse one: a silently misaligned voice. Suno requires non-empty prompts; the fine one may be short.
_MIN_FRAMES = {"semantic_prompt": 2, "coarse_prompt": 2, "fine_prompt": 1}
_READ_ERRORS = (OSError, ValueError, EOFError, zipfile.BadZipFile)


def validate_voice(voice: Mapping, where: str = "voice preset") -> Voice:
    """Check a preset's three arrays and return them as int64 copies (extra keys are dropped).

    Args:
        voice: a mapping holding `semantic_prompt`, `coarse_prompt` and `fine_prompt` (arrays or array-likes of
            any integer dtype: Suno's files mix uint16, int32 and int64).
        where: names the preset in error messages (its name or path).
    Raises:
        ValueError: naming `where` and the key at fault.
    """
    out = {}
    for key, (rows, upper) in _SPECS.items():
        if key not in voice:
            raise ValueError(f"{where}: missing {key!r} (a preset holds {', '.join(PROMPT_KEYS)})")
        arr = np.asarray(voice[key])
        if not np.issubdtype(arr.dtype, np.integer):
            raise ValueError(f"{where}: {key} has dtype {arr.dtype}, expected integer token ids")
        expected = "(T,)" if rows is None else f"({rows}, T)"
        if arr.ndim != (1 if rows is None else 2):
            raise ValueError(f"{where}: {key} has shape {arr.shape}, expected {expected}")
        if rows is not None and arr.shape[0] != rows:
            raise ValueError(f"{where}: {key} has {arr.shape[0]} codebook rows, expected {rows} (shape {expected})")
        if arr.shape[-1] < _MIN_FRAMES[key]:
            raise ValueError(f"{where}: {key} has {arr.shape[-1]} frames, needs at least {_MIN_FRAMES[key]}")
        lo, hi = int(arr.min()), int(arr.max())
        if lo < 0 or hi >= upper:
            raise ValueError(f"{where}: {key} ids must lie in [0, {upper}), found values in [{lo}, {hi}]")
        out[key] = arr.astype(np.int64)
    return out


def load_voice(preset: VoiceLike, model_dir: Union[str, os.PathLike, None] = None) -> Voice:
    """Load and check a voice preset.

    Args:
        preset: a name (`"v2/en_speaker_6"`, `"announcer"`), a path to an `.npz` file, or a dict of arrays.
        model_dir: a checkpoint directory; names in its `speaker_embeddings_path.json` win over shipped presets.
    Returns:
        {"semantic_prompt": (T_s,), "coarse_prompt": (2, T_c), "fine_prompt": (8, T_c)}, all int64.
    Raises:
        ValueError: unknown name, unreadable file, or a preset that fails `validate_voice`.
    """
    if isinstance(preset, Mapping):
        return validate_voice(preset, "voice preset (dict)")
    if isinstance(preset, os.PathLike) or (isinstance(preset, str) and preset.endswith(".npz")):
        path = Path(preset)
        if not path.is_file():
            raise UnknownVoiceError(f"voice preset file {str(path)!r} does not exist",
                                    path.name[:-4] if path.suffix == ".npz" else path.name, list_voices(model_dir))
        return validate_voice(_read_npz(path), f"voice preset {str(path)!r}")
    if not isinstance(preset, str):
        raise TypeError(f"voice preset must be a name, a path or a dict of arrays, not {type(preset).__name__}")

    entries = _checkpoint_entries(model_dir)
    if preset in entries:
        where = f"voice preset {preset!r} of {os.path.join(model_dir, SPEAKER_EMBEDDINGS_JSON)}"
        return validate_voice(_read_checkpoint_voice(entries[preset], Path(model_dir), where), where)
    shipped = _shipped_presets()
    if preset in shipped:
        with resources.as_file(shipped[preset]) as path:
            return validate_voice(_read_npz(path), f"voice preset {preset!r}")
    if Path(preset).is_file():  # a preset file saved under a name without the .npz suffix
        return validate_voice(_read_npz(Path(preset)), f"voice preset {preset!r}")
    raise UnknownVoiceError(f"unknown voice preset {preset!r}", preset, sorted({*entries, *shipped}))


def list_voices(model_dir: Union[str, os.PathLike, None] = None) -> list[str]:
    """Sorted names that `load_voice` resolves: the checkpoint's (if `model_dir` is given) and the shipped ones.

    Args:
        model_dir: a checkpoint directory that may hold `speaker_embeddings_path.json`.
    """
    return sorted({*_checkpoint_entries(model_dir), *_shipped_presets()})


def save_voice(path: Union[str, os.PathLike], semantic: ArrayLike, coarse: ArrayLike, fine: ArrayLike) -> Path:
    """Save a generation as a reusable preset (an `.npz` with Suno's key names), atomically.

    Args:
        path: the file to write; `.npz` is appended when missing, as `np.savez` does.
        semantic: (T_s,) semantic ids in [0, 10000).
        coarse: (2, T_c) codec ids in [0, 1024).
        fine: (8, T_c) codec ids in [0, 1024).
    Returns:
        The path written.
    Raises:
        ValueError: when the arrays would not load back as a preset; nothing is written then.
    """
    path = Path(path)
    if path.suffix != ".npz":
        path = path.with_name(path.name + ".npz")
    voice = validate_voice(dict(zip(PROMPT_KEYS, (semantic, coarse, fine))), f"voice preset for {str(path)!r}")
    path.parent.mkdir(parents=True, exist_ok=True)
    with replacing(path) as tmp, open(tmp, "wb") as f:
        np.savez(f, **voice)
        f.flush()
        os.fsync(f.fileno())
    return path


def _read_npz(path: Path) -> dict:
    try:
        data = np.load(path, allow_pickle=False)
        if not isinstance(data, np.lib.npyio.NpzFile):
            raise ValueError("a single array, not an .npz archive")
        with data:
            return {key: data[key] for key in PROMPT_KEYS if key in data.files}
    except _READ_ERRORS as e:
        raise ValueError(f"voice preset {str(path)!r} is not a readable .npz file ({e})") from None


def _checkpoint_entries(model_dir) -> dict[str, dict]:
    if model_dir is None:
        return {}
    if not Path(model_dir).is_dir():
        raise ValueError(f"model_dir {str(model_dir)!r} is not a directory")
    table_path = Path(model_dir) / SPEAKER_EMBEDDINGS_JSON
    if not table_path.is_file():
        return {}
    try:
        table = json.loads(table_path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise ValueError(f"{table_path}: unreadable speaker embeddings table ({e})") from None
    if not isinstance(table, dict):
        raise ValueError(f"{table_path}: expected a JSON object mapping voice names to prompt files")
    # `repo_or_path` records where the table was written (a hub id, or a directory at save time), not where the
    # files are now; transformers' from_pretrained overwrites it with the checkpoint directory, and so do we.
    return {name: entry for name, entry in table.items() if name != "repo_or_path" and isinstance(entry, dict)}


def _read_checkpoint_voice(entry: dict, model_dir: Path, where: str) -> dict:
    root = os.path.abspath(model_dir)
    arrays = {}
    for key in PROMPT_KEYS:
        rel = entry.get(key)
        if not isinstance(rel, str):
            raise ValueError(f"{where}: missing {key!r} (a preset holds {', '.join(PROMPT_KEYS)})")
        path = os.path.abspath(os.path.join(root, rel))
        # the table comes with a download: a path that leaves the checkpoint is refused, not followed
        if os.path.commonpath([root, path]) != root:
            raise ValueError(f"{where}: {key} path {rel!r} points outside {root}")
        try:
            arrays[key] = np.load(path, allow_pickle=False)
        except _READ_ERRORS as e:
            raise ValueError(f"{where}: cannot read {key} from {path} ({e})") from None
        if not isinstance(arrays[key], np.ndarray):
            raise ValueError(f"{where}: {key} file {path} is not a single .npy array")
    return arrays


@lru_cache(maxsize=None)
def _shipped_presets() -> dict:
    """Name -> resource for the presets in mindbark/presets (top level: v1 names; one folder deep: `v2/...`)."""
    presets = {}
    for entry in (resources.files(__package__) / "presets").iterdir():
        inner = entry.iterdir() if entry.is_dir() else [entry]
        prefix = f"{entry.name}/" if entry.is_dir() else ""
        for item in inner:
            if item.is_file() and item.name.endswith(".npz"):
                presets[prefix + item.name[: -len(".npz")]] = item
    return presets


class UnknownVoiceError(ValueError):
    """A voice that is neither a known name nor an existing file. The message suggests close names and says how to
    list them all: `list_voices()` here; the CLI and the console say their own way (`listing`)."""

    def __init__(self, problem: str, name: str, names: list[str]):
        self.problem, self.count = problem, len(names)
        self.close = difflib.get_close_matches(name, names, n=3, cutoff=0.6)
        super().__init__(self.message("list_voices()"))

    def message(self, listing: str) -> str:
        hint = f"; did you mean {', '.join(map(repr, self.close))}?" if self.close else ""
        return f"{self.problem}{hint} ({listing} gives all {self.count} names)"
