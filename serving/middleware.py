"""``Guard``, the server's one middleware: what every request passes before a route sees it (the
bearer token, the body size limit), a JSON 500 instead of a traceback, and the request metrics."""

from __future__ import annotations

import hmac
import json
import time

from serving.metrics import Metrics

OPEN_PATHS = ("/healthz", "/readyz")  # no bearer token needed
KNOWN_PATHS = (  # metrics label any other path "other" (no label per scanned URL)
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
