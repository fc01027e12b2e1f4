"""Figures from the workers' raw records: per-implementation metrics, mindbark / torch ratios, the Markdown table and
the chart. `python benchmarks/report.py RESULT.json` prints the table again and redraws the chart beside the JSON.
"""

import json
import sys
from pathlib import Path

import numpy as np

STAGES = ("semantic", "coarse", "fine", "codec")
IMPLS = ("torch", "mindbark")


def call_metrics(call: dict, sample_rate: int) -> dict:
    """Seconds per stage and in all, tokens per second, and audio seconds per wall second, for one generate call.

    Token and audio counts are summed over the batch; a coarse token is one codebook entry (two per frame).
    """
    t = call["stages"]
    audio_s = sum(call["audio_samples"]) / sample_rate
    return {**{f"{s}_s": t[s] for s in STAGES}, "total_s": call["total_s"],
            "semantic_tok_per_s": sum(call["semantic_lengths"]) / t["semantic"],
            "coarse_tok_per_s": 2 * sum(call["coarse_frames"]) / t["coarse"],
            "realtime_factor": audio_s / call["total_s"]}


def spread(values: list) -> dict:
    q1, median, q3 = np.percentile(values, [25, 50, 75])
    return {"median": float(median), "min": float(min(values)), "max": float(max(values)), "q1": float(q1),
            "q3": float(q3), "n": len(values)}


def summarize(worker: dict) -> dict:
    """A worker's record -> load time, cold figures (first call), warm spreads (the rest) and memory."""
    per_call = [call_metrics(c, worker["sample_rate"]) for c in worker["calls"]]
    warm = per_call[1:]
    first = worker["calls"][0]
    return {
        "import_s": worker["import_s"],
        "load_s": worker["load_s"],
        "cold": per_call[0],
        "warm": {k: spread([m[k] for m in warm]) for k in per_call[0]} if warm else None,
        "memory": {"peak_rss_mb": worker["peak_rss_mb"], "rss_after_load_mb": worker["rss_mb"]["after_load"],
                   # the seed article's figure: RSS after minus before the (first) generate
                   "generate_rss_delta_mb": first["rss_after_mb"] - first["rss_before_mb"],
                   "rss_end_mb": worker["rss_mb"]["end"]},
        "audio_s": sum(first["audio_samples"]) / worker["sample_rate"],
    }


def flatten(d: dict, prefix: str = "") -> dict:
    out = {}
    for k, v in d.items():
        if isinstance(v, dict):
            out.update(flatten(v, f"{prefix}{k}."))
        elif isinstance(v, (int, float)) and not isinstance(v, bool):
            out[f"{prefix}{k}"] = v
    return out


def ratios(torch_metrics: dict, mindbark_metrics: dict) -> dict:
    """mindbark / torch for every figure both have (> 1 means mindbark takes longer, or makes more tokens/s)."""
    a, b = flatten(torch_metrics), flatten(mindbark_metrics)
    return {k: b[k] / a[k] for k in a if k in b and a[k] and not k.endswith(".n")}


def check_work(results: dict, greedy: bool = True) -> dict:
    """Did both sides, and every call on each, do the same work? Greedy runs should also agree on the tokens
    (sampled ones cannot: the frameworks' random generators differ)."""
    per_side = {name: {key: [c[key] for c in r["calls"]] for key in ("semantic_lengths", "coarse_frames",
                                                                      "audio_samples")}
                for name, r in results.items()}
    problems = []
    ids = {name: [row[:256] for row in r["input_ids"]] for name, r in results.items()}
    if ids["torch"] != ids["mindbark"]:
        problems.append("the tokenizers gave different input ids")
    for key in ("semantic_lengths", "coarse_frames", "audio_samples"):
        seen = {json.dumps(v) for side in per_side.values() for v in side[key]}
        if len(seen) > 1:
            problems.append(f"{key} differ: " + "; ".join(f"{n} {per_side[n][key]}" for n in per_side))
    tokens = [r["calls"][0].get("semantic_tokens") for r in results.values()]
    return {"equal": not problems, "problems": problems, "input_ids": ids["torch"],
            **{key: per_side["torch"][key][0] for key in ("semantic_lengths", "coarse_frames", "audio_samples")},
            "per_call": per_side, "semantic_tokens_identical": tokens[0] == tokens[1] if greedy else None}


def _fmt(x: float | None, digits: int = 2) -> str:
    if x is None:
        return "–"
    return f"{x:,.{digits}f}" if abs(x) < 1000 else f"{x:,.0f}"


def _cell(m: dict | None, key: str, digits: int = 2) -> str:
    if m is None:
        return "–"
    s = m[key]
    return f"{_fmt(s['median'], digits)} [{_fmt(s['min'], digits)}–{_fmt(s['max'], digits)}]"


