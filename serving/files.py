"""File helpers shared by every part (numpy-free, TensorFlow-free)."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

DEFAULT_TRACKING_URI = "sqlite:///mlflow.db"  # MLflow's store unless MLFLOW_TRACKING_URI says otherwise


def sha256_file(path: str | Path, opener=open) -> str:
    """sha256 of a file's bytes (or, with ``opener=gzip.open``, of its decompressed content)."""
    digest = hashlib.sha256()
    with opener(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def first_line(error: BaseException, limit: int = 200) -> str:
    """The first line of ``error``'s message, cut to ``limit`` characters, or the error's type
    name when the message has none: the cause to quote inside a one-line message to a user."""
    lines = str(error).strip().splitlines()
    return lines[0][:limit] if lines else type(error).__name__


def write_atomic(path: str | Path, data: bytes) -> None:
    """Write ``data`` to ``path`` so that a reader sees the old file or the whole new one, never a part."""
    write_atomic_with(path, lambda out: out.write(data))


def write_atomic_with(path: str | Path, write: Callable[[BinaryIO], object]) -> None:
    """Like ``write_atomic``, for content that a callback streams: ``write(file)`` fills
    ``<name>.partial`` beside ``path``, which then replaces ``path``.

    Raises:
        Whatever opening, ``write`` or the replace raises (an OSError for a full disk or a
        read-only folder); the partial file is removed first, so a failed write leaves nothing.
    """
    path = Path(path)
    partial = path.with_name(path.name + ".partial")
    try:
        with open(partial, "wb") as out:
            write(out)
        partial.replace(path)
    except BaseException:  # an interrupted write must not leave a .partial behind either
        partial.unlink(missing_ok=True)
        raise


def tracking_server_problem(uri: str, timeout_s: float = 5.0) -> str:
    """For an http(s) tracking URI, "" when an MLflow server answers its /health there, else a
    one-line error naming the URI, the cause and the fix (MLflow itself would retry for minutes,
    then print a traceback). Other URIs (SQLite, folders): ""."""
    if not uri.startswith(("http://", "https://")):
        return ""
    import requests

    fix = "start it (latentforge tracking-server --dir DIR) or fix MLFLOW_TRACKING_URI"
    try:
        answer = requests.get(f"{uri.rstrip('/')}/health", timeout=timeout_s)
    except requests.RequestException as error:
        reason = type(error).__name__
        if isinstance(error, requests.ConnectionError):
            reason = "connection refused or no route"
        return f"the MLflow tracking server {uri} is not reachable ({reason}); {fix}"
    if answer.status_code != 200:
        return f"{uri} answered HTTP {answer.status_code} at /health: not an MLflow tracking server?; {fix}"
    return ""


def use_tracking_store() -> str:
    """Point MLflow at ``MLFLOW_TRACKING_URI`` (default ``sqlite:///mlflow.db``), without
    artifact-download progress bars; returns the URI."""
    import os

    import mlflow

    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    uri = os.environ.get("MLFLOW_TRACKING_URI") or DEFAULT_TRACKING_URI
    mlflow.set_tracking_uri(uri)
    return uri
