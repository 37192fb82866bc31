"""Train stage: fit one model family on the prepared dataset, tracked in MLflow.

Reads: the data run (dataset name and TFDS dir) and the config.
Writes (MLflow run ``train``): every config field as a param; per-epoch metrics; a sample
grid per epoch from fixed latents (``samples/epoch_NNN.png`` via ``mlflow.log_image``);
``checkpoints/`` after every epoch (weights + optimizer state + epoch); ``model/`` at the
end (final weights and ``model.json`` with what is needed to rebuild the networks).

A run with the same training fields and code version is reused when it finished, and
resumed from its last checkpoint when it did not (killed, crashed).
"""

from __future__ import annotations

import contextlib
import json
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from models.registry import ModelSpec
from pipeline import inputs, quiet, tracking
from pipeline.config import TRAIN_FIELDS, Config
from pipeline.errors import UserError
from serving.files import sha256_file

CODE_PATHS = ("models", "pipeline/train.py", "pipeline/data.py", "pipeline/inputs.py")
GRID_SAMPLES = 64
COSINE_FLOOR = 0.05  # lr_schedule=cosine ends at this fraction of learning_rate


@dataclass
class TrainResult:
    run_id: str
    status: str  # "trained", "resumed", "reused", or "worker" (a non-chief member of a cluster)
    metrics: dict


@dataclass
class Job:
    """What every worker needs to train (picklable: Ray sends it to its workers)."""

    config: Config  # resolved
    spec: object  # inputs.DatasetSpec
    run_id: str  # the MLflow run the chief logs into ("" on the other workers)
    resume_id: str | None  # an earlier run of the same key whose last checkpoint to start from
    tracking_uri: str = ""


def train_key(config: Config) -> str:
    return f"{config.key(*TRAIN_FIELDS)}-{tracking.code_version(*CODE_PATHS)}"


def write_checkpoint(model, folder: Path, epoch: int) -> None:
    """``last.weights.h5`` (weights + optimizer state + counters) and ``state.json`` naming it."""
    weights, state = folder / "last.weights.h5", folder / "state.json"
    model.save_weights(str(weights))
    state.write_text(json.dumps({"epoch": epoch, "weights_sha256": sha256_file(weights)}))


