"""The benchmark job on `transformers`' BarkModel, one stage at a time, in a process of its own.

    python -m benchmarks.run_torch JOB.json RESULT.json      (bench_vs_torch.py writes the job)

The four calls are the ones `BarkModel.generate` makes (transformers 5.x, modeling_bark.py), timed apart.
"""

import json
import os
import sys
import time
from pathlib import Path

from .common import read_job, rss_mb, run_job, versions, worker_result, write_result

NAME = "torch"
_DEVICES = {"cpu": "cpu", "gpu": "cuda", "cuda": "cuda", "ascend": "npu", "npu": "npu"}


def stage_kwargs(sampling: dict) -> tuple[dict, dict, dict]:
    """The job's sampling settings as the semantic, coarse and fine `generate` arguments.

    transformers samples with top_k=50 unless told otherwise; Bark (and mindbark) use the whole vocabulary: top_k=0.
    """
    sem, coarse, fine = sampling["semantic"], sampling["coarse"], sampling["fine"]
    kw_sem = dict(max_new_tokens=sem["max_new_tokens"], min_eos_p=sem["min_eos_p"],
                  do_sample=sem["temperature"] is not None)
    if sem["forbid_eos"]:
        # EOS (10_000) masked for the first max_new_tokens steps. `suppress_tokens` would not do: Bark's semantic
        # generate passes its own SuppressTokensLogitsProcessor, and generate keeps only one of that type.
        kw_sem["min_new_tokens"] = sem["max_new_tokens"]
    kw_coarse = dict(do_sample=coarse["temperature"] is not None)
    for kw, cfg in ((kw_sem, sem), (kw_coarse, coarse)):
        if cfg["temperature"] is not None:
            kw.update(temperature=cfg["temperature"], top_k=0)
    return kw_sem, kw_coarse, dict(temperature=fine["temperature"])  # fine: None or 1.0 means argmax


def main(argv: list) -> int:
    job, out = read_job(argv)
    loadavg_start, rss_start = os.getloadavg(), rss_mb()
    start = time.perf_counter()
    import numpy as np
    import torch
    import transformers
    from transformers import BarkModel, BarkProcessor
    from transformers.models.bark.generation_configuration_bark import (
        BarkCoarseGenerationConfig, BarkFineGenerationConfig, BarkGenerationConfig, BarkSemanticGenerationConfig)
    import_s = time.perf_counter() - start

    transformers.logging.set_verbosity_error()  # per-call deprecation chatter about generation_config
    torch.set_num_threads(job["threads"])
    if _DEVICES[job["device"]] == "npu":
        import torch_npu  # noqa: F401  (registers the "npu" device with torch)
    device = torch.device(_DEVICES[job["device"]])
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    torch.manual_seed(job["seed"])

    hf_dir = Path(job["hf_dir"])
    start = time.perf_counter()
    model = BarkModel.from_pretrained(hf_dir, dtype=getattr(torch, job["dtype"])).to(device).eval()
    sync()
    load_s = time.perf_counter() - start
    rss_loaded = rss_mb()

    has_voices = (hf_dir / "speaker_embeddings_path.json").is_file()
    processor = BarkProcessor.from_pretrained(hf_dir, speaker_embeddings_dict_path=(
        "speaker_embeddings_path.json" if has_voices else None))
    voice = None
    if job.get("voice"):
        with np.load(job["voice"]) as npz:
            voice = {k: torch.from_numpy(npz[k]).to(device) for k in npz.files}

    gen_path = hf_dir / "generation_config.json"
    gen = json.loads(gen_path.read_text()) if gen_path.is_file() else {}
    if "semantic_config" not in gen:
        gen = BarkGenerationConfig().to_dict()
    sem_cfg = BarkSemanticGenerationConfig(**gen["semantic_config"])
    coarse_cfg = BarkCoarseGenerationConfig(**gen["coarse_acoustics_config"])
    fine_cfg = BarkFineGenerationConfig(**gen["fine_acoustics_config"])
    codebook_size = gen.get("codebook_size", 1024)
    kw_sem, kw_coarse, kw_fine = stage_kwargs(job["sampling"])
    inputs = processor(job["texts"], return_tensors="pt")
    input_ids = [row[m.bool()].tolist() for row, m in zip(inputs["input_ids"], inputs["attention_mask"])]

    def run(texts: list) -> dict:
        inputs = processor(texts, return_tensors="pt")
        ids, mask = inputs["input_ids"].to(device), inputs["attention_mask"].to(device)
        t = {}
        with torch.inference_mode():
            start = time.perf_counter()
            semantic = model.semantic.generate(ids, semantic_generation_config=sem_cfg, attention_mask=mask,
                                               history_prompt=voice, **kw_sem)  # (B, N), finished rows EOS-padded
            sync()
            t["semantic"], start = time.perf_counter() - start, time.perf_counter()
            lengths = (semantic != sem_cfg.semantic_pad_token).sum(1).tolist()
            tokens = [row[:n].tolist() for row, n in zip(semantic, lengths)]  # coarse overwrites EOS in place
            coarse, frames = model.coarse_acoustics.generate(
                semantic, semantic_generation_config=sem_cfg, coarse_generation_config=coarse_cfg,
                codebook_size=codebook_size, history_prompt=voice, return_output_lengths=True, **kw_coarse)
            frames = frames // coarse_cfg.n_coarse_codebooks
            sync()
            t["coarse"], start = time.perf_counter() - start, time.perf_counter()
            fine = model.fine_acoustics.generate(
                coarse, semantic_generation_config=sem_cfg, coarse_generation_config=coarse_cfg,
                fine_generation_config=fine_cfg, codebook_size=codebook_size, history_prompt=voice, **kw_fine)
            sync()
            t["fine"], start = time.perf_counter() - start, time.perf_counter()
            audio = model.codec_decode(fine, frames)  # one waveform per item, each at its own length
            sync()
            t["codec"] = time.perf_counter() - start
        return {"stages": t, "semantic_lengths": lengths, "coarse_frames": frames.tolist(),
                "audio_samples": [int(a.shape[-1]) for a in audio], "semantic_tokens": tokens}

    calls = run_job(NAME, job, run)
    extra = {
        "versions": versions("torch", "transformers", "numpy"),
        "threads": {"torch.get_num_threads": torch.get_num_threads(),
                    "torch.get_num_interop_threads": torch.get_num_interop_threads(),
                    "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS")},
        "device": str(device), "dtype": job["dtype"], "sample_rate": int(gen.get("sample_rate", 24_000)),
        "input_ids": input_ids,
        "eos_forbidden": job["sampling"]["semantic"]["forbid_eos"],
        "generate_kwargs": {"semantic": kw_sem, "coarse": kw_coarse, "fine": kw_fine},
    }
    if device.type == "cuda":
        extra["device_peak_mb"] = torch.cuda.max_memory_allocated() / 2**20
    write_result(out, worker_result(NAME, job, import_s, load_s, rss_start, rss_loaded, calls, loadavg_start,
                                    extra))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
