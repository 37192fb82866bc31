"""Evaluate stage: measure a trained generator.

Reads: an export run's ONNX generator (or a registered ``models:/`` version), run with
onnxruntime so that what is measured is what ships; the prepared dataset.
Writes (MLflow run ``evaluate``): metrics (and ``seconds_<metric>`` timings),
``evaluation/report.json``, pictures: a sample grid, the class histogram of the samples, a
nearest-neighbour grid (each sample above its closest training image in feature space) and
a latent interpolation strip.

Metrics (``--metrics``, from the registry in ``pipeline/metrics.py``), in the features of a
classifier trained on the dataset (``pipeline/features.py``; on an unlabelled image folder, a
rotation classifier), ``eval_samples`` generated images against the test split (an image
folder: against all its images):
  - ``fid`` and ``fid_floor`` (as many training images vs the test split, or for an image folder
    two disjoint random halves of its images: what a perfect generator would score); ``kid`` ±
    ``kid_std``; ``precision``/``recall`` (k=3); ``density``/``coverage`` (k=5);
    ``class_entropy``, ``classes_hit`` (mode coverage) and ``classifier_score`` (labelled data).
  - The family's own evaluation (``Family.evaluate``), e.g. the VAE's ``test_loss`` (negative
    ELBO), ``test_reconstruction_loss``, ``test_kl_loss`` and ``test_iwae_nll`` (importance-weighted
    bound, ``iwae_k`` samples), in nats per image on the test split binarized once with seed 0;
    the AE's ``test_reconstruction_loss`` (nats per image, grey levels).
  - Conditional generators: samples cycle through the classes; ``label_accuracy`` (and per
    class ``label_accuracy_<i>``) is how often the classifier agrees with the requested label.
  - ``int8_fid`` and ``int8_fid_change``: the FID of the export's INT8 generator on the same
    latents, and its difference from the FP32 FID.
  - A style-based model of an image folder: ``projection_l2_median``, the median pixel L2 (RGB in
    [0, 1]) of 4 held-out test images to their projections into W (``pipeline/project.py``, 200
    steps), and ``evaluation/projections.png`` (the images above their projections).
The run's tag ``latentforge.protocol`` records how the numbers were measured; promotion only
compares numbers with equal protocols.
"""

from __future__ import annotations

import json
import tempfile
import time
from dataclasses import dataclass

import numpy as np

from contract import images
from models import registry
from pipeline import features, inputs, metrics, tracking
from pipeline.config import Config
from pipeline.errors import UserError, load_runtime
from pipeline.loop import load_trained


@dataclass
class EvalResult:
    run_id: str
    metrics: dict


def conditional_accuracy(logits: np.ndarray, labels: np.ndarray, class_names) -> dict:
    """How often the feature classifier agrees with the label a conditional sample was drawn for:
    overall (``label_accuracy``; chance is 1 / classes) and per class (``label_accuracy_<i>``)."""
    predicted = np.argmax(logits, axis=1)
    result = {"label_accuracy": float(np.mean(predicted == labels))}
    for i in range(len(class_names)):
        mask = labels == i
        if mask.any():
            result[f"label_accuracy_{i}"] = float(np.mean(predicted[mask] == i))
    return result


def load_generator(export_run_id: str | None = None, model_uri: str | None = None):
    """The shipped generator (onnxruntime) of an export run or a models:/ URI."""
    if not (export_run_id or model_uri):
        raise UserError("evaluate needs --export-run-id <id> or --model models:/<name>@<alias>")
    if model_uri:
        return load_runtime(model_uri)
    assert export_run_id  # one of the two, checked above
    tracking.get_run(export_run_id, "export")
    return load_runtime(str(tracking.download(export_run_id, "export", tempfile.mkdtemp())))


