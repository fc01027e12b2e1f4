"""The weights both sides load: one Hugging Face-format directory for torch and its mindbark conversion.

`tiny`, `bark-small` or `bark` (a name in configs/) means random weights at those shapes, made once by `transformers`
(`mindbark.reference.hf_bark`) and cached; a path means a real checkpoint, converted once by mindbark's converter.
Building runs in a process of its own (`python -m benchmarks.weights`), so the parent stays free of both frameworks.
"""

import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CONFIGS = ROOT / "configs"
DONE = "bench-weights.json"  # written last: a directory without it is incomplete
SEED = 0
# A stand-in for bert-base-multilingual-cased's vocabulary (the hub is not reachable here): the ids differ from the
# real tokenizer's, the work does not (the semantic model always reads 256 text positions).
STANDIN_VOCAB = (["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + list("!\"'(),-.:;?[]♪，。！？、") +
                 list("你好欢迎使用模型") + ["Bark", "[laughter]", "[laughs]", "[music]"] +
                 [chr(c) for c in range(ord("0"), ord("9") + 1)] +
                 [chr(c) for c in range(ord("A"), ord("Z") + 1)] + [chr(c) for c in range(ord("a"), ord("z") + 1)] +
                 ["##" + chr(c) for c in range(ord("a"), ord("z") + 1)])


def default_cache() -> Path:
    """`$MINDBARK_HOME/bench`, else `~/.cache/mindbark/bench` (where mindbark keeps its own conversions)."""
    home = os.environ.get("MINDBARK_HOME")
    base = Path(home) if home else Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "mindbark"
    return base / "bench"


def _target(model: str, cache: Path) -> tuple[Path, dict]:
    """Where `model`'s weights live in the cache, and what identifies them."""
    config = CONFIGS / f"{model}.json"
    if config.is_file():
        digest = hashlib.sha256(config.read_bytes()).hexdigest()[:12]
        return cache / f"{model}-seed{SEED}-{digest}", {"random": True, "config": str(config), "seed": SEED}
    src = Path(model).expanduser().resolve()
    if not src.is_dir():
        raise SystemExit(f"--model {model}: neither a name in {CONFIGS} (tiny, bark-small, bark) nor a directory")
    if (src / "mindbark.json").is_file():
        raise SystemExit(f"--model {model}: a mindbark directory; the benchmark needs the Hugging Face-format "
                         "checkpoint it came from (torch loads that one)")
    stamp = hashlib.sha256(str(src).encode())
    for f in sorted(src.iterdir()):
        if f.is_file():
            stamp.update(f"{f.name}:{f.stat().st_size}:{f.stat().st_mtime_ns}".encode())
    return cache / "converted" / f"{src.name}-{stamp.hexdigest()[:16]}", {"random": False, "source": str(src)}


def resolve(model: str, cache: Path) -> dict:
    """Paths of both sides' weights, building them in a subprocess first if the cache lacks them.

    Returns:
        {"hf_dir", "mindbark_dir", "random", and "config" + "seed" or "source"}.
    """
    target, _ = _target(model, cache)
    if not (target / DONE).is_file():
        print(f"preparing weights for {model} in {target} (once)", file=sys.stderr, flush=True)
        proc = subprocess.run([sys.executable, "-m", "benchmarks.weights", model, str(cache)], cwd=ROOT)
        if proc.returncode:
            sys.exit(f"bench_vs_torch: building the {model} weights failed (exit status {proc.returncode}); "
                     "its output is above")
    return json.loads((target / DONE).read_text())


def build(model: str, cache: Path) -> dict:
    target, meta = _target(model, cache)
    from mindbark.convert import convert_checkpoint

    tmp = target.with_name(target.name + ".partial")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    if meta["random"]:
        hf_dir = _random_hf(model, tmp / "hf")
        final_hf = target / "hf"
    else:
        hf_dir = final_hf = Path(meta["source"])
    convert_checkpoint(hf_dir, tmp / "mindbark")
    info = {**meta, "hf_dir": str(final_hf), "mindbark_dir": str(target / "mindbark"),
            "tokenizer": "stand-in vocabulary" if meta["random"] else "the checkpoint's"}
    (tmp / DONE).write_text(json.dumps(info, indent=2) + "\n")
    shutil.rmtree(target, ignore_errors=True)
    tmp.rename(target)
    return info


def _random_hf(model: str, path: Path) -> Path:
    """transformers' BarkModel with random weights at `configs/<model>.json`, saved in the hub's layout."""
    import torch

    from mindbark.reference import hf_bark, save_hf_bark

    hf = hf_bark(model, seed=SEED)
    with torch.no_grad():
        # as a trained Bark behaves (tests/conftest.py: shape_for_generation): the coarse head never ranks the pad
        # and infer ids (>= 12_048) first. With random weights transformers' greedy second codebook could land on
        # one, and EnCodec's 1024-entry codebooks would then be indexed out of range.
        hf.coarse_acoustics.lm_head.weight[12_048:] = 0
    save_hf_bark(hf, path)
    (path / "vocab.txt").write_text("\n".join(STANDIN_VOCAB) + "\n", encoding="utf-8")
    (path / "tokenizer_config.json").write_text(json.dumps(
        {"tokenizer_class": "BertTokenizer", "do_lower_case": False, "model_max_length": 512}, indent=2) + "\n")
    return path


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit("usage: python -m benchmarks.weights MODEL CACHE_DIR")
    build(sys.argv[1], Path(sys.argv[2]))
