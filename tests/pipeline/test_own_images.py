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
