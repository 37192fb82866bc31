"""The browser playground's files: the page (``serving/web``), onnxruntime-web (``web_runtime``)
and the served model (its card and the ONNX graphs the page runs), laid out as the page expects
them beside it:

    index.html                      the page
    web/playground.js, feeds.js, sampler.js, sha256.js, playground.css
    web/ort/<onnxruntime-web files>
    model/model_card.json, model/<graph>.onnx   (the generator, and the encoder when there is one)

``latentforge serve`` answers these paths (``add_routes``: gzip when the client takes it, and
the headers below); ``latentforge playground --out DIR`` writes them as a static site
(``write_site``) that any static file server hosts.

Headers: a Content-Security-Policy that allows only the page's own origin (plus
'wasm-unsafe-eval', which compiling WebAssembly needs), and COOP/COEP, which make the page
cross-origin isolated so that onnxruntime-web may run threads (SharedArrayBuffer).
"""

from __future__ import annotations

import gzip
import hashlib
import json
import logging
import mimetypes
import os
import shutil
import tempfile
import threading
import time
from pathlib import Path

from starlette.requests import Request

from contract.files import write_atomic
from serving import web_runtime

WEB = Path(__file__).parent / "web"
LOG = logging.getLogger("latentforge.serve")
RETRY_S = 60.0  # offline, a request for onnxruntime-web tries to fetch it at most this often
PAGE_FILES = ("playground.js", "feeds.js", "sampler.js", "sha256.js", "playground.css")
CSP = (
    "default-src 'self'; script-src 'self' 'wasm-unsafe-eval'; worker-src 'self' blob:; "
    "connect-src 'self'; img-src 'self' data: blob:; style-src 'self'; object-src 'none'; "
    "base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)
HEADERS = {
    "Content-Security-Policy": CSP,
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cross-Origin-Embedder-Policy": "require-corp",
    "Cross-Origin-Resource-Policy": "same-origin",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}
TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".mjs": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".json": "application/json",
    ".wasm": "application/wasm",
    ".onnx": "application/octet-stream",
}
COMPRESSIBLE = (".html", ".js", ".mjs", ".css", ".json", ".wasm", ".onnx")


def content_type(name: str) -> str:
    suffix = Path(name).suffix
    return TYPES.get(suffix) or mimetypes.guess_type(name)[0] or "application/octet-stream"


def page_files(fetch: bool = True) -> dict[str, Path]:
    """The page and its runtime, public even on a server with a token: {URL path: file}."""
    files = own_page_files()
    files.update({f"web/ort/{name}": path for name, path in web_runtime.runtime_files(fetch=fetch).items()})
    return files


def own_page_files() -> dict[str, Path]:
    """The page's own files, without onnxruntime-web."""
    return {"index.html": WEB / "index.html", **{f"web/{name}": WEB / name for name in PAGE_FILES}}


def model_graphs(card: dict) -> list[str]:
    """The ONNX files the page runs: the generator's, and the encoder's when the model has one."""
    return [card["graphs"][stem]["file"] for stem in ("generator", "encoder") if stem in card["graphs"]]


def model_files(runtime) -> dict[str, Path | bytes]:
    """The served model as the page fetches it: {URL path: file or bytes}."""
    from serving.runtime import export_file

    card = runtime.card
    files: dict[str, Path | bytes] = {"model/model_card.json": json.dumps(card, indent=1, sort_keys=True).encode()}
    for name in model_graphs(card):
        if name == card["graphs"]["generator"]["file"] and runtime.onnx_path is not None:
            files[f"model/{name}"] = runtime.onnx_path  # a registered model's copy (model.onnx) is this file
        else:
            files[f"model/{name}"] = export_file(runtime.source, runtime.onnx_path, card, name)
    return files


class Compressed:
    """gzip of the files served, made once per file (and version of it) and kept in memory."""

    def __init__(self):
        self._cache: dict[tuple, bytes] = {}
        self._lock = threading.Lock()
        self._making: dict[str, threading.Lock] = {}  # per file: concurrent first requests gzip it once

    def get(self, key: str, source: Path | bytes) -> bytes:
        if isinstance(source, Path):
            status = source.stat()
            stamp: tuple = (key, status.st_mtime_ns, status.st_size)
        else:
            stamp = (key, hashlib.sha256(source).hexdigest())
        with self._lock:
            found = self._cache.get(stamp)
            making = self._making.setdefault(key, threading.Lock())
        if found is not None:
            return found
        with making:
            with self._lock:
                found = self._cache.get(stamp)
            if found is None:
                data = source.read_bytes() if isinstance(source, Path) else source
                found = gzip.compress(data, compresslevel=6, mtime=0)
                with self._lock:
                    self._cache = {k: v for k, v in self._cache.items() if k[0] != key}
                    self._cache[stamp] = found
        return found


