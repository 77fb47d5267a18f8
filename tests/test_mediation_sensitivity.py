"""ACME as a function of rho for a linear/linear mediation (Imai, Keele & Yamamoto 2010, sec. 4),
issue 17 part 2: the closed form against ordinary OLS fits and against a simulated world with
correlated errors. Seconds, no fitting beyond least squares.
"""

from __future__ import annotations

import numpy as np
import pytest

from bayes_pool import robustness
from bayes_pool.errors import InputError
from bayes_pool.estimands import mediation_sensitivity as ms

A_TM, B_MY, C_TY = 0.6, 0.5, 0.3
"""True treatment -> mediator, mediator -> outcome and direct effects; ACME = 0.3."""


def _world(rng, n: int, rho: float):
    """Randomised T, one covariate, mediator and outcome errors with correlation ``rho``."""
    t = rng.integers(0, 2, n).astype(float)
    x = rng.normal(size=n)
    e = rng.multivariate_normal([0, 0], [[1.0, rho], [rho, 1.0]], size=n)
    m = 0.2 + A_TM * t + 0.4 * x + e[:, 0]
    y = -0.1 + C_TY * t + B_MY * m - 0.3 * x + e[:, 1]
    return t, x, m, y


def _ols(y, *cols):
    X = np.column_stack([np.ones_like(y), *cols])
    coef, *_ = np.linalg.lstsq(X, y, rcond=None)
    resid = y - X @ coef
    return coef, resid


def _fits(t, x, m, y):
    """The mediator and outcome fits the closed form takes (RMS residuals: one scale)."""
    (_, b2, _), em = _ols(m, t, x)
    (_, b3, g, _), ey = _ols(y, t, m, x)
    return b2, b3, g, np.sqrt(np.mean(em ** 2)), np.sqrt(np.mean(ey ** 2)), em


def test_acme_at_rho_zero_is_the_product_of_coefficients():
    """ACME(0) = b2 * g of the two OLS fits, to 1e-10 (an algebraic identity, rounding only)."""
    t, x, m, y = _world(np.random.default_rng(1), 500, 0.0)
    b2, b3, g, sm, sy, _ = _fits(t, x, m, y)
    curve = robustness.mediation_rho_curve(b2, g, sm, sy, b3=b3, rhos=[0.0, 0.3])
    assert curve.loc[0, "acme"] == pytest.approx(b2 * g, abs=1e-10)
    assert curve.loc[0, "ade"] == pytest.approx(b3, abs=1e-10)
    # ACME + ADE is the total effect at every rho
    (_, b1, _), _ = _ols(y, t, x)
    np.testing.assert_allclose(curve["acme"] + curve["ade"], b1, atol=1e-10)


def test_rho_at_zero_is_the_correlation_of_total_and_mediator_residuals():
    """IKY (2010): ACME(rho) = 0 exactly at rho = corr(e1, e2), the residuals of the
    total-effect (Y on T, X) and mediator (M on T, X) regressions; to 1e-6, and the curve does
    vanish there."""
    t, x, m, y = _world(np.random.default_rng(2), 800, 0.0)
    b2, b3, g, sm, sy, em = _fits(t, x, m, y)
    _, e1 = _ols(y, t, x)
    rho0 = robustness.mediation_rho_curve(b2, g, sm, sy, b3=b3).attrs["rho_at_zero"]
    assert rho0 == pytest.approx(np.corrcoef(e1, em)[0, 1], abs=1e-6)
    assert float(ms.acme_at(rho0, b2, g, sm, sy)) == pytest.approx(0.0, abs=1e-12)
    assert float(ms.acme_at(rho0 - 0.05, b2, g, sm, sy)) * b2 * g > 0  # same sign below it


@pytest.mark.parametrize("rho", [-0.4, 0.35])
def test_acme_at_the_true_rho_recovers_the_simulated_world(rho):
    """Brute force: in a world whose mediator and outcome errors correlate at ``rho`` the naive
    ACME is biased, and the closed form evaluated at that rho gives back the true 0.3. 20 worlds
    of n = 20,000; tolerance 4 Monte Carlo standard errors of their mean."""
    rng = np.random.default_rng(17)
    naive, adjusted = [], []
    for _ in range(20):
        b2, _, g, sm, sy, _ = _fits(*_world(rng, 20_000, rho))
        naive.append(b2 * g)
        adjusted.append(float(ms.acme_at(rho, b2, g, sm, sy)))
    mc_se = np.std(adjusted, ddof=1) / np.sqrt(len(adjusted))
    assert abs(np.mean(adjusted) - A_TM * B_MY) < 4 * mc_se
    assert abs(np.mean(naive) - A_TM * B_MY) > 20 * mc_se  # the naive one is off


def test_rho_outside_the_open_interval_is_refused():
    with pytest.raises(InputError, match="rho"):
        robustness.mediation_rho_curve(0.5, 0.5, 1.0, 1.0, rhos=[1.0])
    with pytest.raises(InputError, match="sigma_m"):
        ms.acme_at(0.1, 0.5, 0.5, 0.0, 1.0)
