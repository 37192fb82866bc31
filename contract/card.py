"""The model card: what a runtime must know to trust and use an exported generator.

Version 2 records, for each exported graph (``graphs``: ``generator``, and e.g. ``encoder``),
its file and signature: every input's name, dtype, shape (batch axis first, null), role and
default (``contract.signature``). Runtimes read the inputs from there, never from the family's
name. Version 1 cards (written before the signature) are upgraded on load by ``upgrade``.
JSON only: no TensorFlow, no MLflow.
"""

from __future__ import annotations

import json
from pathlib import Path

CARD_NAME = "model_card.json"
CARD_VERSION = 2


def write_card(folder: Path, **fields) -> dict:
    """Write ``model_card.json`` into ``folder`` and return it.

    Expected fields: model, graphs (stem -> {file, signature, inputs, outputs}), label_classes,
    output_shape, value_range, primary_metric, higher_is_better, dataset, train_run_id, parity,
    files (relative path -> sha256), onnx_opset.
    """
    card = {"card_version": CARD_VERSION, **fields}
    (Path(folder) / CARD_NAME).write_text(json.dumps(card, indent=2, sort_keys=True))
    return card


def graph_entry(stem: str, signature) -> dict:
    """A card's ``graphs`` entry for the export ``<stem>.onnx`` with ``signature``."""
    return {"file": f"{stem}.onnx", **signature.to_dict()}


def upgrade(card: dict) -> dict:
    """A card in the current version. Version 1 cards (a generator ``z`` [+ ``label``] ->
    ``image``, an optional encoder) get the ``graphs`` their fields imply.

    Raises:
        ValueError: the card is neither version (the message names the fix).
    """
    if not isinstance(card, dict):
        raise ValueError("the model card is not a JSON object; re-export the model")
    version = card.get("card_version", 1)
    if version == CARD_VERSION:
        if not isinstance(card.get("graphs"), dict) or "generator" not in card["graphs"]:
            raise ValueError("the model card has no graphs.generator; re-export the model")
        return card
    if version != 1:
        raise ValueError(f"model card version {version} is newer than this latentforge reads ({CARD_VERSION}); upgrade")
    missing = [f for f in ("latent_dim", "output_shape") if f not in card]
    if missing:
        raise ValueError(f"the model card lacks {', '.join(missing)}; re-export the model")
    from contract import signature

    classes = len(card.get("label_classes") or []) if card.get("conditional") else 0
    shape = tuple(card["output_shape"])
    graphs = {"generator": graph_entry("generator", signature.generator(int(card["latent_dim"]), shape, classes))}
    if "encoder.onnx" in card.get("files", {}):
        outputs = ("z_mean", "z_log_var") if card.get("model") == "vae" else ("z",)
        graphs["encoder"] = graph_entry("encoder", signature.encoder(shape, int(card["latent_dim"]), outputs))
    return {**card, "card_version": CARD_VERSION, "graphs": graphs, "upgraded_from": 1}
