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
        for column in (*COLUMNS, "train_seconds"):
            values = [r[column] for r in chosen]
            digits = 0 if column in ("classes_hit", "train_seconds") else (2 if column == "fid" else 3)
            cells.append(f"{statistics.median(values):.{digits}f} [{min(values):.{digits}f}-{max(values):.{digits}f}]")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