def run_evaluate(config: Config, export_run_id: str | None = None, model_uri: str | None = None) -> EvalResult:
    """Measure the exported generator of ``export_run_id`` (or the registered ``model_uri``).

    Samples come from the ONNX file through onnxruntime, so what is measured is what ships;
    the VAE's likelihood bounds use its encoder and decoder from the train run the model card names.
    """
    import mlflow

    started = time.perf_counter()
    runtime = load_generator(export_run_id, model_uri)
    description = runtime.card
    try:
        family = registry.get(description["model"])
    except ValueError as error:
        raise UserError(f"cannot evaluate {model_uri or export_run_id}: {error}") from None
    spec = inputs.describe(description["dataset"], config.tfds_dir, description.get("dataset_version", ""))
    extractor_version = features.recipe_version(
        config.features_epochs or features.standard_epochs(spec, config.features_examples),
        config.features_examples,
        features.task_of(spec),
    )
    # How the numbers are measured: promotion compares only numbers with equal protocols.
    protocol = f"extractor={extractor_version};n={config.eval_samples}" + family.protocol(config, description)
    if spec.location:  # an image folder: against every image (ADA's protocol for small sets), of this version
        protocol += f";real=all;data={spec.version}"
    params = {
        "export_run_id": export_run_id or description.get("export_run_id", ""),
        "model_uri": model_uri or "",
        "train_run_id": description.get("train_run_id", ""),
        "eval_samples": config.eval_samples,
        "seed": config.seed,
        "extractor_version": extractor_version,
        "model": description["model"],
        "dataset": spec.name,
    }
    with tracking.stage_run("evaluate", params, tags={tracking.PROTOCOL_TAG: protocol}) as run:
        measured = _measure(config, runtime, family, spec)
        results = measured.results
        results["eval_seconds"] = time.perf_counter() - started
        mlflow.log_metrics({**results, **measured.timings})
        report = {
            "metrics": results,
            "seconds": measured.timings,
            "protocol": protocol,
            "class_histogram": dict(zip(spec.class_names, measured.coverage["histogram"])),
            "params": params,
        }
        mlflow.log_dict(report, "evaluation/report.json")
        _log_pictures(config, runtime, spec, measured)
    print("evaluate: " + json.dumps({k: round(v, 4) for k, v in results.items()}))
    return EvalResult(run.info.run_id, results)


@dataclass
class _Measured:
    """What ``_measure`` found: the metrics, their timings, the samples, their features and the
    class coverage, and the family's pictures and tables."""

    results: dict
    timings: dict
    samples: np.ndarray
    sample_features: np.ndarray
    train_features: np.ndarray
    coverage: dict
    family: registry.Evaluation


def _measure(config: Config, runtime, family, spec) -> _Measured:
    """Inside the evaluate run: the common metrics on ``eval_samples`` samples, the INT8 twin's
    FID, the conditional accuracy and the family's own evaluation."""
    tracking.log_dataset(spec, "test", "evaluation")
    n, seed, value_range = config.eval_samples, config.seed + 1, runtime.card["value_range"]
    train_limit = min(n, spec.splits["train"])
    tracking.log_dataset(spec, "train", "evaluation", train_limit)  # memorization, P/R
    # The extractor's own run (when it must be trained) nests under this one.
    extractor = features.get_extractor(spec, config.seed, config.features_epochs, config.features_examples)
    labels = runtime.balanced_labels(n) if runtime.conditional else None
    samples = images.sample(runtime.run, runtime.latent_dim, n, seed, value_range, labels=labels)
    sample_f, sample_logits = extractor(samples)
    train_features = extractor.real_features(spec, "train", train_limit)
    real = extractor.real_features(spec, reference_split(spec))
    context = metrics.MetricContext(
        real=real,
        fake=sample_f,
        fake_logits=sample_logits,
        num_classes=len(spec.class_names),
        train=train_features,
        seed=config.seed,
        floor=halves(real, config.seed) if spec.location else None,
    )
    # an unlabelled folder's extractor predicts rotations, not classes: no class coverage to measure
    names = [name for name in config.metric_names() if spec.class_names or name != "classes"]
    computed = metrics.compute(names, context)
    results = {k: v for result in computed for k, v in result.values.items()}
    results["extractor_test_accuracy"] = extractor.test_accuracy
    if labels is not None:
        results.update(conditional_accuracy(sample_logits, labels, spec.class_names))
    int8 = _int8_twin(runtime)
    if int8 is not None and "fid" in results:  # what quantization costs in quality
        int8_samples = images.sample(int8.run, runtime.latent_dim, n, seed, value_range, labels=labels)
        results["int8_fid"] = metrics.fid_between(context.real, extractor(int8_samples)[0])
        results["int8_fid_change"] = results["int8_fid"] - results["fid"]
    own = family.evaluate(_family_context(config, runtime, family, spec, extractor, context, seed))
    results.update(own.metrics)
    projected = _projections(runtime, spec, config.seed)
    if projected is not None:
        own.pictures["projections"], projection_metrics = projected
        results.update(projection_metrics)
    return _Measured(
        results,
        {f"seconds_{result.name}": result.seconds for result in computed},
        samples,
        sample_f,
        train_features,
        metrics.class_coverage(sample_logits, len(spec.class_names)) if spec.class_names else {"histogram": []},
        own,
    )


