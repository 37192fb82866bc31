"""Shared fixtures: a prepared Fashion-MNIST (real TFDS, from the local IDX files) and
temporary MLflow stores (real SQLite tracking store and registry)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
if "LATENTFORGE_CACHE" not in os.environ:  # keep the real-feature cache out of the user's home
    import tempfile

    os.environ["LATENTFORGE_CACHE"] = tempfile.mkdtemp(prefix="latentforge-cache-")
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


@pytest.fixture()
def store(tmp_path, monkeypatch):
    """A fresh MLflow SQLite tracking store + registry in tmp_path, as the current store."""
    import mlflow

    from pipeline import tracking

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    monkeypatch.delenv("MLFLOW_RUN_ID", raising=False)
    monkeypatch.delenv("MLFLOW_EXPERIMENT_ID", raising=False)
    tracking.setup("latentforge-test")
    yield uri
    while mlflow.active_run():
        mlflow.end_run()
    os.environ.pop("MLFLOW_EXPERIMENT_ID", None)  # mlflow.set_experiment sets it; keep tests apart
