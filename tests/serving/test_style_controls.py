"""Style controls of a style-based generator (StyleGAN) through onnxruntime, the HTTP API and
the CLI: truncation towards w_avg (psi), zero noise, the style-mixing grid, and a one-line
refusal for every bad value or a family without styles."""

from __future__ import annotations

import io

import numpy as np
import pytest
import requests
from PIL import Image

from pipeline import cli
from serving import styles
from serving.runtime import GeneratorRuntime
from serving.server import ServeSettings
from tests.serving.conftest import RunningServer, write_export


@pytest.fixture(scope="module")
def stylegan_export(tmp_path_factory):
    folder = write_export(tmp_path_factory.mktemp("stylegan"), "stylegan", latent_dim=16)
    runtime = GeneratorRuntime.load(str(folder))
    # a non-zero w_avg, as training leaves it, so that truncation has somewhere to go
    assert styles.layout(runtime)["num_ws"] == 6 and len(styles.layout(runtime)["w_avg"]) == 128
    return folder


@pytest.fixture(scope="module")
def runtime(stylegan_export):
    return GeneratorRuntime.load(str(stylegan_export))


def test_psi_zero_gives_one_image_for_every_latent(runtime):
    values = styles.controls(runtime, psi=0.0, noise="zero")
    images = runtime.generate(4, seed=3, values=values)
    assert np.abs(images - images[:1]).max() < 1e-5  # every style is w_avg
    free = runtime.generate(4, seed=3, values=styles.controls(runtime, psi=1.0, noise="zero"))
    assert np.abs(free - free[:1]).max() > 1e-3  # without truncation the latents differ


def test_zero_noise_is_deterministic_and_sets_the_noise_input(runtime):
    feed = runtime.feed(None, None, styles.controls(runtime, noise="zero"), seed=0, n=2)
    assert not feed["noise"].any()
    a = runtime.generate(2, seed=5, values=styles.controls(runtime, noise="zero"))
    b = runtime.generate(2, seed=5, values=styles.controls(runtime, noise="zero"))
    np.testing.assert_array_equal(a, b)


def test_a_control_and_the_same_input_by_name_are_refused(runtime):
    with pytest.raises(ValueError, match=r"^psi: the input 'psi' is also given by name"):
        styles.controls(runtime, psi=0.5, inputs={"psi": 0.7})
    with pytest.raises(ValueError, match=r"^noise: the input 'noise' is also given by name"):
        styles.controls(runtime, noise="zero", inputs={"noise": 0.0})
    assert styles.controls(runtime, psi=0.5, inputs={"noise": 0.0}) == {"psi": 0.5, "noise": 0.0}


def test_style_mix_grid_takes_the_chosen_styles_from_the_columns(runtime):
    rows, cols = [1, 2], [3, 4, 5]
    every = list(range(styles.layout(runtime)["num_ws"]))
    feed = styles.mix_feed(runtime, rows, cols, every, psi=1.0, noise="zero")
    out = runtime.run_feed(feed).reshape(len(rows) + 1, len(cols) + 1, 28, 28, 1)
    for c in range(len(cols)):  # every style from the column: each cell is its column's source
        for r in range(len(rows)):
            np.testing.assert_allclose(out[r + 1, c + 1], out[0, c + 1], atol=1e-5)
    coarse = runtime.run_feed(styles.mix_feed(runtime, rows, cols, "coarse", 1.0, "zero"))
    coarse = coarse.reshape(out.shape)
    assert np.abs(coarse[1, 1] - out[1, 0]).max() > 1e-4  # some styles changed
    assert np.abs(coarse[1, 1] - out[0, 1]).max() > 1e-4  # but not all


@pytest.mark.parametrize(
    "layers, psi, noise, fragment",
    [
        ([6], 1.0, "zero", "layers: index 6 is out of range; this model has 6 styles (0-5)"),
        ([], 1.0, "zero", "layers: give at least one style index"),
        ("top", 1.0, "zero", "layers: unknown group 'top'; valid: coarse, middle, fine"),
        ("coarse", 1.5, "zero", "psi must be between 0 and 1"),
        ("coarse", 1.0, "loud", "noise must be 'random' or 'zero'"),
    ],
)
def test_bad_style_values_are_refused_by_name(runtime, layers, psi, noise, fragment):
    with pytest.raises(ValueError, match=fragment.replace("(", r"\(").replace(")", r"\)")):
        styles.mix_feed(runtime, [1], [2], layers, psi, noise)


def test_a_family_without_styles_refuses_psi_and_style_mixing(tmp_path):
    dcgan = GeneratorRuntime.load(str(write_export(tmp_path / "dcgan", "dcgan")))
    with pytest.raises(ValueError, match="psi: dcgan has no styles"):
        styles.controls(dcgan, psi=0.7)
    with pytest.raises(ValueError, match="noise: dcgan has no noise inputs"):
        styles.controls(dcgan, noise="zero")
    assert styles.controls(dcgan, noise="random") == {}
    with pytest.raises(ValueError, match="layers: dcgan has no styles to mix"):
        styles.mix_feed(dcgan, [1], [2], "coarse")


