"""A model family is one module: a family defined here, in the test, and registered here runs
through every stage (train -> export with parity -> evaluate -> promote), `latentforge generate`
and `latentforge serve`, with its extra input (role ``truncation``) set by the caller. No other
file knows it exists."""

from __future__ import annotations

import io
from dataclasses import dataclass

import mlflow
import numpy as np
import pytest
import requests
from mlflow import MlflowClient

from contract import signature
from models import registry
from models.registry import Family, ModelSpec, Options, option
from pipeline import cli, main
from tests.conftest import tiny_config

pytestmark = pytest.mark.slow


@dataclass(frozen=True)
class TinyOptions(Options):
    tiny_hidden: int = option(32, "hidden units of the tiny generator", low=4)


class TinyTruncatedGan(Family):
    """An MLP generator G(z * psi): ``psi`` (role truncation, default 1, bounds [0, 1]) pulls
    every latent toward the mean; psi = 0 gives one image whatever the seed. Trained as a GAN
    (``models.gan.GAN``) with psi fixed at 1."""

    name = "tinytrunc"
    summary = "tiny MLP GAN with a truncation input (test family)"
    options = TinyOptions
    defaults = {"latent_dim": 8, "learning_rate": 1e-3, "width": 0}

    def build_model(self, spec: ModelSpec, options: TinyOptions, learning_rate):
        import keras
        from keras import layers, ops

        from models import gan

        z = keras.Input((spec.latent_dim,), name="z")
        psi = keras.Input((), name="psi")
        x = layers.Dense(options.tiny_hidden, activation="relu")(z * ops.expand_dims(psi, -1))
        x = layers.Dense(int(np.prod(spec.image_shape)), activation="tanh")(x)
        generator = keras.Model([z, psi], layers.Reshape(spec.image_shape)(x), name="generator")
        training_z = keras.Input((spec.latent_dim,))
        at_one = generator([training_z, ops.ones_like(training_z[:, 0])])  # psi = 1 in training
        discriminator = gan.build_mlp_discriminator(spec.image_shape, units=(32,))
        model = gan.GAN(keras.Model(training_z, at_one), discriminator, latent_dim=spec.latent_dim, seed=spec.seed)
        model.exported = generator
        model.compile(
            d_optimizer=keras.optimizers.Adam(learning_rate), g_optimizer=keras.optimizers.Adam(learning_rate)
        )
        return model

    def signatures(self, spec: ModelSpec) -> dict:
        psi = signature.TensorSpec("psi", (), "truncation", default={"kind": "constant", "value": 1.0}, bounds=(0, 1))
        plain = signature.generator(spec.latent_dim, spec.image_shape)
        return {"generator": signature.Signature("generate", (*plain.inputs, psi), plain.outputs)}

    def export_networks(self, model) -> dict:
        return {"generator": model.exported}


@pytest.fixture()
def tiny_family():
    registry.register(TinyTruncatedGan)
    yield TinyTruncatedGan.name
    registry.unregister(TinyTruncatedGan.name)


def test_a_family_defined_in_a_test_runs_through_every_stage_generate_and_serve(
    extractor_store, tfds_dir, tmp_path, tiny_family
):
    config = tiny_config(tfds_dir, model=tiny_family, tiny_hidden=16, metrics="fid,classes")
    assert config.tiny_hidden == 16 and "tiny_hidden" in config.to_dict()
    summary = main.run_main(config)
    name = f"fashion_mnist-{tiny_family}"
    assert summary["registered_model"] == name and summary["promoted"]
    client = MlflowClient()
    export_run = summary["export_run_id"]
    parity = mlflow.artifacts.load_dict(f"runs:/{export_run}/export/parity.json")
    assert [row["batch"] for row in parity["generator"]["per_batch"]] == [1, 16]
    assert parity["generator"]["passed"] and max(parity["generator"]["max_abs_diff"].values()) <= 1e-4
    card = mlflow.artifacts.load_dict(f"runs:/{export_run}/export/model_card.json")
    inputs = {t["name"]: t for t in card["graphs"]["generator"]["inputs"]}
    assert inputs["psi"]["role"] == "truncation" and inputs["psi"]["shape"] == [None]
    assert inputs["z"]["role"] == "latent" and inputs["z"]["shape"] == [None, 8]
    assert "fid" in client.get_run(summary["evaluate_run_id"]).data.metrics

    # latentforge generate: psi=0 collapses every latent to the mean, so all images are equal.
    model = f"models:/{name}@champion"
    grids = {}
    for psi in ("0", "1"):
        out = tmp_path / f"grid-{psi}.png"
        assert (
            cli.main(
                ["generate", "--model", model, "-n", "4", "--columns", "4", "--input", f"psi={psi}", "--out", str(out)]
            )
            == 0
        )
        grids[psi] = _tiles(out.read_bytes(), 4)
    assert all(np.array_equal(grids["0"][0], tile) for tile in grids["0"][1:])
    assert not all(np.array_equal(grids["1"][0], tile) for tile in grids["1"][1:])
    assert cli.main(["generate", "--model", model, "--input", "psi=3", "--out", str(tmp_path / "x.png")]) == 2
    assert not (tmp_path / "x.png").exists()

    # latentforge serve: a request sets the extra input; bad names and values get a 422 that says why.
    from serving.server import ServeSettings
    from tests.serving.conftest import RunningServer

    with RunningServer(ServeSettings(model=model)) as server:

        def images(inputs):
            answer = requests.post(
                f"{server.url}/v1/generate", json={"n": 4, "seed": 3, "format": "npy", "inputs": inputs}
            )
            assert answer.status_code == 200, answer.text
            return np.load(io.BytesIO(answer.content))

        collapsed, varied = images({"psi": 0.0}), images({"psi": 1.0})
        assert all(np.array_equal(collapsed[0], image) for image in collapsed[1:])
        assert not all(np.array_equal(varied[0], image) for image in varied[1:])
        np.testing.assert_array_equal(varied, images(None))  # the card's default: psi = 1
        described = requests.get(f"{server.url}/v1/models").json()["card"]["graphs"]["generator"]["inputs"]
        assert {t["name"]: t["role"] for t in described} == {"z": "latent", "psi": "truncation"}
        for bad, message in (({"psi": 2.0}, "between 0 and 1"), ({"beta": 1.0}, "unknown input 'beta'")):
            answer = requests.post(f"{server.url}/v1/generate", json={"n": 2, "inputs": bad})
            assert answer.status_code == 422 and message in answer.json()["error"], answer.text


def _tiles(png: bytes, n: int, size: int = 28, padding: int = 2) -> list[np.ndarray]:
    from PIL import Image

    picture = np.asarray(Image.open(io.BytesIO(png)))
    return [picture[padding : padding + size, padding + i * (size + padding) :][:, :size] for i in range(n)]
