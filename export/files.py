"""Write a network as a SavedModel (named signature) and as ONNX (tf2onnx, dynamic batch)."""

from __future__ import annotations

from pathlib import Path

from contract.files import sha256_file
from contract.signature import Signature
from export import rewrite

ONNX_OPSET = 17  # pinned: supported by onnxruntime >= 1.14 and by tf2onnx 1.16+


def input_signature(signature: Signature):
    """``tf.TensorSpec`` per input, batch axis dynamic."""
    import tensorflow as tf

    return [tf.TensorSpec((None, *t.shape), getattr(tf, t.dtype), name=t.name) for t in signature.inputs]


def function(network, signature: Signature):
    """A Python function (inputs in the signature's order -> dict of named outputs) running the
    network in inference mode."""

    def serve(*tensors):
        result = network(tensors[0] if len(tensors) == 1 else list(tensors), training=False)
        result = result if isinstance(result, (list, tuple)) else [result]
        return dict(zip(signature.output_names, result))

    return serve


def write_savedmodel(network, signature: Signature, path: Path) -> Path:
    """SavedModel with the signature ``signature.name``."""
    import keras

    archive = keras.export.ExportArchive()
    archive.track(network)
    archive.add_endpoint(
        name=signature.name, fn=function(network, signature), input_signature=input_signature(signature)
    )
    archive.write_out(str(path), verbose=False)
    return path


def write_onnx(network, signature: Signature, path: Path, opset: int = ONNX_OPSET) -> Path:
    """ONNX through tf2onnx ``from_function`` (``from_keras`` fails on Keras 3 functional models),
    then the exact rewrites of ``export.rewrite`` (recorded in the file's metadata as
    ``latentforge.rewrites``); the parity check compares the result with Keras."""
    import json

    import onnx
    import tensorflow as tf
    import tf2onnx

    specs = input_signature(signature)
    traced = tf.function(function(network, signature), input_signature=specs)
    model_proto, _ = tf2onnx.convert.from_function(traced, input_signature=specs, opset=opset)
    model_proto.producer_name = "latentforge"
    changes = rewrite.optimize(model_proto)
    onnx.helper.set_model_props(model_proto, {"latentforge.rewrites": json.dumps(changes, sort_keys=True)})
    onnx.checker.check_model(model_proto, full_check=True)
    onnx.save_model(model_proto, str(path))
    return path


def sha256_tree(root: Path) -> dict[str, str]:
    """path relative to ``root`` -> sha256, for every file under the folder ``root``."""
    root = Path(root)
    return {str(p.relative_to(root)): sha256_file(p) for p in sorted(root.rglob("*")) if p.is_file()}
