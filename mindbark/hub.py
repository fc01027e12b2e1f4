"""Model names to local directories: mindbark's cache, then the Hugging Face cache, then a download, converted once.

    bark-small -> suno/bark-small,  bark -> suno/bark,  tiny-random -> random weights built here (no download)

A name resolves to `mindbark_home()/<name>`, a converted directory. On first use it is converted from a Hugging Face
snapshot already on disk (`$HF_HUB_CACHE`, else `$HF_HOME/hub`, else `~/.cache/huggingface/hub`), or from one
downloaded with `huggingface_hub` (an optional dependency: `pip install mindbark[hub]`).
"""

import logging
import os
import re
import socket
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlparse

from .convert import convert_checkpoint
from .errors import one_line
from .paths import is_current, mindbark_home
from .random_model import tiny_random_dir

MODELS = {"bark-small": "suno/bark-small", "bark": "suno/bark"}
TINY_RANDOM = "tiny-random"
# what a download fetches besides the weights; the speaker prompts are left out, mindbark ships the same presets
_SNAPSHOT_FILES = ["config.json", "generation_config.json", "tokenizer.json", "tokenizer_config.json", "vocab.txt",
                   "special_tokens_map.json"]
_WEIGHTS = ("model.safetensors", "model.safetensors.index.json", "pytorch_model.bin", "pytorch_model.bin.index.json")
_TRUE = {"1", "true", "yes", "on"}

Log = Callable[[str], None] | None


def resolve_model(model: str | os.PathLike, allow_download: bool = True, log: Log = None) -> Path:
    """A local directory holding `model`, ready for `BarkModel.from_pretrained`.

    Args:
        model: `bark-small`, `bark` (or their hub ids `suno/...`), `tiny-random`, or a directory: a mindbark
            one or a Hugging Face snapshot (which `from_pretrained` converts once).
        allow_download: fetch a missing model from the Hugging Face hub.
        log: called with a line of news when something slow happens (a conversion, a download).
    Raises:
        FileNotFoundError: no such directory, or a model that is neither on disk nor downloadable; the message says
            how to get the weights.
    """
    name = os.fspath(model)
    if name == TINY_RANDOM:
        return tiny_random_dir()
    repo = MODELS.get(name) or (name if name in MODELS.values() and not Path(name).is_dir() else None)
    if repo is not None:
        return _resolve_hub_model(repo, allow_download, log)
    path = Path(name).expanduser()
    if path.is_dir():
        return path
    if path.exists():
        raise FileNotFoundError(f"model {name!r} is a file; expected a model directory")
    raise FileNotFoundError(f"model {name!r} is neither a directory nor one of {', '.join([*MODELS, TINY_RANDOM])}")


def hf_hub_cache() -> Path:
    """Hugging Face's cache of hub downloads, as `huggingface_hub` finds it."""
    for var in ("HF_HUB_CACHE", "HUGGINGFACE_HUB_CACHE"):
        if os.environ.get(var):
            return Path(os.environ[var]).expanduser()
    home = os.environ.get("HF_HOME") or Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "huggingface"
    return Path(home).expanduser() / "hub"


def find_snapshot(repo_id: str, cache: str | os.PathLike | None = None) -> Path | None:
    """A complete snapshot of `repo_id` in the Hugging Face cache (the one `refs/main` names first), or None."""
    root = Path(cache or hf_hub_cache()) / f"models--{repo_id.replace('/', '--')}"
    snapshots = root / "snapshots"
    if not snapshots.is_dir():
        return None
    main = root / "refs" / "main"
    first = main.read_text().strip() if main.is_file() else None
    candidates = sorted(snapshots.iterdir(), key=lambda p: (p.name != first, -p.stat().st_mtime))
    return next((p for p in candidates if is_snapshot(p)), None)


def is_snapshot(path: Path) -> bool:
    """Whether `path` holds a Hugging Face-format Bark checkpoint: a config and weights."""
    return (path / "config.json").is_file() and any((path / w).is_file() for w in _WEIGHTS)


def how_to_get(repo_id: str) -> str:
    """What to do by hand, with the command line `huggingface_hub` installs (`hf`; its `huggingface-cli` is gone)."""
    local = repo_id.split("/")[-1]
    return (f"on a connected machine run `pip install huggingface_hub` and `hf download {repo_id} --local-dir "
            f"{local}`, copy that folder here and give its path (./{local}) as the model")


def download(repo_id: str, log: Log = None) -> Path:
    """Download `repo_id`'s config, tokenizer and weights into the Hugging Face cache; returns the snapshot.

    Raises:
        FileNotFoundError: offline, `huggingface_hub` missing, or the download failing, in one line that says how to
            get the weights by hand.
    """
    if os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in _TRUE:
        raise FileNotFoundError(f"{repo_id} is not on this machine and HF_HUB_OFFLINE is set; {how_to_get(repo_id)}")
    try:
        import huggingface_hub
    except ImportError:
        raise FileNotFoundError(f"{repo_id} is not on this machine and huggingface_hub is not installed "
                                f"(pip install 'mindbark[hub]'); or {how_to_get(repo_id)}") from None
    if log:
        log(f"downloading {repo_id} from the Hugging Face hub (once)")
    hub_logger = logging.getLogger("huggingface_hub")
    level = hub_logger.level
    hub_logger.setLevel(logging.ERROR)  # its retry warnings would bury the one line that says what to do
    try:
        _check_resolvable(os.environ.get("HF_ENDPOINT") or "https://huggingface.co")
        files = huggingface_hub.list_repo_files(repo_id)
        # safetensors when the repo has them: they convert without PyTorch
        weights = [f for f in files if re.fullmatch(r"model(-\d+-of-\d+)?\.safetensors(\.index\.json)?", f)] or \
                  [f for f in files if re.fullmatch(r"pytorch_model(-\d+-of-\d+)?\.bin(\.index\.json)?", f)]
        path = Path(huggingface_hub.snapshot_download(repo_id, allow_patterns=_SNAPSHOT_FILES + weights))
    except Exception as e:  # network, HTTP, disk and auth failures come in many types; all end the same way
        raise FileNotFoundError(f"cannot download {repo_id} ({one_line(e)}); {how_to_get(repo_id)}") from None
    finally:
        hub_logger.setLevel(level)
    if not is_snapshot(path):
        raise FileNotFoundError(f"the download of {repo_id} holds no config.json and weights; {how_to_get(repo_id)}")
    return path


def _check_resolvable(endpoint: str):
    """Fail at once when the hub's host name does not resolve (no network), instead of after minutes of retries.

    Behind a proxy the proxy resolves names, so the check is skipped there.
    """
    if any(os.environ.get(v) for v in ("HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy")):
        return
    host = urlparse(endpoint).hostname
    try:
        socket.getaddrinfo(host, 443)
    except (socket.gaierror, UnicodeError) as e:
        raise OSError(f"cannot resolve {host}: {e.strerror if isinstance(e, socket.gaierror) else e}") from None


def _resolve_hub_model(repo_id: str, allow_download: bool, log: Log) -> Path:
    dst = mindbark_home() / repo_id.split("/")[-1]
    if is_current(dst):
        return dst
    src = find_snapshot(repo_id)
    if src is None:
        if not allow_download:
            raise FileNotFoundError(f"{repo_id} is not on this machine; {how_to_get(repo_id)}")
        src = download(repo_id, log)
    if log:
        log(f"converting {repo_id} from {src} into {dst} (once)")
    return convert_checkpoint(src, dst, overwrite=True)
