#!/usr/bin/env python
"""Check mindbark's device engine on an accelerator and time it beside PyTorch: one JSON for a bug report.

    python scripts/device_check.py --device gpu --out device-check.json
    python scripts/device_check.py --device ascend --out device-check.json
    python scripts/device_check.py --device cpu --bench-model tiny          # the same checks on CPU

Parity (the tiny config, random weights, about a minute): for each dtype the backend takes, the device engine's
logits (semantic, coarse, fine) and waveform against `transformers` in fp32 on the CPU (the exact reference),
greedy generation against `BarkModel.generate` (batch 1 without and with a voice, batch 3), and seeded sampling
run twice. Then `benchmarks/bench_vs_torch.py` with mindbark's device engine and torch on the same accelerator
(`torch` CUDA for gpu, `torch_npu` for ascend; where neither imports, the benchmark is skipped and the JSON says
why). Everything stops within --budget seconds (default 600); what did not run is marked so.
"""

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
import traceback
from pathlib import Path

os.environ.setdefault("GLOG_v", "3")  # before MindSpore is imported: silences its C++ [WARNING] lines
os.environ.setdefault("MINDBARK_GRAPH_CACHE", "off")
ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # this checkout's mindbark, installed or not

import numpy as np  # noqa: E402

FP32_ATOL = 1e-4
FP16_BOUND = 8 * 2.0**-10  # times the largest reference magnitude (tests/test_device_engine.py says why)
BF16_BOUND = 8 * 2.0**-7


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--device", required=True, choices=["gpu", "ascend", "cpu"])
    p.add_argument("--out", type=Path, default=Path("device-check.json"), help="default device-check.json")
    p.add_argument("--dtypes", default=None,
                   help="comma-separated; default float32,float16 and, off CPU, bfloat16")
    p.add_argument("--bench-model", default="bark-small", help="tiny, bark-small or bark (default bark-small)")
    p.add_argument("--semantic-tokens", type=int, default=64, help="the benchmark's work (default 64)")
    p.add_argument("--no-bench", action="store_true", help="parity only")
    p.add_argument("--budget", type=float, default=600, help="seconds for everything (default 600)")
    return p.parse_args(argv)


def torch_accelerator(device: str) -> dict:
    """Whether torch can run on the same accelerator, and why not."""
    try:
        import torch
    except ImportError:
        return {"available": False, "why": "torch is not installed"}
    if device == "cpu":
        return {"available": True, "device": "cpu", "torch": torch.__version__}
    if device == "gpu":
        ok = torch.cuda.is_available()
        return {"available": ok, "device": "cuda", "torch": torch.__version__,
                **({"name": torch.cuda.get_device_name(0)} if ok else {"why": "torch.cuda.is_available() is False"})}
    try:
        import torch_npu  # noqa: F401
    except ImportError:
        return {"available": False, "why": "torch_npu is not installed"}
    ok = torch.npu.is_available()
    return {"available": ok, "device": "npu", "torch": torch.__version__,
            **({} if ok else {"why": "torch.npu.is_available() is False"})}


def _err(out, ref) -> dict:
    out, ref = np.asarray(out, np.float32), np.asarray(ref, np.float32)
    return {"max_abs_err": float(np.abs(out - ref).max()), "ref_max_abs": float(np.abs(ref).max())}


def _bound(dtype: str, ref_max: float) -> float:
    return {"float32": FP32_ATOL, "float16": FP16_BOUND * ref_max, "bfloat16": BF16_BOUND * ref_max}[dtype]


