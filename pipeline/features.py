"""Feature extractor for sample-quality metrics: a classifier trained on the dataset itself.

Trained once per (dataset, extractor version), exported to ONNX and registered in the
MLflow Model Registry as ``<dataset>-features``; every later evaluation finds it there and
runs it with onnxruntime.

A labelled dataset trains it on its classes. An unlabelled image folder has none, so the same
network learns a self-supervised task instead: how far each image was turned, by 0, 1, 2 or 3
quarter turns (rotation prediction, Gidaris et al. 2018). To tell the four turns apart it has to
recognise what the images show and which way up it stands: the objects, their parts and their
layout, which is what a feature space for FID must see. It needs no download and no label, and
it is trained on the folder itself, like the labelled classifier (an ImageNet network would
need weights that cannot be fetched here, and does not know emoji or anyone's own images).
Its version carries ``-rot``; its "test accuracy" is the rotation accuracy on the test split,
every test image in all four turns.

Writes (MLflow run ``features``): test accuracy and loss, the ONNX extractor, the
registered model version (tags: extractor_version, test_accuracy).
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import numpy as np

from contract import signature
from contract.files import write_atomic_with
from pipeline import inputs, tracking
from pipeline.errors import UserError

# The feature classifier's recipe (models/classifier.py, cnn128-v5): 3 epochs at batch 128, its
# learning rate on a cosine. Its test accuracy is logged with every evaluation
# (extractor_test_accuracy) and shown in docs/results.md#evaluation-time-per-step-and-scores.
EPOCHS = 3
BATCH_SIZE = 128
# ... and at least this many optimizer steps: 3 epochs of a set of a few thousand images (the
# emoji set: 87 steps) left the classifier far less accurate and its features so crowded that
# blurred real images kept nearly the precision and recall of sharp ones; the logged sanity
# scores (``sanity_scores``) show how far blank and noise images fall from the real ones.
MIN_STEPS = 1000


def standard_epochs(spec: inputs.DatasetSpec, examples: int = 0) -> int:
    """The standard recipe's epochs on ``spec`` (``examples`` of its training split, 0 = all):
    ``EPOCHS``, or as many as make ``MIN_STEPS`` steps on a small dataset."""
    train = min(examples or spec.splits["train"], spec.splits["train"])
    steps_per_epoch = max(1, -(-train // BATCH_SIZE))
    return max(EPOCHS, -(-MIN_STEPS // steps_per_epoch))


def cache_dir() -> Path:
    """Where real-data features are cached ($LATENTFORGE_CACHE, default ~/.cache/latentforge)."""
    return Path(os.environ.get("LATENTFORGE_CACHE") or Path.home() / ".cache" / "latentforge")


class Extractor:
    """onnxruntime session: images in [0, 1] -> (features (n, 128), logits (n, classes)).

    Args:
        onnx_path: the registered extractor's ONNX file.
        version: the recipe version (``recipe_version``).
        test_accuracy: its accuracy on the test split.
        identity: names this exact extractor (registered model version, ``weights_digest``); keys the cache.
    """

    def __init__(self, onnx_path: str, version: str, test_accuracy: float, identity: str = ""):
        import onnxruntime as ort

        ort.set_default_logger_severity(3)  # errors only (0 verbose ... 4 fatal)
        self.session = ort.InferenceSession(onnx_path, providers=["CPUExecutionProvider"])
        self.onnx_path = onnx_path
        self.version = version
        self.test_accuracy = test_accuracy
        self.identity = identity or weights_digest(onnx_path)[:16]

    def real_features(self, spec: inputs.DatasetSpec, split: str, limit: int = 0) -> np.ndarray:
        """Features of the first ``limit`` images of a split (0 = all), cached per (dataset, extractor)."""
        path = cache_dir() / f"{spec.name}-{spec.version}" / self.identity / f"{split}-{limit or 'all'}.npy"
        if path.is_file():
            return np.load(path)
        images, _ = inputs.load_arrays(spec, split, limit=limit)
        feats, _ = self(images.astype(np.float32) / 255.0)
        path.parent.mkdir(parents=True, exist_ok=True)
        write_atomic_with(path, lambda out: np.save(out, feats))
        return feats

    def __call__(self, images: np.ndarray, batch_size: int = 1000):
        feats, logits = [], []
        for start in range(0, len(images), batch_size):
            chunk = np.ascontiguousarray(images[start : start + batch_size], dtype=np.float32)
            f, lg = self.session.run(["features", "logits"], {"image": chunk})
            feats.append(f)
            logits.append(lg)
        return np.concatenate(feats), np.concatenate(logits)


def registered_name(dataset: str) -> str:
    return f"{dataset}-features"


def _find_registered(spec: inputs.DatasetSpec, version: str):
    """The newest registered extractor of ``spec``'s dataset with recipe ``version``; for an image
    folder, also of its prepared version (a changed folder gets its own extractor)."""
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    client = MlflowClient()
    try:
        versions = client.search_model_versions(f"name = '{registered_name(spec.name)}'")
    except MlflowException:
        return None
    matching = [
        v
        for v in versions
        if v.tags.get("extractor_version") == version
        and (not spec.location or v.tags.get("dataset_version") == spec.version)
    ]
    return max(matching, key=lambda v: int(v.version)) if matching else None


TURNS = 4  # the rotation task's classes: 0, 90, 180 and 270 degrees


def task_of(spec: inputs.DatasetSpec) -> str:
    """What the extractor learns on ``spec``: its "classes", or "rotation" when it has no labels."""
    return "classes" if spec.class_names else "rotation"


def recipe_version(epochs: int = EPOCHS, examples: int = 0, task: str = "classes") -> str:
    """The extractor's identity: architecture version, ``-rot`` for the rotation task, plus the
    recipe when it is not the standard one."""
    from models import classifier

    version = classifier.VERSION + ("-rot" if task == "rotation" else "")
    if epochs == EPOCHS and examples == 0:
        return version
    return f"{version}-e{epochs}-n{examples}"


def quarter_turns(images, turns):
    """Each image of (b, s, s, c) turned counter-clockwise by its ``turns`` (b,) quarter turns."""
    import tensorflow as tf

    every = tf.stack([tf.image.rot90(images, k) for k in range(TURNS)], axis=1)  # (b, 4, s, s, c)
    return tf.gather(every, turns, batch_dims=1)


def rotation_batches(images: np.ndarray, *, batch_size: int, seed: int, epochs: int):
    """``inputs.array_batches`` of (image turned by k quarter turns, k): the rotation task, k drawn
    per image afresh in every batch (seeded by ``seed`` and the batch's index)."""
    import tensorflow as tf

    unlabelled = inputs.array_batches((images,), batch_size=batch_size, seed=seed, epochs=epochs)

    def turn(step, batch):
        (x,) = batch
        k = tf.random.stateless_uniform(
            (tf.shape(x)[0],), seed=tf.stack([tf.constant(seed, tf.int64), step]), maxval=TURNS, dtype=tf.int32
        )
        return quarter_turns(x, k), k

    return unlabelled.enumerate().map(turn)


def every_turn(images: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(the images in each of the four turns, the turns): the rotation task's test set."""
    turned = [np.rot90(images, k, axes=(1, 2)) for k in range(TURNS)]
    labels = np.repeat(np.arange(TURNS, dtype=np.int32), len(images))
    return np.ascontiguousarray(np.concatenate(turned)), labels


def get_extractor(spec: inputs.DatasetSpec, seed: int = 0, epochs: int = 0, examples: int = 0) -> Extractor:
    """The registered extractor for ``spec``'s dataset, training and registering it if missing.

    Args:
        epochs, examples: the training recipe (tests use a short one on a small slice; such an
            extractor is registered under its own version and never used for standard numbers).
    """
    import mlflow

    epochs = epochs or standard_epochs(spec, examples)
    version = recipe_version(epochs, examples, task_of(spec))
    found = _find_registered(spec, version)
    if found is None:
        found = run_features(spec, seed, epochs, examples)
    folder = mlflow.artifacts.download_artifacts(f"models:/{found.name}/{found.version}", dst_path=tempfile.mkdtemp())
    onnx_path = Path(folder) / "model.onnx"
    identity = f"v{found.version}-{weights_digest(onnx_path)[:12]}"
    return Extractor(str(onnx_path), version, float(found.tags["test_accuracy"]), identity)


def weights_digest(onnx_path: str | Path) -> str:
    """sha256 of the ONNX file's weights (shapes and values, in a canonical order), not of the file.

    Training the extractor is deterministic: two trainings on one machine give bit-identical
    weights, but tf2onnx names some nodes with process-wide counters, so the files' sha256 differ.
    This digest is the same for the same weights, so numbers scored on different machines or
    days can be shown to use the same extractor.
    """
    import hashlib

    import onnx
    from onnx import numpy_helper

    arrays = (numpy_helper.to_array(t) for t in onnx.load(str(onnx_path)).graph.initializer)
    digest = hashlib.sha256()
    for shape, dtype, values in sorted((a.shape, a.dtype.str, a.tobytes()) for a in arrays):
        digest.update(f"{dtype}{shape}".encode())
        digest.update(values)
    return digest.hexdigest()


SANITY_IMAGES = 2000  # at most, of each kind


def sanity_scores(network, train_x: np.ndarray, test_x: np.ndarray, seed: int = 0) -> dict[str, float]:
    """FIDs against the test split, in the trained network's features, of training images (what a
    perfect generator scores), blank white images and uniform noise: a feature space fit for FID
    puts the last two far above the first."""
    from pipeline import metrics

    count = min(SANITY_IMAGES, len(test_x), len(train_x))
    rng = np.random.default_rng(seed)

    def features_of(images):
        return np.asarray(network.predict(images, batch_size=500, verbose=0)[0], np.float64)

    reference = features_of(test_x)
    shape = (count,) + tuple(test_x.shape[1:])
    return {
        "sanity_fid_train": metrics.fid_between(reference, features_of(train_x[rng.permutation(len(train_x))[:count]])),
        "sanity_fid_white": metrics.fid_between(reference, features_of(np.ones(shape, np.float32))),
        "sanity_fid_noise": metrics.fid_between(reference, features_of(rng.uniform(0, 1, shape).astype(np.float32))),
    }


def _fit(network, train_x: np.ndarray, train_y: np.ndarray, task: str, epochs: int, seed: int):
    """Train ``network`` on its task (classes, or rotations of ``train_x``); the compiled trainable."""
    from models import classifier

    steps_per_epoch = -(-len(train_x) // BATCH_SIZE)
    trainable = classifier.build_trainable(network, epochs * steps_per_epoch)
    if task == "rotation":
        batches = rotation_batches(train_x, batch_size=BATCH_SIZE, seed=seed, epochs=epochs)
    else:
        batches = inputs.array_batches((train_x, train_y), batch_size=BATCH_SIZE, seed=seed, epochs=epochs)
    trainable.fit(batches, epochs=epochs, steps_per_epoch=steps_per_epoch, shuffle=False, verbose=2)
    return trainable


def _arrays(spec: inputs.DatasetSpec, task: str, examples: int):
    """(train x, train y, test x, test y, the test images as they are) in [0, 1]; the rotation
    task's test set is every test image in all four turns."""
    train_x, train_y = inputs.load_arrays(spec, "train", limit=examples)
    test_x, test_y = inputs.load_arrays(spec, "test")
    if not len(test_x):
        raise UserError(f"dataset '{spec.name}' has an empty test split; prepare it with test_fraction above 0")
    train_x, test_x = train_x.astype(np.float32) / 255.0, test_x.astype(np.float32) / 255.0
    held_out = test_x
    if task == "rotation":
        test_x, test_y = every_turn(test_x)
    return train_x, train_y, test_x, test_y, held_out


def _register(network, spec: inputs.DatasetSpec, tags: dict, example: np.ndarray) -> str:
    """Export ``network`` to ONNX and register it as ``<dataset>-features``; its version number."""
    import onnx

    from export import files

    endpoint = signature.Signature(
        "features",
        (signature.TensorSpec("image", spec.image_shape, "image", default={"kind": "uniform"}),),
        tuple(
            signature.TensorSpec(name, tuple(out.shape[1:]), "scalar")
            for name, out in zip(("features", "logits"), network.outputs)
        ),
    )
    with tempfile.TemporaryDirectory() as tmp:
        path = files.write_onnx(network, endpoint, Path(tmp) / "features.onnx")
        return tracking.log_onnx_model(
            onnx.load(str(path)),
            name="extractor",
            registered_name=registered_name(spec.name),
            tags=tags,
            input_example={"image": example},
        )


def run_features(spec: inputs.DatasetSpec, seed: int = 0, epochs: int = 0, examples: int = 0):
    """Train, export and register the classifier; returns the registered model version."""
    import keras
    import mlflow
    from mlflow import MlflowClient

    from models import classifier

    task = task_of(spec)
    if task == "rotation" and spec.image_shape[0] != spec.image_shape[1]:
        raise UserError(f"dataset '{spec.name}' has no labels and non-square images; the rotation task needs squares")
    epochs = epochs or standard_epochs(spec, examples)
    version = recipe_version(epochs, examples, task)
    train_x, train_y, test_x, test_y, held_out = _arrays(spec, task, examples)
    keras.utils.set_random_seed(seed)
    network = classifier.build_classifier(spec.image_shape, len(spec.class_names) if task == "classes" else TURNS)
    params = {
        "dataset": spec.name,
        "task": task,
        "extractor_version": version,
        "epochs": epochs,
        "train_examples": examples,
        "batch_size": BATCH_SIZE,
        "seed": seed,
    }
    with tracking.stage_run("features", params, tags={"extractor_version": version}):
        what = "classifier" if task == "classes" else "rotation classifier (the folder has no labels)"
        print(f"features: training the {spec.name} feature {what} {version} (once; registered after)", flush=True)
        trainable = _fit(network, train_x, train_y, task, epochs, seed)
        # The test split is scored once, after the last epoch (a pass per epoch would cost seconds each).
        loss, accuracy = trainable.evaluate(test_x, test_y, batch_size=1000, verbose=0)
        mlflow.log_metrics({"test_accuracy": float(accuracy), "test_loss": float(loss)})
        sane = sanity_scores(network, train_x, held_out, seed)
        mlflow.log_metrics(sane)
        print(
            f"features: sanity FIDs against the test split: training images {sane['sanity_fid_train']:.2f}, "
            f"blank white {sane['sanity_fid_white']:.1f}, uniform noise {sane['sanity_fid_noise']:.1f}",
            flush=True,
        )
        tags = {"extractor_version": version, "task": task, "test_accuracy": f"{accuracy:.4f}"}
        registered = _register(network, spec, {**tags, "dataset_version": spec.version}, test_x[:2])
    print(f"features: {task} test accuracy {accuracy:.4f}, registered {registered_name(spec.name)} v{registered}")
    return MlflowClient().get_model_version(registered_name(spec.name), registered)
