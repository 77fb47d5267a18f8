"""R's default normal generator, draw for draw: ``set.seed(seed); rnorm(n)`` and
``mvtnorm::rmvnorm``, so that the simulated critical values of HonestDiD (the folded-normal
quantile of its FLCI, the least-favourable critical value of its C-LF test, both drawn after
``set.seed(0)``) are reproduced exactly rather than up to Monte Carlo error.

R's Mersenne-Twister is seeded by 50 + 625 steps of the congruential generator
``seed = 69069 seed + 1`` (``RNG_Init`` in R's ``src/main/RNG.c``), and its default
``normal.kind = "Inversion"`` turns two uniforms ``u1, u2`` into one normal
``qnorm((floor(2^27 u1) + u2) / 2^27)``. ``tests/test_parallel_trends.py`` checks the first
draws of ``set.seed(0); rnorm(3)`` against R's printed values.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
from scipy.special import ndtri

_N = 624
_BIG = 134217728.0  # 2^27
_I2_32M1 = 2.328306437080797e-10  # 1 / (2^32 - 1), R's fixup of a uniform at 0 or 1


def _mersenne_state(seed: int) -> dict:
    s = seed & 0xFFFFFFFF
    for _ in range(50):
        s = (69069 * s + 1) & 0xFFFFFFFF
    key = np.empty(_N + 1, dtype=np.uint64)
    for j in range(_N + 1):
        s = (69069 * s + 1) & 0xFFFFFFFF
        key[j] = s
    # the first seed word is R's position counter (set to 624: regenerate at the first draw)
    return {"bit_generator": "MT19937", "state": {"key": key[1:].astype(np.uint32), "pos": _N}}


def uniforms(n: int, seed: int = 0) -> np.ndarray:
    """``set.seed(seed); runif(n)`` under R's default Mersenne-Twister."""
    bits = np.random.MT19937()
    bits.state = _mersenne_state(seed)
    u = bits.random_raw(n).astype(float) * 2.3283064365386963e-10
    u[u <= 0.0] = 0.5 * _I2_32M1
    u[1.0 - u <= 0.0] = 1.0 - 0.5 * _I2_32M1
    return u


@lru_cache(maxsize=4)
def _normals(n: int, seed: int) -> np.ndarray:
    u = uniforms(2 * n, seed)
    draws = ndtri((np.floor(_BIG * u[0::2]) + u[1::2]) / _BIG)
    draws.setflags(write=False)
    return draws


def normals(n: int, seed: int = 0) -> np.ndarray:
    """``set.seed(seed); rnorm(n)`` (read-only array)."""
    return _normals(int(n), int(seed))


def multivariate_normals(n: int, sigma: np.ndarray, seed: int = 0) -> np.ndarray:
    """``set.seed(seed); mvtnorm::rmvnorm(n, sigma = sigma)`` (its default ``method="eigen"``:
    standard normals filled by row times the symmetric square root of ``sigma``)."""
    values, vectors = np.linalg.eigh(sigma)
    root = (vectors * np.sqrt(np.maximum(values, 0.0))) @ vectors.T
    return normals(n * len(sigma), seed).reshape(n, len(sigma)) @ root


def quantile_folded_normal(p: float, mu: float, seed: int = 0, sims: int = 10 ** 6) -> float:
    """HonestDiD's ``.qfoldednormal``: the ``p`` quantile of ``|Z + mu|`` over
    ``set.seed(seed); rnorm(sims)`` (R's default quantile type 7, as numpy's)."""
    return float(np.quantile(np.abs(normals(sims, seed) + mu), p))
