"""`mindbark serve` over loopback: a real uvicorn server with tiny-random, and httpx as the client.

Every loop here is bounded in count and time, every server listens on 127.0.0.1 only and stops by itself.
"""

import io
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager

import numpy as np
import pytest

pytest.importorskip("fastapi", reason="the serve extra is not installed: pip install -e '.[serve]'")
import httpx  # noqa: E402
import soundfile as sf  # noqa: E402

from mindbark.serve import ServeConfig, server  # noqa: E402
from mindbark.voices import load_voice, save_voice  # noqa: E402

SPEECH = "/v1/audio/speech"
LONG = "Hello world. My dog is cute! Bark laughs at my dog? I like it and you. The dog is cute."
KEY = "s3cret-key"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def serving(**settings):
    """A uvicorn server of tiny-random on a free loopback port, ready; stopped (and checked stopped) on exit."""
    config = ServeConfig(model="tiny-random", host="127.0.0.1", port=free_port(), **settings)
    uv = server(config, log_level="warning")
    thread = threading.Thread(target=uv.run, daemon=True)
    thread.start()
    base = f"http://127.0.0.1:{config.port}"
    try:
        for _ in range(600):  # up to 60 s for the model to load
            try:
                if httpx.get(f"{base}/health", timeout=5).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        else:
            raise TimeoutError("the server did not become ready")
        yield base, uv
    finally:
        uv.should_exit = True
        thread.join(60)
        assert not thread.is_alive()


def speech(base, timeout=120, headers=None, **fields):
    body = {"model": "tiny-random", "input": "Hello world.", "voice": "announcer", "response_format": "pcm",
            "max_duration": 0.5, "seed": 1, **fields}
    return httpx.post(f"{base}{SPEECH}", json=body, timeout=timeout, headers=headers)


def samples(response) -> np.ndarray:
    return np.frombuffer(response.content, "<i2")


def assert_same_audio(a, b):
    """16-bit samples equal within one step: the codec's float sums vary in their last bits from run to run with
    buffer alignment (test_longform allows 1e-5), which can flip a rounding; other tokens would differ by far more."""
    a, b = (np.frombuffer(x, "<i2").astype(int) for x in (a, b))
    assert len(a) == len(b) and np.abs(a - b).max() <= 1


def metric(base, name: str, headers=None) -> float:
    text = httpx.get(f"{base}/metrics", headers=headers, timeout=10).text
    return float(re.search(rf"^{re.escape(name)} (\S+)$", text, re.M).group(1))


@pytest.fixture(scope="module")
def voices_dir(tmp_path_factory):
    path = tmp_path_factory.mktemp("voices")
    v = load_voice("v2/en_speaker_6")
    save_voice(path / "mine.npz", v["semantic_prompt"], v["coarse_prompt"], v["fine_prompt"])
    (path.parent / "outside.npz").write_bytes((path / "mine.npz").read_bytes())  # a voice no client may reach
    return path


@pytest.fixture(scope="module")
def served(voices_dir):
    with serving(batch_size=8, voices_dir=voices_dir, max_input_chars=400, max_duration=2.0, chunk_chars=40,
                 silence=0.05) as (base, uv):
        yield base


def test_health_voices_and_metrics(served):
    health = httpx.get(f"{served}/health").json()
    assert health["status"] == "ready" and health["model"] == "tiny-random" and health["batch_size"] == 8
    voices = {v["id"]: v["source"] for v in httpx.get(f"{served}/v1/voices").json()["data"]}
    assert voices["mine"] == "voices_dir" and voices["announcer"] == voices["v2/en_speaker_6"] == "preset"
    assert "outside" not in voices and len(voices) > 200
    assert speech(served).status_code == 200
    text = httpx.get(f"{served}/metrics").text
    for name in ("mindbark_requests_total", "mindbark_queue_depth", "mindbark_request_latency_seconds_bucket",
                 "mindbark_time_to_first_audio_seconds_count", "mindbark_audio_seconds_total",
                 "mindbark_real_time_factor", "mindbark_batch_size_count"):
        assert name in text
    assert metric(served, 'mindbark_requests_total{path="/v1/audio/speech",status="200"}') >= 1
    assert metric(served, "mindbark_audio_seconds_total") > 0


