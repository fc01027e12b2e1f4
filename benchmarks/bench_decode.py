#!/usr/bin/env python
"""Decode steps against the memory wall: how close a one-token step of the semantic and coarse GPTs comes to the
time its bytes take to read at this machine's memory bandwidth.

    python benchmarks/bench_decode.py --model bark-small --threads 2 --out benchmarks/results/decode-bark-small-epyc.json

The bandwidth is measured first by `membw.cc` (built here with the system compiler): `--threads` threads sum
their halves of a 1 GiB buffer, the best of seven rounds. Then, for each weight format asked for, a fresh process
loads the model (random weights at the real shapes, as bench_vs_torch makes them), fills the shared KV cache with
a prompt as long as Bark's (semantic: 257 positions, Bark's 256 text and history slots summed plus one; coarse: a
630-position window) and times `--steps` decode steps of each GPT, as the pipeline runs them (the semantic model
over its whole head, the coarse one over one codebook's 1024 rows). A step reads every projection weight once, the
LM head rows it asks for, and the keys and values of the positions before it; `bound` is those bytes over the
measured bandwidth. `--in-generation N` also times the steps inside a greedy generation of N semantic tokens.
"""

import argparse
import datetime as dt
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # run as a script: find the `benchmarks` package and this checkout's mindbark

from benchmarks import weights  # noqa: E402
from benchmarks.bench_vs_torch import git_state, machine  # noqa: E402

PROMPTS = {"semantic": 257, "coarse_acoustics": 630}
CODEBOOK = 1024


def bandwidth(threads: int) -> float:
    """GB/s that `threads` threads read at, by membw.cc."""
    with tempfile.TemporaryDirectory(prefix="membw-") as tmp:
        exe = Path(tmp) / "membw"
        subprocess.run([os.environ.get("CXX", "c++"), "-O3", "-march=native", "-fopenmp-simd", "-pthread",
                        str(ROOT / "benchmarks" / "membw.cc"), "-o", str(exe)], check=True)
        out = subprocess.run([str(exe), str(threads), "1024", "7"], check=True, capture_output=True, text=True)
    return float(out.stdout.split()[0])


