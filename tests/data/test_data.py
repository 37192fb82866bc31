import gzip
import io
import shutil
from pathlib import Path

import numpy as np
import pytest

from pipeline import data, inputs
from pipeline.config import DEFAULT_IDX_DIR
from pipeline.errors import UserError


def test_prepared_from_local_idx_files(spec):
    assert spec.name == "fashion_mnist"
    assert spec.image_shape == (28, 28, 1)
    assert spec.splits == {"train": 60000, "test": 10000}
    assert spec.class_names[7] == "Sneaker"


def _pairs(images, labels) -> list[bytes]:
    return sorted(image.tobytes() + bytes([label]) for image, label in zip(images, labels))


def test_prepared_examples_are_the_idx_files_content(spec, tmp_path):
    # TFDS stores the examples in its own (key-hashed) order: compare the (image, label) pairs as sets.
    paths, _ = data.verify_idx_files(DEFAULT_IDX_DIR, tmp_path / "out")
    for split, prefix in (("train", "train"), ("test", "t10k")):
        images, labels = inputs.load_arrays(spec, split)
        idx_images = data.read_idx(paths[f"{prefix}-images-idx3-ubyte"])
        idx_labels = data.read_idx(paths[f"{prefix}-labels-idx1-ubyte"])
        assert _pairs(images[..., 0], labels) == _pairs(idx_images, idx_labels)


def test_png_grey_decodes_to_the_same_pixels():
    from PIL import Image

    image = np.random.default_rng(0).integers(0, 256, size=(5, 7), dtype=np.uint8)
    assert np.array_equal(np.asarray(Image.open(io.BytesIO(data.png_grey(image)))), image)


def test_read_idx_refuses_a_file_of_another_format(tmp_path):
    path = tmp_path / "x"
    path.write_bytes(b"PK\x03\x04 not an idx file")
    with pytest.raises(UserError, match="not an IDX file"):
        data.read_idx(path)


def test_debian_gzip_files_pass_by_their_decompressed_content(tmp_path):
    _, how = data.verify_idx_files(DEFAULT_IDX_DIR, tmp_path / "out")
    # Debian's gzip bytes differ from TFDS's registered ones; the content check is what passed.
    assert "decompressed sha256" in how


def _copy_idx(tmp_path) -> Path:
    folder = tmp_path / "idx"
    shutil.copytree(DEFAULT_IDX_DIR, folder)
    return folder


def test_tampered_file_is_refused(tmp_path):
    folder = _copy_idx(tmp_path)
    labels = folder / "t10k-labels-idx1-ubyte.gz"
    raw = bytearray(gzip.decompress(labels.read_bytes()))
    raw[100] = (raw[100] + 1) % 10  # one changed label
    labels.write_bytes(gzip.compress(bytes(raw)))
    with pytest.raises(UserError, match="does not contain the Fashion-MNIST data"):
        data.verify_idx_files(str(folder), tmp_path / "out")


def test_missing_file_names_the_fix(tmp_path):
    folder = _copy_idx(tmp_path)
    (folder / "train-images-idx3-ubyte.gz").unlink()
    with pytest.raises(UserError, match="apt-get install dataset-fashion-mnist"):
        data.verify_idx_files(str(folder), tmp_path / "out")


def test_unknown_dataset_lists_valid_names(tmp_path):
    with pytest.raises(UserError, match="unknown dataset 'no_such_set'; valid: fashion_mnist"):
        data.prepare("no_such_set", str(tmp_path))


def test_dataset_unavailable_offline_is_one_clear_error(tmp_path):
    # mnist is not prepared in this empty dir and the machine has no internet.
    with pytest.raises(UserError, match="could not be downloaded") as info:
        data.prepare("mnist", str(tmp_path / "empty"))
    assert "\n" not in str(info.value)
