"""Shared fixtures: a prepared Fashion-MNIST (real TFDS, from the local IDX files) and
temporary MLflow stores (real SQLite tracking store and registry)."""

from __future__ import annotations

import os
import re
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
if "LATENTFORGE_CACHE" not in os.environ:  # keep the real-feature cache out of the user's home
    import atexit
    import shutil
    import tempfile

    os.environ["LATENTFORGE_CACHE"] = tempfile.mkdtemp(prefix="latentforge-cache-")
    atexit.register(shutil.rmtree, os.environ["LATENTFORGE_CACHE"], True)  # gone when the tests end
    # ...but not without the onnxruntime-web bin/setup fetched: the browser tests would fetch its
    # tarball again. Copied, so a test that changes it changes only the copy.

    _fetched = Path(os.path.expanduser("~/.cache/latentforge/ort-web"))
    if _fetched.is_dir():
        shutil.copytree(_fetched, Path(os.environ["LATENTFORGE_CACHE"]) / "ort-web")
sys.path.insert(0, str(ROOT))

from pipeline.config import DEFAULT_IDX_DIR, Config  # noqa: E402

# Tiny settings every pipeline test shares: a few steps on a small slice, a quick extractor.
TINY = dict(
    epochs=1,
    steps_per_epoch=3,
    batch_size=32,
    train_examples=256,
    eval_samples=200,
    features_epochs=1,
    features_examples=2000,
    iwae_k=8,
    iwae_examples=200,
)

# Library lines a user's console must not show (pipeline/quiet.py silences them), as regexes.
CHATTER = (
    r"(?i)cuda",  # cudart_stub "Could not find cuda drivers", "failed call to cuInit"
    r"cpu_feature_guard",
    r"absl::InitializeLog",
    r"^[IW]\d{4} \d\d:\d\d",  # any absl C++ INFO or WARNING line
    r"WARNING:absl:",
    r"INFO mlflow",
    r"Downloading artifacts",
    r"Downloading and preparing dataset",
    r"pre-processing before quantization",
    r"tf2onnx",
    r"UserWarning",  # a library's Python warning, e.g. MLflow's about a dataset source
    r"remapper failed",  # TensorFlow's graph optimizer on a GAN's training step (bin/quiet-stderr)
)


def chatter(output: str) -> list[str]:
    """The lines of ``output`` that match CHATTER."""
    return [line for line in output.splitlines() if any(re.search(p, line) for p in CHATTER)]


def through_bin_run_filter(argv: list[str]) -> list[str]:
    """``argv`` run with its stderr through bin/quiet-stderr, as bin/run runs ``mlflow run``."""
    script = 'set -o pipefail; { "$@" 2>&1 1>&3 3>&- | "$QUIET" >&2 3>&-; } 3>&1'
    return ["bash", "-c", script.replace("$QUIET", str(ROOT / "bin" / "quiet-stderr")), "run", *argv]


def quiet_environment(**extra: str) -> dict[str, str]:
    """os.environ without what quiets the libraries (this file sets some of it for the tests,
    pipeline/quiet.py sets it in a process that ran the CLI), plus ``extra``."""
    from pipeline import quiet

    dropped = {*quiet.ENVIRONMENT, quiet.VERBOSE_VARIABLE, "MLFLOW_RUN_ID", "MLFLOW_EXPERIMENT_ID"}
    return {**{k: v for k, v in os.environ.items() if k not in dropped}, **extra}


@pytest.fixture(scope="session")
def tfds_dir(tmp_path_factory) -> str:
    """A TFDS data dir holding fashion_mnist prepared from the verified local IDX files."""
    from pipeline import data

    if not Path(DEFAULT_IDX_DIR, "train-images-idx3-ubyte.gz").is_file():
        pytest.fail(f"Fashion-MNIST IDX files missing in {DEFAULT_IDX_DIR}; run bin/setup")
    folder = str(tmp_path_factory.mktemp("tfds"))
    data.prepare("fashion_mnist", folder, DEFAULT_IDX_DIR)
    return folder


