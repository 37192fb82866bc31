"""Property-based fuzzing of the request schema: whatever JSON arrives (right keys with wrong
values, unknown keys, wrong shapes, huge numbers, NaN), the server answers below 500 and keeps
serving."""

from __future__ import annotations

import json

import pytest
import requests
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from serving.server import ServeSettings
from tests.serving.conftest import RunningServer

SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=20),
)
VALUES = st.recursive(
    SCALARS,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=8,
)
GENERATE_KEYS = ("n", "seed", "label", "truncation", "format")
INTERPOLATE_KEYS = ("seed_a", "seed_b", "steps", "method", "label", "format")


def bodies(keys):
    known = st.fixed_dictionaries({}, optional={k: VALUES | st.integers(-3, 300) for k in keys})
    return st.one_of(known, st.dictionaries(st.text(max_size=10), VALUES, max_size=5), VALUES)


@pytest.fixture(scope="module")
def server(exports):
    with RunningServer(ServeSettings(model=str(exports["cdcgan"]), max_images=64)) as running:
        yield running.url


def _post(url, body):
    data = json.dumps(body, allow_nan=True).encode()  # NaN/Infinity literals too
    return requests.post(url, data=data, headers={"content-type": "application/json"}, timeout=30)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(body=bodies(GENERATE_KEYS))
def test_generate_never_answers_5xx(server, body):
    answer = _post(server + "/v1/generate", body)
    assert answer.status_code < 500, (body, answer.status_code, answer.text[:300])
    if answer.status_code >= 400:
        assert "error" in answer.json()


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(body=bodies(INTERPOLATE_KEYS))
def test_interpolate_never_answers_5xx(server, body):
    answer = _post(server + "/v1/interpolate", body)
    assert answer.status_code < 500, (body, answer.status_code, answer.text[:300])


def test_still_serving_after_the_fuzz(server):
    assert requests.post(server + "/v1/generate", json={"n": 2, "seed": 1}).status_code == 200
