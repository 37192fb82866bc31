"""``latentforge serve``: an HTTP API over an exported generator, on onnxruntime and numpy only.

Endpoints (JSON in; an image grid, a .npy array or JSON out):
  POST /v1/generate     {n, seed?, label?, truncation?, psi?, noise?, inputs?, format: png|npy|json}
  POST /v1/style-mix    {rows: [seeds], cols: [seeds], layers: coarse|middle|fine|[indices], psi?, noise?}
                        style-based models: the StyleGAN paper's style-mixing grid
  POST /v1/synthesize   {ws: [[[...]]], noise?: zero|random|[[...]], seed?, format?}
                        style-based models: images from given styles, e.g. projected real images
  POST /v1/interpolate  {seed_a, seed_b, steps, method?, label?, format?}
  POST /v1/reconstruct  body: a PNG (or any image Pillow reads) of the model's image shape
                        (VAE and AE) -> its reconstruction; ?format=png|npy|json
  GET  /v1/models       the model card          POST /v1/admin/reload   re-resolve and swap the model
  GET  /healthz         the process is up       GET  /readyz            a verified model is loaded
  GET  /metrics         Prometheus text: request counters, latency and batch-size histograms
  GET  /openapi.json    the schema (FastAPI)
  GET  /                the playground: the model runs in the page with onnxruntime-web
                        (serving/playground.py: /web/... its scripts, /model/... the card and ONNX)

Concurrent generate/interpolate requests are merged into one onnxruntime call
(``serving/batching.py``). A reload loads and verifies the new model while the old one keeps
serving, then swaps between two batches: no request is dropped. With LATENTFORGE_TOKEN set,
every endpoint but the health checks and the playground's page and scripts needs
``Authorization: Bearer <token>`` (the model's files too, unless ``public_model``). Every bad
request gets a 4xx JSON ``{"error": "..."}`` that says what to change.

This file holds the app factory, the model holder and the routes; the request schemas and the
settings are in ``serving/schemas.py``, the Prometheus metrics in ``serving/metrics.py``, and the
token and body-size guard in ``serving/middleware.py``.
"""

from __future__ import annotations

import asyncio
import gc
import io
import os
import secrets
from contextlib import asynccontextmanager
from typing import Literal

import numpy as np
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, PlainTextResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from contract import images
from serving import playground, styles
from serving.batching import MicroBatcher
from serving.metrics import Metrics
from serving.middleware import Guard
from serving.runtime import GeneratorRuntime, ModelLoadError
from serving.schemas import (
    GenerateRequest,
    InterpolateRequest,
    ServeSettings,
    StyleMixRequest,
    SynthesizeRequest,
    validation_message,
)

TOKEN_ENV = "LATENTFORGE_TOKEN"


class BadRequest(Exception):
    def __init__(self, message: str, status: int = 400):
        super().__init__(message)
        self.status = status


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

    def current(self) -> GeneratorRuntime:
        """The runtime serving now; BadRequest (503) until the first model is loaded."""
        if self.runtime is None:
            raise BadRequest("no model loaded yet; retry when /readyz answers 200", 503)
        return self.runtime

    async def reload(self) -> tuple[bool, GeneratorRuntime]:
        """(changed?, runtime): loads in a thread; the old runtime serves until the swap."""
        async with self.lock:
            fresh = await asyncio.get_running_loop().run_in_executor(None, self.load)
            old = self.runtime
            changed = old is None or fresh.card.get("files") != old.card.get("files")
            if changed or old is None:
                self.runtime = old = fresh
            return bool(changed), old


def create_app(settings: ServeSettings) -> FastAPI:
    """The FastAPI application (the model is loaded at startup)."""
    holder = ModelHolder(settings)
    metrics = Metrics()
    batcher = MicroBatcher(
        lambda: holder.runtime, settings.max_batch_size, settings.max_latency_ms, on_batch=metrics.observe_batch
    )
    token = os.environ.get(TOKEN_ENV, "")
    app = FastAPI(
        title="latentforge",
        summary="Generate images with an exported latentforge generator (onnxruntime).",
        version="1",
        lifespan=_lifespan(settings, holder, batcher, metrics),
    )
    _add_error_handlers(app)
    app.add_middleware(
        Guard, token=token, max_body=settings.max_body_bytes, metrics=metrics, public_model=settings.public_model
    )
    _add_image_routes(app, settings, holder, batcher)
    _add_style_mix_route(app, settings, holder, batcher)
    _add_synthesize_route(app, settings, holder, batcher)
    _add_reconstruct_route(app, holder, batcher)
    _add_model_routes(app, holder, metrics)
    playground.add_routes(app, holder)  # GET /: the model in the browser (serving/playground.py)
    app.openapi = _openapi_with_inputs(app, holder)  # type: ignore[method-assign]  # FastAPI's documented hook
    return app


