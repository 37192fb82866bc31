"""Data stage: make a TFDS image dataset available, and turn it into a tf.data pipeline.

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

import functools
import gzip
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

from pipeline.errors import UserError
from serving.files import first_line, sha256_file, write_atomic_with

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

# Image datasets known to work (shown when a name is unknown); any TFDS image dataset may be tried.
SUGGESTED_DATASETS = ("fashion_mnist", "mnist", "kmnist", "cifar10", "svhn_cropped")


@dataclass(frozen=True)
class DatasetSpec:
    """What the rest of the pipeline needs to know about a prepared dataset."""

    name: str
    version: str
    image_shape: tuple[int, int, int]  # (height, width, channels)
    class_names: tuple[str, ...]
    splits: dict[str, int]  # split name -> number of examples
    tfds_dir: str
    verified: str  # how the source files were verified

    def as_params(self) -> dict[str, str]:
        return {
            "dataset.name": self.name,
            "dataset.version": self.version,
            "dataset.image_shape": "x".join(map(str, self.image_shape)),
            "dataset.num_classes": str(len(self.class_names)),
            "dataset.tfds_dir": self.tfds_dir,
            **{f"dataset.split.{k}": str(v) for k, v in self.splits.items()},
        }


def _tfds():
    import tensorflow_datasets as tfds
    from tensorflow_datasets.core.download import downloader

    tfds.disable_progress_bar()
    # TFDS retries a failed download with exponential back-off (minutes when offline);
    # a few quick retries tell "no network" from a hiccup just as well.
    downloader.MAX_RETRIES = min(getattr(downloader, "MAX_RETRIES", 3), 3)
    return tfds


def tfds_data_dir(tfds_dir: str) -> str:
    return os.path.expanduser(tfds_dir or os.environ.get("TFDS_DATA_DIR", "~/tensorflow_datasets"))


def _builder(name: str, data_dir: str):
    tfds = _tfds()
    try:
        return tfds.builder(name, data_dir=data_dir)
    except tfds.core.registered.DatasetNotFoundError:
        raise UserError(
            f"unknown dataset '{name}'; valid: {', '.join(SUGGESTED_DATASETS)} "
            "or any TFDS image dataset (python -c 'import tensorflow_datasets as t; print(t.list_builders())')"
        ) from None
    except Exception as error:  # a bad config or version in "name/config:version"
        raise UserError(f"dataset '{name}' cannot be loaded by TFDS ({first_line(error)}); check the name") from None


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


def _local_fashion_mnist_builder(idx_dir: str, data_dir: str):
    """A TFDS builder for ``fashion_mnist`` that reads verified local files instead of downloading."""
    tfds = _tfds()
    from tensorflow_datasets.image_classification import mnist

    class LocalFashionMNIST(mnist.FashionMNIST, skip_registration=True):
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

    return LocalFashionMNIST(data_dir=data_dir)


def prepare(dataset: str, tfds_dir: str = "", idx_dir: str = "") -> DatasetSpec:
    """Make ``dataset`` available in the TFDS data dir (idempotent) and describe it.

    Raises:
        UserError: unknown name, not an image dataset, or not available offline.
    """
    tfds = _tfds()
    data_dir = tfds_data_dir(tfds_dir)
    builder = _builder(dataset, data_dir)
    verified = "already prepared"
    if not builder.is_prepared():
        local = dataset == "fashion_mnist" and idx_dir and Path(idx_dir).is_dir()
        if dataset == "fashion_mnist" and idx_dir and not local:
            print(f"data: {idx_dir} does not exist; trying to download fashion_mnist")
        if local:
            builder = _local_fashion_mnist_builder(idx_dir, data_dir)
        try:
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
        builder = _builder(dataset, data_dir)
    return _spec(builder, data_dir, verified)


def _spec(builder, data_dir: str, verified: str) -> DatasetSpec:
    features = builder.info.features
    if "image" not in features or features["image"].shape[0] is None:
        raise UserError(
            f"dataset '{builder.name}' has no fixed-size 'image' feature; pick an image dataset "
            f"such as {', '.join(SUGGESTED_DATASETS)}"
        )
    height, width, channels = features["image"].shape
    if height % 4 or width % 4:
        raise UserError(f"dataset '{builder.name}' has {height}x{width} images; the models need sides divisible by 4")
    missing = [split for split in ("train", "test") if split not in builder.info.splits]
    if missing:
        raise UserError(f"dataset '{builder.name}' has no {' or '.join(missing)} split; pick one with train and test")
    names = tuple(features["label"].names) if "label" in features else ()
    return DatasetSpec(
        name=builder.name,
        version=str(builder.info.version),
        image_shape=(height, width, channels),
        class_names=names,
        splits={name: split.num_examples for name, split in builder.info.splits.items()},
        tfds_dir=data_dir,
        verified=verified,
    )


def describe(dataset: str, tfds_dir: str = "") -> DatasetSpec:
    """The spec of an already prepared dataset (raises UserError when it is not prepared)."""
    data_dir = tfds_data_dir(tfds_dir)
    builder = _builder(dataset, data_dir)
    if not builder.is_prepared():
        raise UserError(
            f"dataset '{dataset}' is not prepared in {data_dir}; run 'latentforge data --dataset {dataset}' first"
        )
    return _spec(builder, data_dir, "already prepared")


# ---- tf.data -------------------------------------------------------------------------------
def _load(spec: DatasetSpec, split: str, examples: int = 0, **kwargs):
    """tfds.load of a split, or of its first ``examples`` examples."""
    name = f"{split}[:{examples}]" if examples else split
    return _tfds().load(spec.name, split=name, data_dir=spec.tfds_dir, try_gcs=False, **kwargs)


def normalize(images, value_range: str):
    """uint8 images -> float32 in [0, 1] ("unit") or [-1, 1] ("tanh")."""
    import tensorflow as tf

    images = tf.cast(images, tf.float32)
    if value_range == "unit":
        return images / 255.0
    if value_range == "tanh":
        return images / 127.5 - 1.0
    raise ValueError(f"unknown value range {value_range!r}; expected 'unit' or 'tanh'")


def training_dataset(
    spec: DatasetSpec,
    *,
    batch_size: int,
    value_range: str,
    seed: int,
    examples: int = 0,
    repeat: bool = False,
    binarize: bool = False,
    labels: bool = False,
):
    """Normalized, cached, shuffled (seeded), batched and prefetched training images
    (``(images, labels)`` pairs with ``labels=True``).

    Args:
        spec: the prepared dataset.
        batch_size: global batch size; the last partial batch is dropped so every step
            has the same shape (needed by tf.distribute and by the GAN step).
        value_range: "unit" for [0, 1] (VAE) or "tanh" for [-1, 1] (GANs).
        seed: shuffle seed.
        examples: use only the first N training examples (0 = all).
        repeat: repeat forever (when the trainer counts steps per epoch).
        binarize: dynamic binarization: each pixel becomes 1 with probability its grey level,
            drawn afresh every epoch (the protocol of binarized-MNIST likelihood tables).
        labels: also yield the class labels (int32), for conditional models.
    """
    import tensorflow as tf

    if labels and not spec.class_names:
        raise UserError(f"dataset {spec.name} has no labels; conditional models need a labelled dataset")
    ds = _load(spec, "train", examples)
    if labels:
        ds = ds.map(
            lambda ex: (normalize(ex["image"], value_range), tf.cast(ex["label"], tf.int32)),
            num_parallel_calls=tf.data.AUTOTUNE,
        )
    else:
        ds = ds.map(lambda ex: normalize(ex["image"], value_range), num_parallel_calls=tf.data.AUTOTUNE)
    ds = ds.cache()
    count = examples or spec.splits["train"]
    if count < batch_size:
        raise UserError(f"batch_size {batch_size} is larger than the {count} training examples; lower batch_size")
    ds = ds.shuffle(min(count, 20000), seed=seed, reshuffle_each_iteration=True)
    if repeat:
        ds = ds.repeat()
    ds = ds.batch(batch_size, drop_remainder=True)
    if binarize:
        ds = ds.map(
            lambda x: tf.cast(tf.random.uniform(tf.shape(x), seed=seed) < x, tf.float32),
            num_parallel_calls=tf.data.AUTOTUNE,
        )
    return ds.prefetch(tf.data.AUTOTUNE)


def grey_test_images(spec: DatasetSpec):
    """The test split in [0, 1]: float32 (n, h, w, c)."""
    import numpy as np

    images, _ = load_arrays(spec, "test")
    return images.astype(np.float32) / 255.0


def binarized_test_images(spec: DatasetSpec, seed: int = 0):
    """The test split in [0, 1], binarized once with a fixed seed: float32 (n, h, w, c) of 0/1."""
    import numpy as np

    grey = grey_test_images(spec)
    return (np.random.default_rng(seed).random(grey.shape, dtype=np.float32) < grey).astype(np.float32)


def load_arrays(spec: DatasetSpec, split: str, limit: int = 0):
    """(uint8 images (n, h, w, c), int labels (n,)) of a split, as numpy arrays."""
    import numpy as np

    ds = _tfds().as_numpy(_load(spec, split, limit, batch_size=-1))
    labels = ds["label"] if "label" in ds else np.zeros(len(ds["image"]), dtype=np.int64)
    return ds["image"], labels


# ---- the stage ---------------------------------------------------------------------------------
def run_data(config) -> tuple[str, DatasetSpec]:
    """Data stage: prepare ``config.dataset`` and record what was prepared in an MLflow run.

    Returns:
        (the data run's id, the dataset spec)
    """
    import mlflow

    from pipeline import tracking

    spec = prepare(config.dataset, config.tfds_dir, config.data_dir)
    with tracking.stage_run("data", {"dataset": config.dataset, "data_dir": config.data_dir}) as run:
        mlflow.log_params(spec.as_params())
        mlflow.set_tag("dataset.verified", spec.verified)
        mlflow.log_dict(
            {**spec.__dict__, "image_shape": list(spec.image_shape), "class_names": list(spec.class_names)},
            "dataset/spec.json",
        )
    print(f"data: {spec.name} {spec.version} {spec.splits} ({spec.verified})")
    return run.info.run_id, spec


def spec_from_run(data_run_id: str, tfds_dir: str = "") -> DatasetSpec:
    """The dataset a data run prepared, read from ``tfds_dir`` when given (this machine's TFDS
    dir), else from the dir the data run recorded."""
    from pipeline import tracking

    run = tracking.get_run(data_run_id, "data")
    return describe(run.data.params["dataset.name"], tfds_dir or run.data.params["dataset.tfds_dir"])
