"""bench/equal_time.py trains the peer and our DCGAN for the same wall-clock, in turns, and scores
both with a registered extractor (here a quick one, on a small slice), as docs/results.md renders."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_equal_time_takes_turns_and_scores_every_model_and_seed(tfds_dir, tmp_path):
    results = tmp_path / "equal_time.json"
    models = ["peer-dcgan", "dcgan+width=8+batch_size=16"]
    environment = {**os.environ, "MLFLOW_TRACKING_URI": f"sqlite:///{tmp_path / 'mlflow.db'}"}
    environment.pop("MLFLOW_RUN_ID", None)
    done = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "equal_time.py"), "--models", ",".join(models)]
        + ["--seconds", "6", "--checkpoints", "3", "--seeds", "0,1", "--samples", "300", "--batch-size", "8"]
        + ["--features-epochs", "1", "--features-examples", "2000", "--tfds-dir", tfds_dir, "--results", str(results)],
        capture_output=True,
        text=True,
        timeout=900,
        cwd=tmp_path,
        env=environment,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    record = json.loads(results.read_text())
    rows = record["rows"]
    # turns: seed 0 runs the reference first, seed 1 ours first
    assert [(r["seed"], r["model"]) for r in rows] == [(0, models[0]), (0, models[1]), (1, models[1]), (1, models[0])]
    for row in rows:
        assert row["train_s"] >= 6 and row["steps"] > 0 and row["fid"] > 0
        assert row["images"] == row["steps"] * row["batch_size"]
    assert {r["model"]: r["batch_size"] for r in rows} == {models[0]: 8, models[1]: 16}
    summary = {s["model"]: s for s in record["tables"]["summary"]}
    assert summary[models[0]]["fid_vs_reference"] == 1.0
    ours = [r["fid"] for r in rows if r["model"] == models[1]]
    assert summary[models[1]]["fid_median"] == pytest.approx(sorted(ours)[0] / 2 + sorted(ours)[1] / 2, abs=0.01)
    # every model and seed also scored once the training clock passed 3 s, before the end
    curve = record["tables"]["curve"]
    assert sorted((c["seed"], c["model"]) for c in curve) == sorted((r["seed"], r["model"]) for r in rows)
    final = {(r["seed"], r["model"]): r for r in rows}
    for point in curve:
        assert point["train_s"] >= 3 and 0 < point["steps"] <= final[point["seed"], point["model"]]["steps"]
    assert record["subject"]["extractor"].endswith("-e1-n2000")
    assert "median FID" in done.stdout


def test_a_models_batch_size_is_its_override_else_its_presets_else_the_default():
    sys.path.insert(0, str(ROOT))
    from bench.equal_time import batch_size_of

    assert batch_size_of("stylegan-fashion", 64) == 32  # the preset's
    assert batch_size_of("stylegan-fashion+batch_size=16", 64) == 16
    assert batch_size_of("dcgan+width=8", 64) == 64 and batch_size_of("progan-fashion", 8) == 64
