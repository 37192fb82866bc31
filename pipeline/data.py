"""Data stage: make a TFDS image dataset available (reading it is ``pipeline/inputs.py``).

Reads: a TFDS dataset by name (``fashion_mnist`` by default). When TFDS cannot download
(this machine has no internet), Fashion-MNIST is prepared from the original IDX files in a
local folder (``--data-dir``; Debian's ``dataset-fashion-mnist`` puts them in
``/usr/share/datasets/fashion-mnist``). Those gzip files differ byte-wise from the ones TFDS
registered (different gzip headers), so each file is verified openly: either its gzip bytes
match TFDS's registered sha256, or its *decompressed* content matches the sha256 recorded
below. Nothing is prepared from a file that matches neither.

Writes: the prepared TFDS dataset in the TFDS data dir, and an MLflow run (``data``) whose
params/tags describe it (name, version, splits, image shape, classes, how it was verified).
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import gzip
import io
import shutil
import struct
import zlib
from pathlib import Path

from contract.files import first_line, sha256_file, write_atomic_with
from pipeline import inputs, quiet
from pipeline.config import FOLDER_FIELDS
from pipeline.errors import UserError

# sha256 of the decompressed Fashion-MNIST IDX files (the same bytes TFDS's downloads decompress to).
FASHION_MNIST_IDX_SHA256 = {
    "train-images-idx3-ubyte": "c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888",
    "train-labels-idx1-ubyte": "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9",
    "t10k-images-idx3-ubyte": "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b",
    "t10k-labels-idx1-ubyte": "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34",
}
# sha256 of the gzip files as TFDS registered them (tensorflow_datasets/url_checksums/fashion_mnist.txt).
FASHION_MNIST_GZ_SHA256 = {
    "train-images-idx3-ubyte": "3aede38d61863908ad78613f6a32ed271626dd12800ba2636569512369268a84",
    "train-labels-idx1-ubyte": "a04f17134ac03560a47e3764e11b92fc97de4d1bfaf8ba1a3aa29af54cc90845",
    "t10k-images-idx3-ubyte": "346e55b948d973a97e58d2351dde16a484bd415d4595297633bb08f03db6a073",
    "t10k-labels-idx1-ubyte": "67da17c76eaffca5446c3361aaab5c3cd6d1c2608764d35dfb1850b086bf8dd5",
}


# ---- Fashion-MNIST from local IDX files -------------------------------------------------------
def verify_idx_files(idx_dir: str, out_dir: Path) -> tuple[dict[str, Path], str]:
    """Verify the four Fashion-MNIST files in ``idx_dir`` and decompress them into ``out_dir``.

    Accepts ``NAME.gz`` or an already decompressed ``NAME``. A gzip file passes when its bytes
    match TFDS's registered sha256, or when its decompressed content matches ours.

    Returns:
        (paths of the decompressed files by name, a one-line description of the verification)

    Raises:
        UserError: a file is missing or its content matches neither checksum.
    """
    source = Path(idx_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths, how = {}, set()
    for name, content_sha in FASHION_MNIST_IDX_SHA256.items():
        gz, raw = source / f"{name}.gz", source / name
        target = out_dir / name
        if gz.is_file():
            if sha256_file(gz) == FASHION_MNIST_GZ_SHA256[name]:
                how.add("gzip sha256 = TFDS registered checksum")
            else:
                how.add("decompressed sha256 = recorded content checksum (gzip bytes differ from TFDS's)")
            if not (target.is_file() and sha256_file(target) == content_sha):
                with gzip.open(gz, "rb") as content:
                    write_atomic_with(target, functools.partial(shutil.copyfileobj, content))
        elif raw.is_file():
            shutil.copyfile(raw, target)
            how.add("decompressed sha256 = recorded content checksum")
        else:
            raise UserError(
                f"Fashion-MNIST file {name}.gz not found in {idx_dir}; install it with "
                "'apt-get install dataset-fashion-mnist' or pass --data-dir with the IDX files"
            )
        actual = sha256_file(target)
        if actual != content_sha:
            target.unlink()
            raise UserError(
                f"{gz if gz.is_file() else raw} does not contain the Fashion-MNIST data "
                f"(sha256 of the content {actual[:12]}…, expected {content_sha[:12]}…); "
                "replace it with the original file"
            )
        paths[name] = target
    return paths, "; ".join(sorted(how))


def read_idx(path: Path):
    """The array in an uncompressed IDX file (the MNIST format): uint8 (n,) labels or (n, h, w) images."""
    import numpy as np

    raw = path.read_bytes()
    if len(raw) < 4 or raw[:2] != b"\x00\x00" or raw[2] != 0x08:
        raise UserError(f"{path} is not an IDX file of unsigned bytes; replace it with the original file")
    ndim = raw[3]
    shape = tuple(int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    return np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim).reshape(shape)


def png_grey(image) -> bytes:
    """An 8-bit greyscale (h, w) uint8 array as a PNG file: one IDAT chunk, no row filter."""
    height, width = image.shape

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    rows = b"".join(b"\x00" + row.tobytes() for row in image)  # filter type 0 before each row
    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)  # depth 8, greyscale, no interlace
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b"")


def _local_fashion_mnist_builder(idx_dir: str, data_dir: str):
    """A TFDS builder for ``fashion_mnist`` that reads verified local files instead of downloading."""
    tfds = inputs.import_tfds()
    from tensorflow_datasets.image_classification import mnist

    class LocalFashionMNIST(mnist.FashionMNIST, skip_registration=True):  # type: ignore[call-arg]  # TFDS's keyword
        name = "fashion_mnist"  # same name, features and version: tfds.load("fashion_mnist") reads it

        def _split_generators(self, dl_manager):
            extract_dir = Path(dl_manager.download_dir) / "extracted" / "fashion_mnist_local_idx"
            files, self.verification = verify_idx_files(idx_dir, extract_dir)
            return [
                tfds.core.SplitGenerator(
                    name=split,
                    gen_kwargs=dict(
                        num_examples=count,
                        data_path=str(files[f"{prefix}-images-idx3-ubyte"]),
                        label_path=str(files[f"{prefix}-labels-idx1-ubyte"]),
                    ),
                )
                for split, prefix, count in (
                    (tfds.Split.TRAIN, "train", 60000),
                    (tfds.Split.TEST, "t10k", 10000),
                )
            ]

        def _generate_examples(self, num_examples, data_path, label_path):
            # TFDS's MNIST encodes each image to PNG with a TensorFlow op called eagerly, most of the
            # preparation's time; png_grey writes the same pixels (PNG is lossless) far faster.
            images = read_idx(Path(data_path))
            labels = read_idx(Path(label_path)).astype("int64")
            if len(images) != num_examples or len(labels) != num_examples:
                raise UserError(f"{data_path} holds {len(images)} images, expected {num_examples}")
            for index, (image, label) in enumerate(zip(images, labels)):
                yield index, {"image": png_grey(image), "label": label}

    return LocalFashionMNIST(data_dir=data_dir)


def prepare(dataset: str, tfds_dir: str = "", idx_dir: str = "") -> inputs.DatasetSpec:
    """Make ``dataset`` available in the TFDS data dir (idempotent) and describe it.

    Raises:
        UserError: unknown name, not an image dataset, or not available offline.
    """
    tfds = inputs.import_tfds()
    data_dir = inputs.tfds_data_dir(tfds_dir)
    builder = inputs.tfds_builder(dataset, data_dir)
    verified = "already prepared"
    if not builder.is_prepared():
        local = dataset == "fashion_mnist" and idx_dir and Path(idx_dir).is_dir()
        if dataset == "fashion_mnist" and idx_dir and not local:
            print(f"data: {idx_dir} does not exist; trying to download fashion_mnist")
        if local:
            print(f"data: preparing fashion_mnist in {data_dir} from the files in {idx_dir} (once)", flush=True)
            builder = _local_fashion_mnist_builder(idx_dir, data_dir)
        if quiet.active():  # no progress bars; and our line above, not TFDS's "Downloading … Unknown size"
            tfds.disable_progress_bar()
        announced = contextlib.redirect_stdout(io.StringIO()) if local and quiet.active() else contextlib.nullcontext()
        try:
            with announced:
                builder.download_and_prepare(download_config=tfds.download.DownloadConfig(try_download_gcs=False))
        except UserError:
            raise
        except Exception as error:  # TFDS raises many types for "no network"
            hint = (
                "install Debian's dataset-fashion-mnist (apt-get install dataset-fashion-mnist) "
                "or pass --data-dir with the IDX files"
                if dataset == "fashion_mnist"
                else "prepare it once on a machine with internet and copy the TFDS data dir "
                f"({data_dir}), or pick fashion_mnist"
            )
            raise UserError(
                f"dataset '{dataset}' is not in {data_dir} and could not be downloaded "
                f"({first_line(error, limit=160)}); {hint}"
            ) from None
        verified = getattr(builder, "verification", "TFDS registered checksums (downloaded)")
        builder = inputs.tfds_builder(dataset, data_dir)
    return inputs.spec_from_builder(builder, data_dir, verified)


# ---- image folders --------------------------------------------------------------------------------
def check_side(config, side: int) -> None:
    """UserError unless ``config.model`` builds square images of ``side``, naming the sides it builds."""
    _check_side_of(f"{config.model} cannot", config.family.sides(), side)


def _check_side_of(who: str, sides, side: int) -> None:
    """UserError "<who> build NxN images; valid sides: ..." unless ``side`` is one of ``sides``."""
    if sides and side not in sides:
        raise UserError(
            f"{who} build {side}x{side} images; valid sides: {', '.join(map(str, sides))}; "
            "pass -P resolution=N with one of them"
        )


def prepare_folder(config, check_model: bool = False):
    """Prepare the image folder or zip ``config.dataset`` (``pipeline/folders.py``), once its side
    is one a family builds; with ``check_model``, one ``config.model`` builds, with labels when it
    is conditional (checked before anything is written).

    Returns:
        (the prepared folder, its dataset spec)
    """
    from pipeline import folders

    def check(side: int, labelled: bool) -> None:
        if not check_model:  # the data stage alone: a side some family builds
            from models.registry import SIDES

            _check_side_of("no model can", SIDES, side)
            return
        check_side(config, side)
        if config.family.labels and not labelled:
            raise UserError(
                f"{config.model} needs class labels and {config.dataset} has none; put the images in one "
                "subfolder per class or add a dataset.json, or pick an unconditional model"
            )

    if config.dataset_id in inputs.import_tfds().list_builders(with_community_datasets=False):
        raise UserError(
            f"the image folder's name '{config.dataset_id}' is a TFDS dataset's, which it would hide; "
            f"pass -P dataset_name=<another> (e.g. my_{config.dataset_id})"
        )
    source = config.dataset
    if config.dataset in folders.PUBLIC:  # fetched once into the cache, then an image folder
        from contract import npm
        from pipeline import emoji

        source = str(emoji.build(str(npm.cache_dir() / "datasets" / config.dataset))[0])
    prepared, reused = folders.prepare(
        source,
        config.recipe(),
        inputs.tfds_data_dir(config.tfds_dir),
        name=config.dataset_id,
        check=check,
        require_test=True,
    )
    spec = inputs.spec_from_folder(prepared, inputs.tfds_data_dir(config.tfds_dir))
    if reused:
        spec = dataclasses.replace(spec, verified=f"already prepared; {spec.verified}")
    return prepared, spec


def real_grid(prepared, count: int = 64):
    """A grid (uint8 (H, W, C)) of ``count`` training images spread evenly over the split."""
    import numpy as np

    from contract.images import grid

    images = prepared.images("train")
    picks = np.linspace(0, len(images) - 1, min(count, len(images))).astype(int)
    return grid(np.asarray(images[picks]).astype(np.float32) / 255.0, columns=8)


# ---- the stage ---------------------------------------------------------------------------------
def run_data(config, check_model: bool = False) -> tuple[str, inputs.DatasetSpec]:
    """Data stage: prepare ``config.dataset`` and record what was prepared in an MLflow run.

    Args:
        check_model: refuse an image folder's side that ``config.model`` cannot build (the main
            job, which trains next).

    Returns:
        (the data run's id, the dataset spec)
    """
    import mlflow

    from pipeline import folders, tracking

    folder = folders.is_folder(config.dataset)
    if folder:
        prepared, spec = prepare_folder(config, check_model)
    else:
        prepared, spec = None, prepare(config.dataset, config.tfds_dir, config.data_dir)
    params = {"dataset": config.dataset, "data_dir": config.data_dir}
    if folder:
        params = {"dataset": config.dataset, **{k: getattr(config, k) for k in FOLDER_FIELDS}}
    with tracking.stage_run("data", params) as run:
        mlflow.log_params(spec.as_params())
        mlflow.set_tag("dataset.verified", spec.verified)
        mlflow.log_dict(
            {**spec.__dict__, "image_shape": list(spec.image_shape), "class_names": list(spec.class_names)},
            "dataset/spec.json",
        )
        if prepared is not None:
            _log_folder(prepared, spec)
    print(f"data: {spec.name} {spec.version} {spec.splits} ({spec.verified})")
    return run.info.run_id, spec


def _log_folder(prepared, spec) -> None:
    """An image folder's record: the source, the files skipped, lineage and a grid of its images."""
    import mlflow

    from pipeline import tracking

    meta = prepared.meta
    mlflow.log_params(
        {
            "dataset.source": meta["source"],
            "dataset.source_sha256": meta["source_sha256"],
            "dataset.label_source": meta["label_source"] or "none",
            "dataset.files": meta["files"],
            "dataset.skipped": len(meta["skipped"]),
        }
    )
    mlflow.log_dict(meta, "dataset/meta.json")
    mlflow.log_image(real_grid(prepared), "dataset/real_grid.png")
    tracking.log_dataset(spec, "train", "preparation")
    tracking.log_dataset(spec, "test", "preparation")
