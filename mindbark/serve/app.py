"""The HTTP API: OpenAI's `POST /v1/audio/speech` and mindbark's fields, voices, health and metrics.

`create_app(config)` builds a FastAPI app whose lifespan loads the model and runs the scheduler; uvicorn serves it
(`run`), and so does each Ray Serve replica (`ray_app`).
"""

import asyncio
import hmac
import logging
import signal
import threading
import time
from contextlib import asynccontextmanager, contextmanager

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

    # the longest input's UTF-8 bytes, and room for the other fields
    app.add_middleware(_Gate, metrics=metrics, max_body=4 * config.max_input_chars + 65_536,
                       paths={SPEECH, "/health", "/metrics", "/v1/voices"})

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
        talk = service.open(plan)
        try:
            # the first chunk is awaited here, so that its failure is still an HTTP error, streamed or not
            first = await _guarded(talk.next(), request, deadline)
            metrics.first_audio.observe(time.perf_counter() - arrived)
            if plan.stream:
                stream = _streamed(talk, first, rate, config.silence, request, deadline, metrics, arrived)
                return _Stream(stream, talk.close, media_type=media_type(plan.fmt), headers=headers)
            audio = [first] + [await _guarded(talk.next(), request, deadline) for _ in plan.chunks[1:]]
        except ClientGone:
            await talk.close()
            return Response(status_code=499)  # nobody reads it; nginx's code for a client that left, in metrics
        except asyncio.CancelledError:  # uvicorn's shutdown, once its grace period is over
            await talk.close()
            asyncio.current_task().uncancel()
            raise not_ready("the server is shutting down") from None
        except BaseException:
            await talk.close()
            raise
        await talk.close()
        metrics.latency.observe(time.perf_counter() - arrived)
        data = encode(join(audio, rate, config.silence), rate, plan.fmt)
        return Response(data, media_type=media_type(plan.fmt), headers=headers)

    return app


class ClientGone(Exception):
    """The client closed its connection while its request waited."""


class _Gate:
    """Refuses bodies over `max_body` bytes before they are read (413), and counts responses by path and status.

    A plain ASGI middleware: Starlette's BaseHTTPMiddleware would wrap `receive` and hide client disconnects.
    """

    def __init__(self, app, metrics: Metrics, max_body: int, paths: set):
        self.app, self.metrics, self.max_body, self.paths = app, metrics, max_body, paths

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        status = 500

        async def sending(message):
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            length = dict(scope["headers"]).get(b"content-length", b"")
            if length.isdigit() and int(length) > self.max_body:
                e = ApiError(413, f"request body over {self.max_body} bytes", "input")
                await JSONResponse(e.body(), e.status)(scope, receive, sending)
            else:
                await self.app(scope, receive, sending)
        finally:
            path = scope["path"] if scope["path"] in self.paths else "other"
            self.metrics.requests.labels(path, str(status)).inc()


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
    gap = pcm16(np.zeros(int(round(silence * rate)), np.float32), rate)
    yield stream_header(rate, speech.plan.fmt) + pcm16(first, rate)
    for _ in speech.plan.chunks[1:]:
        yield gap + pcm16(await _guarded(speech.next(), request, deadline), rate)
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
                raise ClientGone()
    finally:
        if not task.done():
            task.cancel()
            await asyncio.wait({task})  # the chunk generator must have stopped before the request closes it


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


class _Server(uvicorn.Server):
    """uvicorn's server, where Ctrl-C and SIGTERM end in a clean exit.

    uvicorn raises the signal again once it has shut down, and MindSpore turns Ctrl-C into SIGTERM (its own C-level
    handler, put in place when it runs a graph), so a clean shutdown would end as a process killed by SIGTERM.
    """

    @contextmanager
    def capture_signals(self):
        if threading.current_thread() is not threading.main_thread():  # only the main thread may set handlers
            yield
            return
        kept = {sig: signal.signal(sig, self.handle_exit) for sig in (signal.SIGINT, signal.SIGTERM)}
        try:
            yield
        finally:
            for sig, handler in kept.items():
                signal.signal(sig, handler)


def server(config: ServeConfig, log_level: str = "info") -> uvicorn.Server:
    """A uvicorn server of `create_app(config)` (its app: `.config.app`) that stops if the model fails to load.

    At shutdown, requests in flight get `config.shutdown_timeout` seconds to finish, then are cancelled.
    """
    def stop():
        result.should_exit = True

    app = create_app(config, on_failure=stop)
    result = _Server(uvicorn.Config(app, host=config.host, port=config.port, log_level=log_level,
                                           timeout_graceful_shutdown=config.shutdown_timeout))
    return result


def run(config: ServeConfig, log_level: str = "info") -> int:
    """Serve on `config.host:config.port` until interrupted; the exit status (1: the model failed to load)."""
    uv = server(config, log_level)
    uv.run()
    return 1 if uv.config.app.state.service.state == "failed" else 0
