"""Input pipeline: what the stages read from a dataset the data stage prepared.

Reads: the prepared TFDS dataset (in the TFDS data dir) or image folder (``pipeline/folders.py``,
under the same dir), and the data run's params to find it.
Gives: its description (``DatasetSpec``: shape, classes, splits), the seeded ``tf.data``
training pipeline the models train on, and the test and train splits as numpy arrays for
evaluation and the feature extractor. Writes nothing; preparing the dataset is ``pipeline/data.py``.
"""

from __future__ import annotations

import functools
import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

from contract.files import first_line
from pipeline.errors import UserError

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
    location: str = ""  # a prepared image folder's directory; "" = a TFDS dataset

    def as_params(self) -> dict[str, str]:
        return {
            "dataset.name": self.name,
            "dataset.version": self.version,
            "dataset.image_shape": "x".join(map(str, self.image_shape)),
            "dataset.num_classes": str(len(self.class_names)),
            "dataset.tfds_dir": self.tfds_dir,
            **({"dataset.location": self.location} if self.location else {}),
            **{f"dataset.split.{k}": str(v) for k, v in self.splits.items()},
        }


# ---- the dataset and its description -----------------------------------------------------------
def import_tfds():
    """tensorflow_datasets (imported on first use: it pulls in TensorFlow), with the progress bar
    off and few download retries."""
    import tensorflow_datasets as tfds
    from tensorflow_datasets.core.download import downloader

    tfds.disable_progress_bar()
    # TFDS retries a failed download with exponential back-off (minutes when offline);
    # a few quick retries tell "no network" from a hiccup just as well.
    downloader.MAX_RETRIES = min(getattr(downloader, "MAX_RETRIES", 3), 3)
    return tfds


def tfds_data_dir(tfds_dir: str) -> str:
    """The TFDS data dir: ``tfds_dir``, else $TFDS_DATA_DIR, else ~/tensorflow_datasets."""
    return os.path.expanduser(tfds_dir or os.environ.get("TFDS_DATA_DIR", "~/tensorflow_datasets"))


def tfds_builder(name: str, data_dir: str):
    """The TFDS builder of ``name`` ("fashion_mnist", or "name/config:version") over ``data_dir``.

    Raises:
        UserError: TFDS does not know the name, or cannot build it (bad config or version).
    """
    tfds = import_tfds()
    try:
        return tfds.builder(name, data_dir=data_dir)
    except tfds.core.registered.DatasetNotFoundError:
        folder = " (nor a folder: no such path; start a relative folder with ./)" if "/" in name else ""
        raise UserError(
            f"unknown dataset '{name}'{folder}; valid: {', '.join(SUGGESTED_DATASETS)}, an image folder or zip, "
            "or any TFDS image dataset (python -c 'import tensorflow_datasets as t; print(t.list_builders())')"
        ) from None
    except Exception as error:  # a bad config or version in "name/config:version"
        raise UserError(f"dataset '{name}' cannot be loaded by TFDS ({first_line(error)}); check the name") from None


def spec_from_builder(builder, data_dir: str, verified: str) -> DatasetSpec:
    """Describe the dataset of a prepared ``builder``, checking that the models can read it.

    Raises:
        UserError: no fixed-size image feature, sides not divisible by 4, or no train or test split.
    """
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


def describe(dataset: str, tfds_dir: str = "", version: str = "") -> DatasetSpec:
    """The spec of an already prepared dataset: an image folder prepared under that name (or from
    that path; ``version`` = its key, else the one prepared last), else a TFDS dataset.

    Raises:
        UserError: it is not prepared.
    """
    from pipeline import folders

    data_dir = tfds_data_dir(tfds_dir)
    name = folders.default_name(dataset) if folders.looks_like_path(dataset) else dataset
    prepared = folders.find(data_dir, name, version)
    if prepared is not None:
        return spec_from_folder(prepared, data_dir)
    if folders.is_folder(dataset) or (folders.root_of(data_dir) / name).is_dir():
        raise UserError(f"image folder '{dataset}' is not prepared in {data_dir}; run 'latentforge data' with it first")
    builder = tfds_builder(dataset, data_dir)
    if not builder.is_prepared():
        raise UserError(
            f"dataset '{dataset}' is not prepared in {data_dir}; run 'latentforge data --dataset {dataset}' first"
        )
    return spec_from_builder(builder, data_dir, "already prepared")


