"""Benchmark: the browser playground's generator in headless Chromium beside native onnxruntime.

For each registered generator (default: the default DCGAN's and ``stylegan-fashion``'s champions)
the benchmark starts ``latentforge serve`` on loopback (gzip on its static files, COOP/COEP, so
the page is cross-origin isolated and onnxruntime-web may use WASM threads) and drives Debian's
Chromium, headless, with Playwright for Python:

- **First load**: a fresh browser context (empty cache) opens the page and waits for its first
  drawing; the server has answered each file once before (it gzips a file on its first request
  and keeps it), as a server's later visitors find it. Bytes received are Chrome's
  ``Network.loadingFinished`` ``encodedDataLength`` of every request (response headers and
  compressed bodies, as the DevTools protocol counts them); decoded bytes are the bodies
  (``Network.dataReceived`` ``dataLength``). A request answered from Chrome's cache (the
  threads' worker loads the runtime's loader the page already loaded) is counted with what it
  received, nothing; a failed or redirected request stops the benchmark. The time to the first
  drawing is the page's own clock (``performance.now()`` since navigation started).
- **session.run**: for 1 and 2 threads (the page's ``?threads=N``; WASM SIMD), the page's own
  ``InferenceSession`` and native onnxruntime (``GeneratorRuntime.load(threads=N)``, as
  ``latentforge generate`` runs it, in this process, which never imports TensorFlow) run the
  same ONNX bytes (fetched from the server) on the same inputs (the card's defaults for seed 0,
  made by the page's ``feeds.js`` and by the runtime; their outputs are compared) at batch 1 and
  16, after the page has run and drawn for ``--warm-up-seconds`` (V8 runs WebAssembly from its
  baseline compiler first and optimizes hot functions in the background). Both use their
  runtime's default thread-pool settings. They take turns in ``--rounds`` rounds of ``--block``
  timed calls, each block after a pause and two untimed calls, so a slow spell of the shared
  machine hits both; the median over all rounds. In the page a call is ``await
  session.run(feeds)`` timed with ``performance.now()``.
- **The interactive loop**: the page's own ``render()`` for a new seed each frame (latents from
  the portable sampler, ``session.run``, 8-bit conversion, the grid, ``putImageData``), one per
  ``requestAnimationFrame``, at 1 image and at the page's default 4x4 grid, after a warm-up:
  the median work per frame and the frame rate that work allows (1000 / median ms; the browser's
  paint excluded), and the frames the page presented per second, beside the rate of an idle
  ``requestAnimationFrame`` loop in the same page (the display's refresh, which caps it).
- **A screenshot** of the page for the README (``--screenshot``, by default when the record goes
  to its default path: the last model, mixing mode when it has styles, its timing line hidden).

    .venv/bin/python bench/browser.py [--models models:/fashion_mnist-dcgan@champion,...]
        [--screenshot docs/playground.png]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench import record  # noqa: E402  (after the path insert)
from bench.record import column, presented, series, times  # noqa: E402
from bench.serving import free_port, wait_ready  # noqa: E402

ROUNDS = 5  # defaults of --rounds and --block: 5 x 10 = 50 timed calls per runtime, batch and thread count
BLOCK = 10
WARM_UP_CALLS = 10
WARM_UP_S = 5.0  # per page, before any timing: until V8 has optimized the hot WebAssembly (warm_up)
SETTLE_S = 0.05
BATCHES = (1, 16)
THREADS = (1, 2)
LOOP_VIEWS = (1, 4)  # the page's grid select: 1 image, 4x4 (the page's default)
DEFAULT_MODELS = "models:/fashion_mnist-dcgan@champion,models:/fashion_mnist-stylegan@champion"
TARGETS = {"ratio_to_native_at_batch_1": 3.0, "frames_per_s": 60.0, "first_load_wire_mb": 6.0}
RATIO_TARGET = ("stylegan", "fashion_mnist")  # whose page-to-native ratio has a target (the others' are shown)
DISPLAY_SHARE = 0.98  # the loop keeps up with the display when it presents this share of an idle loop's frames

# The page's session.run, timed in the page: inputs as feeds.js makes them for seed 0
PAGE_RUN = """async ({batch, calls, warm}) => {
  const lf = window.latentforge;
  await lf.ready;
  const card = lf.state.card;
  const feed = lf.feeds.defaultFeed(lf.feeds.inputsOf(card), batch, 0);
  const tensors = {};
  for (const [name, v] of Object.entries(feed)) {
    tensors[name] = new lf.ort.Tensor(v.data instanceof Int32Array ? "int32" : "float32", v.data, v.dims);
  }
  const output = card.graphs.generator.outputs[0].name;
  const session = lf.state.generator;
  let result;
  for (let i = 0; i < warm; i++) result = await session.run(tensors, [output]);
  const ms = [];
  for (let i = 0; i < calls; i++) {
    const started = performance.now();
    result = await session.run(tensors, [output]);
    ms.push(performance.now() - started);
  }
  return {ms, output: Array.from(result[output].data), threads: lf.ort.env.wasm.numThreads};
}"""

# Warm-up: session.run at every batch and the page's drawing, in turn, for a while
PAGE_WARM = """async ({seconds}) => {
  const lf = window.latentforge;
  await lf.ready;
  const card = lf.state.card;
  const output = card.graphs.generator.outputs[0].name;
  const feeds = [1, 16].map((batch) => {
    const tensors = {};
    for (const [name, v] of Object.entries(lf.feeds.defaultFeed(lf.feeds.inputsOf(card), batch, 0))) {
      tensors[name] = new lf.ort.Tensor(v.data instanceof Int32Array ? "int32" : "float32", v.data, v.dims);
    }
    return tensors;
  });
  const end = performance.now() + seconds * 1000;
  while (performance.now() < end) {
    for (const tensors of feeds) await lf.state.generator.run(tensors, [output]);
    await lf.render();
  }
  return true;
}"""

# The page's interactive loop: one frame per requestAnimationFrame, each a new seed drawn by the
# page's own render(); every frame is checked (its seed, its image count, no message shown)
PAGE_LOOP = """async ({grid, frames, first}) => {
  const lf = window.latentforge;
  await lf.ready;
  document.querySelector("input[name=mode][value=samples]").checked = true;
  document.getElementById("grid").value = String(grid);
  const seedBox = document.getElementById("seed");
  const ms = [];
  let wrong = "";
  let started = null;
  let ended = null;
  await new Promise((resolve) => {
    const frame = async (now) => {
      started ??= now;
      const seed = first + ms.length;
      seedBox.value = String(seed);
      const t = performance.now();
      await lf.render();
      ms.push(performance.now() - t);
      if (lf.last.seed !== seed || lf.last.n !== grid * grid || !document.getElementById("message").hidden) {
        const shown = document.getElementById("message").textContent;
        wrong = `frame ${ms.length}: seed ${lf.last.seed}, ${lf.last.n} images, ${shown}`;
      }
      if (ms.length < frames && !wrong) requestAnimationFrame(frame);
      else requestAnimationFrame((now) => resolve((ended = now)));  // the frame after the last drawing
    };
    requestAnimationFrame(frame);
  });
  return {ms, seconds: (ended - started) / 1000, wrong};  // as many frame intervals as drawings
}"""

# An idle requestAnimationFrame loop: the display's refresh, which caps the interactive loop
PAGE_IDLE_FRAMES = """async ({frames}) => {
  const stamps = [];
  await new Promise((resolve) => {
    const frame = (now) => (stamps.push(now) <= frames ? requestAnimationFrame(frame) : resolve());
    requestAnimationFrame(frame);
  });
  return frames / ((stamps[frames] - stamps[0]) / 1000);  // frames intervals between frames + 1 callbacks
}"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default=DEFAULT_MODELS, help="comma-separated model URIs (registry or folders)")
    parser.add_argument(
        "--screenshot",
        default=None,
        help="PNG of the page; empty = none (default: docs/playground.png when --results is its default, else none)",
    )
    parser.add_argument("--rounds", type=int, default=ROUNDS, help="turns of the page and native onnxruntime")
    parser.add_argument(
        "--warm-up-seconds", type=float, default=WARM_UP_S, help="the page runs and draws this long before timing"
    )
    parser.add_argument("--block", type=int, default=BLOCK, help="timed calls per turn")
    parser.add_argument("--chromium", default=shutil.which("chromium") or shutil.which("chromium-browser") or "")
    record.add_arguments(parser, "browser")
    args = parser.parse_args()
    if args.screenshot is None:  # a smoke run (--results elsewhere or '') leaves the README's picture alone
        default_results = str(record.RESULTS / "browser.json")
        args.screenshot = str(ROOT / "docs" / "playground.png") if args.results == default_results else ""
    if not args.chromium:
        raise SystemExit("browser: Debian's chromium is missing; run bin/setup (it installs it)")
    from pipeline import quiet

    quiet.setup()
    from importlib.metadata import version

    from playwright.sync_api import sync_playwright

    from serving import web_runtime
    from serving.runtime import GeneratorRuntime

    web_runtime.runtime_files()  # fetched now if bin/setup did not, not inside a timed first load
    uris = [m.strip() for m in args.models.split(",") if m.strip()]
    rows, loads, loops, files, subjects, versions = [], [], [], [], [], {}
    with sync_playwright() as driver:
        browser = driver.chromium.launch(executable_path=args.chromium, args=["--no-sandbox"])
        versions["chromium"] = browser.version
        for index, uri in enumerate(uris):
            card = GeneratorRuntime.load(uri).card
            name = label(card)
            subjects.append({"uri": uri, "name": name, **{k: card[k] for k in SUBJECT_KEYS if k in card}})
            with Server(uri) as server:
                server.prime(card)
                load, per_file = first_load(browser, server.url, name)
                loads.append(load)
                files += per_file
                for threads in THREADS:
                    context, page = open_page(browser, server.url, threads)
                    try:
                        warm_up(page, args.warm_up_seconds)
                        rows += compare(page, uri, card, server.onnx(card), threads, args.rounds, args.block)
                        loops += interactive_loop(page, name, threads, args.rounds * args.block)
                    finally:
                        context.close()
                if args.screenshot and index == len(uris) - 1:
                    screenshot(browser, server.url, Path(args.screenshot))
        browser.close()
    if "tensorflow" in sys.modules:
        raise SystemExit("browser: TensorFlow got imported in the process that runs native onnxruntime")
    import onnxruntime

    versions["onnxruntime"] = onnxruntime.__version__
    versions["onnxruntime-web"] = _ort_web_version()
    chromium = versions.pop("chromium")
    summary = targets(rows, loops, loads)
    print(json.dumps(summary, indent=1))
    record.write(
        "browser",
        args.results,
        parameters={
            "models": uris,
            "rounds": args.rounds,
            "block": args.block,
            "warm_up_calls": WARM_UP_CALLS,
            "warm_up_seconds": args.warm_up_seconds,
            "batches": list(BATCHES),
            "threads": list(THREADS),
            "loop_views": [v * v for v in LOOP_VIEWS],
            "screenshot": os.path.relpath(args.screenshot, ROOT) if args.screenshot else "",
        },
        subject={
            "models": subjects,
            "chromium": chromium,
            "onnxruntime_web": versions.pop("onnxruntime-web"),
            "playwright": version("playwright"),
        },
        rows=rows,
        summary=summary,
        tables={"first_load": loads, "first_load_files": files, "loop": loops},
        versions=versions,
        note=f"Chromium {chromium} headless (Debian's) driven by Playwright. This CPU reports "
        + ("AVX-512F" if _has_avx512() else "no AVX-512F")
        + " to native onnxruntime; the page's WebAssembly has 128-bit SIMD.",
        present=present,
    )


