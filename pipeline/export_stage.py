"""Export stage: trained networks -> SavedModel + ONNX, a parity report and a model card.

Reads: a train run (``model/``). (The evaluate stage then measures what this stage wrote.)
Writes (MLflow run ``export``), all under the artifact folder ``export/``, logged in one go
only after every check passed:
  generator_savedmodel/  SavedModel, signature ``generate``: z (batch, latent_dim) [, label (batch,) int32] -> image
                         (the EMA generator when the GAN trained one)
  generator.onnx         the same function in ONNX (opset 17), dynamic batch axis
  encoder_savedmodel/, encoder.onnx   (VAE, AE) signature ``encode``: image -> z_mean, z_log_var (VAE) or z (AE)
  generator_int8.onnx    the generator statically quantized to INT8 (QDQ), for edge CPUs; its
                         difference from FP32 and both latencies are in the card (``int8``)
  parity.json            Keras vs SavedModel vs ONNX Runtime at batch sizes 1 and 16
  model_card.json        kind, latent size, output shape and range, dataset, runs, metrics, sha256s
Metrics: ``parity_max_abs_savedmodel``, ``parity_max_abs_onnx`` (and ``encoder_…`` for a VAE).
The stage fails, logging nothing but the parity numbers, when a difference exceeds 1e-4.
"""

from __future__ import annotations

import json
import tempfile
from dataclasses import dataclass
from pathlib import Path

from export import card as model_card
from export import files, parity, quantize
from models.registry import FAMILIES
from pipeline import tracking
from pipeline.config import Config
from pipeline.errors import StageError
from pipeline.train import load_trained


class ParityError(StageError):
    """An exported runtime disagrees with Keras beyond the tolerance."""


@dataclass
class ExportResult:
    run_id: str
    card: dict


def _export_network(network, endpoint, folder: Path, stem: str) -> dict:
    savedmodel = files.write_savedmodel(network, endpoint, folder / f"{stem}_savedmodel")
    onnx_path = files.write_onnx(network, endpoint, folder / f"{stem}.onnx")
    return parity.check(network, endpoint, savedmodel, onnx_path)


def run_export(config: Config, train_run_id: str) -> ExportResult:
    import mlflow

    model, description = load_trained(train_run_id)
    latent_dim, image_shape = description["latent_dim"], tuple(description["image_shape"])
    params = {
        "train_run_id": train_run_id,
        "onnx_opset": files.ONNX_OPSET,
        "parity_tolerance": parity.DEFAULT_TOLERANCE,
    }
    with tracking.stage_run("export", params) as run, tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "export"
        folder.mkdir()
        family = FAMILIES[description["model"]]
        num_classes = len(description["class_names"])
        inputs = {"z": (latent_dim,), **({"label": ()} if family.conditional else {})}
        generator_endpoint = files.Endpoint(
            "generate", inputs, ("image",), {"label": num_classes} if family.conditional else {}
        )
        network = getattr(model, "exported_generator", model.generator)  # the EMA generator when on
        reports = {"generator": _export_network(network, generator_endpoint, folder, "generator")}
        if family.encoder:
            outputs = ("z_mean", "z_log_var") if description["model"] == "vae" else ("z",)
            encoder_endpoint = files.Endpoint("encode", {"image": image_shape}, outputs)
            reports["encoder"] = _export_network(model.encoder, encoder_endpoint, folder, "encoder")
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
        classes = num_classes if family.conditional else 0
        quantize.quantize_generator(folder / "generator.onnx", folder / "generator_int8.onnx", latent_dim, classes)
        int8 = quantize.compare(folder / "generator.onnx", folder / "generator_int8.onnx", latent_dim, classes)
        mlflow.log_metrics({f"int8_{k}": v for k, v in int8.items()})
        card = model_card.write_card(
            folder,
            model=description["model"],
            latent_dim=latent_dim,
            label_classes=description["class_names"],
            inputs={name: [None, *shape] for name, shape in inputs.items()},
            conditional=family.conditional,
            gan=description.get("gan") or {},
            outputs={"image": [None, *image_shape]},
            output_shape=list(image_shape),
            value_range=description["value_range"],
            dataset=description["dataset"],
            dataset_version=description["dataset_version"],
            train_run_id=train_run_id,
            export_run_id=run.info.run_id,
            parity={n: {"passed": r["passed"], "max_abs_diff": r["max_abs_diff"]} for n, r in reports.items()},
            onnx_opset=files.ONNX_OPSET,
            int8=int8,
            files=files.sha256_tree(folder),
        )
        mlflow.log_artifacts(str(folder), "export")
    print(f"export: parity {json.dumps({n: r['max_abs_diff'] for n, r in reports.items()})}")
    return ExportResult(run.info.run_id, card)