PROJECTED = 4  # held-out images of an image folder that a style-based model projects
PROJECTION_STEPS = 200


def _projections(runtime, spec, seed: int):
    """For a style-based model of an image folder: ``PROJECTED`` held-out test images projected
    into W (``pipeline/project.py``, ``PROJECTION_STEPS`` steps): (a picture, the targets above
    their reconstructions; {"projection_l2_median"}: pixel L2 in [0, 1]). None for other models."""
    if not spec.location or "styles" not in runtime.card or "synthesis" not in runtime.card["graphs"]:
        return None
    from pipeline import project

    targets = inputs.load_arrays(spec, "test", limit=PROJECTED)[0].astype(np.float32) / 255.0
    value_range = runtime.card["value_range"]
    made, distances = [], []
    prepared = {"synthesize": project.synthesis_network(runtime), "spread": project.w_spread(runtime, seed=seed)}
    for target in targets:
        unit_target = images.from_unit(target, value_range)[None]
        found = project.project(runtime, unit_target, steps=PROJECTION_STEPS, seed=seed, **prepared)
        made.append(np.clip(images.to_unit(found["image"], value_range), 0.0, 1.0))
        distances.append(project.pixel_distance(target, made[-1]))
    picture = images.grid(images.to_uint8(np.concatenate([targets, np.stack(made)]), "unit"), len(targets))
    return picture, {"projection_l2_median": float(np.median(distances))}


