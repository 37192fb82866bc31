"""End to end: `mlflow run . --env-manager local` with tiny parameters, then generate from
the champion with onnxruntime in a process where TensorFlow cannot be imported."""

from __future__ import annotations

import contextlib
import os
import re
import subprocess
import sys

import pytest

from tests.conftest import ROOT, TINY, chatter, quiet_environment, team_tracking_server, through_bin_run_filter

pytestmark = pytest.mark.slow  # end to end: `mlflow run` and every stage, servers in subprocesses


@pytest.fixture(scope="module", params=["sqlite", "tracking-server"])
def pipeline_store(request, tmp_path_factory, tfds_dir):
    """Runs the MLflow project once (dcgan, tiny) against a store: a SQLite file, or a team's
    tracking server (``latentforge tracking-server``: MLflow on PostgreSQL, artifacts proxied over
    HTTP); returns (work dir, tracking URI, output)."""
    work = tmp_path_factory.mktemp("e2e")
    uri = f"sqlite:///{work / 'mlflow.db'}"
    if request.param == "tracking-server":
        server = team_tracking_server(work)
        request.addfinalizer(server.stop)
        uri = server.uri
    # The environment bin/run gives `mlflow run`: nothing that quiets the libraries but the
    # level of MLflow's own INFO lines (the stages quiet the rest themselves: pipeline/quiet.py).
    env = quiet_environment(
        MLFLOW_TRACKING_URI=uri,
        PATH=f"{os.path.dirname(sys.executable)}:{os.environ['PATH']}",
        MLFLOW_LOGGING_LEVEL="WARNING",
    )
    env.pop("MLFLOW_EXPERIMENT_NAME", None)  # set in-process by mlflow.set_experiment in other tests
    # The preset, overridden field by field by the tiny settings.
    given = {"preset": "dcgan-fashion", **TINY, "tfds_dir": tfds_dir}
    params = [arg for key, value in given.items() for arg in ("-P", f"{key}={value}")]
    # as bin/run runs it: its stderr through bin/quiet-stderr
    command = [sys.executable, "-m", "mlflow", "run", str(ROOT), "--env-manager", "local", "--experiment-name", "e2e"]
    result = subprocess.run(
        through_bin_run_filter([*command, *params]),
        cwd=work,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return work, uri, result.stdout + result.stderr


def test_mlflow_run_registers_a_champion_with_nested_stage_runs(pipeline_store):
    from mlflow import MlflowClient

    _, uri, output = pipeline_store
    client = MlflowClient(uri)  # this store only: the process's current tracking URI is left alone
    champion = client.get_model_version_by_alias("fashion_mnist-dcgan", "champion")
    assert champion.tags["latentforge.decision"] == "promoted"
    experiment = [client.get_experiment_by_name("e2e").experiment_id]
    parent = client.search_runs(experiment, filter_string="tags.`latentforge.stage` = 'main'")[0]
    children = client.search_runs(experiment, filter_string=f"tags.`mlflow.parentRunId` = '{parent.info.run_id}'")
    assert parent.data.params["config.preset"] == "dcgan-fashion"
    assert parent.data.params["config.epochs"] == str(TINY["epochs"])  # -P overrides the preset's 2
    stages = {run.data.tags["latentforge.stage"] for run in children}
    assert {"data", "train", "evaluate", "export", "promote"} <= stages
    export_run = next(r for r in children if r.data.tags["latentforge.stage"] == "export")
    assert export_run.data.metrics["parity_max_abs_onnx"] <= 1e-4
    assert export_run.data.metrics["parity_max_abs_savedmodel"] <= 1e-4
    artifacts = {a.path for a in client.list_artifacts(export_run.info.run_id, "export")}
    assert {"export/generator.onnx", "export/generator_savedmodel", "export/model_card.json"} <= artifacts
    evaluate_run = next(r for r in children if r.data.tags["latentforge.stage"] == "evaluate")
    assert evaluate_run.data.metrics["fid"] > evaluate_run.data.metrics["fid_floor"] >= 0
    # lineage: the data each run read, as MLflow dataset inputs (name, context, split, files' digest)
    train_run = next(r for r in children if r.data.tags["latentforge.stage"] == "train")
    read = {
        stage: sorted(
            ({t.key: t.value for t in used.tags}["mlflow.data.context"], {t.key: t.value for t in used.tags}["split"])
            for used in client.get_run(run.info.run_id).inputs.dataset_inputs
            if used.dataset.name == "fashion_mnist:3.0.1"
        )
        for stage, run in (("train", train_run), ("evaluate", evaluate_run))
    }
    assert read["train"] == [("training", f"train[:{TINY['train_examples']}]")]
    assert read["evaluate"] == [("evaluation", "test"), ("evaluation", f"train[:{TINY['eval_samples']}]")]


def test_mlflow_run_shows_stage_and_epoch_lines_not_library_chatter(pipeline_store):
    _, _, output = pipeline_store
    assert chatter(output) == []
    for line in ("main: dcgan on fashion_mnist", "data: fashion_mnist", "export: parity", "evaluate: {", "promote: "):
        assert line in output, output
    assert re.search(r"^\d+/\d+ - .*d_loss: ", output, re.MULTILINE), output  # Keras' per-epoch line


BLOCK_TENSORFLOW = """
import importlib.abc, sys
class Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name == "tensorflow" or name.startswith(("tensorflow.", "keras", "tf2onnx")):
            raise ImportError(f"{name} is blocked in this test")
sys.meta_path.insert(0, Block())
try:
    import tensorflow  # noqa
    raise SystemExit("tensorflow was importable")
except ImportError:
    pass
from pipeline.cli import main
code = main(sys.argv[1:])
assert not any(m == "tensorflow" or m.startswith("tensorflow.") for m in sys.modules), "tensorflow got imported"
raise SystemExit(code)
"""


def _generate_without_tensorflow(work, uri, out, seed=0):
    env = {**os.environ, "MLFLOW_TRACKING_URI": uri, "PYTHONPATH": str(ROOT)}
    return subprocess.run(
        [
            sys.executable,
            "-c",
            BLOCK_TENSORFLOW,
            "generate",
            "--model",
            "models:/fashion_mnist-dcgan@champion",
            "-n",
            "16",
            "--seed",
            str(seed),
            "--out",
            str(out),
        ],
        cwd=work,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_generate_from_champion_without_tensorflow_is_byte_reproducible(pipeline_store):
    work, uri, _ = pipeline_store
    first = _generate_without_tensorflow(work, uri, work / "a.png")
    assert first.returncode == 0, first.stderr[-2000:]
    second = _generate_without_tensorflow(work, uri, work / "b.png")
    assert second.returncode == 0, second.stderr[-2000:]
    assert (work / "a.png").read_bytes() == (work / "b.png").read_bytes()
    assert (work / "a.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    other = _generate_without_tensorflow(work, uri, work / "c.png", seed=1)
    assert other.returncode == 0
    assert (work / "c.png").read_bytes() != (work / "a.png").read_bytes()


def test_serve_answers_from_the_champion_in_the_store(pipeline_store):
    """`latentforge serve --model models:/…@champion` resolves the champion through the store."""

    import requests

    from tests.serving.conftest import free_port

    work, uri, _ = pipeline_store
    port = free_port()
    env = {**os.environ, "MLFLOW_TRACKING_URI": uri, "no_proxy": "127.0.0.1,localhost"}
    command = [sys.executable, "-m", "pipeline.cli", "serve", "--model", "models:/fashion_mnist-dcgan@champion"]
    with server_process([*command, "--port", str(port)], ROOT, env, f"http://127.0.0.1:{port}/readyz", 120):
        answer = requests.post(f"http://127.0.0.1:{port}/v1/generate", json={"n": 3, "seed": 1}, timeout=60)
        assert answer.status_code == 200, answer.text[:500]


@contextlib.contextmanager
def server_process(command, cwd, env, ready_url: str, timeout_s: float):
    """A server started as ``command``, once ``ready_url`` answers 200 (failing with its stderr if
    it exits first); terminated after."""
    import time

    import requests

    server = subprocess.Popen(command, cwd=cwd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.time() + timeout_s
        while time.time() < deadline:
            assert server.poll() is None, server.stderr.read()[-2000:]
            try:
                if requests.get(ready_url, timeout=1).status_code == 200:
                    break
            except requests.ConnectionError:
                time.sleep(0.5)
        yield server
    finally:
        server.terminate()
        server.wait(timeout=30)


def test_mlflow_models_serve_answers_invocations_like_the_runtime(pipeline_store, monkeypatch):
    """`mlflow models serve` on the registered champion: {"inputs": {"z": [[...]]}} in,
    {"predictions": {"image": [...]}} out, equal to what latentforge's runtime generates."""

    import numpy as np
    import requests

    from contract import images
    from serving.runtime import GeneratorRuntime
    from tests.serving.conftest import free_port

    work, uri, _ = pipeline_store
    port = free_port()
    env = {**os.environ, "MLFLOW_TRACKING_URI": uri, "PATH": f"{os.path.dirname(sys.executable)}:{os.environ['PATH']}"}
    model = "models:/fashion_mnist-dcgan@champion"
    command = [
        sys.executable,
        "-m",
        "mlflow",
        "models",
        "serve",
        "-m",
        model,
        "--env-manager",
        "local",
        "-p",
        str(port),
    ]
    with server_process(command, work, env, f"http://127.0.0.1:{port}/ping", 180):
        z = images.latents(5, 3, 100)
        answer = requests.post(f"http://127.0.0.1:{port}/invocations", json={"inputs": {"z": z.tolist()}}, timeout=60)
        assert answer.status_code == 200, answer.text[:500]
        served = np.asarray(answer.json()["predictions"]["image"], np.float32)
        monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
        expected = GeneratorRuntime.load(model).run(z)
        np.testing.assert_allclose(served, expected, atol=1e-6)
