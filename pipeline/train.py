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
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from models.registry import ModelSpec
from pipeline import inputs, tracking
from pipeline.config import TRAIN_FIELDS, Config
from pipeline.errors import UserError
from serving.files import sha256_file

CODE_PATHS = ("models", "pipeline/train.py", "pipeline/data.py", "pipeline/inputs.py")
GRID_SAMPLES = 64
COSINE_FLOOR = 0.05  # lr_schedule=cosine ends at this fraction of learning_rate


@dataclass
class TrainResult:
    run_id: str
    status: str  # "trained", "resumed" or "reused"
    metrics: dict


def distribution_strategy():
    """MirroredStrategy over every GPU when there are several; the default (one device) otherwise.

    The training steps scale per-replica losses by the global batch, so the same code is right
    under either. (MultiWorkerMirroredStrategy works the same way once TF_CONFIG is set.)
    """
    import tensorflow as tf

    if len(tf.config.list_logical_devices("GPU")) > 1:
        return tf.distribute.MirroredStrategy()
    return tf.distribute.get_strategy()


def train_key(config: Config) -> str:
    return f"{config.key(*TRAIN_FIELDS)}-{tracking.code_version(*CODE_PATHS)}"


def _callbacks(model, config: Config, exported):
    """The stage's callbacks; ``exported`` is the family's generator export (network, signature)."""
    import keras
    import mlflow

    from models import signature
    from serving import images

    feed = signature.default_feed(exported.signature.inputs, GRID_SAMPLES, config.seed)
    label = exported.signature.input("label")
    if label is not None:  # each row of the grid: one class
        feed[label.name] = (np.arange(GRID_SAMPLES) // 8 % label.classes).astype(np.int32)

    class TrackEpoch(keras.callbacks.Callback):
        """Per epoch: metrics, a sample grid from fixed latents, and a checkpoint."""

        def on_epoch_end(self, epoch, logs=None):
            step = epoch + 1
            metrics = {k: float(v) for k, v in (logs or {}).items()}
            optimizer = getattr(model, "optimizer", None) or getattr(model, "g_optimizer", None)
            if optimizer is not None:  # the rate the next step would use (moves under lr_schedule=cosine)
                metrics["learning_rate"] = float(keras.ops.convert_to_numpy(optimizer.learning_rate))
            mlflow.log_metrics(metrics, step=step)
            generated = signature.call(exported.network, exported.signature, feed)
            picture = images.grid(images.to_uint8(np.asarray(generated), config.family.value_range), columns=8)
            mlflow.log_image(picture, key="samples", step=step)
            mlflow.log_image(picture, artifact_file=f"samples/epoch_{step:03d}.png")
            with tempfile.TemporaryDirectory() as tmp:
                weights, state = Path(tmp) / "last.weights.h5", Path(tmp) / "state.json"
                model.save_weights(str(weights))
                state.write_text(json.dumps({"epoch": step, "weights_sha256": sha256_file(weights)}))
                # Weights first, then the state naming them: a crash in between leaves a
                # state whose checksum does not match, and resuming then starts over.
                mlflow.log_artifact(str(weights), "checkpoints")
                mlflow.log_artifact(str(state), "checkpoints")

    return [TrackEpoch()]


def _restore(model, run_id: str) -> int:
    """Load the last checkpoint of ``run_id`` into model; returns the epochs it had done (0 if none)."""
    with tempfile.TemporaryDirectory() as tmp:
        try:
            folder = tracking.download(run_id, "checkpoints", tmp)
        except Exception:  # no checkpoint was logged before the run died
            return 0
        state = json.loads((folder / "state.json").read_text())
        weights = folder / "last.weights.h5"
        if not weights.is_file() or sha256_file(weights) != state.get("weights_sha256"):
            print(f"train: the last checkpoint of run {run_id} is incomplete; training from the start")
            return 0
        model.build_optimizers()
        model.load_weights(str(weights))
        return int(state["epoch"])


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


def run_train(config: Config, data_run_id: str | None = None, callbacks=()) -> TrainResult:
    """Train ``config.model`` (resolved config) on the dataset of ``data_run_id``.

    Args:
        config: the run's config (model defaults are filled in here).
        data_run_id: the data run to read the dataset from; None = describe ``config.dataset``.
        callbacks: extra Keras callbacks, run after the stage's own (which log and checkpoint).
    """
    import mlflow

    config = config.resolved()
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
    key = train_key(config)
    previous = tracking.find_runs("train", key)
    finished = [r for r in previous if r.info.status == "FINISHED"]
    if finished:
        run = finished[0]
        print(f"train: reusing finished run {run.info.run_id} (same config and code)")
        return TrainResult(run.info.run_id, "reused", dict(run.data.metrics))
    resume_id = previous[0].info.run_id if previous else None
    family = config.family
    strategy = distribution_strategy()
    try:
        config.options.check_replicas(strategy.num_replicas_in_sync)
    except ValueError as error:
        raise UserError(str(error)) from None
    if family.labels and not spec.class_names:
        raise UserError(f"{config.model} needs class labels and {spec.name} has none; pick a labelled dataset")
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
    if config.precision == "mixed_bfloat16":
        from pipeline.runtime_setup import slow_bfloat16_warning

        if warning := slow_bfloat16_warning():
            print(warning, file=sys.stderr)
    with strategy.scope(), precision_policy(config.precision):
        model = family.build(model_spec, learning_rate)
    validation = None
    if family.validates:  # the test split's loss each epoch (test_step changes no weight)
        import tensorflow as tf

        validation = tf.data.Dataset.from_tensor_slices(test_images(spec, family.binarized)).batch(500)
    params = {
        **config.to_dict(),
        "data_run_id": data_run_id or "",
        "replicas": strategy.num_replicas_in_sync,
        **spec.as_params(),
    }
    tags = {tracking.KEY_TAG: key, "code_version": tracking.code_version(*CODE_PATHS)}
    with tracking.stage_run("train", params, run_id=resume_id, tags=tags) as run:
        with strategy.scope():
            start_epoch = _restore(model, resume_id) if resume_id else 0
        status = "resumed" if start_epoch else "trained"
        if start_epoch:
            print(f"train: resuming run {resume_id} after epoch {start_epoch}")
        print(
            f"train: {config.model} on {spec.name}, {config.epochs} epochs of {steps_per_epoch} steps "
            f"at batch {config.batch_size} (run {run.info.run_id})",
            flush=True,
        )
        history = model.fit(
            dataset,
            epochs=config.epochs,
            initial_epoch=start_epoch,
            steps_per_epoch=steps,
            validation_data=validation,
            shuffle=False,  # the tf.data pipeline shuffles, seeded
            callbacks=[*_callbacks(model, config, family.exports(model, model_spec)[0]), *callbacks],
            verbose=1 if sys.stdout.isatty() else 2,
        )
        with tempfile.TemporaryDirectory() as tmp:
            model.save_weights(str(Path(tmp) / "model.weights.h5"))
            (Path(tmp) / "model.json").write_text(json.dumps(model_spec.to_dict(), indent=2))
            mlflow.log_artifacts(tmp, "model")
        metrics = {k: float(v[-1]) for k, v in history.history.items()} if history.history else {}
    return TrainResult(run.info.run_id, status, metrics)


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
