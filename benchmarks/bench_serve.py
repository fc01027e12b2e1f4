#!/usr/bin/env python
"""`mindbark serve` under load: N concurrent clients against the same requests sent one at a time.

    python benchmarks/bench_serve.py --model bark-small --clients 4 --semantic-tokens 64 --batch-size 4

The server runs as a user would start it (`mindbark serve`, its own process, graphs from the cache) on a free
127.0.0.1 port, with random weights at the model's shapes (benchmarks/weights.py). Every request is a short
sentence capped at `--semantic-tokens` (random weights never pick the end of speech, so each one does that much
work), streamed as raw PCM so that the time to first audio byte is measured as a client sees it. A warm-up round
compiles what each batch size needs first; then the clients' requests run one at a time, then all at once.
"""

import argparse
import datetime as dt
import json
import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # run as a script: find the `benchmarks` package and this checkout's mindbark

import httpx  # noqa: E402

from benchmarks import weights  # noqa: E402
from benchmarks.bench_long import SENTENCES  # noqa: E402
from benchmarks.bench_vs_torch import git_state, machine  # noqa: E402

SAMPLE_RATE = 24_000


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default="bark-small", help="tiny, bark-small or bark (random weights at those "
                                                         "shapes), or a checkpoint path (default bark-small)")
    p.add_argument("--clients", type=int, default=4, help="concurrent clients, one request each (default 4)")
    p.add_argument("--semantic-tokens", type=int, default=64, metavar="N",
                   help="semantic tokens per request at most (default 64, about 1.3 s of audio)")
    p.add_argument("--batch-size", type=int, default=None, help="the server's batch size (default: --clients)")
    p.add_argument("--voice", default="v2/en_speaker_6", help="every request's voice (default v2/en_speaker_6)")
    p.add_argument("--cache-dir", type=Path, default=None,
                   help=f"where built weights are kept (default {weights.default_cache()})")
    p.add_argument("--out", type=Path, default=None,
                   help="the JSON to write (default benchmarks/results/serve-<model>-cpu.json)")
    args = p.parse_args(argv)
    if not 1 <= args.clients <= len(SENTENCES) * 4:
        p.error(f"--clients must be in [1, {len(SENTENCES) * 4}]")
    if not 1 <= args.semantic_tokens <= 767:
        p.error("--semantic-tokens must be in [1, 767]")
    args.batch_size = args.batch_size or args.clients
    return args


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(model_dir: str, batch_size: int, clients: int, port: int, log_path: Path) -> subprocess.Popen:
    cmd = [sys.executable, "-m", "mindbark.cli", "serve", "--model", model_dir, "--port", str(port), "--device", "cpu",
           "--batch-size", str(batch_size), "--max-queue", str(4 * clients), "--log-level", "warning"]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen(cmd, env=env, stdout=log_path.open("w"), stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"the server exited ({proc.returncode}); see {log_path}")
        try:
            if httpx.get(f"{base}/health", timeout=5).status_code == 200:
                return proc
        except httpx.TransportError:
            pass
        time.sleep(0.5)
    proc.terminate()
    raise SystemExit("the server did not become ready within 600 s")


def one_request(base: str, body: dict) -> dict:
    """Send one streamed request; its latency, time to first audio byte and audio seconds."""
    start = time.perf_counter()
    first, size = None, 0
    with httpx.stream("POST", f"{base}/v1/audio/speech", json=body, timeout=3600) as r:
        if r.status_code != 200:
            raise SystemExit(f"request failed: {r.status_code} {r.read()[:300]!r}")
        for piece in r.iter_bytes():
            if first is None and piece:
                first = time.perf_counter() - start
            size += len(piece)
    return {"latency_s": time.perf_counter() - start, "ttfb_s": first, "audio_s": size / 2 / SAMPLE_RATE}


def round_of(base: str, bodies: list, concurrent: bool) -> dict:
    """All bodies at once (a thread per client) or one after another; per-request figures and the wall time."""
    results = [None] * len(bodies)

    def client(i):
        results[i] = one_request(base, bodies[i])

    start = time.perf_counter()
    if concurrent:
        threads = [threading.Thread(target=client, args=(i,)) for i in range(len(bodies))]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    else:
        for i in range(len(bodies)):
            client(i)
    wall = time.perf_counter() - start
    return {"wall_s": wall, "requests": results}


def percentile(values: list, q: float) -> float:
    values = sorted(values)
    k = (len(values) - 1) * q
    lo, hi = int(k), min(int(k) + 1, len(values) - 1)
    return values[lo] + (values[hi] - values[lo]) * (k - lo)


