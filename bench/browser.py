"""Benchmark: the browser playground's generator in headless Chromium beside native onnxruntime.

For each registered generator (default: the default DCGAN's and ``stylegan-fashion``'s champions)
the benchmark starts ``latentforge serve`` on loopback (gzip on its static files, COOP/COEP, so
the page is cross-origin isolated and onnxruntime-web may use WASM threads) and drives Debian's
Chromium, headless, with Playwright for Python:

- **First load**: a fresh browser context (empty cache) opens the page and waits for its first
  drawing. Bytes on the wire are Chrome's ``Network.loadingFinished`` ``encodedDataLength`` of
  every request (headers and compressed bodies, as the DevTools protocol counts them); raw bytes
  are the decoded bodies (``Network.dataReceived`` ``dataLength``).
- **session.run**: for 1 and 2 threads (the page's ``?threads=N``; WASM SIMD), the page's own
  ``InferenceSession`` and native onnxruntime (``GeneratorRuntime.load(threads=N)``, as
  ``latentforge generate`` runs it, in this process, which never imports TensorFlow) run the
  same ONNX bytes (fetched from the server) on the same inputs (the card's defaults for seed 0,
  made by the page's ``feeds.js`` and by the runtime; their outputs are compared) at batch 1 and
  16, after the page has run and drawn for ``--warm-up-seconds`` (V8 runs WebAssembly from its
  baseline compiler first and optimizes hot functions in the background). They take turns in
  ``--rounds`` (5) rounds of ``--block`` (10) timed calls, each block after a pause and two
  untimed calls, so a slow spell of the shared machine hits both; median of the 50 calls. In the
  page a call is ``await session.run(feeds)`` timed with ``performance.now()`` (5 µs
  resolution in a cross-origin isolated page).
- **The interactive loop**: the page's own ``render()`` for a new seed each frame (latents from
  the portable sampler, ``session.run``, 8-bit conversion, the grid, ``putImageData``), at 1 image
  and at the page's default 4×4 grid: median of 50 after warm-up; frames/s = 1000 / median ms.
- **A screenshot** of the page for the README (``--screenshot``, the last model, mixing mode when
  it has styles).

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
RATIO_TARGET_MODEL = "stylegan"  # the page-to-native target is stylegan-fashion's; dcgan's ratio is shown

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

# The page's interactive loop: a new seed each frame, drawn by the page's own render()
PAGE_LOOP = """async ({grid, calls, warm}) => {
  const lf = window.latentforge;
  await lf.ready;
  document.querySelector("input[name=mode][value=samples]").checked = true;
  document.getElementById("grid").value = String(grid);
  const seed = document.getElementById("seed");
  const ms = [];
  for (let i = 0; i < warm + calls; i++) {
    seed.value = String(1000 + i);
    const started = performance.now();
    await lf.render();
    if (i >= warm) ms.push(performance.now() - started);
  }
  return {ms, n: lf.last.n};
}"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default=DEFAULT_MODELS, help="comma-separated model URIs (registry or folders)")
    parser.add_argument(
        "--screenshot", default=str(ROOT / "docs" / "playground.png"), help="PNG of the page; empty = none"
    )
    parser.add_argument("--rounds", type=int, default=ROUNDS, help="turns of the page and native onnxruntime")
    parser.add_argument(
        "--warm-up-seconds", type=float, default=WARM_UP_S, help="the page runs and draws this long before timing"
    )
    parser.add_argument("--block", type=int, default=BLOCK, help="timed calls per turn")
    parser.add_argument("--chromium", default=shutil.which("chromium") or shutil.which("chromium-browser") or "")
    record.add_arguments(parser, "browser")
    args = parser.parse_args()
    if not args.chromium:
        raise SystemExit("browser: Debian's chromium is missing; run bin/setup (it installs it)")
    from playwright.sync_api import sync_playwright

    from serving.runtime import GeneratorRuntime

    uris = [m.strip() for m in args.models.split(",") if m.strip()]
    rows, loads, loops, files, subjects, versions = [], [], [], [], [], {}
    with sync_playwright() as driver:
        browser = driver.chromium.launch(executable_path=args.chromium, args=["--no-sandbox"])
        versions["chromium"] = browser.version
        for index, uri in enumerate(uris):
            card = GeneratorRuntime.load(uri).card
            subjects.append({"uri": uri, **{k: card[k] for k in SUBJECT_KEYS if k in card}})
            with Server(uri) as server:
                load, per_file = first_load(browser, server.url, card["model"])
                loads.append(load)
                files += per_file
                onnx = server.onnx(card)
                for threads in THREADS:
                    context, page = open_page(browser, server.url, threads)
                    try:
                        warm_up(page, args.warm_up_seconds)
                        rows += compare(page, uri, card, onnx, threads, args.rounds, args.block)
                        loops += interactive_loop(page, card["model"], threads, args.rounds * args.block)
                    finally:
                        context.close()
                if args.screenshot and index == len(uris) - 1:
                    screenshot(browser, server.url, card, Path(args.screenshot))
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
        subject={"models": subjects, "chromium": chromium, "onnxruntime_web": versions.pop("onnxruntime-web")},
        rows=rows,
        summary=summary,
        tables={"first_load": loads, "first_load_files": files, "loop": loops},
        versions=versions,
        note=f"Chromium {chromium} headless (Debian's) driven by Playwright; native onnxruntime on this CPU "
        + ("uses AVX-512 kernels" if _has_avx512() else "uses its widest SIMD")
        + ", the page's WASM build 128-bit SIMD.",
        present=present,
    )


