"""Metrics against known answers."""

import numpy as np
import pytest

from pipeline import metrics


def _gaussian(n, d, seed, shift=0.0):
    return np.random.default_rng(seed).standard_normal((n, d)) + shift


def test_fid_of_a_set_with_itself_is_zero():
    x = _gaussian(2000, 16, 0)
    assert metrics.fid_between(x, x) == pytest.approx(0.0, abs=1e-6)


def test_frechet_distance_matches_the_closed_form_for_gaussians():
    # Diagonal covariances: FD = |mu1-mu2|^2 + sum (s1 + s2 - 2 sqrt(s1 s2)) = |dmu|^2 + sum (sqrt s1 - sqrt s2)^2
    mu1, mu2 = np.array([0.0, 1.0, 2.0]), np.array([1.0, 1.0, 0.0])
    s1, s2 = np.array([1.0, 4.0, 9.0]), np.array([4.0, 1.0, 9.0])
    expected = np.sum((mu1 - mu2) ** 2) + np.sum((np.sqrt(s1) - np.sqrt(s2)) ** 2)
    assert metrics.frechet_distance(mu1, np.diag(s1), mu2, np.diag(s2)) == pytest.approx(expected, rel=1e-9)
    # and a full (rotated) covariance: FD is invariant to rotating both distributions
    rotation, _ = np.linalg.qr(np.random.default_rng(0).standard_normal((3, 3)))
    rotated = metrics.frechet_distance(
        rotation @ mu1, rotation @ np.diag(s1) @ rotation.T, rotation @ mu2, rotation @ np.diag(s2) @ rotation.T
    )
    assert rotated == pytest.approx(expected, rel=1e-6)


def test_sample_fid_approaches_the_closed_form():
    a, b = _gaussian(20000, 4, 0), _gaussian(20000, 4, 1, shift=1.0)
    assert metrics.fid_between(a, b) == pytest.approx(4.0, rel=0.05)  # |shift|^2 * d, same covariance


def test_kid_is_unbiased_for_the_same_distribution_and_positive_for_different_ones():
    same = [
        metrics.kid(_gaussian(1000, 8, s), _gaussian(1000, 8, s + 100), subsets=20, subset_size=200, seed=s)[0]
        for s in range(10)
    ]
    assert abs(np.mean(same)) < 3 * np.std(same) / np.sqrt(len(same)) + 1e-3
    assert min(same) < 0 < max(same)  # an unbiased estimate of 0 takes both signs
    different, std = metrics.kid(_gaussian(1000, 8, 0), _gaussian(1000, 8, 1, shift=0.5), subsets=20, subset_size=200)
    assert different > 3 * std > 0
    assert different > 20 * max(abs(v) for v in same)


def test_density_and_coverage_match_naeem_et_al_sanity_values():
    real, fake = _gaussian(4000, 16, 0), _gaussian(4000, 16, 1)
    density, coverage = metrics.density_coverage(real, fake, k=5)
    assert density == pytest.approx(1.0, abs=0.1)
    assert coverage == pytest.approx(0.97, abs=0.02)


def test_precision_and_recall_fall_as_one_set_shifts_away():
    real = _gaussian(3000, 8, 0)
    results = [metrics.precision_recall(real, _gaussian(3000, 8, 1, shift=s), k=3) for s in (0.0, 0.5, 1.5)]
    precisions, recalls = zip(*results)
    assert precisions[0] > 0.6 and recalls[0] > 0.6
    assert precisions[0] > precisions[1] > precisions[2]
    assert recalls[0] > recalls[1] > recalls[2]


def test_collapsed_samples_have_low_recall_and_coverage_but_can_keep_precision():
    real = _gaussian(3000, 8, 0)
    collapsed = np.repeat(real[:1], 3000, axis=0) + 1e-3 * _gaussian(3000, 8, 2)
    precision, recall = metrics.precision_recall(real, collapsed)
    _, coverage = metrics.density_coverage(real, collapsed)
    assert precision > 0.9 and recall < 0.01 and coverage < 0.01


def test_class_coverage_counts_modes():
    logits = np.eye(10)[[0, 0, 1, 1, 2, 2, 3, 3, 4, 4] * 10]
    coverage = metrics.class_coverage(logits, 10)
    assert coverage["classes_hit"] == 5
    assert coverage["class_entropy"] == pytest.approx(np.log(5))
    collapsed = metrics.class_coverage(np.eye(10)[[7] * 100], 10)
    assert collapsed["classes_hit"] == 1 and collapsed["class_entropy"] == 0.0


def test_registry_runs_named_metrics_with_timing_and_rejects_unknown_names():
    rng = np.random.default_rng(0)
    ctx = metrics.MetricContext(
        real=rng.standard_normal((300, 4)),
        fake=rng.standard_normal((300, 4)),
        fake_logits=rng.standard_normal((300, 10)),
        num_classes=10,
        train=rng.standard_normal((300, 4)),
    )
    results = metrics.compute(metrics.DEFAULT_METRICS, ctx)
    values = {k: v for r in results for k, v in r.values.items()}
    assert {
        "fid",
        "fid_floor",
        "kid",
        "kid_std",
        "precision",
        "recall",
        "density",
        "coverage",
        "class_entropy",
        "classes_hit",
        "classifier_score",
    } <= set(values)
    assert all(r.seconds >= 0 for r in results)
    with pytest.raises(ValueError, match="valid: fid"):
        metrics.compute(["inception_v9"], ctx)


def _onnx_file(path, names, values):
    import onnx
    from onnx import helper, numpy_helper

    weights = [numpy_helper.from_array(np.asarray(v, np.float32), n) for n, v in zip(names, values)]
    nodes = [helper.make_node("Add", ["x", names[0]], ["y0"]), helper.make_node("Mul", ["y0", names[1]], ["y"])]
    graph = helper.make_graph(
        nodes,
        "g",
        [helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, [2])],
        [helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, [2])],
        weights,
    )
    onnx.save(helper.make_model(graph), str(path))
    return path


def test_extractor_identity_follows_the_weights_not_the_node_names(tmp_path):
    from contract.files import sha256_file
    from pipeline.features import weights_digest

    first = _onnx_file(tmp_path / "a.onnx", ["bias_1", "scale_1"], [[1, 2], [3, 4]])
    renamed = _onnx_file(tmp_path / "b.onnx", ["bias_7", "scale_7"], [[1, 2], [3, 4]])
    changed = _onnx_file(tmp_path / "c.onnx", ["bias_1", "scale_1"], [[1, 2], [3, 4.001]])
    assert sha256_file(first) != sha256_file(renamed)
    assert weights_digest(first) == weights_digest(renamed) != weights_digest(changed)
