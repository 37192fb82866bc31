"""The portable sampler (contract/sampler.py): its hash, its draws' distribution, and its draws
against the specification written in plain integers (what serving/web/sampler.js implements)."""

from __future__ import annotations

import numpy as np
import pytest

from contract import sampler


def _mix_reference(x: int) -> int:
    """lowbias32 in plain Python integers, as published."""
    x ^= x >> 16
    x = (x * 0x7FEB352D) & 0xFFFFFFFF
    x ^= x >> 15
    x = (x * 0x846CA68B) & 0xFFFFFFFF
    x ^= x >> 16
    return x


def test_the_hash_is_lowbias32():
    values = [0, 1, 2, 0x9E3779B9, 0xFFFFFFFF, 123456789]
    assert sampler.mix(np.array(values, np.uint32)).tolist() == [_mix_reference(v) for v in values]


def test_draws_are_a_pure_function_of_seed_stream_and_index():
    a = sampler.normal(7, 0, (4, 5))
    np.testing.assert_array_equal(a, sampler.normal(7, 0, (4, 5)))
    np.testing.assert_array_equal(a.reshape(-1)[:6], sampler.normal(7, 0, (6,)))  # row-major prefix
    assert not np.array_equal(a, sampler.normal(8, 0, (4, 5)))
    assert not np.array_equal(a, sampler.normal(7, 1, (4, 5)))
    np.testing.assert_array_equal(sampler.normal(2**32 + 7, 0, (3,)), sampler.normal(7, 0, (3,)))
    assert a.dtype == np.float32


def test_the_draws_have_the_distributions_they_claim():
    z = sampler.normal(0, 0, (200_000,)).astype(np.float64)
    assert abs(z.mean()) < 0.01 and abs(z.std() - 1.0) < 0.01
    assert abs(np.mean(np.abs(z) > 1.96) - 0.05) < 0.003  # the tails of a normal
    assert abs(np.corrcoef(z[:-1], z[1:])[0, 1]) < 0.01  # neighbours independent
    u = sampler.uniform(1, 3, (100_000,), -2.0, 2.0)
    assert u.min() > -2.0 and u.max() < 2.0 and abs(u.mean()) < 0.02
    seeds = np.stack([sampler.normal(seed, 0, (8,)) for seed in range(2000)])
    assert np.abs(np.corrcoef(seeds.T) - np.eye(8)).max() < 0.1  # neighbouring seeds unrelated


def test_numpy_draws_equal_the_specification_in_plain_integers():
    for seed, stream in ((0, 0), (1234, 2), (2**32 - 1, 7)):
        expected = [_reference_bits(seed, stream, index) for index in range(5)]
        assert sampler.bits(seed, stream, 5).tolist() == expected
    unit = (_reference_bits(5, 0, 0) + 0.5) / 2**32, (_reference_bits(5, 0, 1) + 0.5) / 2**32
    first = np.float32(np.sqrt(-2.0 * np.log(unit[0])) * np.cos(2.0 * np.pi * unit[1]))
    assert sampler.normal(5, 0, (1,))[0] == first


def _reference_bits(seed: int, stream: int, index: int) -> int:
    key = _mix_reference(_mix_reference(seed) ^ _mix_reference((stream + 0x9E3779B9) & 0xFFFFFFFF))
    return _mix_reference((_mix_reference(index ^ key) + key) & 0xFFFFFFFF)


def test_a_card_names_its_sampler_and_a_card_without_one_keeps_numpy_seeds(tmp_path):
    import json

    from contract import signature
    from serving import edge
    from serving.runtime import GeneratorRuntime, ModelLoadError
    from tests.serving.conftest import write_export

    folder = write_export(tmp_path / "new", "stylegan", latent_dim=6)
    card = json.loads((folder / "model_card.json").read_text())
    assert card["sampler"] == sampler.SAMPLER
    runtime = GeneratorRuntime.load(str(folder))
    feed = runtime.feed(runtime.latents(9, 3), seed=9)
    np.testing.assert_array_equal(feed["z"], sampler.normal(9, 0, (3, 6)))
    noise = next(i for i, s in enumerate(runtime.signature.inputs) if s.role == "noise")
    np.testing.assert_array_equal(feed["noise"], sampler.normal(9, noise + 1, feed["noise"].shape))
    session, edge_card = edge.load(str(folder))
    np.testing.assert_array_equal(edge.generate(session, edge_card, 3, 9), runtime.generate_uint8(3, 9))

    del card["sampler"]  # an export written before the portable sampler
    (folder / "model_card.json").write_text(json.dumps(card))
    legacy = GeneratorRuntime.load(str(folder))
    assert legacy.sampler == sampler.LEGACY
    old = np.random.default_rng(9).standard_normal((3, 6)).astype(np.float32)
    np.testing.assert_array_equal(legacy.latents(9, 3), old)
    spec = legacy.signature.inputs[noise]
    expected = np.random.default_rng([9, noise + 1]).standard_normal((3, *spec.shape)).astype(np.float32)
    np.testing.assert_array_equal(signature.default_feed(legacy.signature.inputs, 3, 9)["noise"], expected)
    session, edge_card = edge.load(str(folder))
    np.testing.assert_array_equal(edge.generate(session, edge_card, 3, 9), legacy.generate_uint8(3, 9))
    card["sampler"] = "lf-future-v9"
    (folder / "model_card.json").write_text(json.dumps(card))
    with pytest.raises(ModelLoadError, match="sampler 'lf-future-v9' is unknown"):
        GeneratorRuntime.load(str(folder))
