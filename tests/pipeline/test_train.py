import contextlib

import keras
import mlflow
import pytest
from mlflow import MlflowClient

from pipeline import data, train
from tests.conftest import tiny_config

pytestmark = pytest.mark.slow  # train stages on the real dataset and store


class StopAfterFirstEpoch(keras.callbacks.Callback):
    """Simulates a killed run: raises after the stage has checkpointed epoch 1."""

    def on_epoch_end(self, epoch, logs=None):
        if epoch == 0:
            raise KeyboardInterrupt


def test_killed_run_resumes_from_its_checkpoint_and_finished_run_is_reused(store, tfds_dir):
    config = tiny_config(tfds_dir, model="vae", epochs=3, lr_schedule="cosine")
    data_run, _ = data.run_data(config)
    with contextlib.suppress(KeyboardInterrupt):
        train.run_train(config, data_run, callbacks=[StopAfterFirstEpoch()])
    while mlflow.active_run():
        mlflow.end_run("KILLED")
    killed = train.tracking.find_runs("train", train.train_key(config.resolved()))[0]
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
    assert rates[2] == pytest.approx(train.COSINE_FLOOR * lr, rel=1e-4)  # the schedule's end after epoch 3
    assert mlflow.get_run(resumed.run_id).info.status == "FINISHED"

    again = train.run_train(config, data_run)
    assert again.status == "reused" and again.run_id == resumed.run_id


def test_train_run_logs_params_metrics_grids_and_model(store, tfds_dir):
    config = tiny_config(tfds_dir, epochs=2)
    result = train.run_train(config, data.run_data(config)[0])
    run = mlflow.get_run(result.run_id)
    for field, value in config.resolved().to_dict().items():
        assert run.data.params[field] == str(value)
    assert {"d_loss", "g_loss", "d_real", "d_fake"} <= set(run.data.metrics)
    names = {a.path for a in MlflowClient().list_artifacts(result.run_id, "samples")}
    assert names == {"samples/epoch_001.png", "samples/epoch_002.png"}
    model, description = train.load_trained(result.run_id)
    assert description.latent_dim == 100 and description.value_range == "tanh"
