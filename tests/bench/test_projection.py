"""bench/projection.py on a tiny colour StyleGAN export and a prepared folder with an emoji index:
held-out images projected into W and W+, each set beside its nearest other real image, skin-tone
variants of the same emoji left out, and the record docs/results.md renders."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from bench import projection
from pipeline import folders
from tests.serving.conftest import write_export

ROOT = Path(__file__).resolve().parents[2]


def _emoji_like(folder: Path) -> dict:
    """Two classes of 32x32 pictures; in class "hands" each picture has a near twin (its "skin-tone
    variant": the same base emoji, a slightly different colour). Returns the index's images."""
    index = {}
    for c, name in enumerate(("hands", "faces")):
        (folder / name).mkdir(parents=True)
        for i in range(6):
            pixels = np.full((32, 32, 3), 255, np.uint8)
            pixels[4 + 3 * i : 16 + 3 * i, 4:28] = (40 * i, 120 * c, 200 - 30 * i)
            Image.fromarray(pixels).save(folder / name / f"{i}.png")
            index[f"{name}/{i}.png"] = {"base": f"{name}-{i}"}
            if name == "hands":  # a variant: one shade lighter, the same base
                pixels[pixels < 255] += 6
                Image.fromarray(pixels).save(folder / name / f"{i}-tone.png")
                index[f"{name}/{i}-tone.png"] = {"base": f"{name}-{i}"}
    (folder / "emoji-index.json").write_text(json.dumps({"images": index}))
    return index


@pytest.mark.slow  # a SavedModel export and two projections per image in a subprocess
def test_held_out_images_are_projected_into_w_and_w_plus_beside_their_nearest_other_image(tmp_path):
    index = _emoji_like(tmp_path / "tiny_emoji")
    data = tmp_path / "data"
    prepared, _ = folders.prepare(
        str(tmp_path / "tiny_emoji"), folders.Recipe(test_fraction=0.3), str(data), log=lambda line: None
    )
    model = write_export(
        tmp_path / "stylegan",
        "stylegan",
        latent_dim=16,
        shape=(32, 32, 3),
        width=8,
        savedmodels=True,
        card_fields={"dataset": "tiny_emoji", "dataset_version": prepared.meta["key"]},
    )
    results = tmp_path / "projection.json"
    done = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "projection.py"), "--model", str(model), "--tfds-dir", str(data)]
        + ["--images", "3", "--steps", "3", "--results", str(results)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    record = json.loads(results.read_text())
    held_out = set(prepared.names("test"))
    assert len(record["rows"]) == 3
    for row in record["rows"]:
        assert row["image"] in held_out
        assert index[row["nearest_other"]]["base"] != index[row["image"]]["base"]  # never its own variant
        for key in ("w", "wplus"):
            assert row[f"projection_l2_{key}"] > 0
            assert row[f"ratio_{key}"] == pytest.approx(row[f"projection_l2_{key}"] / row["nearest_other_l2"], abs=1e-3)
    summary = record["summary"]
    assert {"ratio_of_medians_w", "ratio_of_medians_wplus", "at_most_half_w", "at_most_half_wplus"} <= set(summary)
    reading = " ".join(projection.present(record)["reading"])
    assert "In W the median distance" in reading and "In W+ the median distance" in reading


def test_a_model_that_is_not_there_is_one_line(tmp_path):
    done = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "projection.py"), "--model", "models:/nothing-stylegan@champion"]
        + ["--results", str(tmp_path / "projection.json")],
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, "MLFLOW_TRACKING_URI": f"sqlite:///{tmp_path}/mlflow.db"},
    )
    assert done.returncode == 1
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith("projection: model 'models:/nothing-stylegan@champion' not found")
    assert "Traceback" not in done.stderr
    assert not (tmp_path / "projection.json").exists()
