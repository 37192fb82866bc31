"""The HTTP API on a real uvicorn server on loopback: happy paths, determinism, every bad
request answered 4xx with JSON (and the server still serving), concurrency, reload."""

from __future__ import annotations

import io
import json
import shutil
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
import requests

from contract import images
from serving.server import ServeSettings
from tests.serving.conftest import RunningServer, tamper, write_export


@pytest.fixture(scope="module")
def dcgan(exports):
    with RunningServer(ServeSettings(model=str(exports["dcgan"]), max_images=64)) as server:
        yield server.url


@pytest.fixture(scope="module")
def vae(exports):
    with RunningServer(ServeSettings(model=str(exports["vae"]))) as server:
        yield server.url


@pytest.fixture(scope="module")
def cdcgan(exports):
    with RunningServer(ServeSettings(model=str(exports["cdcgan"]))) as server:
        yield server.url


def _png(array: np.ndarray) -> bytes:
    return images.png_bytes(array)


def test_generate_png_npy_json_and_same_seed_same_bytes(dcgan):
    a = requests.post(dcgan + "/v1/generate", json={"n": 4, "seed": 7})
    b = requests.post(dcgan + "/v1/generate", json={"n": 4, "seed": 7})
    assert a.status_code == 200 and a.headers["content-type"] == "image/png"
    assert a.content == b.content and a.content[:8] == b"\x89PNG\r\n\x1a\n"
    assert requests.post(dcgan + "/v1/generate", json={"n": 4, "seed": 8}).content != a.content
    npy = requests.post(dcgan + "/v1/generate", json={"n": 3, "seed": 7, "format": "npy"})
    array = np.load(io.BytesIO(npy.content))
    assert array.shape == (3, 28, 28, 1) and array.dtype == np.uint8
    as_json = requests.post(dcgan + "/v1/generate", json={"n": 3, "seed": 7, "format": "json"}).json()
    np.testing.assert_array_equal(np.asarray(as_json["images"], np.uint8), array)
    unseeded = requests.post(dcgan + "/v1/generate", json={"n": 1})
    assert unseeded.status_code == 200 and int(unseeded.headers["x-seed"]) >= 0
    truncated = requests.post(dcgan + "/v1/generate", json={"n": 2, "seed": 7, "truncation": 0.5, "format": "npy"})
    assert truncated.status_code == 200


def test_served_images_match_the_runtime(dcgan, exports):
    from serving.runtime import GeneratorRuntime

    expected = GeneratorRuntime.load(str(exports["dcgan"])).generate_uint8(5, seed=11)
    got = np.load(io.BytesIO(requests.post(dcgan + "/v1/generate", json={"n": 5, "seed": 11, "format": "npy"}).content))
    np.testing.assert_array_equal(got, expected)


def test_interpolate_models_health_metrics_openapi(dcgan):
    strip = requests.post(dcgan + "/v1/interpolate", json={"seed_a": 1, "seed_b": 2, "steps": 6, "format": "npy"})
    assert np.load(io.BytesIO(strip.content)).shape == (6, 28, 28, 1)
    card = requests.get(dcgan + "/v1/models").json()
    assert card["card"]["model"] == "dcgan" and card["card"]["latent_dim"] == 10
    assert requests.get(dcgan + "/healthz").json() == {"status": "ok"}
    assert requests.get(dcgan + "/readyz").json()["status"] == "ready"
    schema = requests.get(dcgan + "/openapi.json").json()
    assert {"/v1/generate", "/v1/interpolate", "/v1/reconstruct", "/v1/models"} <= set(schema["paths"])
    text = requests.get(dcgan + "/metrics").text
    assert 'latentforge_requests_total{path="/v1/interpolate",status="200"}' in text
    assert "latentforge_request_seconds_bucket" in text and "latentforge_batch_size_count" in text


