"""``vcov = iid | hc1 | cluster`` of the frequentist fits, with Stata's small-sample
conventions, checked against statsmodels and pyfixest (a test-only dependency) on generated
panels (tests/test_freq_conventions.py's): linear ``iid`` as ``regress`` (pyfixest
``vcov="iid"``, statsmodels ``"nonrobust"``), linear ``hc1`` as ``regress, robust``
(pyfixest ``"hetero"``, statsmodels ``"HC1"``), clustering by a column coarser than the unit
(pyfixest ``{"CRV1": col}``); logit ``iid`` as Stata's ``logit`` (statsmodels' inverse
information) and ``hc1`` as ``logit, vce(robust)`` (the sandwich times N/(N - 1), normal).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm
import statsmodels.formula.api as smf
from scipy import stats
from statsmodels.stats.sandwich_covariance import cov_white_simple

from bayes_pool.design import DiDDesign
from bayes_pool.errors import SpecError
from bayes_pool.freq.did import fit_did
from bayes_pool.freq.ols import fit_ols
from test_freq_conventions import LINEAR, short_panel

PYFIXEST_VCOV = {"iid": "iid", "hc1": "hetero"}
STATSMODELS_VCOV = {"iid": "nonrobust", "hc1": "HC1"}


def _beta(rows: pd.DataFrame, term: str) -> pd.Series:
    return rows[(rows["term"] == term) & (rows["quantity"] == "beta")].iloc[0]


def _assert_matches(ours: pd.Series, est, se, p, lo, hi) -> None:
    assert ours["estimate"] == pytest.approx(est, abs=1e-8)
    assert ours["se"] == pytest.approx(se, abs=1e-8)
    assert ours["p_value"] == pytest.approx(p, abs=1e-8)
    assert ours["ci_low"] == pytest.approx(lo, abs=1e-8)
    assert ours["ci_high"] == pytest.approx(hi, abs=1e-8)


@pytest.mark.parametrize("vcov", ["iid", "hc1"])
def test_linear_did_iid_and_hc1_equal_pyfixest_and_statsmodels(vcov):
    pf = pytest.importorskip("pyfixest")
    frame = short_panel(1, units=30)
    rows = fit_did(LINEAR.prepare(frame), cov_type=vcov).tidy(study="t", table="t", column="c")
    ref = pf.feols("y ~ d + x | unit + period", data=frame, vcov=PYFIXEST_VCOV[vcov]).tidy()
    sm_fit = smf.ols("y ~ d + x + C(unit) + C(period)", data=frame).fit(
        cov_type=STATSMODELS_VCOV[vcov], use_t=True)
    ci = sm_fit.conf_int()
    for term in ("d", "x"):
        ours = _beta(rows, term)
        theirs = ref.loc[term]
        _assert_matches(ours, theirs["Estimate"], theirs["Std. Error"], theirs["Pr(>|t|)"],
                        theirs["2.5%"], theirs["97.5%"])
        _assert_matches(ours, sm_fit.params[term], sm_fit.bse[term], sm_fit.pvalues[term],
                        ci.loc[term, 0], ci.loc[term, 1])
        assert "t(N-K)" in ours["note"]
        assert ("as Stata regress:" if vcov == "iid" else "regress, robust: N/(N-K)") \
            in ours["note"]


def test_linear_did_clustered_by_a_coarser_column_equals_pyfixest_crv1():
    """--cluster region: 30 units in 10 regions; unit dummies (nested in the regions) are
    left out of K, period dummies are not; t(G - 1) with G = 10."""
    pf = pytest.importorskip("pyfixest")
    frame = short_panel(3, units=30)
    frame["region"] = "r" + (frame["unit"].str[1:].astype(int) % 10).astype(str)
    design = DiDDesign(outcome="y", treatment="d", unit="unit", time="period",
                       covariates=("x",), family="gaussian", cluster="region")
    fit = fit_did(design.prepare(frame))
    rows = fit.tidy(study="t", table="t", column="c")
    ref = pf.feols("y ~ d + x | unit + period", data=frame, vcov={"CRV1": "region"}).tidy()
    for term in ("d", "x"):
        theirs = ref.loc[term]
        _assert_matches(_beta(rows, term), theirs["Estimate"], theirs["Std. Error"],
                        theirs["Pr(>|t|)"], theirs["2.5%"], theirs["97.5%"])
    assert "SE clustered by region" in _beta(rows, "d")["note"]
    assert fit.result.df_resid_inference == 9


@pytest.mark.parametrize("vcov", ["iid", "hc1"])
def test_logit_did_iid_and_hc1_follow_stata_logit(vcov):
    frame = short_panel(2, units=60, periods=5, family="bernoulli")
    design = DiDDesign(outcome="y", treatment="d", unit="unit", time="period",
                       covariates=("x",), family="bernoulli")
    fit = fit_did(design.prepare(frame), cov_type=vcov)
    used = fit.prepared.frame[~fit.prepared.frame["unit"].isin(fit.dropped_units)]
    ref = smf.logit("y ~ d + x + C(unit) + C(period)", data=used).fit(disp=0, maxiter=200)
    names = list(ref.model.exog_names)
    n = ref.nobs
    cov = (ref.cov_params().to_numpy() if vcov == "iid" else
           cov_white_simple(ref, use_correction=False) * n / (n - 1))
    se = np.sqrt(np.diag(cov))
    rows = fit.tidy(study="t", table="t", column="c")
    z = stats.norm.ppf(0.975)
    for term in ("d", "x"):
        b, s = ref.params[term], se[names.index(term)]
        _assert_matches(_beta(rows, term), b, s, 2 * stats.norm.sf(abs(b / s)), b - z * s,
                        b + z * s)
    note = _beta(rows, "d")["note"]
    assert ("as Stata logit (inverse information)" if vcov == "iid" else
            "logit, vce(robust): N/(N-1)") in note and "normal" in note


def test_ols_hc1_and_cluster_equal_statsmodels_and_pyfixest():
    pf = pytest.importorskip("pyfixest")
    frame = short_panel(4, units=40)
    x = sm.add_constant(frame[["d", "x"]])
    hc1 = sm.OLS(frame["y"], x).fit(cov_type="HC1", use_t=True)
    rows = fit_ols(frame, "y", ["d", "x"], vcov="hc1").tidy(study="t", table="t", column="c")
    ci = hc1.conf_int()
    _assert_matches(_beta(rows, "d"), hc1.params["d"], hc1.bse["d"], hc1.pvalues["d"],
                    ci.loc["d", 0], ci.loc["d", 1])
    clustered = fit_ols(frame, "y", ["d", "x"], vcov="cluster", cluster="unit")
    rows = clustered.tidy(study="t", table="t", column="c")
    ref = pf.feols("y ~ d + x", data=frame, vcov={"CRV1": "unit"}).tidy().loc["d"]
    _assert_matches(_beta(rows, "d"), ref["Estimate"], ref["Std. Error"], ref["Pr(>|t|)"],
                    ref["2.5%"], ref["97.5%"])
    assert "CRV1" in _beta(rows, "d")["note"]
    # the default stays the classical SEs with the old note
    default = fit_ols(frame, "y", ["d", "x"]).tidy(study="t", table="t", column="c")
    assert _beta(default, "d")["note"] == "OLS of y; classical SEs"


def test_unknown_vcov_is_a_spec_error_naming_the_option():
    frame = short_panel(1, units=20)
    with pytest.raises(SpecError, match="vcov must be one of \\['iid', 'hc1', 'cluster'\\]"):
        fit_did(LINEAR.prepare(frame), cov_type="robust")


def test_linear_etwfe_cells_under_hc1_equal_pyfixest_hetero():
    pf = pytest.importorskip("pyfixest")
    from bayes_pool.design.staggered import cell_columns
    from bayes_pool.freq.etwfe import fit_etwfe
    from test_freq_conventions_staggered import DESIGN, staggered_panel
    prepared = DESIGN.prepare(staggered_panel())
    rows = fit_etwfe(prepared, level="unit", cov_type="hc1").tidy(study="t")
    frame = prepared.event_frame.copy()
    cells = cell_columns(frame, control="notyet")
    ref = pf.feols(f"y ~ {' + '.join(cells)} + x | unit + period", data=frame,
                   vcov="hetero").tidy()
    for cell, info in cells.items():
        ours = rows[rows["column"] == info["label"]].iloc[0]
        theirs = ref.loc[cell]
        _assert_matches(ours, theirs["Estimate"], theirs["Std. Error"], theirs["Pr(>|t|)"],
                        theirs["2.5%"], theirs["97.5%"])
        assert "regress, robust" in ours["note"]


def test_mediation_steps_take_the_vcov_and_default_stays():
    """Without a time column the steps are plain regressions: ``vcov="iid"`` gives the
    mediator step statsmodels' non-robust SE and a t(N-K) interval; no vcov keeps the
    clustered-by-unit SE (statsmodels' correction) the module has always reported."""
    from bayes_pool.design.mediation import MediationDesign
    from bayes_pool.freq.mediation import fit_mediation
    frame = short_panel(5, units=40)
    frame["m"] = 0.5 * frame["d"] + frame["x"] + np.random.default_rng(5).normal(size=len(frame))
    design = MediationDesign(outcome="y", treatment="d", mediator="m", covariates=("x",),
                             unit="unit", family="gaussian")
    prepared = design.prepare(frame)
    ref = smf.ols("m ~ d + x + C(unit)", data=prepared.frame)
    for vcov, fitted in (("iid", ref.fit()), (None, ref.fit(
            cov_type="cluster", cov_kwds={"groups": pd.factorize(prepared.frame["unit"])[0]}))):
        rows = fit_mediation(prepared, bootstrap=0, vcov=vcov).tidy(study="t")
        ours = rows[rows["table"] == "mediator_model"].iloc[0]
        assert ours["se"] == pytest.approx(fitted.bse["d"], abs=1e-10)
        if vcov == "iid":
            lo = fitted.conf_int().loc["d", 0]
            assert ours["ci_low"] == pytest.approx(lo, abs=1e-10)
            assert "as Stata regress" in ours["note"]
        else:
            assert ours["note"].endswith("SE clustered by unit")


def test_cli_unknown_vcov_exits_2_naming_it_before_any_folder(tmp_path, outputs):
    from typer.testing import CliRunner

    from bayes_pool.cli import app
    path = tmp_path / "panel.csv"
    short_panel(1, units=20).to_csv(path, index=False)
    res = CliRunner().invoke(app, ["did", "--data", str(path), "--outcome", "y", "--treatment",
                                   "d", "--unit", "unit", "--time", "period", "--family",
                                   "gaussian", "--vcov", "robust", "--frequentist-only"])
    assert res.exit_code == 2
    assert "vcov must be one of" in res.output and "'robust'" in res.output
    assert not outputs.exists()