def test_http_style_mix_and_psi(stylegan_export, tmp_path):
    settings = ServeSettings(model=str(stylegan_export), max_images=64)
    with RunningServer(settings) as server:
        answer = requests.post(server.url + "/v1/style-mix", json={"rows": [1, 2], "cols": [3, 4, 5]}, timeout=60)
        assert answer.status_code == 200 and answer.headers["content-type"] == "image/png"
        grid = Image.open(io.BytesIO(answer.content))
        single = requests.post(server.url + "/v1/generate", json={"n": 12, "seed": 0}, timeout=60)
        assert grid.size[0] == Image.open(io.BytesIO(single.content)).size[0]  # 4 columns either way
        npy = requests.post(
            server.url + "/v1/style-mix", json={"rows": [1], "cols": [2], "layers": [0, 1], "format": "npy"}, timeout=60
        )
        pictures = np.load(io.BytesIO(npy.content))
        assert pictures.shape == (4, 28, 28, 1) and not pictures[0].any()  # the blank corner
        same = [
            requests.post(
                server.url + "/v1/generate",
                json={"n": 3, "seed": 9, "psi": 0.0, "noise": "zero", "format": "npy"},
                timeout=60,
            )
            for _ in range(2)
        ]
        one = np.load(io.BytesIO(same[0].content))
        assert same[0].content == same[1].content and (one == one[:1]).all()
        clash = requests.post(server.url + "/v1/generate", json={"psi": 0.5, "inputs": {"psi": 0.7}}, timeout=60)
        assert clash.status_code == 422 and clash.json()["error"].startswith("psi: the input 'psi'"), clash.text
        for body, fragment in (
            ({"rows": [1], "cols": [2], "layers": [7]}, "layers: index 7 is out of range"),
            ({"rows": [1], "cols": [2], "psi": 2}, "psi"),
            ({"rows": list(range(10)), "cols": list(range(10))}, "over this server's limit of 64"),
            ({"rows": [], "cols": [2]}, "rows"),
        ):
            bad = requests.post(server.url + "/v1/style-mix", json=body, timeout=60)
            assert 400 <= bad.status_code < 500 and fragment in bad.json()["error"], (body, bad.text)
    dcgan = write_export(tmp_path / "dcgan", "dcgan")
    with RunningServer(ServeSettings(model=str(dcgan))) as server:
        refused = requests.post(server.url + "/v1/style-mix", json={"rows": [1], "cols": [2]}, timeout=60)
        assert refused.status_code == 422 and "dcgan has no styles" in refused.json()["error"]
        refused = requests.post(server.url + "/v1/generate", json={"psi": 0.5}, timeout=60)
        assert refused.status_code == 422 and refused.json()["error"].startswith("psi: dcgan has no styles")


def _tiles(path, rows: int, columns: int, side: int = 28) -> np.ndarray:
    """The images of a PNG grid (contract.images.grid: 2-pixel borders), (rows * columns, side, side)."""
    with Image.open(path) as image:
        pixels = np.asarray(image)
    assert pixels.shape[:2] == (rows * (side + 2) + 2, columns * (side + 2) + 2), pixels.shape
    return np.stack(
        [
            pixels[2 + r * (side + 2) : 2 + r * (side + 2) + side, 2 + c * (side + 2) : 2 + c * (side + 2) + side]
            for r in range(rows)
            for c in range(columns)
        ]
    )


def test_cli_style_mix_and_generate_psi(stylegan_export, tmp_path, capsys):
    out = tmp_path / "mix.png"
    args = ["style-mix", "--model", str(stylegan_export), "--rows", "1,2", "--cols", "3", "--layers", "fine"]
    assert cli.main([*args, "--out", str(out)]) == 0
    mix = _tiles(out, rows=3, columns=2)  # the corner, the column source; each row source and its mix
    assert mix[0].max() == 0 and mix[1].std() > 0  # a blank corner, a real column source
    assert not np.array_equal(mix[2], mix[3]) and not np.array_equal(mix[4], mix[5])  # fine styles swapped in
    generate = ["generate", "--model", str(stylegan_export), "-n", "4", "--noise", "zero"]
    grid, again = tmp_path / "psi.png", tmp_path / "again.png"
    assert cli.main([*generate, "--psi", "0", "--out", str(grid)]) == 0
    average = _tiles(grid, rows=2, columns=2)  # psi 0: every seed's w is w_avg, noise zero: one image
    assert all(np.array_equal(average[0], tile) for tile in average[1:]) and average[0].std() > 0
    assert cli.main([*generate, "--psi", "0.7", "--out", str(grid)]) == 0
    assert cli.main([*generate, "--psi", "0.7", "--out", str(again)]) == 0
    assert grid.read_bytes() == again.read_bytes()  # zero noise repeats exactly
    varied = _tiles(grid, rows=2, columns=2)
    assert len({tile.tobytes() for tile in varied}) == 4  # psi 0.7 keeps the seeds apart
    capsys.readouterr()
    assert cli.main([*args, "--layers", "0,9", "--out", str(out)]) == 2
    assert "--layers: index 9 is out of range" in capsys.readouterr().err
    assert cli.main(["generate", "--model", str(stylegan_export), "--psi", "3", "--out", str(grid)]) == 2
    assert "--psi must be between 0 and 1" in capsys.readouterr().err