def test_formats_hold_the_same_audio(served):
    pcm = speech(served, input=LONG)
    assert pcm.status_code == 200 and pcm.headers["content-type"] == "audio/pcm"
    assert int(pcm.headers["mindbark-chunks"]) > 1 and pcm.headers["mindbark-seed"] == "1"
    reference = samples(pcm)
    for fmt in ("wav", "flac"):
        r = speech(served, input=LONG, response_format=fmt)
        assert r.headers["content-type"] == f"audio/{fmt}"
        audio, rate = sf.read(io.BytesIO(r.content), dtype="int16")
        assert rate == 24_000
        assert_same_audio(audio.tobytes(), reference.tobytes())  # lossless, 16-bit: the same samples
    for fmt, media in (("mp3", "audio/mpeg"), ("opus", "audio/ogg")):
        r = speech(served, input=LONG, response_format=fmt)
        assert r.status_code == 200 and r.headers["content-type"] == media
        audio, rate = sf.read(io.BytesIO(r.content))
        assert rate == 24_000 and abs(len(audio) - len(reference)) < 0.1 * rate  # lossy: codec frames pad


def test_a_request_equals_the_library_run_with_its_seed(served):
    """The server is a thin layer: the same text, voice, settings and seed give generate_long's samples."""
    from mindbark import BarkModel, BarkProcessor
    from mindbark.api import max_tokens_for
    from mindbark.generation.config import config_from_kwargs
    from mindbark.hub import resolve_model
    from mindbark.longform import LongFormOptions, generate_long
    from mindbark.serve.audio_formats import pcm16

    path = resolve_model("tiny-random")
    model, processor = BarkModel.from_pretrained(path, device="cpu"), BarkProcessor.from_pretrained(path)
    config = config_from_kwargs(semantic_temperature=0.9, semantic_max_new_tokens=max_tokens_for(0.5))
    for voice in ("announcer", None):
        result = generate_long(model, processor, LONG, voice, config, LongFormOptions(40, 3, 0.05), seed=5)
        served_audio = speech(served, input=LONG, voice=voice, seed=5, text_temp=0.9)
        assert len(result.chunks) > 2
        assert_same_audio(served_audio.content, pcm16(result.audio, result.sample_rate))


def test_streaming_sends_each_chunk_as_it_is_decoded(served):
    # without a voice the first chunk runs alone and the rest after it (they carry its voice): the first audio
    # must be on the wire while the rest is generated
    whole = speech(served, input=LONG, voice=None, seed=3, response_format="wav")
    body = {"model": "tiny-random", "input": LONG, "voice": None, "response_format": "wav", "seed": 3,
            "max_duration": 0.5, "stream": True}
    pieces = []
    with httpx.stream("POST", f"{served}{SPEECH}", json=body, timeout=120) as r:
        assert r.status_code == 200 and r.headers.get("transfer-encoding") == "chunked"
        for piece in r.iter_raw():
            pieces.append((time.perf_counter(), piece))
    data = b"".join(p for _, p in pieces)
    assert data[:4] == b"RIFF" and data[36:40] == b"data" and data[40:44] == b"\xff\xff\xff\xff"
    assert_same_audio(data[44:], whole.content[44:])  # the same samples as the whole file
    assert int(whole.headers["mindbark-chunks"]) > 2 and len(pieces) >= 2
    assert pieces[-1][0] - pieces[0][0] > 0.05  # a whole generation lay between the first chunk and the others
    pcm = httpx.post(f"{served}{SPEECH}", json={**body, "response_format": "pcm"}, timeout=120)
    assert_same_audio(pcm.content, data[44:])


def test_concurrent_requests_are_batched_and_equal_their_solo_runs(served):
    requests = [dict(input=LONG[:20 + 5 * i], voice=["announcer", "mine", None, "v2/en_speaker_1"][i % 4],
                     seed=100 + i) for i in range(16)]
    solo = [speech(served, **r).content for r in requests]
    batches_before = metric(served, "mindbark_batch_size_count")
    chunks_before = metric(served, "mindbark_batch_size_sum")
    with ThreadPoolExecutor(16) as pool:
        together = list(pool.map(lambda r: speech(served, **r), requests))
    assert [r.status_code for r in together] == [200] * 16
    for r, alone in zip(together, solo):
        assert_same_audio(r.content, alone)
    batches = metric(served, "mindbark_batch_size_count") - batches_before
    chunks = metric(served, "mindbark_batch_size_sum") - chunks_before
    assert chunks / batches > 2  # chunks of different requests shared batches
    assert metric(served, "mindbark_requests_in_progress") == 0 and metric(served, "mindbark_queue_depth") == 0


