"""A folder of one's own colour images through the whole pipeline: data -> train (with ADA) ->
export -> evaluate -> promote, then generate; on the real store and registry, tiny settings."""

from __future__ import annotations

import io
import json

import mlflow
import pytest
from PIL import Image

from pipeline import cli, main
from pipeline.config import Config
from tests.data.test_folders import make_folder

pytestmark = pytest.mark.slow


def test_a_colour_folder_trains_exports_scores_and_generates(store, tmp_path, capsys):
    folder = make_folder(tmp_path / "shapes", per_class=40, size=(36, 36))
    config = Config.from_dict(
        {
            "dataset": str(folder),
            "resolution": 32,
            "model": "dcgan",
            "width": 8,
            "epochs": 2,
            "steps_per_epoch": 3,
            "batch_size": 16,
            "augment": "ada",
            "ada_kimg": 0.5,
            "eval_samples": 200,
            "features_epochs": 1,
            "tfds_dir": str(tmp_path / "data"),
        }
    )
    summary = main.run_main(config)
    assert summary["registered_model"] == "shapes-dcgan"
    train_run = mlflow.get_run(summary["train_run_id"])
    assert "augment_p" in train_run.data.metrics  # ADA's p, logged per epoch
    assert train_run.data.params["dataset.image_shape"] == "32x32x3"
    evaluation = mlflow.get_run(summary["evaluate_run_id"])
    assert evaluation.data.metrics["fid"] > 0
    assert ";real=all;" in evaluation.data.tags["latentforge.protocol"]
    card = json.loads(mlflow.artifacts.load_text(f"runs:/{summary['export_run_id']}/export/model_card.json"))
    assert card["output_shape"] == [32, 32, 3] and card["label_classes"] == ["blue", "red"]

    out = tmp_path / "grid.png"
    argv = ["generate", "--model", "models:/shapes-dcgan@champion", "-n", "4", "--seed", "1", "--out", str(out)]
    assert cli.main(argv) == 0
    with Image.open(io.BytesIO(out.read_bytes())) as picture:
        assert picture.mode == "RGB"


def test_an_unlabelled_folder_is_scored_in_a_rotation_classifiers_features(store, tmp_path):
    import numpy as np
    from mlflow import MlflowClient

    folder = tmp_path / "flat"  # no subfolders, no dataset.json: unlabelled
    folder.mkdir()
    rng = np.random.default_rng(0)
    for index in range(240):
        pixels = np.full((32, 32, 3), 255, np.uint8)
        colour = rng.integers(0, 200, 3).astype(np.uint8)
        pixels[2:8, :] = colour  # a bar along the top: which way up a picture stands is there to see
        pixels[8 : 8 + rng.integers(8, 24), 12:20] = colour // 2  # a stem below it, of random length
        Image.fromarray(pixels).save(folder / f"{index:03d}.png")
    config = Config.from_dict(
        {
            "dataset": str(folder),
            "model": "dcgan",
            "width": 8,
            "epochs": 1,
            "steps_per_epoch": 3,
            "batch_size": 16,
            "eval_samples": 200,
            "features_epochs": 12,
            "tfds_dir": str(tmp_path / "data"),
        }
    )
    summary = main.run_main(config)
    evaluation = mlflow.get_run(summary["evaluate_run_id"])
    scores = evaluation.data.metrics
    assert scores["fid"] > 0 and scores["fid_floor"] >= 0 and "class_entropy" not in scores
    assert "-rot-" in evaluation.data.params["extractor_version"]
    (extractor,) = MlflowClient().search_model_versions("name = 'flat-features'")
    assert extractor.tags["task"] == "rotation"
    assert float(extractor.tags["test_accuracy"]) > 0.5, extractor.tags  # four turns: chance is 0.25


