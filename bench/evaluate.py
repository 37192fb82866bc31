"""Benchmark: time per step of evaluating N generated samples (the feature extractor already trained).

Prints a table of median seconds over --repeats runs: sample generation, feature extraction,
and every registered metric. Reads the extractor from the MLflow registry of
$MLFLOW_TRACKING_URI (default sqlite:///mlflow.db), so run the pipeline (bin/run) first.

    .venv/bin/python bench/evaluate.py --model models:/fashion_mnist-dcgan@champion [--samples 10000] [--repeats 3]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--model", required=True, help="models:/<name>@<alias> or an export folder (run with onnxruntime)"
    )
    parser.add_argument("--samples", type=int, default=10000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--tfds-dir", default="")
    args = parser.parse_args()

    from pipeline import data, evaluate, features, metrics, tracking

    tracking.setup("latentforge-bench")
    runtime = evaluate.load_generator(model_uri=args.model)
    description = runtime.card
    spec = data.describe(description["dataset"], args.tfds_dir)
    extractor = features.get_extractor(spec)
    real = extractor.real_features(spec, "test")
    train = extractor.real_features(spec, "train", min(args.samples, spec.splits["train"]))
    timings: dict[str, list[float]] = {}

    def timed(name, fn):
        started = time.perf_counter()
        value = fn()
        timings.setdefault(name, []).append(time.perf_counter() - started)
        return value

    for repeat in range(args.repeats):
        samples = timed(
            "generate (onnxruntime)",
            lambda r=repeat: evaluate.generate(
                runtime.run, description["latent_dim"], args.samples, r, description["value_range"]
            ),
        )
        sample_f, logits = timed("features (onnxruntime)", lambda s=samples: extractor(s))
        context = metrics.MetricContext(real, sample_f, logits, len(spec.class_names), train, seed=repeat)
        for result in metrics.compute(metrics.DEFAULT_METRICS, context):
            timings.setdefault(f"metric {result.name}", []).append(result.seconds)

    print(
        f"evaluate benchmark: {args.samples} samples vs {len(real)} test images, {description['model']}, "
        f"median of {args.repeats}, {os.cpu_count()} CPUs"
    )
    print(f"{'step':<28}{'median s':>10}{'min s':>10}")
    total = 0.0
    for name, values in timings.items():
        median = statistics.median(values)
        total += median
        print(f"{name:<28}{median:>10.3f}{min(values):>10.3f}")
    print(f"{'total':<28}{total:>10.3f}")


if __name__ == "__main__":
    main()
