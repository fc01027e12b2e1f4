#!/usr/bin/env python
"""What bf16 and int8 weights change against fp32, on the same weights (random, at the real shapes):

    python benchmarks/bench_weights.py --model bark-small --out benchmarks/results/weights-bark-small-epyc.json

- logits, teacher-forced: the semantic and coarse GPTs over a fixed random sequence (a 256-position prompt in
  chunks, then 64 decode steps: both code paths), the fine GPT over a fixed random 1024-frame window for each
  codebook it fills. Reported: the largest |difference| over the largest |fp32 logit|, and how often the argmax,
  the greedy token, is the same;
- greedy generation end to end for a fixed set of texts (`--tokens` semantic tokens each): how many semantic,
  coarse and fine tokens equal fp32's, and the waveforms' difference where the tokens are all equal.
Model load memory and the weights' bytes are reported too.
"""

import argparse
import datetime as dt
import json
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # run as a script: find the `benchmarks` package and this checkout's mindbark

from benchmarks import weights  # noqa: E402
from benchmarks.bench_vs_torch import git_state, machine  # noqa: E402

TEXTS = ["Hello, my dog is cute.", "The quick brown fox jumps over the lazy dog.",
         "Bark is a transformer-based text-to-audio model.", "One, two, three, four, five, six, seven."]
FORMATS = ("bf16", "int8")


def _teacher_forced(model, rng):
    """Logits of each GPT over fixed inputs, as numpy arrays by sub-model name."""
    import mindspore as ms
    import numpy as np
    from mindspore import Tensor

    out = {}
    for name in ("semantic", "coarse_acoustics"):
        gpt = getattr(model, name)
        cfg = gpt.config
        ids = rng.integers(0, min(cfg.input_vocab_size, cfg.output_vocab_size), (1, 320))
        keys = Tensor(np.ones((1, cfg.block_size), bool))
        gpt.setup_cache(1)
        steps = [gpt.forward(ids[:, start:start + 128], start, keys) for start in (0, 128)]
        steps += [gpt.forward(ids[:, i:i + 1], i, keys) for i in range(256, 320)]
        out[name] = np.concatenate(steps, axis=1)
    fine = model.fine_acoustics
    codes = Tensor(rng.integers(0, fine.config.input_vocab_size, (1, 1024, fine.config.n_codes_total)), ms.int32)
    out["fine_acoustics"] = np.stack([fine.forward(codes, i).asnumpy()
                                      for i in range(fine.config.n_codes_given, fine.config.n_codes_total)])
    return out


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", default="bark-small", help="tiny, bark-small or bark (random weights)")
    p.add_argument("--tokens", type=int, default=64, help="semantic tokens per text in the greedy runs")
    p.add_argument("--threads", type=int, default=len(os.sched_getaffinity(0)))
    p.add_argument("--out", type=Path)
    args = p.parse_args(argv)

    info = weights.resolve(args.model, weights.default_cache())
    import mindspore as ms
    import numpy as np

    from mindbark import BarkModel, BarkProcessor
    from mindbark.generation.config import config_from_kwargs
    from mindbark.pipeline import generate

    ms.device_context.cpu.op_tuning.threads_num(args.threads)
    processor = BarkProcessor.from_pretrained(info["mindbark_dir"])
    inputs = processor(TEXTS)
    config = config_from_kwargs(do_sample=False, semantic_max_new_tokens=args.tokens, semantic_min_eos_p=1.0)

    results, reference = {}, None
    for fmt in ("fp32",) + FORMATS:
        model = BarkModel.from_pretrained(info["mindbark_dir"], device="cpu", graph_cache=False, weights=fmt)
        packed = sum(p.asnumpy().nbytes for name, p in model.semantic.parameters_and_names()
                     if name.startswith("h.") and name.endswith(".weight") and len(p.shape) == 2)
        logits = _teacher_forced(model, np.random.default_rng(0))
        run = generate(model, inputs["input_ids"], inputs["attention_mask"], None, config, seed=0)
        now = {"logits": logits, "semantic": run.semantic, "fine": run.fine, "audio": run.audio}
        if reference is None:
            reference = now
            results[fmt] = {"semantic_projection_bytes": packed}
            continue
        report = {"semantic_projection_bytes": packed}
        for name, ref in reference["logits"].items():
            got = logits[name]
            report[f"{name}_logit_error"] = float(np.abs(got - ref).max() / np.abs(ref).max())
            report[f"{name}_argmax_agreement"] = float((got.argmax(-1) == ref.argmax(-1)).mean())
        same_semantic = [bool(np.array_equal(a, b)) for a, b in zip(now["semantic"], reference["semantic"])]
        same_fine = [bool(np.array_equal(a, b)) for a, b in zip(now["fine"], reference["fine"])]
        report["semantic_tokens_equal"] = [float(np.mean(np.asarray(a) == np.asarray(b))) if len(a) == len(b)
                                           else 0.0 for a, b in zip(now["semantic"], reference["semantic"])]
        report["fine_tokens_equal"] = [float(np.mean(a == b)) if a.shape == b.shape else 0.0
                                       for a, b in zip(now["fine"], reference["fine"])]
        report["texts_with_identical_tokens"] = sum(s and f for s, f in zip(same_semantic, same_fine))
        errors = [float(np.abs(a - b).max()) for a, b, s, f in
                  zip(now["audio"], reference["audio"], same_semantic, same_fine) if s and f]
        report["waveform_max_error_where_tokens_equal"] = max(errors) if errors else None
        results[fmt] = report
        print(fmt, json.dumps(report), flush=True)
    if args.out:
        doc = {"benchmark": "bench_weights", "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
               "model": args.model, "texts": TEXTS, "semantic_tokens": args.tokens, "machine": machine(),
               "git": git_state(), "results": results}
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(doc, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
