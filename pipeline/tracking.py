"""MLflow plumbing shared by the stages: the store, the experiment, nested stage runs."""

from __future__ import annotations

import contextlib
import hashlib
import os
import warnings
from pathlib import Path

from pipeline.errors import UserError
from serving.store import tracking_server_problem, use_tracking_store

STAGE_TAG = "latentforge.stage"
KEY_TAG = "latentforge.key"
PROTOCOL_TAG = "latentforge.protocol"  # how a primary metric was measured; only equal protocols compare
SOURCE_ROOT = Path(__file__).resolve().parent.parent


def setup(experiment: str) -> str:
    """Point MLflow at MLFLOW_TRACKING_URI (default sqlite:///mlflow.db) and the experiment."""
    import mlflow

    uri = use_tracking_store()
    if problem := tracking_server_problem(uri):
        raise UserError(problem)
    if not os.environ.get("MLFLOW_EXPERIMENT_ID"):  # mlflow run sets this for us
        mlflow.set_experiment(experiment)
    return uri


def code_version(*relative_paths: str) -> str:
    """sha256 (16 hex) over the source files under the given paths: a stage's code version."""
    digest = hashlib.sha256()
    for rel in relative_paths:
        root = SOURCE_ROOT / rel
        files = sorted(root.rglob("*.py")) if root.is_dir() else [root]
        for path in files:
            digest.update(str(path.relative_to(SOURCE_ROOT)).encode())
            digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


@contextlib.contextmanager
def stage_run(stage: str, params: dict, *, run_id: str | None = None, tags: dict | None = None):
    """Start (or continue, with run_id) the MLflow run of one stage.

    Nested under the active run when there is one (the ``main`` parent); params are logged
    on a new run only. Under ``mlflow run -e <stage>`` the run already holds the entry point's
    raw parameters; a resolved value that differs is logged as ``resolved.<name>`` (MLflow
    forbids changing a param). Yields the active ``mlflow.ActiveRun``.
    """
    import mlflow

    nested = mlflow.active_run() is not None
    with mlflow.start_run(run_id=run_id, run_name=None if run_id else stage, nested=nested) as run:
        if run_id is None:
            mlflow.set_tags({STAGE_TAG: stage, **(tags or {})})
            logged = mlflow.get_run(run.info.run_id).data.params
            fresh = {}
            for key, value in params.items():
                value = str(value)
                if key not in logged:
                    fresh[key] = value
                elif logged[key] != value:
                    fresh[f"resolved.{key}"] = value
            mlflow.log_params(fresh)
        yield run


def dataset_of_run(data_run_id: str, tfds_dir: str = ""):
    """The dataset (``inputs.DatasetSpec``) a data run prepared, read from ``tfds_dir`` when
    given (this machine's TFDS dir), else from the dir the data run recorded. An image folder is
    the version that run prepared (its key), not whichever was prepared under the name last."""
    from pipeline import inputs

    run = get_run(data_run_id, "data")
    params = run.data.params
    version = params.get("dataset.version", "") if params.get("dataset.location") else ""
    return inputs.describe(params["dataset.name"], tfds_dir or params["dataset.tfds_dir"], version)


def log_dataset(spec, split: str, context: str, examples: int = 0) -> None:
    """Record on the active run which data it read (``mlflow.log_input``; the MLflow UI lists it
    under the run's datasets): the TFDS name, version and split (sliced to ``examples`` when
    given), the files' sha256 (``inputs.split_digest``; its first 16 hex digits are MLflow's
    digest) and how the source files were verified."""
    import mlflow
    from mlflow.data.dataset_source_registry import resolve_dataset_source
    from mlflow.data.meta_dataset import MetaDataset

    from pipeline import inputs

    files = inputs.split_files(spec, split)
    digest = inputs.split_digest(spec, split)
    sliced = f"{split}[:{examples}]" if examples else split
    folder = files[0].parent if files else Path(spec.tfds_dir)
    with warnings.catch_warnings():  # MLflow registers the file: scheme's source twice and says so
        warnings.filterwarnings("ignore", "The specified dataset source can be interpreted in multiple ways")
        source = resolve_dataset_source(folder.resolve().as_uri())
    # MetaDataset's profile is optional at run time (MLflow's own examples make it like this)
    dataset = MetaDataset(source, name=f"{spec.name}:{spec.version}", digest=digest[:16])  # type: ignore[abstract]
    tags = {
        "tfds.name": spec.name,
        "tfds.version": spec.version,
        "split": sliced,
        "files_sha256": digest,
        "verified": spec.verified,
    }
    mlflow.log_input(dataset, context=context, tags=tags)


