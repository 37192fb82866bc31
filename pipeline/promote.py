"""Promote stage: register the exported ONNX generator and move ``champion`` when it is better.

Reads: an export run (``export/generator.onnx`` and ``export/model_card.json``).
Writes: an MLflow run ``promote`` holding the model logged with ``mlflow.onnx.log_model``
(signature, input example, the model card as metadata), registered as
``<dataset>-<model>`` (e.g. ``fashion_mnist-dcgan``). The new version gets alias
``challenger``; it takes ``champion`` when parity passed and its primary metric (lower is
better: FID for GANs, test negative ELBO in nats for the VAE) beats the champion's by more
than ``promote_margin``, or when there is no champion. The decision and its numbers are
written as version tags (``latentforge.decision``, ``latentforge.primary_value``, …).
"""

from __future__ import annotations

import json
import math
import tempfile
from dataclasses import dataclass

from pipeline import tracking
from pipeline.config import Config
from pipeline.errors import UserError

CHALLENGER, CHAMPION = "challenger", "champion"
TAG = "latentforge."


@dataclass
class PromoteResult:
    run_id: str
    name: str
    version: str
    promoted: bool
    reason: str


def registered_name(card: dict) -> str:
    return f"{card['dataset']}-{card['model']}"


def decide(
    value: float,
    champion_value: float | None,
    margin: float,
    parity_passed: bool,
    protocol: str = "",
    champion_protocol: str = "",
) -> tuple[bool, str]:
    """The gate: (promote?, reason). Lower metric values are better.

    Numbers measured under different protocols (another feature extractor or sample count)
    are not compared: the challenger is not promoted and the reason says why.
    """
    if not parity_passed:
        return False, "parity check did not pass"
    if not math.isfinite(value):
        return False, f"primary metric is {value}"
    if champion_value is None:
        return True, "no champion yet"
    if protocol != champion_protocol:
        return False, (
            f"measured as '{protocol}', the champion as '{champion_protocol}'; not comparable: "
            "evaluate both the same way"
        )
    if value < champion_value - margin:
        return True, f"{value:.4f} < champion {champion_value:.4f} - margin {margin}"
    return False, f"{value:.4f} does not beat champion {champion_value:.4f} by margin {margin}"


def _signature(card: dict):
    import numpy as np
    from mlflow.models import ModelSignature
    from mlflow.types import Schema, TensorSpec

    return ModelSignature(
        inputs=Schema([TensorSpec(np.dtype(np.float32), (-1, card["latent_dim"]), "z")]),
        outputs=Schema([TensorSpec(np.dtype(np.float32), (-1, *card["output_shape"]), "image")]),
    )


def run_promote(config: Config, export_run_id: str) -> PromoteResult:
    import mlflow
    import onnx
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    from models.registry import FAMILIES
    from serving import images

    tracking.get_run(export_run_id, "export")
    with tempfile.TemporaryDirectory() as tmp:
        folder = tracking.download(export_run_id, "export", tmp)
        card = json.loads((folder / "model_card.json").read_text())
        onnx_model = onnx.load(str(folder / "generator.onnx"))
    name = registered_name(card)
    metric = FAMILIES[card["model"]].primary_metric
    if metric not in card["metrics"]:
        raise UserError(
            f"export run {export_run_id} has no '{metric}' metric in its model card; "
            "export with --eval-run-id of an evaluate run"
        )
    value = float(card["metrics"][metric])
    client = MlflowClient()
    params = {
        "export_run_id": export_run_id,
        "registered_model": name,
        "primary_metric": metric,
        "promote_margin": config.promote_margin,
    }
    with tracking.stage_run("promote", params) as run:
        version = tracking.log_onnx_model(
            onnx_model,
            name="generator",
            registered_name=name,
            tags={},
            signature=_signature(card),
            input_example={"z": images.latents(0, 2, card["latent_dim"])},
            metadata={"model_card": card},
        )
        client.set_registered_model_alias(name, CHALLENGER, version)
        try:
            champion = client.get_model_version_by_alias(name, CHAMPION)
        except MlflowException:
            champion = None
        champion_value = None
        if champion is not None and TAG + "primary_value" in champion.tags:
            champion_value = float(champion.tags[TAG + "primary_value"])
        protocol = card.get("metrics_protocol", "")
        champion_protocol = champion.tags.get(TAG + "protocol", "") if champion is not None else ""
        parity_passed = all(p["passed"] for p in card["parity"].values())
        promoted, reason = decide(
            value, champion_value, config.promote_margin, parity_passed, protocol, champion_protocol
        )
        if promoted and champion is not None and champion_value is None:
            reason = f"champion v{champion.version} has no recorded {metric}"
        tags = {
            "primary_metric": metric,
            "primary_value": repr(value),
            "protocol": protocol,
            "champion_version_before": str(champion.version) if champion else "",
            "champion_value_before": repr(champion_value) if champion_value is not None else "",
            "margin": repr(config.promote_margin),
            "parity_passed": str(parity_passed).lower(),
            "decision": "promoted" if promoted else "rejected",
            "reason": reason,
            "export_run_id": export_run_id,
            "train_run_id": card["train_run_id"],
            "savedmodel_uri": f"runs:/{export_run_id}/export/generator_savedmodel",
        }
        for key, tag_value in tags.items():
            client.set_model_version_tag(name, version, TAG + key, tag_value)
        if promoted:
            client.set_registered_model_alias(name, CHAMPION, version)
        mlflow.log_dict({"registered_model": name, "version": version, **tags}, "promotion/decision.json")
        mlflow.log_metric("promoted", float(promoted))
    verdict = f"is now {CHAMPION}" if promoted else f"stays {CHALLENGER}"
    print(f"promote: {name} version {version} {verdict} ({metric} {value:.4f}; {reason})")
    return PromoteResult(run.info.run_id, name, version, promoted, reason)