SUBJECT_KEYS = ("model", "dataset", "latent_dim", "output_shape", "train_run_id", "export_run_id", "sampler")


def label(card: dict) -> str:
    """A model's name in the tables: its registered name's form (``fashion_mnist-stylegan``), or its kind."""
    return f"{card['dataset']}-{card['model']}" if card.get("dataset") else card["model"]


class Server:
    """``latentforge serve --model URI`` on a free loopback port, for the ``with`` block."""

    def __init__(self, uri: str):
        self.uri = uri
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> Server:
        command = [sys.executable, "-m", "pipeline.cli", "serve", "--model", self.uri, "--port", str(self.port)]
        env = {**os.environ, "PYTHONPATH": str(ROOT), "no_proxy": "127.0.0.1,localhost"}
        self.folder = Path(tempfile.mkdtemp(prefix="browser-bench-"))
        self.process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        try:
            wait_ready(self.port, "/readyz", self.process)
        except BaseException:
            self.__exit__()
            raise
        return self

    def get(self, path: str) -> bytes:
        import urllib.request

        request = urllib.request.Request(f"{self.url}/{path}", headers={"Accept-Encoding": "gzip"})
        with urllib.request.urlopen(request) as response:
            return response.read()

    def prime(self, card: dict) -> None:
        """Ask for every file of the page once: the server gzips a file on its first request."""
        from serving import playground

        for path in [*playground.own_page_files(), *(f"web/ort/{name}" for name in playground.web_runtime.FILES)]:
            self.get("" if path == "index.html" else path)
        for name in ["model_card.json", *playground.model_graphs(card)]:
            self.get(f"model/{name}")

    def onnx(self, card: dict) -> Path:
        """The generator's ONNX as the page gets it, written to a temporary file for native onnxruntime."""
        import urllib.request

        name = card["graphs"]["generator"]["file"]
        if not (self.folder / name).is_file():
            with urllib.request.urlopen(f"{self.url}/model/{name}") as response:  # no gzip asked: the bytes
                (self.folder / name).write_bytes(response.read())
            (self.folder / "model_card.json").write_text(json.dumps(card))
        return self.folder / name

    def __exit__(self, *exc) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        shutil.rmtree(self.folder, ignore_errors=True)