def test_two_ray_workers_train_with_ada_from_the_same_prepared_folder(store, tmp_path):
    """``workers=2`` on an image folder: both workers read the folder prepared once, and ADA (its
    observations all-reduced across the workers in every step) trains and logs its p."""
    import os
    import subprocess
    import sys

    from mlflow import MlflowClient

    from tests.conftest import ROOT

    folder = make_folder(tmp_path / "shapes", per_class=40, size=(36, 36))
    flags = {
        "dataset": str(folder),
        "resolution": 32,
        "model": "dcgan",
        "width": 8,
        "workers": 2,
        "augment": "ada",
        "ada_kimg": 0.2,
        "epochs": 2,
        "steps_per_epoch": 4,
        "batch_size": 16,
        "eval_samples": 200,
        "features_epochs": 1,
        "tfds_dir": str(tmp_path / "data"),
        "experiment": "latentforge-test",
    }
    env = {**os.environ, "MLFLOW_TRACKING_URI": store, "LATENTFORGE_RAY_STORAGE": str(tmp_path / "ray")}
    run = subprocess.run(
        [sys.executable, "-m", "pipeline.cli", "main", *(f"--{k.replace('_', '-')}={v}" for k, v in flags.items())],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert run.returncode == 0, (run.stdout + run.stderr)[-4000:]
    client = MlflowClient()
    experiment = client.get_experiment_by_name("latentforge-test").experiment_id
    (train,) = client.search_runs([experiment], "tags.`latentforge.stage` = 'train'")
    assert train.data.params["workers"] == "2" and train.data.params["dataset.image_shape"] == "32x32x3"
    history = client.get_metric_history(train.info.run_id, "augment_p")
    assert {m.step for m in history} == {1, 2}
    assert len(list((tmp_path / "data" / "image_folders" / "shapes").iterdir())) == 2  # one key and "latest"


def test_a_stylegan_on_a_folder_logs_real_grids_samples_style_pictures_and_projections(store, tmp_path, monkeypatch):
    import functools

    from models import stylegan_eval
    from pipeline import evaluate, project

    # Fewer optimiser steps and samples in the evaluation's fixed-size loops (projection 200 steps,
    # w spread over 10,000 latents, path length over 2,000 pairs): the same code paths, pictures and
    # metrics, at a quarter or less of their cost; what is asserted below does not depend on them.
    monkeypatch.setattr(evaluate, "PROJECTION_STEPS", 50)
    monkeypatch.setattr(project, "w_spread", functools.partial(project.w_spread, samples=1000))
    monkeypatch.setattr(stylegan_eval, "PPL_PAIRS", 500)
    folder = make_folder(tmp_path / "shapes", per_class=40, size=(36, 36))
    config = Config.from_dict(
        {
            "dataset": str(folder),
            "resolution": 32,
            "model": "stylegan",
            "width": 8,
            "epochs": 1,
            "steps_per_epoch": 3,
            "batch_size": 16,
            "augment": "ada",
            "eval_samples": 200,
            "features_epochs": 1,
            "tfds_dir": str(tmp_path / "data"),
        }
    )
    summary = main.run_main(config)

    def logged(run_id: str, folder: str) -> set[str]:
        return {a.path for a in mlflow.MlflowClient().list_artifacts(run_id, folder)}

    assert "dataset/real_grid.png" in logged(summary["data_run_id"], "dataset")
    assert "samples/epoch_001.png" in logged(summary["train_run_id"], "samples")
    pictures = logged(summary["evaluate_run_id"], "evaluation")
    assert {"evaluation/projections.png", "evaluation/truncation.png", "evaluation/style_mix_coarse.png"} <= pictures
    evaluation = mlflow.get_run(summary["evaluate_run_id"])
    assert 0 < evaluation.data.metrics["projection_l2_median"] < (32 * 32 * 3) ** 0.5  # under all-wrong
    picture = mlflow.artifacts.load_image(f"runs:/{summary['evaluate_run_id']}/evaluation/projections.png")
    assert picture.mode == "RGB" and picture.size[1] > 2 * 32  # the targets above their projections
