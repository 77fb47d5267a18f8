"""The Bayesian-bootstrap IPW and doubly robust ATTs (``bayes_pool.bayes.propensity``) on
SYNTHETIC worlds with a known ATT.

The worlds have a heterogeneous effect, 2 + 1.5 x1, and x1 raises the propensity, so the ATT
(about 2.5) differs from the ATC (about 1.7): weights that swapped treated and controls would
estimate the wrong one. The population ATT is computed once from 2,000,000 draws of the
covariates (Monte Carlo SE under 0.003, against posterior SDs near 0.15).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm
from scipy import stats
from scipy.special import expit

from bayes_pool.bayes import propensity as bp
from bayes_pool.freq import psm as freq_psm


def _covariates(rng, n):
    return rng.normal(size=n), rng.normal(size=n), rng.binomial(1, 0.4, n)


def _score(x1, x2, b):
    return expit(-0.8 + 0.8 * x1 - 0.5 * x2 + 0.5 * b)


def world(seed: int, n: int = 2000) -> pd.DataFrame:
    """Confounded assignment (logit in x1, x2, b), outcome linear, effect 2 + 1.5 x1."""
    rng = np.random.default_rng(seed)
    x1, x2, b = _covariates(rng, n)
    t = rng.binomial(1, _score(x1, x2, b))
    y = 1 + x1 + 0.8 * x2 - 0.5 * b + (2 + 1.5 * x1) * t + rng.normal(0, 2, n)
    return pd.DataFrame({"t": t, "y": y, "x1": x1, "x2": x2, "b": b})


def _population_effects() -> tuple[float, float]:
    """(ATT, ATC) of the world's population, by Monte Carlo over the covariates."""
    x1, x2, b = _covariates(np.random.default_rng(12345), 2_000_000)
    e = _score(x1, x2, b)
    return 2 + 1.5 * np.average(x1, weights=e), 2 + 1.5 * np.average(x1, weights=1 - e)


ATT, ATC = _population_effects()


def _prepared(frame):
    return freq_psm.PSMDesign("t", "y", ("x1", "x2", "b")).prepare(frame)


def test_the_world_separates_att_from_atc():
    assert ATT - ATC > 0.6, (ATT, ATC)


def test_unit_weights_of_one_give_the_plain_ipw_and_dr_atts():
    """With every g_i = 1 a replicate is the plain estimator: statsmodels Logit score, Hajek
    ATT weights e/(1-e) on the controls; DR with the controls' OLS fit of Y(0)."""
    prep = _prepared(world(3))
    X = sm.add_constant(prep.exog).to_numpy(dtype=float)
    t, y = prep.t.astype(bool), prep.y
    e = sm.Logit(prep.t, X).fit(disp=0).predict(X)
    odds = e / (1 - e)
    ipw = y[t].mean() - np.sum(odds[~t] * y[~t]) / odds[~t].sum()
    r = y - X @ sm.OLS(y[~t], X[~t]).fit().params
    dr = r[t].mean() - np.sum(odds[~t] * r[~t]) / odds[~t].sum()
    got = bp.weighted_atts(X, t, y, np.ones(len(y)))
    np.testing.assert_allclose(got, (ipw, dr), rtol=1e-6)


def test_bootstrap_draws_recover_the_att_not_the_atc():
    """One world (seed 1, fixed in advance), 200 replicates: both posterior means within 3
    posterior SDs of the ATT and more than 3 SDs from the ATC. A recovery check, not a
    coverage claim (that is the slow test below)."""
    draws = bp.bootstrap_draws(_prepared(world(1)), replicates=200, chains=4, seed=7)
    for name, d in draws.items():
        assert d.shape == (4, 50)
        mean, sd = d.mean(), d.std(ddof=1)
        assert abs(mean - ATT) < 3 * sd, (name, mean, sd, ATT)
        assert abs(mean - ATC) > 3 * sd, (name, mean, sd, ATC)


SEEDS = range(101, 141)  # 40 worlds, fixed before the first run


@pytest.mark.slow
def test_bootstrap_intervals_cover_the_true_att():
    """Issue 14: over 40 worlds the 95% equal-tailed interval of 400 replicates covers the
    population ATT in >= 90% of them, and the exact binomial 95% interval of the coverage
    contains 0.95 (both IPW and DR). Measured when written: 38 of 40 for each (exact CI
    83-99%), mean interval width 0.48 (IPW) and 0.47 (DR); 570 s on the shared 2-core
    machine."""
    covered = {"att_ipw": 0, "att_dr": 0}
    for seed in SEEDS:
        draws = bp.bootstrap_draws(_prepared(world(seed)), replicates=400, chains=4,
                                   seed=seed)
        for name, d in draws.items():
            lo, hi = np.quantile(d, [0.025, 0.975])
            covered[name] += int(lo <= ATT <= hi)
    n = len(SEEDS)
    for name, k in covered.items():
        ci = stats.binomtest(k, n, 0.95).proportion_ci(0.95, method="exact")
        assert k >= 0.9 * n, (name, k, n)
        assert ci.low <= 0.95 <= ci.high, (name, k, n, ci)