def halves(real: np.ndarray, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Two disjoint seeded random halves of an image folder's features: its real-vs-real FID floor
    (the reference is every image, so a training subset would be compared partly with itself)."""
    order = np.random.default_rng(seed).permutation(len(real))
    return real[order[: len(real) // 2]], real[order[len(real) // 2 :]]


def reference_split(spec) -> str:
    """What samples are compared with: a TFDS dataset's test split; every image of an image folder
    (Karras et al. 2020's protocol for small sets: a test split of a few hundred images would
    measure its own sampling noise; the held-out images serve projection and memorisation)."""
    return "all" if spec.location else "test"


def _family_context(config, runtime, family, spec, extractor, context, seed: int) -> registry.EvaluationContext:
    """The family's evaluation context: the shipped runtime, the extractor, the real features and
    a scorer against them, the stage's samples' features, lazy loaders of the model and test split."""

    def score(fake) -> dict:
        precision, recall = metrics.precision_recall(context.real, fake, k=3)
        return {"fid": metrics.fid_between(fake, context.real), "precision": precision, "recall": recall}

    train_run_id = runtime.card.get("train_run_id", "")
    return registry.EvaluationContext(
        runtime=runtime,
        features=extractor,
        real=context.real,
        score=score,
        sample_features=context.fake,
        samples=config.eval_samples,
        seed=seed,
        load_model=lambda: load_trained(train_run_id)[0],
        load_test_images=lambda: inputs.test_images(spec, _binarized(family, runtime.card)),
        config=config,
    )


def _binarized(family, card: dict) -> bool:
    """Whether the model of ``card`` trained (and so is measured) on binarized images."""
    options = registry.make_options(family, card.get("options", {})).resolved()
    return family.is_binarized(options, tuple(card["output_shape"]))


def _log_pictures(config: Config, runtime, spec, measured: _Measured) -> None:
    """Into the evaluate run: the sample grid, nearest neighbours, an interpolation strip, the class
    histogram, and the family's pictures and tables."""
    import mlflow

    samples = measured.samples
    grid = images.grid(images.to_uint8(samples[:64], "unit"), columns=8)
    mlflow.log_image(grid, artifact_file="evaluation/samples.png")
    train_images, _ = inputs.load_arrays(spec, "train", limit=len(measured.train_features))
    mlflow.log_image(
        nearest_neighbour_grid(samples[:32], measured.sample_features[:32], train_images, measured.train_features),
        artifact_file="evaluation/nearest_neighbours.png",
    )
    run = _row_labelled(runtime) if runtime.conditional else runtime.run
    strip = interpolation_strip(run, runtime.latent_dim, config.seed, runtime.card["value_range"])
    mlflow.log_image(strip, artifact_file="evaluation/interpolation.png")
    if measured.coverage["histogram"]:
        histogram = _histogram_picture(measured.coverage["histogram"])
        mlflow.log_image(histogram, artifact_file="evaluation/class_histogram.png")
    for name, picture in measured.family.pictures.items():
        mlflow.log_image(picture, artifact_file=f"evaluation/{name}.png")
    for name, table in measured.family.tables.items():
        mlflow.log_dict(table, f"evaluation/{name}.json")


def _int8_twin(runtime):
    """The export's INT8 generator beside the FP32 one (export folders only; None otherwise)."""
    from pathlib import Path

    from serving.runtime import GeneratorRuntime

    folder = Path(runtime.source)
    if not (folder.is_dir() and (folder / "generator_int8.onnx").is_file()):
        return None
    return GeneratorRuntime.load(str(folder / "generator_int8.onnx"))


def nearest_neighbour_grid(samples, sample_features, train_images, train_features, columns: int = 8):
    """Each generated sample (unit range) beside its nearest training image in feature space.

    Rows alternate: samples, then their neighbours. Near-copies expose memorization.
    """
    from contract import images

    distances = metrics.squared_distances(sample_features, train_features)
    nearest = train_images[np.argmin(distances, axis=1)]
    tiles: list[np.ndarray] = []
    for start in range(0, len(samples), columns):
        tiles.extend(images.to_uint8(samples[start : start + columns], "unit"))
        tiles.extend(nearest[start : start + columns])
    return images.grid(np.stack(tiles), columns=columns)


def interpolation_strip(run, latent_dim: int, seed: int, value_range: str, rows: int = 6, steps: int = 10):
    """``rows`` spherical interpolations between pairs of seeded latents, ``steps`` images each;
    ``run`` maps a latent batch to images."""
    from contract import images

    ends = images.latents(seed + 2, 2 * rows, latent_dim)
    z = np.concatenate([images.interpolate(ends[2 * r], ends[2 * r + 1], steps) for r in range(rows)])
    out = np.asarray(run(z))
    return images.grid(images.to_uint8(out, value_range), columns=steps)


def _row_labelled(runtime, steps: int = 10):
    """For a conditional generator's strips: each row of ``steps`` images gets one class."""

    def run(z):
        return runtime.run(z, (np.arange(len(z)) // steps % len(runtime.class_names)).astype(np.int32))

    return run


def _histogram_picture(counts, bar_width: int = 12, height: int = 100) -> np.ndarray:
    """A plain bar chart (uint8 (H, W, 1)) of class counts; no plotting library needed."""
    counts = np.asarray(counts, np.float64)
    picture = np.full((height, bar_width * len(counts) + 2, 1), 255, np.uint8)
    peak = max(counts.max(), 1.0)
    for i, c in enumerate(counts):
        bar = int(round(c / peak * (height - 2)))
        picture[height - bar : height, 1 + i * bar_width : (i + 1) * bar_width - 1] = 40
    return picture
