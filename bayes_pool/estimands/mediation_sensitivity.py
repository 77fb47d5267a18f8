r"""Sensitivity of a linear/linear mediation to sequential ignorability: ACME as a function of rho.

The linear structural equations (Imai, Keele & Yamamoto 2010, sec. 4; Imai, Keele & Tingley
2010, eqs. 1-3), with the same covariates in each,

    Y = a1 + b1 T + e1                (total effect)
    M = a2 + b2 T + e2                (mediator)
    Y = a3 + b3 T + g M + e3          (outcome)

identify the average causal mediation effect ``ACME = b2 g`` only if ``rho = corr(e2, e3)`` is
0. For any ``rho`` (their Theorem 2, randomised ``T``)

    ACME(rho) = (b2 s1 / s2) [rho~ - rho sqrt((1 - rho~^2) / (1 - rho^2))],

with ``s1, s2`` the SDs of ``e1, e2`` and ``rho~ = corr(e1, e2)``. ACME is 0 exactly at
``rho = rho~``. Because ``e1 = g e2 + e3`` with ``e3`` orthogonal to ``e2`` in an OLS fit,
``s1, rho~`` follow from the mediator and outcome fits alone: ``s1^2 = g^2 s2^2 + s3^2`` and
``rho~ = g s2 / s1`` -- so ``ACME(0) = b2 g`` exactly. ``s2`` and ``s3`` must be on one scale
(both root mean squared residuals, or both with the same degrees-of-freedom divisor).
The average direct effect is the total effect ``b3 + b2 g`` less ``ACME(rho)``.

References
----------
Imai, K., Keele, L. & Yamamoto, T. (2010). Identification, inference and sensitivity analysis
for causal mediation effects. *Statistical Science* 25(1), 51-71. doi:10.1214/10-STS321
Imai, K., Keele, L. & Tingley, D. (2010). A general approach to causal mediation analysis.
*Psychological Methods* 15(4), 309-334. doi:10.1037/a0020761
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import InputError


def residual_correlation(g: float, sigma_m: float, sigma_y: float) -> float:
    """``rho~ = corr(e1, e2)`` from the outcome fit's ``g`` and the two residual SDs."""
    _check_sigmas(sigma_m, sigma_y)
    return float(g * sigma_m / np.hypot(g * sigma_m, sigma_y))


def acme_at(rho, b2: float, g: float, sigma_m: float, sigma_y: float) -> np.ndarray:
    """``ACME(rho)`` in closed form; ``rho`` a number or array in (-1, 1)."""
    r = check_rhos(rho)
    rt = residual_correlation(g, sigma_m, sigma_y)
    s1 = np.hypot(g * sigma_m, sigma_y)
    return b2 * s1 / sigma_m * (rt - r * np.sqrt((1.0 - rt ** 2) / (1.0 - r ** 2)))


def linear_effects(rhos, b2, g, b3, sigma_m, sigma_y) -> dict[str, np.ndarray]:
    """ACME and ADE over draws (arrays of shape (S,)) and a grid of rho (R,): arrays (S, R).

    The same closed form as :func:`acme_at`, vectorised for the parameter draws of the
    frequentist simulation or the posterior; ``rhos`` may also be one rho per draw, an
    (S, 1) column. ``total`` is ``b3 + b2 g`` at every rho."""
    r = check_rhos(rhos)
    r = r[None, :] if r.ndim == 1 else r
    b2, g, b3, sm, sy = (np.atleast_1d(np.asarray(v, dtype=float))[:, None]
                         for v in (b2, g, b3, sigma_m, sigma_y))
    s1 = np.hypot(g * sm, sy)
    rt = g * sm / s1
    acme = b2 * s1 / sm * (rt - r * np.sqrt((1.0 - rt ** 2) / (1.0 - r ** 2)))
    total = np.broadcast_to(b3 + b2 * g, acme.shape)
    return {"acme": acme, "ade": total - acme, "total": total}


def check_rhos(rho) -> np.ndarray:
    """``rho`` as a float array, refused unless every value lies strictly inside (-1, 1)."""
    r = np.asarray(rho, dtype=float)
    if np.any(~(np.abs(r) < 1)):
        raise InputError("rho: the error correlation must lie strictly between -1 and 1")
    return r


def rho_at_zero(g: float, sigma_m: float, sigma_y: float) -> float:
    """The ``rho`` at which the ACME is zero: ``rho~``."""
    return residual_correlation(g, sigma_m, sigma_y)


def _check_sigmas(sigma_m: float, sigma_y: float) -> None:
    if not (np.isfinite(sigma_m) and np.isfinite(sigma_y)) or sigma_m <= 0 or sigma_y <= 0:
        raise InputError("sigma_m and sigma_y: the residual SDs of the mediator and outcome "
                         "regressions must be positive")


@dataclass(frozen=True)
class RhoPrior:
    """A prior on rho for the Bayesian sensitivity analysis: ``kind="uniform"`` is
    Uniform(-bound, bound); ``kind="beta"`` puts Beta(a, b) on ``(rho + 1) / 2`` (a = b
    centres it on 0; a = b = 1 is uniform on (-1, 1))."""

    kind: str = "uniform"
    bound: float = 0.5
    a: float = 2.0
    b: float = 2.0

    def __post_init__(self):
        if self.kind == "uniform":
            if not 0 < self.bound < 1:
                raise InputError(f"rho prior bound: must lie in (0, 1), got {self.bound}")
        elif self.kind == "beta":
            if not (self.a > 0 and self.b > 0):
                raise InputError(f"rho prior Beta(a, b): a and b must be positive, got "
                                 f"a={self.a}, b={self.b}")
        else:
            raise InputError(f"rho prior kind: 'uniform' or 'beta', got {self.kind!r}")

    def draw(self, rng: np.random.Generator, size: int) -> np.ndarray:
        """``size`` independent draws, kept strictly inside (-1, 1)."""
        if self.kind == "uniform":
            r = rng.uniform(-self.bound, self.bound, size)
        else:
            r = 2.0 * rng.beta(self.a, self.b, size) - 1.0
        return np.clip(r, -1 + 1e-9, 1 - 1e-9)

    def label(self) -> str:
        if self.kind == "uniform":
            return f"rho ~ Uniform(-{self.bound:g}, {self.bound:g})"
        return f"(rho + 1) / 2 ~ Beta({self.a:g}, {self.b:g})"
