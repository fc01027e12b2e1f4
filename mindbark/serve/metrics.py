"""Prometheus metrics of one serving process, in a registry of its own (two apps in a process never collide)."""

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram, generate_latest

# request latencies run from well under a second (tiny models, errors) to minutes (bark, long inputs)
_LATENCY_BUCKETS = (0.1, 0.25, 0.5, 1, 2.5, 5, 10, 20, 40, 80, 160, 320, 640)


class Metrics:
    """Counters, gauges and histograms the app and the scheduler update; `render()` is the /metrics body."""

    content_type = CONTENT_TYPE_LATEST

    def __init__(self):
        self.registry = r = CollectorRegistry()
        self.requests = Counter("mindbark_requests", "HTTP requests answered, by path and status code",
                                ["path", "status"], registry=r)
        self.in_progress = Gauge("mindbark_requests_in_progress", "speech requests admitted and not yet answered",
                                 registry=r)
        self.queue_depth = Gauge("mindbark_queue_depth", "chunks waiting for the model", registry=r)
        self.latency = Histogram("mindbark_request_latency_seconds", "speech request latency, arrival to last byte",
                                 buckets=_LATENCY_BUCKETS, registry=r)
        self.first_audio = Histogram("mindbark_time_to_first_audio_seconds",
                                     "speech request arrival to its first chunk of audio", buckets=_LATENCY_BUCKETS,
                                     registry=r)
        self.audio_seconds = Counter("mindbark_audio_seconds", "seconds of audio generated", registry=r)
        self.generation_seconds = Counter("mindbark_generation_seconds", "seconds the model spent generating",
                                          registry=r)
        self.real_time_factor = Gauge("mindbark_real_time_factor",
                                      "generation seconds per second of audio, over the last batch", registry=r)
        self.batch_size = Histogram("mindbark_batch_size", "chunks per batched generation",
                                    buckets=(1, 2, 4, 8, 16, 32, 64), registry=r)

    def batch_done(self, size: int, seconds: float, audio_seconds: float):
        self.batch_size.observe(size)
        self.generation_seconds.inc(seconds)
        self.audio_seconds.inc(audio_seconds)
        if audio_seconds > 0:
            self.real_time_factor.set(seconds / audio_seconds)

    def render(self) -> bytes:
        return generate_latest(self.registry)
