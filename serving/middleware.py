"""``Guard``, the server's one middleware: what every request passes before a route sees it (the
bearer token, the body size limit), a JSON 500 instead of a traceback, and the request metrics."""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import json
import time

from serving.metrics import Metrics
from serving.playground import public_paths

OPEN_PATHS = ("/healthz", "/readyz")  # no bearer token needed (nor for the playground's page: public_paths)
DRAIN_BYTES = 64 << 20  # after an early answer, read and drop at most this much of the body...
DRAIN_SECONDS = 2.0  # ...for at most this long, then close the connection anyway
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
    "/",
)


class _BodyTooLarge(Exception):
    pass


class Guard:
    """Pure ASGI middleware (cheaper per request than Starlette's BaseHTTPMiddleware): the bearer
    token, the body size limit (declared or streamed), a JSON 500 instead of a traceback, and
    the request metrics.

    A response finished while the client may still be sending its body (a 401 or 413 here, a
    route that answers without reading it) waits to finish until the rest of the body has been
    read and dropped (at most ``DRAIN_BYTES``, for at most ``DRAIN_SECONDS``): a connection
    closed with unread data in it is reset, and a client that sends its whole body before it
    reads (Python's ``urllib.request``) would see "connection reset by peer", not the answer.
    """

    def __init__(self, app, token: str, max_body: int, metrics: Metrics, public_model: bool = False):
        self.app, self.token, self.max_body, self.metrics = app, token, max_body, metrics
        self.public_model = public_model  # the playground's model files need no token
        self.expected = f"Bearer {token}".encode()

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        started = time.perf_counter()
        path, exchange = scope["path"], _Exchange(scope, receive, send)
        length = exchange.length
        if (
            self.token
            and path not in OPEN_PATHS
            and not public_paths(path, self.public_model)
            and not hmac.compare_digest(exchange.headers.get(b"authorization", b""), self.expected)
        ):
            await exchange.send_json(401, "missing or wrong bearer token; send 'Authorization: Bearer <token>'")
        elif length is not None and (not length.isdigit() or int(length) > self.max_body):
            await exchange.send_json(413, f"request body over {self.max_body} bytes; send a smaller one")
        else:
            await self._forward(scope, exchange)
        self.metrics.observe(path if path in KNOWN_PATHS else "other", exchange.status, time.perf_counter() - started)

    async def _forward(self, scope, exchange: _Exchange) -> None:
        """Run the app with the body counted as it streams in: past ``max_body`` the answer is a
        413 whatever the app says; an exception is a JSON 500."""
        received, over = 0, False  # over: the body passed max_body

        async def counted_receive():
            nonlocal received, over
            message = await exchange.receive()
            exchange.unread = message.get("more_body", False)
            received += len(message.get("body", b""))
            if received > self.max_body:
                over = True
                raise _BodyTooLarge
            return message

        async def app_send(message):
            if not (over and not exchange.status):  # FastAPI answers a body it failed to read with a 400
                await exchange.respond(message)

        try:
            await self.app(scope, counted_receive, app_send)
        except _BodyTooLarge:
            pass
        except Exception as exc:  # never a traceback to the client
            if not exchange.status and not over:
                await exchange.send_json(500, f"internal error: {type(exc).__name__}; the server keeps serving")
        if over and not exchange.status:
            await exchange.send_json(413, f"request body over {self.max_body} bytes; send a smaller one")


class _Exchange:
    """One HTTP request as the guard sees it: its headers, the status answered so far, whether
    the client may still be sending a body nobody has read, and the one way to answer."""

    def __init__(self, scope, receive, send):
        self.receive, self.send = receive, send
        self.headers = dict(scope.get("headers") or [])
        self.length = self.headers.get(b"content-length")
        self.status = 0
        # Before the first read: unread if it declared a body, unless it waits for a "100
        # Continue" (an answer instead tells it not to send) or declared more than a drain reads.
        self.unread = (
            (self.length not in (None, b"0") or b"transfer-encoding" in self.headers)
            and b"100-continue" not in self.headers.get(b"expect", b"").lower()
            and not (self.length is not None and self.length.isdigit() and int(self.length) > DRAIN_BYTES)
        )

    async def respond(self, message) -> None:
        if message["type"] == "http.response.start":
            self.status = message["status"]
        elif message["type"] == "http.response.body" and not message.get("more_body", False) and self.unread:
            await self.send({**message, "more_body": True})  # all of the answer now, the end after the drain
            await _drain(self.receive)
            self.unread = False
            message = {"type": "http.response.body", "body": b""}
        await self.send(message)

    async def send_json(self, code: int, message: str) -> None:
        body = json.dumps({"error": message}).encode()
        headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
        await self.respond({"type": "http.response.start", "status": code, "headers": headers})
        await self.respond({"type": "http.response.body", "body": body})


async def _drain(receive) -> None:
    """Read and drop the rest of the request body: at most DRAIN_BYTES, for at most DRAIN_SECONDS."""

    async def read_rest():
        left = DRAIN_BYTES
        while left > 0:
            message = await receive()  # a disconnect has no more_body: the loop ends
            left -= len(message.get("body", b""))
            if not message.get("more_body", False):
                return

    with contextlib.suppress(asyncio.TimeoutError):
        await asyncio.wait_for(read_rest(), DRAIN_SECONDS)
