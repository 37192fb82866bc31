"""The model card: what a serving runtime must know to trust and use an exported generator."""

from __future__ import annotations

import json
from pathlib import Path

CARD_NAME = "model_card.json"
CARD_VERSION = 1


def write_card(folder: Path, **fields) -> dict:
    """Write ``model_card.json`` into ``folder`` and return it.

    Expected fields: model, latent_dim, label_classes, output_shape, value_range, dataset,
    train_run_id, metrics, parity, files (relative path -> sha256), onnx_opset, inputs, outputs.
    """
    card = {"card_version": CARD_VERSION, **fields}
    (Path(folder) / CARD_NAME).write_text(json.dumps(card, indent=2, sort_keys=True))
    return card
