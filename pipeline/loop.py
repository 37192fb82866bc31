"""The training loop: one ``Job`` trained in this process, alone or as one worker of a cluster.

The train stage (``pipeline/train.py``) and a Ray worker (``pipeline/ray_launch.py``) both call
``fit_model``. It builds the family's training model, restores the latest checkpoint, runs Keras's
``fit`` with the chief's callbacks (per-epoch metrics, a sample grid from fixed latents and a
checkpoint, all logged into the job's MLflow run) and writes ``model/`` (final weights and
``model.json``) at the end. ``load_trained`` reads ``model/`` back for evaluate and export.
"""

from __future__ import annotations

import contextlib
import json
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from contract.files import first_line, sha256_file
from models.registry import ModelSpec
from pipeline import inputs, tracking
from pipeline.config import Config
from pipeline.errors import UserError

GRID_SAMPLES = 64
COSINE_FLOOR = 0.05  # lr_schedule=cosine ends at this fraction of learning_rate


@dataclass
class Job:
    """What every worker needs to train (picklable: Ray sends it to its workers)."""

    config: Config  # resolved
    spec: Any  # inputs.DatasetSpec
    run_id: str  # the MLflow run the chief logs into ("" on the other workers)
    resume_id: str | None  # an earlier run of the same key whose last checkpoint to start from
    tracking_uri: str = ""


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

    from contract import images, signature

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
        if epoch and best is not None:  # a checkpoint of epoch > 0 is in a folder
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


def learning_rate_of(config: Config, spec):
    """``config``'s learning rate as training on ``spec`` uses it: a number, or its schedule over
    the run's steps (``epochs`` of ``steps_per_epoch``, or of one pass over the training images)."""
    examples = inputs.training_examples(spec, config.train_examples, config.xflip)
    steps_per_epoch = config.steps_per_epoch or examples // config.batch_size
    return _learning_rate(config.learning_rate, config.lr_schedule, config.epochs * steps_per_epoch)


