"""File helpers shared by every part (numpy-free, TensorFlow-free)."""

from __future__ import annotations

import hashlib
from pathlib import Path

DEFAULT_TRACKING_URI = "sqlite:///mlflow.db"  # MLflow's store unless MLFLOW_TRACKING_URI says otherwise


def sha256_file(path: str | Path, opener=open) -> str:
    """sha256 of a file's bytes (or, with ``opener=gzip.open``, of its decompressed content)."""
    digest = hashlib.sha256()
    with opener(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
