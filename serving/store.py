"""The MLflow tracking store as every part reaches it: ``MLFLOW_TRACKING_URI`` or the default
SQLite file, and a one-line diagnosis when a tracking server does not answer."""

from __future__ import annotations

DEFAULT_TRACKING_URI = "sqlite:///mlflow.db"  # MLflow's store unless MLFLOW_TRACKING_URI says otherwise


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
