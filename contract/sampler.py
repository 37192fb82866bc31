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
"""

from __future__ import annotations

import math

import numpy as np

SAMPLER = "lf-hash32-v1"
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


def normal(seed: int, stream: int, shape) -> np.ndarray:
    """float32 standard normal draws of ``shape`` (Box-Muller on pairs of uniforms)."""
    count = math.prod(shape)
    unit = (bits(seed, stream, 2 * count).astype(np.float64) + 0.5) / 2.0**32
    radius = np.sqrt(-2.0 * np.log(unit[0::2]))
    return (radius * np.cos(2.0 * np.pi * unit[1::2])).reshape(shape).astype(np.float32)
