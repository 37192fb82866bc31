"""bench/browser.py runs end to end in real headless Chromium on a tiny colour StyleGAN export
and writes what docs/results.md renders: the page's session.run beside native onnxruntime on
the same inputs (their outputs agree), the interactive loop, first-load bytes, the screenshot."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from bench import browser
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
    assert all(r["frames_per_s"] == pytest.approx(1000 / r["median_ms"]) for r in loops)
    (load,) = record["tables"]["first_load"]
    files = {f["path"]: f for f in record["tables"]["first_load_files"]}
    assert {"/", "/web/ort/ort-wasm-simd-threaded.wasm", "/model/generator.onnx"} <= set(files)
    wasm = files["/web/ort/ort-wasm-simd-threaded.wasm"]
    assert wasm["wire_bytes"] < wasm["raw_bytes"] / 2  # served gzipped: the server compresses its static files
    assert load["wire_bytes"] == sum(f["wire_bytes"] for f in files.values())
    assert set(record["summary"]) >= {"stylegan_threads_1_batch_1_page_over_native", "stylegan_first_load_wire_mb"}
    assert all(isinstance(v["met"], bool) for v in record["summary"].values())
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert record["present"]["tables"] and "Targets met" in record["present"]["reading"][-1]