def spec_from_folder(prepared, data_dir: str) -> DatasetSpec:
    """The spec of a prepared image folder (``folders.Prepared``)."""
    meta = prepared.meta
    return DatasetSpec(
        name=meta["name"],
        version=meta["key"],
        image_shape=prepared.image_shape,
        class_names=tuple(meta["class_names"]),
        splits=dict(meta["splits"]),
        tfds_dir=data_dir,
        verified=f"sha256 of the {meta['files']} source files' names and bytes: {meta['source_sha256']}",
        location=str(prepared.location),
    )


# ---- tf.data -------------------------------------------------------------------------------
def split_files(spec: DatasetSpec, split: str) -> list[Path]:
    """The prepared files of ``split`` (TFDS's record shards, or an image folder's records and
    labels), sorted."""
    if spec.location:
        return [Path(spec.location) / f"{split}.u8", Path(spec.location) / f"{split}-labels.npy"]
    root = Path(spec.tfds_dir) / spec.name
    folders = [f for f in root.glob(f"**/{spec.version}") if f.is_dir()] or [root]
    return sorted(f for folder in folders for f in folder.glob(f"{spec.name}-{split}.*") if f.is_file())


def split_digest(spec: DatasetSpec, split: str) -> str:
    """sha256 over the prepared files of ``split`` (names and bytes): which data a run read."""
    files = tuple((str(path), path.stat().st_size, path.stat().st_mtime_ns) for path in split_files(spec, split))
    return _digest(files)


