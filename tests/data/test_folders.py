"""Image-folder datasets (pipeline/folders.py): real image files of every accepted format and
mode, prepared into the records tf.data reads; labels, splits, reuse, and bad input."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from pipeline import folders, inputs
from pipeline.errors import UserError

RED, BLUE = (220, 30, 30), (30, 30, 220)


def _picture(colour, size=(40, 40), mode="RGB") -> Image.Image:
    """A square of ``colour`` with a white centre, so a crop or a resize is visible."""
    image = Image.new("RGB", size, colour)
    w, h = size
    image.paste((255, 255, 255), (w // 4, h // 4, 3 * w // 4, 3 * h // 4))
    return image.convert(mode)


def make_folder(root: Path, per_class: int = 6, size=(40, 40)) -> Path:
    """Two classes (red, blue) in subfolders, one image of each class per format."""
    formats = [("png", "RGB"), ("jpg", "RGB"), ("webp", "RGB"), ("bmp", "RGB"), ("png", "RGBA"), ("png", "P")]
    for name, colour in (("blue", BLUE), ("red", RED)):
        (root / name).mkdir(parents=True)
        for i in range(per_class):
            suffix, mode = formats[i % len(formats)]
            _picture(colour, size, mode).save(root / name / f"{i:03d}.{suffix}")
    return root


def _prepare(source, tmp_path, **recipe):
    return folders.prepare(str(source), folders.Recipe(**recipe), str(tmp_path / "data"), log=lambda line: None)


def test_subfolders_are_classes_and_every_format_decodes(tmp_path):
    prepared, reused = _prepare(make_folder(tmp_path / "shapes"), tmp_path, resolution=20, test_fraction=0.2)
    assert not reused
    assert prepared.meta["class_names"] == ["blue", "red"]
    assert prepared.image_shape == (20, 20, 3)
    assert prepared.meta["splits"] == {"train": 10, "test": 2}  # one test image per class of 6
    assert sorted(prepared.labels("test")) == [0, 1]
    images, labels = prepared.images("train"), prepared.labels("train")
    for image, label in zip(images, labels):
        corner = image[1, 1].astype(int)
        expected = np.array(BLUE if label == 0 else RED)
        assert np.abs(corner - expected).max() < 30  # JPEG and WebP are lossy
        assert image[10, 10].min() > 225  # the white centre survives the resize


def test_transparent_pixels_take_the_background_colour(tmp_path):
    folder = tmp_path / "alpha"
    folder.mkdir()
    image = Image.new("RGBA", (8, 8), (0, 0, 0, 0))  # fully transparent
    image.paste((10, 200, 10, 255), (0, 0, 4, 8))  # left half opaque green
    image.save(folder / "a.png")
    prepared, _ = _prepare(folder, tmp_path, background="#ff0000", test_fraction=0.0)
    pixels = prepared.images("train")[0]
    assert tuple(pixels[4, 1]) == (10, 200, 10)
    assert tuple(pixels[4, 6]) == (255, 0, 0)


def test_grey_images_give_one_channel_and_a_crop_keeps_the_centre(tmp_path):
    folder = tmp_path / "grey"
    folder.mkdir()
    for i in range(3):
        image = Image.new("L", (30, 10), 0)  # wide: the crop keeps the middle 10x10
        image.paste(200, (10, 0, 20, 10))
        image.save(folder / f"{i}.png")
    prepared, _ = _prepare(folder, tmp_path, test_fraction=0.0)
    assert prepared.image_shape == (10, 10, 1)  # the images' own (shorter) side
    assert prepared.images("train").min() == 200
    assert prepared.meta["label_source"] == ""


def test_a_grey_picture_saved_as_rgb_has_no_colour(tmp_path):
    folder = tmp_path / "greyrgb"
    folder.mkdir()
    Image.new("L", (8, 8), 90).convert("RGB").save(folder / "a.png")
    prepared, _ = _prepare(folder, tmp_path, test_fraction=0.0)
    assert prepared.image_shape == (8, 8, 1)
    prepared, _ = _prepare(folder, tmp_path, test_fraction=0.0, channels=3)
    assert prepared.image_shape == (8, 8, 3)


def test_labels_from_dataset_json_and_unlisted_images_left_out(tmp_path):
    folder = tmp_path / "listed"
    folder.mkdir()
    for i in range(5):
        _picture(RED if i % 2 else BLUE).save(folder / f"{i}.png")
    labels = {"labels": [[f"{i}.png", i % 2] for i in range(4)], "class_names": ["b", "r"]}
    (folder / "dataset.json").write_text(json.dumps(labels))
    prepared, _ = _prepare(folder, tmp_path, test_fraction=0.0)
    assert prepared.meta["label_source"] == "dataset.json"
    assert prepared.meta["class_names"] == ["b", "r"]
    assert prepared.names("train") == ["0.png", "1.png", "2.png", "3.png"]
    assert list(prepared.labels("train")) == [0, 1, 0, 1]


def test_a_label_file_naming_a_missing_image_is_refused(tmp_path):
    folder = tmp_path / "broken_labels"
    folder.mkdir()
    _picture(RED).save(folder / "a.png")
    (folder / "dataset.json").write_text(json.dumps({"labels": [["a.png", 0], ["gone.png", 1]]}))
    with pytest.raises(UserError, match=r"names 1 image\(s\) not in the dataset \(first: gone.png\)"):
        folders.open_source(str(folder))


def test_a_zip_prepares_the_same_images_as_its_folder(tmp_path):
    folder = make_folder(tmp_path / "shapes")
    archive = tmp_path / "shapes.zip"
    with zipfile.ZipFile(archive, "w") as out:
        for path in sorted(folder.rglob("*.*")):
            out.write(path, path.relative_to(folder).as_posix())
    from_folder, _ = _prepare(folder, tmp_path, resolution=16)
    from_zip, _ = _prepare(archive, tmp_path / "z", resolution=16)
    assert from_zip.meta["name"] == "shapes"
    assert from_zip.meta["source_sha256"] == from_folder.meta["source_sha256"]
    assert np.array_equal(np.asarray(from_zip.images("train")), np.asarray(from_folder.images("train")))


def test_an_unchanged_folder_is_reused_and_a_changed_file_prepares_afresh(tmp_path):
    folder = make_folder(tmp_path / "shapes")
    first, _ = _prepare(folder, tmp_path, resolution=16)
    again, reused = _prepare(folder, tmp_path, resolution=16)
    assert reused and again.location == first.location
    _picture((0, 255, 0)).save(folder / "red" / "000.png")
    changed, reused = _prepare(folder, tmp_path, resolution=16)
    assert not reused and changed.location != first.location
    assert folders.find(str(tmp_path / "data"), "shapes").location == changed.location  # the latest


def test_a_few_corrupt_files_are_skipped_and_named(tmp_path):
    folder = make_folder(tmp_path / "shapes", per_class=60, size=(12, 12))
    (folder / "red" / "zz_corrupt.png").write_bytes(b"\x89PNG\r\n\x1a\n not really")
    lines = []
    prepared, _ = folders.prepare(str(folder), folders.Recipe(), str(tmp_path / "data"), log=lines.append)
    assert list(prepared.meta["skipped"]) == ["red/zz_corrupt.png"]
    assert any("skipped red/zz_corrupt.png" in line for line in lines)
    assert sum(prepared.meta["splits"].values()) == 120


def test_more_than_one_percent_corrupt_fails_and_leaves_nothing(tmp_path):
    folder = make_folder(tmp_path / "shapes", per_class=6)
    (folder / "red" / "bad.png").write_bytes(b"not an image")
    with pytest.raises(UserError, match=r"1 of 13 files .* do not decode as images .*first: red/bad.png"):
        _prepare(folder, tmp_path)
    assert not (tmp_path / "data").exists()


def test_a_file_that_opens_but_does_not_decode_is_caught_while_writing(tmp_path):
    folder = make_folder(tmp_path / "shapes", per_class=6, size=(64, 64))
    good = (folder / "red" / "000.png").read_bytes()
    (folder / "red" / "truncated.png").write_bytes(good[: len(good) // 2])  # the header is intact
    with pytest.raises(UserError, match="truncated.png"):
        _prepare(folder, tmp_path, resolution=16)
    assert not [p for p in (tmp_path / "data").rglob("*") if p.is_file() or p.name.endswith(".partial")]


def test_mixed_sizes_need_a_resolution(tmp_path):
    folder = tmp_path / "mixed"
    folder.mkdir()
    _picture(RED, (20, 20)).save(folder / "a.png")
    _picture(RED, (24, 24)).save(folder / "b.png")
    with pytest.raises(UserError, match=r"2 sizes .*pass -P resolution=N"):
        _prepare(folder, tmp_path)
    prepared, _ = _prepare(folder, tmp_path, resolution=16, test_fraction=0.0)
    assert prepared.images("train").shape == (2, 16, 16, 3)


def test_a_decompression_bomb_is_refused_before_anything_is_written(tmp_path, monkeypatch):
    folder = make_folder(tmp_path / "shapes", per_class=2)
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 400)  # Pillow's limit, lowered: a 40x40 image is a "bomb"
    with pytest.raises(UserError, match="decompression-bomb limit"):
        _prepare(folder, tmp_path)
    assert not (tmp_path / "data").exists()


@pytest.mark.parametrize(
    "setup, message",
    [
        (lambda p: None, "does not exist"),
        (lambda p: p.mkdir(), "holds no image file"),
        (lambda p: (p.mkdir(), (p / "notes.txt").write_text("x")), "holds no image file"),
        (lambda p: (p.mkdir(), (p / "a.png").write_bytes(b"zzz")), "no file in .* decodes as an image"),
        (lambda p: p.write_text("not a zip"), "neither a folder nor a .zip"),
    ],
)
def test_bad_sources_get_one_line(tmp_path, setup, message):
    path = tmp_path / "source"
    setup(path)
    with pytest.raises(UserError, match=message) as raised:
        _prepare(path, tmp_path)
    assert "\n" not in str(raised.value)


def test_tfds_names_with_a_config_are_not_paths_unless_they_exist(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    for name in ("mnist", "emnist/balanced", "emnist/balanced:3.*.*", "mnist:3.0.1", "emoji"):
        assert not folders.looks_like_path(name), name
    for path in ("./images", "~/images", "/data/images", "My Emoji.zip", "My Pictures/cats", "a/b/c/"):
        assert folders.looks_like_path(path), path
    (tmp_path / "emnist" / "balanced").mkdir(parents=True)  # a folder that exists wins over the TFDS reading
    assert folders.looks_like_path("emnist/balanced")
    assert folders.is_folder("emoji") and not folders.is_folder("emnist/letters")


def test_a_prepare_that_finishes_second_keeps_the_first_copy(tmp_path, monkeypatch):
    import shutil

    folder = make_folder(tmp_path / "shapes", per_class=2, size=(8, 8))
    first, _ = _prepare(folder, tmp_path, test_fraction=0.5)
    aside = tmp_path / "aside"
    shutil.move(first.location, aside)
    original = folders._decoded

    def decoded(*args):  # another process finishes the same folder while this one decodes
        shutil.copytree(aside, first.location)
        yield from original(*args)

    monkeypatch.setattr(folders, "_decoded", decoded)
    again, reused = _prepare(folder, tmp_path, test_fraction=0.5)
    assert not reused and again.location == first.location and again.meta == first.meta
    assert not [p for p in first.location.parent.iterdir() if p.name.endswith(".partial")]


def test_the_test_split_is_stratified_and_seeded():
    labels = [0] * 50 + [1] * 3 + [2]
    test = folders.split_indices(labels, 0.1)
    assert sum(1 for i in test if labels[i] == 0) == 5
    assert sum(1 for i in test if labels[i] == 1) == 1  # at least one of a class of 3
    assert not any(labels[i] == 2 for i in test)  # never the only image of a class
    assert folders.split_indices(labels, 0.1) == test


def test_max_images_is_a_seeded_subset(tmp_path):
    folder = make_folder(tmp_path / "shapes", per_class=10, size=(8, 8))
    prepared, _ = _prepare(folder, tmp_path, max_images=7, test_fraction=0.0)
    assert prepared.meta["splits"]["train"] == 7
    again, _ = _prepare(folder, tmp_path / "again", max_images=7, test_fraction=0.0)
    assert again.names("train") == prepared.names("train")


def test_the_training_pipeline_reads_the_records_with_labels_and_mirrors(tmp_path):
    folder = make_folder(tmp_path / "shapes", per_class=8, size=(16, 16))
    prepared, _ = _prepare(folder, tmp_path, test_fraction=0.0)
    spec = inputs.spec_from_folder(prepared, str(tmp_path / "data"))
    assert inputs.describe("shapes", str(tmp_path / "data")) == spec
    dataset = inputs.training_dataset(spec, batch_size=4, value_range="tanh", seed=0, labels=True, xflip=True)
    # its length is known without reading it: Keras ends each epoch after the last full batch
    # instead of running a step into the end of the data (which broke StyleGAN's second epoch)
    assert int(dataset.cardinality()) == 8
    odd = inputs.training_dataset(spec, batch_size=5, value_range="tanh", seed=0)
    assert int(odd.cardinality()) == len(list(odd)) == 3  # 16 images: the partial batch dropped
    batches = list(dataset)
    assert len(batches) == 8  # 16 images and their 16 mirror images
    images = np.concatenate([b[0].numpy() for b in batches])
    labels = np.concatenate([b[1].numpy() for b in batches])
    assert images.shape == (32, 16, 16, 3) and images.min() >= -1.0 and images.max() <= 1.0
    assert np.bincount(labels).tolist() == [16, 16]
    originals = {np.asarray(i).tobytes() for i in prepared.images("train")}
    mirrored = {((i + 1) * 127.5).round().astype(np.uint8)[:, ::-1].tobytes() for i in images}
    assert originals <= mirrored  # every image appears mirrored too


@pytest.mark.parametrize("cache_bytes", [1 << 30, 0])  # held in memory, and read from the file each pass
def test_mirror_images_are_mixed_in_from_the_start_however_large_the_folder(tmp_path, monkeypatch, cache_bytes):
    folder = tmp_path / "asymmetric"
    folder.mkdir()
    for i in range(16):  # a dark left edge, so a mirror image is told apart; brightness names the image
        pixels = np.full((28, 28, 3), 255, np.uint8)
        pixels[:, :7] = 10 * i
        Image.fromarray(pixels).save(folder / f"{i:02d}.png")
    prepared, _ = _prepare(folder, tmp_path, test_fraction=0.0)
    spec = inputs.spec_from_folder(prepared, str(tmp_path / "data"))
    monkeypatch.setattr(inputs, "SHUFFLE_BUFFER", 4)  # far fewer than the 32 images and mirror images
    monkeypatch.setattr(inputs, "CACHE_BYTES", cache_bytes)
    passes = []
    for _ in range(2):
        batches = inputs.training_dataset(spec, batch_size=4, value_range="unit", seed=0, xflip=True)
        passes.append(np.concatenate([b.numpy() for b in batches]))
    images = passes[0]
    mirrored = images[:, 0, 0, 0] > images[:, 0, -1, 0]  # the dark edge on the right
    assert len(images) == 32 and mirrored.sum() == 16
    assert mirrored[:8].sum() >= 2  # appended after the originals, none would come before the 13th
    named = sorted(zip(np.minimum(images[:, 0, 0, 0], images[:, 0, -1, 0]).round(3), mirrored))
    assert named == sorted((round(10 * i / 255, 3), m) for i in range(16) for m in (False, True))
    np.testing.assert_array_equal(passes[0], passes[1])  # seeded: the same order from the same seed


def test_the_data_stage_records_the_folder_in_mlflow(store, tmp_path, capsys):
    import mlflow

    from pipeline import cli

    folder = make_folder(tmp_path / "my shapes", per_class=6, size=(28, 28))
    argv = ["data", "--dataset", str(folder), "--tfds-dir", str(tmp_path / "data"), "--test-fraction", "0.2"]
    assert cli.main(argv) == 0
    assert "data: my_shapes" in capsys.readouterr().out
    run = mlflow.search_runs(filter_string="tags.`latentforge.stage` = 'data'", output_format="list")[0]
    assert run.data.params["dataset.name"] == "my_shapes"
    assert run.data.params["dataset.image_shape"] == "28x28x3"
    assert run.data.params["dataset.split.test"] == "2"
    artifacts = {a.path for a in mlflow.MlflowClient().list_artifacts(run.info.run_id, "dataset")}
    assert {"dataset/real_grid.png", "dataset/meta.json", "dataset/spec.json"} <= artifacts
    inputs_logged = {d.dataset.name for d in run.inputs.dataset_inputs}
    assert inputs_logged == {f"my_shapes:{run.data.params['dataset.version']}"}


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--dataset", "fashion_mnist", "--resolution", "32"], "resolution apply to image folders"),
        (["--dataset", "{folder}", "--channels", "2"], "unknown channels '2'; valid: 0, 1, 3"),
        (["--dataset", "{folder}", "--background", "pink"], "background 'pink' is not a colour"),
        (["--dataset", "{folder}", "--dataset-name", "My Set"], "must be lowercase letters"),
        (["--dataset", "{folder}/missing"], "does not exist"),
        (["--dataset", "{folder}", "--test-fraction", "0"], "holds out no test image"),
        (["--dataset", "{folder}", "--dataset-name", "mnist"], "is a TFDS dataset's, which it would hide"),
        (["--dataset", "{folder}", "--resolution", "48"], "no model can build 48x48 images; valid sides: 28, 32, 56"),
    ],
)
def test_bad_data_parameters_are_one_line_and_exit_2(store, tmp_path, capsys, argv, message):
    from pipeline import cli

    folder = make_folder(tmp_path / "shapes", per_class=2, size=(28, 28))
    argv = [a.replace("{folder}", str(folder)) for a in argv]
    assert cli.main(["data", *argv, "--tfds-dir", str(tmp_path / "data")]) == 2
    ours = [line for line in capsys.readouterr().err.splitlines() if line.startswith("latentforge")]
    assert len(ours) == 1 and message in ours[0] and ours[0].startswith("latentforge: error: ")
    assert not (tmp_path / "data").exists()


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--model", "cdcgan"], "cdcgan needs class labels and {folder} has none"),
        (["--model", "stylegan", "--resolution", "48"], "stylegan cannot build 48x48 images; valid sides: 28, 32, 56"),
        (["--model", "gan", "--resolution", "128"], "gan cannot build 128x128 images; valid sides: 28, 32, 56, 64;"),
    ],
)
def test_main_refuses_a_model_the_folder_cannot_train_before_preparing_it(store, tmp_path, capsys, argv, message):
    from pipeline import cli

    folder = tmp_path / "flat"
    folder.mkdir()
    for i in range(4):  # no subfolders, no dataset.json: unlabelled
        _picture(RED if i % 2 else BLUE, (28, 28)).save(folder / f"{i}.png")
    argv = ["main", "--dataset", str(folder), "--tfds-dir", str(tmp_path / "data"), "--test-fraction", "0.5", *argv]
    assert cli.main(argv) == 2
    ours = [line for line in capsys.readouterr().err.splitlines() if line.startswith("latentforge")]
    assert len(ours) == 1 and message.replace("{folder}", str(folder)) in ours[0], ours
    assert not (tmp_path / "data" / "image_folders").exists()  # nothing prepared


def test_the_train_stage_refuses_a_prepared_side_the_model_cannot_build(store, tmp_path, capsys):
    from pipeline import cli

    folder = make_folder(tmp_path / "shapes", per_class=2, size=(28, 28))
    argv = ["--dataset", str(folder), "--tfds-dir", str(tmp_path / "data"), "--test-fraction", "0.5"]
    argv += ["--resolution", "128"]
    assert cli.main(["data", *argv]) == 0  # dcgan, progan and stylegan build 128x128...
    capsys.readouterr()
    assert cli.main(["train", *argv, "--model", "gan"]) == 2  # ...the dense GAN stops at 64x64
    ours = [line for line in capsys.readouterr().err.splitlines() if line.startswith("latentforge")]
    assert len(ours) == 1 and "gan cannot build 128x128 images; valid sides: 28, 32, 56, 64;" in ours[0], ours