@pytest.fixture(scope="session")
def spec(tfds_dir):
    from pipeline import inputs

    return inputs.describe("fashion_mnist", tfds_dir)


def tiny_config(tfds_dir: str, **overrides) -> Config:
    return Config.from_dict({**TINY, "tfds_dir": tfds_dir, **overrides})


def team_tracking_server(folder: Path):
    """``latentforge tracking-server`` (MLflow on its own PostgreSQL cluster, artifacts proxied over
    HTTP) in ``folder``, on a free port; returns the running ``tracking_server.Server`` (stop it)."""
    import tempfile

    from pipeline import tracking_server
    from tests.serving.conftest import free_port

    folder.chmod(0o755)  # PostgreSQL runs as the user postgres
    for parent in folder.parents:  # pytest's base folder is private to its user
        if parent == Path(tempfile.gettempdir()):
            break
        parent.chmod(parent.stat().st_mode | 0o055)
    return tracking_server.start(folder / "server", port=free_port())


@pytest.fixture()
def store(tmp_path, monkeypatch):
    """A fresh MLflow SQLite tracking store + registry in tmp_path, as the current store."""
    yield from _use_store(f"sqlite:///{tmp_path / 'mlflow.db'}", tmp_path, monkeypatch)


@pytest.fixture(scope="session")
def tiny_extractor_db(tmp_path_factory, spec) -> Path:
    """A SQLite store (file) holding only TINY's Fashion-MNIST feature extractor, trained and
    registered once by the real features stage (``extractor_store`` copies it)."""
    import mlflow

    from pipeline import features, tracking

    folder = tmp_path_factory.mktemp("extractor-store")
    with pytest.MonkeyPatch.context() as patch:  # its artifacts stay in its own folder
        patch.chdir(folder)
        patch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{folder / 'mlflow.db'}")
        patch.delenv("MLFLOW_RUN_ID", raising=False)
        patch.delenv("MLFLOW_EXPERIMENT_ID", raising=False)
        tracking.setup("latentforge-extractor")
        features.get_extractor(spec, 0, TINY["features_epochs"], TINY["features_examples"])
        while mlflow.active_run():
            mlflow.end_run()
    os.environ.pop("MLFLOW_EXPERIMENT_ID", None)
    return folder / "mlflow.db"


@pytest.fixture()
def extractor_store(tmp_path, monkeypatch, tiny_extractor_db):
    """``store``, already holding TINY's Fashion-MNIST feature extractor: for a test whose runs are
    evaluated with it but that tests something else (the features stage trains it once per
    session, not once per test). Its own runs go to its own experiment and folder as in ``store``."""
    import shutil

    shutil.copyfile(tiny_extractor_db, tmp_path / "mlflow.db")
    yield from _use_store(f"sqlite:///{tmp_path / 'mlflow.db'}", tmp_path, monkeypatch)


@pytest.fixture(params=["sqlite", "tracking-server"])
def any_store(request, tmp_path, monkeypatch):
    """The current store: a fresh SQLite file, or a team tracking server on PostgreSQL."""
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    if request.param == "tracking-server":
        server = team_tracking_server(tmp_path)
        request.addfinalizer(server.stop)
        uri = server.uri
    yield from _use_store(uri, tmp_path, monkeypatch)


def _use_store(uri: str, tmp_path: Path, monkeypatch):
    import mlflow

    from pipeline import tracking

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    monkeypatch.delenv("MLFLOW_RUN_ID", raising=False)
    monkeypatch.delenv("MLFLOW_EXPERIMENT_ID", raising=False)
    tracking.setup("latentforge-test")
    yield uri
    while mlflow.active_run():
        mlflow.end_run()
    os.environ.pop("MLFLOW_EXPERIMENT_ID", None)  # mlflow.set_experiment sets it; keep tests apart
