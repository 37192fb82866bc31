"""Evaluate stage: measure a trained generator.

Reads: a train run (its ``model/`` artifacts) and the prepared dataset.
Writes (MLflow run ``evaluate``): metrics, ``evaluation/report.json``, a sample grid and the
class histogram of the samples.

Metrics:
  - every family: ``fid`` — Fréchet distance between ``eval_samples`` generated images and the
    test split, in the features of a classifier trained on the dataset (``pipeline/features.py``);
    ``fid_floor`` — the same distance between as many training images and the test split
    (what a perfect generator would score); ``class_entropy`` and ``classes_hit`` of the
    classifier's predictions on the samples (mode coverage); ``classifier_score``.
  - VAE: ``test_loss`` (negative ELBO), ``test_reconstruction_loss``, ``test_kl_loss``, in nats
    per image on the test split.
"""

from __future__ import annotations

import json
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from pipeline import data, features, metrics, tracking
from pipeline.config import Config
from pipeline.train import load_trained


@dataclass
class EvalResult:
    run_id: str
    metrics: dict


def generate(network, latent_dim: int, n: int, seed: int, value_range: str, batch_size: int = 500):
    """n images in [0, 1] from seeded latents."""
    from serving import images

    z = images.latents(seed, n, latent_dim)
    out = np.concatenate([np.asarray(network(z[i : i + batch_size], training=False)) for i in range(0, n, batch_size)])
    return (out + 1.0) / 2.0 if value_range == "tanh" else out


def run_evaluate(config: Config, train_run_id: str) -> EvalResult:
    import mlflow

    from models.registry import FAMILIES
    from serving import images

    started = time.perf_counter()
    model, description = load_trained(train_run_id)
    spec = data.describe(description["dataset"], config.tfds_dir)
    n = config.eval_samples
    extractor_version = features.recipe_version(config.features_epochs, config.features_examples)
    primary = FAMILIES[description["model"]].primary_metric
    # How the primary metric was measured: promotion compares only numbers with equal protocols.
    protocol = f"fid/{extractor_version}/n={n}" if primary == "fid" else f"{primary}/{spec.name}-test"
    params = {
        "train_run_id": train_run_id,
        "eval_samples": n,
        "seed": config.seed,
        "extractor_version": extractor_version,
        "model": description["model"],
        "dataset": spec.name,
    }
    with tracking.stage_run("evaluate", params, tags={tracking.PROTOCOL_TAG: protocol}) as run:
        # The extractor's own run (when it must be trained) nests under this one.
        extractor = features.get_extractor(spec, config.seed, config.features_epochs, config.features_examples)
        samples = generate(model.generator, description["latent_dim"], n, config.seed + 1, description["value_range"])
        test_x, _ = data.load_arrays(spec, "test")
        train_x, _ = data.load_arrays(spec, "train", limit=min(n, spec.splits["train"]))
        test_f, _ = extractor(test_x.astype(np.float32) / 255.0)
        train_f, _ = extractor(train_x.astype(np.float32) / 255.0)
        sample_f, sample_logits = extractor(samples)
        coverage = metrics.class_coverage(sample_logits, len(spec.class_names))
        results = {
            "fid": metrics.fid(sample_f, test_f),
            "fid_floor": metrics.fid(train_f, test_f),
            "class_entropy": coverage["class_entropy"] + 0.0,
            "classes_hit": coverage["classes_hit"],
            "classifier_score": metrics.classifier_score(sample_logits),
            "extractor_test_accuracy": extractor.test_accuracy,
        }
        if description["model"] == "vae":
            test = data.eval_dataset(spec, "test", batch_size=500, value_range="unit")
            scores = model.evaluate(test, verbose=0, return_dict=True)
            results.update({f"test_{k}": float(v) for k, v in scores.items()})
        results["eval_seconds"] = time.perf_counter() - started
        mlflow.log_metrics(results)
        report = {
            "metrics": results,
            "protocol": protocol,
            "class_histogram": dict(zip(spec.class_names, coverage["histogram"])),
            "params": params,
        }
        mlflow.log_dict(report, "evaluation/report.json")
        picture = images.grid(images.to_uint8(samples[:64], "unit"), columns=8)
        mlflow.log_image(picture, artifact_file="evaluation/samples.png")
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "class_histogram.png"
            path.write_bytes(images.png_bytes(_histogram_picture(coverage["histogram"])))
            mlflow.log_artifact(str(path), "evaluation")
    print("evaluate: " + json.dumps({k: round(v, 4) for k, v in results.items()}))
    return EvalResult(run.info.run_id, results)


def _histogram_picture(counts, bar_width: int = 12, height: int = 100) -> np.ndarray:
    """A plain bar chart (uint8 (H, W, 1)) of class counts; no plotting library needed."""
    counts = np.asarray(counts, np.float64)
    picture = np.full((height, bar_width * len(counts) + 2, 1), 255, np.uint8)
    peak = max(counts.max(), 1.0)
    for i, c in enumerate(counts):
        bar = int(round(c / peak * (height - 2)))
        picture[height - bar : height, 1 + i * bar_width : (i + 1) * bar_width - 1] = 40
    return picture
