"""Train stage: fit one model family on the prepared dataset, tracked in MLflow.

Reads: the data run (dataset name and TFDS dir) and the config.
Writes (MLflow run ``train``): every config field as a param; and, from the training loop
(``pipeline/loop.py``), per-epoch metrics, a sample grid per epoch from fixed latents
(``samples/epoch_NNN.png`` via ``mlflow.log_image``), ``checkpoints/`` after every epoch
(weights + optimizer state + epoch) and ``model/`` at the end (final weights and
``model.json`` with what is needed to rebuild the networks).

A run with the same training fields and code version is reused when it finished, and
resumed from its last checkpoint when it did not (killed, crashed).
"""

from __future__ import annotations

from dataclasses import dataclass

from pipeline import inputs, tracking
from pipeline.config import FOLDER_FIELDS, TRAIN_FIELDS, Config
from pipeline.errors import UserError
from pipeline.loop import Job, check_replicas, fit_model

CODE_PATHS = ("models", "pipeline/train.py", "pipeline/loop.py", "pipeline/data.py", "pipeline/inputs.py")


@dataclass
class TrainResult:
    run_id: str
    status: str  # "trained", "resumed", "reused", or "worker" (a non-chief member of a cluster)
    metrics: dict


def train_key(config: Config, dataset_version: str = "") -> str:
    """What a finished or interrupted train run must match to be reused or resumed: the config's
    training fields, an image folder's recipe and prepared version (its content), and the code."""
    from pipeline import folders

    names, version = list(TRAIN_FIELDS), ""
    if folders.is_folder(config.dataset):
        names += FOLDER_FIELDS
        version = f"-{dataset_version}"
    if config.xflip:
        names.append("xflip")
    return f"{config.key(*names)}{version}-{tracking.code_version(*CODE_PATHS)}"


def _checked_dataset(config: Config, data_run_id: str | None, cluster_workers: int):
    """The dataset ``config`` trains on, once the config, the data run and the cluster agree
    (one-line UserErrors otherwise)."""
    if cluster_workers > 1 and config.workers > 1:
        raise UserError(
            "TF_CONFIG already describes a cluster and workers > 1 would launch another; "
            "pass workers=1 under TF_CONFIG, or unset TF_CONFIG"
        )
    if config.workers > 1:  # before the dataset, which imports TensorFlow (its load lines come first)
        from pipeline import ray_launch

        check_replicas(config, config.workers)
        ray_launch.check_available()
    spec = (
        tracking.dataset_of_run(data_run_id, config.tfds_dir)
        if data_run_id
        else inputs.describe(config.dataset_id, config.tfds_dir)
    )
    if spec.location:
        _check_recipe(config, spec)
    if spec.name != config.dataset_id:
        raise UserError(
            f"data run {data_run_id} prepared '{spec.name}' but the config says dataset={config.dataset}; "
            f"pass --dataset {spec.name} or the data run of {config.dataset}"
        )
    if config.family.labels and not spec.class_names:
        raise UserError(f"{config.model} needs class labels and {spec.name} has none; pick a labelled dataset")
    height, width, _ = spec.image_shape
    if height != width:
        raise UserError(f"{spec.name} has {height}x{width} images; the models build square ones: prepare it again")
    from pipeline.data import check_side

    check_side(config, height)
    return spec


def _check_recipe(config: Config, spec) -> None:
    """An image folder must have been prepared with the config's recipe (UserError otherwise)."""
    from dataclasses import asdict

    from pipeline import folders

    prepared = folders.load(spec.location).meta
    wanted = asdict(config.recipe())
    if prepared["recipe"] != wanted:
        changed = ", ".join(f"{k}={v}" for k, v in wanted.items() if prepared["recipe"].get(k) != v)
        raise UserError(
            f"image folder '{spec.name}' was prepared with another recipe than {changed}; "
            f"run latentforge data with the same parameters first"
        )


def run_train(config: Config, data_run_id: str | None = None, callbacks=()) -> TrainResult:
    """Train ``config.model`` (resolved config) on the dataset of ``data_run_id``.

    In this process; on ``config.workers`` Ray workers (``pipeline/ray_launch.py``) when that is
    above 1; or as one member of the cluster that ``TF_CONFIG`` describes, where only the chief
    touches MLflow and the others train alongside.

    Args:
        config: the run's config (model defaults are filled in here).
        data_run_id: the data run to read the dataset from; None = describe ``config.dataset``.
        callbacks: extra Keras callbacks (training in this process only), run after the stage's own.
    """
    import mlflow

    from pipeline import distributed

    config = config.resolved()
    me = distributed.member()
    spec = _checked_dataset(config, data_run_id, me.workers)
    key = train_key(config, spec.version)
    previous = tracking.find_runs("train", key) if me.chief else []
    finished = [r for r in previous if r.info.status == "FINISHED"]
    if distributed.broadcast_from_chief([], {"reuse": int(bool(finished))})["reuse"]:
        if not me.chief:
            return TrainResult("", "reused", {})
        run = finished[0]
        print(f"train: reusing finished run {run.info.run_id} (same config and code)")
        return TrainResult(run.info.run_id, "reused", dict(run.data.metrics))
    if not me.chief:  # a worker of a TF_CONFIG cluster: trains beside the chief, logs nothing
        metrics, _ = fit_model(Job(config, spec, "", None))
        return TrainResult("", "worker", metrics)
    resume_id = previous[0].info.run_id if previous else None
    params = {
        **config.to_dict(),
        "data_run_id": data_run_id or "",
        "replicas": config.workers if config.workers > 1 else distributed.strategy().num_replicas_in_sync,
        "cluster_workers": max(config.workers, me.workers),
        **spec.as_params(),
    }
    tags = {tracking.KEY_TAG: key, "code_version": tracking.code_version(*CODE_PATHS)}
    with tracking.stage_run("train", params, run_id=resume_id, tags=tags) as run:
        if resume_id is None:
            tracking.log_dataset(spec, "train", "training", config.train_examples)
        job = Job(config, spec, run.info.run_id, resume_id, mlflow.get_tracking_uri())
        if config.workers > 1:
            from pipeline import ray_launch

            metrics, start_epoch = ray_launch.fit(job)
        else:
            with tracking.system_metrics(run.info.run_id, me.node_id):
                metrics, start_epoch = fit_model(job, callbacks)
    return TrainResult(run.info.run_id, "resumed" if start_epoch else "trained", metrics)
