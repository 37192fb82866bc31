"""Export stage: trained networks -> SavedModel + ONNX, a parity report and a model card.

Reads: a train run (``model/``). (The evaluate stage then measures what this stage wrote.)
Writes (MLflow run ``export``), all under the artifact folder ``export/``, logged in one go
only after every check passed:
  <stem>_savedmodel/     SavedModel of each network the family exports (``Family.exports``), with
                         its signature: the generator first (``generator``, signature ``generate``:
                         e.g. z (batch, latent_dim) [, label (batch,) int32] -> image; the EMA
                         generator when the GAN trained one), then e.g. the VAE's ``encoder``
  <stem>.onnx            the same function in ONNX (opset 17), dynamic batch axis
  generator_int8.onnx    the generator statically quantized to INT8 (QDQ), for edge CPUs; its
                         difference from FP32 and both latencies are in the card (``int8``)
  parity.json            Keras vs SavedModel vs ONNX Runtime at batch sizes 1 and 16
  model_card.json        kind, each graph's signature (input names, dtypes, shapes, roles, defaults),
                         output shape and range, primary metric, dataset, runs, sha256s
Metrics: ``parity_max_abs_savedmodel``, ``parity_max_abs_onnx`` (and ``encoder_…`` for a VAE).
The stage fails, logging nothing but the parity numbers, when a difference exceeds 1e-4.
"""

from __future__ import annotations

import json
import tempfile
from dataclasses import dataclass
from pathlib import Path

from contract import card as model_card
from export import files, parity, quantize
from models import registry
from pipeline import tracking
from pipeline.config import Config
from pipeline.errors import StageError
from pipeline.loop import load_trained


class ParityError(StageError):
    """An exported runtime disagrees with Keras beyond the tolerance."""


@dataclass
class ExportResult:
    run_id: str
    card: dict


def _export_network(network, signature, folder: Path, stem: str) -> dict:
    savedmodel = files.write_savedmodel(network, signature, folder / f"{stem}_savedmodel")
    onnx_path = files.write_onnx(network, signature, folder / f"{stem}.onnx")
    return parity.check(network, signature, savedmodel, onnx_path)


def run_export(config: Config, train_run_id: str) -> ExportResult:
    import mlflow

    model, spec = load_trained(train_run_id)
    family = registry.get(spec.model)
    exports = family.exports(model, spec)  # the generator first
    params = {
        "train_run_id": train_run_id,
        "onnx_opset": files.ONNX_OPSET,
        "parity_tolerance": parity.DEFAULT_TOLERANCE,
    }
    with tracking.stage_run("export", params) as run, tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "export"
        folder.mkdir()
        reports = {e.stem: _export_network(e.network, e.signature, folder, e.stem) for e in exports}
        for name, report in reports.items():
            prefix = "" if name == "generator" else f"{name}_"
            mlflow.log_metrics({f"{prefix}parity_max_abs_{rt}": v for rt, v in report["max_abs_diff"].items()})
        (folder / "parity.json").write_text(json.dumps(reports, indent=2))
        failed = {n: r for n, r in reports.items() if not r["passed"]}
        if failed:
            mlflow.log_dict(reports, "parity_failed.json")
            worst = {n: r["max_abs_diff"] for n, r in failed.items()}
            raise ParityError(
                f"parity check failed (tolerance {parity.DEFAULT_TOLERANCE}): {worst}; "
                "nothing was exported; check the network for ops that differ between runtimes"
            )
        # The INT8 twin for edge CPUs (its FID change is measured by the evaluate stage).
        generator = exports[0].signature
        quantize.quantize_generator(folder / "generator.onnx", folder / "generator_int8.onnx", generator)
        int8 = quantize.compare(folder / "generator.onnx", folder / "generator_int8.onnx", generator)
        mlflow.log_metrics({f"int8_{k}": v for k, v in int8.items()})
        card = model_card.write_card(
            folder,
            model=spec.model,
            graphs={e.stem: model_card.graph_entry(e.stem, e.signature) for e in exports},
            latent_dim=spec.latent_dim,
            label_classes=list(spec.class_names),
            options=spec.options,
            output_shape=list(spec.image_shape),
            value_range=spec.value_range,
            primary_metric=family.primary_metric_of(spec),
            higher_is_better=family.higher_is_better,
            dataset=spec.dataset,
            dataset_version=spec.dataset_version,
            train_run_id=train_run_id,
            export_run_id=run.info.run_id,
            parity={n: {"passed": r["passed"], "max_abs_diff": r["max_abs_diff"]} for n, r in reports.items()},
            onnx_opset=files.ONNX_OPSET,
            int8=int8,
            files=files.sha256_tree(folder),
            **family.card_extras(model, spec),
        )
        mlflow.log_artifacts(str(folder), "export")
    print(f"export: parity {json.dumps({n: r['max_abs_diff'] for n, r in reports.items()})}")
    return ExportResult(run.info.run_id, card)
