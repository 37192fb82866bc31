"""`latentforge tracking-server`: PostgreSQL and an MLflow server over it, started, stopped and
started again without losing anything; bad ports get one line."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from tests.conftest import ROOT
from tests.serving.conftest import free_port

pytestmark = pytest.mark.slow  # real PostgreSQL and MLflow servers


@pytest.fixture()
def folder():
    """A folder the user postgres can reach (pytest's own are private to their user)."""
    with tempfile.TemporaryDirectory(prefix="latentforge-server-") as path:
        Path(path).chmod(0o755)
        yield Path(path) / "server"


def test_runs_and_artifacts_survive_a_restart_and_nothing_is_left_running(folder, monkeypatch):
    import mlflow

    from pipeline import tracking_server

    server = tracking_server.start(folder, port=free_port())
    monkeypatch.setenv("MLFLOW_TRACKING_URI", server.uri)  # restored after the test
    try:
        monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")
        mlflow.set_tracking_uri(server.uri)
        experiment = mlflow.create_experiment("team")
        with mlflow.start_run(experiment_id=experiment) as run:
            mlflow.log_metric("fid", 12.5)
            mlflow.log_text("hello", "notes/hello.txt")
        assert server.backend_uri.startswith("postgresql")
    finally:
        server.stop()
    assert not (folder / "postgres" / "postmaster.pid").exists()  # PostgreSQL stopped
    again = tracking_server.start(folder, port=free_port())
    try:
        mlflow.set_tracking_uri(again.uri)
        assert mlflow.get_run(run.info.run_id).data.metrics["fid"] == 12.5
        assert mlflow.artifacts.load_text(f"runs:/{run.info.run_id}/notes/hello.txt") == "hello"
        assert any(folder.joinpath("artifacts").rglob("hello.txt"))  # stored by the server, not the client
    finally:
        again.stop()
        mlflow.set_tracking_uri(None)


def test_a_port_in_use_is_one_line_and_starts_nothing(folder):
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        for flag in ("--port", "--pg-port"):
            done = subprocess.run(
                [sys.executable, "-m", "pipeline.cli", "tracking-server", "--dir", str(folder), flag, str(port)],
                cwd=ROOT,
                capture_output=True,
                text=True,
                timeout=120,
                env={**os.environ, "no_proxy": "127.0.0.1"},
            )
            assert done.returncode == 2
            lines = done.stderr.strip().splitlines()
            assert len(lines) == 1 and f"port {port} is in use" in lines[0] and flag in lines[0], done.stderr
    assert not (folder / "postgres" / "postmaster.pid").exists()


@pytest.mark.parametrize(
    "command",
    [
        [sys.executable, "-m", "pipeline.cli", "train", "--epochs=1"],
        [sys.executable, "-m", "pipeline.cli", "generate", "--model=models:/x@champion", "--out=x.png"],
        ["bin/run", "-P", "epochs=1"],
    ],
    ids=["train", "generate", "bin/run"],
)
def test_an_unreachable_tracking_server_is_one_line(command, tmp_path):
    uri = f"http://127.0.0.1:{free_port()}"
    env = {**os.environ, "MLFLOW_TRACKING_URI": uri}
    result = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 2, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and f"the MLflow tracking server {uri} is not reachable" in lines[0], result.stderr
    assert "latentforge tracking-server" in lines[0]
