"""Promote stage: register the exported ONNX generator and move ``champion`` when it is better.

Reads: an export run (``export/generator.onnx`` and ``export/model_card.json``) and the
evaluate run that measured it (its metrics and protocol go into the registered card).
Writes: an MLflow run ``promote`` holding the model logged with ``mlflow.onnx.log_model``
(signature, input example, the model card as metadata), registered as
``<dataset>-<model>`` (e.g. ``fashion_mnist-dcgan``). The new version gets alias
``challenger``; it takes ``champion`` when parity passed and its primary metric (lower is
better: FID for GANs, test negative ELBO in nats for the VAE) beats the champion's by more
than ``promote_margin``, or when there is no champion. The decision and its numbers are
written as version tags (``latentforge.decision``, ``latentforge.primary_value``, …).

Concurrency: MLflow's aliases are last-writer-wins, so two pipelines promoting into one
registered model at once could both compare with the same old champion and the worse one
could write last. A promoter therefore writes its decision tags before it moves the alias, and
after the move re-checks (``settle``): the champion becomes the best version promoted under the
same metric and protocol (and not rolled back). Whoever writes last settles on what every
earlier promoter has recorded, so the race ends on the better version whatever the order; it
works the same on every store (SQLite, PostgreSQL, an ``mlflow server`` over HTTP). Every move
of the alias is its own registered-model tag (``latentforge.champion_move.<time>.v<version>``),
so concurrent moves cannot overwrite each other's record.
"""

from __future__ import annotations

import datetime
import json
import math
import os
import tempfile
import time
from dataclasses import dataclass

from contract import card as model_card
from contract.signature import Signature, default_feed
from models import registry
from pipeline import tracking
from pipeline.config import Config
from pipeline.errors import UserError
from pipeline.metrics import HIGHER_IS_BETTER

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
    higher_is_better: bool = False,
) -> tuple[bool, str]:
    """The gate: (promote?, reason). Lower values are better unless ``higher_is_better``.

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
    if higher_is_better and value > champion_value + margin:
        return True, f"{value:.4f} > champion {champion_value:.4f} + margin {margin}"
    if not higher_is_better and value < champion_value - margin:
        return True, f"{value:.4f} < champion {champion_value:.4f} - margin {margin}"
    return False, f"{value:.4f} does not beat champion {champion_value:.4f} by margin {margin}"


def _signature(generator: Signature):
    """The MLflow signature of the registered generator, from its card's signature."""
    import numpy as np
    from mlflow.models import ModelSignature
    from mlflow.types import Schema, TensorSpec

    def schema(tensors):
        return Schema([TensorSpec(np.dtype(t.dtype), (-1, *t.shape), t.name) for t in tensors])

    return ModelSignature(inputs=schema(generator.inputs), outputs=schema(generator.outputs))


def run_promote(config: Config, export_run_id: str, eval_run_id: str) -> PromoteResult:
    """Register the generator of ``export_run_id`` and gate ``champion`` on ``eval_run_id``'s
    measurement of that same export."""
    import mlflow
    from mlflow import MlflowClient

    card, onnx_model = _measured_card(export_run_id, eval_run_id)
    name = registered_name(card)
    metric = config.primary_metric or card.get("primary_metric") or registry.get(card["model"]).primary_metric
    higher_is_better = metric in HIGHER_IS_BETTER
    if metric == card.get("primary_metric") and "higher_is_better" in card:  # the family's metric: its direction
        higher_is_better = bool(card["higher_is_better"])
    generator = Signature.from_dict(card["graphs"]["generator"])
    if metric not in card["metrics"]:
        raise UserError(f"evaluate run {eval_run_id} has no '{metric}' metric; evaluate with it listed in --metrics")
    value = float(card["metrics"][metric])
    client = MlflowClient()
    params = {
        "export_run_id": export_run_id,
        "eval_run_id": eval_run_id,
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
            signature=_signature(generator),
            input_example=default_feed(generator.inputs, 2),
            metadata={"model_card": card},
        )
        client.set_registered_model_alias(name, CHALLENGER, version)
        gate = _Gate(metric, value, higher_is_better, card.get("metrics_protocol", ""), config.promote_margin)
        promoted, tags = _decide_against_champion(client, name, card, gate)
        tags.update(export_run_id=export_run_id, eval_run_id=eval_run_id, train_run_id=card["train_run_id"])
        tags["savedmodel_uri"] = f"runs:/{export_run_id}/export/generator_savedmodel"
        for key, tag_value in tags.items():
            client.set_model_version_tag(name, version, TAG + key, tag_value)
        if promoted:
            _pause_for_tests()
            move_champion(client, name, version, tags["reason"])
            settle(client, name, metric, gate.protocol, higher_is_better)
        mlflow.log_dict({"registered_model": name, "version": version, **tags}, "promotion/decision.json")
        mlflow.log_metric("promoted", float(promoted))
    verdict = f"is now {CHAMPION}" if promoted else f"stays {CHALLENGER}"
    print(f"promote: {name} version {version} {verdict} ({metric} {value:.4f}; {tags['reason']})")
    return PromoteResult(run.info.run_id, name, version, promoted, tags["reason"])


