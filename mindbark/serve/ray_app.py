"""The same API on Ray Serve: replicas, each with its own model and scheduler, behind Ray's HTTP proxy.

    serve run mindbark.serve.ray_app:app_builder model=bark-small num_replicas=2
    serve run mindbark.serve.ray_app:app_builder model=bark min_replicas=1 max_replicas=8 target_ongoing_requests=8

Each replica builds `create_app(config)` itself (Ray's late-bound ingress), so the model loads in the replica, and
Ray routes to a replica only once its model is loaded. Batching happens inside a replica: give each one enough
ongoing requests (`max_ongoing_requests`, default 2 x the batch size) to fill its batches.
"""

from pathlib import Path

from ray import serve

from .app import create_app
from .config import ServeConfig, read_api_key


@serve.ingress()
class BarkServe:
    """One replica: the HTTP API over its own model."""

    def __init__(self, config: ServeConfig):
        self.config = config

    def __serve_build_asgi_app__(self):
        return create_app(self.config, wait_for_model=True)


def deployment(config: ServeConfig, num_replicas: int | None = None, autoscaling: dict | None = None,
               num_cpus: float = 1.0, max_ongoing_requests: int | None = None, name: str = "mindbark"):
    """A bound Ray Serve application serving `config` (host and port are Ray's proxy's, not these).

    Args:
        num_replicas: a fixed number of replicas (default 1, or as `autoscaling` decides).
        autoscaling: Ray's autoscaling_config, e.g. {"min_replicas": 1, "max_replicas": 8,
            "target_ongoing_requests": 8}; a replica serves a batch at a time, so target about one batch.
        num_cpus: CPUs Ray reserves per replica (fractions share a machine's cores).
        max_ongoing_requests: requests a replica holds at once (default 2 x batch_size, at most max_queue).
    """
    if num_replicas is not None and autoscaling is not None:
        raise ValueError("give num_replicas or autoscaling, not both")
    ongoing = max_ongoing_requests or min(2 * config.batch_size, config.max_queue)
    options = dict(name=name, ray_actor_options={"num_cpus": num_cpus}, max_ongoing_requests=ongoing,
                   graceful_shutdown_timeout_s=config.shutdown_timeout)
    if autoscaling is not None:
        options["autoscaling_config"] = autoscaling
    else:
        options["num_replicas"] = num_replicas or 1
    return serve.deployment(BarkServe, **options).bind(config)


def _flag(text: str) -> bool:
    return str(text).lower() in ("1", "true", "yes", "on")


# `serve run` passes strings: each argument's type, for ServeConfig's fields and then deployment's options
_SETTINGS = {"model": str, "device": str, "dtype": str, "offload": _flag, "batch_size": int, "batch_wait": float,
             "max_queue": int, "max_input_chars": int, "max_duration": float, "request_timeout": float,
             "chunk_chars": int, "silence": float, "voices_dir": Path, "shutdown_timeout": float}
_AUTOSCALING = {"min_replicas": int, "max_replicas": int, "initial_replicas": int, "target_ongoing_requests": float,
                "upscale_delay_s": float, "downscale_delay_s": float}
_OPTIONS = {"num_replicas": int, "num_cpus": float, "max_ongoing_requests": int}


def app_builder(args: dict):
    """For `serve run` / `serve deploy`: `key=value` arguments named as ServeConfig's fields and `deployment`'s.

    `api_key_file=PATH` reads the key (else $MINDBARK_API_KEY where the replicas run); any of min_replicas,
    max_replicas, initial_replicas, target_ongoing_requests, upscale_delay_s, downscale_delay_s turns autoscaling on.
    """
    args = dict(args)
    unknown = set(args) - {*_SETTINGS, *_AUTOSCALING, *_OPTIONS, "api_key_file"}
    if unknown:
        raise ValueError(f"unknown arguments: {', '.join(sorted(unknown))}")

    def pick(table: dict) -> dict:
        return {k: None if args[k] in (None, "none") else table[k](args[k]) for k in table if k in args}

    config = ServeConfig(**pick(_SETTINGS), api_key=read_api_key(args.get("api_key_file")))
    return deployment(config, autoscaling=pick(_AUTOSCALING) or None, **pick(_OPTIONS))
