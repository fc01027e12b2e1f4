"""Model names to local directories: mindbark's cache, then the Hugging Face cache, then a download, converted once.

    bark-small -> suno/bark-small,  bark -> suno/bark,  tiny-random -> random weights built here (no download)
    hubert-base -> facebook/hubert-base-ls960,  quantizer-en -> GitMylo/bark-voice-cloning's quantizer .pth
                                                (the two networks besides Bark's EnCodec that make a voice)

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

from .convert import convert_cached, convert_checkpoint
from .convert import voice as voice_convert
from .convert.tables import ENCODER
from .errors import one_line
from .paths import MARKER, is_current, mindbark_home
from .random_model import tiny_random_dir, tiny_random_hubert_dir, tiny_random_quantizer_dir

MODELS = {"bark-small": "suno/bark-small", "bark": "suno/bark"}
HUBERTS = {"hubert-base": "facebook/hubert-base-ls960"}
# the English quantizer of bark-voice-cloning-HuBERT-quantizer (MIT); other languages' .pth files pass as paths
QUANTIZERS = {"quantizer-en": ("GitMylo/bark-voice-cloning", "quantifier_hubert_base_ls960_14.pth")}
TINY_RANDOM = "tiny-random"
# what a download fetches besides the weights; the speaker prompts are left out, mindbark ships the same presets
_SNAPSHOT_FILES = ["config.json", "generation_config.json", "tokenizer.json", "tokenizer_config.json", "vocab.txt",
                   "special_tokens_map.json"]
_WEIGHTS = ("model.safetensors", "model.safetensors.index.json", "pytorch_model.bin", "pytorch_model.bin.index.json")
_TRUE = {"1", "true", "yes", "on"}

Log = Callable[[str], None] | None


def resolve_model(model: str | os.PathLike, allow_download: bool = True, log: Log = None,
                  with_encoder: bool = False) -> Path:
    """A local directory holding `model`, ready for `BarkModel.from_pretrained`.

    Args:
        model: `bark-small`, `bark` (or their hub ids `suno/...`), `tiny-random`, or a directory: a mindbark
            one or a Hugging Face snapshot (which `from_pretrained` converts once).
        allow_download: fetch a missing model from the Hugging Face hub.
        log: called with a line of news when something slow happens (a conversion, a download).
        with_encoder: a named model converted before mindbark kept EnCodec's encoder is converted again.
    Raises:
        FileNotFoundError: no such directory, or a model that is neither on disk nor downloadable; the message says
            how to get the weights.
    """
    name = os.fspath(model)
    if name == TINY_RANDOM:
        return tiny_random_dir()
    repo = MODELS.get(name) or (name if name in MODELS.values() and not Path(name).is_dir() else None)
    if repo is not None:
        return _resolve_hub_model(repo, allow_download, log, with_encoder)
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


def how_to_get(repo_id: str, option: str = "the model", filename: str | None = None) -> str:
    """What to do by hand, with the command line `huggingface_hub` installs (`hf`; its `huggingface-cli` is gone).

    Args:
        option: what the fetched path is given as: "the model" (`--model`, or the console's model prompt),
            "--hubert", "--quantizer".
        filename: one file of the repository, rather than a snapshot of it.
    """
    local = repo_id.split("/")[-1]
    if filename is not None:
        return (f"on a connected machine run `pip install huggingface_hub` and `hf download {repo_id} {filename} "
                f"--local-dir {local}`, copy {local}/{filename} here and give its path (./{filename}) as {option}")
    return (f"on a connected machine run `pip install huggingface_hub` and `hf download {repo_id} --local-dir "
            f"{local}`, copy that folder here and give its path (./{local}) as {option}")


def _hub(what: str, hint: str):
    """`huggingface_hub`, after the offline and missing-package checks, each a one-line FileNotFoundError."""
    if os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in _TRUE:
        raise FileNotFoundError(f"{what} is not on this machine and HF_HUB_OFFLINE is set; {hint}")
    try:
        import huggingface_hub
    except ImportError:
        raise FileNotFoundError(f"{what} is not on this machine and huggingface_hub is not installed "
                                f"(pip install 'mindbark[hub]'); or {hint}") from None
    return huggingface_hub


def download(repo_id: str, log: Log = None, option: str = "the model") -> Path:
    """Download `repo_id`'s config, tokenizer and weights into the Hugging Face cache; returns the snapshot.

    Raises:
        FileNotFoundError: offline, `huggingface_hub` missing, or the download failing, in one line that says how to
            get the weights by hand.
    """
    huggingface_hub = _hub(repo_id, how_to_get(repo_id, option))
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
        raise FileNotFoundError(f"cannot download {repo_id} ({one_line(e)}); {how_to_get(repo_id, option)}") from None
    finally:
        hub_logger.setLevel(level)
    if not is_snapshot(path):
        raise FileNotFoundError(f"the download of {repo_id} holds no config.json and weights; "
                                f"{how_to_get(repo_id, option)}")
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


def _resolve_hub_model(repo_id: str, allow_download: bool, log: Log, with_encoder: bool = False) -> Path:
    dst = mindbark_home() / repo_id.split("/")[-1]
    if is_current(dst):
        if not with_encoder or (dst / f"{ENCODER}.safetensors").is_file():
            return dst
        if log:  # converted before mindbark kept EnCodec's encoder, which voices from recordings need
            log(f"{dst} has no EnCodec encoder; converting {repo_id} again")
    src = find_snapshot(repo_id)
    if src is None:
        if not allow_download:
            raise FileNotFoundError(f"{repo_id} is not on this machine; {how_to_get(repo_id)}")
        src = download(repo_id, log)
    if log:
        log(f"converting {repo_id} from {src} into {dst} (once)")
    return convert_checkpoint(src, dst, overwrite=True)


def resolve_hubert(name: str | os.PathLike, allow_download: bool = True, log: Log = None) -> Path:
    """A converted HuBERT directory for `name`: `hubert-base` (or `facebook/hubert-base-ls960`), `tiny-random`, a
    converted directory, or a `transformers` HuBERT snapshot (converted once into the cache).

    Raises:
        FileNotFoundError: as `resolve_model`, with how to fetch the snapshot by hand.
    """
    name = os.fspath(name)
    if name == TINY_RANDOM:
        return tiny_random_hubert_dir()
    repo = HUBERTS.get(name) or (name if name in HUBERTS.values() and not Path(name).is_dir() else None)
    if repo is not None:
        dst = mindbark_home() / repo.split("/")[-1]
        if is_current(dst):
            return dst
        src = find_snapshot(repo)
        if src is None:
            if not allow_download:
                raise FileNotFoundError(f"{repo} is not on this machine; {how_to_get(repo, '--hubert')}")
            src = download(repo, log, "--hubert")
        if log:
            log(f"converting {repo} from {src} into {dst} (once)")
        return voice_convert.convert_hubert(src, dst, overwrite=True)
    path = Path(name).expanduser()
    if path.is_dir():
        if (path / MARKER).is_file():
            return path
        return convert_cached(path, voice_convert.convert_hubert)
    raise FileNotFoundError(f"HuBERT {name!r} is neither a directory nor one of {', '.join([*HUBERTS, TINY_RANDOM])}")


def resolve_quantizer(name: str | os.PathLike, allow_download: bool = True, log: Log = None) -> Path:
    """A converted quantizer directory for `name`: `quantizer-en`, `tiny-random`, a converted directory, or a
    quantizer `.pth` (converted once into the cache).

    Raises:
        FileNotFoundError: as `resolve_model`, with how to fetch the file by hand.
    """
    name = os.fspath(name)
    if name == TINY_RANDOM:
        return tiny_random_quantizer_dir()
    if name in QUANTIZERS:
        repo, filename = QUANTIZERS[name]
        dst = mindbark_home() / name
        if is_current(dst):
            return dst
        hint = how_to_get(repo, "--quantizer", filename)
        cached = [p / filename for p in sorted((hf_hub_cache() / f"models--{repo.replace('/', '--')}" /
                                                "snapshots").glob("*")) if (p / filename).is_file()]
        if cached:
            src = cached[0]
        elif not allow_download:
            raise FileNotFoundError(f"{repo}/{filename} is not on this machine; {hint}")
        else:
            src = _download_file(repo, filename, hint, log)
        if log:
            log(f"converting {filename} into {dst} (once)")
        return voice_convert.convert_quantizer(src, dst, overwrite=True)
    path = Path(name).expanduser()
    if path.is_dir() and (path / MARKER).is_file():
        return path
    if path.is_file():
        return convert_cached(path, voice_convert.convert_quantizer)
    raise FileNotFoundError(f"quantizer {name!r} is neither a .pth file, a converted directory nor one of "
                            f"{', '.join([*QUANTIZERS, TINY_RANDOM])}")


def _download_file(repo_id: str, filename: str, hint: str, log: Log) -> Path:
    huggingface_hub = _hub(f"{repo_id}/{filename}", hint)
    if log:
        log(f"downloading {filename} from {repo_id} on the Hugging Face hub (once)")
    try:
        _check_resolvable(os.environ.get("HF_ENDPOINT") or "https://huggingface.co")
        return Path(huggingface_hub.hf_hub_download(repo_id, filename))
    except Exception as e:  # network, HTTP, disk and auth failures come in many types; all end the same way
        raise FileNotFoundError(f"cannot download {repo_id}/{filename} ({one_line(e)}); {hint}") from None