def _measured_card(export_run_id: str, eval_run_id: str):
    """(the export's model card with the evaluate run's metrics and protocol, the ONNX generator),
    once the evaluate run is the one that measured this export."""
    import onnx

    tracking.get_run(export_run_id, "export")
    evaluation = tracking.get_run(eval_run_id, "evaluate")
    if evaluation.data.params.get("export_run_id") != export_run_id:
        raise UserError(
            f"evaluate run {eval_run_id} measured export run {evaluation.data.params.get('export_run_id')}, "
            f"not {export_run_id}; pass the evaluate run of this export"
        )
    with tempfile.TemporaryDirectory() as tmp:
        folder = tracking.download(export_run_id, "export", tmp)
        card = model_card.checked(json.loads((folder / "model_card.json").read_text()))
        onnx_model = onnx.load(str(folder / "generator.onnx"))
    card = {
        **card,
        "metrics": dict(evaluation.data.metrics),
        "metrics_protocol": evaluation.data.tags.get(tracking.PROTOCOL_TAG, ""),
        "eval_run_id": eval_run_id,
    }
    return card, onnx_model


@dataclass(frozen=True)
class _Gate:
    """What the challenger is judged on: the metric, its value and direction, how it was measured."""

    metric: str
    value: float
    higher_is_better: bool
    protocol: str
    margin: float


def _decide_against_champion(client, name: str, card: dict, gate: _Gate) -> tuple[bool, dict]:
    """(promote?, the decision's version tags) of a challenger against the current champion."""
    from mlflow.exceptions import MlflowException

    try:
        champion = client.get_model_version_by_alias(name, CHAMPION)
    except MlflowException:
        champion = None
    champion_value = None
    if champion is not None and TAG + "primary_value" in champion.tags:
        champion_value = float(champion.tags[TAG + "primary_value"])
    # What is compared: the metric's name and how it was measured, on both sides.
    measured = f"{gate.metric} ({gate.protocol})"
    champion_measured = ""
    if champion is not None:
        champion_measured = (
            f"{champion.tags.get(TAG + 'primary_metric', '')} ({champion.tags.get(TAG + 'protocol', '')})"
        )
    parity_passed = all(p["passed"] for p in card["parity"].values())
    promoted, reason = decide(
        gate.value,
        champion_value,
        gate.margin,
        parity_passed,
        measured,
        champion_measured,
        higher_is_better=gate.higher_is_better,
    )
    if promoted and champion is not None and champion_value is None:
        reason = f"champion v{champion.version} has no recorded {gate.metric}"
    return promoted, {
        "primary_metric": gate.metric,
        "primary_value": repr(gate.value),
        "protocol": gate.protocol,
        "champion_version_before": str(champion.version) if champion else "",
        "champion_value_before": repr(champion_value) if champion_value is not None else "",
        "margin": repr(gate.margin),
        "parity_passed": str(parity_passed).lower(),
        "decision": "promoted" if promoted else "rejected",
        "reason": reason,
    }


HISTORY_TAG = TAG + "champion_history"  # before per-move tags: "v<version>@<utc time>;..." newest last
MOVE_TAG = TAG + "champion_move."  # one registered-model tag per move: MOVE_TAG + "<utc time>.v<version>"
PAUSE_VARIABLE = "LATENTFORGE_PROMOTE_PAUSE_S"  # tests: seconds between the decision and the move


