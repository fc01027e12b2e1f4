#!/usr/bin/env python
"""A voice from a 10 s recording: mindbark against the torch reference pipeline, on the same weights.

    python benchmarks/bench_voice.py --threads 2 --repeats 3 --out benchmarks/results/voice-cpu-epyc.json

The reference is the voice-cloning forks' pipeline: `transformers`' EncodecModel.encode at 6 kbps, `transformers`'
HubertModel (its 12 layers cut to the 9 the quantizer reads, as the forks' fairseq HuBERT stops there) and the
quantizer's torch module. Weights are random at the real shapes (EnCodec 24 kHz, HuBERT base, the 768 -> 1024 ->
10 000 quantizer). Both sides read and resample the same file with mindbark's front end (soundfile, soxr); each runs
in a fresh process: a cold call, then warm ones (median and fastest: on a shared VM the fastest is the least
disturbed). mindbark runs twice: a first run that compiles its graphs and saves them, then a run that loads them,
as a user's later runs do. The voices must be equal token for token.
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

from benchmarks.bench_vs_torch import frameworks_missing, git_state, machine  # noqa: E402
from benchmarks.common import log, peak_rss_mb  # noqa: E402

PARTS = ("read", "codec", "hubert", "quantizer")
SECONDS = 10.0
RATE = 44_100  # a recording as a phone or a DAW writes it: stereo, 44.1 kHz
LAYER = 9


def prepare(work: Path):
    """The recording, the torch weights and their mindbark conversions, in `work`."""
    import numpy as np
    import soundfile as sf
    import torch

    from mindbark.convert.mapping import map_tensors
    from mindbark.convert.reader import fold_weight_norm
    from mindbark.convert.voice import convert_hubert, convert_quantizer
    from mindbark.config import BarkConfig
    from mindbark.paths import write_marker
    from mindbark.reference import CONFIGS, TorchQuantizer, hf_encodec, hf_hubert
    from safetensors.numpy import save_file

    rng = np.random.default_rng(0)
    t = np.arange(int(SECONDS * RATE)) / RATE
    f0 = 120 + 40 * np.sin(2 * np.pi * 0.7 * t)
    tone = sum(np.sin(2 * np.pi * np.cumsum(k * f0) / RATE) / k for k in range(1, 6))
    x = 0.2 * tone * (0.6 + 0.4 * np.sin(2 * np.pi * 3 * t)) + 0.02 * rng.standard_normal(len(t))
    sf.write(work / "speech.wav", np.stack([x, 0.7 * x], 1).astype(np.float32), RATE)

    codec = hf_encodec(0)
    torch.save(codec.state_dict(), work / "encodec.pt")
    cfg = BarkConfig.from_file(CONFIGS / "bark-small.json")
    mapped = map_tensors(fold_weight_norm({f"codec_model.{k}": v.numpy() for k, v in codec.state_dict().items()}), cfg)
    (work / "codec").mkdir()  # a Bark directory as far as the voice needs: the codec's two files
    for name in ("codec_model", "codec_encoder"):
        save_file(mapped[name], str(work / "codec" / f"{name}.safetensors"))
    (work / "codec" / "config.json").write_bytes((CONFIGS / "bark-small.json").read_bytes())
    write_marker(work / "codec", {"source_format": "transformers"})
    hf_hubert(0).save_pretrained(work / "hubert-hf")
    convert_hubert(work / "hubert-hf", work / "hubert")
    torch.save(TorchQuantizer(seed=0).state_dict(), work / "quantizer.pth")
    convert_quantizer(work / "quantizer.pth", work / "quantizer")


def torch_worker(work: Path, repeats: int) -> dict:
    import torch
    from transformers import EncodecConfig, EncodecModel, HubertModel

    from mindbark.audio import resample
    from mindbark.reference import CONFIGS, TorchQuantizer
    from mindbark.voice_clone import check_recording, prompt_lengths

    start = time.perf_counter()
    codec = EncodecModel(EncodecConfig(**json.loads((CONFIGS / "bark-small.json").read_text())["codec_config"]))
    codec.load_state_dict(torch.load(work / "encodec.pt"))
    hubert = HubertModel.from_pretrained(work / "hubert-hf").eval()
    hubert.encoder.layers = hubert.encoder.layers[:LAYER]  # the forks' HuBERT stops at the layer it returns
    quantizer = TorchQuantizer(seed=1)
    quantizer.load_state_dict(torch.load(work / "quantizer.pth"))
    codec.eval()
    load = time.perf_counter() - start

    def once():
        t0 = time.perf_counter()
        rec, _ = check_recording(work / "speech.wav")
        wav24 = resample(rec.samples, rec.sample_rate, 24_000)
        wav16 = resample(wav24, 24_000, 16_000)
        t1 = time.perf_counter()
        with torch.inference_mode():
            codes = codec.encode(torch.tensor(wav24[len(wav24) % 320:])[None, None], bandwidth=6.0)
            codes = codes.audio_codes[0, 0].numpy()
            t2 = time.perf_counter()
            features = hubert(torch.tensor(wav16)[None]).last_hidden_state[0]
            t3 = time.perf_counter()
            semantic = quantizer.get_token(features).numpy()
        t4 = time.perf_counter()
        n_semantic, n_coarse = prompt_lengths(codes.shape[1], len(semantic))
        voice = {"semantic_prompt": semantic[-n_semantic:].tolist(), "fine_prompt": codes[:, -n_coarse:].tolist()}
        return voice, dict(zip(PARTS, (t1 - t0, t2 - t1, t3 - t2, t4 - t3)))

    return _calls("torch", once, repeats, load)


def mindbark_worker(work: Path, repeats: int, graph_cache: str | None) -> dict:
    from mindbark.voice_clone import VoiceCloner

    start = time.perf_counter()
    cloner = VoiceCloner.load(work / "codec", work / "hubert", work / "quantizer", device="cpu",
                              graph_cache=graph_cache or False)
    load = time.perf_counter() - start
    store = cloner.graphs

    def once():
        voice = cloner.voice(work / "speech.wav")
        return ({"semantic_prompt": voice["semantic_prompt"].tolist(), "fine_prompt": voice["fine_prompt"].tolist()},
                dict(cloner.timings))

    result = _calls("mindbark", once, repeats, load)
    result["graphs"] = {"loaded": store.loaded, "saved": store.saved} if store else None
    return result


def _calls(name: str, once, repeats: int, load: float) -> dict:
    calls, voice = [], None
    for i in range(1 + repeats):
        start = time.perf_counter()
        voice, parts = once()
        parts["total"] = time.perf_counter() - start
        calls.append(parts)
        log(name, f"{'cold' if i == 0 else 'warm'}: " + ", ".join(f"{k} {v:.3f}" for k, v in parts.items()))
    warm = {k: statistics.median(c[k] for c in calls[1:]) for k in calls[0]} if repeats else None
    best = {k: min(c[k] for c in calls[1:]) for k in calls[0]} if repeats else None
    return {"load_s": load, "cold": calls[0], "warm_median": warm, "warm_min": best, "warm": calls[1:],
            "peak_rss_mb": peak_rss_mb(), "voice": voice}


def run(role: str, work: Path, threads: int, repeats: int, graph_cache: str | None = None) -> dict:
    env = dict(os.environ, OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads), HF_HUB_OFFLINE="1",
               MINDBARK_GRAPH_CACHE=graph_cache or "off", GLOG_v="3")
    out = work / f"{role}.json"
    cmd = [sys.executable, __file__, "--worker", role, "--work", str(work), "--repeats", str(repeats),
           "--threads", str(threads), "--worker-out", str(out)]
    if graph_cache:
        cmd += ["--graph-cache-dir", graph_cache]
    subprocess.run(cmd, check=True, env=env)
    return json.loads(out.read_text())


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--repeats", type=int, default=3, help="warm calls after the cold one")
    p.add_argument("--out", type=Path, help="JSON record to write")
    p.add_argument("--worker", choices=("prepare", "torch", "mindbark"), help=argparse.SUPPRESS)
    p.add_argument("--work", type=Path, help=argparse.SUPPRESS)
    p.add_argument("--worker-out", type=Path, help=argparse.SUPPRESS)
    p.add_argument("--graph-cache-dir", help=argparse.SUPPRESS)
    return p.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.worker:
        if args.worker == "torch":
            import torch

            torch.set_num_threads(args.threads)
            result = torch_worker(args.work, args.repeats)
        else:
            result = mindbark_worker(args.work, args.repeats, args.graph_cache_dir)
        args.worker_out.write_text(json.dumps(result))
        return 0
    if frameworks_missing("bench_voice.py"):
        return 1
    with tempfile.TemporaryDirectory(prefix="bench-voice-") as tmp:
        work = Path(tmp)
        subprocess.run([sys.executable, "-c", f"import sys; sys.path.insert(0, {str(ROOT)!r}); from benchmarks."
                        f"bench_voice import prepare; from pathlib import Path; prepare(Path({tmp!r}))"], check=True)
        graphs = str(work / "graphs")
        results = {"torch": run("torch", work, args.threads, args.repeats),
                   "mindbark_first_run": run("mindbark", work, args.threads, args.repeats, graphs),
                   "mindbark": run("mindbark", work, args.threads, args.repeats, graphs)}
    voices = {name: r.pop("voice") for name, r in results.items()}
    same = all(v == voices["torch"] for v in voices.values())
    ratios = {when: {k: results["mindbark"][when][k] / results["torch"][when][k] for k in (*PARTS, "total")}
              for when in ("cold", "warm_median", "warm_min")}
    ratios["first_run_cold_total"] = results["mindbark_first_run"]["cold"]["total"] / results["torch"]["cold"]["total"]
    ratios["peak_rss"] = results["mindbark"]["peak_rss_mb"] / results["torch"]["peak_rss_mb"]
    record = {"date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"), "machine": machine(),
              "git": git_state(), "recording_s": SECONDS, "threads": args.threads, "repeats": args.repeats,
              "same_voice": same, "results": results, "ratios": ratios}
    print(json.dumps({"same_voice": same, "ratios": ratios}, indent=1))
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(record, indent=1) + "\n")
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())