def markdown(doc: dict) -> str:
    """The results as a Markdown table with a header line saying what was run where."""
    m = {name: doc["results"][name]["metrics"] for name in IMPLS}
    r = doc["ratios"]
    rows = [("model load (s)", "load_s", None, 2)]
    rows += [(f"cold {s} (s)", f"cold.{s}_s", None, 2) for s in STAGES]
    rows += [("**cold total (s)**", "cold.total_s", None, 2)]
    rows += [(f"warm {s} (s)", f"{s}_s", "warm", 2) for s in STAGES]
    rows += [("**warm total (s)**", "total_s", "warm", 2),
             ("semantic tokens/s (warm)", "semantic_tok_per_s", "warm", 1),
             ("coarse tokens/s (warm)", "coarse_tok_per_s", "warm", 1),
             ("real-time factor, audio s / wall s (warm)", "realtime_factor", "warm", 3),
             ("real-time factor (cold)", "cold.realtime_factor", None, 3),
             ("peak RSS (MiB)", "memory.peak_rss_mb", None, 0),
             ("RSS after load (MiB)", "memory.rss_after_load_mb", None, 0),
             ("RSS growth over first generate (MiB)", "memory.generate_rss_delta_mb", None, 0),
             ("framework import (s)", "import_s", None, 2)]
    s = doc["settings"]
    w = doc["work"]
    n_warm = (m["torch"]["warm"] or {}).get("total_s", {}).get("n", 0)
    lines = [f"{s['model']} ({doc['weights']['kind']}), batch {s['batch']}, "
             f"{w['semantic_lengths'][0]} semantic tokens → {w['coarse_frames'][0]} coarse frames → "
             f"{doc['results']['torch']['metrics']['audio_s'] / s['batch']:.2f} s of audio per item, "
             f"{'sampling' if s['sample'] else 'greedy'}, {s['threads']} threads, {s['device']} {s['dtype']}, "
             f"mindbark offload {'on' if s.get('offload', True) else 'off'}, "
             f"engine {doc['results']['mindbark'].get('engine', 'cpu')}, "
             f"weights {doc['results']['mindbark'].get('weights', 'fp32')}, "
             f"cold = first call in a fresh process, warm = median [min–max] of {n_warm}; "
             f"{doc['machine']['cpu']} ({doc['machine']['logical_cores']} cores)", "",
             "| | torch | mindbark | mindbark / torch |", "|---|---:|---:|---:|"]
    for label, key, group, digits in rows:
        if group == "warm":
            cells = [_cell(m[name]["warm"], key, digits) for name in IMPLS]
            ratio = r.get(f"warm.{key}.median")
        else:
            flat = {name: flatten(m[name]) for name in IMPLS}
            cells = [_fmt(flat[name].get(key), digits) for name in IMPLS]
            ratio = r.get(key)
        lines.append(f"| {label} | {cells[0]} | {cells[1]} | {_fmt(ratio)}{'×' if ratio is not None else ''} |")
    graphs = doc["results"]["mindbark"].get("graphs")
    lines += ["", "mindbark's compiled graphs in the cold call: " + (
        "compiled in memory (no graph cache)" if not graphs else
        f"{graphs['loaded']} loaded from the graph cache, {graphs['compiled']} compiled and saved there")]
    if not w["equal"]:
        lines += ["", "**UNEQUAL WORK:** " + "; ".join(w["problems"])]
    return "\n".join(lines)


def draw_chart(doc: dict, path: Path) -> Path | None:
    """Stage latencies side by side, cold and warm (bars: median, whiskers: min–max). None without matplotlib."""
    try:
        import matplotlib
    except ImportError:
        return None
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    m = {name: doc["results"][name]["metrics"] for name in IMPLS}
    labels = list(STAGES) + ["total"]
    keys = [f"{s}_s" for s in labels]
    x = np.arange(len(labels))
    colors = {"torch": "#ee4c2c", "mindbark": "#2f6db5"}
    panels = [("cold: first call in a fresh process", "cold")] + \
        ([("warm: median, min–max whiskers", "warm")] if m["torch"]["warm"] and m["mindbark"]["warm"] else [])
    fig, axes = plt.subplots(1, len(panels), figsize=(6.5 * len(panels), 4.6), squeeze=False)
    for ax, (title, group) in zip(axes[0], panels):
        for j, name in enumerate(IMPLS):
            if group == "cold":
                h = np.array([m[name]["cold"][k] for k in keys])
                err = None
            else:
                h = np.array([m[name]["warm"][k]["median"] for k in keys])
                err = np.array([[h[i] - m[name]["warm"][k]["min"], m[name]["warm"][k]["max"] - h[i]]
                                for i, k in enumerate(keys)]).T
            bars = ax.bar(x + (j - 0.5) * 0.38, h, 0.38, yerr=err, capsize=3, label=name, color=colors[name])
            ax.bar_label(bars, labels=[_fmt(v, 2 if v < 10 else 1) for v in h], fontsize=7, padding=2)
        ax.set_xticks(x, labels)
        ax.set_ylabel("seconds")
        ax.set_title(title, fontsize=10)
        ax.legend()
        ax.margins(y=0.12)
    s = doc["settings"]
    fig.suptitle(f"Bark {s['model']} on {doc['machine']['cpu']}: mindbark vs transformers (torch), "
                 f"{doc['work']['semantic_lengths'][0]} semantic tokens, {s['threads']} threads", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def main(argv: list) -> int:
    if len(argv) != 2:
        sys.exit("usage: python benchmarks/report.py RESULT.json")
    path = Path(argv[1])
    doc = json.loads(path.read_text())
    print(markdown(doc))
    draw_chart(doc, path.with_suffix(".png"))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