class Site:
    """What a server's playground routes answer: the page's files, and the current model's (kept
    per loaded model, so a reload serves the new one)."""

    def __init__(self, holder):
        self.holder = holder
        self.compressed = Compressed()
        self._served: list = [None, {}]  # the runtime whose model_files are kept, and those files
        self._fetching = threading.Lock()
        self._fetched_at = -RETRY_S  # when the last fetch on request ran (a failed one is retried after RETRY_S)
        self._models = threading.Lock()
        self._load_page(fetch=False)  # no download at start-up: bin/setup fetched it, or the first use does

    def _load_page(self, fetch: bool) -> None:
        try:
            self.page, self.problem = page_files(fetch=fetch), ""
        except Exception as error:  # offline with no cached runtime: the page says so, the API still serves
            self.page = own_page_files()
            # the cause (paths, the registry's answer) goes to the server's log, not to clients
            self.problem = ": the playground's onnxruntime-web is missing (the server's log says why)"
            LOG.warning("playground: onnxruntime-web is missing: %s", error)

    def page_file(self, key: str) -> Path | None:
        """A file of the page; onnxruntime-web is fetched on its first request when bin/setup did not."""
        if key not in self.page and self.problem and key.removeprefix("web/ort/") in web_runtime.FILES:
            with self._fetching:  # one fetch at a time; offline, one try per RETRY_S, not one per request
                if self.problem and time.monotonic() - self._fetched_at >= RETRY_S:
                    self._fetched_at = time.monotonic()
                    self._load_page(fetch=True)
        return self.page.get(key)

    def model_file(self, key: str) -> Path | bytes | None:
        runtime = self.holder.current()
        with self._models:  # the routes run in a thread pool: one refresh per model, not one per request
            if self._served[0] is not runtime:  # the first request, or a reload swapped the model
                self._served[:] = [runtime, model_files(runtime)]
            files = self._served[1]
        return files.get(key)

    def response(self, request, key: str, source: Path | bytes | None):
        from starlette.responses import JSONResponse, Response

        if source is None:
            problem = self.problem if key.startswith("web/") else ""
            return JSONResponse({"error": f"/{key} not found{problem}"}, status_code=404, headers=HEADERS)
        headers = {**HEADERS, "Cache-Control": "no-cache", "Vary": "Accept-Encoding"}
        if key.endswith(COMPRESSIBLE) and "gzip" in request.headers.get("accept-encoding", ""):
            headers["Content-Encoding"] = "gzip"
            data = self.compressed.get(key, source)
        else:
            data = source.read_bytes() if isinstance(source, Path) else source
        return Response(data, media_type=content_type(key), headers=headers)


def add_routes(app, holder) -> None:
    """``GET /`` (the page), ``GET /web/...`` (its scripts and onnxruntime-web) and
    ``GET /model/...`` (the served model's card and graphs; behind the token unless the server
    makes them public: ``public_paths``). Only the files listed are answered: any other path,
    ``..`` included, is a 404. Plain ``def`` routes: they read, gzip and may fetch files, which
    FastAPI runs in its thread pool, off the event loop the image routes share."""
    site = Site(holder)

    @app.get("/", include_in_schema=False)
    def index(request: Request):
        return site.response(request, "index.html", site.page["index.html"])

    @app.get("/web/{name:path}", include_in_schema=False)
    def web(request: Request, name: str):
        return site.response(request, f"web/{name}", site.page_file(f"web/{name}"))

    @app.get("/model/{name:path}", include_in_schema=False)
    def model(request: Request, name: str):
        return site.response(request, f"model/{name}", site.model_file(f"model/{name}"))


def public_paths(path: str, public_model: bool) -> bool:
    """Whether a request for ``path`` is answered without the server's token: the page and its
    runtime always, the model's files only with ``public_model``."""
    return path == "/" or path.startswith("/web/") or (public_model and path.startswith("/model/"))


HOSTING_NOTE = """# Hosting this playground

Every file here is static: serve the folder with any static file server, e.g.

    python -m http.server 8000 --bind 127.0.0.1 --directory {folder}

and open http://127.0.0.1:8000/. The model runs in the page (onnxruntime-web, WebAssembly); the
server only sends files.

Threads: onnxruntime-web runs {threads} when the page is cross-origin isolated, which needs two
response headers on every file:

    Cross-Origin-Opener-Policy: same-origin
    Cross-Origin-Embedder-Policy: require-corp

`_headers` sets them (with the Content-Security-Policy latentforge serve sends) on hosts that read
that file (Netlify, Cloudflare Pages). `python -m http.server` cannot send headers; there the page
runs on one thread, with the same images. Files: {count}, {size:.1f} MB in all.
"""


def write_site(runtime, out: Path) -> dict:
    """Write the playground for ``runtime``'s model into ``out`` (a new or empty folder) as a
    static site; returns {"files": n, "bytes": total}. The files are written into a temporary
    folder beside ``out`` and moved into place at the end: a failure leaves nothing behind.

    Raises:
        ValueError: ``out`` exists and is not an empty folder.
        contract.npm.FetchError: onnxruntime-web is not cached and cannot be fetched.
    """
    out = Path(out)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise ValueError(f"--out {out} exists and is not an empty folder; pass a new folder")
    out.parent.mkdir(parents=True, exist_ok=True)
    files = {**page_files(fetch=True), **model_files(runtime)}
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}-", dir=out.parent))
    try:
        for key, source in files.items():
            target = staging / key
            target.parent.mkdir(parents=True, exist_ok=True)
            if isinstance(source, Path):
                shutil.copyfile(source, target)
            else:
                target.write_bytes(source)
        total = sum(p.stat().st_size for p in staging.rglob("*") if p.is_file())
        note = HOSTING_NOTE.format(folder=out, threads="several threads", count=len(files), size=total / 1e6)
        write_atomic(staging / "HOSTING.md", note.encode())
        rules = "\n".join(f"  {name}: {value}" for name, value in HEADERS.items())
        write_atomic(staging / "_headers", f"/*\n{rules}\n".encode())
        if out.exists():
            out.rmdir()
        os.replace(staging, out)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return {"files": len(files), "bytes": total}
