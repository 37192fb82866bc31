"""bench/family_study.py scores every model and seed at its checkpoints, and a killed study resumes:
finished units are kept, the unfinished one continues from its last checkpoint; a study finished on
a fresh machine takes the finished units from the committed folder (``--units``)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_study_scores_checkpoints_and_resumes_after_a_kill(tfds_dir, tmp_path):
    results, state = tmp_path / "family_study.json", tmp_path / "state"
    models = ["dcgan+width=8", "progan+width=8+phase_kimg=0.064", "stylegan+width=8"]
    environment = {**os.environ, "MLFLOW_TRACKING_URI": f"sqlite:///{tmp_path / 'mlflow.db'}"}
    environment.pop("MLFLOW_RUN_ID", None)
    command = [sys.executable, str(ROOT / "bench" / "family_study.py"), "--models", ",".join(models)]
    command += ["--seconds", "8", "--checkpoints", "2,4", "--seeds", "0", "--samples", "200", "--batch-size", "8"]
    command += ["--latency-calls", "3", "--features-epochs", "1", "--features-examples", "2000"]
    command += ["--tfds-dir", tfds_dir, "--results", str(results), "--identity", "test", "--units", str(tmp_path / "u")]
    command += ["--state", str(state)]

    # first try: killed once the StyleGAN has kept its first checkpoint (the DCGAN and ProGAN have finished)
    first = subprocess.Popen(command, cwd=tmp_path, env=environment, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    progress = state / "stylegan_width=8-seed0" / "progress.json"
    deadline = time.monotonic() + 900
    while not progress.is_file() and first.poll() is None and time.monotonic() < deadline:
        time.sleep(0.5)
    first.send_signal(signal.SIGKILL)
    first.wait()
    assert progress.is_file(), first.stdout.read().decode()[-2000:]
    kept = json.loads(progress.read_text())
    assert (state / "dcgan_width=8-seed0" / "result.json").is_file() and not results.exists()
    assert (state / "progan_width=8_phase_kimg=0.064-seed0" / "result.json").is_file()

    done = subprocess.run(command, cwd=tmp_path, env=environment, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "dcgan+width=8 seed 0: kept" in done.stdout
    assert f"stylegan+width=8 seed 0: resumed at {kept['train_s']:.0f} s" in done.stdout
    record = json.loads(results.read_text())
    units = {u["model"]: u for u in record["tables"]["units"]}
    assert units["stylegan+width=8"]["steps"] > kept["steps"] and units["stylegan+width=8"]["train_s"] >= 8
    for model in models:
        points = [r for r in record["rows"] if r["model"] == model]
        assert [p["train_s"] >= at for p, at in zip(points, (2, 4, 8))] == [True, True, True]
        assert all(p["fid"] > 0 and 0 <= p["precision"] <= 1 and 0 <= p["recall"] <= 1 for p in points)
        assert all(0 <= p["class_entropy"] <= 2.31 for p in points)
    summary = {(row["model"], row["minutes"]): row for row in record["tables"]["summary"]}
    for model in models:
        row = summary[model, round(8 / 60, 2)]
        assert row["fid"]["median"] == row["fid"]["min"] == row["fid"]["max"]  # one seed
        assert row["onnx_ms_batch1"] > 0 and row["onnx_ms_batch64"] > row["onnx_ms_batch1"]
    assert "stylegan_fid_lower_than_dcgan_pct" in record["summary"]
    assert all(len(u["sgemm_gflops"]) >= 2 and min(u["sgemm_gflops"]) > 0 for u in record["tables"]["units"])

    # another machine: no state, the finished units from the committed folder, the same table
    again = subprocess.run(
        [*command[:-1], str(tmp_path / "elsewhere")], cwd=tmp_path, env=environment, capture_output=True, text=True
    )
    assert again.returncode == 0, again.stderr[-2000:]
    assert all(f"{model} seed 0: kept" in again.stdout for model in models)
    assert json.loads(results.read_text())["rows"] == record["rows"]
