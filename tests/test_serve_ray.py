"""The same API on Ray Serve: a local Ray instance, two tiny-random replicas, requests through Ray's HTTP proxy on
127.0.0.1. Everything is shut down at the end."""

import socket
from concurrent.futures import ThreadPoolExecutor

import pytest

ray = pytest.importorskip("ray", reason="ray is not installed: pip install -e '.[serve]'")
serve = pytest.importorskip("ray.serve", reason="ray[serve] is not installed: pip install -e '.[serve]'")
import httpx  # noqa: E402

from mindbark.serve import ServeConfig  # noqa: E402
from mindbark.serve.ray_app import app_builder, deployment  # noqa: E402


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_builder_arguments():
    with pytest.raises(ValueError, match="unknown arguments: colour"):
        app_builder({"model": "tiny-random", "colour": "blue"})
    with pytest.raises(ValueError, match="not both"):
        app_builder({"model": "tiny-random", "num_replicas": "2", "max_replicas": "4"})
    app_builder({"model": "tiny-random", "batch_size": "4", "min_replicas": "1", "max_replicas": "4",
                 "target_ongoing_requests": "4", "num_cpus": "0.5"})


def test_two_replicas_behind_rays_proxy():
    port = free_port()
    # a 2-core machine: a small object store, and half a CPU per replica so that both fit beside Ray's own actors
    ray.init(num_cpus=2, include_dashboard=False, object_store_memory=100 * 2 ** 20, log_to_driver=False)
    try:
        serve.start(http_options={"host": "127.0.0.1", "port": port})
        serve.run(deployment(ServeConfig(model="tiny-random", batch_size=4), num_replicas=2, num_cpus=0.5),
                  name="mindbark", route_prefix="/")
        base = f"http://127.0.0.1:{port}"
        assert httpx.get(f"{base}/health", timeout=30).json()["status"] == "ready"
        body = {"model": "tiny-random", "input": "Hello world.", "voice": "announcer", "response_format": "wav",
                "max_duration": 0.5}
        with ThreadPoolExecutor(6) as pool:
            answers = list(pool.map(lambda s: httpx.post(f"{base}/v1/audio/speech", json={**body, "seed": s % 3},
                                                         timeout=120), range(6)))
        assert [r.status_code for r in answers] == [200] * 6
        assert all(r.content[:4] == b"RIFF" and len(r.content) > 44 for r in answers)
        bad = httpx.post(f"{base}/v1/audio/speech", json={**body, "voice": "../../etc/passwd"}, timeout=30)
        assert bad.status_code == 400 and bad.json()["error"]["param"] == "voice"
        replicas = serve.status().applications["mindbark"].deployments["mindbark"].replica_states
        assert replicas.get("RUNNING") == 2
    finally:
        serve.shutdown()
        ray.shutdown()