def test_reconstruct_vae(vae, dcgan):
    picture = (np.random.default_rng(0).random((28, 28, 1)) * 255).astype(np.uint8)
    answer = requests.post(
        vae + "/v1/reconstruct?format=npy", data=_png(picture), headers={"content-type": "image/png"}
    )
    assert answer.status_code == 200, answer.text
    assert np.load(io.BytesIO(answer.content)).shape == (1, 28, 28, 1)
    refused = requests.post(dcgan + "/v1/reconstruct", data=_png(picture))
    assert refused.status_code == 422 and "no encoder" in refused.json()["error"]


def test_conditional_label_by_name_or_index(cdcgan):
    by_name = requests.post(cdcgan + "/v1/generate", json={"n": 2, "seed": 1, "label": "sneaker", "format": "npy"})
    by_index = requests.post(cdcgan + "/v1/generate", json={"n": 2, "seed": 1, "label": 7, "format": "npy"})
    assert by_name.status_code == 200 and by_name.content == by_index.content
    other = requests.post(cdcgan + "/v1/generate", json={"n": 2, "seed": 1, "label": 8, "format": "npy"})
    assert other.content != by_index.content


BAD_JSON = [
    ({"n": 0}, "n"),
    ({"n": -3}, "n"),
    ({"n": 65}, "limit"),
    ({"n": "3"}, "n"),
    ({"n": 2.5}, "n"),
    ({"n": True}, "n"),
    ({"seed": -1}, "seed"),
    ({"seed": 2**40}, "seed"),
    ({"format": "gif"}, "format"),
    ({"truncation": 0}, "truncation"),
    ({"truncation": 1e-300}, "truncation"),
    ({"truncation": "big"}, "truncation"),
    ({"label": 3}, "conditional"),
    ({"n": 1, "colour": "red"}, "colour"),
    ([1, 2], "body"),
]


@pytest.mark.parametrize("body, fragment", BAD_JSON)
def test_bad_generate_requests_get_4xx_json_and_the_server_keeps_serving(dcgan, body, fragment):
    answer = requests.post(dcgan + "/v1/generate", json=body)
    assert 400 <= answer.status_code < 500, (answer.status_code, answer.text)
    assert fragment in answer.json()["error"]
    assert requests.post(dcgan + "/v1/generate", json={"n": 1, "seed": 0}).status_code == 200


@pytest.mark.parametrize(
    "data, content_type",
    [
        (b"{not json", "application/json"),
        (b'{"n": NaN}', "application/json"),
        (b'{"n": 1, "truncation": Infinity}', "application/json"),
        (b"", "application/json"),
        (b"n=3", "application/x-www-form-urlencoded"),
    ],
)
def test_malformed_bodies(dcgan, data, content_type):
    answer = requests.post(dcgan + "/v1/generate", data=data, headers={"content-type": content_type})
    assert 400 <= answer.status_code < 500 and "error" in answer.json(), answer.text


def test_unknown_label_bad_uploads_and_oversized_bodies(cdcgan, vae):
    unknown = requests.post(cdcgan + "/v1/generate", json={"n": 1, "label": "spaceship"})
    assert unknown.status_code == 422 and "unknown label 'spaceship'" in unknown.json()["error"]
    out_of_range = requests.post(cdcgan + "/v1/generate", json={"n": 1, "label": 10})
    assert out_of_range.status_code == 422
    wrong_shape = requests.post(vae + "/v1/reconstruct", data=_png(np.zeros((32, 32, 1), np.uint8)))
    assert wrong_shape.status_code == 422 and "28x28" in wrong_shape.json()["error"]
    not_image = requests.post(vae + "/v1/reconstruct", data=b"hello, not a picture")
    assert not_image.status_code == 415
    empty = requests.post(vae + "/v1/reconstruct", data=b"")
    assert empty.status_code == 400
    huge = requests.post(vae + "/v1/reconstruct", data=b"x" * 2_000_000)
    assert huge.status_code == 413 and "body over" in huge.json()["error"]
    streamed = requests.post(vae + "/v1/reconstruct", data=(b"x" * 100_000 for _ in range(20)))  # chunked, no length
    assert streamed.status_code == 413
    assert requests.post(vae + "/v1/generate", json={"n": 1}).status_code == 200


