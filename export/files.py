"""Write a network as a SavedModel (named signature) and as ONNX (tf2onnx, dynamic batch)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from export import rewrite
from serving.files import sha256_file

ONNX_OPSET = 17  # pinned: supported by onnxruntime >= 1.14 and by tf2onnx 1.16+


@dataclass(frozen=True)
class Endpoint:
    """A network's exported interface: named inputs and outputs, batch axis dynamic.

    Args:
        name: signature name in the SavedModel (e.g. "generate", "encode").
        inputs: input name -> shape without the batch axis, e.g. {"z": (100,), "label": ()}.
        outputs: output names in the order the network returns them.
        integer_inputs: int32 inputs -> their number of values (e.g. {"label": 10}); the
            others are float32.
    """

    name: str
    inputs: dict[str, tuple[int, ...]]
    outputs: tuple[str, ...]
    integer_inputs: dict[str, int] = field(default_factory=dict)

    def input_signature(self):
        import tensorflow as tf

        return [
            tf.TensorSpec((None, *shape), tf.int32 if n in self.integer_inputs else tf.float32, name=n)
            for n, shape in self.inputs.items()
        ]

    def function(self, network):
        """A Python function (named inputs -> dict of named outputs) running the network in inference mode."""

        def serve(*tensors):
            result = network(tensors[0] if len(tensors) == 1 else list(tensors), training=False)
            result = result if isinstance(result, (list, tuple)) else [result]
            return dict(zip(self.outputs, result))

        return serve


def write_savedmodel(network, endpoint: Endpoint, path: Path) -> Path:
    """SavedModel with the signature ``endpoint.name`` (also ``serving_default``)."""
    import keras

    archive = keras.export.ExportArchive()
    archive.track(network)
    archive.add_endpoint(name=endpoint.name, fn=endpoint.function(network), input_signature=endpoint.input_signature())
    archive.write_out(str(path), verbose=False)
    return path


def write_onnx(network, endpoint: Endpoint, path: Path, opset: int = ONNX_OPSET) -> Path:
    """ONNX through tf2onnx ``from_function`` (``from_keras`` fails on Keras 3 functional models),
    then the exact rewrites of ``export.rewrite`` (recorded in the file's metadata as
    ``latentforge.rewrites``); the parity check compares the result with Keras."""
    import json

    import onnx
    import tensorflow as tf
    import tf2onnx

    signature = endpoint.input_signature()
    function = tf.function(endpoint.function(network), input_signature=signature)
    model_proto, _ = tf2onnx.convert.from_function(function, input_signature=signature, opset=opset)
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
