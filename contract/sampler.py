"""The portable sampler: seeded random numbers that Python (numpy) and JavaScript (the browser
playground, ``serving/web/sampler.js``) draw bit for bit alike, so one seed is one picture
everywhere.

Version ``SAMPLER`` ("lf-hash32-v1"). Every draw is a pure function of (seed, stream, index):

    mix(x)        = lowbias32 (C. Wellons' 32-bit integer hash):
                    x ^= x >> 16; x *= 0x7feb352d; x ^= x >> 15; x *= 0x846ca68b; x ^= x >> 16
                    (uint32 arithmetic, products wrap modulo 2**32)
    key(s, t)     = mix(mix(s) ^ mix(t + 0x9e3779b9))      s: the seed, t: the stream (uint32)
    bits(s, t, i) = mix(mix(i ^ key) + key)                 i: the draw's index (uint32)
    uniform(i)    = (bits + 0.5) / 2**32                    in (0, 1), a float64
    normal(i)     = sqrt(-2 ln uniform(2i)) * cos(2 pi uniform(2i + 1))   (Box-Muller, float64)

and a tensor of draws of shape (n, ...) takes indices 0, 1, 2, ... in row-major order, then
float32. JavaScript computes the same with ``Math.imul`` and ``>>>`` on 32-bit integers and
float64 ``Math.log``/``Math.cos``; those agree with numpy's to within an ulp of a float64, which
the float32 rounding absorbs (a differing float32 is about one draw in 10**8, and moves a pixel by
far less than one 8-bit level).

Seeds and streams are integers in [0, 2**32); larger seeds are reduced modulo 2**32.

Streams, so that adding an input never changes another's numbers: the latents a seed stands for
(a generator's first latent input) draw from stream 0; the input at position p of a signature
from stream p + 1; the truncation trick's redraws from ``TRUNCATION``. The model card names the
sampler its export was written for (``"sampler": "lf-hash32-v1"``); a card without the field
predates it, and its seeds keep numpy's ``default_rng`` (``LEGACY``), as before.
"""

from __future__ import annotations

import math

import numpy as np

SAMPLER = "lf-hash32-v1"
LEGACY = "numpy-default-rng"  # what a card without a "sampler" field was written for
TRUNCATION = 0x7FFF_FFFF  # the stream of the truncation trick's redraws
GOLDEN = 0x9E3779B9
_M1, _M2 = np.uint32(0x7FEB352D), np.uint32(0x846CA68B)


def mix(x) -> np.ndarray:
    """lowbias32 of uint32 values (elementwise)."""
    x = np.asarray(x, dtype=np.uint32).copy()
    with np.errstate(over="ignore"):
        x ^= x >> np.uint32(16)
        x *= _M1
        x ^= x >> np.uint32(15)
        x *= _M2
        x ^= x >> np.uint32(16)
    return x


def _key(seed: int, stream: int) -> np.uint32:
    with np.errstate(over="ignore"):
        stream_part = mix(np.uint32(stream % 2**32) + np.uint32(GOLDEN))
    return np.uint32(mix(mix(np.uint32(seed % 2**32)) ^ stream_part))


def bits(seed: int, stream: int, count: int, start: int = 0) -> np.ndarray:
    """``count`` uint32 draws of (seed, stream) at indices start, start + 1, ..."""
    key = _key(seed, stream)
    index = (np.arange(start, start + count, dtype=np.uint64) % 2**32).astype(np.uint32)
    with np.errstate(over="ignore"):
        return mix(mix(index ^ key) + key)


def uniform(seed: int, stream: int, shape, low: float = 0.0, high: float = 1.0) -> np.ndarray:
    """float32 uniform draws in (low, high) of ``shape``."""
    count = math.prod(shape)
    unit = (bits(seed, stream, count).astype(np.float64) + 0.5) / 2.0**32
    return (low + (high - low) * unit).reshape(shape).astype(np.float32)


def normal(seed: int, stream: int, shape, start: int = 0) -> np.ndarray:
    """float32 standard normal draws of ``shape`` (Box-Muller on pairs of uniforms); ``start``:
    the index of the first normal draw (draw k uses uniforms 2k and 2k + 1)."""
    count = math.prod(shape)
    unit = (bits(seed, stream, 2 * count, 2 * start).astype(np.float64) + 0.5) / 2.0**32
    radius = np.sqrt(-2.0 * np.log(unit[0::2]))
    return (radius * np.cos(2.0 * np.pi * unit[1::2])).reshape(shape).astype(np.float32)


def of_card(card: dict) -> str:
    """The sampler a model card's seeds draw with: its ``sampler`` field, or ``LEGACY``."""
    name = card.get("sampler") or LEGACY
    if name not in (SAMPLER, LEGACY):
        raise ValueError(f"the model card's sampler '{name}' is unknown to this latentforge; upgrade it")
    return name


def _stream(position: int | None) -> int:
    # the latents a seed stands for: stream 0; the input at position p: stream p + 1
    return 0 if position is None else position + 1


def _legacy(seed: int, position: int | None) -> np.random.Generator:
    # before the portable sampler: default_rng(seed), and default_rng([seed, p + 1]) for position p
    return np.random.default_rng(seed if position is None else [seed, _stream(position)])


def draw_normal(sampler: str | None, seed: int, position: int | None, shape) -> np.ndarray:
    """float32 standard normal draws for ``seed``: the latents a seed stands for (``position``
    None) or the default of the input at ``position``. ``sampler`` None or ``LEGACY``: numpy's
    ``default_rng(seed)`` and ``default_rng([seed, position + 1])``, as latentforge drew before
    the portable sampler."""
    if sampler == SAMPLER:
        return normal(seed, _stream(position), shape)
    return _legacy(seed, position).standard_normal(shape).astype(np.float32)


def draw_uniform(sampler: str | None, seed: int, position: int | None, shape, low: float, high: float) -> np.ndarray:
    """float32 uniform draws in (low, high), the streams as ``draw_normal``'s."""
    if sampler == SAMPLER:
        return uniform(seed, _stream(position), shape, low, high)
    return _legacy(seed, position).uniform(low, high, shape).astype(np.float32)


def truncate(sampler: str | None, z: np.ndarray, threshold: float, seed: int) -> np.ndarray:
    """The truncation trick's redraws: every entry of ``z`` beyond ``threshold`` in magnitude is
    drawn again until it falls inside. Portable sampler: in round r, entry j (row-major) takes
    normal draw r * z.size + j of stream ``TRUNCATION``. Legacy: ``default_rng([seed, 1])``'s next
    draws, in order, for the entries still outside."""
    z = np.array(z, dtype=np.float32)
    outside = np.abs(z) > threshold
    rng = np.random.default_rng([seed, 1])
    for round_ in range(10_000):  # P(|N(0,1)| <= 0.05) is 4%: a few hundred rounds at worst
        if not outside.any():
            break
        if sampler == SAMPLER:
            z[outside] = normal(seed, TRUNCATION, z.shape, start=round_ * z.size)[outside]
        else:
            z[outside] = rng.standard_normal(int(outside.sum())).astype(np.float32)
        outside = np.abs(z) > threshold
    return np.clip(z, -threshold, threshold)