def _post_whole_body_first(url: str, data, headers: dict | None = None) -> tuple[int, dict]:
    """POST with Python's urllib, which sends all of the body (and 'Connection: close') before it
    reads a byte of the answer; (status, JSON answer)."""
    request = urllib.request.Request(url, data=data, headers={"content-type": "application/json", **(headers or {})})
    try:
        with urllib.request.urlopen(request, timeout=30) as answer:
            return answer.status, json.loads(answer.read())
    except urllib.error.HTTPError as error:
        with error:
            return error.code, json.loads(error.read())


def test_an_oversized_body_sent_whole_before_reading_still_gets_the_413_json(dcgan):
    # A server that answers 413 and closes with the body unread resets the connection: this
    # client then saw "connection reset by peer" instead of the answer.
    over = {"error": "request body over 1000000 bytes; send a smaller one"}
    for _ in range(3):
        declared = _post_whole_body_first(dcgan + "/v1/generate", b"x" * (8 << 20))  # Content-Length: 8 MiB
        assert declared == (413, over)
        chunked = _post_whole_body_first(dcgan + "/v1/generate", (b"x" * (1 << 20) for _ in range(8)))  # no length
        assert chunked == (413, over)
    assert _post_whole_body_first(dcgan + "/v1/generate", json.dumps({"n": 1, "format": "json"}).encode())[0] == 200


@pytest.mark.parametrize(
    "data, message",
    [
        (b"{x}", "expecting property name enclosed in double quotes at line 1 column 2"),
        (b'{"n": 1,', "expecting property name enclosed in double quotes at line 1 column 9"),
        (b'{"n": 2, "seed": }', "expecting value at line 1 column 18"),
        (b'{"n": 1}\n{"n": 2}', "extra data at line 2 column 1"),
        (b'\n\n  {"n": 1 "seed": 2}', "expecting ',' delimiter at line 3 column 11"),
        (b'{"format": "pn', "unterminated string starting at line 1 column 12"),
    ],
)
def test_malformed_json_says_what_is_wrong_and_where(dcgan, data, message):
    answer = requests.post(dcgan + "/v1/generate", data=data, headers={"content-type": "application/json"})
    assert answer.status_code == 422 and answer.json() == {"error": f"body is not valid JSON: {message}"}


@pytest.mark.slow
def test_concurrent_load_has_no_errors_and_is_batched(dcgan):
    session = requests.Session()

    def one(i):
        return requests.post(dcgan + "/v1/generate", json={"n": 1, "seed": i % 50, "format": "npy"}).status_code

    with ThreadPoolExecutor(32) as pool:
        codes = list(pool.map(one, range(2000)))
    assert codes.count(200) == 2000
    text = session.get(dcgan + "/metrics").text
    count = int(next(line.split()[-1] for line in text.splitlines() if line.startswith("latentforge_batch_size_count")))
    images_total = int(
        next(line.split()[-1] for line in text.splitlines() if line.startswith("latentforge_batch_size_sum"))
    )
    assert images_total / count > 1.0  # concurrent requests shared onnxruntime calls


def test_bearer_token(exports, monkeypatch):
    monkeypatch.setenv("LATENTFORGE_TOKEN", "s3cret")
    with RunningServer(ServeSettings(model=str(exports["dcgan"]))) as server:
        assert requests.get(server.url + "/healthz").status_code == 200  # health checks stay open
        denied = requests.post(server.url + "/v1/generate", json={"n": 1})
        assert denied.status_code == 401 and "bearer token" in denied.json()["error"]
        wrong = requests.post(server.url + "/v1/generate", json={"n": 1}, headers={"authorization": "Bearer nope"})
        assert wrong.status_code == 401
        ok = requests.post(server.url + "/v1/generate", json={"n": 1}, headers={"authorization": "Bearer s3cret"})
        assert ok.status_code == 200


