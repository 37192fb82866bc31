"""Colour exports ([N, H, W, 3]) through everything that serves or draws a generator: the HTTP
server, the edge example (numpy, onnxruntime and Pillow only), `generate`, `style-mix` and
`latent`, each writing colour PNGs (RGB, with channels that differ)."""

from __future__ import annotations

import io
import subprocess
import sys

import numpy as np
import pytest
import requests
from PIL import Image

from pipeline import cli
from serving.schemas import ServeSettings
from tests.serving.conftest import RunningServer, write_export
from tests.serving.test_edge import edge_box

pytestmark = pytest.mark.slow  # builds and converts two colour generators


@pytest.fixture(scope="module")
def colour(tmp_path_factory):
    return {
        "dcgan": write_export(tmp_path_factory.mktemp("dcgan64"), "dcgan", latent_dim=16, shape=(64, 64, 3), width=8),
        "stylegan": write_export(
            tmp_path_factory.mktemp("stylegan32"), "stylegan", latent_dim=16, shape=(32, 32, 3), width=8
        ),
    }


def _colour_png(data: bytes, side: int) -> np.ndarray:
    with Image.open(io.BytesIO(data)) as picture:
        assert picture.mode == "RGB", picture.mode
        pixels = np.asarray(picture)
    assert pixels.shape[0] >= side and pixels.shape[2] == 3
    assert np.abs(pixels[..., 0].astype(int) - pixels[..., 1]).max() > 0, "the channels are all equal: grey"
    return pixels


def test_the_server_serves_colour_pngs_and_arrays(colour):
    with RunningServer(ServeSettings(model=str(colour["dcgan"]))) as server:
        png = requests.post(server.url + "/v1/generate", json={"n": 4, "seed": 1}, timeout=60)
        assert png.status_code == 200 and png.headers["content-type"] == "image/png"
        _colour_png(png.content, 64)
        npy = requests.post(server.url + "/v1/generate", json={"n": 3, "seed": 1, "format": "npy"}, timeout=60)
        assert np.load(io.BytesIO(npy.content)).shape == (3, 64, 64, 3)
        card = requests.get(server.url + "/v1/models", timeout=60).json()["card"]
        assert card["output_shape"] == [64, 64, 3]


def test_the_edge_example_writes_the_same_colour_png_as_generate(colour, tmp_path):
    box = edge_box(tmp_path, colour["dcgan"])
    argv = ["--model", "export", "--n", "4", "--seed", "2", "--out", "edge.png"]
    run = subprocess.run(
        [sys.executable, "-I", "wrapper.py", *argv], cwd=box, capture_output=True, text=True, timeout=120
    )
    assert run.returncode == 0, run.stderr[-2000:]
    reference = tmp_path / "reference.png"
    args = ["generate", "--model", str(colour["dcgan"]), "-n", "4", "--seed", "2", "--out", str(reference)]
    assert cli.main(args) == 0
    assert (box / "edge.png").read_bytes() == reference.read_bytes()
    _colour_png(reference.read_bytes(), 64)


def test_style_mix_and_latent_write_colour_pngs(colour, tmp_path):
    mix = tmp_path / "mix.png"
    assert (
        cli.main(["style-mix", "--model", str(colour["stylegan"]), "--rows", "1,2", "--cols", "3", "--out", str(mix)])
        == 0
    )
    _colour_png(mix.read_bytes(), 32)
    walk = tmp_path / "walk.png"
    argv = ["latent", "interpolate", "--model", str(colour["dcgan"]), "--rows", "2", "--steps", "4", "--out", str(walk)]
    assert cli.main(argv) == 0
    _colour_png(walk.read_bytes(), 64)
