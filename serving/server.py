"""``latentforge serve``: an HTTP API over an exported generator, on onnxruntime and numpy only.

Endpoints (JSON in; an image grid, a .npy array or JSON out):
  POST /v1/generate     {n, seed?, label?, truncation?, format: png|npy|json}
  POST /v1/interpolate  {seed_a, seed_b, steps, method?, label?, format?}
  POST /v1/reconstruct  body: a PNG (or any image Pillow reads) of the model's image shape
                        (VAE and AE) -> its reconstruction; ?format=png|npy|json
  GET  /v1/models       the model card          POST /v1/admin/reload   re-resolve and swap the model
  GET  /healthz         the process is up       GET  /readyz            a verified model is loaded
  GET  /metrics         Prometheus text: request counters, latency and batch-size histograms
  GET  /openapi.json    the schema (FastAPI)

Concurrent generate/interpolate requests are merged into one onnxruntime call
(``serving/batching.py``). A reload loads and verifies the new model while the old one keeps
serving, then swaps between two batches: no request is dropped. With LATENTFORGE_TOKEN set,
every endpoint but the health checks needs ``Authorization: Bearer <token>``. Every bad
request gets a 4xx JSON ``{"error": "..."}`` that says what to change.
"""

from __future__ import annotations

import asyncio
import gc
import hmac
import io
import json
import os
import secrets
import threading
import time
from contextlib import asynccontextmanager
from typing import Literal

import numpy as np
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, PlainTextResponse, Response
from pydantic import BaseModel, ConfigDict, Field, StrictInt, StrictStr
from starlette.exceptions import HTTPException as StarletteHTTPException

from serving import images
from serving.batching import MicroBatcher
from serving.runtime import GeneratorRuntime, ModelLoadError

TOKEN_ENV = "LATENTFORGE_TOKEN"
OPEN_PATHS = ("/healthz", "/readyz")
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256)


class ServeSettings(BaseModel):
    model: str
    max_batch_size: int = 64
    max_latency_ms: float = 2.0
    max_images: int = 256  # per request
    max_body_bytes: int = 1_000_000
    threads: int = 0  # onnxruntime intra-op threads; 0 = its default
    spinning: bool = False  # let idle onnxruntime threads spin (steals CPU from the event loop on small boxes)
    poll_seconds: float = 0.0  # re-resolve the model URI this often (0 = only on /v1/admin/reload)


# ---- request bodies ---------------------------------------------------------------------------
class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class GenerateRequest(_Body):
    n: StrictInt = Field(1, ge=1, description="images to generate (at most the server's max_images)")
    seed: StrictInt | None = Field(None, ge=0, lt=2**32, description="latent seed; the same seed gives the same bytes")
    label: StrictInt | StrictStr | None = Field(None, description="conditional models: class index or name")
    truncation: float | None = Field(
        None, ge=0.05, le=10, allow_inf_nan=False, description="redraw latent entries beyond this magnitude (0.05-10)"
    )
    format: Literal["png", "npy", "json"] = "png"


class InterpolateRequest(_Body):
    seed_a: StrictInt = Field(..., ge=0, lt=2**32)
    seed_b: StrictInt = Field(..., ge=0, lt=2**32)
    steps: StrictInt = Field(8, ge=2, description="images along the path, ends included")
    method: Literal["slerp", "lerp"] = "slerp"
    label: StrictInt | StrictStr | None = None
    format: Literal["png", "npy", "json"] = "png"


class BadRequest(Exception):
    def __init__(self, message: str, status: int = 400):
        super().__init__(message)
        self.status = status