def _callbacks(model, config: Config, exported, run_id: str):
    """The chief's callbacks, logging into ``run_id``; ``exported`` is the family's generator
    export (network, signature)."""
    import keras
    from mlflow import MlflowClient
    from mlflow.entities import Metric

    from models import signature
    from serving import images

    client = MlflowClient()
    feed = signature.default_feed(exported.signature.inputs, GRID_SAMPLES, config.seed)
    label = exported.signature.input("label")
    if label is not None:  # each row of the grid: one class
        feed[label.name] = (np.arange(GRID_SAMPLES) // 8 % label.classes).astype(np.int32)

    class TrackEpoch(keras.callbacks.Callback):
        """Per epoch: metrics, a sample grid from fixed latents, and a checkpoint."""

        def on_epoch_end(self, epoch, logs=None):
            step = epoch + 1
            metrics = {k: _number(v) for k, v in (logs or {}).items()}
            optimizer = getattr(model, "optimizer", None) or getattr(model, "g_optimizer", None)
            if optimizer is not None:  # the rate the next step would use (moves under lr_schedule=cosine)
                metrics["learning_rate"] = float(keras.ops.convert_to_numpy(optimizer.learning_rate))
            now = int(time.time() * 1000)
            client.log_batch(run_id, metrics=[Metric(k, v, now, step) for k, v in metrics.items()])
            generated = signature.call(exported.network, exported.signature, feed)
            picture = images.grid(images.to_uint8(np.asarray(generated), config.family.value_range), columns=8)
            client.log_image(run_id, picture, key="samples", step=step)
            client.log_image(run_id, picture, artifact_file=f"samples/epoch_{step:03d}.png")
            with tempfile.TemporaryDirectory() as tmp:
                write_checkpoint(model, Path(tmp), step)
                # Weights first, then the state naming them: a crash in between leaves a
                # state whose checksum does not match, and resuming then starts over.
                client.log_artifact(run_id, str(Path(tmp) / "last.weights.h5"), "checkpoints")
                client.log_artifact(run_id, str(Path(tmp) / "state.json"), "checkpoints")

    return [TrackEpoch()]


def _number(value) -> float:
    """A log value as a float (a step's logs are scalars, or of shape (1,) across workers)."""
    return float(np.asarray(value).reshape(-1)[0])


def _checkpoint_epoch(folder: Path | None) -> int:
    """The epoch of the complete checkpoint in ``folder`` (0: none, or its weights do not match
    the checksum in its state, as after a crash between the two writes)."""
    if folder is None or not (folder / "state.json").is_file():
        return 0
    state = json.loads((folder / "state.json").read_text())
    weights = folder / "last.weights.h5"
    if not weights.is_file() or sha256_file(weights) != state.get("weights_sha256"):
        print(f"train: the checkpoint in {folder} is incomplete; not starting from it")
        return 0
    return int(state["epoch"])


def _restore(model, run_id: str | None, folder: Path | None = None) -> int:
    """Load the latest complete checkpoint, of ``folder`` (Ray's) or of the MLflow run ``run_id``,
    into model; returns the epochs it had done (0 when there is none)."""
    with tempfile.TemporaryDirectory() as tmp:
        logged = None
        if run_id:
            with contextlib.suppress(Exception):  # no checkpoint was logged before the run died
                logged = tracking.download(run_id, "checkpoints", tmp)
        epoch, best = max((_checkpoint_epoch(f), i, f) for i, f in enumerate((folder, logged)))[::2]
        if epoch:
            model.load_weights(str(best / "last.weights.h5"))
        return epoch


@contextlib.contextmanager
def precision_policy(name: str):
    """Keras's global dtype policy set to ``name`` while building the model, then back.

    Layers keep the policy they were built with, so training runs in ``name``; the weights are
    float32 either way, and ``load_trained`` rebuilds a float32 model (what export and evaluate use).
    """
    import keras

    previous = keras.mixed_precision.global_policy().name
    keras.mixed_precision.set_global_policy(name)
    try:
        yield
    finally:
        keras.mixed_precision.set_global_policy(previous)


def _learning_rate(rate: float, schedule: str, total_steps: int):
    """The optimizer's learning rate: ``rate``, or a cosine schedule over ``total_steps``."""
    if schedule == "constant":
        return rate
    import keras

    return keras.optimizers.schedules.CosineDecay(rate, decay_steps=max(1, total_steps), alpha=COSINE_FLOOR)


def model_spec_for(config: Config, spec) -> ModelSpec:
    """What ``model.json`` records for ``config`` (resolved) trained on the dataset ``spec``."""
    family = config.family
    return ModelSpec(
        model=config.model,
        latent_dim=config.latent_dim,
        image_shape=tuple(spec.image_shape),
        value_range=family.value_range,
        dataset=spec.name,
        dataset_version=spec.version,
        class_names=tuple(spec.class_names),
        options=config.options.to_dict(),
        learning_rate=config.learning_rate,
        width=config.width,
        lr_schedule=config.lr_schedule,
        precision=config.precision,
        seed=config.seed,
        binarized=family.binarized,
        network_version=family.network_version,
    )


def _state_variables(model) -> list:
    """Everything a checkpoint holds: the model's variables (weights, counters, seed states) and
    its optimizers' (built here, so that a checkpoint can load into them)."""
    if hasattr(model, "build_optimizers"):
        model.build_optimizers()
    elif not model.optimizer.built:
        model.optimizer.build(model.trainable_variables)
    optimizers = [getattr(model, name, None) for name in ("optimizer", "d_optimizer", "g_optimizer")]
    seen, out = set(), []
    for variable in [*model.variables, *(v for o in optimizers if o is not None for v in o.variables)]:
        if id(variable) not in seen:
            seen.add(id(variable))
            out.append(variable)
    return out


def check_replicas(config: Config, replicas: int) -> None:
    """A one-line error when ``config`` cannot train on ``replicas`` replicas."""
    try:
        config.options.check_replicas(replicas)
    except ValueError as error:
        raise UserError(str(error)) from None
    if config.batch_size % replicas:
        raise UserError(
            f"batch_size {config.batch_size} does not split over {replicas} replicas; "
            f"pass a batch_size divisible by {replicas}"
        )


def fit_model(job: Job, callbacks=(), restore_from: Path | None = None, epoch_end=None) -> tuple[dict, int]:
    """Train ``job`` in this process, alone or as one worker of a cluster (``pipeline/distributed.py``).

    The chief restores the latest checkpoint (of ``restore_from``, Ray's folder, or the last one
    logged to the MLflow run), logs into ``job.run_id`` and writes the model; every worker starts from the
    chief's state. ``epoch_end(model, epoch, logs)`` runs on every worker after each epoch (Ray's
    report). Returns (the last epoch's metrics, the epoch training started from)."""
    from mlflow import MlflowClient

    from pipeline import distributed

    config, spec = job.config, job.spec
    me, strategy = distributed.member(), distributed.strategy()
    check_replicas(config, strategy.num_replicas_in_sync)
    family = config.family
    steps = config.steps_per_epoch or None
    dataset = inputs.training_dataset(
        spec,
        batch_size=config.batch_size,
        value_range=family.value_range,
        seed=config.seed,
        examples=config.train_examples,
        repeat=steps is not None,
        binarize=family.binarized,
        labels=family.labels,
    )
    examples = min(config.train_examples or spec.splits["train"], spec.splits["train"])
    steps_per_epoch = steps or examples // config.batch_size
    learning_rate = _learning_rate(config.learning_rate, config.lr_schedule, config.epochs * steps_per_epoch)
    model_spec = model_spec_for(config, spec)
    with strategy.scope(), precision_policy(config.precision):
        model = family.build(model_spec, learning_rate)
    validation = None
    if family.validates:  # the test split's loss each epoch (test_step changes no weight)
        import tensorflow as tf

        validation = tf.data.Dataset.from_tensor_slices(test_images(spec, family.binarized)).batch(500)
    if me.workers > 1:
        dataset = distributed.shard_by_data(dataset)
        if validation is not None:
            validation = distributed.shard_by_data(validation)
    start_epoch = 0
    with strategy.scope():
        variables = _state_variables(model)
    if me.chief:  # outside the scope: Keras's load_weights makes throwaway optimizers, which must not
        # be mirrored variables (their creation is a collective the other workers would not join)
        start_epoch = _restore(model, job.run_id or job.resume_id, restore_from)
    start_epoch = distributed.broadcast_from_chief(variables, {"epoch": start_epoch})["epoch"]
    logging = me.chief and bool(job.run_id)
    if start_epoch and me.chief:
        print(f"train: resuming after epoch {start_epoch}", flush=True)
        if logging:
            MlflowClient().log_metric(job.run_id, "resumed_from_epoch", start_epoch, step=start_epoch)
    ours = _callbacks(model, config, family.exports(model, model_spec)[0], job.run_id) if logging else []
    if epoch_end is not None:
        import keras

        class EpochEnd(keras.callbacks.Callback):
            def on_epoch_end(self, epoch, logs=None):
                epoch_end(model, epoch + 1, {k: _number(v) for k, v in (logs or {}).items()})

        ours.append(EpochEnd())
    if me.chief:
        print(
            f"train: {config.model} on {spec.name}, {config.epochs} epochs of {steps_per_epoch} steps at batch "
            f"{config.batch_size} on {strategy.num_replicas_in_sync} replica(s), {me.workers} worker(s)"
            + (f" (run {job.run_id})" if job.run_id else ""),
            flush=True,
        )
    with quiet.training_console():  # without TensorFlow's known-harmless remapper line
        history = model.fit(
            dataset,
            epochs=config.epochs,
            initial_epoch=start_epoch,
            steps_per_epoch=steps,
            validation_data=validation,
            shuffle=False,  # the tf.data pipeline shuffles, seeded
            callbacks=[*ours, *callbacks],
            verbose=(1 if sys.stdout.isatty() else 2) if me.chief else 0,
        )
    if logging:
        with tempfile.TemporaryDirectory() as tmp:
            model.save_weights(str(Path(tmp) / "model.weights.h5"))
            (Path(tmp) / "model.json").write_text(json.dumps(model_spec.to_dict(), indent=2))
            MlflowClient().log_artifacts(job.run_id, tmp, "model")
    return {k: _number(v[-1]) for k, v in history.history.items()}, start_epoch


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
    if me.workers > 1 and config.workers > 1:
        raise UserError(
            "TF_CONFIG already describes a cluster and workers > 1 would launch another; "
            "pass workers=1 under TF_CONFIG, or unset TF_CONFIG"
        )
    spec = (
        inputs.spec_from_run(data_run_id, config.tfds_dir)
        if data_run_id
        else inputs.describe(config.dataset, config.tfds_dir)
    )
    if spec.name != config.dataset:
        raise UserError(
            f"data run {data_run_id} prepared '{spec.name}' but the config says dataset={config.dataset}; "
            f"pass --dataset {spec.name} or the data run of {config.dataset}"
        )
    if config.family.labels and not spec.class_names:
        raise UserError(f"{config.model} needs class labels and {spec.name} has none; pick a labelled dataset")
    if config.workers > 1:
        from pipeline import ray_launch

        check_replicas(config, config.workers)
        ray_launch.check_available()
    key = train_key(config)
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


def test_images(spec, binarized: bool):
    """The test split in [0, 1]: binarized once (seed 0) for a Bernoulli family, else grey levels."""
    return inputs.binarized_test_images(spec) if binarized else inputs.grey_test_images(spec)


def load_trained(train_run_id: str):
    """(training model with trained weights, its ``ModelSpec``) of a finished train run."""
    from models import registry

    run = tracking.get_run(train_run_id, "train")
    with tempfile.TemporaryDirectory() as tmp:
        folder = tracking.download(run.info.run_id, "model", tmp)
        spec = ModelSpec.from_dict(json.loads((folder / "model.json").read_text()))
        try:
            family = registry.get(spec.model)
        except ValueError as error:
            raise UserError(f"train run {train_run_id}: {error}") from None
        # the same kind of learning rate as in training, so the optimizer's variables line up
        model = family.build(spec, _learning_rate(spec.learning_rate, spec.lr_schedule, 1))
        model.load_weights(str(folder / "model.weights.h5"))
    return model, spec
