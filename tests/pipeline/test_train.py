import contextlib
import hashlib

import keras
import mlflow
import pytest
from mlflow import MlflowClient

from pipeline import data, inputs, loop, train
from tests.conftest import tiny_config

pytestmark = pytest.mark.slow  # train stages on the real dataset and store


class StopAfterFirstEpoch(keras.callbacks.Callback):
    """Simulates a killed run: raises after the stage has checkpointed epoch 1."""

    def on_epoch_end(self, epoch, logs=None):
        if epoch == 0:
            raise KeyboardInterrupt


def killed_after_first_epoch(config):
    """(data run id, the train run) of a train stage killed once it checkpointed epoch 1."""
    data_run, _ = data.run_data(config)
    with contextlib.suppress(KeyboardInterrupt):
        train.run_train(config, data_run, callbacks=[StopAfterFirstEpoch()])
    while mlflow.active_run():
        mlflow.end_run("KILLED")
    return data_run, train.tracking.find_runs("train", train.train_key(config.resolved()))[0]


def test_killed_run_resumes_from_its_checkpoint_and_finished_run_is_reused(store, tfds_dir):
    config = tiny_config(tfds_dir, model="vae", epochs=3, lr_schedule="cosine")
    data_run, killed = killed_after_first_epoch(config)
    assert killed.info.status in ("KILLED", "FAILED")

    resumed = train.run_train(config, data_run)
    assert resumed.status == "resumed" and resumed.run_id == killed.info.run_id
    history = MlflowClient().get_metric_history(resumed.run_id, "loss")
    assert sorted(m.step for m in history) == [1, 2, 3]  # epoch 1 from before, 2-3 after resuming
    # the cosine schedule went on where it stopped (the optimizer's step count is checkpointed)
    rates = [
        m.value
        for m in sorted(MlflowClient().get_metric_history(resumed.run_id, "learning_rate"), key=lambda m: m.step)
    ]
    lr = config.resolved().learning_rate
    assert lr > rates[0] > rates[1] > rates[2]
    assert rates[2] == pytest.approx(loop.COSINE_FLOOR * lr, rel=1e-4)  # the schedule's end after epoch 3
    assert mlflow.get_run(resumed.run_id).info.status == "FINISHED"

    again = train.run_train(config, data_run)
    assert again.status == "reused" and again.run_id == resumed.run_id


def test_train_run_logs_params_metrics_grids_and_model(store, tfds_dir, monkeypatch):
    monkeypatch.setenv("LATENTFORGE_SYSTEM_METRICS_S", "1")
    config = tiny_config(tfds_dir, epochs=2)
    result = train.run_train(config, data.run_data(config)[0])
    run = mlflow.get_run(result.run_id)
    for field, value in config.resolved().to_dict().items():
        assert run.data.params[field] == str(value)
    assert {"d_loss", "g_loss", "d_real", "d_fake"} <= set(run.data.metrics)
    names = {a.path for a in MlflowClient().list_artifacts(result.run_id, "samples")}
    assert names == {"samples/epoch_001.png", "samples/epoch_002.png"}
    model, description = loop.load_trained(result.run_id)
    assert description.latent_dim == 100 and description.value_range == "tanh"
    # lineage: the data it read, as MLflow's dataset input
    (used,) = run.inputs.dataset_inputs
    tags = {t.key: t.value for t in used.tags}
    assert used.dataset.name == "fashion_mnist:3.0.1" and tags["mlflow.data.context"] == "training"
    assert tags["split"] == "train[:256]" and tags["tfds.version"] == "3.0.1"
    files = inputs.split_files(inputs.describe("fashion_mnist", tfds_dir), "train")
    assert [f.name for f in files] == ["fashion_mnist-train.tfrecord-00000-of-00001"]
    assert tags["files_sha256"] == hashlib.sha256(files[0].name.encode() + files[0].read_bytes()).hexdigest()
    assert used.dataset.digest == tags["files_sha256"][:16]
    # system metrics of this process, under its node id
    assert any(key.startswith("system/chief/cpu_utilization") for key in run.data.metrics)


class Observe(keras.callbacks.Callback):
    """Records the ProGAN's state when ``fit`` begins (after the stage restored a checkpoint)."""

    def on_train_begin(self, logs=None):
        model = self.model
        self.state = {
            "images_seen": float(model.images_seen.numpy()),
            "level": model.level_at(float(model.images_seen.numpy())),
            "alpha": model.alpha,
            "d_steps": int(model.d_optimizer.iterations.numpy()),
            "g_steps": int(model.g_optimizer.iterations.numpy()),
            "ema": [w.numpy().copy() for w in model.ema_generator.weights],
            "d_slots": [v.numpy().copy() for v in model.d_optimizer.variables],
        }


