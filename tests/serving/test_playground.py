"""The browser playground (serving/playground.py, serving/web/) in real headless Chromium (Debian's,
driven by Playwright for Python): every family's tiny export runs in the page with
onnxruntime-web and draws, for a seed, the picture latentforge's Python draws (8-bit pixels within
±1); the controls come from the card; the static export works with the server stopped; no request
leaves 127.0.0.1; and the bad cases: no mixing controls without styles, a clear message for a
card the page cannot run, 404 for traversal, the CSP, and the token."""

from __future__ import annotations

import contextlib
import http.client
import json
import shutil
import subprocess
import sys
import time
from urllib.parse import urlsplit

import numpy as np
import pytest
import requests

from contract import images
from contract import sampler as portable
from serving import playground, styles, web_runtime
from serving.runtime import GeneratorRuntime
from serving.schemas import ServeSettings
from tests.serving.conftest import RunningServer, free_port, tamper, write_export

pytestmark = pytest.mark.slow
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
SHAPES = {"stylegan": (32, 32, 3)}  # the colour export; the others are 28x28 grey


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    web_runtime.runtime_files()  # here already, or fetched now rather than inside a page's first load
    assert CHROMIUM, "Debian's chromium is missing; bin/setup installs it"
    with sync_playwright() as driver:
        chromium = driver.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        yield chromium
        chromium.close()


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    root = tmp_path_factory.mktemp("playground")
    kinds = ("dcgan", "cdcgan", "progan", "stylegan", "vae", "ae")
    return {kind: write_export(root / kind, kind, latent_dim=8, shape=SHAPES.get(kind, (28, 28, 1))) for kind in kinds}


class Visit:
    """A page of the playground: its console errors and every URL it requested."""

    def __init__(self, browser, url: str):
        self.page = browser.new_page()
        self.errors: list[str] = []
        self.urls: list[str] = []
        self.page.on("console", lambda m: m.type == "error" and self.errors.append(m.text))
        self.page.on("pageerror", lambda e: self.errors.append(str(e)))
        self.page.on("request", lambda r: self.urls.append(r.url))
        self.page.goto(url)
        self.page.wait_for_function("() => window.latentforge !== undefined", timeout=30_000)

    def ready(self) -> bool:
        """Whether the model loaded and ran (awaits the page's start)."""
        return self.page.evaluate("window.latentforge.ready")

    def images(self) -> np.ndarray:
        """The last drawing's images, (n, h, w, c) uint8, once no drawing runs."""
        last = self.page.evaluate(
            "window.latentforge.idle().then((l) => ({pixels: Array.from(l.pixels), shape: [l.n, l.h, l.w, l.c]}))"
        )
        return np.array(last["pixels"], np.uint8).reshape(last["shape"])

    def set(self, selector: str, value: str) -> np.ndarray:
        self.page.fill(selector, value)
        return self.images()

    def slide(self, selector: str, value: str) -> np.ndarray:
        """Move a range input (Playwright fills text inputs only) and wait for the drawing."""
        self.page.eval_on_selector(
            selector, "(node, value) => { node.value = value; node.dispatchEvent(new Event('input')); }", value
        )
        return self.images()

    def message(self) -> str:
        return self.page.inner_text("#message") if self.page.is_visible("#message") else ""

    def close(self) -> None:
        assert all(urlsplit(u).hostname == "127.0.0.1" for u in self.urls if not u.startswith(("data:", "blob:")))
        self.page.close()


def close_to(got: np.ndarray, want: np.ndarray) -> None:
    assert got.shape == want.shape
    assert np.abs(got.astype(int) - want.astype(int)).max() <= 1


@pytest.mark.parametrize("kind", ["dcgan", "cdcgan", "progan", "stylegan", "vae", "ae"])
def test_every_family_draws_in_the_page_what_python_draws(browser, models, kind):
    runtime = GeneratorRuntime.load(str(models[kind]))
    with RunningServer(ServeSettings(model=str(models[kind]))) as server:
        visit = Visit(browser, server.url + "/")
        assert visit.ready(), visit.message()
        assert runtime.sampler == portable.SAMPLER
        close_to(visit.images(), runtime.generate_uint8(16, 0))  # cell k of the 4x4 grid is image k
        visit.page.select_option("#grid", "1")
        for seed in (7, 2**32 - 1):
            close_to(visit.set("#seed", str(seed)), runtime.generate_uint8(1, seed))
        assert visit.page.is_visible("#mixing-box") is False
        mixing = visit.page.is_visible("input[name=mode][value=mixing]")
        assert mixing == (kind == "stylegan")  # no styles, no mixing controls
        assert visit.page.is_visible("#psi-box") == (kind == "stylegan")
        assert visit.page.is_visible("#class-box") == (kind == "cdcgan")
        assert visit.page.is_visible("input[name=mode][value=sliders]") == (kind in ("vae", "ae"))
        assert not visit.errors
        visit.close()


