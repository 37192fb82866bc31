"""A deliberately collapsed generator (one constant image) scores worse than a trained one on
FID and on mode coverage, and is not promoted over it."""

import json
import tempfile
from pathlib import Path

import mlflow
import numpy as np
import pytest
from mlflow import MlflowClient

from pipeline import data, evaluate, export_stage, loop, promote, tracking, train
from tests.conftest import tiny_config

pytestmark = pytest.mark.slow  # trains, exports and evaluates twice


def _collapsed_copy(train_run_id: str) -> str:
    """A train run whose generator outputs one constant image: the trained DCGAN with its
    last convolution's kernel zeroed (every z gives tanh(bias)), in the raw generator and in
    the weight EMA that is exported."""
    model, description = loop.load_trained(train_run_id)
    for network in {id(n): n for n in (model.generator, model.exported_generator)}.values():
        last = network.get_layer("image")
        kernel, bias = last.get_weights()
        last.set_weights([np.zeros_like(kernel), bias + 0.3])
    with tracking.stage_run("train", {"collapsed_from": train_run_id}) as run, tempfile.TemporaryDirectory() as tmp:
        model.save_weights(str(Path(tmp) / "model.weights.h5"))
        (Path(tmp) / "model.json").write_text(json.dumps(description.to_dict()))
        mlflow.log_artifacts(tmp, "model")
    return run.info.run_id


def test_collapsed_generator_scores_worse_and_is_not_promoted(store, tfds_dir):
    config = tiny_config(
        tfds_dir,
        epochs=1,
        steps_per_epoch=150,
        batch_size=64,
        train_examples=10000,
        eval_samples=1000,
        features_examples=10000,
    )
    trained = train.run_train(config, data.run_data(config)[0])
    collapsed_run = _collapsed_copy(trained.run_id)

    def release(train_run_id):
        exported = export_stage.run_export(config, train_run_id)
        scored = evaluate.run_evaluate(config, exported.run_id)
        return scored.metrics, promote.run_promote(config, exported.run_id, scored.run_id)

    good, good_release = release(trained.run_id)
    bad, bad_release = release(collapsed_run)
    assert good_release.promoted and not bad_release.promoted
    assert bad["fid"] > 1.1 * good["fid"]
    assert bad["classes_hit"] == 1 < good["classes_hit"]
    assert bad["class_entropy"] == 0.0 < good["class_entropy"]
    assert bad["recall"] < good["recall"] and bad["coverage"] < good["coverage"]
    champion = MlflowClient().get_model_version_by_alias("fashion_mnist-dcgan", "champion")
    assert str(champion.version) == good_release.version