def summary(r: dict) -> dict:
    lat = [x["latency_s"] for x in r["requests"]]
    ttfb = [x["ttfb_s"] for x in r["requests"]]
    audio = sum(x["audio_s"] for x in r["requests"])
    return {"wall_s": r["wall_s"], "audio_s": audio, "throughput": audio / r["wall_s"],
            "requests_per_s": len(lat) / r["wall_s"], "latency_p50_s": percentile(lat, 0.5),
            "latency_p95_s": percentile(lat, 0.95), "ttfb_p50_s": percentile(ttfb, 0.5),
            "ttfb_p95_s": percentile(ttfb, 0.95)}


def markdown(doc: dict) -> str:
    one, many = doc["figures"]["one_at_a_time"], doc["figures"]["concurrent"]
    s = doc["settings"]
    rows = [("wall time (s)", "wall_s", 2), ("throughput, audio s / wall s", "throughput", 3),
            ("requests / s", "requests_per_s", 3), ("latency p50 (s)", "latency_p50_s", 2),
            ("latency p95 (s)", "latency_p95_s", 2), ("time to first audio byte p50 (s)", "ttfb_p50_s", 2),
            ("time to first audio byte p95 (s)", "ttfb_p95_s", 2)]
    lines = [f"{s['model']} (random weights), {s['clients']} requests of one sentence, at most {s['semantic_tokens']} "
             f"semantic tokens each, voice {s['voice']}, server batch size {s['batch_size']}",
             "", f"| | one at a time | {s['clients']} concurrent clients | ratio |", "|---|---:|---:|---:|"]
    for label, key, digits in rows:
        lines.append(f"| {label} | {one[key]:.{digits}f} | {many[key]:.{digits}f} | {many[key] / one[key]:.2f}× |")
    return "\n".join(lines)


def main(argv=None) -> int:
    args = parse_args(argv)
    model = weights.resolve(args.model, args.cache_dir or weights.default_cache())
    texts = [SENTENCES[i % len(SENTENCES)] for i in range(args.clients)]
    max_duration = (args.semantic_tokens + 0.5) / 49.9  # mindbark.api.max_tokens_for gives back the token count
    bodies = [{"model": "tts-1", "input": t, "voice": args.voice, "response_format": "pcm", "stream": True,
               "seed": i, "max_duration": max_duration} for i, t in enumerate(texts)]
    port = free_port()
    log_path = Path(os.environ.get("TMPDIR", "/tmp")) / f"bench_serve-{port}.log"
    started = time.perf_counter()
    proc = start_server(model["mindbark_dir"], args.batch_size, args.clients, port, log_path)
    ready_s = time.perf_counter() - started
    base = f"http://127.0.0.1:{port}"
    try:
        print(f"server ready after {ready_s:.1f} s; warming up", file=sys.stderr, flush=True)
        round_of(base, bodies[:1], concurrent=False)
        round_of(base, bodies, concurrent=True)  # compiles the batch sizes the concurrent round meets
        print("one at a time", file=sys.stderr, flush=True)
        sequential = round_of(base, bodies, concurrent=False)
        print(f"{args.clients} concurrent clients", file=sys.stderr, flush=True)
        concurrent = round_of(base, bodies, concurrent=True)
        metrics = httpx.get(f"{base}/metrics", timeout=30).text
    finally:
        proc.terminate()
        proc.wait(60)
    batches = {line.split()[0]: float(line.split()[1]) for line in metrics.splitlines()
               if line.startswith(("mindbark_batch_size_sum", "mindbark_batch_size_count"))}
    doc = {
        "settings": {"model": args.model, "clients": args.clients, "semantic_tokens": args.semantic_tokens,
                     "batch_size": args.batch_size, "voice": args.voice, "texts": texts},
        "weights": {k: v for k, v in model.items() if k != "hf_dir"},
        "server_ready_s": ready_s,
        "figures": {"one_at_a_time": summary(sequential), "concurrent": summary(concurrent)},
        "runs": {"one_at_a_time": sequential, "concurrent": concurrent},
        "mean_batch_size_all_rounds": batches["mindbark_batch_size_sum"] / batches["mindbark_batch_size_count"],
        "audio_equal_between_rounds": [a["audio_s"] for a in sequential["requests"]] ==
                                      [a["audio_s"] for a in concurrent["requests"]],
        "machine": machine(), "git": git_state(), "load_average": os.getloadavg(),
        "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
    }
    doc["figures"]["throughput_ratio"] = doc["figures"]["concurrent"]["throughput"] / \
        doc["figures"]["one_at_a_time"]["throughput"]
    out = args.out or ROOT / "benchmarks" / "results" / f"serve-{args.model}-cpu.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(doc, indent=1) + "\n", encoding="utf-8")
    print(markdown(doc))
    print(f"wrote {out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
