"""Benchmark: time per step of evaluating N generated samples (the feature extractor already trained).

Prints a table of median seconds over --repeats runs: sample generation, feature extraction,
and every metric of the evaluate stage's default list; writes them, with the metrics' values
(median, min and max over the repeats, each repeat a different sample seed) and their
provenance, to bench/results/evaluate.json (``bench/record.py``). Reads the extractor from the MLflow registry of
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

from bench import record  # noqa: E402  (after the path insert)
from bench.record import column, presented  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--model", required=True, help="models:/<name>@<alias> or an export folder (run with onnxruntime)"
    )
    parser.add_argument("--samples", type=int, default=10000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--tfds-dir", default="")
    record.add_arguments(parser, "evaluate")
    args = parser.parse_args()

    from contract import images
    from pipeline import evaluate, features, inputs, metrics, tracking

    tracking.setup("latentforge-bench")
    runtime = evaluate.load_generator(model_uri=args.model)
    description = runtime.card
    spec = inputs.describe(description["dataset"], args.tfds_dir)
    extractor = features.get_extractor(spec)
    real = extractor.real_features(spec, "test")
    train = extractor.real_features(spec, "train", min(args.samples, spec.splits["train"]))
    timings: dict[str, list[float]] = {}
    values: dict[str, list[float]] = {}

    def timed(name, fn):
        started = time.perf_counter()
        value = fn()
        timings.setdefault(name, []).append(time.perf_counter() - started)
        return value

    for repeat in range(args.repeats):
        samples = timed(
            "generate (onnxruntime)",
            lambda r=repeat: images.sample(
                runtime.run, description["latent_dim"], args.samples, r, description["value_range"]
            ),
        )
        sample_f, logits = timed("features (onnxruntime)", lambda s=samples: extractor(s))
        context = metrics.MetricContext(real, sample_f, logits, len(spec.class_names), train, seed=repeat)
        for result in metrics.compute(metrics.DEFAULT_METRICS, context):
            timings.setdefault(f"metric {result.name}", []).append(result.seconds)
            for key, value in result.values.items():
                values.setdefault(key, []).append(value)

    print(
        f"evaluate benchmark: {args.samples} samples vs {len(real)} test images, {description['model']}, "
        f"median of {args.repeats}, {os.cpu_count()} CPUs"
    )
    print(f"{'step':<28}{'median s':>10}{'min s':>10}")
    total = 0.0
    rows = []
    for name, seconds in timings.items():
        median = statistics.median(seconds)
        total += median
        print(f"{name:<28}{median:>10.3f}{min(seconds):>10.3f}")
        rows.append({"step": name, "median_s": median, "min_s": min(seconds), "max_s": max(seconds)})
    print(f"{'total':<28}{total:>10.3f}")
    scores = [
        {"metric": key, "median": statistics.median(v), "min": min(v), "max": max(v), "repeats": len(v)}
        for key, v in values.items()
    ]
    for score in scores:
        print(f"{score['metric']:<28}{score['median']:>10.4f}  [{score['min']:.4f}-{score['max']:.4f}]")
    record.write(
        "evaluate",
        args.results,
        parameters={"model": args.model, "samples": args.samples, "repeats": args.repeats},
        subject={
            "uri": args.model,
            **{k: description[k] for k in ("model", "dataset", "train_run_id", "export_run_id") if k in description},
            "test_images": len(real),
            "train_images": len(train),
            "metrics": list(metrics.DEFAULT_METRICS),
        },
        rows=rows,
        summary={"total_median_s": total},
        tables={"scores": scores},
        present=present,
    )


# ---- how docs/results.md shows the record (bench/report.py renders it) --------------------------
def _evaluate_tables(record: dict):
    steps = [
        column("step", "step", "text"),
        column("median_s", "median s", "fixed:3"),
        column("min_s", "min s", "fixed:3"),
        column("max_s", "max s", "fixed:3"),
    ]
    rows = list(record["rows"])
    if "total_median_s" in record.get("summary", {}):
        rows.append({"step": "**total**", "median_s": record["summary"]["total_median_s"]})
    scores = [
        column("metric", "metric"),
        column("median", "median"),
        column("min", "min"),
        column("max", "max"),
    ]
    return [("Seconds per step", steps, rows), ("Scores", scores, record.get("tables", {}).get("scores", []))]


def _evaluate_reading(record: dict) -> list[str]:
    parameters = record["parameters"]
    return [
        f"Each repeat generated {parameters['samples']:,} samples with its own seed; the table shows the median "
        f"over {parameters['repeats']} repeats."
    ]


def present(record: dict) -> dict:
    """How docs/results.md shows this benchmark's record (``bench/record.py``)."""
    return presented(_evaluate_tables(record), _evaluate_reading(record))


if __name__ == "__main__":
    main()