def test_style_controls_mixing_and_interpolation_match_python(browser, models):
    runtime = GeneratorRuntime.load(str(models["stylegan"]))
    with RunningServer(ServeSettings(model=str(models["stylegan"]))) as server:
        visit = Visit(browser, server.url + "/")
        page = visit.page
        page.select_option("#grid", "1")
        page.check("input[name=noise][value=zero]")
        visit.slide("#psi", "0")
        average = [visit.set("#seed", str(seed)) for seed in (1, 2, 3)]
        assert np.array_equal(average[0], average[1]) and np.array_equal(average[1], average[2])
        close_to(average[0], runtime.generate_uint8(1, 3, values={"psi": 0.0, "noise": 0.0}))

        visit.slide("#psi", "0.7")
        page.check("input[name=noise][value=random]")
        page.check("input[name=mode][value=mixing]")
        page.fill("#mix-rows", "1,2")
        page.fill("#mix-cols", "3,4,5")
        feed = styles.mix_feed(runtime, [1, 2], [3, 4, 5], "coarse", psi=0.7, noise="random")
        want = images.to_uint8(runtime.run_feed(feed), runtime.card["value_range"])
        want[0] = 0  # the grid's blank corner
        close_to(visit.images(), want)

        page.check("input[name=mode][value=interpolation]")
        page.check("input[name=noise][value=zero]")
        page.fill("#seed", "5")
        page.fill("#seed-b", "9")
        frames = visit.set("#steps", "4")
        ends = [runtime.generate_uint8(1, s, values={"psi": 0.7, "noise": 0.0})[0] for s in (5, 9)]
        close_to(frames[[0, -1]], np.stack(ends))
        assert not visit.errors
        visit.close()


def test_the_class_picker_sets_the_class_input(browser, models):
    runtime = GeneratorRuntime.load(str(models["cdcgan"]))
    with RunningServer(ServeSettings(model=str(models["cdcgan"]))) as server:
        visit = Visit(browser, server.url + "/")
        every = visit.images()
        visit.page.select_option("#label", "3")
        chosen = visit.images()
        close_to(chosen, runtime.generate_uint8(16, 0, label=3))
        assert not np.array_equal(chosen, every)
        visit.close()


def test_the_encoder_reconstructs_a_dropped_image(browser, models, tmp_path):
    from PIL import Image

    runtime = GeneratorRuntime.load(str(models["vae"]), with_encoder=True)
    grey = (np.arange(28 * 28).reshape(28, 28) % 251).astype(np.uint8)
    Image.fromarray(grey, mode="L").save(tmp_path / "a.png")
    with RunningServer(ServeSettings(model=str(models["vae"]))) as server:
        visit = Visit(browser, server.url + "/")
        assert visit.ready()
        visit.page.set_input_files("#file", str(tmp_path / "a.png"))
        visit.page.wait_for_function("() => window.latentforge.last && window.latentforge.last.mode === 'sliders'")
        z = runtime.encode((grey / 255.0).astype(np.float32)[None, ..., None])
        close_to(visit.images(), images.to_uint8(runtime.run(z), runtime.card["value_range"]))
        visit.close()


def test_the_static_site_runs_from_a_plain_static_server(browser, models, tmp_path):
    from pipeline import cli

    out = tmp_path / "site"
    assert cli.main(["playground", "--model", str(models["dcgan"]), "--out", str(out)]) == 0
    assert (out / "HOSTING.md").is_file() and "Cross-Origin-Embedder-Policy" in (out / "_headers").read_text()
    assert cli.main(["playground", "--model", str(models["dcgan"]), "--out", str(out)]) == 2  # not empty
    with static_server(out) as url:
        visit = Visit(browser, url)
        assert visit.ready(), visit.message()
        close_to(visit.images(), GeneratorRuntime.load(str(models["dcgan"])).generate_uint8(16, 0))
        assert not visit.errors
        visit.close()


