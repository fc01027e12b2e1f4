"""What both workers share: the job they read, process memory, the timed call loop and the result they write.

Imports no framework, so each worker process holds only its own.
"""

import json
import os
import resource
import sys
import time
from importlib import metadata

import psutil

STAGES = ("semantic", "coarse", "fine", "codec")


def read_job(argv: list) -> tuple[dict, str]:
    """`python -m benchmarks.run_X JOB.json RESULT.json` -> (the job, where to write the result)."""
    if len(argv) != 3:
        sys.exit(f"usage: python -m {argv[0]} JOB.json RESULT.json")
    with open(argv[1], encoding="utf-8") as f:
        return json.load(f), argv[2]


def write_result(path: str, result: dict):
    with open(path, "w", encoding="utf-8") as f:
        json.dump(result, f)


def log(name: str, msg: str):
    print(f"[{name}] {msg}", file=sys.stderr, flush=True)


def rss_mb() -> float:
    return psutil.Process().memory_info().rss / 2**20


def peak_rss_mb() -> float:
    """Peak resident memory of this process so far (ru_maxrss: KiB on Linux, bytes on macOS)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 2**20 if sys.platform == "darwin" else peak / 2**10


def versions(*packages: str) -> dict:
    out = {}
    for name in packages:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = None
    return out


def timed_calls(name: str, run_once, repeats: int) -> list:
    """One cold call (the first in this process: compilation included) then `repeats` warm ones.

    Args:
        run_once: () -> dict with "stages" (seconds per stage), "semantic_lengths", "coarse_frames",
            "audio_samples" (one entry per batch item) and "semantic_tokens" (item 0).
    """
    calls = []
    for i in range(1 + repeats):
        before = rss_mb()
        start = time.perf_counter()
        call = run_once()
        call["total_s"] = time.perf_counter() - start
        call["rss_before_mb"], call["rss_after_mb"] = before, rss_mb()
        if i:  # the tokens are compared across implementations once, from the cold call
            call.pop("semantic_tokens", None)
        calls.append(call)
        stages = " ".join(f"{s} {call['stages'][s]:.2f}" for s in STAGES)
        log(name, f"{'cold' if i == 0 else f'warm {i}/{repeats}'}: {call['total_s']:.2f} s ({stages})")
    return calls


def run_job(name: str, job: dict, run, stream=None):
    """The job's calls: `timed_calls` on its texts as one batch, or `long_runs` when the job is long-form."""
    if job.get("long"):
        return long_runs(name, run, job["texts"], stream, job["repeats"])
    return timed_calls(name, lambda: run(job["texts"]), job["repeats"])


def _merge(calls: list, total_s: float, first_audio_s: float) -> dict:
    """Per-item records of calls made one after another, as one record."""
    merged = {"total_s": total_s, "first_audio_s": first_audio_s,
              "stages": {s: sum(c.get("stages", {}).get(s, 0.0) for c in calls) for s in STAGES}}
    for key in ("semantic_lengths", "coarse_frames", "audio_samples", "semantic_tokens"):
        merged[key] = [v for c in calls for v in c.get(key, [])]
    return merged


def long_runs(name: str, run, texts: list, stream=None, repeats: int = 0) -> dict:
    """Several texts (a long text's chunks) spoken three ways, after one warm-up on the first text alone.

    Args:
        run: (texts) -> a `timed_calls` record for those texts as one batch.
        stream: (texts, timings) -> an iterator of {"audio_samples", "semantic_tokens"}, one per text as soon as
            its audio is ready; None where the implementation has no streaming.
        repeats: runs of each way after its first. The warm-up compiles what batch-1 calls need, so the first
            batched and streamed runs include what their own batch sizes compile, as a user's first long text would.

    Returns:
        {"warmup": record, "sequential" (one text at a time), "batched" (all as one batch), "streamed" (if
        `stream`): lists of records}, each with "total_s", "first_audio_s" (until the first text's audio existed)
        and "stages".
    """
    def timed(mode: str, fn) -> dict:
        start = time.perf_counter()
        record = fn(start)
        log(name, f"{mode}: {record['total_s']:.2f} s, first audio after {record['first_audio_s']:.2f} s")
        return record

    def together(batch):
        def call(start):
            record = run(batch)
            wall = time.perf_counter() - start
            return _merge([record], wall, wall)
        return call

    def one_by_one(start):
        calls, first = [], None
        for text in texts:
            calls.append(run([text]))
            first = first or time.perf_counter() - start
        return _merge(calls, time.perf_counter() - start, first)

    def streamed(start):
        timings, chunks, first = {}, [], None
        for chunk in stream(texts, timings):
            chunks.append({key: [value] for key, value in chunk.items()})
            first = first or time.perf_counter() - start
        return {**_merge(chunks, time.perf_counter() - start, first), "stages": timings}

    ways = {"sequential": one_by_one, "batched": together(texts)}
    if stream is not None:
        ways["streamed"] = streamed
    runs = {"warmup": timed("warm-up", together(texts[:1]))}
    for way, fn in ways.items():
        runs[way] = [timed(f"{way} {i + 1}/{1 + repeats}", fn) for i in range(1 + repeats)]
    return runs


def worker_result(name: str, job: dict, import_s: float, load_s: float, rss_start: float, rss_loaded: float,
                  calls: list, loadavg_start: tuple, extra: dict) -> dict:
    """The record a worker hands back; `report.summarize` turns it into figures."""
    return {
        "implementation": name,
        "pid": os.getpid(),
        "import_s": import_s,
        "load_s": load_s,
        "rss_mb": {"start": rss_start, "after_load": rss_loaded, "end": rss_mb()},
        "peak_rss_mb": peak_rss_mb(),
        "calls": calls,
        "loadavg": {"start": loadavg_start, "end": os.getloadavg()},
        "job": job,
        **extra,
    }
