r"""Natural indirect, direct and total effects by g-computation (Imai, Keele & Tingley 2010).

Pure numpy, shared by the frequentist plug-in (:mod:`bayes_pool.freq.mediation`, one "draw")
and the posterior (:mod:`bayes_pool.bayes.mediation`, one value per draw), so both backends
report the same estimand on the outcome's scale. The formula is written out in
:mod:`bayes_pool.freq.mediation`.

References
----------
Imai, K., Keele, L. & Tingley, D. (2010). A general approach to causal mediation analysis.
*Psychological Methods* 15(4), 309-334. doi:10.1037/a0020761
"""

from __future__ import annotations

import numpy as np
from scipy import special

EFFECTS: tuple[str, ...] = ("indirect", "direct", "total", "proportion_mediated")
"""Quantities of the ``mediation`` table, in order."""
QUADRATURE_NODES = 32


def inverse_link(family: str):
    """Inverse link of the outcome step: expit for a logit, identity for a linear model."""
    return special.expit if family == "bernoulli" else (lambda x: x)


def natural_effects(base, mu0, a, b, d, sigma, *, family: str = "bernoulli",
                    nodes: int = QUADRATURE_NODES) -> dict[str, np.ndarray]:
    r"""Natural indirect, direct and total effects and proportion mediated, per draw.

    Pure numpy, shared by the frequentist plug-in (one "draw") and the posterior (one value
    per draw).

    Parameters
    ----------
    base : array (S, n)
        Outcome linear predictor without the treatment and mediator terms, per draw and row.
    mu0 : array (S, n)
        Mediator mean under no treatment; under treatment it is ``mu0 + a``.
    a, b, d, sigma : array (S,)
        Treatment -> mediator, mediator -> outcome, direct treatment -> outcome coefficients
        and the mediator's residual SD.
    family : {"bernoulli", "gaussian"}
        Inverse link applied (expit or identity).
    nodes : int
        Gauss-Hermite nodes integrating the mediator's normal residual out.

    Returns
    -------
    dict
        ``indirect`` (NIE: :math:`\bar Y(1,M(1)) - \bar Y(1,M(0))`), ``direct`` (pure NDE:
        :math:`\bar Y(1,M(0)) - \bar Y(0,M(0))`), ``total`` and ``proportion_mediated``,
        arrays of shape (S,).
    """
    base, mu0 = np.atleast_2d(base), np.atleast_2d(mu0)
    a, b, d, sigma = (np.atleast_1d(np.asarray(v, dtype=float)) for v in (a, b, d, sigma))
    x, w = np.polynomial.hermite_e.hermegauss(nodes)
    w = w / w.sum()
    inv = inverse_link(family)
    n_draws, n_rows = base.shape
    chunk = max(1, int(2e7 // (n_rows * nodes)))
    ybar = {key: np.empty(n_draws) for key in ("11", "10", "00")}
    for start in range(0, n_draws, chunk):
        s = slice(start, start + chunk)
        eta0 = base[s] + b[s, None] * mu0[s]  # predictor at t = 0, M = mu0 (before noise)
        noise = (b[s] * sigma[s])[:, None, None] * x[None, None, :]
        for t, tm in ((1, 1), (1, 0), (0, 0)):
            eta = eta0 + (d[s] * t + b[s] * a[s] * tm)[:, None]
            ybar[f"{t}{tm}"][s] = (inv(eta[..., None] + noise) @ w).mean(axis=1)
    indirect = ybar["11"] - ybar["10"]
    direct = ybar["10"] - ybar["00"]
    total = indirect + direct
    with np.errstate(divide="ignore", invalid="ignore"):
        proportion = np.where(total != 0, indirect / total, np.nan)
    return {"indirect": indirect, "direct": direct, "total": total,
            "proportion_mediated": proportion}
