"""Sample-quality metrics in a feature space: pure numpy/scipy functions, one per metric."""

from __future__ import annotations

import numpy as np


def feature_statistics(features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(mean (d,), covariance (d, d)) of (n, d) features, in float64."""
    features = np.asarray(features, dtype=np.float64)
    if features.ndim != 2 or features.shape[0] < 2:
        raise ValueError(f"need (n >= 2, d) features, got shape {features.shape}")
    return features.mean(axis=0), np.cov(features, rowvar=False)


def frechet_distance(mu1, sigma1, mu2, sigma2) -> float:
    """||mu1 - mu2||^2 + Tr(S1 + S2 - 2 (S1 S2)^(1/2)): the Fréchet distance of two Gaussians.

    The matrix square root's trace is computed from the eigenvalues of
    sqrt(S1) S2 sqrt(S1), which is symmetric PSD, so it stays real and stable.
    """
    mu1, mu2 = np.asarray(mu1, np.float64), np.asarray(mu2, np.float64)
    sigma1, sigma2 = np.atleast_2d(sigma1).astype(np.float64), np.atleast_2d(sigma2).astype(np.float64)
    values, vectors = np.linalg.eigh(sigma1)
    sqrt_sigma1 = (vectors * np.sqrt(np.clip(values, 0, None))) @ vectors.T
    middle = sqrt_sigma1 @ sigma2 @ sqrt_sigma1
    trace_sqrt = np.sqrt(np.clip(np.linalg.eigvalsh((middle + middle.T) / 2), 0, None)).sum()
    diff = mu1 - mu2
    return float(max(diff @ diff + np.trace(sigma1) + np.trace(sigma2) - 2.0 * trace_sqrt, 0.0))


def fid(features_a: np.ndarray, features_b: np.ndarray) -> float:
    """Fréchet distance between two sets of features."""
    return frechet_distance(*feature_statistics(features_a), *feature_statistics(features_b))


def class_coverage(logits: np.ndarray, num_classes: int) -> dict:
    """Histogram of predicted classes, its entropy (nats) and how many classes are hit (>= 1%)."""
    predicted = np.argmax(logits, axis=-1)
    counts = np.bincount(predicted, minlength=num_classes)
    share = counts / max(1, counts.sum())
    nonzero = share[share > 0]
    return {
        "histogram": counts.tolist(),
        "class_entropy": float(-(nonzero * np.log(nonzero)).sum()),
        "classes_hit": int((share >= 0.01).sum()),
    }


def classifier_score(logits: np.ndarray) -> float:
    """Inception-Score analogue: exp(E_x KL(p(y|x) || p(y))) with the dataset's own classifier."""
    logits = np.asarray(logits, np.float64)
    logits = logits - logits.max(axis=1, keepdims=True)
    p = np.exp(logits)
    p /= p.sum(axis=1, keepdims=True)
    marginal = p.mean(axis=0, keepdims=True)
    kl = (p * (np.log(p + 1e-12) - np.log(marginal + 1e-12))).sum(axis=1)
    return float(np.exp(kl.mean()))
