"""Export parity: Keras vs SavedModel vs ONNX Runtime, at two batch sizes."""

import numpy as np
import onnx
import onnxruntime as ort
import pytest

from contract import signature
from export import files, parity
from models import registry


@pytest.mark.parametrize("kind", ["dcgan", "vae"])
def test_generator_parity_at_two_batch_sizes(kind, tmp_path):
    model = registry.build(kind, image_shape=(28, 28, 1), latent_dim=6, learning_rate=1e-3, seed=0)
    endpoint = signature.generator(6, (28, 28, 1))
    savedmodel = files.write_savedmodel(model.generator, endpoint, tmp_path / "sm")
    onnx_path = files.write_onnx(model.generator, endpoint, tmp_path / "g.onnx")
    report = parity.check(model.generator, endpoint, savedmodel, onnx_path)
    assert report["passed"], report
    assert report["batch_sizes"] == [1, 16]
    assert max(report["max_abs_diff"].values()) <= 1e-4
    onnx.checker.check_model(onnx.load(str(onnx_path)), full_check=True)
    # The batch axis is dynamic: any batch size runs and matches Keras.
    session = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    z = np.random.default_rng(5).standard_normal((7, 6)).astype(np.float32)
    out = session.run(["image"], {"z": z})[0]
    np.testing.assert_allclose(out, np.asarray(model.generator(z, training=False)), atol=1e-4, rtol=1e-4)


def test_vae_encoder_parity(tmp_path):
    model = registry.build("vae", image_shape=(28, 28, 1), latent_dim=6, learning_rate=1e-3, seed=0)
    endpoint = signature.encoder((28, 28, 1), 6, ("z_mean", "z_log_var"))
    savedmodel = files.write_savedmodel(model.encoder, endpoint, tmp_path / "sm")
    onnx_path = files.write_onnx(model.encoder, endpoint, tmp_path / "e.onnx")
    report = parity.check(model.encoder, endpoint, savedmodel, onnx_path)
    assert report["passed"], report


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
