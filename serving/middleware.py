"""``Guard``, the server's one middleware: what every request passes before a route sees it (the
bearer token, the body size limit), a JSON 500 instead of a traceback, and the request metrics."""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import json
import time

from serving.metrics import Metrics

OPEN_PATHS = ("/healthz", "/readyz")  # no bearer token needed
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

    def __init__(self, app, token: str, max_body: int, metrics: Metrics):
        self.app, self.token, self.max_body, self.metrics = app, token, max_body, metrics
        self.expected = f"Bearer {token}".encode()

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        started = time.perf_counter()
        path = scope["path"]
        headers = dict(scope.get("headers") or [])
        length = headers.get(b"content-length")
        status = [0]
        # May the client still be sending a body nobody has read? Before the first read: if it
        # declared one, unless it waits for a "100 Continue" (an answer instead tells it not to
        # send) or declared more than a drain would read.
        unread = [
            (length not in (None, b"0") or b"transfer-encoding" in headers)
            and b"100-continue" not in headers.get(b"expect", b"").lower()
            and not (length is not None and length.isdigit() and int(length) > DRAIN_BYTES)
        ]

        async def respond(message):
            if message["type"] == "http.response.start":
                status[0] = message["status"]
            elif message["type"] == "http.response.body" and not message.get("more_body", False) and unread[0]:
                await send({**message, "more_body": True})  # all of the answer now, the end after the drain
                await _drain(receive)
                unread[0] = False
                message = {"type": "http.response.body", "body": b""}
            await send(message)

        async def send_json(code: int, message: str):
            body = json.dumps({"error": message}).encode()
            headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
            await respond({"type": "http.response.start", "status": code, "headers": headers})
            await respond({"type": "http.response.body", "body": body})

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
            over = [False]  # the body passed max_body: whatever the app answers, the answer is 413

            async def counted_receive():
                message = await receive()
                unread[0] = message.get("more_body", False)
                received[0] += len(message.get("body", b""))
                if received[0] > self.max_body:
                    over[0] = True
                    raise _BodyTooLarge
                return message

            async def app_send(message):
                if not (over[0] and not status[0]):  # FastAPI answers a body it failed to read with a 400
                    await respond(message)

            try:
                await self.app(scope, counted_receive, app_send)
            except _BodyTooLarge:
                pass
            except Exception as exc:  # never a traceback to the client
                if not status[0] and not over[0]:
                    await send_json(500, f"internal error: {type(exc).__name__}; the server keeps serving")
            if over[0] and not status[0]:
                await send_json(413, f"request body over {self.max_body} bytes; send a smaller one")
        self.metrics.observe(path if path in KNOWN_PATHS else "other", status[0], time.perf_counter() - started)


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