SUBJECT_KEYS = ("model", "dataset", "latent_dim", "output_shape", "train_run_id", "export_run_id", "sampler")


class Server:
    """``latentforge serve --model URI`` on a free loopback port, for the ``with`` block."""

    def __init__(self, uri: str):
        self.uri = uri
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> Server:
        command = [sys.executable, "-m", "pipeline.cli", "serve", "--model", self.uri, "--port", str(self.port)]
        env = {**os.environ, "PYTHONPATH": str(ROOT), "no_proxy": "127.0.0.1,localhost"}
        self.process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        wait_ready(self.port, "/readyz", self.process)
        return self

    def onnx(self, card: dict) -> Path:
        """The generator's ONNX as the page gets it, written to a temporary file for native onnxruntime."""
        import urllib.request

        name = card["graphs"]["generator"]["file"]
        folder = Path(tempfile.mkdtemp(prefix="browser-bench-"))
        with urllib.request.urlopen(f"{self.url}/model/{name}") as response:
            (folder / name).write_bytes(response.read())
        (folder / "model_card.json").write_text(json.dumps(card))
        return folder / name

    def __exit__(self, *exc) -> None:
        self.process.terminate()
        self.process.wait(timeout=30)


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
    """Bytes of a first visit (empty cache) until the first drawing: on the wire and decoded."""
    context = browser.new_context()
    page = context.new_page()
    cdp = context.new_cdp_session(page)
    cdp.send("Network.enable")
    cdp.send("Network.setCacheDisabled", {"cacheDisabled": True})
    urls: dict[str, str] = {}
    wire: dict[str, int] = {}
    raw: dict[str, int] = {}
    cdp.on("Network.requestWillBeSent", lambda e: urls.__setitem__(e["requestId"], e["request"]["url"]))
    cdp.on(
        "Network.dataReceived", lambda e: raw.__setitem__(e["requestId"], raw.get(e["requestId"], 0) + e["dataLength"])
    )
    cdp.on("Network.loadingFinished", lambda e: wire.__setitem__(e["requestId"], e["encodedDataLength"]))
    started = time.perf_counter()
    page.goto(url + "/")
    page.wait_for_function("() => window.latentforge !== undefined", timeout=60_000)
    if page.evaluate("window.latentforge.ready") is not True:
        raise SystemExit(f"browser: the page did not start: {page.inner_text('#message')}")
    page.evaluate("window.latentforge.idle().then(() => true)")
    seconds = time.perf_counter() - started
    page.wait_for_timeout(500)  # the last loadingFinished events
    context.close()
    outside = [u for u in urls.values() if urlsplit(u).hostname != "127.0.0.1" and not u.startswith(("data:", "blob:"))]
    if outside:
        raise SystemExit(f"browser: the page requested outside 127.0.0.1: {outside}")
    per_file: dict[str, dict] = {}
    for request, address in urls.items():
        path = urlsplit(address).path or "/"
        entry = per_file.setdefault(
            path, {"model": model, "path": path, "requests": 0, "wire_bytes": 0, "raw_bytes": 0}
        )
        entry["requests"] += 1
        entry["wire_bytes"] += wire.get(request, 0)
        entry["raw_bytes"] += raw.get(request, 0)
    total_wire = sum(e["wire_bytes"] for e in per_file.values())
    total_raw = sum(e["raw_bytes"] for e in per_file.values())
    load = {
        "model": model,
        "requests": len(urls),
        "wire_bytes": total_wire,
        "raw_bytes": total_raw,
        "wire_mb": total_wire / 1e6,
        "raw_mb": total_raw / 1e6,
        "seconds_to_first_drawing": seconds,
    }
    print(f"first load {model}: {total_wire / 1e6:.2f} MB on the wire, {total_raw / 1e6:.2f} MB raw", flush=True)
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
            "model": card["model"],
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
            "max_abs_difference": difference,
        }
        print(
            f"{card['model']} threads {threads} batch {batch}: page {page_ms:.3f} ms, native {native_ms:.3f} ms, "
            f"{row['ratio_to_native']:.2f}x",
            flush=True,
        )
        rows.append(row)
    return rows


