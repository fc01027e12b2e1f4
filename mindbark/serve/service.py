"""The model behind the HTTP API: loading, voices, request checks, and a request's audio chunk by chunk.

It is a thin layer over the library: texts are cut by `longform.split`, every chunk gets its random generator from
`longform.chunk_rngs` (so a request's audio is its `generate_long` audio with the same seed, whatever it is
batched with), and batches run through `pipeline`. Without a voice, the first chunk runs alone and its voice carries
to the rest, as in `longform.stream`.
"""

import asyncio
import logging
import re
import secrets
import threading
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .. import pipeline
from ..bark import BarkModel
from ..generation.config import GenerationConfig, config_from_kwargs, max_tokens_for
from ..hub import resolve_model
from ..longform import chunk_rngs, split
from ..processor import BarkProcessor
from ..voices import list_voices, load_voice
from .audio_formats import FORMATS, STREAMED
from .config import ServeConfig
from .errors import ApiError, not_ready
from .metrics import Metrics
from .scheduler import Job, Scheduler, Ticket

log = logging.getLogger("mindbark.serve")

# OpenAI's model names, so that its clients work unchanged; each means the one model this process serves
OPENAI_MODELS = ("tts-1", "tts-1-hd", "gpt-4o-mini-tts")
# a voice file's name in the operator's directory: no separators, no leading dot, so never a path of its own
_VOICE_FILE = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}")


@dataclass
class Plan:
    """A checked request: its chunks, voice, settings, seed and one random generator per chunk."""

    chunks: list
    voice: dict | None
    config: GenerationConfig
    seed: int
    fmt: str
    stream: bool


@dataclass
class ChunkResult:
    audio: np.ndarray
    voice: dict


class SpeechService:
    """One model, its scheduler and its voices.

    Args:
        config: the operator's settings.
        metrics: where request and batch figures go.
        on_failure: called (from the worker thread) if the model fails to load.
    """

    def __init__(self, config: ServeConfig, metrics: Metrics, on_failure=lambda: None):
        self.config, self.metrics, self.on_failure = config, metrics, on_failure
        self.state, self.error = "loading", None
        self.model = self.processor = None
        self.ready = threading.Event()
        self._voices = {}
        self._active = 0
        self._latency = 1.0  # seconds, a running mean of recent requests: the Retry-After hint
        self.scheduler = Scheduler(self._run_batch, config.batch_size, config.batch_wait,
                                   on_depth=metrics.queue_depth.set)

    # --- lifecycle -------------------------------------------------------------------------------------------------

    def start(self):
        """Load the model in the worker thread (requests get 503 until then) and start serving."""
        self.scheduler.start(setup=self._load)

    def _load(self):
        try:
            path = resolve_model(self.config.model, log=log.info)
            self.model = BarkModel.from_pretrained(path, device=self.config.device, dtype=self.config.dtype,
                                                   offload=self.config.offload, weights=self.config.weights)
            self.processor = BarkProcessor.from_pretrained(self.model.path)
            self.presets = set(list_voices(self.model.path))
        except Exception as e:
            self.state, self.error = "failed", f"{type(e).__name__}: {e}".splitlines()[0]
            self.ready.set()
            self.on_failure()
            raise
        self.state = "ready"
        self.ready.set()
        log.info("model %s loaded from %s; serving", self.config.model, self.model.path)

    def close(self):
        """Cancel what waits, stop a running batch at its next stage, and let the worker go."""
        if self.state == "ready":
            self.state = "stopping"
        self.scheduler.close(timeout=self.config.shutdown_timeout)

    # --- voices ----------------------------------------------------------------------------------------------------

    def voice_names(self) -> list[dict]:
        """The voices a client may name: the operator's directory first, then the presets."""
        own = []
        if self.config.voices_dir is not None:
            own = sorted(p.stem for p in Path(self.config.voices_dir).glob("*.npz") if _VOICE_FILE.fullmatch(p.stem))
        return ([{"id": n, "source": "voices_dir"} for n in own] +
                [{"id": n, "source": "preset"} for n in sorted(self.presets - set(own))])

    def voice(self, name: str | None) -> dict | None:
        """The voice called `name`: a file in the operator's directory, else a preset; never a path the client
        picks. Loaded once: chunks with the same voice object share their coarse and fine batches."""
        if name is None:
            return None
        if name not in self._voices:
            self._voices[name] = self._load_voice(name)
        return self._voices[name]

    def _load_voice(self, name: str) -> dict:
        own = None
        if self.config.voices_dir is not None and _VOICE_FILE.fullmatch(name):
            own = Path(self.config.voices_dir) / f"{name}.npz"
        try:
            if own is not None and own.is_file():
                return load_voice(own)
            if name in self.presets:
                return load_voice(name, self.model.path)
        except ValueError as e:
            log.error("voice %r cannot be read: %s", name, e)
            raise ApiError(500, f"voice {name!r} cannot be read", "voice", "server_error") from None
        raise ApiError(400, f"unknown voice {name[:100]!r}: GET /v1/voices lists them", "voice")

    # --- requests --------------------------------------------------------------------------------------------------

    def plan(self, body) -> Plan:
        """Check a `SpeechRequest` against the limits and the model; raises ApiError naming the field at fault."""
        if self.state != "ready":
            raise not_ready(f"the model is {self.state}" if self.state != "failed" else
                            f"the model failed to load: {self.error}")
        c = self.config
        if body.model not in (c.model, Path(c.model).name, *OPENAI_MODELS):
            raise ApiError(400, f"this server speaks with {c.model!r}, not {body.model[:100]!r}", "model")
        if body.response_format not in FORMATS:
            raise ApiError(400, f"response_format must be one of {', '.join(FORMATS)}", "response_format")
        if body.stream and body.response_format not in STREAMED:
            raise ApiError(400, f"streaming sends {' or '.join(STREAMED)}, not {body.response_format}", "stream")
        if body.speed != 1.0:
            raise ApiError(400, "Bark speaks at its own pace: speed must be 1.0", "speed")
        text = body.input.strip()
        if not text:
            raise ApiError(400, "input is empty", "input")
        if len(body.input) > c.max_input_chars:
            raise ApiError(413, f"input has {len(body.input)} characters; this server takes at most "
                                f"{c.max_input_chars}", "input")
        if body.max_duration is not None and c.max_duration is not None and body.max_duration > c.max_duration:
            raise ApiError(400, f"max_duration may be at most {c.max_duration} s here", "max_duration")
        config = self._generation_config(body)
        voice = self.voice(body.voice)
        chunks = split(self.processor, text, c.chunk_chars)
        seed = body.seed if body.seed is not None else secrets.randbits(63)
        return Plan(chunks, voice, config, seed, body.response_format, body.stream)

    def _generation_config(self, body) -> GenerationConfig:
        given = body.model_fields_set
        names = {"text_temp": "semantic_temperature", "waveform_temp": "coarse_temperature",
                 "fine_temp": "fine_temperature", "top_k": "top_k", "top_p": "top_p",
                 "min_eos_p": "semantic_min_eos_p"}
        kwargs = {ours: getattr(body, field) for field, ours in names.items() if field in given}
        duration = body.max_duration if body.max_duration is not None else self.config.max_duration
        kwargs["semantic_max_new_tokens"] = max_tokens_for(duration)
        try:
            return config_from_kwargs(**kwargs)
        except ValueError as e:
            raise ApiError(400, str(e)) from None

    def open(self, plan: Plan) -> "Speech":
        """Admit a planned request to one of the `max_queue` places; 429 with Retry-After when none is free."""
        if self._active >= self.config.max_queue:
            raise ApiError(429, f"{self._active} requests are queued or running; try again later",
                           type="rate_limit_error", headers={"Retry-After": str(max(1, round(self._latency)))})
        self._active += 1
        self.metrics.in_progress.inc()
        return Speech(self, plan)

    def _release(self, seconds: float):
        self._active -= 1
        self.metrics.in_progress.dec()
        self._latency = 0.8 * self._latency + 0.2 * seconds

    # --- the worker thread -----------------------------------------------------------------------------------------

    def _run_batch(self, jobs: list[Job], alive):
        """One batched generation; each chunk's future gets its result as soon as its audio is decoded."""
        start = time.perf_counter()
        config = jobs[0].config
        inputs = self.processor([j.text for j in jobs])
        semantic, lengths = pipeline.text_to_semantic(self.model, inputs["input_ids"], inputs["attention_mask"],
                                                      [j.voice for j in jobs], config, [j.rng for j in jobs])
        keep = [i for i, j in enumerate(jobs) if alive(j)]
        if not keep:
            return
        jobs, semantic, lengths = [jobs[i] for i in keep], semantic[keep], lengths[keep]
        codes = pipeline.semantic_to_codes(self.model, semantic, lengths, [j.voice for j in jobs], config,
                                           [j.rng for j in jobs])
        seconds = 0.0
        for job, tokens, n, fine in zip(jobs, semantic, lengths, codes):
            if not alive(job):
                continue
            audio = pipeline.codes_to_audio(self.model, fine)
            seconds += len(audio) / self.model.generation_config.sample_rate
            job.future.set_result(ChunkResult(audio, pipeline.as_voice(tokens[:n], fine)))
        self.metrics.batch_done(len(jobs), time.perf_counter() - start, seconds)


