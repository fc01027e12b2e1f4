#!/usr/bin/env python
"""Long-form throughput: several sentences spoken one at a time, as one batch, and streamed, against PyTorch.

    python benchmarks/bench_long.py --model bark-small --semantic-tokens 64 --threads 2

Each implementation runs in a fresh process (the workers of bench_vs_torch.py, in their long-form mode) on identical
weights and one voice preset. Throughput is seconds of audio per wall-clock second; time to first audio is when the
first sentence's waveform existed. Torch has no streaming API: its sequential run is what a user would write.
"""

import argparse
import datetime as dt
import json
import os
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # run as a script: find the `benchmarks` package and this checkout's mindbark

from benchmarks import report, weights  # noqa: E402
from benchmarks.bench_vs_torch import SEED, frameworks_missing, git_state, machine, run_worker, sampling  # noqa: E402

SENTENCES = [
    "Hello, my name is Suno.",
    "And, uh, I like pizza [laughs].",
    "But I also have other interests, such as playing tic tac toe.",
    "The weather today is lovely, so we walked along the river.",
    "Could you pass me the salt, please?",
    "Nobody expected the little robot to sing that well.",
    "We will meet again at ten o'clock tomorrow morning.",
    "Thank you for listening, and good night!",
]
PRESETS = ROOT / "mindbark" / "presets"
RUNS = (("torch", "sequential"), ("torch", "batched"), ("mindbark", "sequential"), ("mindbark", "batched"),
        ("mindbark", "streamed"))


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default="bark-small", help="tiny, bark-small, bark or a checkpoint path, as in "
                                                         "bench_vs_torch.py (default bark-small)")
    p.add_argument("--sentences", type=int, default=len(SENTENCES),
                   help=f"how many of the built-in sentences (1..{len(SENTENCES)}, default all)")
    p.add_argument("--semantic-tokens", type=int, default=64, metavar="N",
                   help="exactly N semantic tokens per sentence (end of sequence suppressed) so every run does "
                        "equal work (default 64, about 1.3 s of audio each)")
    p.add_argument("--voice", default="en_speaker_6",
                   help="a preset shipped in mindbark/presets, or an .npz path, used by every sentence on both "
                        "sides; 'none' for none (default en_speaker_6)")
    p.add_argument("--threads", type=int, default=len(os.sched_getaffinity(0)),
                   help="CPU threads for both frameworks (default: the cores this process may use)")
    p.add_argument("--repeats", type=int, default=0,
                   help="runs of each way after the first; the figures are from the last run (default 0)")
    p.add_argument("--device", default="cpu", choices=["cpu", "gpu", "ascend"], help="default cpu")
    p.add_argument("--dtype", default="float32", choices=["float32", "float16", "bfloat16"], help="default float32")
    p.add_argument("--offload", action=argparse.BooleanOptionalAction, default=True,
                   help="mindbark keeps only the running stage's weights in memory (default)")
    p.add_argument("--cache-dir", type=Path, default=None,
                   help=f"where built and converted weights are kept (default {weights.default_cache()})")
    p.add_argument("--out", type=Path, default=None,
                   help="the JSON to write (default benchmarks/results/long-<model>-<device>.json)")
    args = p.parse_args(argv)
    if not 1 <= args.sentences <= len(SENTENCES):
        p.error(f"--sentences must be in [1, {len(SENTENCES)}]")
    if not 1 <= args.semantic_tokens <= 767:
        p.error("--semantic-tokens must be in [1, 767]")
    if args.threads < 1:
        p.error("--threads must be >= 1")
    if args.repeats < 0:
        p.error("--repeats must be >= 0")
    args.sample = False  # greedy: batched and sequential runs must give the same tokens
    args.voice_path = None if args.voice == "none" else _voice_path(p, args.voice)
    return args


def _voice_path(p: argparse.ArgumentParser, voice: str) -> str:
    path = Path(voice) if voice.endswith(".npz") else PRESETS / f"{voice.removeprefix('v2/')}.npz"
    if not path.is_file():
        p.error(f"--voice {voice}: no such preset ({path})")
    return str(path.resolve())


def figures(results: dict, sample_rate: int) -> dict:
    """Per way, from its last run: wall seconds, audio seconds, throughput, time to first audio, throughput over
    torch's sequential run; and the first run's wall seconds (compilation for new shapes included)."""
    out = {}
    for impl, mode in RUNS:
        runs = results[impl]["calls"][mode]
        r = runs[-1]
        audio_s = sum(r["audio_samples"]) / sample_rate
        out[f"{impl} {mode}"] = {"wall_s": r["total_s"], "audio_s": audio_s, "throughput": audio_s / r["total_s"],
                                 "first_audio_s": r["first_audio_s"], "first_run_wall_s": runs[0]["total_s"],
                                 "runs": len(runs), "stages": r["stages"]}
    base = out["torch sequential"]["throughput"]
    for f in out.values():
        f["vs_torch_sequential"] = f["throughput"] / base
    return out


