"""Export parity: Keras vs SavedModel vs ONNX Runtime, at two batch sizes."""

import numpy as np
import onnx
import onnxruntime as ort
import pytest

from contract import signature
from export import files, parity
from models import registry

SHAPES = [(28, 28, 1), (56, 56, 3), (64, 64, 3), (128, 128, 3)]
# the build test's channels per side: each start (7 * 2**k, 4 * 2**k) in grey and in colour
CHANNELS_AT = {28: 3, 32: 1, 56: 1, 64: 3, 112: 3, 128: 1}


@pytest.mark.parametrize(
    "kind, shape",
    [(kind, shape) for kind in registry.names() for shape in SHAPES if shape[0] in registry.get(kind).sides()],
)
def test_every_graph_of_every_family_has_parity_at_two_batch_sizes(kind, shape, tmp_path):
    """Each graph a family ships (its generator, and the encoder or synthesis beside it), as the
    export stage writes it, grey and colour, up to the largest side the family builds: Keras,
    SavedModel and onnxruntime agree at batch 1 and 16."""
    family = registry.get(kind)
    width = 8 if family.defaults["width"] else 0  # narrow networks: the graphs, not their size, are tested
    spec = registry.model_spec(kind, image_shape=shape, latent_dim=6, learning_rate=1e-3, seed=0, width=width)
    exports = family.exports(family.build(spec), spec)
    assert [e.stem for e in exports] == list(family.signatures(spec)) and exports[0].stem == "generator"
    for export in exports:
        savedmodel = files.write_savedmodel(export.network, export.signature, tmp_path / f"{export.stem}_sm")
        onnx_path = files.write_onnx(export.network, export.signature, tmp_path / f"{export.stem}.onnx")
        report = parity.check(export.network, export.signature, savedmodel, onnx_path)
        assert report["passed"] and report["batch_sizes"] == [1, 16], (export.stem, report)
        assert max(report["max_abs_diff"].values()) <= 1e-4
        onnx.checker.check_model(onnx.load(str(onnx_path)), full_check=True)


@pytest.mark.parametrize("kind", registry.names())
def test_every_family_builds_every_side_it_claims(kind):
    """Every side of ``sides()`` (the parity test above exports four of them): each graph the family
    ships runs at batch 2 and gives its output's shape, the image at the side and channels asked for."""
    family = registry.get(kind)
    width = 8 if family.defaults["width"] else 0
    assert set(family.sides()) <= set(CHANNELS_AT) and {28, 32, 56, 64} <= set(family.sides())
    for side in family.sides():
        shape = (side, side, CHANNELS_AT[side])
        spec = registry.model_spec(kind, image_shape=shape, latent_dim=6, learning_rate=1e-3, seed=0, width=width)
        for export in family.exports(family.build(spec), spec):
            feed = signature.random_feed(export.signature.inputs, 2, seed=0)
            out = np.asarray(signature.call(export.network, export.signature, feed))
            assert out.shape == (2, *export.signature.outputs[0].shape), (kind, shape, export.stem)
            if export.signature.outputs[0].name == "image":
                assert out.shape == (2, *shape) and np.isfinite(out).all(), (kind, shape, export.stem)


def test_the_batch_axis_is_dynamic(tmp_path):
    model = registry.build("dcgan", image_shape=(28, 28, 1), latent_dim=6, learning_rate=1e-3, seed=0)
    onnx_path = files.write_onnx(model.generator, signature.generator(6, (28, 28, 1)), tmp_path / "g.onnx")
    session = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    z = np.random.default_rng(5).standard_normal((7, 6)).astype(np.float32)
    out = session.run(["image"], {"z": z})[0]
    np.testing.assert_allclose(out, np.asarray(model.generator(z, training=False)), atol=1e-4, rtol=1e-4)


def test_parity_detects_a_different_network(tmp_path):
    # Export one network and compare it with another: the check must fail.
    a = registry.build("dcgan", image_shape=(28, 28, 1), latent_dim=6, learning_rate=1e-3, seed=0)
    b = registry.build("dcgan", image_shape=(28, 28, 1), latent_dim=6, learning_rate=1e-3, seed=1)
    endpoint = signature.generator(6, (28, 28, 1))
    savedmodel = files.write_savedmodel(a.generator, endpoint, tmp_path / "sm")
    onnx_path = files.write_onnx(a.generator, endpoint, tmp_path / "g.onnx")
    report = parity.check(b.generator, endpoint, savedmodel, onnx_path)
    assert not report["passed"]
    assert report["max_abs_diff"]["onnx"] > 1e-3


def test_sha256_tree_covers_every_file(tmp_path):
    (tmp_path / "d" / "sub").mkdir(parents=True)
    (tmp_path / "d" / "a").write_bytes(b"a")
    (tmp_path / "d" / "sub" / "b").write_bytes(b"b")
    digests = files.sha256_tree(tmp_path / "d")
    assert set(digests) == {"a", "sub/b"}
    assert digests["a"] == "ca978112ca1bbdcafac231b39a23dc4da786eff8147c4e72b9807785afee48bb"