def open_page(browser, url: str, threads: int = 0):
    """A page of the playground in a fresh context, once its model has loaded and drawn."""
    context = browser.new_context(viewport={"width": 1200, "height": 900})
    page = context.new_page()
    errors: list[str] = []
    page.on("console", lambda m: m.type == "error" and errors.append(m.text))
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(url + "/" + (f"?threads={threads}" if threads else ""))
    page.wait_for_function("() => window.latentforge !== undefined", timeout=60_000)
    if page.evaluate("window.latentforge.ready") is not True:
        raise SystemExit(f"browser: the page did not start: {page.inner_text('#message')}")
    page.evaluate("window.latentforge.idle().then(() => true)")
    if errors:
        raise SystemExit(f"browser: console errors on {url}: {errors}")
    return context, page


def first_load(browser, url: str, model: str) -> tuple[dict, list[dict]]:
    """A first visit (empty cache) until the first drawing: bytes received and decoded, per file."""
    context = browser.new_context()
    page = context.new_page()
    cdp = context.new_cdp_session(page)
    cdp.send("Network.enable")
    urls: dict[str, str] = {}
    received: dict[str, int] = {}
    decoded: dict[str, int] = {}
    cached: set[str] = set()
    problems: list[str] = []

    def sent(event) -> None:
        if event.get("redirectResponse"):
            problems.append(f"{event['request']['url']} was redirected")
        urls[event["requestId"]] = event["request"]["url"]

    def data(event) -> None:
        decoded[event["requestId"]] = decoded.get(event["requestId"], 0) + event["dataLength"]

    answered: dict[str, int] = {}  # status codes of responses that came from the network
    cdp.on("Network.requestWillBeSent", sent)
    cdp.on("Network.responseReceivedExtraInfo", lambda e: answered.__setitem__(e["requestId"], e.get("statusCode", 0)))
    cdp.on("Network.requestServedFromCache", lambda e: cached.add(e["requestId"]))
    cdp.on("Network.dataReceived", data)
    cdp.on("Network.loadingFinished", lambda e: received.__setitem__(e["requestId"], e["encodedDataLength"]))
    cdp.on("Network.loadingFailed", lambda e: problems.append(f"{urls.get(e['requestId'])}: {e.get('errorText')}"))
    page.goto(url + "/")
    page.wait_for_function("() => window.latentforge !== undefined", timeout=60_000)
    if page.evaluate("window.latentforge.ready") is not True:
        raise SystemExit(f"browser: the page did not start: {page.inner_text('#message')}")
    threads = page.evaluate("window.latentforge.ort.env.wasm.numThreads")
    first_drawing_ms = page.evaluate("window.latentforge.idle().then((last) => last.at)")
    page.wait_for_timeout(500)  # the last loadingFinished events
    context.close()
    outside = [u for u in urls.values() if urlsplit(u).hostname != "127.0.0.1" and not u.startswith(("data:", "blob:"))]
    if outside:
        raise SystemExit(f"browser: the page requested outside 127.0.0.1: {outside}")
    # A request a worker made (the threads' worker loads the runtime's loader again) finishes in the
    # worker, which this page's DevTools session does not follow. Chrome saw its response arrive
    # from the network (its headers), and the server sends every file alike (no validators, so no
    # 304): it counts as the page's own request for that URL received.
    twins = {urls[r]: r for r in urls if r in received}
    in_worker = {
        r for r in urls if r not in received and r not in cached and answered.get(r) == 200 and urls[r] in twins
    }
    for request in in_worker:
        received[request] = received[twins[urls[request]]]
        decoded[request] = decoded.get(twins[urls[request]], 0)
    unfinished = [urls[r] for r in urls if r not in received and r not in cached]
    if problems or unfinished:
        raise SystemExit(f"browser: the first load did not load cleanly: {problems + unfinished}")
    per_file: dict[str, dict] = {}
    for request, address in urls.items():
        path = urlsplit(address).path or "/"
        entry = per_file.setdefault(
            path,
            {
                "model": model,
                "path": path,
                "requests": 0,
                "from_cache": 0,
                "in_worker": 0,
                "wire_bytes": 0,
                "raw_bytes": 0,
            },
        )
        entry["requests"] += 1
        entry["from_cache"] += request in cached
        entry["in_worker"] += request in in_worker
        entry["wire_bytes"] += received.get(request, 0)
        entry["raw_bytes"] += decoded.get(request, 0)
    total_wire = sum(e["wire_bytes"] for e in per_file.values())
    total_raw = sum(e["raw_bytes"] for e in per_file.values())
    load = {
        "model": model,
        "threads": threads,
        "requests": len(urls),
        "from_cache": len(cached),
        "in_worker": len(in_worker),
        "wire_bytes": total_wire,
        "raw_bytes": total_raw,
        "wire_mb": total_wire / 1e6,
        "raw_mb": total_raw / 1e6,
        "seconds_to_first_drawing": first_drawing_ms / 1000,
    }
    print(f"first load {model}: {total_wire / 1e6:.2f} MB received, {total_raw / 1e6:.2f} MB decoded", flush=True)
    return load, sorted(per_file.values(), key=lambda e: -e["wire_bytes"])


