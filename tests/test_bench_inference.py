"""bench/inference.py times onnxruntime the way users run it: in a process that never imports TensorFlow."""

from __future__ import annotations

import json

from bench import inference
from serving.runtime import GeneratorRuntime
from tests.serving.conftest import write_export


def test_onnx_is_timed_in_its_own_process_without_tensorflow(tmp_path):
    folder = write_export(tmp_path / "export")
    card = json.loads((folder / "model_card.json").read_text())
    runtime = GeneratorRuntime.load(str(folder))
    feed = runtime.feed(n=2)
    worker = inference.Worker("onnx_fp32", folder, card, runtime.output)
    try:
        worker.ask("load", feed, [feed[t.name] for t in runtime.signature.inputs])
        seconds = worker.ask("time", "onnx_fp32", 3)
        report = worker.ask("stop")
    finally:
        worker.close()
    assert len(seconds) == 3 and all(s > 0 for s in seconds)
    assert report["tensorflow_imported"] is False
    assert report["versions"]["onnxruntime"] and not report["versions"]["tensorflow"]