@contextlib.contextmanager
def static_server(folder):
    """Python's plain static file server (no latentforge) over ``folder``; yields its URL."""
    port = free_port()
    static = subprocess.Popen(
        [sys.executable, "-m", "http.server", str(port), "--bind", "127.0.0.1", "--directory", str(folder)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}/"
    try:
        for _ in range(100):
            try:
                requests.get(url, timeout=1)
                break
            except requests.ConnectionError:
                time.sleep(0.1)
        yield url
    finally:
        static.terminate()
        static.wait(10)


def test_a_card_the_page_cannot_run_gets_a_message(browser, models, tmp_path):
    legacy = tmp_path / "legacy"
    shutil.copytree(models["dcgan"], legacy)
    card = json.loads((legacy / "model_card.json").read_text())
    del card["sampler"]  # written before the portable sampler
    (legacy / "model_card.json").write_text(json.dumps(card))
    with RunningServer(ServeSettings(model=str(legacy))) as server:
        visit = Visit(browser, server.url + "/")
        assert visit.ready() is False
        assert "re-export" in visit.message() and "portable sampler" in visit.message()
        visit.close()
    site = tmp_path / "site"
    runtime = GeneratorRuntime.load(str(models["dcgan"]))
    playground.write_site(runtime, site)
    tamper(site / "model" / "generator.onnx")
    with static_server(site) as url:
        visit = Visit(browser, url)
        assert visit.ready() is False and "does not match the sha256" in visit.message()
        visit.close()
        (site / "model" / "model_card.json").write_text("{ not json")
        visit = Visit(browser, url)
        assert "not JSON" in visit.message()
        visit.close()


def _raw_get(url: str, path: str) -> tuple[int, bytes]:
    parts = urlsplit(url)
    connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=10)
    connection.request("GET", path)  # sent as written: no client-side normalisation of ..
    answer = connection.getresponse()
    return answer.status, answer.read()


def test_headers_traversal_and_the_token(browser, models, monkeypatch):
    monkeypatch.setenv("LATENTFORGE_TOKEN", "s3cret")
    with RunningServer(ServeSettings(model=str(models["dcgan"]))) as server:
        page = requests.get(server.url + "/")
        assert page.status_code == 200
        policy = dict(p.strip().split(" ", 1) for p in page.headers["Content-Security-Policy"].split(";"))
        assert policy["default-src"] == "'self'" and policy["script-src"] == "'self' 'wasm-unsafe-eval'"
        assert not any(("*" in v or "http" in v) for v in policy.values())
        assert page.headers["Cross-Origin-Embedder-Policy"] == "require-corp"
        assert page.headers["Cross-Origin-Opener-Policy"] == "same-origin"
        for public in ("/web/playground.js", "/web/ort/ort-wasm-simd-threaded.wasm"):
            assert requests.get(server.url + public).status_code == 200
        for private in ("/model/model_card.json", "/model/generator.onnx"):
            assert requests.get(server.url + private).status_code == 401
        bearer = {"Authorization": "Bearer s3cret"}
        assert requests.get(server.url + "/model/model_card.json", headers=bearer).status_code == 200
        for path in ("/web/../../serving/server.py", "/web/%2e%2e/%2e%2e/pipeline/cli.py", "/model/../model_card.json"):
            status, body = _raw_get(server.url, path)
            assert status in (401, 404) and b"import" not in body
        visit = Visit(browser, server.url + "/")
        visit.page.wait_for_selector("#token-form", state="visible")
        visit.page.fill("#token", "s3cret")
        visit.page.click("#token-form button")
        visit.page.wait_for_function("() => window.latentforge.last !== null", timeout=30_000)
        assert visit.page.evaluate("crossOriginIsolated")
        visit.close()
    with RunningServer(ServeSettings(model=str(models["dcgan"]), public_model=True)) as server:
        assert requests.get(server.url + "/model/model_card.json").status_code == 200
        assert requests.get(server.url + "/v1/models").status_code == 401
        status, _ = _raw_get(server.url, "/model/../../contract/card.py")
        assert status == 404


def test_the_page_sampler_draws_what_python_draws(browser, models):
    with RunningServer(ServeSettings(model=str(models["dcgan"]))) as server:
        visit = Visit(browser, server.url + "/")
        drawn = visit.page.evaluate(
            """async () => {
              const s = await import('/web/sampler.js');
              const z = s.normal(4000000000, 0, 3000);
              return {normal: Array.from(s.normal(12, 5, 1000, 7)), uniform: Array.from(s.uniform(3, 2, 500, -1, 2)),
                      z: Array.from(z), truncated: Array.from(s.truncate(z, 0.5, 4000000000))};
            }"""
        )
        visit.close()
    # uniforms are exact; a normal's log and cos may differ by an ulp of a float64 between numpy and V8
    np.testing.assert_array_equal(np.float32(drawn["uniform"]), portable.uniform(3, 2, (500,), -1, 2))
    np.testing.assert_allclose(np.float32(drawn["normal"]), portable.normal(12, 5, (1000,), start=7), rtol=0, atol=1e-6)
    z = portable.normal(4_000_000_000, 0, (3000,))
    np.testing.assert_allclose(np.float32(drawn["z"]), z, rtol=0, atol=1e-6)
    truncated = portable.truncate(portable.SAMPLER, z, 0.5, 4_000_000_000)
    np.testing.assert_allclose(np.float32(drawn["truncated"]), truncated, rtol=0, atol=1e-6)
    assert np.abs(truncated).max() <= 0.5 and np.mean(np.abs(z) > 0.5) > 0.5  # most entries were redrawn