def _openapi_with_inputs(app: FastAPI, holder: ModelHolder):
    """FastAPI's schema, with ``GenerateRequest.inputs`` spelled out from the served model's card:
    one property per input a request may set (every input but the latents), with its type,
    bounds and role. Computed per call, so it follows a reload."""
    from fastapi.openapi.utils import get_openapi

    def openapi() -> dict:
        schema = get_openapi(title=app.title, version=app.version, summary=app.summary, routes=app.routes)
        runtime = holder.runtime
        body = schema.get("components", {}).get("schemas", {}).get("GenerateRequest")
        if runtime is None or body is None:
            return schema
        properties = {}
        for spec in runtime.signature.inputs:
            if spec.role == "latent":
                continue
            low, high = (0, spec.classes - 1) if spec.classes else spec.bounds or (None, None)
            one = {"type": "integer" if spec.dtype == "int32" else "number", "description": spec.about or spec.role}
            one.update({k: v for k, v in (("minimum", low), ("maximum", high)) if v is not None})
            per_image = {"type": "array", "items": one} if not spec.shape else {"type": "array"}
            properties[spec.name] = {"anyOf": [one, per_image], "description": f"role {spec.role}"}
        body["properties"]["inputs"] = {
            "type": "object",
            "properties": properties,
            "additionalProperties": False,
            "description": body["properties"].get("inputs", {}).get("description", ""),
        }
        return schema

    return openapi


def _lifespan(settings: ServeSettings, holder: ModelHolder, batcher: MicroBatcher, metrics: Metrics):
    """Start-up loads and verifies the model, then starts the batcher (and the poller, if asked)."""

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
        # of pausing every in-flight request now and then (the serving benchmark's tail latency:
        # docs/results.md#http-serving).
        gc.collect()
        gc.freeze()
        await batcher.start()
        poller = asyncio.create_task(poll()) if settings.poll_seconds > 0 else None
        yield
        if poller:
            poller.cancel()
        await batcher.stop()

    return lifespan


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)


def _add_error_handlers(app: FastAPI) -> None:
    """Every refusal is a JSON ``{"error": "..."}`` with its status."""

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError):
        return _error(422, validation_message(exc.errors(), exc.body))

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException):
        return _error(exc.status_code, str(exc.detail))

    @app.exception_handler(BadRequest)
    async def bad_request(request: Request, exc: BadRequest):
        return _error(exc.status, str(exc))


def _add_image_routes(app: FastAPI, settings: ServeSettings, holder: ModelHolder, batcher: MicroBatcher) -> None:
    """POST /v1/generate and /v1/interpolate: images through the batcher."""

    @app.post("/v1/generate", summary="Generate n images from a seed")
    async def generate(body: GenerateRequest):
        rt = holder.current()
        if body.n > settings.max_images:
            raise BadRequest(f"n={body.n} is over this server's limit of {settings.max_images}; ask for fewer", 422)
        seed = body.seed if body.seed is not None else secrets.randbelow(2**32)
        z = rt.latents(seed, body.n)
        if body.truncation is not None:
            z = images.truncate(z, body.truncation, seed, rt.sampler)
        try:
            values = styles.controls(rt, body.psi, body.noise, body.inputs)
        except ValueError as exc:
            raise BadRequest(str(exc), 422) from None
        out = await batcher.submit(_feed(rt, z, body.label, values, seed))
        return _respond(rt, out, body.format, seed)

    @app.post("/v1/interpolate", summary="Images along a latent path between two seeds")
    async def interpolate(body: InterpolateRequest):
        rt = holder.current()
        if body.steps > settings.max_images:
            raise BadRequest(f"steps={body.steps} is over this server's limit of {settings.max_images}", 422)
        a = rt.latents(body.seed_a, 1)[0]
        b = rt.latents(body.seed_b, 1)[0]
        z = images.interpolate(a, b, body.steps, body.method)
        out = await batcher.submit(_feed(rt, z, body.label, None, body.seed_a))
        return _respond(rt, out, body.format, None, columns=body.steps)


def _add_style_mix_route(app: FastAPI, settings: ServeSettings, holder: ModelHolder, batcher: MicroBatcher) -> None:
    """POST /v1/style-mix: the paper's style-mixing grid (``serving/styles.py``), through the batcher."""

    @app.post("/v1/style-mix", summary="Style-mixing grid: row sources with some styles from column sources")
    async def style_mix(body: StyleMixRequest):
        rt = holder.current()
        count = (len(body.rows) + 1) * (len(body.cols) + 1)
        if count > settings.max_images:
            raise BadRequest(f"the grid has {count} images, over this server's limit of {settings.max_images}", 422)
        for field, seeds in (("rows", body.rows), ("cols", body.cols)):
            if any(not 0 <= s < 2**32 for s in seeds):
                raise BadRequest(f"{field}: seeds must be between 0 and 2**32 - 1", 422)
        try:
            feed = styles.mix_feed(rt, body.rows, body.cols, body.layers, body.psi, body.noise)
        except ValueError as exc:
            raise BadRequest(str(exc), 422) from None
        out = np.array(await batcher.submit(feed))
        out[0] = images.blank(rt.card["value_range"])  # the corner of the grid
        return _respond(rt, out, body.format, None, columns=len(body.cols) + 1)