def test_killed_progan_resumes_in_the_same_phase_at_the_same_alpha(store, tfds_dir, tmp_path):
    import numpy as np

    from models import registry

    # 3 steps of 32 images per epoch, phases of 64 images: 7x7 [0, 64), fade-in to 14x14 [64, 128),
    # 14x14 [128, 192), fade-in to 28x28 [192, 256), 28x28 from 256. Killed after epoch 1: 96
    # images seen, half-way through the first fade-in.
    config = tiny_config(tfds_dir, model="progan", width=8, phase_kimg=0.064, epochs=3)
    data_run, killed = killed_after_first_epoch(config)
    saved = train.tracking.download(killed.info.run_id, "checkpoints", str(tmp_path / "checkpoint"))
    spec = registry.model_spec("progan", image_shape=(28, 28, 1), latent_dim=128, learning_rate=1e-3, seed=0, width=8)
    reference = registry.get("progan").build(spec)
    reference.build_optimizers()
    reference.load_weights(str(saved / "last.weights.h5"))

    observe = Observe()
    resumed = train.run_train(config, data_run, callbacks=[observe])
    assert resumed.status == "resumed" and resumed.run_id == killed.info.run_id
    state = observe.state
    assert state["images_seen"] == 96 and state["level"] == 1 and state["alpha"] == pytest.approx(0.5)
    assert state["d_steps"] == 3 and state["g_steps"] == 3  # the optimizers' counters came back ...
    for restored, kept in zip(state["d_slots"], reference.d_optimizer.variables):
        np.testing.assert_array_equal(restored, kept.numpy())  # ... and their moments
    assert any(np.abs(v).sum() > 0 for v in state["d_slots"][2:])
    for restored, kept in zip(state["ema"], reference.ema_generator.weights):
        np.testing.assert_array_equal(restored, kept.numpy())  # the EMA generator as checkpointed

    history = {
        name: [m.value for m in sorted(MlflowClient().get_metric_history(resumed.run_id, name), key=lambda m: m.step)]
        for name in ("level", "alpha")
    }
    # the last step of each epoch began at 64 (fade-in, alpha 0), 160 (14x14), 256 (28x28)
    assert history == {"level": [1.0, 1.0, 2.0], "alpha": [0.0, 1.0, 1.0]}
    model, _ = loop.load_trained(resumed.run_id)
    assert float(model.images_seen.numpy()) == 288 and int(model.g_optimizer.iterations.numpy()) == 9
    assert mlflow.get_run(resumed.run_id).info.status == "FINISHED"


class ObserveAugment(keras.callbacks.Callback):
    """Records ADA's p when ``fit`` begins (after the stage restored a checkpoint)."""

    def on_train_begin(self, logs=None):
        self.p = float(self.model.augment.p.numpy())
        self.steps = float(self.model.augment.steps.numpy())


class StartAt(keras.callbacks.Callback):
    """Sets ADA's p before the first step, then kills the run after epoch 1 (as StopAfterFirstEpoch)."""

    def on_train_begin(self, logs=None):
        self.model.augment.p.assign(0.42)

    def on_epoch_end(self, epoch, logs=None):
        raise KeyboardInterrupt


def test_a_resumed_run_continues_with_its_ada_p(store, tfds_dir):
    # 4 steps of 32 images per epoch; p starts at 0.42 and moves once, after the 4th step, by
    # +-128 / 500 images: the run is killed after epoch 1, and the resumed one starts from that p
    config = tiny_config(tfds_dir, model="dcgan", width=8, steps_per_epoch=4, epochs=2, augment="ada", ada_kimg=0.5)
    data_run, _ = data.run_data(config)
    with contextlib.suppress(KeyboardInterrupt):
        train.run_train(config, data_run, callbacks=[StartAt()])
    while mlflow.active_run():
        mlflow.end_run("KILLED")
    killed = train.tracking.find_runs("train", train.train_key(config.resolved()))[0]
    logged = MlflowClient().get_metric_history(killed.info.run_id, "augment_p")
    assert [m.step for m in logged] == [1] and logged[0].value in (pytest.approx(0.42 + 0.256), pytest.approx(0.164))
    observe = ObserveAugment()
    resumed = train.run_train(config, data_run, callbacks=[observe])
    assert resumed.status == "resumed"
    assert observe.p == pytest.approx(logged[0].value) and observe.steps == 4