def logits_checks(model, hf, dtype: str) -> dict:
    """Each sub-model's outputs against torch fp32, with the bound the CPU tests hold them to."""
    import mindspore as ms
    import torch
    from mindspore import Tensor

    from mindbark.models.device_gpt import CHUNK

    out = {}
    for name in ("semantic", "coarse_acoustics"):
        gpt = getattr(model, name)
        ids = np.random.RandomState(1).randint(0, gpt.config.input_vocab_size, (2, CHUNK + 6))
        with torch.no_grad():
            ref = getattr(hf, name)(input_ids=torch.tensor(ids)).logits.numpy()[:, CHUNK + 2:]
        runner = model.device_engine.gpt(gpt, 2)
        keys = Tensor(np.ones((2, gpt.config.block_size), bool))
        runner.prefill(ids[:, :CHUNK + 3], keys)
        got = np.stack([runner.logits(ids[:, i], i, keys) for i in range(CHUNK + 2, ids.shape[1])], axis=1)
        out[name] = _err(got, ref)
    codes = np.random.RandomState(5).randint(0, 1025, (2, 24, 8))
    with torch.no_grad():
        ref = hf.fine_acoustics(3, torch.tensor(codes)).logits.numpy()
    out["fine_acoustics"] = _err(model.fine_acoustics.forward(Tensor(codes, ms.int32), 3).asnumpy(), ref)
    codes = np.random.RandomState(3).randint(0, 1024, (1, 8, 300))
    with torch.no_grad():
        ref = hf.codec_decode(torch.tensor(codes)).numpy()
    out["codec_waveform"] = _err(model.codec_model.decode(Tensor(codes, ms.int32)).asnumpy(), ref)
    for r in out.values():
        r["bound"] = _bound(dtype, r["ref_max_abs"])
        r["ok"] = r["max_abs_err"] <= r["bound"]
    return out


def generation_checks(model, hf, dtype: str) -> dict:
    """Greedy generation against `BarkModel.generate`, item by item (held to it in float32, reported in half
    precision); seeded sampling twice."""
    import torch

    from mindbark.generation.config import config_from_kwargs
    from mindbark.pipeline import generate
    from mindbark.voices import load_voice

    kw = dict(do_sample=False, semantic_min_eos_p=None, semantic_max_new_tokens=32, fine_temperature=None)
    out = {}
    for label, lengths, voice_name in [("batch1", [17], None), ("batch1_voice", [17], "v2/en_speaker_6"),
                                       ("batch3", [20, 7, 35], None)]:
        voice = None if voice_name is None else load_voice(voice_name)
        rs = np.random.RandomState(0)
        mask = (np.arange(256)[None] < np.array(lengths)[:, None]).astype(np.int64)
        ids = rs.randint(0, 119_547, (len(lengths), 256)) * mask
        result = generate(model, ids, mask, voice, config_from_kwargs(**kw))
        items = []
        for i in range(len(lengths)):
            history = None if voice is None else {k: torch.tensor(v) for k, v in voice.items()}
            with torch.no_grad():
                audio, n = hf.generate(input_ids=torch.tensor(ids[i:i + 1]), attention_mask=torch.tensor(mask[i:i + 1]),
                                       history_prompt=history, return_output_lengths=True, **kw)
            ref = audio[0, :n[0]].numpy()
            same_length = ref.shape == result.audio[i].shape
            items.append({"same_length": same_length,
                          **(_err(result.audio[i], ref) if same_length else {})})
        exact = all(it["same_length"] and it["max_abs_err"] <= _bound(dtype, it["ref_max_abs"]) for it in items)
        # in half precision a near tie may flip a token and all audio after it: reported, not failed
        out[label] = {"items": items, "matches_reference": exact, "ok": exact or dtype != "float32"}
    cfg = config_from_kwargs(semantic_max_new_tokens=16, semantic_min_eos_p=None)
    mask = (np.arange(256) < 12)[None].astype(np.int64)
    ids = np.random.RandomState(1).randint(0, 119_547, (1, 256)) * mask
    runs = [generate(model, ids, mask, None, cfg, seed=11) for _ in range(2)]
    out["seeded_sampling_reproducible"] = {"ok": bool(np.array_equal(runs[0].fine[0], runs[1].fine[0]))}
    return out


