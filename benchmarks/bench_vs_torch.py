#!/usr/bin/env python
"""mindbark against the PyTorch reference (transformers' BarkModel): same weights, same text, same work.

    python benchmarks/bench_vs_torch.py --model bark-small --semantic-tokens 160 --threads 2 --repeats 2

Each implementation runs in a fresh process of its own (benchmarks/run_torch.py, benchmarks/run_mindbark.py), one
after the other; this script only prepares the weights, collects the records and reports: a Markdown table on
stdout, the JSON (--out) and a PNG chart beside it.
"""

import argparse
import datetime as dt
import importlib.util
import json
import os
import platform
import subprocess
import sys
import tempfile
from importlib import metadata
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # run as a script: find the `benchmarks` package and this checkout's mindbark

from benchmarks import report, weights  # noqa: E402

DEFAULT_TEXT = "你好,欢迎使用Bark模型!"
SEED = 0


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default="bark-small",
                   help="tiny, bark-small or bark (random weights at those shapes, made once and cached), or the "
                        "path of a Hugging Face-format Bark checkpoint (default: bark-small)")
    p.add_argument("--text", default=DEFAULT_TEXT, help=f"what to say (default: {DEFAULT_TEXT})")
    p.add_argument("--semantic-tokens", type=int, default=None, metavar="N",
                   help="generate exactly N semantic tokens (end of sequence suppressed) so both sides do equal "
                        "work; default: Bark's own stopping rule (min_eos_p 0.2, at most 768)")
    p.add_argument("--batch", type=int, default=1, help="the text this many times in one batch (default 1)")
    p.add_argument("--threads", type=int, default=len(os.sched_getaffinity(0)),
                   help="CPU threads for both frameworks (default: the cores this process may use)")
    p.add_argument("--repeats", type=int, default=3, help="warm calls after the cold one (default 3)")
    p.add_argument("--device", default="cpu", choices=["cpu", "gpu", "ascend"], help="default cpu")
    p.add_argument("--dtype", default="float32", choices=["float32", "float16", "bfloat16"], help="default float32")
    p.add_argument("--engine", default=None, choices=["cpu", "device"],
                   help="mindbark's engine: cpu (host KV cache and sampling) or device (both in the graphs); "
                        "default: mindbark's own choice (cpu on CPU, device on GPU and Ascend)")
    p.add_argument("--weights", default="fp32", choices=["fp32", "bf16", "int8"],
                   help="how mindbark holds the GPTs' weights on CPU (default fp32; torch stays fp32)")
    p.add_argument("--offload", action=argparse.BooleanOptionalAction, default=True,
                   help="mindbark keeps only the running stage's weights in memory (its default; --no-offload keeps "
                        "all four, as torch does)")
    p.add_argument("--graph-cache", default="reuse", choices=["reuse", "fresh", "off"],
                   help="mindbark's saved compiled graphs: reuse the ones an earlier run saved (its default; the "
                        "first run on a machine compiles and saves them), fresh: an empty cache, so the cold call "
                        "compiles everything as a first run ever does, off: compile in memory only")
    p.add_argument("--sample", action="store_true",
                   help="Suno's sampling (temperatures 0.7 / 0.7 / 0.5) instead of greedy decoding")
    p.add_argument("--cache-dir", type=Path, default=None,
                   help=f"where built and converted weights are kept (default {weights.default_cache()})")
    p.add_argument("--out", type=Path, default=None,
                   help="the JSON to write; the chart goes beside it as .png "
                        "(default benchmarks/results/<model>-<device>.json)")
    args = p.parse_args(argv)
    if args.semantic_tokens is not None and not 1 <= args.semantic_tokens <= 767:
        p.error("--semantic-tokens must be in [1, 767]")
    for name in ("batch", "threads"):
        if getattr(args, name) < 1:
            p.error(f"--{name} must be >= 1")
    if args.repeats < 0:
        p.error("--repeats must be >= 0")
    return args


def sampling(args) -> dict:
    """One statement of the decoding settings; each worker translates it into its framework's arguments."""
    temps = (0.7, 0.7, 0.5) if args.sample else (None, None, None)  # None: argmax
    forced = args.semantic_tokens is not None
    return {"semantic": {"temperature": temps[0], "top_k": None, "top_p": None,
                         "min_eos_p": None if forced else 0.2,
                         "max_new_tokens": args.semantic_tokens if forced else 768, "forbid_eos": forced},
            "coarse": {"temperature": temps[1], "top_k": None, "top_p": None},
            "fine": {"temperature": temps[2]}}


def machine() -> dict:
    import psutil

    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor()) if Path("/proc/cpuinfo").exists() \
        else platform.processor()
    versions = {}
    for name in ("torch", "transformers", "mindspore", "numpy", "psutil", "matplotlib"):
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return {"cpu": cpu, "logical_cores": os.cpu_count(), "physical_cores": psutil.cpu_count(logical=False),
            "usable_cores": len(os.sched_getaffinity(0)), "ram_gib": round(psutil.virtual_memory().total / 2**30, 1),
            "os": platform.platform(), "python": platform.python_version(), "versions": versions,
            "hostname": platform.node()}


