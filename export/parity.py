"""Parity report: the same fixed, seeded inputs through Keras, the SavedModel and ONNX Runtime."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from export.files import Endpoint

DEFAULT_TOLERANCE = 1e-4  # max abs difference allowed between runtimes
BATCH_SIZES = (1, 16)  # two sizes: proves the batch axis is dynamic in every runtime


def fixed_inputs(endpoint: Endpoint, batch: int, seed: int) -> dict[str, np.ndarray]:
    """Seeded inputs: standard normal for latents, uniform [0, 1] for images, uniform integers
    for labels."""
    rng = np.random.default_rng(seed)
    inputs = {}
    for name, shape in endpoint.inputs.items():
        if name in endpoint.integer_inputs:
            inputs[name] = rng.integers(0, endpoint.integer_inputs[name], (batch, *shape)).astype(np.int32)
        elif len(shape) == 1:
            inputs[name] = rng.standard_normal((batch, *shape)).astype(np.float32)
        else:
            inputs[name] = rng.random((batch, *shape)).astype(np.float32)
    return inputs


def check(
    network,
    endpoint: Endpoint,
    savedmodel: Path,
    onnx_path: Path,
    *,
    seed: int = 1234,
    tolerance: float = DEFAULT_TOLERANCE,
) -> dict:
    """Run all three runtimes on the same inputs at every size in BATCH_SIZES.

    Returns:
        {"passed": bool, "tolerance": float, "max_abs_diff": {"savedmodel": x, "onnx": y},
         "batch_sizes": [...], "per_batch": [...]}: differences are against Keras.
    """
    import onnxruntime as ort
    import tensorflow as tf

    signature = tf.saved_model.load(str(savedmodel)).signatures[endpoint.name]
    session = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    keras_fn = endpoint.function(network)
    per_batch = []
    for batch in BATCH_SIZES:
        inputs = fixed_inputs(endpoint, batch, seed + batch)
        reference = {k: np.asarray(v) for k, v in keras_fn(*inputs.values()).items()}
        saved = {k: v.numpy() for k, v in signature(**{k: tf.constant(v) for k, v in inputs.items()}).items()}
        onnx_out = dict(zip(endpoint.outputs, session.run(list(endpoint.outputs), inputs)))
        row = {"batch": batch}
        for runtime, outputs in (("savedmodel", saved), ("onnx", onnx_out)):
            diffs = []
            for name in endpoint.outputs:
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
