"""Sample-quality metrics in a feature space, as a registry (one function per metric).

Each metric is ``fn(ctx: MetricContext) -> dict[str, float]``, registered with
``@register_metric``; ``compute(names, ctx)`` runs the named ones and returns uniform
``MetricResult``s, each with its own timing (StyleGAN2-ADA's metric_main, in miniature).
The pure functions underneath (``frechet_distance``, ``kid``, ``precision_recall``,
``density_coverage``, …) take feature arrays and are tested against known answers.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

METRICS: dict[str, Callable] = {}


def register_metric(fn: Callable) -> Callable:
    """Add ``fn`` to the registry under its function name."""
    METRICS[fn.__name__] = fn
    return fn


@dataclass
class MetricContext:
    """What the metrics read. Features are (n, d) float arrays from the same extractor."""

    real: np.ndarray  # test-split features
    fake: np.ndarray  # generated-sample features
    fake_logits: np.ndarray  # classifier logits of the generated samples
    num_classes: int
    train: np.ndarray | None = None  # training-subset features (for the real-data floor)
    seed: int = 0
    floor: tuple[np.ndarray, np.ndarray] | None = None  # two disjoint real sets for the floor, instead of (train, real)
    cache: dict = field(default_factory=dict)  # shared work (e.g. nearest-neighbour radii)


@dataclass
class MetricResult:
    name: str
    values: dict[str, float]
    seconds: float


def compute(names, ctx: MetricContext) -> list[MetricResult]:
    """Run the named metrics; raises ValueError listing the valid names for an unknown one."""
    unknown = [n for n in names if n not in METRICS]
    if unknown:
        raise ValueError(f"unknown metric(s) {', '.join(unknown)}; valid: {', '.join(METRICS)}")
    results = []
    for name in names:
        started = time.perf_counter()
        values = METRICS[name](ctx)
        results.append(MetricResult(name, {k: float(v) for k, v in values.items()}, time.perf_counter() - started))
    return results


# ---- Fréchet distance ------------------------------------------------------------------------
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


def fid_between(features_a: np.ndarray, features_b: np.ndarray) -> float:
    """Fréchet distance between two sets of features."""
    return frechet_distance(*feature_statistics(features_a), *feature_statistics(features_b))


# ---- Kernel Inception Distance (Bińkowski et al. 2018) ------------------------------------------
def kid(real: np.ndarray, fake: np.ndarray, subsets: int = 100, subset_size: int = 1000, seed: int = 0):
    """Unbiased MMD^2 with the cubic polynomial kernel k(x, y) = (x.y / d + 1)^3.

    Returns:
        (mean, standard deviation) over ``subsets`` random subsets of ``subset_size`` each.
    """
    real, fake = np.asarray(real, np.float64), np.asarray(fake, np.float64)
    m = min(subset_size, len(real), len(fake))
    if m < 2:
        raise ValueError("KID needs at least 2 samples in each set")
    d = real.shape[1]
    rng = np.random.default_rng(seed)
    estimates = np.empty(subsets)
    for i in range(subsets):
        x = real[rng.choice(len(real), m, replace=False)]
        y = fake[rng.choice(len(fake), m, replace=False)]
        kxx, kyy, kxy = ((x @ x.T) / d + 1) ** 3, ((y @ y.T) / d + 1) ** 3, ((x @ y.T) / d + 1) ** 3
        off_diagonal = (kxx.sum() - np.trace(kxx) + kyy.sum() - np.trace(kyy)) / (m * (m - 1))
        estimates[i] = off_diagonal - 2 * kxy.mean()
    return float(estimates.mean()), float(estimates.std())


# ---- k-nearest-neighbour manifolds ----------------------------------------------------------------
def squared_distances(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    a, b = np.asarray(a, np.float32), np.asarray(b, np.float32)
    return np.maximum((a * a).sum(1)[:, None] + (b * b).sum(1)[None, :] - 2.0 * (a @ b.T), 0.0)


def knn_radii(features: np.ndarray, k: int, chunk: int = 2000) -> np.ndarray:
    """Squared distance from each point to its k-th nearest neighbour in the same set (self excluded)."""
    radii = np.empty(len(features), np.float32)
    for start in range(0, len(features), chunk):
        distances = squared_distances(features[start : start + chunk], features)
        radii[start : start + chunk] = np.partition(distances, k, axis=1)[:, k]  # column 0 is the point itself
    return radii


def _inside_counts(points: np.ndarray, centers: np.ndarray, radii: np.ndarray, chunk: int = 2000):
    """For each point: how many balls B(center, radius) contain it; for each center: whether any point does."""
    counts = np.zeros(len(points), np.int64)
    covered = np.zeros(len(centers), bool)
    for start in range(0, len(points), chunk):
        inside = squared_distances(points[start : start + chunk], centers) <= radii[None, :]
        counts[start : start + chunk] = inside.sum(1)
        covered |= inside.any(0)
    return counts, covered


def precision_recall(real: np.ndarray, fake: np.ndarray, k: int = 3) -> tuple[float, float]:
    """Improved precision and recall (Kynkäänniemi et al. 2019).

    precision: share of fakes inside the real manifold (union of k-NN balls of real points);
    recall: share of real points inside the fake manifold.
    """
    fake_in_real, _ = _inside_counts(fake, real, knn_radii(real, k))
    real_in_fake, _ = _inside_counts(real, fake, knn_radii(fake, k))
    return float((fake_in_real > 0).mean()), float((real_in_fake > 0).mean())


def density_coverage(real: np.ndarray, fake: np.ndarray, k: int = 5) -> tuple[float, float]:
    """Density and coverage (Naeem et al. 2020).

    density: mean number of real k-NN balls containing each fake, divided by k (about 1 when
    the distributions match); coverage: share of real balls that contain at least one fake
    (about 1 - 2^-k, i.e. 0.97 for k = 5, when they match).
    """
    counts, covered = _inside_counts(fake, real, knn_radii(real, k))
    return float(counts.mean() / k), float(covered.mean())


# ---- classifier-based -------------------------------------------------------------------------
def class_coverage(logits: np.ndarray, num_classes: int) -> dict:
    """Histogram of predicted classes, its entropy (nats) and how many classes are hit (>= 1%)."""
    predicted = np.argmax(logits, axis=-1)
    counts = np.bincount(predicted, minlength=num_classes)
    share = counts / max(1, counts.sum())
    nonzero = share[share > 0]
    return {
        "histogram": counts.tolist(),
        "class_entropy": float(-(nonzero * np.log(nonzero)).sum()) + 0.0,
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


# ---- the registry -----------------------------------------------------------------------------
@register_metric
def fid(ctx: MetricContext) -> dict:
    return {"fid": fid_between(ctx.fake, ctx.real)}


@register_metric
def fid_floor(ctx: MetricContext) -> dict:
    """The same FID between two sets of real images: what a perfect generator scores. Real training
    images against the test set, or the two real sets of ``ctx.floor`` (an image folder's halves)."""
    if ctx.floor is not None:
        return {"fid_floor": fid_between(*ctx.floor)}
    if ctx.train is None:
        raise ValueError("fid_floor needs training-subset features")
    return {"fid_floor": fid_between(ctx.train, ctx.real)}


@register_metric
def kid_metric(ctx: MetricContext) -> dict:
    mean, std = kid(ctx.real, ctx.fake, seed=ctx.seed)
    return {"kid": mean, "kid_std": std}


@register_metric
def pr(ctx: MetricContext) -> dict:
    precision, recall = precision_recall(ctx.real, ctx.fake, k=3)
    return {"precision": precision, "recall": recall}


@register_metric
def dc(ctx: MetricContext) -> dict:
    density, coverage = density_coverage(ctx.real, ctx.fake, k=5)
    return {"density": density, "coverage": coverage}


@register_metric
def classes(ctx: MetricContext) -> dict:
    coverage = class_coverage(ctx.fake_logits, ctx.num_classes)
    return {
        "class_entropy": coverage["class_entropy"],
        "classes_hit": coverage["classes_hit"],
        "classifier_score": classifier_score(ctx.fake_logits),
    }


DEFAULT_METRICS = ("fid", "fid_floor", "kid_metric", "pr", "dc", "classes")

# Values where more is better; every other value (fid, kid, nats, ...) is better when lower.
HIGHER_IS_BETTER = {"precision", "recall", "density", "coverage", "class_entropy", "classes_hit", "classifier_score"}
