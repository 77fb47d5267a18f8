r"""Sensitivity of a mediation with a binary outcome to sequential ignorability: the probit
(latent-variable) model of Imai, Keele & Tingley (2010, sec. "binary outcome") as the R
``mediation`` package's ``medsens`` computes it (``type = "bo"``).

The structural model, with the same regressors ``Z`` (intercept or unit effects, covariates,
time effects) in both equations,

    M  = Z th2 + b2 T + e2,               e2 ~ N(0, s2^2)
    Y* = Z th3 + b3 T + gam M + e3,       e3 ~ N(0, 1),  Y = 1{Y* > 0},

with ``rho = corr(e2, e3)``. The probit of ``Y`` on ``T, M, Z`` identifies the coefficients
of ``Y*`` given ``e2``; writing ``b`` for its mediator coefficient and
``idx_i(t) = Z_i th~ + d t + b (Z_i th2 + b2 t)`` for its index with the mediator at its mean
under treatment ``t``, the structural quantities at any ``rho`` are (derivation in
``docs/robustness.md``)

    rho12 = s2 b / sqrt(1 + s2^2 b^2)                  (= corr(e1, e2), e1 = gam e2 + e3)
    lam_i(t) = idx_i(t) sqrt(1 - rho12^2)              (reduced-form probit index)
    gam(rho) = b sqrt(1 - rho^2) - rho / s2
    s1(rho)  = sqrt(gam^2 s2^2 + 2 gam rho s2 + 1)      (SD of e1)

and, because ``Y(t, M(t')) = 1{lam(t)-part + gam b2 t' / s1 + e1/s1 > 0}``, each mean
potential outcome is one normal CDF: with ``k = gam b2 / s1``

    ACME(1) = mean Phi(lam(1)) - Phi(lam(1) - k),   ACME(0) = mean Phi(lam(0) + k) - Phi(lam(0)),
    ADE(0)  = mean Phi(lam(1) - k) - Phi(lam(0)),   ADE(1)  = mean Phi(lam(1)) - Phi(lam(0) + k),

on the probability scale; ``total = mean Phi(lam(1)) - Phi(lam(0))`` does not depend on rho.
At ``rho = 0`` these are the ordinary probit-mediation (g-computation) effects; ACME vanishes
exactly at ``rho = rho12`` (``gam = 0``). ``ACME(1)`` and ``ADE(0)`` are the toolkit's
``indirect`` and ``direct`` (:mod:`bayes_pool.estimands.mediation`).

``medsens`` (R ``mediation``, ``R/medsens.R``, case 3) computes ``rho12`` as
``s2 b / (1 + sqrt(s2^2 b^2))``, which looks like a misplaced parenthesis: the error
correlation its own Step 2-2 implies is the formula above, and with theirs ACME(rho = 0) is
not the ordinary estimate (on the world of ``test_binary_acme_at_rho_zero_is_the_ordinary_
probit_estimate``: 0.084 against 0.110; the rho where the ACME vanishes 0.30 against 0.40).
This module uses the formula above; otherwise it follows ``medsens``.

References
----------
Imai, K., Keele, L. & Tingley, D. (2010). A general approach to causal mediation analysis.
*Psychological Methods* 15(4), 309-334, Appendix. doi:10.1037/a0020761
Tingley, D., Yamamoto, T., Hirose, K., Keele, L. & Imai, K. (2014). mediation: R package for
causal mediation analysis. *Journal of Statistical Software* 59(5).
"""

from __future__ import annotations

import numpy as np
from scipy.special import ndtr

from .mediation_sensitivity import check_rhos, residual_correlation


def probit_effects(rhos, index0, index1, b2, b, sigma_m) -> dict[str, np.ndarray]:
    """Natural effects on the probability scale over draws (S,) and a rho grid.

    ``index0``, ``index1``: the outcome probit's index per draw and row (S, n) with the
    treatment at 0 / 1 and the mediator at its mean under that treatment; ``b2`` the
    treatment's coefficient in the mediator model, ``b`` the mediator's in the outcome
    probit, ``sigma_m`` the mediator's residual SD (S,). ``rhos``: a grid (R,), the same for
    every draw, or one rho per draw as an (S, 1) column (a prior's draws). Returns arrays
    (S, R): ``acme`` (= ACME(1), the toolkit's indirect), ``acme_control`` (ACME(0)), ``ade``
    (= ADE(0), the toolkit's direct), ``ade_treated`` (ADE(1)) and ``total``.
    """
    r = check_rhos(rhos)
    r = r[None, :] if r.ndim == 1 else r
    idx0, idx1 = np.atleast_2d(index0), np.atleast_2d(index1)
    b2, b, s2 = (np.atleast_1d(np.asarray(v, dtype=float)) for v in (b2, b, sigma_m))
    rho12 = b * s2 / np.hypot(1.0, b * s2)
    scale = np.sqrt(1.0 - rho12 ** 2)[:, None]
    lam0, lam1 = idx0 * scale, idx1 * scale
    p0, p1 = ndtr(lam0).mean(axis=1), ndtr(lam1).mean(axis=1)
    shape = (len(b), r.shape[1])
    out = {k: np.empty(shape) for k in ("acme", "acme_control", "ade", "ade_treated")}
    for j in range(r.shape[1]):
        rho = r[:, j]
        gam = b * np.sqrt(1.0 - rho ** 2) - rho / s2
        s1 = np.sqrt(gam ** 2 * s2 ** 2 + 2.0 * gam * rho * s2 + 1.0)
        k = (gam * b2 / s1)[:, None]
        p1_m0 = ndtr(lam1 - k).mean(axis=1)  # treated, mediator as under control
        p0_m1 = ndtr(lam0 + k).mean(axis=1)
        out["acme"][:, j] = p1 - p1_m0
        out["acme_control"][:, j] = p0_m1 - p0
        out["ade"][:, j] = p1_m0 - p0
        out["ade_treated"][:, j] = p1 - p0_m1
    out["total"] = np.broadcast_to((p1 - p0)[:, None], shape)
    return out


def probit_rho_at_zero(b: float, sigma_m: float) -> float:
    """The rho at which the probit ACME vanishes: ``rho12`` (the latent outcome's residual SD
    is 1, so it is the linear model's ``rho~`` with ``sigma_y = 1``)."""
    return residual_correlation(b, sigma_m, 1.0)