def warm_up(page, seconds: float) -> None:
    """Run the page's session and drawing for ``seconds``: V8 first runs WebAssembly compiled by
    its baseline tier (Liftoff) and recompiles the hot functions with TurboFan in the background,
    so the first seconds after a page opens are slower than the page's steady state."""
    page.evaluate(PAGE_WARM, {"seconds": seconds})


def compare(page, uri: str, card: dict, onnx: Path, threads: int, rounds: int, block: int) -> list[dict]:
    """session.run in the page and in native onnxruntime at ``threads``, interleaved: one row per batch."""
    import numpy as np

    from serving.runtime import GeneratorRuntime

    native = GeneratorRuntime.load(str(onnx), threads=threads)
    rows = []
    if not page.evaluate("crossOriginIsolated"):
        raise SystemExit("browser: the page is not cross-origin isolated; WASM threads need COOP/COEP")
    for batch in BATCHES:
        feed = native.feed(n=batch, seed=0)
        times_ms: dict[str, list[float]] = {"page": [], "native": []}
        page_output = None
        for _ in range(WARM_UP_CALLS):
            native.run_feed(feed)
        for round_ in range(rounds):
            time.sleep(SETTLE_S)
            answer = page.evaluate(PAGE_RUN, {"batch": batch, "calls": block, "warm": 2 if round_ else WARM_UP_CALLS})
            if answer["threads"] != threads:
                raise SystemExit(f"browser: the page runs {answer['threads']} threads, not {threads}")
            times_ms["page"] += answer["ms"]
            page_output = answer["output"]
            time.sleep(SETTLE_S)
            native.run_feed(feed)
            native.run_feed(feed)
            for _ in range(block):
                started = time.perf_counter()
                want = native.run_feed(feed)
                times_ms["native"].append((time.perf_counter() - started) * 1000)
        difference = float(np.abs(np.asarray(page_output, np.float32) - want.reshape(-1)).max())
        if difference > 1e-3:
            raise SystemExit(f"browser: the page's output differs from native onnxruntime's by {difference}")
        page_ms, native_ms = statistics.median(times_ms["page"]), statistics.median(times_ms["native"])
        row = {
            "model": label(card),
            "kind": card["model"],
            "dataset": card.get("dataset", ""),
            "uri": uri,
            "threads": threads,
            "batch": batch,
            "calls": len(times_ms["page"]),
            "page_ms": page_ms,
            "native_ms": native_ms,
            "page_ms_per_image": page_ms / batch,
            "native_ms_per_image": native_ms / batch,
            "ratio_to_native": page_ms / native_ms,
            "page_q1_ms": statistics.quantiles(times_ms["page"], n=4)[0],
            "page_q3_ms": statistics.quantiles(times_ms["page"], n=4)[2],
            "native_q1_ms": statistics.quantiles(times_ms["native"], n=4)[0],
            "native_q3_ms": statistics.quantiles(times_ms["native"], n=4)[2],
            "max_abs_difference": difference,
        }
        print(
            f"{label(card)} threads {threads} batch {batch}: page {page_ms:.3f} ms, native {native_ms:.3f} ms, "
            f"{row['ratio_to_native']:.2f}x",
            flush=True,
        )
        rows.append(row)
    return rows


