"""Projection of real images into a StyleGAN's W space (pipeline/project.py), through the export's
synthesis SavedModel, on a tiny colour export."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from pipeline import cli, project
from pipeline.errors import UserError, load_runtime
from tests.serving.conftest import write_export


@pytest.fixture(scope="module")
def stylegan(tmp_path_factory):
    folder = tmp_path_factory.mktemp("stylegan")
    return write_export(folder, "stylegan", latent_dim=16, shape=(32, 32, 3), width=8, savedmodels=True)


def _save(pixels_unit: np.ndarray, path) -> str:
    Image.fromarray((np.clip(pixels_unit, 0, 1) * 255).round().astype(np.uint8)).save(path)
    return str(path)


def test_projection_recovers_an_image_the_model_made(stylegan, tmp_path):
    runtime = load_runtime(str(stylegan))
    made = runtime.run(np.random.default_rng(3).standard_normal((1, 16)).astype(np.float32), values={"noise": 0.0})
    target_file = _save((made[0] + 1) / 2, tmp_path / "made.png")
    target = project.load_target(target_file, 32, 3, "tanh")
    start = project.project(runtime, target, steps=1)["image"]  # about the average w's image
    found = project.project(runtime, target, steps=150)
    unit = lambda x: (np.asarray(x) + 1) / 2  # noqa: E731
    before = project.pixel_distance(unit(target[0]), unit(start))
    after = project.pixel_distance(unit(target[0]), unit(found["image"]))
    assert after < 0.5 * before, (before, after)
    assert found["ws"].shape == (runtime.card["styles"]["num_ws"], 128) and np.allclose(found["ws"], found["w"])
    plus = project.project(runtime, target, steps=20, w_plus=True)
    assert "w" not in plus and plus["ws"].shape == found["ws"].shape


def test_the_command_writes_the_latents_and_a_picture(stylegan, tmp_path, capsys):
    image = _save(np.full((40, 40, 3), 0.7), tmp_path / "grey.png")
    assert (
        cli.main(["project", "--model", str(stylegan), "--image", image, "--out", str(tmp_path / "p"), "--steps", "5"])
        == 0
    )
    saved = np.load(tmp_path / "p.npz")
    assert saved["ws"].shape[1] == 128 and saved["noise"].ndim == 1 and float(saved["pixel_l2"]) > 0
    assert Image.open(tmp_path / "p.png").size[0] > 3 * 32
    assert "project: step 5/5" in capsys.readouterr().out


def test_bad_input_is_one_line(stylegan, tmp_path, capsys):
    dcgan = write_export(tmp_path / "dcgan", "dcgan")
    image = _save(np.zeros((8, 8, 3)), tmp_path / "a.png")
    for argv, message in (
        (["--model", str(dcgan), "--image", image], "projection needs a style-based model"),
        (["--model", str(stylegan), "--image", str(tmp_path / "missing.png")], "does not exist"),
    ):
        assert cli.main(["project", *argv, "--out", str(tmp_path / "x")]) == 2
        err = capsys.readouterr().err.strip()
        assert message in err and "\n" not in err
    (tmp_path / "broken.png").write_bytes(b"nope")
    with pytest.raises(UserError, match="does not decode"):
        project.load_target(str(tmp_path / "broken.png"), 32, 3, "tanh")
    assert not (tmp_path / "x.npz").exists()
    # checked before the model loads and the steps run: nothing is lost to a typo at the end
    for argv, message in (
        (["--out", str(tmp_path / "no" / "such" / "p")], "does not exist or is not writable"),
        (["--out", str(tmp_path / "x"), "--background", "mauve"], "is not a colour"),
        (["--out", str(tmp_path / "x"), "--steps", "0"], "steps must be at least 1"),
    ):
        assert cli.main(["project", "--model", str(tmp_path / "nowhere"), "--image", image, *argv]) == 2
        err = capsys.readouterr().err.strip()
        assert message in err and "\n" not in err, err


def test_transparent_pixels_take_the_training_folders_background(stylegan, tmp_path):
    from pipeline import folders

    clear = np.zeros((32, 32, 4), np.uint8)
    clear[8:24, 8:24] = (255, 0, 0, 255)  # a red square on nothing
    path = tmp_path / "clear.png"
    Image.fromarray(clear, "RGBA").save(path)
    on_black = project.load_target(str(path), 32, 3, "tanh", (0, 0, 0))
    np.testing.assert_allclose(on_black[0, 0, 0], [-1.0, -1.0, -1.0])
    np.testing.assert_allclose(on_black[0, 16, 16], [1.0, -1.0, -1.0])
    source = tmp_path / "pictures" / "any"
    source.mkdir(parents=True)
    for index in range(4):
        Image.fromarray(clear, "RGBA").save(source / f"{index}.png")
    prepared, _ = folders.prepare(
        str(tmp_path / "pictures"), folders.Recipe(background="#102030"), str(tmp_path / "data"), log=lambda line: None
    )
    card = {"dataset": prepared.meta["name"], "dataset_version": prepared.meta["key"]}
    found = project.training_background(card, str(tmp_path / "data"))
    assert found is not None and found[0] == "#102030"
    assert project.training_background({"dataset": "elsewhere", "dataset_version": "x"}, str(tmp_path / "data")) is None


def test_a_broken_synthesis_graph_is_one_line_and_a_503(stylegan, tmp_path, capsys):
    import shutil

    import requests

    from serving.schemas import ServeSettings
    from tests.serving.conftest import RunningServer

    image = _save(np.full((32, 32, 3), 0.4), tmp_path / "g.png")
    out = str(tmp_path / "g.npz")
    assert cli.main(["project", "--model", str(stylegan), "--image", image, "--out", out, "--steps", "2"]) == 0
    broken = tmp_path / "broken"
    shutil.copytree(stylegan, broken)
    (broken / "synthesis.onnx").write_bytes(b"not the exported graph")  # fails its sha256 in the card
    found = latent_projection(out)
    body = {"ws": [found["ws"].tolist()], "noise": "zero"}
    with RunningServer(ServeSettings(model=str(broken))) as server:
        answer = requests.post(server.url + "/v1/synthesize", json=body, timeout=60)
        assert answer.status_code == 503 and "synthesis graph is unavailable" in answer.json()["error"], answer.text
        assert requests.post(server.url + "/v1/generate", json={"n": 1}, timeout=60).status_code == 200
    capsys.readouterr()
    assert (
        cli.main(
            [
                "latent",
                "interpolate",
                "--model",
                str(broken),
                "--between",
                f"{out},{out}",
                "--out",
                str(tmp_path / "w.png"),
            ]
        )
        == 2
    )
    # latentforge's line (in the full suite a library's log lines share stderr)
    ours = [line for line in capsys.readouterr().err.splitlines() if line.startswith("latentforge:")]
    assert len(ours) == 1 and "synthesis" in ours[0] and ours[0].startswith("latentforge: error: "), ours
    assert not (tmp_path / "w.png").exists()


def test_anything_but_a_projection_is_refused_in_one_line(tmp_path):
    from pipeline import latent

    np.save(tmp_path / "array.npy", np.zeros(3))
    (tmp_path / "empty.npz").write_bytes(b"")
    (tmp_path / "half.npz").write_bytes(b"PK\x03\x04 truncated")
    np.savez(tmp_path / "other.npz", something=np.zeros(2))
    for name in ("array.npy", "empty.npz", "half.npz", "other.npz", "missing.npz"):
        with pytest.raises(UserError, match="is not a projection"):
            latent.load_projection(str(tmp_path / name))


def test_projections_feed_interpolation_and_arithmetic(stylegan, tmp_path, store):
    from pipeline import latent

    paths = []
    for index, grey in enumerate((0.2, 0.5, 0.8)):
        image = _save(np.full((32, 32, 3), grey), tmp_path / f"{index}.png")
        out = str(tmp_path / f"{index}.npz")
        assert cli.main(["project", "--model", str(stylegan), "--image", image, "--out", out, "--steps", "3"]) == 0
        paths.append(out)
    strip = latent.run_latent(
        "interpolate", str(tmp_path / "walk.png"), model=str(stylegan), between=",".join(paths[:2]), steps=5
    )
    assert strip.picture.shape[1] > 5 * 32  # one row of five images
    a = latent.load_projection(paths[0])
    runtime = load_runtime(str(stylegan))
    synthesis, _ = runtime.graph("synthesis")
    first = synthesis.run(["image"], {"ws": a["ws"][None], "noise": a["noise"][None]})[0]
    from contract import images

    np.testing.assert_array_equal(strip.picture[2 : 2 + 32, 2 : 2 + 32], images.to_uint8(first, "tanh")[0])
    result = latent.run_latent(
        "arithmetic", str(tmp_path / "sum.png"), model=str(stylegan), a=paths[0], b=paths[1], c=paths[2]
    )
    assert result.summary["space"] == "W"
    with pytest.raises(UserError, match="is not a projection"):
        latent.load_projection(str(tmp_path / "0.png"))


def test_the_server_synthesizes_projected_styles(stylegan, tmp_path):
    import requests

    from serving.schemas import ServeSettings
    from tests.serving.conftest import RunningServer

    image = _save(np.full((32, 32, 3), 0.4), tmp_path / "g.png")
    out = str(tmp_path / "g.npz")
    assert cli.main(["project", "--model", str(stylegan), "--image", image, "--out", out, "--steps", "3"]) == 0
    found = latent_projection(out)
    runtime = load_runtime(str(stylegan))
    expected = runtime.synthesize(found["ws"][None], found["noise"][None])
    body = {"ws": [found["ws"].tolist()], "noise": [found["noise"].tolist()], "format": "npy"}
    with RunningServer(ServeSettings(model=str(stylegan))) as server:
        answer = requests.post(server.url + "/v1/synthesize", json=body, timeout=60)
        assert answer.status_code == 200, answer.text
        served = np.load(io.BytesIO(answer.content))
        from contract import images

        np.testing.assert_array_equal(served, images.to_uint8(expected, "tanh"))
        wrong = requests.post(server.url + "/v1/synthesize", json={"ws": [[[0.0] * 3]]}, timeout=60)
        assert wrong.status_code == 422 and "ws must be finite numbers of shape" in wrong.json()["error"]


def latent_projection(path: str) -> dict:
    from pipeline import latent

    return latent.load_projection(path)


def test_the_cards_w_spread_is_what_the_exported_generator_maps(stylegan):
    runtime = load_runtime(str(stylegan))
    styles = runtime.card["styles"]
    assert styles["w_spread_samples"] == project.W_SPREAD_SAMPLES and project.w_spread(runtime) == styles["w_spread"]
    runtime.card["styles"] = {k: v for k, v in styles.items() if k != "w_spread"}  # as a card written before it
    assert project.w_spread(runtime) == pytest.approx(styles["w_spread"], rel=1e-4)  # the ONNX generator's ws
