"""Image and latent helpers shared by training (sample grids), evaluation and serving: seeded
latents, interpolation and truncation, value ranges, grids and PNG bytes; numpy and Pillow only."""

from __future__ import annotations

import io
import math

import numpy as np

from contract import sampler as draws


def to_unit(images: np.ndarray, value_range: str) -> np.ndarray:
    """float images in [-1, 1] ("tanh") or [0, 1] ("unit") -> float32 in [0, 1] (not clipped)."""
    images = np.asarray(images, dtype=np.float32)
    if value_range == "tanh":
        return (images + 1.0) * 0.5
    if value_range != "unit":
        raise ValueError(f"unknown value range {value_range!r}; expected 'tanh' or 'unit'")
    return images


def blank(value_range: str) -> float:
    """The value of a black pixel in ``value_range`` (a grid's empty cell)."""
    return -1.0 if value_range == "tanh" else 0.0


def from_unit(images: np.ndarray, value_range: str) -> np.ndarray:
    """float images in [0, 1] -> float32 in the ``value_range`` ("tanh": [-1, 1]; "unit": as they are)."""
    images = np.asarray(images, dtype=np.float32)
    if value_range == "tanh":
        return images * 2.0 - 1.0
    if value_range != "unit":
        raise ValueError(f"unknown value range {value_range!r}; expected 'tanh' or 'unit'")
    return images


def to_uint8(images: np.ndarray, value_range: str) -> np.ndarray:
    """float images in [-1, 1] ("tanh") or [0, 1] ("unit") -> uint8 in [0, 255]."""
    return np.clip(np.rint(to_unit(images, value_range) * 255.0), 0, 255).astype(np.uint8)


def grid(images: np.ndarray, columns: int | None = None, padding: int = 2) -> np.ndarray:
    """(n, h, w, c) uint8 -> one (H, W, c) uint8 picture, row-major, with a dark border."""
    images = np.asarray(images)
    if images.ndim != 4:
        raise ValueError(f"expected images of shape (n, h, w, c), got {images.shape}")
    n, h, w, c = images.shape
    columns = columns or max(1, math.ceil(math.sqrt(n)))
    rows = math.ceil(n / columns)
    out = np.zeros((rows * (h + padding) + padding, columns * (w + padding) + padding, c), np.uint8)
    for i, image in enumerate(images):
        r, col = divmod(i, columns)
        top, left = padding + r * (h + padding), padding + col * (w + padding)
        out[top : top + h, left : left + w] = image
    return out


def png_bytes(picture: np.ndarray) -> bytes:
    """(H, W, 1|3) uint8 -> PNG bytes (deterministic for the same pixels)."""
    from PIL import Image

    picture = np.asarray(picture, dtype=np.uint8)
    mode_image = Image.fromarray(picture[..., 0], mode="L") if picture.shape[-1] == 1 else Image.fromarray(picture)
    buffer = io.BytesIO()
    mode_image.save(buffer, format="PNG")
    return buffer.getvalue()


def latents(seed: int, n: int, latent_dim: int, sampler: str | None = None) -> np.ndarray:
    """The latents a seed stands for: (n, latent_dim) float32, from the portable sampler
    (``contract.sampler``) or, ``sampler`` None, numpy's ``default_rng(seed)`` (what evaluation
    and cards written before the portable sampler use)."""
    return draws.draw_normal(sampler, seed, None, (n, latent_dim))


def sample(run, latent_dim: int, n: int, seed: int, value_range: str, batch_size: int = 500, labels=None):
    """n images in [0, 1] from the latents of ``seed``, clipped to [0, 1] as a picture of them is
    (a tanh or sigmoid output is already inside; an unbounded output can step out). ``run(z,
    [labels,] seed=...)`` maps a latent batch (and a conditional generator's ``labels``) to images;
    the other inputs' defaults (noise, ...) are seeded per chunk, so the same call gives the same
    images from any graph of the model (FP32, INT8)."""
    z = latents(seed, n, latent_dim)
    chunks = []
    for i in range(0, n, batch_size):
        extra = () if labels is None else (labels[i : i + batch_size],)
        chunks.append(np.asarray(run(z[i : i + batch_size], *extra, seed=seed + i)))
    return np.clip(to_unit(np.concatenate(chunks), value_range), 0.0, 1.0)


def slerp(a: np.ndarray, b: np.ndarray, t: float) -> np.ndarray:
    """Spherical interpolation between two latents (the path that stays at a typical norm)."""
    cos = np.dot(a, b) / (np.linalg.norm(a) * np.linalg.norm(b))
    omega = np.arccos(np.clip(cos, -1.0, 1.0))
    if omega < 1e-6:
        return (1 - t) * a + t * b
    return (np.sin((1 - t) * omega) * a + np.sin(t * omega) * b) / np.sin(omega)


def interpolate(a: np.ndarray, b: np.ndarray, steps: int, method: str = "slerp") -> np.ndarray:
    """(steps, latent_dim) float32 latents from a to b, ends included; method slerp or lerp."""
    if method not in ("slerp", "lerp"):
        raise ValueError(f"unknown interpolation '{method}'; use slerp or lerp")
    ts = np.linspace(0.0, 1.0, steps)
    path = [slerp(a, b, t) if method == "slerp" else (1 - t) * a + t * b for t in ts]
    return np.stack(path).astype(np.float32)


def truncate(z: np.ndarray, threshold: float, seed: int, sampler: str | None = None) -> np.ndarray:
    """The truncation trick (Brock et al. 2019): entries of z beyond ``threshold`` in magnitude are
    redrawn (seeded, ``contract.sampler.truncate``) until they fall inside, trading variety for
    typical-looking samples."""
    return draws.truncate(sampler, z, threshold, seed)