def worker(mindbark_dir: str, fmt: str, threads: int, steps: int) -> dict:
    """Decode-step times (ms) and bytes per step of the semantic and coarse GPTs in weight format `fmt`."""
    import mindspore as ms
    import numpy as np
    from mindspore import Tensor

    from mindbark import BarkModel

    ms.device_context.cpu.op_tuning.threads_num(threads)
    formats = {} if fmt == "fp32" else {"weights": fmt}  # fp32 alone also runs on trees before weight formats
    model = BarkModel.from_pretrained(mindbark_dir, device="cpu", graph_cache=False, **formats)
    out = {}
    for name, prompt_len in PROMPTS.items():
        gpt = getattr(model, name)
        cfg = gpt.config
        head = None if name == "semantic" else gpt.head_rows(cfg.output_vocab_size - CODEBOOK,
                                                            cfg.output_vocab_size)
        keys = Tensor(np.ones((1, cfg.block_size), bool))
        prompt = np.random.default_rng(0).integers(0, cfg.input_vocab_size, (1, prompt_len))
        gpt.setup_cache(1)
        logits = gpt.prefill(prompt, keys, head=head)
        times = []
        for i in range(steps):
            nxt = logits[:, -1].argmax(-1)[:, None]
            start = time.perf_counter()
            logits = gpt.forward(nxt, prompt_len + i, keys, head=head)
            times.append(time.perf_counter() - start)
        projections = sum(p.asnumpy().nbytes for n, p in gpt.parameters_and_names()
                          if n.startswith("h.") and n.endswith(".weight") and len(p.shape) == 2)
        head_bytes = (gpt.lm_head.weight if head is None else head).asnumpy().nbytes
        hs = cfg.n_embd // cfg.n_head
        kv = 2 * cfg.n_layer * cfg.n_head * (prompt_len + steps / 2) * hs * 4  # the mean live positions
        warm = times[steps // 10:]  # the first steps page in what the prompt did not read
        out[name] = {"step_ms_median": 1000 * statistics.median(warm), "step_ms_min": 1000 * min(warm),
                     "weight_bytes": projections + head_bytes, "kv_bytes": kv}
    return out


def in_generation(mindbark_dir: str, fmt: str, threads: int, tokens: int) -> dict:
    """Median and mean decode-step and prompt-chunk times (ms) of the semantic and coarse GPTs inside a greedy
    generation of `tokens` semantic tokens (the second of two, the first compiles), timed around `GPT.forward`."""
    import mindspore as ms

    from mindbark import BarkModel, BarkProcessor
    from mindbark.generation.config import config_from_kwargs
    from mindbark.models.gpt import GPT
    from mindbark.pipeline import generate

    ms.device_context.cpu.op_tuning.threads_num(threads)
    formats = {} if fmt == "fp32" else {"weights": fmt}
    model = BarkModel.from_pretrained(mindbark_dir, device="cpu", graph_cache=False, **formats)
    processor = BarkProcessor.from_pretrained(mindbark_dir)
    inputs = processor(["Hello, my name is Suno. And, uh — and I like pizza. [laughs]"])
    config = config_from_kwargs(do_sample=False, semantic_max_new_tokens=tokens, semantic_min_eos_p=1.0)
    names = {id(model.semantic): "semantic", id(model.coarse_acoustics): "coarse_acoustics"}
    times = {}
    forward = GPT.forward

    def timed(gpt, x, start, key_mask, out_idx=None, head=None):
        begin = time.perf_counter()
        logits = forward(gpt, x, start, key_mask, out_idx, head)
        kind = "step" if x.shape[1] == 1 else "chunk"
        times.setdefault(f"{names[id(gpt)]}_{kind}", []).append(time.perf_counter() - begin)
        return logits

    GPT.forward = timed
    for _ in range(2):
        times.clear()
        generate(model, inputs["input_ids"], inputs["attention_mask"], None, config, seed=0)
    return {k: {"median_ms": 1000 * statistics.median(v), "mean_ms": 1000 * statistics.mean(v), "n": len(v)}
            for k, v in times.items()}


def fresh_process(what: str, *args: str) -> dict:
    """The JSON that this script prints last when run with `args` in a process of its own."""
    proc = subprocess.run([sys.executable, __file__, *args], capture_output=True, text=True, cwd=ROOT)
    if proc.returncode:
        sys.exit(f"bench_decode: {what} failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", default="bark-small", help="tiny, bark-small or bark (random weights; default "
                                                        "bark-small)")
    p.add_argument("--weights", nargs="+", default=["fp32", "bf16", "int8"], choices=["fp32", "bf16", "int8"])
    p.add_argument("--threads", type=int, default=len(os.sched_getaffinity(0)))
    p.add_argument("--steps", type=int, default=100, help="decode steps per GPT (default 100)")
    p.add_argument("--in-generation", type=int, metavar="TOKENS", default=0,
                   help="also time the steps inside a greedy generation of TOKENS semantic tokens (median and mean "
                        "over its steps: a generation's steps meet the rest of the pipeline)")
    p.add_argument("--out", type=Path, help="write the results as JSON here")
    p.add_argument("--worker", nargs=2, metavar=("DIR", "FORMAT"), help=argparse.SUPPRESS)
    p.add_argument("--generation-worker", nargs=2, metavar=("DIR", "FORMAT"), help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.worker:
        print(json.dumps(worker(args.worker[0], args.worker[1], args.threads, args.steps)))
        return 0
    if args.generation_worker:
        print(json.dumps(in_generation(*args.generation_worker, args.threads, args.in_generation)))
        return 0

    info = weights.resolve(args.model, weights.default_cache())
    gbps = bandwidth(args.threads)
    print(f"read bandwidth: {gbps:.1f} GB/s ({args.threads} threads)")
    results = {}
    for fmt in args.weights:
        results[fmt] = fresh_process(f"the {fmt} run", "--threads", str(args.threads), "--steps", str(args.steps),
                                     "--worker", info["mindbark_dir"], fmt)
        if args.in_generation:
            results[fmt]["in_generation"] = fresh_process(
                f"the {fmt} generation", "--threads", str(args.threads), "--in-generation", str(args.in_generation),
                "--generation-worker", info["mindbark_dir"], fmt)
            for kind, r in results[fmt]["in_generation"].items():
                print(f"{fmt:5} in a generation: {kind:22} median {r['median_ms']:7.2f} ms, mean {r['mean_ms']:7.2f} "
                      f"ms over {r['n']}")
        for name, r in results[fmt].items():
            if name == "in_generation":
                continue
            r["bound_ms"] = 1000 * (r["weight_bytes"] + r["kv_bytes"]) / (gbps * 1e9)
            r["weights_only_bound_ms"] = 1000 * r["weight_bytes"] / (gbps * 1e9)
            print(f"{fmt:5} {name:17} step {r['step_ms_median']:6.2f} ms (min {r['step_ms_min']:.2f}); reads "
                  f"{r['weight_bytes'] / 1e6:.0f} MB weights + {r['kv_bytes'] / 1e6:.0f} MB KV: bound "
                  f"{r['bound_ms']:.2f} ms, step / bound {r['step_ms_median'] / r['bound_ms']:.2f}")
    if args.out:
        doc = {"benchmark": "bench_decode", "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
               "model": args.model, "threads": args.threads, "steps": args.steps, "bandwidth_gbps": gbps,
               "machine": machine(), "git": git_state(), "results": results}
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(doc, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