# ---- metrics ----------------------------------------------------------------------------------
class Metrics:
    """Counters and histograms in the Prometheus text format (no client library needed)."""

    def __init__(self):
        self.lock = threading.Lock()
        self.requests: dict[tuple[str, int], int] = {}
        self.latency: dict[str, list[int]] = {}
        self.latency_sum: dict[str, float] = {}
        self.batches = [0] * (len(BATCH_BUCKETS) + 1)
        self.batch_images = 0
        self.reloads = 0

    def observe(self, path: str, status: int, seconds: float) -> None:
        with self.lock:
            self.requests[(path, status)] = self.requests.get((path, status), 0) + 1
            counts = self.latency.setdefault(path, [0] * (len(LATENCY_BUCKETS) + 1))
            counts[_bucket(seconds, LATENCY_BUCKETS)] += 1
            self.latency_sum[path] = self.latency_sum.get(path, 0.0) + seconds

    def observe_batch(self, size: int) -> None:
        with self.lock:
            self.batches[_bucket(size, BATCH_BUCKETS)] += 1
            self.batch_images += size

    def render(self) -> str:
        lines = ["# TYPE latentforge_requests_total counter"]
        with self.lock:
            for (path, status), count in sorted(self.requests.items()):
                lines.append(f'latentforge_requests_total{{path="{path}",status="{status}"}} {count}')
            lines.append("# TYPE latentforge_request_seconds histogram")
            for path, counts in sorted(self.latency.items()):
                lines += _histogram("latentforge_request_seconds", f'path="{path}",', LATENCY_BUCKETS, counts)
                lines.append(f'latentforge_request_seconds_sum{{path="{path}"}} {self.latency_sum[path]:.6f}')
            lines.append("# TYPE latentforge_batch_size histogram")
            lines += _histogram("latentforge_batch_size", "", BATCH_BUCKETS, self.batches)
            lines.append(f"latentforge_batch_size_sum {self.batch_images}")
            lines.append("# TYPE latentforge_reloads_total counter")
            lines.append(f"latentforge_reloads_total {self.reloads}")
        return "\n".join(lines) + "\n"


def _bucket(value: float, bounds) -> int:
    for i, bound in enumerate(bounds):
        if value <= bound:
            return i
    return len(bounds)


def _histogram(name: str, labels: str, bounds, counts) -> list[str]:
    lines, cumulative = [], 0
    for bound, count in zip(bounds, counts):
        cumulative += count
        lines.append(f'{name}_bucket{{{labels}le="{bound}"}} {cumulative}')
    cumulative += counts[-1]
    lines.append(f'{name}_bucket{{{labels}le="+Inf"}} {cumulative}')
    lines.append(f"{name}_count{{{labels.rstrip(',')}}} {cumulative}" if labels else f"{name}_count {cumulative}")
    return lines


# ---- the app ----------------------------------------------------------------------------------
class ModelHolder:
    """The current runtime; ``reload`` verifies a new one before swapping it in."""

    def __init__(self, settings: ServeSettings):
        self.settings = settings
        self.runtime: GeneratorRuntime | None = None
        self.lock = asyncio.Lock()

    def load(self) -> GeneratorRuntime:
        return GeneratorRuntime.load(
            self.settings.model, threads=self.settings.threads, with_encoder=True, spinning=self.settings.spinning
        )

    async def reload(self) -> tuple[bool, GeneratorRuntime]:
        """(changed?, runtime): loads in a thread; the old runtime serves until the swap."""
        async with self.lock:
            fresh = await asyncio.get_running_loop().run_in_executor(None, self.load)
            old = self.runtime
            changed = old is None or fresh.card.get("files") != old.card.get("files")
            if changed:
                self.runtime = fresh
            return changed, self.runtime


