"""Parity report: the same fixed, seeded inputs through Keras, the SavedModel and ONNX Runtime."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from contract.signature import Signature, random_feed
from export import files

DEFAULT_TOLERANCE = 1e-4  # max abs difference allowed between runtimes
BATCH_SIZES = (1, 16)  # two sizes: proves the batch axis is dynamic in every runtime


def check(
    network,
    signature: Signature,
    savedmodel: Path,
    onnx_path: Path,
    *,
    seed: int = 1234,
    tolerance: float = DEFAULT_TOLERANCE,
) -> dict:
    """Run all three runtimes on the same seeded inputs (varied, valid values for each input's
    role: ``contract.signature.random_feed``) at every size in BATCH_SIZES.

    Returns:
        {"passed": bool, "tolerance": float, "max_abs_diff": {"savedmodel": x, "onnx": y},
         "batch_sizes": [...], "per_batch": [...]}: differences are against Keras.
    """
    import onnxruntime as ort
    import tensorflow as tf

    ort.set_default_logger_severity(3)  # errors only (0 verbose ... 4 fatal)
    saved_fn = tf.saved_model.load(str(savedmodel)).signatures[signature.name]
    session = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    keras_fn = files.function(network, signature)
    per_batch = []
    for batch in BATCH_SIZES:
        inputs = random_feed(signature.inputs, batch, seed + batch)
        reference = {k: np.asarray(v) for k, v in keras_fn(*inputs.values()).items()}
        saved = {k: v.numpy() for k, v in saved_fn(**{k: tf.constant(v) for k, v in inputs.items()}).items()}
        onnx_out = dict(zip(signature.output_names, session.run(list(signature.output_names), inputs)))
        row: dict[str, float] = {"batch": batch}
        for runtime, outputs in (("savedmodel", saved), ("onnx", onnx_out)):
            diffs = []
            for name in signature.output_names:
                if outputs[name].shape != reference[name].shape:
                    raise ValueError(
                        f"{runtime} output '{name}' has shape {outputs[name].shape}, Keras {reference[name].shape}"
                    )
                diffs.append(float(np.max(np.abs(outputs[name] - reference[name]))))
            row[runtime] = max(diffs)
        per_batch.append(row)
    worst = {rt: max(r[rt] for r in per_batch) for rt in ("savedmodel", "onnx")}
    return {
        "passed": all(v <= tolerance for v in worst.values()),
        "tolerance": tolerance,
        "max_abs_diff": worst,
        "batch_sizes": list(BATCH_SIZES),
        "per_batch": per_batch,
    }
