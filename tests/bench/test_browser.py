"""bench/browser.py runs end to end in real headless Chromium on a tiny colour StyleGAN export
and writes what docs/results.md renders: the page's session.run beside native onnxruntime on
the same inputs (their outputs agree), the interactive loop, first-load bytes, the screenshot."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from bench import browser
from serving import playground, web_runtime
from tests.serving.conftest import write_export

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_the_page_is_timed_beside_native_onnxruntime_on_the_same_inputs(tmp_path):
    assert shutil.which("chromium"), "Debian's chromium is missing; bin/setup installs it"
    model = write_export(tmp_path / "stylegan", "stylegan", latent_dim=8, shape=(32, 32, 3))
    results, shot = tmp_path / "browser.json", tmp_path / "shot.png"
    done = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "browser.py"), "--models", str(model), "--rounds", "2", "--block", "3"]
        + ["--warm-up-seconds", "1"]
        + ["--results", str(results), "--screenshot", str(shot)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    record = json.loads(results.read_text())
    rows = {(r["threads"], r["batch"]): r for r in record["rows"]}
    assert set(rows) == {(t, b) for t in browser.THREADS for b in browser.BATCHES}
    for row in rows.values():
        assert row["calls"] == 6 and row["page_ms"] > 0 and row["native_ms"] > 0
        assert row["max_abs_difference"] <= 1e-3  # the same ONNX on the same inputs in both
        assert row["ratio_to_native"] == pytest.approx(row["page_ms"] / row["native_ms"])
    loops = record["tables"]["loop"]
    assert sorted((r["threads"], r["images"]) for r in loops) == [(1, 1), (1, 16), (2, 1), (2, 16)]
    for loop in loops:
        assert loop["frames"] == 6 and loop["frames_per_s"] == pytest.approx(1000 / loop["median_ms"])
        assert 0 < loop["presented_per_s"] <= 1.1 * loop["display_per_s"]  # the display caps what is presented
    (load,) = record["tables"]["first_load"]
    assert load["threads"] == min(os.cpu_count() or 1, 4) and 0 < load["seconds_to_first_drawing"] < 60
    files = {f["path"]: f for f in record["tables"]["first_load_files"]}
    runtime = web_runtime.runtime_files()
    sources = {"/": playground.WEB / "index.html"}
    sources.update({f"/web/{name}": playground.WEB / name for name in playground.PAGE_FILES})
    sources.update({f"/web/ort/{name}": path for name, path in runtime.items()})
    sources.update({f"/model/{name}": model / name for name in ("model_card.json", "generator.onnx")})
    assert set(files) == set(sources)  # every file of the page, and nothing else
    for path, source in sources.items():  # decoded: each request's whole file (the card is re-serialized)
        if path != "/model/model_card.json":
            assert files[path]["raw_bytes"] == files[path]["requests"] * source.stat().st_size, path
    wasm = files["/web/ort/ort-wasm-simd-threaded.wasm"]
    assert wasm["wire_bytes"] < wasm["raw_bytes"] / 2  # served gzipped: the server compresses its static files
    summary = record["summary"]
    assert {"stylegan_first_load_wire_mb", "stylegan_threads_1_1_images_frames_per_s"} <= set(summary)
    assert not [k for k in summary if "page_over_native" in k]  # the ratio target is stylegan-fashion's only
    assert all(isinstance(v["met"], bool) for v in summary.values())
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert record["present"]["tables"] and "Targets met" in record["present"]["reading"][-1]
    assert "median of 6 calls" in record["present"]["tables"][0]["caption"]
