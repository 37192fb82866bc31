"""The ``main`` entry point: data -> train -> export -> evaluate -> promote in one parent run.

The evaluate stage measures the exported ONNX generator: what is measured is what ships.

Each stage is a nested MLflow run; stages hand each other run ids only (never local paths),
so any stage can be rerun alone with ``latentforge <stage> --…-run-id``.
"""

from __future__ import annotations

import time

from pipeline.config import Config


def run_main(config: Config) -> dict:
    resolved = config.resolved()
    print(f"main: {resolved.model} on {resolved.dataset}: data -> train -> export -> evaluate -> promote", flush=True)
    import mlflow

    from pipeline import tracking
    from pipeline.data import run_data
    from pipeline.evaluate import run_evaluate
    from pipeline.export_stage import run_export
    from pipeline.promote import run_promote
    from pipeline.train import run_train

    started = time.perf_counter()
    with mlflow.start_run(run_name=f"main-{resolved.model}") as parent:
        mlflow.set_tag(tracking.STAGE_TAG, "main")
        # `mlflow run` already logged the raw entry-point parameters on this run; the resolved
        # config goes under its own keys (MLflow forbids changing a logged param).
        mlflow.log_params({f"config.{k}": str(v) for k, v in resolved.to_dict().items()})
        mlflow.log_dict(resolved.to_dict(), "config.json")
        data_run_id, _ = run_data(resolved, check_model=True)
        trained = run_train(resolved, data_run_id)
        exported = run_export(resolved, trained.run_id)
        evaluated = run_evaluate(resolved, exported.run_id)
        promoted = run_promote(resolved, exported.run_id, evaluated.run_id)
        summary = {
            "data_run_id": data_run_id,
            "train_run_id": trained.run_id,
            "train_status": trained.status,
            "export_run_id": exported.run_id,
            "evaluate_run_id": evaluated.run_id,
            "promote_run_id": promoted.run_id,
            "registered_model": promoted.name,
            "version": promoted.version,
            "promoted": promoted.promoted,
            "reason": promoted.reason,
        }
        mlflow.set_tags({f"result.{k}": str(v) for k, v in summary.items()})
        mlflow.log_metrics({k: v for k, v in evaluated.metrics.items()})
        mlflow.log_metric("wall_seconds", time.perf_counter() - started)
    alias = "champion" if promoted.promoted else "challenger"
    print(
        f"main: {promoted.name} v{promoted.version} is {alias}; "
        f"try: latentforge generate --model models:/{promoted.name}@{alias} -n 64 --seed 0 --out grid.png"
        f" (parent run {parent.info.run_id}, {time.perf_counter() - started:.0f} s)"
    )
    return summary