def interactive_loop(page, model: str, threads: int, frames: int) -> list[dict]:
    """The page's render() (new seed, run, draw), one per animation frame, per view: the median work
    per frame, the rate it allows, and the frames presented per second beside an idle loop's."""
    rows = []
    for side in LOOP_VIEWS:
        page.evaluate(PAGE_LOOP, {"grid": side, "frames": WARM_UP_CALLS, "first": 10_000})  # untimed
        display = page.evaluate(PAGE_IDLE_FRAMES, {"frames": frames})
        answer = page.evaluate(PAGE_LOOP, {"grid": side, "frames": frames, "first": 1000})
        if answer["wrong"]:
            raise SystemExit(f"browser: the page drew the wrong thing: {answer['wrong']}")
        median = statistics.median(answer["ms"])
        row = {
            "model": model,
            "threads": threads,
            "images": side * side,
            "frames": len(answer["ms"]),
            "median_ms": median,
            "frames_per_s": 1000 / median,
            "presented_per_s": len(answer["ms"]) / answer["seconds"],
            "display_per_s": display,
        }
        rows.append(row)
        print(
            f"{model} threads {threads}, {side * side} image(s) per frame: {median:.2f} ms of work, "
            f"{row['presented_per_s']:.0f} frames/s presented (display {display:.0f})",
            flush=True,
        )
    return rows


