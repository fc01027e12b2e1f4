"""The benchmark job on mindbark, through its public pipeline, in a process of its own.

    python -m benchmarks.run_mindbark JOB.json RESULT.json      (bench_vs_torch.py writes the job)
"""

import os
import sys
import time

from .common import read_job, rss_mb, run_job, versions, worker_result, write_result

NAME = "mindbark"


def generation_config(sampling: dict):
    """The job's sampling settings as a mindbark `GenerationConfig`; also says whether EOS could be forbidden."""
    from mindbark.generation.config import config_from_kwargs

    sem = sampling["semantic"]
    kwargs = dict(semantic_temperature=sem["temperature"], semantic_min_eos_p=sem["min_eos_p"],
                  semantic_max_new_tokens=sem["max_new_tokens"], coarse_temperature=sampling["coarse"]["temperature"],
                  fine_temperature=sampling["fine"]["temperature"])
    if sem["forbid_eos"]:
        # not in mindbark yet (either spelling): until then, equal lengths are checked after the run instead
        for forbid in ({"semantic_min_new_tokens": sem["max_new_tokens"]}, {"semantic_allow_eos": False}):
            try:
                return config_from_kwargs(**forbid, **kwargs), True
            except TypeError:
                pass
    return config_from_kwargs(**kwargs), False


def main(argv: list) -> int:
    job, out = read_job(argv)
    loadavg_start, rss_start = os.getloadavg(), rss_mb()
    start = time.perf_counter()
    import mindspore as ms
    import numpy as np
    from mindbark import BarkModel, BarkProcessor, load_voice, set_device
    from mindbark.longform import LongFormOptions, stream as stream_chunks
    from mindbark.pipeline import generate
    import_s = time.perf_counter() - start

    target = set_device(job["device"])
    ms.device_context.cpu.op_tuning.threads_num(job["threads"])  # MindSpore 2.10's CPU kernel thread count

    start = time.perf_counter()
    model = BarkModel.from_pretrained(job["mindbark_dir"], device=job["device"], dtype=job["dtype"],
                                      offload=job.get("offload", True), graph_cache=job.get("graph_cache"),
                                      engine=job.get("engine"), weights=job.get("weights", "fp32"))
    load_s = time.perf_counter() - start
    rss_loaded = rss_mb()

    processor = BarkProcessor.from_pretrained(job["mindbark_dir"])
    inputs = processor(job["texts"])
    config, eos_forbidden = generation_config(job["sampling"])
    rng = np.random.default_rng(job["seed"])
    voice = load_voice(job["voice"]) if job.get("voice") else None

    def run(texts: list) -> dict:
        inputs = processor(texts)
        result = generate(model, inputs["input_ids"], inputs["attention_mask"], voice, config, seed=rng)
        return {"stages": dict(result.timings), "semantic_lengths": [len(s) for s in result.semantic],
                "coarse_frames": [int(f.shape[1]) for f in result.fine],
                "audio_samples": [int(a.shape[-1]) for a in result.audio],
                "semantic_tokens": [np.asarray(s).tolist() for s in result.semantic]}

    def stream(texts: list, timings: dict):
        """Each chunk as `longform.stream` yields it: the texts after the first run as one batch."""
        options = LongFormOptions(batch_size=len(texts))
        for chunk in stream_chunks(model, processor, texts, voice, config, options, rng, timings=timings):
            yield {"audio_samples": int(chunk.audio.shape[-1]),
                   "semantic_tokens": np.asarray(chunk.voice["semantic_prompt"]).tolist()}

    calls = run_job(NAME, job, run, stream)
    extra = {
        "versions": versions("mindspore", "numpy"),
        "threads": {"mindspore.device_context.cpu.op_tuning.threads_num": job["threads"],
                    "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS")},
        "device": target, "dtype": job["dtype"], "engine": model.engine, "weights": model.weights,
        "offload": model.offload,
        "sample_rate": model.generation_config.sample_rate,
        "input_ids": [row[m.astype(bool)].tolist() for row, m in zip(inputs["input_ids"], inputs["attention_mask"])],
        "eos_forbidden": eos_forbidden,
        "generation_config": repr(config),
        # what the cold call did with each compiled graph: loaded one an earlier run saved, or compiled and saved it
        "graphs": None if model.graphs is None else {"dir": str(model.graphs.directory),
                                                     "loaded": model.graphs.loaded - model.graphs.saved,
                                                     "compiled": model.graphs.saved},
    }
    write_result(out, worker_result(NAME, job, import_s, load_s, rss_start, rss_loaded, calls, loadavg_start,
                                    extra))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
