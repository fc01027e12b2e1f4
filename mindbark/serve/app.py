"""The HTTP API: OpenAI's `POST /v1/audio/speech` and mindbark's fields, voices, health and metrics.

`create_app(config)` builds a FastAPI app whose lifespan loads the model and runs the scheduler; uvicorn serves it
(`run`), and so does each Ray Serve replica (`ray_app`).
"""

import asyncio
import hmac
import logging
import time
from contextlib import asynccontextmanager

import numpy as np
import uvicorn
from fastapi import Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response, StreamingResponse
from pydantic import BaseModel, ConfigDict, Field
from starlette.exceptions import HTTPException

from ..longform import join
from .audio_formats import encode, media_type, pcm16, stream_header
from .config import ServeConfig
from .errors import ApiError, not_ready, unauthorized
from .metrics import Metrics
from .service import SpeechService

log = logging.getLogger("mindbark.serve")
SPEECH = "/v1/audio/speech"
_DISCONNECT_POLL = 0.1  # seconds between checks that a waiting client is still there


class SpeechRequest(BaseModel):
    """OpenAI's speech request, plus mindbark's own optional fields (temperatures of 0 mean greedy)."""

    model_config = ConfigDict(extra="forbid")

    model: str
    input: str
    voice: str | None = None
    response_format: str = "mp3"
    speed: float = 1.0
    stream: bool = False
    seed: int | None = Field(None, ge=0, lt=2 ** 63)
    text_temp: float | None = Field(None, ge=0)
    waveform_temp: float | None = Field(None, ge=0)
    fine_temp: float | None = Field(None, ge=0)
    top_k: int | None = Field(None, ge=1)
    top_p: float | None = Field(None, gt=0, le=1)
    min_eos_p: float | None = Field(None, gt=0, le=1)
    max_duration: float | None = Field(None, gt=0)


def create_app(config: ServeConfig, wait_for_model: bool = False, on_failure=lambda: None) -> FastAPI:
    """The API over one model.

    Args:
        config: the operator's settings.
        wait_for_model: the lifespan's startup returns only once the model is loaded (Ray Serve then routes to a
            replica only when it can answer); otherwise the app answers at once and /health says when it is ready.
        on_failure: called if the model fails to load.
    """
    metrics = Metrics()
    service = SpeechService(config, metrics, on_failure)

    @asynccontextmanager
    async def lifespan(app):
        service.start()
        if wait_for_model:
            await asyncio.to_thread(service.ready.wait)
            if service.state == "failed":
                raise RuntimeError(f"the model failed to load: {service.error}")
        yield
        await asyncio.to_thread(service.close)

    app = FastAPI(title="mindbark", lifespan=lifespan, docs_url=None, redoc_url=None)
    app.state.service = service
    app.state.metrics = metrics
    authorized = [Depends(_authorizer(config.api_key))]

    @app.exception_handler(ApiError)
    async def api_error(request, e: ApiError):
        return JSONResponse(e.body(), e.status, headers=e.headers)

    @app.exception_handler(RequestValidationError)
    async def invalid(request, e: RequestValidationError):
        first = e.errors()[0]
        loc = [str(p) for p in first.get("loc", ()) if p != "body"]
        param = loc[-1] if loc and first.get("type") != "json_invalid" else None
        where = f"{'.'.join(loc)}: " if param else ""
        return await api_error(request, ApiError(400, f"{where}{first.get('msg', 'invalid request')}", param))

    @app.exception_handler(HTTPException)
    async def http_error(request, e: HTTPException):
        return await api_error(request, ApiError(e.status_code, str(e.detail), headers=e.headers))

    @app.exception_handler(Exception)
    async def internal(request, e: Exception):
        log.exception("request failed")
        return await api_error(request, ApiError(500, "internal error", type="server_error"))

    @app.middleware("http")
    async def count(request: Request, call_next):
        limit = 4 * config.max_input_chars + 65_536  # UTF-8 text of the longest input, and the other fields
        if int(request.headers.get("content-length") or 0) > limit:
            response = await api_error(request, ApiError(413, f"request body over {limit} bytes", "input"))
        else:
            response = await call_next(request)
        known = {r.path for r in app.routes}
        metrics.requests.labels(request.url.path if request.url.path in known else "other",
                                str(response.status_code)).inc()
        return response

    @app.get("/health")
    async def health():
        body = {"status": service.state, "model": config.model, "batch_size": config.batch_size,
                "queue_depth": service.scheduler.depth}
        if service.error:
            body["error"] = service.error
        return JSONResponse(body, 200 if service.state == "ready" else 503)

    @app.get("/metrics", dependencies=authorized)
    async def prometheus():
        return Response(metrics.render(), media_type=metrics.content_type)

    @app.get("/v1/voices", dependencies=authorized)
    async def voices():
        if service.state != "ready":
            raise not_ready(f"the model is {service.state}")
        return {"object": "list", "data": service.voice_names()}

    @app.post(SPEECH, dependencies=authorized)
    async def speech(body: SpeechRequest, request: Request):
        arrived = time.perf_counter()
        plan = service.plan(body)
        deadline = asyncio.get_running_loop().time() + config.request_timeout
        rate = service.model.generation_config.sample_rate
        headers = {"mindbark-seed": str(plan.seed), "mindbark-chunks": str(len(plan.chunks))}
        speech = service.open(plan)
        try:
            # the first chunk is awaited here, so that its failure is still an HTTP error, streamed or not
            first = await _guarded(speech.next(), request, deadline)
            metrics.first_audio.observe(time.perf_counter() - arrived)
            if plan.stream:
                body = _streamed(speech, first, rate, config.silence, request, deadline, metrics, arrived)
                return _Stream(body, speech.close, media_type=media_type(plan.fmt), headers=headers)
            audio = [first] + [await _guarded(speech.next(), request, deadline) for _ in plan.chunks[1:]]
        except BaseException:
            await speech.close()
            raise
        await speech.close()
        metrics.latency.observe(time.perf_counter() - arrived)
        data = encode(join(audio, rate, config.silence), rate, plan.fmt)
        return Response(data, media_type=media_type(plan.fmt), headers=headers)

    return app