def git_state() -> dict:
    def git(*cmd):
        out = subprocess.run(["git", *cmd], cwd=ROOT, capture_output=True, text=True)
        return out.stdout.strip() if out.returncode == 0 else None

    status = git("status", "--porcelain", "--untracked-files=no")
    return {"commit": git("rev-parse", "HEAD"), "dirty": bool(status) if status is not None else None}


def run_worker(name: str, job: dict, tmp: Path, threads: int) -> dict:
    """Run benchmarks/run_<name>.py in a fresh process and read back its record."""
    job_path, out_path = tmp / f"{name}-job.json", tmp / f"{name}-result.json"
    job_path.write_text(json.dumps(job))
    env = dict(os.environ, OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads),
               OPENBLAS_NUM_THREADS=str(threads), HF_HUB_OFFLINE="1", TOKENIZERS_PARALLELISM="false")
    env.setdefault("GLOG_v", "3")  # MindSpore: errors only
    print(f"running {name} in a fresh process ...", file=sys.stderr, flush=True)
    proc = subprocess.run([sys.executable, "-m", f"benchmarks.run_{name}", str(job_path), str(out_path)],
                          cwd=ROOT, env=env)
    if proc.returncode != 0 or not out_path.is_file():
        sys.exit(f"{Path(sys.argv[0]).stem}: the {name} worker failed (exit status {proc.returncode}); "
                 "its output is above")
    return json.loads(out_path.read_text())


def frameworks_missing(prog: str) -> bool:
    """Say in one line (and return True) if either side's framework is not installed."""
    missing = [m for m in ("torch", "transformers") if importlib.util.find_spec(m) is None]
    if missing:
        print(f"{prog}: the PyTorch reference needs {' and '.join(missing)}; install the benchmark extra: "
              "pip install -e \".[torch]\"", file=sys.stderr)
        return True
    if importlib.util.find_spec("mindspore") is None:
        print(f"{prog}: mindspore is not installed; pip install -e .", file=sys.stderr)
        return True
    return False


def main(argv=None) -> int:
    args = parse_args(argv)
    if frameworks_missing("bench_vs_torch"):
        return 2

    name = Path(args.model).name if Path(args.model).is_dir() else args.model
    out = args.out or ROOT / "benchmarks" / "results" / f"{name}-{args.device}.json"
    info = weights.resolve(args.model, args.cache_dir or weights.default_cache())
    settings = {"model": name, "text": args.text, "batch": args.batch, "semantic_tokens": args.semantic_tokens,
                "sample": args.sample, "threads": args.threads, "repeats": args.repeats, "device": args.device,
                "dtype": args.dtype, "engine": args.engine, "weights": args.weights, "offload": args.offload,
                "graph_cache": args.graph_cache,
                "seed": SEED, "sampling": sampling(args)}
    job = {**{k: settings[k] for k in ("threads", "repeats", "device", "dtype", "engine", "weights", "offload",
                                       "seed", "sampling")},
           "texts": [args.text] * args.batch, "hf_dir": info["hf_dir"], "mindbark_dir": info["mindbark_dir"]}

    loadavg_before = os.getloadavg()
    started = dt.datetime.now(dt.timezone.utc)
    with tempfile.TemporaryDirectory(prefix="bench_vs_torch-") as tmp:
        job["graph_cache"] = {"reuse": None, "fresh": str(Path(tmp) / "graphs"), "off": False}[args.graph_cache]
        results = {name_: run_worker(name_, job, Path(tmp), args.threads) for name_ in report.IMPLS}
    for r in results.values():
        r["metrics"] = report.summarize(r)
    doc = {
        "benchmark": "mindbark vs transformers BarkModel (PyTorch)",
        "schema": 1,
        "command": [Path(sys.argv[0]).name, *(sys.argv[1:] if argv is None else argv)],
        "started": started.isoformat(timespec="seconds"),
        "wall_s": (dt.datetime.now(dt.timezone.utc) - started).total_seconds(),
        "settings": settings,
        "weights": {**info, "kind": f"random weights, configs/{name}.json shapes" if info["random"] else "checkpoint"},
        "machine": machine(),
        "git": git_state(),
        "load_average": {"before": loadavg_before, "after": os.getloadavg()},
        "work": report.check_work(results, greedy=not args.sample),
        "results": results,
        "ratios": report.ratios(results["torch"]["metrics"], results["mindbark"]["metrics"]),
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(doc, indent=2) + "\n")
    chart = report.draw_chart(doc, out.with_suffix(".png"))
    print(report.markdown(doc))
    print(f"\nwrote {out}" + (f" and {chart}" if chart else " (no chart: pip install matplotlib)"), file=sys.stderr)
    if not doc["work"]["equal"]:
        print("bench_vs_torch: the two sides did different amounts of work: " + "; ".join(doc["work"]["problems"]),
              file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