@functools.cache
def _digest(files: tuple) -> str:
    digest = hashlib.sha256()
    for name, _, _ in files:
        digest.update(Path(name).name.encode())
        with open(name, "rb") as stream:
            for block in iter(lambda: stream.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()


def _load(spec: DatasetSpec, split: str, examples: int = 0, **kwargs):
    """tfds.load of a split, or of its first ``examples`` examples."""
    name = f"{split}[:{examples}]" if examples else split
    return import_tfds().load(spec.name, split=name, data_dir=spec.tfds_dir, try_gcs=False, **kwargs)


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
    xflip: bool = False,
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
        xflip: add a mirrored copy of every image (StyleGAN2-ADA's ``--mirror``): twice the examples.
    """
    import tensorflow as tf

    if labels and not spec.class_names:
        raise UserError(f"dataset {spec.name} has no labels; conditional models need a labelled dataset")
    count = training_examples(spec, examples, xflip)
    if count < batch_size:
        raise UserError(f"batch_size {batch_size} is larger than the {count} training examples; lower batch_size")
    if spec.location:
        return _folder_dataset(spec, batch_size, value_range, seed, examples, repeat, binarize, labels, xflip)
    ds = _load(spec, "train", examples)
    if labels:
        ds = ds.map(
            lambda ex: (normalize(ex["image"], value_range), tf.cast(ex["label"], tf.int32)),
            num_parallel_calls=tf.data.AUTOTUNE,
        )
    else:
        ds = ds.map(lambda ex: normalize(ex["image"], value_range), num_parallel_calls=tf.data.AUTOTUNE)
    ds = _shuffled_batches(ds, count, batch_size=batch_size, seed=seed, repeat=repeat, xflip=xflip)
    if binarize:
        ds = ds.map(
            lambda x: tf.cast(tf.random.uniform(tf.shape(x), seed=seed) < x, tf.float32),
            num_parallel_calls=tf.data.AUTOTUNE,
        )
    return ds.prefetch(tf.data.AUTOTUNE)


def training_examples(spec: DatasetSpec, examples: int = 0, xflip: bool = False) -> int:
    """Examples in one pass over the training split: its first ``examples`` (0 = all), twice with ``xflip``."""
    return min(examples or spec.splits["train"], spec.splits["train"]) * (2 if xflip else 1)


SHUFFLE_BUFFER = 20000  # examples
CACHE_BYTES = 1 << 30  # an image folder's training split is kept in memory up to this size (uint8)


def _shuffled_batches(ds, count: int, *, batch_size: int, seed: int, repeat: bool, xflip: bool, cache: bool = True):
    """What every training source ends with: cached in memory (``cache``), with mirrored copies
    (``xflip``: each image followed by its mirror image, so that the shuffle buffer mixes both
    however many images there are), shuffled (seeded, afresh each pass), repeated, in fixed-size
    batches (the last partial one dropped)."""
    import tensorflow as tf

    if cache:
        ds = ds.cache()
    if xflip:
        ds = ds.flat_map(
            lambda *example: tf.data.Dataset.from_tensors(example if len(example) > 1 else example[0]).concatenate(
                tf.data.Dataset.from_tensors(_mirrored(*example))
            )
        )
    ds = ds.shuffle(min(count, SHUFFLE_BUFFER), seed=seed, reshuffle_each_iteration=True)
    # Unrepeated, tf.data is told the length (a record file's, a mirrored source's, is unknown to it), so
    # Keras ends each epoch on its last full batch instead of running a step into the end of the data: a
    # step cut short that way can leave a temporary variable behind that fails the next epoch
    # ("AlreadyExistsError: Resource __per_step_0/.../tmp_var": StyleGAN with ADA on the emoji set).
    ds = ds.repeat() if repeat else ds.apply(tf.data.experimental.assert_cardinality(count))
    return ds.batch(batch_size, drop_remainder=True)


def _mirrored(*example):
    """An example (image, or image and label) with its image flipped left to right."""
    import tensorflow as tf

    return (tf.reverse(example[0], axis=[-2]), *example[1:]) if len(example) > 1 else tf.reverse(example[0], axis=[-2])


def _folder_dataset(spec, batch_size, value_range, seed, examples, repeat, binarize, labels, xflip):
    """``training_dataset`` of a prepared image folder: its fixed-size uint8 records, cached as
    uint8 (a quarter of the memory of floats) up to ``CACHE_BYTES``, beyond that read from the
    file each pass (the page cache keeps what memory allows), normalized a batch at a time."""
    import tensorflow as tf

    from pipeline import folders

    prepared = folders.load(spec.location)
    shape = prepared.image_shape
    ds = tf.data.FixedLengthRecordDataset(
        str(prepared.location / "train.u8"), record_bytes=shape[0] * shape[1] * shape[2], buffer_size=1 << 20
    ).map(lambda record: tf.reshape(tf.io.decode_raw(record, tf.uint8), shape), num_parallel_calls=tf.data.AUTOTUNE)
    if labels:
        ds = tf.data.Dataset.zip((ds, tf.data.Dataset.from_tensor_slices(prepared.labels("train"))))
    if examples:
        ds = ds.take(examples)
    count = training_examples(spec, examples, xflip)
    held = (examples or prepared.meta["splits"]["train"]) * shape[0] * shape[1] * shape[2]
    ds = _shuffled_batches(
        ds, count, batch_size=batch_size, seed=seed, repeat=repeat, xflip=xflip, cache=held <= CACHE_BYTES
    )

    def normalized(images, *rest):
        images = normalize(images, value_range)
        if binarize:
            images = tf.cast(tf.random.uniform(tf.shape(images), seed=seed) < images, tf.float32)
        return (images, *rest) if rest else images

    return ds.map(normalized, num_parallel_calls=tf.data.AUTOTUNE).prefetch(tf.data.AUTOTUNE)


def array_batches(arrays: tuple, *, batch_size: int, seed: int, epochs: int):
    """Shuffled (seeded, afresh each epoch) batches of in-memory arrays for ``epochs`` epochs, as one
    tf.data pipeline to pass to ``fit`` with ``steps_per_epoch = ceil(n / batch_size)``.

    Why not ``fit(x, y)``: Keras builds a new array pipeline every epoch, with tf.data's autotuning
    on, and destroying the previous one waited 23-30 s for the autotuner's thread on this project's
    2 cores (measured: the feature classifier's 3 epochs took 221 s that way, 174 s this way). One
    pipeline across the epochs, with autotuning off and a fixed prefetch, has no such wait.
    """
    import tensorflow as tf

    count = len(arrays[0])
    ds = tf.data.Dataset.from_tensor_slices(arrays)
    ds = ds.shuffle(count, seed=seed, reshuffle_each_iteration=True).batch(batch_size).repeat(epochs)
    options = tf.data.Options()
    options.autotune.enabled = False
    return ds.prefetch(2).with_options(options)


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
    """(uint8 images (n, h, w, c), int labels (n,)) of a split ("all": train then test), as numpy arrays."""
    import numpy as np

    if split == "all":
        parts = [load_arrays(spec, name) for name in ("train", "test")]
        images, labels = np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])
        return (images[:limit], labels[:limit]) if limit else (images, labels)

    if spec.location:
        from pipeline import folders

        prepared = folders.load(spec.location)
        count = limit or spec.splits[split]
        return np.array(prepared.images(split)[:count]), prepared.labels(split)[:count].astype(np.int64)

    ds = import_tfds().as_numpy(_load(spec, split, limit, batch_size=-1))
    labels = ds["label"] if "label" in ds else np.zeros(len(ds["image"]), dtype=np.int64)
    return ds["image"], labels


def test_images(spec: DatasetSpec, binarized: bool):
    """The test split in [0, 1]: binarized once (seed 0) for a Bernoulli family, else grey levels."""
    return binarized_test_images(spec) if binarized else grey_test_images(spec)
