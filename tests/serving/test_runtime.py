"""The serving runtime on an export folder: integrity check, determinism, PNG grids."""

import json
import shutil

import numpy as np
import pytest

from contract import images
from serving.runtime import GeneratorRuntime, ModelLoadError
from tests.serving.conftest import tamper, write_export


@pytest.fixture(scope="module")
def export_folder(tmp_path_factory):
    return write_export(tmp_path_factory.mktemp("export"), "dcgan", latent_dim=10)


def test_a_version_1_card_is_refused_with_the_re_export_command(export_folder, tmp_path):
    copy = tmp_path / "copy"
    shutil.copytree(export_folder, copy)
    card = json.loads((copy / "model_card.json").read_text())
    old = {key: card[key] for key in ("model", "value_range", "files", "train_run_id") if key in card}
    (copy / "model_card.json").write_text(json.dumps({**old, "card_version": 1, "latent_dim": 10}))
    with pytest.raises(ModelLoadError) as refused:
        GeneratorRuntime.load(str(copy))
    message = str(refused.value)
    assert "model card version 1 predates" in message and "latentforge export --train-run-id" in message
    assert "\n" not in message


def test_generates_the_same_images_for_the_same_seed(export_folder):
    runtime = GeneratorRuntime.load(str(export_folder))
    a, b = runtime.generate_uint8(9, seed=3), runtime.generate_uint8(9, seed=3)
    assert a.shape == (9, 28, 28, 1) and a.dtype == np.uint8
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, runtime.generate_uint8(9, seed=4))


def test_tampered_onnx_is_refused(export_folder, tmp_path):
    copy = tmp_path / "copy"
    shutil.copytree(export_folder, copy)
    tamper(copy / "generator.onnx")
    with pytest.raises(ModelLoadError, match="does not match the model card"):
        GeneratorRuntime.load(str(copy))


def test_card_without_checksum_is_refused(export_folder, tmp_path):
    copy = tmp_path / "copy"
    shutil.copytree(export_folder, copy)
    card = json.loads((copy / "model_card.json").read_text())
    card["files"] = {}
    (copy / "model_card.json").write_text(json.dumps(card))
    with pytest.raises(ModelLoadError, match="records no sha256"):
        GeneratorRuntime.load(str(copy))


def test_grid_layout_and_png():
    tiles = np.stack([np.full((4, 4, 1), i * 20, np.uint8) for i in range(5)])
    picture = images.grid(tiles, columns=3, padding=1)
    assert picture.shape == (2 * 5 + 1, 3 * 5 + 1, 1)
    assert picture[1, 1, 0] == 0 and picture[1, 6, 0] == 20 and picture[6, 1, 0] == 60
    assert images.png_bytes(picture) == images.png_bytes(picture.copy())


def test_value_ranges_map_to_uint8():
    np.testing.assert_array_equal(images.to_uint8(np.array([-1.0, 0.0, 1.0]), "tanh"), [0, 128, 255])
    np.testing.assert_array_equal(images.to_uint8(np.array([0.0, 0.5, 1.0]), "unit"), [0, 128, 255])
    with pytest.raises(ValueError):
        images.to_uint8(np.zeros(1), "other")