def model_spec_for(config: Config, spec) -> ModelSpec:
    """What ``model.json`` records for ``config`` (resolved) trained on the dataset ``spec``."""
    from models import registry

    return registry.model_spec(
        config.model,
        image_shape=spec.image_shape,
        latent_dim=config.latent_dim,
        learning_rate=config.learning_rate,
        seed=config.seed,
        options=config.options.to_dict(),
        width=config.width,
        dataset=spec.name,
        dataset_version=spec.version,
        class_names=spec.class_names,
        lr_schedule=config.lr_schedule,
        precision=config.precision,
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
    from pipeline import distributed

    config, spec = job.config, job.spec
    me, strategy = distributed.member(), distributed.strategy()
    check_replicas(config, strategy.num_replicas_in_sync)
    dataset, validation, steps_per_epoch = _datasets(config, spec, sharded=me.workers > 1)
    model_spec = model_spec_for(config, spec)
    learning_rate = learning_rate_of(config, spec)
    with strategy.scope(), precision_policy(config.precision):
        model = config.family.build(model_spec, learning_rate)
    start_epoch = _start_epoch(model, job, strategy, restore_from)
    logging = me.chief and bool(job.run_id)
    ours = _callbacks(model, config, config.family.exports(model, model_spec)[0], job.run_id) if logging else []
    if epoch_end is not None:
        ours.append(_epoch_end_callback(model, epoch_end))
    if me.chief:
        print(
            f"train: {config.model} on {spec.name}, {config.epochs} epochs of {steps_per_epoch} steps at batch "
            f"{config.batch_size} on {strategy.num_replicas_in_sync} replica(s), {me.workers} worker(s)"
            + (f" (run {job.run_id})" if job.run_id else ""),
            flush=True,
        )
    history = model.fit(
        dataset,
        epochs=config.epochs,
        initial_epoch=start_epoch,
        steps_per_epoch=config.steps_per_epoch or None,
        validation_data=validation,
        shuffle=False,  # the tf.data pipeline shuffles, seeded
        callbacks=[*ours, *callbacks],
        verbose=(1 if sys.stdout.isatty() else 2) if me.chief else 0,
    )
    if logging:
        _log_model(model, model_spec, job.run_id)
    return {k: _number(v[-1]) for k, v in history.history.items()}, start_epoch


def _datasets(config: Config, spec, sharded: bool):
    """(training dataset, validation dataset or None, steps per epoch) of ``config`` on ``spec``."""
    from pipeline import distributed

    family = config.family
    binarized = family.is_binarized(config.options.resolved(), spec.image_shape)
    dataset = inputs.training_dataset(
        spec,
        batch_size=config.batch_size,
        value_range=family.value_range,
        seed=config.seed,
        examples=config.train_examples,
        repeat=bool(config.steps_per_epoch),
        binarize=binarized,
        labels=family.labels,
        xflip=config.xflip,
    )
    validation = None
    if family.validates:  # the test split's loss each epoch (test_step changes no weight)
        import tensorflow as tf

        validation = tf.data.Dataset.from_tensor_slices(inputs.test_images(spec, binarized)).batch(500)
    if sharded:
        dataset = distributed.shard_by_data(dataset)
        validation = None if validation is None else distributed.shard_by_data(validation)
    examples = inputs.training_examples(spec, config.train_examples, config.xflip)
    return dataset, validation, config.steps_per_epoch or examples // config.batch_size  # as learning_rate_of


def _start_epoch(model, job: Job, strategy, restore_from: Path | None) -> int:
    """The epoch training starts after: the chief restores the latest checkpoint, every worker
    takes the chief's weights and epoch."""
    from mlflow import MlflowClient

    from pipeline import distributed

    me = distributed.member()
    with strategy.scope():
        variables = _state_variables(model)
    start_epoch = 0
    if me.chief:  # outside the scope: Keras's load_weights makes throwaway optimizers, which must not
        # be mirrored variables (their creation is a collective the other workers would not join)
        start_epoch = _restore(model, job.run_id or job.resume_id, restore_from)
    start_epoch = distributed.broadcast_from_chief(variables, {"epoch": start_epoch})["epoch"]
    if start_epoch and me.chief:
        print(f"train: resuming after epoch {start_epoch}", flush=True)
        if job.run_id:
            MlflowClient().log_metric(job.run_id, "resumed_from_epoch", start_epoch, step=start_epoch)
    return start_epoch


def _epoch_end_callback(model, epoch_end):
    """A Keras callback calling ``epoch_end(model, epoch, logs)`` after each epoch (1-based)."""
    import keras

    class EpochEnd(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            epoch_end(model, epoch + 1, {k: _number(v) for k, v in (logs or {}).items()})

    return EpochEnd()


def _log_model(model, model_spec: ModelSpec, run_id: str) -> None:
    """``model/`` of the run: the final weights and ``model.json``."""
    from mlflow import MlflowClient

    with tempfile.TemporaryDirectory() as tmp:
        model.save_weights(str(Path(tmp) / "model.weights.h5"))
        model_spec.write(Path(tmp))
        MlflowClient().log_artifacts(run_id, tmp, "model")


def load_trained(train_run_id: str):
    """(training model with trained weights, its ``ModelSpec``) of a finished train run."""
    from models import registry

    run = tracking.get_run(train_run_id, "train")
    with tempfile.TemporaryDirectory() as tmp:
        folder = tracking.download(run.info.run_id, "model", tmp)
        try:  # an older latentforge's model.json or layout, or a family this one does not know
            spec = ModelSpec.read(folder)
            family = registry.get(spec.model)
            # the same kind of learning rate as in training, so the optimizer's variables line up
            model = family.build(spec, _learning_rate(spec.learning_rate, spec.lr_schedule, 1))
        except ValueError as error:
            raise UserError(f"train run {train_run_id}: {error}") from None
        try:
            model.load_weights(str(folder / "model.weights.h5"))
        except ValueError as error:  # weights of another layout than its model.json names
            raise UserError(
                f"train run {train_run_id}: its weights do not fit this latentforge's {spec.model} "
                f"({first_line(error)}); retrain it: latentforge train --model {spec.model}"
            ) from None
    return model, spec