def test_a_refused_token_with_a_big_body_still_gets_the_401_json(exports, monkeypatch):
    monkeypatch.setenv("LATENTFORGE_TOKEN", "s3cret")
    with RunningServer(ServeSettings(model=str(exports["dcgan"]))) as server:
        status, answer = _post_whole_body_first(server.url + "/v1/generate", b"x" * 900_000)  # under the limit
        assert status == 401 and "bearer token" in answer["error"]
        status, answer = _post_whole_body_first(server.url + "/v1/generate", b"x" * (8 << 20))  # and over it
        assert status == 401 and "bearer token" in answer["error"]


@pytest.mark.slow
def test_reload_under_load_loses_no_request(exports, tmp_path):
    folder = tmp_path / "live"
    shutil.copytree(exports["dcgan"], folder)
    with RunningServer(ServeSettings(model=str(folder))) as server:
        before = requests.post(server.url + "/v1/generate", json={"n": 1, "seed": 3, "format": "npy"}).content
        # a new version (other weights): its files swapped in, card last, as a deployment would
        new = write_export(tmp_path / "next", "dcgan", latent_dim=10, seed=5)
        shutil.copy(new / "generator.onnx", folder / "generator.onnx")
        shutil.copy(new / "model_card.json", folder / "model_card.json")

        def one(i):
            return requests.post(server.url + "/v1/generate", json={"n": 1, "seed": i}).status_code

        with ThreadPoolExecutor(16) as pool:
            pending = [pool.submit(one, i) for i in range(600)]
            reload = requests.post(server.url + "/v1/admin/reload")
            codes = [p.result() for p in pending]
        assert reload.status_code == 200 and reload.json()["reloaded"] is True
        assert codes.count(200) == 600
        after = requests.post(server.url + "/v1/generate", json={"n": 1, "seed": 3, "format": "npy"}).content
        assert after != before
        # a tampered file is refused and the verified model keeps serving
        tamper(folder / "generator.onnx")
        refused = requests.post(server.url + "/v1/admin/reload")
        assert refused.status_code == 409 and "still serving" in refused.json()["error"]
        assert requests.post(server.url + "/v1/generate", json={"n": 1, "seed": 3, "format": "npy"}).content == after


def test_the_schema_and_the_inputs_field_follow_the_model_card(cdcgan, dcgan):
    """The OpenAPI schema lists the inputs a request may set, from the card (here the label, with
    its class range); `inputs` sets them by name, and an unknown name or a bad value is a 422."""
    inputs = requests.get(cdcgan + "/openapi.json").json()["components"]["schemas"]["GenerateRequest"]
    inputs = inputs["properties"]["inputs"]
    assert set(inputs["properties"]) == {"label"} and inputs["additionalProperties"] is False
    assert inputs["properties"]["label"]["anyOf"][0] == {
        "type": "integer",
        "description": "class index; default: each in turn",
        "minimum": 0,
        "maximum": 9,
    }
    by_name = requests.post(cdcgan + "/v1/generate", json={"n": 3, "seed": 4, "format": "npy", "inputs": {"label": 7}})
    by_label = requests.post(cdcgan + "/v1/generate", json={"n": 3, "seed": 4, "format": "npy", "label": 7})
    assert by_name.status_code == 200 and by_name.content == by_label.content
    per_image = requests.post(cdcgan + "/v1/generate", json={"n": 2, "format": "npy", "inputs": {"label": [1, 8]}})
    assert per_image.status_code == 200
    for body, message in (
        ({"inputs": {"label": 10}}, "between 0 and 9"),
        ({"inputs": {"label": [1, 2, 3]}}, "must have shape"),
        ({"inputs": {"psi": 0.5}}, "unknown input 'psi'; this model's inputs: z, label"),
    ):
        answer = requests.post(cdcgan + "/v1/generate", json={"n": 2, **body})
        assert answer.status_code == 422 and message in answer.json()["error"], answer.text
    assert (
        requests.get(dcgan + "/openapi.json").json()["components"]["schemas"]["GenerateRequest"]["properties"][
            "inputs"
        ]["properties"]
        == {}
    )