def create_app(settings: ServeSettings):
    """The FastAPI application (the model is loaded at startup)."""
    holder = ModelHolder(settings)
    metrics = Metrics()
    batcher = MicroBatcher(
        lambda: holder.runtime, settings.max_batch_size, settings.max_latency_ms, on_batch=metrics.observe_batch
    )
    token = os.environ.get(TOKEN_ENV, "")

    async def poll():
        while True:
            await asyncio.sleep(settings.poll_seconds)
            try:
                changed, _ = await holder.reload()
                if changed:
                    metrics.reloads += 1
            except ModelLoadError as error:  # keep serving the verified model
                print(f"serve: reload skipped: {error}", flush=True)

    @asynccontextmanager
    async def lifespan(app):
        holder.runtime = await asyncio.get_running_loop().run_in_executor(None, holder.load)
        # Everything imported so far (MLflow, pydantic, FastAPI: millions of objects) goes to the
        # permanent generation: full collections then scan only what requests allocate, instead
        # of pausing every in-flight request for ~200 ms (measured) now and then.
        gc.collect()
        gc.freeze()
        await batcher.start()
        poller = asyncio.create_task(poll()) if settings.poll_seconds > 0 else None
        yield
        if poller:
            poller.cancel()
        await batcher.stop()

    app = FastAPI(
        title="latentforge",
        summary="Generate images with an exported latentforge generator (onnxruntime).",
        version="1",
        lifespan=lifespan,
    )

    def error(status: int, message: str) -> JSONResponse:
        return JSONResponse({"error": message}, status_code=status)

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError):
        return error(422, _validation_message(exc.errors()))

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException):
        return error(exc.status_code, str(exc.detail))

    @app.exception_handler(BadRequest)
    async def bad_request(request: Request, exc: BadRequest):
        return error(exc.status, str(exc))

    app.add_middleware(Guard, token=token, max_body=settings.max_body_bytes, metrics=metrics)

    def runtime() -> GeneratorRuntime:
        if holder.runtime is None:
            raise BadRequest("no model loaded yet; retry when /readyz answers 200", 503)
        return holder.runtime

    def labels_for(rt: GeneratorRuntime, label, n: int):
        try:
            return rt.labels(label, n)
        except ValueError as exc:
            raise BadRequest(str(exc), 422) from None

    def respond(rt: GeneratorRuntime, out: np.ndarray, fmt: str, seed: int | None, columns: int | None = None):
        pictures = images.to_uint8(out, rt.card["value_range"])
        headers = {"X-Seed": str(seed)} if seed is not None else {}
        if fmt == "png":
            return Response(
                images.png_bytes(images.grid(pictures, columns=columns)), media_type="image/png", headers=headers
            )
        if fmt == "npy":
            buffer = io.BytesIO()
            np.save(buffer, pictures)
            return Response(buffer.getvalue(), media_type="application/octet-stream", headers=headers)
        return JSONResponse({"shape": list(pictures.shape), "seed": seed, "images": pictures.tolist()}, headers=headers)

    @app.post("/v1/generate", summary="Generate n images from a seed")
    async def generate(body: GenerateRequest):
        rt = runtime()
        if body.n > settings.max_images:
            raise BadRequest(f"n={body.n} is over this server's limit of {settings.max_images}; ask for fewer", 422)
        seed = body.seed if body.seed is not None else secrets.randbelow(2**32)
        z = images.latents(seed, body.n, rt.latent_dim)
        if body.truncation is not None:
            z = images.truncate(z, body.truncation, seed)
        out = await batcher.submit(z, labels_for(rt, body.label, body.n))
        return respond(rt, out, body.format, seed)

    @app.post("/v1/interpolate", summary="Images along a latent path between two seeds")
    async def interpolate(body: InterpolateRequest):
        rt = runtime()
        if body.steps > settings.max_images:
            raise BadRequest(f"steps={body.steps} is over this server's limit of {settings.max_images}", 422)
        a = images.latents(body.seed_a, 1, rt.latent_dim)[0]
        b = images.latents(body.seed_b, 1, rt.latent_dim)[0]
        z = images.interpolate(a, b, body.steps, body.method)
        out = await batcher.submit(z, labels_for(rt, body.label, body.steps))
        return respond(rt, out, body.format, None, columns=body.steps)

    @app.post(
        "/v1/reconstruct",
        summary="Encode and decode an uploaded image (VAE, AE)",
        openapi_extra={"requestBody": {"content": {"image/png": {"schema": {"type": "string", "format": "binary"}}}}},
    )
    async def reconstruct(request: Request, format: Literal["png", "npy", "json"] = "png"):
        rt = runtime()
        if rt.encoder is None:
            raise BadRequest(f"{rt.card['model']} has no encoder; /v1/reconstruct serves the VAE and the AE", 422)
        data = await request.body()
        if not data:
            raise BadRequest("empty body; send the image's bytes (PNG) as the request body")
        picture = _decode_image(data, tuple(rt.card["output_shape"]))
        loop = asyncio.get_running_loop()
        z = await loop.run_in_executor(batcher.executor, rt.encode, picture[None])
        out = await batcher.submit(z)
        return respond(rt, out, format, None)

    @app.get("/v1/models", summary="The model card of the served generator")
    async def models():
        rt = runtime()
        return {"source": rt.source, "card": rt.card, "encoder": rt.encoder is not None}

    @app.post("/v1/admin/reload", summary="Re-resolve the model URI; swap in a verified new version")
    async def reload():
        try:
            changed, rt = await holder.reload()
        except ModelLoadError as exc:
            raise BadRequest(f"reload refused, still serving the previous model: {exc}", 409) from None
        if changed:
            metrics.reloads += 1
        return {"reloaded": changed, "files": rt.card.get("files", {})}

    @app.get("/healthz", summary="Liveness")
    async def healthz():
        return {"status": "ok"}

    @app.get("/readyz", summary="Readiness: a verified model is loaded")
    async def readyz():
        if holder.runtime is None:
            return JSONResponse({"status": "loading"}, status_code=503)
        return {"status": "ready", "model": holder.runtime.card["model"]}

    @app.get("/metrics", summary="Prometheus metrics")
    async def prometheus():
        return PlainTextResponse(metrics.render(), media_type="text/plain; version=0.0.4")

    return app