def screenshot(browser, url: str, path: Path) -> None:
    """The page as a visitor sees it: style mixing when the model has styles, else a 4x4 grid; the
    timing line hidden (a number measured on the fly is no picture for the README)."""
    context, page = open_page(browser, url)
    try:
        if page.is_visible("input[name=mode][value=mixing]"):
            page.check("input[name=mode][value=mixing]")
        page.evaluate("window.latentforge.render().then(() => window.latentforge.idle()).then(() => true)")
        page.evaluate("document.getElementById('timing').style.visibility = 'hidden'")
        path.parent.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(path), full_page=True)
    finally:
        context.close()
    print(f"screenshot: {path}", flush=True)


def targets(rows: list[dict], loops: list[dict], loads: list[dict]) -> dict:
    """The issue's targets, each with the number measured and whether it is met. The loop meets
    60 frames/s when its work allows 60 and it presented every frame the display offered (a
    display of 60 Hz caps what a page can present)."""
    summary: dict = {}
    for row in rows:
        if row["batch"] == 1 and (row["kind"], row["dataset"]) == RATIO_TARGET:
            key = f"{row['model']}_threads_{row['threads']}_batch_1_page_over_native"
            summary[key] = {"value": row["ratio_to_native"], "target": TARGETS["ratio_to_native_at_batch_1"]}
            summary[key]["met"] = row["ratio_to_native"] <= TARGETS["ratio_to_native_at_batch_1"]
    for loop in loops:
        key = f"{loop['model']}_threads_{loop['threads']}_{loop['images']}_images_frames_per_s"
        kept_up = loop["presented_per_s"] >= DISPLAY_SHARE * loop["display_per_s"]
        summary[key] = {
            "value": loop["frames_per_s"],
            "presented_per_s": loop["presented_per_s"],
            "display_per_s": loop["display_per_s"],
            "target": TARGETS["frames_per_s"],
            "met": loop["frames_per_s"] >= TARGETS["frames_per_s"] and kept_up,
        }
    for load in loads:
        key = f"{load['model']}_first_load_wire_mb"
        summary[key] = {"value": load["wire_mb"], "target": TARGETS["first_load_wire_mb"]}
        summary[key]["met"] = load["wire_mb"] <= TARGETS["first_load_wire_mb"]
    return summary