def _pause_for_tests() -> None:
    """Hold a promoter between reading the champion and moving it, so that tests can make two
    promoters race deterministically (unset: no pause)."""
    seconds = float(os.environ.get(PAUSE_VARIABLE) or 0)
    if seconds > 0:
        time.sleep(seconds)


def move_champion(client, name: str, version: str, reason: str) -> None:
    """Give ``version`` the champion alias and record the move (for audits and rollback)."""
    now = datetime.datetime.now(datetime.timezone.utc)
    client.set_registered_model_alias(name, CHAMPION, version)
    client.set_model_version_tag(name, version, TAG + "champion_since", now.strftime("%Y-%m-%dT%H:%M:%SZ"))
    client.set_registered_model_tag(name, f"{MOVE_TAG}{now.strftime('%Y%m%dT%H%M%S.%fZ')}.v{version}", reason[:500])
    client.set_registered_model_tag(name, TAG + "last_move", f"v{version}: {reason}"[:500])


def settle(client, name: str, metric: str, protocol: str, higher_is_better: bool) -> str | None:
    """Re-check after a move: give champion to the best version promoted under ``metric`` and
    ``protocol`` that was not rolled back, when the champion is another one of that kind (a
    champion measured another way is left alone). Returns the version moved to, or None."""
    from mlflow.exceptions import MlflowException

    def tag(v, key, default=""):
        return v.tags.get(TAG + key, default)

    promoted = [
        v
        for v in client.search_model_versions(f"name = '{name}'")
        if tag(v, "decision") == "promoted"
        and tag(v, "primary_metric") == metric
        and tag(v, "protocol") == protocol
        and tag(v, "rolled_back") != "true"
    ]
    if not promoted:
        return None
    sign = -1.0 if higher_is_better else 1.0
    best = min(promoted, key=lambda v: (sign * float(tag(v, "primary_value")), int(v.version)))
    try:
        current = client.get_model_version_by_alias(name, CHAMPION)
    except MlflowException:
        current = None
    if current is not None and (
        str(current.version) == str(best.version) or str(current.version) not in {str(v.version) for v in promoted}
    ):
        return None
    before = f"v{current.version}" if current is not None else "no champion"
    move_champion(client, name, str(best.version), f"settled after concurrent promotions: better than {before}")
    return str(best.version)


def champion_history(client, name: str) -> list[str]:
    """Versions that held champion, oldest first (each time it took the alias; a version moved
    to twice in a row, by two promoters settling at once, counts once)."""
    tags = client.get_registered_model(name).tags
    legacy = [e.split("@", 1)[0].lstrip("v") for e in tags.get(HISTORY_TAG, "").split(";") if e]
    moves = [key[len(MOVE_TAG) :].rsplit(".v", 1)[1] for key in sorted(k for k in tags if k.startswith(MOVE_TAG))]
    history: list[str] = []
    for version in legacy + moves:
        if not history or history[-1] != version:
            history.append(version)
    return history


def rollback(name: str) -> str:
    """Move ``champion`` back to the version that held it before the current one.

    Returns:
        the version that is champion now.

    Raises:
        UserError: no such registered model, no champion, or no earlier champion.
    """
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    client = MlflowClient()
    try:
        current = str(client.get_model_version_by_alias(name, CHAMPION).version)
    except MlflowException:
        raise UserError(f"registered model '{name}' has no {CHAMPION}; nothing to roll back") from None
    history = champion_history(client, name)
    # Champions before the current one took the alias, skipping versions already rolled back.
    before = history[: len(history) - 1 - history[::-1].index(current)] if current in history else history
    earlier = [
        v for v in before if v != current and client.get_model_version(name, v).tags.get(TAG + "rolled_back") != "true"
    ]
    if not earlier:
        raise UserError(f"'{name}' v{current} is the first {CHAMPION}; there is no earlier one to roll back to")
    previous = earlier[-1]
    client.set_model_version_tag(name, current, TAG + "rolled_back", "true")
    move_champion(client, name, previous, f"rollback from v{current}")
    print(f"promote: {name} {CHAMPION} rolled back from v{current} to v{previous}")
    return previous