def _add_synthesize_route(app: FastAPI, settings: ServeSettings, holder: ModelHolder, batcher: MicroBatcher) -> None:
    """POST /v1/synthesize: the synthesis graph on given styles (style-based models)."""

    @app.post("/v1/synthesize", summary="Images from given styles (ws), e.g. projected real images")
    async def synthesize(body: SynthesizeRequest):
        rt = holder.current()
        layout = rt.card.get("styles")
        if layout is None or "synthesis" not in rt.card["graphs"]:
            raise BadRequest(f"{rt.card['model']} has no styles; /v1/synthesize serves style-based models", 422)
        if len(body.ws) > settings.max_images:
            raise BadRequest(f"{len(body.ws)} images is over this server's limit of {settings.max_images}", 422)
        ws = _array(body.ws, (len(body.ws), layout["num_ws"], layout["w_dim"]), "ws")
        seed = body.seed if body.seed is not None else secrets.randbelow(2**32)
        noise = _noise(rt, body.noise, (len(body.ws), layout["noise_size"]), seed)
        loop = asyncio.get_running_loop()
        try:
            out = await loop.run_in_executor(batcher.executor, rt.synthesize, ws, noise)
        except ValueError as exc:
            raise BadRequest(str(exc), 422) from None
        except ModelLoadError as exc:  # the synthesis graph cannot be fetched or fails its checksum
            raise BadRequest(f"the synthesis graph is unavailable: {exc}", 503) from None
        return _respond(rt, out, body.format, seed if body.noise == "random" else None)


def _array(values, shape: tuple[int, ...], field: str) -> np.ndarray:
    """A request's nested lists as float32 of ``shape`` (BadRequest naming the field otherwise)."""
    try:
        array = np.asarray(values, dtype=np.float32)
    except ValueError:
        array = np.zeros(0, dtype=np.float32)
    if array.shape != shape or not np.all(np.isfinite(array)):
        raise BadRequest(f"{field} must be finite numbers of shape {list(shape)}, got {list(array.shape)}", 422)
    return array


def _noise(rt, noise, shape: tuple[int, int], seed: int) -> np.ndarray:
    if noise == "zero":
        return np.zeros(shape, np.float32)
    if noise == "random":
        return rt.seeded_noise(seed, *shape)
    return _array(noise, shape, "noise")


def _add_reconstruct_route(app: FastAPI, holder: ModelHolder, batcher: MicroBatcher) -> None:
    """POST /v1/reconstruct: an uploaded image through the encoder and the generator (VAE, AE)."""

    @app.post(
        "/v1/reconstruct",
        summary="Encode and decode an uploaded image (VAE, AE)",
        openapi_extra={"requestBody": {"content": {"image/png": {"schema": {"type": "string", "format": "binary"}}}}},
    )
    async def reconstruct(request: Request, format: Literal["png", "npy", "json"] = "png"):
        rt = holder.current()
        if rt.encoder is None:
            raise BadRequest(f"{rt.card['model']} has no encoder; /v1/reconstruct serves the VAE and the AE", 422)
        data = await request.body()
        if not data:
            raise BadRequest("empty body; send the image's bytes (PNG) as the request body")
        picture = _decode_image(data, tuple(rt.card["output_shape"]))
        loop = asyncio.get_running_loop()
        z = await loop.run_in_executor(batcher.executor, rt.encode, picture[None])
        out = await batcher.submit(_feed(rt, z, None, None, 0))
        return _respond(rt, out, format, None)


def _add_model_routes(app: FastAPI, holder: ModelHolder, metrics: Metrics) -> None:
    """The model card, the reload, the health checks and the Prometheus metrics."""

    @app.get("/v1/models", summary="The model card of the served generator")
    async def models():
        rt = holder.current()
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


def _feed(rt: GeneratorRuntime, z: np.ndarray, label, values: dict | None, seed: int) -> dict:
    """Every generator input for latents ``z``: the label asked for (or every class in turn),
    ``values`` for named inputs, the card's defaults for the rest; a bad one is a 422."""
    try:
        return rt.feed(z, rt.labels(label, len(z)), values, seed)
    except ValueError as exc:
        raise BadRequest(str(exc), 422) from None


def _respond(rt: GeneratorRuntime, out: np.ndarray, fmt: str, seed: int | None, columns: int | None = None):
    """Generator output -> the response in the format asked for (X-Seed header when seeded)."""
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


def serve(settings: ServeSettings, host: str = "127.0.0.1", port: int = 8080) -> None:
    import uvicorn

    app = create_app(settings)
    uvicorn.run(app, host=host, port=port, log_level="warning", access_log=False)
