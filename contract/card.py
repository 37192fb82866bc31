"""The model card: what a runtime must know to trust and use an exported generator.

Version 2 records, for each exported graph (``graphs``: ``generator``, and e.g. ``encoder``),
its file and signature: every input's name, dtype, shape (batch axis first, null), role and
default (``contract.signature``). Runtimes read the inputs from there, never from the family's
name. Version 1 cards (written before the signatures) are refused by ``checked``, which names
the re-export command.
JSON only: no TensorFlow, no MLflow.
"""

from __future__ import annotations

import json
from pathlib import Path

from contract import sampler

CARD_NAME = "model_card.json"
CARD_VERSION = 2


def write_card(folder: Path, **fields) -> dict:
    """Write ``model_card.json`` into ``folder`` and return it.

    The card names the portable sampler its seeds draw with (``sampler``, ``contract.sampler``).
    Expected fields: model, graphs (stem -> {file, signature, inputs, outputs}), label_classes,
    output_shape, value_range, primary_metric, higher_is_better, dataset, train_run_id, parity,
    files (relative path -> sha256), onnx_opset.
    """
    card = {"card_version": CARD_VERSION, "sampler": sampler.SAMPLER, **fields}
    (Path(folder) / CARD_NAME).write_text(json.dumps(card, indent=2, sort_keys=True))
    return card


def graph_entry(stem: str, signature) -> dict:
    """A card's ``graphs`` entry for the export ``<stem>.onnx`` with ``signature``."""
    return {"file": f"{stem}.onnx", **signature.to_dict()}


def checked(card: dict) -> dict:
    """``card``, once it is a card of the version this latentforge reads.

    Raises:
        ValueError: not a card, a card of another version, or one without a generator graph; the
            message names the fix (re-export: ``latentforge export --train-run-id <id>``).
    """
    if not isinstance(card, dict):
        raise ValueError("the model card is not a JSON object; re-export the model")
    version = card.get("card_version", 1)
    if not isinstance(version, int) or version > CARD_VERSION:
        raise ValueError(f"model card version {version} is newer than this latentforge reads ({CARD_VERSION}); upgrade")
    if version < CARD_VERSION:
        train_run = card.get("train_run_id") or "<its train run>"
        raise ValueError(
            f"model card version {version} predates the input signatures this latentforge reads (version "
            f"{CARD_VERSION}); re-export the model: latentforge export --train-run-id {train_run}"
        )
    if not isinstance(card.get("graphs"), dict) or "generator" not in card["graphs"]:
        raise ValueError("the model card has no graphs.generator; re-export the model")
    sampler.of_card(card)  # a sampler this latentforge knows
    return card