def _has_avx512() -> bool:
    try:
        return " avx512f" in Path("/proc/cpuinfo").read_text()
    except OSError:
        return False


def _ort_web_version() -> str:
    from serving import web_runtime

    return web_runtime.PACKAGE.version


# ---- how docs/results.md shows the record (bench/report.py renders it) --------------------------
def _browser_tables(record: dict):
    runs = [
        column("model", "model", "text"),
        column("threads", "threads"),
        column("batch", "batch"),
        column("page_ms", "page ms", "fixed:3"),
        column("native_ms", "native ms", "fixed:3"),
        column("ratio_to_native", "page ÷ native", "fixed:2"),
        column("page_ms_per_image", "page ms/image", "fixed:3"),
        column("max_abs_difference", "largest difference", "plain"),
    ]
    loop = [
        column("model", "model", "text"),
        column("threads", "threads"),
        column("images", "images per frame"),
        column("median_ms", "work per frame, ms (median)", "fixed:2"),
        column("frames_per_s", "frames/s the work allows", "fixed:0"),
        column("presented_per_s", "frames/s presented", "fixed:1"),
        column("display_per_s", "display frames/s (idle loop)", "fixed:1"),
    ]
    loads = [
        column("model", "model", "text"),
        column("threads", "threads"),
        column("requests", "requests"),
        column("from_cache", "from Chrome's cache"),
        column("wire_mb", "MB received", "fixed:2"),
        column("raw_mb", "MB decoded", "fixed:2"),
        column("seconds_to_first_drawing", "s to first drawing", "fixed:2"),
    ]
    tables = record["tables"]
    calls = sorted({r["calls"] for r in record["rows"]})
    return [
        (
            "`session.run` in the page and in native onnxruntime, same ONNX, same inputs (median of "
            + ", ".join(str(c) for c in calls)
            + " calls)",
            runs,
            record["rows"],
        ),
        (
            "The interactive loop: the page's render() with a new seed per animation frame",
            loop,
            tables.get("loop", []),
        ),
        ("First load (empty cache) until the first drawing", loads, tables.get("first_load", [])),
    ]


def _browser_reading(record: dict) -> list[str]:
    def threads(n: int) -> str:
        return f"{n} thread{'s' * (n > 1)}"

    lines = []
    batch_1 = [r for r in record["rows"] if r["batch"] == 1]
    if batch_1:
        lines.append(
            "At batch 1 the page's `session.run` takes "
            + series([f"{times(r['ratio_to_native'])} ({r['model']}, {threads(r['threads'])})" for r in batch_1])
            + " the time of native onnxruntime on the same ONNX."
        )
    loops = record["tables"].get("loop", [])
    if loops:
        slowest = min(loops, key=lambda r: r["frames_per_s"])
        lines.append(
            f"The slowest interactive loop ({slowest['model']}, {slowest['images']} images, "
            f"{threads(slowest['threads'])}) does {slowest['frames_per_s']:.0f} frames' work per second and "
            f"presented {slowest['presented_per_s']:.1f} frames/s where the display offered "
            f"{slowest['display_per_s']:.1f}."
        )
    for load in record["tables"].get("first_load", []):
        lines.append(
            f"A first visit to {load['model']}'s page receives {load['wire_mb']:.2f} MB "
            f"({load['raw_mb']:.2f} MB decoded) in {load['requests']} requests."
        )
    met = [k for k, v in record.get("summary", {}).items() if isinstance(v, dict) and v.get("met")]
    missed = [k for k, v in record.get("summary", {}).items() if isinstance(v, dict) and not v.get("met")]
    lines.append(
        f"Targets met: {len(met)} of {len(met) + len(missed)}" + (f"; missed: {', '.join(missed)}." if missed else ".")
    )
    return lines


def present(record: dict) -> dict:
    """How docs/results.md shows this benchmark's record (``bench/record.py``)."""
    return presented(_browser_tables(record), _browser_reading(record))


if __name__ == "__main__":
    main()