class _BodyTooLarge(Exception):
    pass


class Guard:
    """Pure ASGI middleware (cheaper per request than Starlette's BaseHTTPMiddleware): the bearer
    token, the body size limit (declared or streamed), a JSON 500 instead of a traceback, and
    the request metrics."""

    def __init__(self, app, token: str, max_body: int, metrics: Metrics):
        self.app, self.token, self.max_body, self.metrics = app, token, max_body, metrics
        self.expected = f"Bearer {token}".encode()

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        started = time.perf_counter()
        path = scope["path"]
        status = [0]

        async def send_json(code: int, message: str):
            body = json.dumps({"error": message}).encode()
            headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
            await send({"type": "http.response.start", "status": code, "headers": headers})
            await send({"type": "http.response.body", "body": body})
            status[0] = code

        headers = dict(scope.get("headers") or [])
        length = headers.get(b"content-length")
        if (
            self.token
            and path not in OPEN_PATHS
            and not hmac.compare_digest(headers.get(b"authorization", b""), self.expected)
        ):
            await send_json(401, "missing or wrong bearer token; send 'Authorization: Bearer <token>'")
        elif length is not None and (not length.isdigit() or int(length) > self.max_body):
            await send_json(413, f"request body over {self.max_body} bytes; send a smaller one")
        else:
            received = [0]

            async def counted_receive():
                message = await receive()
                received[0] += len(message.get("body", b""))
                if received[0] > self.max_body:
                    raise _BodyTooLarge
                return message

            async def tracked_send(message):
                if message["type"] == "http.response.start":
                    status[0] = message["status"]
                await send(message)

            try:
                await self.app(scope, counted_receive, tracked_send)
            except _BodyTooLarge:
                if not status[0]:
                    await send_json(413, f"request body over {self.max_body} bytes; send a smaller one")
            except Exception as exc:  # never a traceback to the client
                if not status[0]:
                    await send_json(500, f"internal error: {type(exc).__name__}; the server keeps serving")
        self.metrics.observe(path if path in KNOWN_PATHS else "other", status[0], time.perf_counter() - started)


KNOWN_PATHS = (
    "/v1/generate",
    "/v1/interpolate",
    "/v1/reconstruct",
    "/v1/models",
    "/v1/admin/reload",
    "/healthz",
    "/readyz",
    "/metrics",
    "/openapi.json",
    "/docs",
)


def _decode_image(data: bytes, shape: tuple[int, int, int]) -> np.ndarray:
    """Request bytes -> float32 (h, w, c) in [0, 1]; BadRequest unless an image of ``shape``."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(io.BytesIO(data)) as image:
            image.load()
            mode = "L" if shape[2] == 1 else "RGB"
            array = np.asarray(image.convert(mode), dtype=np.float32) / 255.0
    except (UnidentifiedImageError, OSError, ValueError):
        raise BadRequest("the body is not an image Pillow can read; send a PNG", 415) from None
    if array.ndim == 2:
        array = array[..., None]
    if array.shape != shape:
        raise BadRequest(f"image is {array.shape[1]}x{array.shape[0]}; this model takes {shape[1]}x{shape[0]}", 422)
    return array


def _validation_message(errors) -> str:
    """FastAPI's validation errors -> one line naming each field and what to change."""
    parts = []
    for e in errors[:5]:
        where = ".".join(str(x) for x in e.get("loc", ()) if x != "body") or "body"
        parts.append(f"{where}: {e.get('msg', 'invalid')}")
    return "; ".join(parts) + ("" if len(errors) <= 5 else f"; and {len(errors) - 5} more")


def serve(settings: ServeSettings, host: str = "127.0.0.1", port: int = 8080) -> None:
    import uvicorn

    app = create_app(settings)
    uvicorn.run(app, host=host, port=port, log_level="warning", access_log=False)