@pytest.mark.parametrize("fields, status, param", [
    (dict(model="gpt-5"), 400, "model"),
    (dict(input="   "), 400, "input"),
    (dict(input="Hello. " * 60), 413, "input"),
    (dict(response_format="aac"), 400, "response_format"),
    (dict(response_format="flac", stream=True), 400, "stream"),
    (dict(speed=1.5), 400, "speed"),
    (dict(voice="../../etc/passwd"), 400, "voice"),
    (dict(voice="/etc/passwd"), 400, "voice"),
    (dict(voice="../outside"), 400, "voice"),
    (dict(voice="mine/../../outside"), 400, "voice"),
    (dict(voice="nobody"), 400, "voice"),
    (dict(max_duration=5), 400, "max_duration"),
    (dict(max_duration=0), 400, "max_duration"),
    (dict(top_p=2), 400, "top_p"),
    (dict(text_temp=-1), 400, "text_temp"),
    (dict(seed=-1), 400, "seed"),
    (dict(instructions="cheerful"), 400, "instructions"),
    (dict(input=None), 400, "input"),
])
def test_bad_requests_name_the_field(served, fields, status, param):
    r = speech(served, **fields)
    assert r.status_code == status
    error = r.json()["error"]
    assert error["param"] == param and error["type"] == "invalid_request_error" and error["message"]


def test_malformed_and_unknown(served):
    r = httpx.post(f"{served}{SPEECH}", content=b"{not json", headers={"content-type": "application/json"})
    assert r.status_code == 400 and r.json()["error"]["type"] == "invalid_request_error"
    r = httpx.post(f"{served}{SPEECH}", content=b"x" * 2_000_000, headers={"content-type": "application/json"})
    assert r.status_code == 413 and r.json()["error"]["param"] == "input"
    r = httpx.get(f"{served}/v1/nothing")
    assert r.status_code == 404 and "error" in r.json()
    assert httpx.get(f"{served}{SPEECH}").status_code == 405
    assert speech(served).status_code == 200  # none of it hurt the server


@pytest.fixture(scope="module")
def guarded():
    """A server with an API key and two places in its queue."""
    with serving(batch_size=4, max_queue=2, api_key=KEY) as (base, uv):
        yield base, uv


AUTH = {"Authorization": f"Bearer {KEY}"}
LONG_WORK = dict(input="Hello world.", max_duration=15, headers=AUTH)  # ~6 s of tiny-random work


def test_api_key(guarded):
    base, _ = guarded
    assert speech(base).status_code == 401
    wrong = speech(base, headers={"Authorization": "Bearer nope"})
    assert wrong.status_code == 401 and wrong.json()["error"]["type"] == "authentication_error"
    assert wrong.headers["www-authenticate"] == "Bearer"
    assert httpx.get(f"{base}/v1/voices").status_code == 401
    assert httpx.get(f"{base}/metrics").status_code == 401
    assert httpx.get(f"{base}/health").status_code == 200  # load balancers probe without a key
    assert speech(base, headers=AUTH).status_code == 200
    assert httpx.get(f"{base}/v1/voices", headers=AUTH).status_code == 200


def wait_for(base, name, value, seconds=10):
    for _ in range(int(seconds / 0.05)):
        if metric(base, name, AUTH) == value:
            return
        time.sleep(0.05)
    raise AssertionError(f"{name} did not reach {value}")


def test_queue_full_and_clients_that_leave(guarded):
    base, _ = guarded
    assert speech(base, headers=AUTH).status_code == 200
    audio_before = metric(base, "mindbark_audio_seconds_total", AUTH)
    with ThreadPoolExecutor(2) as pool:
        # both clients leave after 2 s: the server must notice, drop their chunks and decode nothing for them
        slow = [pool.submit(speech, base, **LONG_WORK, seed=s, timeout=2) for s in (1, 2)]
        wait_for(base, "mindbark_requests_in_progress", 2)
        full = speech(base, headers=AUTH)
        assert full.status_code == 429 and full.json()["error"]["type"] == "rate_limit_error"
        assert int(full.headers["retry-after"]) >= 1
        for f in slow:
            with pytest.raises(httpx.ReadTimeout):
                f.result()
    wait_for(base, "mindbark_requests_in_progress", 0)
    assert speech(base, headers=AUTH).status_code == 200
    produced = metric(base, "mindbark_audio_seconds_total", AUTH) - audio_before
    assert produced < 1.0  # the last request's half second: the 15 s ones were never decoded


