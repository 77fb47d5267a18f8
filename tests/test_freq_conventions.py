"""Small-sample conventions of the clustered SEs, checked against the tools users compare with.

Linear models follow fixest / Stata ``reghdfe`` (CRV1, fixed effects nested in the clusters not
counted in K, t(G - 1) inference), checked against pyfixest (a test-only dependency); logits
follow Stata's ``logit, vce(cluster)`` (G/(G - 1) only), checked against statsmodels' sandwich
without its correction.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy.special import expit
from statsmodels.stats.sandwich_covariance import cov_cluster

from bayes_pool.design import DiDDesign
from bayes_pool.freq.did import fit_did

LINEAR = DiDDesign(outcome="y", treatment="d", unit="unit", time="period", covariates=("x",),
                   family="gaussian")


def short_panel(seed: int, *, units: int = 200, periods: int = 4, family: str = "gaussian"):
    """A balanced panel of many units and few periods (synthetic), staggered adoption, with
    unit levels and unit x period shocks, the shape where counting the unit dummies in K
    matters most."""
    rng = np.random.default_rng(seed)
    unit = np.repeat(np.arange(units), periods)
    period = np.tile(np.arange(1, periods + 1), units)
    adopt = rng.choice([2, 3, 99], size=units, p=[0.2, 0.2, 0.6])
    d = (period >= adopt[unit]).astype(int)
    level = rng.normal(0, 1, units)
    x = 0.5 * level[unit] + rng.normal(0, 1, len(unit))
    eta = level[unit] + 0.1 * period + 0.3 * x + 0.4 * d + rng.normal(0, 0.3, len(unit))
    y = (eta + rng.normal(0, 1, len(unit)) if family == "gaussian"
         else rng.binomial(1, expit(eta - 0.5)))
    return pd.DataFrame({"unit": [f"u{u:03d}" for u in unit], "period": period, "d": d,
                         "x": x, "y": y})


def test_linear_clustered_se_equals_pyfixest_crv1():
    pf = pytest.importorskip("pyfixest")
    frame = short_panel(1)
    rows = fit_did(LINEAR.prepare(frame)).tidy(study="t", table="t", column="c")
    ref = pf.feols("y ~ d + x | unit + period", data=frame, vcov={"CRV1": "unit"}).tidy()
    for term in ("d", "x"):
        ours = rows[(rows["term"] == term) & (rows["quantity"] == "beta")].iloc[0]
        theirs = ref.loc[term]
        assert ours["estimate"] == pytest.approx(theirs["Estimate"], abs=1e-8)
        assert ours["se"] == pytest.approx(theirs["Std. Error"], abs=1e-6)
        assert ours["p_value"] == pytest.approx(theirs["Pr(>|t|)"], abs=1e-6)
        assert ours["ci_low"] == pytest.approx(theirs["2.5%"], abs=1e-6)
        assert ours["ci_high"] == pytest.approx(theirs["97.5%"], abs=1e-6)
        assert "CRV1" in ours["note"] and "t(G-1)" in ours["note"]


def test_counting_unit_dummies_in_k_would_inflate_the_se():
    """The issue's symptom: with 200 units x 4 periods statsmodels' default factor (every dummy
    in K) gives an SE over 10% larger than CRV1; ours must not."""
    import statsmodels.formula.api as smf

    frame = short_panel(1)
    ours = fit_did(LINEAR.prepare(frame)).result
    default = smf.ols("y ~ d + x + C(unit) + C(period)", data=frame).fit(
        cov_type="cluster", cov_kwds={"groups": pd.factorize(frame["unit"])[0]})
    assert default.bse["d"] / ours.bse["Q('d')"] > 1.10


def test_logit_clustered_se_follows_stata_logit():
    frame = short_panel(2, units=60, periods=5, family="bernoulli")
    design = DiDDesign(outcome="y", treatment="d", unit="unit", time="period",
                       covariates=("x",), family="bernoulli")
    fit = fit_did(design.prepare(frame))
    r = fit.result
    groups = pd.factorize(fit.prepared.frame.loc[
        ~fit.prepared.frame["unit"].isin(fit.dropped_units), "unit"])[0]
    g = len(np.unique(groups))
    reference = cov_cluster(r, groups, use_correction=False) * g / (g - 1)
    se = np.sqrt(np.diag(reference))
    names = list(r.model.exog_names)
    for term in ("d", "x"):
        assert r.bse[f"Q('{term}')"] == pytest.approx(se[names.index(f"Q('{term}')")], rel=1e-10)
    rows = fit.tidy(study="t", table="t", column="c")
    assert rows["note"].str.contains("Stata logit vce\\(cluster\\): G/\\(G-1\\) only").all()
    beta = rows[(rows["term"] == "d") & (rows["quantity"] == "beta")].iloc[0]
    assert beta["ci_high"] - beta["estimate"] == pytest.approx(1.959964 * beta["se"], rel=1e-6)
