"""bench/train_speed.py runs end to end on a small slice and writes what docs/results.md renders."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_train_speed_times_peer_and_families_and_counts_their_work(tfds_dir, tmp_path):
    results = tmp_path / "train_speed.json"
    models = "peer-dcgan,dcgan,vae-fashion+width=16"
    done = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "train_speed.py"), "--batches", "8", "--models", models]
        + ["--rounds", "2", "--steps", "2", "--tfds-dir", tfds_dir, "--results", str(results)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    record = json.loads(results.read_text())
    rows = {row["model"]: row for row in record["rows"]}
    assert set(rows) == set(models.split(","))
    assert rows["peer-dcgan"]["speed_vs_peer"] == 1.0
    for row in rows.values():
        assert row["images_per_s"] > 0 and row["percent_of_peak"] > 0
        assert row["q1_ms"] <= row["median_ms"] <= row["q3_ms"]
    # latentforge's DCGAN step does less arithmetic per image than Géron's (3x3 kernels, one D call)
    assert rows["dcgan"]["mflop_per_image"] < rows["peer-dcgan"]["mflop_per_image"]
    assert "batch_8_dcgan_over_peer" in record["summary"]
    assert "peer-dcgan" in done.stdout and "% peak" in done.stdout


def test_progan_is_timed_fully_grown(tfds_dir):
    sys.path.insert(0, str(ROOT))
    from bench.train_speed import build, timed_steps
    from pipeline import inputs

    spec = inputs.describe("fashion_mnist", tfds_dir)
    model, data = build("progan+width=8", spec, 8)
    timed_steps(model, data, 1)
    assert model.level == model.top and model.alpha == 1.0  # 28x28, not the 7x7 it starts at