class Speech:
    """One admitted request: its chunks' audio in order, each as soon as it is decoded.

    `close()` frees its place in the queue and drops whatever of it has not run; call it however the request ends.
    """

    def __init__(self, service: SpeechService, plan: Plan):
        self.service, self.plan = service, plan
        self.ticket = Ticket()
        self.opened = time.perf_counter()
        self._chunks = self._audio()
        self._futures = []
        self._closed = False

    async def next(self) -> np.ndarray:
        return await anext(self._chunks)

    async def close(self):
        if self._closed:
            return
        self._closed = True
        self.ticket.abandon()
        for future in self._futures:  # nobody will await them: their results and errors go unread, silently
            future.cancel()
        await self._chunks.aclose()
        self.service._release(time.perf_counter() - self.opened)

    async def _audio(self) -> AsyncIterator[np.ndarray]:
        chunks = self.plan.chunks
        rngs = chunk_rngs(self.plan.seed, len(chunks))
        voice, done = self.plan.voice, 0
        if voice is None and len(chunks) > 1:
            first = await self._submit(chunks[:1], None, rngs[:1])[0]
            yield first.audio
            voice, done = first.voice, 1
        for future in self._submit(chunks[done:], voice, rngs[done:]):
            yield (await future).audio

    def _submit(self, texts: list, voice: dict | None, rngs: list) -> list:
        jobs = [Job(text, voice, self.plan.config, rng, self.ticket) for text, rng in zip(texts, rngs)]
        try:
            self.service.scheduler.submit(jobs)
        except RuntimeError:
            raise not_ready("the server is shutting down") from None
        futures = [asyncio.wrap_future(job.future) for job in jobs]
        self._futures.extend(futures)
        return futures