class _Stream(StreamingResponse):
    """A streamed response that closes its request however it ends: done, failed, or the client gone."""

    def __init__(self, content, on_close, **kwargs):
        super().__init__(content, **kwargs)
        self.on_close = on_close

    async def __call__(self, scope, receive, send):
        try:
            await super().__call__(scope, receive, send)
        finally:
            await self.on_close()


async def _streamed(speech, first, rate: int, silence: float, request, deadline: float, metrics, arrived: float):
    """The header, then each chunk's samples (after the silence between chunks) as soon as it is decoded."""
    gap = pcm16(np.zeros(int(round(silence * rate)), np.float32))
    yield stream_header(rate, speech.plan.fmt) + pcm16(first)
    for _ in speech.plan.chunks[1:]:
        yield gap + pcm16(await _guarded(speech.next(), request, deadline))
    metrics.latency.observe(time.perf_counter() - arrived)


async def _guarded(awaitable, request: Request, deadline: float):
    """Await a chunk while the client is there and the request's time lasts: 504 past it."""
    task = asyncio.ensure_future(awaitable)
    loop = asyncio.get_running_loop()
    try:
        while True:
            left = deadline - loop.time()
            if left <= 0:
                raise ApiError(504, "the request ran past this server's time limit", type="timeout_error")
            done, _ = await asyncio.wait({task}, timeout=min(left, _DISCONNECT_POLL))
            if done:
                return task.result()
            if await request.is_disconnected():
                raise asyncio.CancelledError("the client disconnected")
    finally:
        if not task.done():
            task.cancel()


def _authorizer(key: str | None):
    """A dependency that checks `Authorization: Bearer KEY` when the server has a key."""

    async def authorize(request: Request):
        if key is None:
            return
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise unauthorized("missing API key: send Authorization: Bearer KEY")
        if not hmac.compare_digest(token.strip().encode(), key.encode()):
            raise unauthorized("invalid API key")

    return authorize


def run(config: ServeConfig, log_level: str = "info") -> int:
    """Serve with uvicorn on `config.host:config.port` until interrupted; the exit status (1: the model failed).

    At shutdown, requests in flight get `config.shutdown_timeout` seconds to finish, then are cancelled.
    """
    server = None

    def stop():
        server.should_exit = True

    app = create_app(config, on_failure=stop)
    server = uvicorn.Server(uvicorn.Config(app, host=config.host, port=config.port, log_level=log_level,
                                           timeout_graceful_shutdown=config.shutdown_timeout))
    server.run()
    return 1 if app.state.service.state == "failed" else 0