def interactive_loop(page, model: str, threads: int, frames: int) -> list[dict]:
    """The page's render() (new seed, run, draw) per view: median ms and the frames/s it sustains."""
    rows = []
    for side in LOOP_VIEWS:
        answer = page.evaluate(PAGE_LOOP, {"grid": side, "calls": frames, "warm": WARM_UP_CALLS})
        median = statistics.median(answer["ms"])
        rows.append(
            {
                "model": model,
                "threads": threads,
                "images": answer["n"],
                "frames": len(answer["ms"]),
                "median_ms": median,
                "frames_per_s": 1000 / median,
            }
        )
        print(f"{model} threads {threads}, {answer['n']} image(s) per frame: {median:.2f} ms", flush=True)
    return rows


def screenshot(browser, url: str, card: dict, path: Path) -> None:
    """The page as a visitor sees it: style mixing when the model has styles, else a 4x4 grid."""
    context, page = open_page(browser, url)
    try:
        if page.is_visible("input[name=mode][value=mixing]"):
            page.check("input[name=mode][value=mixing]")
        page.evaluate("window.latentforge.render().then(() => window.latentforge.idle()).then(() => true)")
        path.parent.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(path), full_page=True)
    finally:
        context.close()
    print(f"screenshot: {path}", flush=True)


def targets(rows: list[dict], loops: list[dict], loads: list[dict]) -> dict:
    """The issue's targets, each with the number measured and whether it is met."""
    summary: dict = {}
    for row in rows:
        if row["batch"] == 1 and row["model"] == RATIO_TARGET_MODEL:
            key = f"{row['model']}_threads_{row['threads']}_batch_1_page_over_native"
            summary[key] = {"value": row["ratio_to_native"], "target": TARGETS["ratio_to_native_at_batch_1"]}
            summary[key]["met"] = row["ratio_to_native"] <= TARGETS["ratio_to_native_at_batch_1"]
    for loop in loops:
        key = f"{loop['model']}_threads_{loop['threads']}_{loop['images']}_images_frames_per_s"
        summary[key] = {"value": loop["frames_per_s"], "target": TARGETS["frames_per_s"]}
        summary[key]["met"] = loop["frames_per_s"] >= TARGETS["frames_per_s"]
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
        column("median_ms", "run + draw ms (median)", "fixed:2"),
        column("frames_per_s", "frames/s", "fixed:0"),
    ]
    loads = [
        column("model", "model", "text"),
        column("requests", "requests"),
        column("wire_mb", "MB on the wire", "fixed:2"),
        column("raw_mb", "MB decoded", "fixed:2"),
        column("seconds_to_first_drawing", "s to first drawing", "fixed:1"),
    ]
    tables = record["tables"]
    return [
        (
            "`session.run` in the page and in native onnxruntime, same ONNX, same inputs (median of 50)",
            runs,
            record["rows"],
        ),
        ("The interactive loop: the page's render() with a new seed per frame", loop, tables.get("loop", [])),
        ("First load (empty cache) until the first drawing", loads, tables.get("first_load", [])),
    ]


def _browser_reading(record: dict) -> list[str]:
    lines = []
    batch_1 = [r for r in record["rows"] if r["batch"] == 1]
    if batch_1:
        lines.append(
            "At batch 1 the page's `session.run` takes "
            + series(
                [
                    f"{times(r['ratio_to_native'])} ({r['model']}, {r['threads']} thread{'s' * (r['threads'] > 1)})"
                    for r in batch_1
                ]
            )
            + " the time of native onnxruntime on the same ONNX."
        )
    loops = record["tables"].get("loop", [])
    if loops:
        slowest = min(loops, key=lambda r: r["frames_per_s"])
        lines.append(
            f"The slowest interactive loop ({slowest['model']}, {slowest['images']} images, {slowest['threads']} "
            f"thread{'s' * (slowest['threads'] > 1)}) sustains {slowest['frames_per_s']:.0f} frames/s."
        )
    for load in record["tables"].get("first_load", []):
        lines.append(
            f"A first visit to {load['model']}'s page transfers {load['wire_mb']:.2f} MB on the wire "
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