def check_work(results: dict) -> dict:
    """Every run spoke every sentence with the same tokens (greedy) and the same number of samples."""
    problems = []
    if results["torch"]["input_ids"] != results["mindbark"]["input_ids"]:
        problems.append("the tokenizers gave different input ids")
    seen = {f"{impl} {mode} {i + 1}": r for impl, mode in RUNS for i, r in enumerate(results[impl]["calls"][mode])}
    for key in ("audio_samples", "semantic_tokens"):
        values = {name: r[key] for name, r in seen.items()}
        if len({json.dumps(v) for v in values.values()}) > 1:
            problems.append(f"{key} differ between runs: " + "; ".join(f"{n} {str(v)[:80]}" for n, v in values.items()))
    return {"equal": not problems, "problems": problems,
            "audio_samples": seen["torch sequential 1"]["audio_samples"]}


ROWS = (("wall time (s)", "wall_s", 2), ("first run's wall time (s): compilation of new shapes", "first_run_wall_s", 2),
        ("audio (s)", "audio_s", 2), ("throughput, audio s / wall s", "throughput", 3),
        ("throughput / torch sequential", "vs_torch_sequential", 2), ("time to first audio (s)", "first_audio_s", 2))


def markdown(doc: dict) -> str:
    f, s = doc["figures"], doc["settings"]
    names = [f"{impl} {mode}" for impl, mode in RUNS]
    warmup = ", ".join(f"{impl} {t:.2f} s" for impl, t in doc["warmup"].items())
    lines = [f"{s['model']} ({doc['weights']['kind']}), {len(s['texts'])} sentences, {s['semantic_tokens']} semantic "
             f"tokens each, voice {s['voice']}, greedy, {s['dtype']}, {s['threads']} threads, {s['device']}, "
             f"mindbark offload {'on' if s.get('offload', True) else 'off'}, "
             f"{1 + s['repeats']} run(s) of each way; warm-up (first sentence alone): {warmup}",
             "", "| | " + " | ".join(names) + " |", "|---|" + "---:|" * len(names)]
    for label, key, digits in ROWS:
        lines.append(f"| {label} | " + " | ".join(report._fmt(f[n][key], digits) for n in names) + " |")
    for stage in report.STAGES:
        lines.append(f"| {stage} (s) | " + " | ".join(report._fmt(f[n]["stages"].get(stage), 2) for n in names) + " |")
    return "\n".join(lines)


def main(argv=None) -> int:
    args = parse_args(argv)
    if frameworks_missing("bench_long"):
        return 2
    name = Path(args.model).name if Path(args.model).is_dir() else args.model
    out = args.out or ROOT / "benchmarks" / "results" / f"long-{name}-{args.device}.json"
    info = weights.resolve(args.model, args.cache_dir or weights.default_cache())
    texts = SENTENCES[:args.sentences]
    settings = {"model": name, "texts": texts, "semantic_tokens": args.semantic_tokens, "voice": args.voice,
                "repeats": args.repeats, "threads": args.threads, "device": args.device, "dtype": args.dtype,
                "offload": args.offload,
                "seed": SEED, "sampling": sampling(args)}
    job = {**{k: settings[k] for k in ("texts", "threads", "repeats", "device", "dtype", "offload", "seed",
                                       "sampling")},
           "long": True, "voice": args.voice_path, "hf_dir": info["hf_dir"], "mindbark_dir": info["mindbark_dir"]}

    started = dt.datetime.now(dt.timezone.utc)
    loadavg_before = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="bench_long-") as tmp:
        results = {impl: run_worker(impl, job, Path(tmp), args.threads) for impl in report.IMPLS}
    doc = {
        "benchmark": "long-form throughput: mindbark vs transformers BarkModel (PyTorch)",
        "schema": 1,
        "command": [Path(sys.argv[0]).name, *(sys.argv[1:] if argv is None else argv)],
        "started": started.isoformat(timespec="seconds"),
        "wall_s": (dt.datetime.now(dt.timezone.utc) - started).total_seconds(),
        "settings": settings,
        "weights": {**info, "kind": f"random weights, configs/{name}.json shapes" if info["random"] else "checkpoint"},
        "machine": machine(),
        "git": git_state(),
        "load_average": {"before": loadavg_before, "after": os.getloadavg()},
        "work": check_work(results),
        "warmup": {impl: results[impl]["calls"]["warmup"]["total_s"] for impl in report.IMPLS},
        "figures": figures(results, results["torch"]["sample_rate"]),
        "peak_rss_mb": {impl: results[impl]["peak_rss_mb"] for impl in report.IMPLS},
        "results": results,
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(doc, indent=2) + "\n")
    print(markdown(doc))
    print(f"\nwrote {out}", file=sys.stderr)
    if not doc["work"]["equal"]:
        print("bench_long: the runs did different work: " + "; ".join(doc["work"]["problems"]), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
