"""Static INT8 quantization (QDQ) of an ONNX generator, for edge CPUs.

Dynamic quantization turns Conv into ConvInteger, which onnxruntime's CPU provider cannot run;
static quantization in the QDQ format keeps standard Conv/ConvTranspose nodes between
QuantizeLinear/DequantizeLinear pairs, calibrated on activations from seeded latents
(MinMax, per-channel int8 weights, uint8 activations).
"""

from __future__ import annotations

import statistics
import time
from pathlib import Path

import numpy as np

from contract.signature import Signature, random_feed

CALIBRATION_BATCHES = 8
CALIBRATION_BATCH_SIZE = 64


def calibration_inputs(signature: Signature, seed: int = 4321) -> list[dict]:
    """Seeded generator inputs: varied, valid values for each input's role
    (``contract.signature.random_feed``), ``CALIBRATION_BATCHES`` batches."""
    return [random_feed(signature.inputs, CALIBRATION_BATCH_SIZE, seed + i) for i in range(CALIBRATION_BATCHES)]


def quantize_generator(source: Path, target: Path, signature: Signature) -> Path:
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static

    class Reader(CalibrationDataReader):
        def __init__(self):
            self.batches = iter(calibration_inputs(signature))

        def get_next(self):
            return next(self.batches, None)

    quantize_static(
        str(source),
        str(target),
        Reader(),
        quant_format=QuantFormat.QDQ,
        activation_type=QuantType.QUInt8,
        weight_type=QuantType.QInt8,
        per_channel=True,
    )
    return target


def compare(fp32: Path, int8: Path, signature: Signature, repeats: int = 30) -> dict:
    """Max/mean |INT8 - FP32| on held-out inputs, and median latency (ms) of each at batch 1 and 64."""
    import onnxruntime as ort

    ort.set_default_logger_severity(3)  # errors only (0 verbose ... 4 fatal)
    sessions = {
        name: ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        for name, path in (("fp32", fp32), ("int8", int8))
    }
    feed = calibration_inputs(signature, seed=97)[0]
    output = signature.output_names[0]
    outputs = {name: s.run([output], feed)[0] for name, s in sessions.items()}
    difference = np.abs(outputs["int8"] - outputs["fp32"])
    report = {"max_abs_diff": float(difference.max()), "mean_abs_diff": float(difference.mean())}
    for batch in (1, 64):
        part = {k: v[:batch] for k, v in feed.items()}
        for name, session in sessions.items():
            session.run([output], part)  # warm-up
            times = []
            for _ in range(repeats):
                started = time.perf_counter()
                session.run([output], part)
                times.append(time.perf_counter() - started)
            report[f"{name}_ms_batch{batch}"] = statistics.median(times) * 1000
        report[f"speedup_batch{batch}"] = report[f"fp32_ms_batch{batch}"] / report[f"int8_ms_batch{batch}"]
    return report
