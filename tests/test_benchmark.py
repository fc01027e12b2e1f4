"""The benchmark harness end to end at the tiny size: weights built once, both workers in their own processes, and a
JSON with every figure. The numbers themselves are not checked; that the two sides did the same work is.
"""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from benchmarks import bench_long, bench_vs_torch, report

ROOT = Path(__file__).resolve().parent.parent
STAGE_KEYS = {"semantic_s", "coarse_s", "fine_s", "codec_s", "total_s", "semantic_tok_per_s", "coarse_tok_per_s",
              "realtime_factor"}


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    return tmp_path_factory.mktemp("bench-cache")


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory, cache):
    tmp = tmp_path_factory.mktemp("bench")
    out = tmp / "tiny.json"
    proc = subprocess.run([sys.executable, "benchmarks/bench_vs_torch.py", "--model", "tiny", "--semantic-tokens",
                           "8", "--repeats", "1", "--threads", "2", "--cache-dir", str(cache), "--graph-cache", "fresh",
                           "--out", str(out)], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(out.read_text()), proc.stdout, out


def test_both_sides_ran_the_same_work(tiny_run):
    doc, _, _ = tiny_run
    work = doc["work"]
    assert work["equal"], work["problems"]
    assert work["semantic_lengths"] == [8] and work["coarse_frames"] == [12] and work["audio_samples"] == [3840]
    for name in ("torch", "mindbark"):
        r = doc["results"][name]
        assert len(r["calls"]) == 2 and r["pid"] != doc["results"]["mindbark" if name == "torch" else "torch"]["pid"]
    # greedy on identical weights: the tokens themselves agree (the parity tests prove it more strictly)
    assert work["semantic_tokens_identical"]
    assert doc["settings"]["sampling"]["semantic"] == {"temperature": None, "top_k": None, "top_p": None,
                                                       "min_eos_p": None, "max_new_tokens": 8, "forbid_eos": True}
    assert doc["results"]["torch"]["generate_kwargs"]["semantic"]["min_new_tokens"] == 8


def test_json_has_every_figure(tiny_run):
    doc, _, _ = tiny_run
    for name in ("torch", "mindbark"):
        m = doc["results"][name]["metrics"]
        assert m["load_s"] > 0 and m["import_s"] > 0
        assert set(m["cold"]) == STAGE_KEYS and all(v > 0 for v in m["cold"].values())
        assert set(m["warm"]) == STAGE_KEYS
        for spread in m["warm"].values():
            assert spread["min"] <= spread["median"] <= spread["max"] and spread["n"] == 1
        mem = m["memory"]
        assert mem["peak_rss_mb"] >= mem["rss_after_load_mb"] > 0 and "generate_rss_delta_mb" in mem
        assert doc["results"][name]["threads"]["OMP_NUM_THREADS"] == "2"
    figures = {k for k in report.flatten(doc["results"]["torch"]["metrics"]) if not k.endswith(".n")}
    assert set(doc["ratios"]) == figures
    machine = doc["machine"]
    assert machine["cpu"] and machine["logical_cores"] >= 1 and machine["ram_gib"] > 0 and machine["os"]
    assert all(machine["versions"][p] for p in ("torch", "transformers", "mindspore", "numpy"))
    assert len(doc["load_average"]["before"]) == len(doc["load_average"]["after"]) == 3
    graphs = doc["results"]["mindbark"]["graphs"]  # --graph-cache fresh: the cold call compiled every graph
    assert graphs["compiled"] > 0 and graphs["loaded"] == 0 and doc["settings"]["graph_cache"] == "fresh"


def test_table_and_chart(tiny_run):
    doc, stdout, out = tiny_run
    assert "| | torch | mindbark | mindbark / torch |" in stdout and "warm coarse (s)" in stdout
    assert out.with_suffix(".png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert report.markdown(doc) in stdout


def test_unequal_work_is_reported():
    call = {"semantic_lengths": [8], "coarse_frames": [12], "audio_samples": [3840], "semantic_tokens": [1] * 8}
    short = {"semantic_lengths": [5], "coarse_frames": [7], "audio_samples": [2240], "semantic_tokens": [1] * 5}
    work = report.check_work({"torch": {"calls": [call], "input_ids": [[3, 4]]},
                              "mindbark": {"calls": [short], "input_ids": [[3, 4]]}})
    assert not work["equal"] and any(p.startswith("semantic_lengths differ") for p in work["problems"])


def test_missing_torch_is_one_line(monkeypatch, capsys):
    real = bench_vs_torch.importlib.util.find_spec
    monkeypatch.setattr(bench_vs_torch.importlib.util, "find_spec",
                        lambda name, *a: None if name == "torch" else real(name, *a))
    assert bench_vs_torch.main(["--model", "tiny"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and 'pip install -e ".[torch]"' in err


def test_long_form_runs_every_way_with_the_same_work(tmp_path, cache):
    out = tmp_path / "long.json"
    proc = subprocess.run([sys.executable, "benchmarks/bench_long.py", "--model", "tiny", "--sentences", "3",
                           "--semantic-tokens", "8", "--threads", "2", "--cache-dir", str(cache), "--out", str(out)],
                          cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    doc = json.loads(out.read_text())
    # greedy: every way (one at a time, one batch, streamed; torch and mindbark) spoke every sentence identically
    assert doc["work"]["equal"], doc["work"]["problems"]
    assert doc["work"]["audio_samples"] == [3840] * 3
    assert set(doc["figures"]) == {f"{impl} {way}" for impl, way in bench_long.RUNS}
    for f in doc["figures"].values():
        assert f["audio_s"] == pytest.approx(3 * 3840 / 24_000)
        assert 0 < f["first_audio_s"] <= f["wall_s"] and f["throughput"] > 0
    assert doc["figures"]["torch sequential"]["vs_torch_sequential"] == 1
    streamed = doc["results"]["mindbark"]["calls"]["streamed"][0]
    assert streamed["first_audio_s"] < streamed["total_s"]  # the first sentence came before the rest
    assert "| time to first audio (s) |" in proc.stdout


def test_long_form_arguments_are_checked(capsys):
    for argv in (["--sentences", "0"], ["--sentences", "99"], ["--voice", "nobody"], ["--repeats", "-1"]):
        with pytest.raises(SystemExit):
            bench_long.parse_args(argv)
    assert "--voice nobody: no such preset" in capsys.readouterr().err


def test_serve_benchmark_runs_both_rounds(tmp_path, cache):
    pytest.importorskip("fastapi", reason="the serve extra is not installed: pip install -e '.[serve]'")
    out = tmp_path / "serve.json"
    proc = subprocess.run([sys.executable, "benchmarks/bench_serve.py", "--model", "tiny", "--clients", "3",
                           "--semantic-tokens", "8", "--cache-dir", str(cache), "--out", str(out)],
                          cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    doc = json.loads(out.read_text())
    assert doc["audio_equal_between_rounds"]
    for way in ("one_at_a_time", "concurrent"):
        f = doc["figures"][way]
        assert f["audio_s"] == pytest.approx(3 * 3840 / 24_000)  # 8 semantic tokens: 3840 samples each
        assert 0 < f["ttfb_p50_s"] <= f["latency_p95_s"] <= f["wall_s"] and f["throughput"] > 0
    assert doc["figures"]["throughput_ratio"] > 0
    assert "| throughput, audio s / wall s |" in proc.stdout
