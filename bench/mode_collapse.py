"""Mode-collapse study: the same DCGAN budget with the plain loss and with each fix, several seeds.

Every cell goes through the pipeline's own stages (train -> export -> evaluate, the ONNX
generator scored on --eval-samples samples), tracked in MLflow under the experiment
``mode-collapse-study`` of $MLFLOW_TRACKING_URI (default sqlite:///mlflow.db). Finished
trainings are reused, so a rerun only re-evaluates. Prints one row per run, then per variant
the median and the spread (min-max) of FID, class entropy (nats; uniform over 10 classes is
2.303), classes hit and coverage, and the training seconds. Writes the rows with their
provenance to bench/results/mode_collapse.json (``bench/record.py``; rendered by ``bench/report.py``).

    .venv/bin/python bench/mode_collapse.py [--epochs 1] [--seeds 0,1,2] [--variants ns,wgan-gp,replay,minibatch-std]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from bench import record  # noqa: E402  (after the path insert)
from bench.record import column, presented, series  # noqa: E402

PLAIN = {"ema": 0.0}  # each fix alone: on the DCGAN without its default weight EMA
VARIANTS = {
    "ns": {},  # the plain (non-saturating) loss, no fix
    "minimax": {"gan_loss": "minimax"},  # the saturating loss of the original paper
    "wgan-gp": {"gan_loss": "wgan-gp"},  # 5 critic steps per generator step
    "replay": {"replay": 6400, "replay_ratio": 0.5},  # 100 batches of old fakes, half of each fake batch
    "minibatch-std": {"minibatch_std": 1},
    "lsgan": {"gan_loss": "lsgan"},
    "hinge": {"gan_loss": "hinge"},
    "ema": {"ema": 0.999},
}
COLUMNS = ("fid", "class_entropy", "classes_hit", "coverage", "recall")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=1, help="training budget per run (passes over the data)")
    parser.add_argument("--steps-per-epoch", type=int, default=0, help="0 = full passes (a smoke test sets a few)")
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--variants", default="ns,wgan-gp,replay,minibatch-std", help=", ".join(VARIANTS))
    parser.add_argument("--eval-samples", type=int, default=10000)
    record.add_arguments(parser, "mode_collapse")
    args = parser.parse_args()
    unknown = [v for v in args.variants.split(",") if v not in VARIANTS]
    if unknown:
        parser.error(f"unknown variant(s) {', '.join(unknown)}; valid: {', '.join(VARIANTS)}")
    seeds = [int(s) for s in args.seeds.split(",")]

    import mlflow

    from pipeline import data, evaluate, export_stage, tracking, train
    from pipeline.config import Config

    tracking.setup("mode-collapse-study")
    rows = []
    data_run_id = None
    for variant in args.variants.split(","):
        for seed in seeds:
            config = Config.from_dict(
                {
                    "model": "dcgan",
                    "epochs": args.epochs,
                    "steps_per_epoch": args.steps_per_epoch,
                    "seed": seed,
                    "eval_samples": args.eval_samples,
                    **PLAIN,
                    **VARIANTS[variant],
                }
            ).resolved()
            if data_run_id is None:
                data_run_id, _ = data.run_data(config)
            with mlflow.start_run(run_name=f"study-{variant}-{seed}"):
                mlflow.set_tags({tracking.STAGE_TAG: "study", "variant": variant})
                started = time.perf_counter()
                trained = train.run_train(config, data_run_id)
                train_seconds = time.perf_counter() - started
                if trained.status == "reused":
                    train_seconds = float(mlflow.get_run(trained.run_id).data.metrics.get("train_seconds", 0.0))
                else:
                    mlflow.MlflowClient().log_metric(trained.run_id, "train_seconds", train_seconds)
                exported = export_stage.run_export(config, trained.run_id)
                scored = evaluate.run_evaluate(config, exported.run_id).metrics
            row = {"variant": variant, "seed": seed, "train_seconds": train_seconds}
            row.update({k: scored[k] for k in COLUMNS})
            rows.append(row)
            print(json.dumps(row), flush=True)
    variants = args.variants.split(",")
    record.write(
        "mode_collapse",
        args.results,
        parameters={
            "model": "dcgan",
            "dataset": "fashion_mnist",
            "epochs": args.epochs,
            "steps_per_epoch": args.steps_per_epoch,
            "batch_size": Config(model="dcgan").resolved().batch_size,
            "seeds": seeds,
            "variants": {variant: {**PLAIN, **VARIANTS[variant]} for variant in variants},
            "eval_samples": args.eval_samples,
        },
        rows=rows,
        present=present,
    )
    print()
    print(
        f"DCGAN, {args.epochs} epoch(s) of Fashion-MNIST at batch 64, seeds {args.seeds}, {args.eval_samples} samples"
    )
    print(table(rows, variants))


def table(rows: list[dict], variants: list[str]) -> str:
    """Markdown: per variant, median [min-max] of each column over the seeds."""
    header = ["variant", "runs", *COLUMNS, "train s"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for variant in variants:
        chosen = [r for r in rows if r["variant"] == variant]
        cells = [variant, str(len(chosen))]
        for key in (*COLUMNS, "train_seconds"):
            values = [r[key] for r in chosen]
            digits = 0 if key in ("classes_hit", "train_seconds") else (2 if key == "fid" else 3)
            cells.append(f"{statistics.median(values):.{digits}f} [{min(values):.{digits}f}-{max(values):.{digits}f}]")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


# ---- how docs/results.md shows the record (bench/report.py renders it) --------------------------
COLLAPSE_COLUMNS = (
    ("fid", "fid", 2),
    ("class_entropy", "class entropy", 3),
    ("classes_hit", "classes hit", 0),
    ("coverage", "coverage", 3),
    ("recall", "recall", 3),
    ("train_seconds", "train s", 0),
)


def _spread(values: list[float], digits: int) -> str:
    return f"{statistics.median(values):,.{digits}f} [{min(values):,.{digits}f}–{max(values):,.{digits}f}]"


def _collapse_variants(record: dict) -> list[str]:
    seen = []
    for row in record["rows"]:
        if row["variant"] not in seen:
            seen.append(row["variant"])
    return seen


def _collapse_tables(record: dict):
    variants = record["parameters"].get("variants", {})
    rows = []
    for variant in _collapse_variants(record):
        chosen = [r for r in record["rows"] if r["variant"] == variant]
        options = variants.get(variant)
        label = f"`{variant}`" + (f" ({', '.join(f'{k}={v}' for k, v in options.items())})" if options else "")
        row = {"variant": label, "runs": len(chosen)}
        for key, _, digits in COLLAPSE_COLUMNS:
            row[key] = _spread([r[key] for r in chosen], digits)
        rows.append(row)
    columns = [column("variant", "variant", "text"), column("runs", "runs")]
    columns += [column(key, header, "text") for key, header, _ in COLLAPSE_COLUMNS]
    raw = [column("variant", "variant"), column("seed", "seed")]
    raw += [column(key, header, f"fixed:{digits}") for key, header, digits in COLLAPSE_COLUMNS]
    return [("Median [min–max] over the seeds", columns, rows), ("Every run", raw, record["rows"])]


def _collapse_reading(record: dict) -> list[str]:
    parameters = record["parameters"]
    epochs, steps, seeds = parameters["epochs"], parameters.get("steps_per_epoch", 0), parameters["seeds"]
    budget = f"{epochs} epoch{'s' if epochs != 1 else ''}" + (f" of {steps} steps" if steps else "")
    lines = [
        f"Every variant trains the DCGAN for {budget} at batch {parameters['batch_size']} with "
        f"seed{'s' if len(seeds) != 1 else ''} {series([str(s) for s in seeds])}, and the evaluate stage "
        f"scores {parameters['eval_samples']:,} samples of each."
    ]
    by_variant = {v: [r for r in record["rows"] if r["variant"] == v] for v in _collapse_variants(record)}
    if "ns" in by_variant:
        base = statistics.median(r["train_seconds"] for r in by_variant["ns"])
        costs = [
            f"`{variant}` {statistics.median(r['train_seconds'] for r in rows) / base:.1f}×"
            for variant, rows in by_variant.items()
            if variant != "ns"
        ]
        if costs:
            lines.append("Median training time relative to the plain `ns` loss: " + ", ".join(costs) + ".")
    fewest = min(r["classes_hit"] for r in record["rows"])
    lines.append(f"The fewest classes any single run hit: {fewest:.0f}.")
    return lines


def present(record: dict) -> dict:
    """How docs/results.md shows this benchmark's record (``bench/record.py``)."""
    return presented(_collapse_tables(record), _collapse_reading(record))


if __name__ == "__main__":
    main()