def test_a_failing_batch_answers_500_and_the_server_goes_on(guarded):
    base, uv = guarded
    scheduler = uv.config.app.state.service.scheduler
    run_batch = scheduler.run_batch

    def broken(jobs, alive):
        scheduler.run_batch = run_batch  # fails once
        raise RuntimeError("a planted failure")

    scheduler.run_batch = broken
    try:
        failed = speech(base, headers=AUTH)
    finally:
        scheduler.run_batch = run_batch
    assert failed.status_code == 500 and failed.json()["error"]["type"] == "server_error"
    assert "planted" not in failed.text  # internals stay in the server's log
    assert speech(base, headers=AUTH).status_code == 200


def test_time_limit_and_shutdown():
    with serving(request_timeout=1.0, shutdown_timeout=0.5) as (base, uv):
        late = speech(base, **{**LONG_WORK, "headers": None})
        assert late.status_code == 504 and late.json()["error"]["type"] == "timeout_error"
        pool = ThreadPoolExecutor(1)
        in_flight = pool.submit(speech, base, input="Hello world.", max_duration=0.5, timeout=60)
        time.sleep(0.3)
        start = time.perf_counter()
    assert time.perf_counter() - start < 20  # stopped at the next stage boundary, not after the whole request
    try:
        status = in_flight.result(timeout=30).status_code
    except httpx.TransportError:
        status = None  # the connection closed under it
    assert status in (None, 200, 503, 504)
    service = uv.config.app.state.service
    service.scheduler._thread.join(30)  # the worker ends at its batch's next stage boundary
    assert service.state == "stopping" and not service.scheduler._thread.is_alive()
    pool.shutdown()


def test_cli_serves_on_loopback_and_stops_on_ctrl_c(tmp_path):
    port = free_port()
    env = {**os.environ, "PYTHONPATH": os.getcwd()}
    proc = subprocess.Popen([sys.executable, "-m", "mindbark.cli", "serve", "--model", "tiny-random", "--port",
                             str(port)], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        for _ in range(600):
            try:
                if httpx.get(f"http://127.0.0.1:{port}/health", timeout=5).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.1)
        assert speech(f"http://127.0.0.1:{port}").status_code == 200
        listening = subprocess.run(["ss", "-ltn", f"sport = :{port}"], capture_output=True, text=True).stdout
        assert f"127.0.0.1:{port}" in listening and f"0.0.0.0:{port}" not in listening
        proc.send_signal(signal.SIGINT)
        output, _ = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == 0, output


def test_cli_without_the_extra_says_how_to_install_it():
    code = ("import sys; sys.modules['fastapi'] = None; from mindbark.cli import main; "
            "sys.exit(main(['serve', '--model', 'tiny-random']))")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                       env={**os.environ, "PYTHONPATH": os.getcwd()})
    assert r.returncode == 1
    assert r.stderr.strip().splitlines()[-1] == \
        'error: mindbark serve needs the serve extra (fastapi is missing): pip install -e ".[serve]"'


def test_the_library_never_imports_the_service():
    code = "import sys, mindbark, mindbark.cli, mindbark.longform; print('mindbark.serve' in sys.modules)"
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                       env={**os.environ, "PYTHONPATH": os.getcwd()})
    assert r.stdout.strip() == "False"


def test_api_key_from_a_file_or_the_environment(tmp_path):
    from mindbark.serve import read_api_key

    key_file = tmp_path / "key"
    key_file.write_text("  from-file \nsecond line\n")
    assert read_api_key(key_file, {"MINDBARK_API_KEY": "from-env"}) == "from-file"
    assert read_api_key(None, {"MINDBARK_API_KEY": "from-env"}) == "from-env"
    assert read_api_key(None, {}) is None
    key_file.write_text("\n")
    with pytest.raises(ValueError, match="is empty"):
        read_api_key(key_file)


def test_weight_format_reaches_the_model_and_a_bad_one_is_refused():
    from mindbark.cli.serve import build_parser
    from mindbark.serve import ServeConfig

    assert ServeConfig(**vars(build_parser().parse_args(["--weights", "bf16"]))).weights == "bf16"
    with pytest.raises(ValueError, match="unknown weight format 'int4'"):
        ServeConfig(weights="int4")
