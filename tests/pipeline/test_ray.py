"""The train stage on 2 Ray workers (a local Ray instance on this machine): one worker killed with
SIGKILL once the first epoch is checkpointed, and the pipeline still finishes, resumed from that
epoch, with one model version registered. And the one-line errors of ``workers=N``."""

import os
import signal
import subprocess
import sys
import time

import mlflow
import psutil
import pytest
from mlflow import MlflowClient

from tests.conftest import ROOT, TINY


def latentforge(*args, env=None, **kwargs):
    return subprocess.Popen(
        [sys.executable, "-m", "pipeline.cli", *args],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        **kwargs,
    )


def ray_train_workers() -> list[psutil.Process]:
    found = []
    for process in psutil.process_iter(["cmdline"]):
        if "RayTrainWorker" in " ".join(process.info["cmdline"] or []):
            found.append(process)
    return found


@pytest.mark.slow
def test_a_worker_killed_mid_epoch_restarts_the_group_from_the_last_epoch(extractor_store, tfds_dir, tmp_path):
    storage = tmp_path / "ray"
    env = {
        **os.environ,
        "MLFLOW_TRACKING_URI": extractor_store,
        "LATENTFORGE_RAY_STORAGE": str(storage),
        "LATENTFORGE_SYSTEM_METRICS_S": "2",
    }
    flags = [f"--{k.replace('_', '-')}={v}" for k, v in {**TINY, "epochs": 3, "steps_per_epoch": 30}.items()]
    run = latentforge(
        "main",
        "--model=dcgan",
        "--width=8",
        "--workers=2",
        f"--tfds-dir={tfds_dir}",
        *flags,
        "--experiment=latentforge-test",
        env=env,
    )
    try:
        deadline = time.monotonic() + 600
        while not list(storage.glob("*/checkpoint_*")):  # the first epoch's checkpoint, handed to Ray
            assert run.poll() is None, run.stdout.read()[-4000:]
            assert time.monotonic() < deadline, "no Ray checkpoint after 10 minutes"
            time.sleep(0.5)
        victims = ray_train_workers()
        assert len(victims) == 2, victims
        os.kill(victims[-1].pid, signal.SIGKILL)
        out, _ = run.communicate(timeout=900)
    finally:
        run.kill()
    assert run.returncode == 0, out[-4000:]
    client = MlflowClient()
    experiment = client.get_experiment_by_name("latentforge-test").experiment_id
    (train,) = client.search_runs([experiment], "tags.`latentforge.stage` = 'train'")
    assert train.info.status == "FINISHED"
    assert train.data.params["workers"] == "2"
    resumed = client.get_metric_history(train.info.run_id, "resumed_from_epoch")
    assert [m.value for m in resumed] == [1.0], out[-12000:]  # restarted once, from the first epoch
    assert {m.step for m in client.get_metric_history(train.info.run_id, "g_loss")} == {1, 2, 3}
    nodes = {key.split("/")[1] for key in train.data.metrics if key.startswith("system/")}
    assert nodes == {"chief", "worker-1"}, nodes
    assert len(client.search_model_versions("name = 'fashion_mnist-dcgan'")) == 1
    assert not ray_train_workers(), "Ray's workers outlived the stage"
    mlflow.end_run()


@pytest.mark.slow
@pytest.mark.parametrize(
    "setting, message",
    [
        ({"RAY_ADDRESS": "127.0.0.1:9"}, "RAY_ADDRESS=127.0.0.1:9 is not reachable"),
        ({"LATENTFORGE_RAY_MAX_FAILURES": "two"}, "LATENTFORGE_RAY_MAX_FAILURES=two is not a whole number >= 0"),
        (
            {"PYTHONPATH": "{fake}"},
            "workers > 1 trains on Ray, which is not installed: pip install -e '.[distributed]'",
        ),
        (
            {"TF_CONFIG": '{"cluster": {"worker": ["127.0.0.1:1"]}, "task": {"type": "worker", "index": 3}}'},
            "TF_CONFIG's task worker 3 is not in its cluster",
        ),
    ],
)
def test_workers_errors_are_one_line(setting, message, store, tfds_dir, tmp_path):
    fake = tmp_path / "no-ray"
    (fake / "ray").mkdir(parents=True)
    (fake / "ray" / "__init__.py").write_text("raise ImportError('No module named ray')\n")
    env = {**os.environ, "MLFLOW_TRACKING_URI": store}
    env.update({k: v.replace("{fake}", str(fake)) for k, v in setting.items()})
    run = latentforge("train", "--workers=2", f"--tfds-dir={tfds_dir}", "--epochs=1", env=env)
    out, _ = run.communicate(timeout=300)
    assert run.returncode == 2, out
    lines = [line for line in out.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("latentforge: error: ") and message in lines[0], out


@pytest.mark.parametrize(
    "text, line",
    [
        (
            "Training failed due to worker errors:\n[Rank 1 Error Snippet]:\nTraceback (most recent call last):\n"
            '  File "x.py", line 3, in f\ntensorflow.errors_impl.UnavailableError: Graph execution error:\n\n'
            "Collective ops is aborted by: recvmsg:Connection reset by peer\n"
            "ray.train.WorkerGroupError: Training failed due to worker errors:",
            "tensorflow.errors_impl.UnavailableError: Graph execution error: Collective ops is aborted by: "
            "recvmsg:Connection reset by peer",
        ),
        ("ValueError: batch too small", "ValueError: batch too small"),
        ("no cause named\nsecond line", "no cause named"),
        ("", "RuntimeError"),
    ],
)
def test_a_ray_failure_is_told_by_its_cause(text, line):
    from pipeline.ray_launch import failure_line

    assert failure_line(RuntimeError(text)) == line