@contextlib.contextmanager
def system_metrics(run_id: str, node_id: str):
    """Log this process's CPU, memory (and GPU, where there is one) into ``run_id`` under
    ``system/<node_id>/...`` while the block runs (MLflow's monitor, psutil's numbers), every
    ``LATENTFORGE_SYSTEM_METRICS_S`` seconds (default 10). It only adds metrics: it neither ends
    nor marks the run, so every worker of a cluster can run one."""
    from mlflow.system_metrics.system_metrics_monitor import SystemMetricsMonitor

    interval = float(os.environ.get("LATENTFORGE_SYSTEM_METRICS_S", "10"))
    monitor = SystemMetricsMonitor(run_id, sampling_interval=interval, node_id=node_id)
    monitor.start()
    try:
        yield monitor
    finally:
        monitor.finish()


def find_runs(stage: str, key: str):
    """Runs of ``stage`` with tag KEY_TAG == key in the current experiment, newest first."""
    import mlflow

    experiment = _experiment_id()
    return mlflow.search_runs(
        experiment_ids=[experiment],
        filter_string=f"tags.`{STAGE_TAG}` = '{stage}' and tags.`{KEY_TAG}` = '{key}'",
        order_by=["attributes.start_time DESC"],
        output_format="list",
    )


def _experiment_id() -> str:
    import mlflow

    active = mlflow.active_run()
    if active is not None:
        return active.info.experiment_id
    env = os.environ.get("MLFLOW_EXPERIMENT_ID")
    if env:
        return env
    from mlflow.tracking.fluent import _get_experiment_id

    return _get_experiment_id() or ""


def get_run(run_id: str, stage: str):
    """The run, checked to exist and to be a ``stage`` run (UserError otherwise)."""
    import mlflow
    from mlflow.exceptions import MlflowException

    from pipeline.errors import UserError

    try:
        run = mlflow.get_run(run_id)
    except MlflowException:
        raise UserError(
            f"run '{run_id}' not found in {mlflow.get_tracking_uri()}; pass the id of a {stage} run "
            "(see mlflow ui) or set MLFLOW_TRACKING_URI to the store that has it"
        ) from None
    if run.data.tags.get(STAGE_TAG) != stage:
        raise UserError(
            f"run '{run_id}' is a {run.data.tags.get(STAGE_TAG, 'non-latentforge')} run, "
            f"not a {stage} run; pass the id of a {stage} run"
        )
    if run.info.status != "FINISHED":
        raise UserError(f"{stage} run '{run_id}' has status {run.info.status}; rerun the {stage} stage")
    return run


def download(run_id: str, artifact_path: str, dst: str) -> Path:
    import mlflow

    return Path(mlflow.artifacts.download_artifacts(run_id=run_id, artifact_path=artifact_path, dst_path=dst))


def log_onnx_model(onnx_model, *, name: str, registered_name: str, tags: dict, **kwargs) -> str:
    """Log an ONNX model (one self-contained file, CPU provider), register it, tag the version.

    Returns:
        the new registered version (a string).
    """
    import mlflow
    from mlflow import MlflowClient

    info = mlflow.onnx.log_model(
        onnx_model,
        name=name,
        registered_model_name=registered_name,
        onnx_execution_providers=["CPUExecutionProvider"],
        save_as_external_data=False,  # one file, whose sha256 the model card records
        **kwargs,
    )
    version = str(info.registered_model_version)
    client = MlflowClient()
    for key, value in tags.items():
        client.set_model_version_tag(registered_name, version, key, str(value))
    return version