def parity(device: str, dtypes: list, deadline: float) -> dict:
    from mindbark import BarkModel
    from mindbark.convert import convert_checkpoint
    from mindbark.reference import hf_bark, save_hf_bark, shape_for_generation

    hf = shape_for_generation(hf_bark("tiny", seed=0))
    results = {}
    with tempfile.TemporaryDirectory(prefix="device_check-") as tmp:
        path = convert_checkpoint(save_hf_bark(hf, Path(tmp) / "hf"), Path(tmp) / "mb")
        for dtype in dtypes:
            if time.monotonic() > deadline:
                results[dtype] = {"skipped": "out of time"}
                continue
            start = time.monotonic()
            try:
                model = BarkModel.from_pretrained(path, device=device, dtype=dtype, engine="device")
            except ValueError as e:  # a dtype this backend refuses, in its one line
                results[dtype] = {"refused": str(e)}
                continue
            try:
                r = {"logits": logits_checks(model, hf, dtype), "generation": generation_checks(model, hf, dtype)}
            except Exception as e:  # a failure on an untried backend is the finding: record it, go on
                r = {"error": f"{type(e).__name__}: {e}", "traceback": traceback.format_exc()}
            r["seconds"] = round(time.monotonic() - start, 1)
            results[dtype] = r
    return results


def _all_ok(node) -> bool:
    if isinstance(node, dict):
        if "error" in node:
            return False
        return all(_all_ok(v) for k, v in node.items() if k != "items") and node.get("ok", True)
    return True


def bench(args, deadline: float) -> dict:
    out = Path(tempfile.mkdtemp(prefix="device_check-bench-")) / "bench.json"
    cmd = [sys.executable, str(ROOT / "benchmarks" / "bench_vs_torch.py"), "--model", args.bench_model,
           "--semantic-tokens", str(args.semantic_tokens), "--repeats", "1", "--device", args.device,
           "--engine", "device", "--graph-cache", "off", "--out", str(out)]
    left = deadline - time.monotonic()
    if left < 30:
        return {"skipped": "out of time", "command": cmd}
    try:
        done = subprocess.run(cmd, cwd=ROOT, timeout=left, capture_output=True, text=True)
    except subprocess.TimeoutExpired:
        return {"skipped": f"timed out after {left:.0f} s", "command": cmd}
    if done.returncode or not out.is_file():
        return {"failed": done.returncode, "command": cmd, "stderr_tail": done.stderr[-3000:]}
    doc = json.loads(out.read_text())
    return {"command": cmd, "ratios": doc["ratios"], "work": doc["work"], "settings": doc["settings"],
            "metrics": {k: v["metrics"] for k, v in doc["results"].items()}}


def main(argv=None) -> int:
    args = parse_args(argv)
    deadline = time.monotonic() + args.budget
    import mindspore as ms

    from mindbark.device import set_device

    report = {"check": "mindbark device engine", "device": args.device, "python": platform.python_version(),
              "platform": platform.platform(), "mindspore": ms.__version__}
    try:
        report["backend"] = set_device(args.device)
    except (RuntimeError, ValueError) as e:
        report["error"] = str(e)
        args.out.write_text(json.dumps(report, indent=2))
        print(f"device_check: {e}; wrote {args.out}", file=sys.stderr)
        return 1
    dtypes = args.dtypes.split(",") if args.dtypes else ["float32", "float16"] + (["bfloat16"] if args.device != "cpu"
                                                                                 else [])
    report["parity"] = parity(args.device, dtypes, deadline)
    report["torch_accelerator"] = torch_accelerator(args.device)
    if args.no_bench:
        report["benchmark"] = {"skipped": "--no-bench"}
    elif not report["torch_accelerator"]["available"]:
        report["benchmark"] = {"skipped": report["torch_accelerator"]["why"]}
    else:
        report["benchmark"] = bench(args, deadline)
    report["parity_ok"] = _all_ok(report["parity"])
    args.out.write_text(json.dumps(report, indent=2))
    for dtype, r in report["parity"].items():
        state = ("refused: " + r["refused"]) if "refused" in r else r.get("skipped") or (
            "ok" if _all_ok(r) else "FAILED")
        print(f"parity {dtype}: {state}")
    b = report["benchmark"]
    print("benchmark: " + (json.dumps(b["ratios"]) if "ratios" in b else str(b.get("skipped") or b.get("failed"))))
    print(f"wrote {args.out}")
    return 0 if report["parity_ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
