"""Frequentist replication of a two-way fixed-effects DiD: logit (or OLS) with unit and time
dummies, standard errors clustered by unit, and average marginal effects by the delta method.

The marginal effect of a 0/1 regressor (the treatment, dummies among the controls) is the
average discrete change p(x=1) - p(x=0), of a continuous one the average derivative, with
delta-method standard errors from the clustered covariance -- what Stata's ``margins, dydx()``
reports after ``logit ..., vce(cluster unit)`` with factor-variable notation. statsmodels'
``get_margeff(at="overall", dummy=True)`` computes exactly this; dummies are fitted explicitly
because absorbed-fixed-effect estimators cannot give the marginal effect's SE.

Clustered SEs follow the convention of the tool users compare with
(:data:`bayes_pool.freq.ols.SE_CONVENTIONS`): a logit as Stata's ``logit, vce(cluster)``
(G/(G - 1), normal), the linear model as fixest / ``reghdfe`` (CRV1 with the unit dummies,
nested in the unit clusters, left out of K; t(G - 1) p-values and intervals). ``iid`` and
``hc1`` SEs follow Stata's ``regress`` / ``logit`` (:func:`bayes_pool.freq.ols.fit_vcov`).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
import pandas as pd
import statsmodels.formula.api as smf
from threadpoolctl import threadpool_limits

from bayes_pool import estimates
from bayes_pool.design import PreparedDiD
from bayes_pool.errors import InputError
from bayes_pool.freq.ols import (check_vcov, critical_value, fit_vcov, nested_dummies, quoted,
                                 vcov_note)


@dataclass
class FreqDiDResult:
    """A fitted TWFE DiD: the statsmodels results, its marginal effects and the sample used."""

    prepared: PreparedDiD
    result: object
    margeff: pd.DataFrame
    n_obs: int
    dropped_units: tuple[str, ...]
    cov_type: str = "cluster"

    @property
    def converged(self) -> bool:
        """Whether the optimiser converged (OLS always does)."""
        return bool(getattr(self.result, "mle_retvals", {}).get("converged", True))

    @property
    def terms(self) -> list[str]:
        return self.prepared.design.terms

    @property
    def critical_value(self) -> float:
        """Quantile for the 95% interval: t with the inference df where the fit uses t."""
        return critical_value(self.result)

    @property
    def se_note(self) -> str:
        """Which SE the rows carry and which small-sample convention it follows."""
        d = self.prepared.design
        return vcov_note(self.cov_type, linear=d.family != "bernoulli",
                         cluster=d.cluster or d.unit)

    def tidy(self, *, study: str, table: str, column: str) -> pd.DataFrame:
        """Rows of the estimates table: ``beta`` and ``ame`` for the treatment and each covariate."""
        d = self.prepared.design
        z = self.critical_value
        note = "TWFE; " + self.se_note
        if self.dropped_units:
            note += f"; dropped {len(self.dropped_units)} {d.unit}(s) whose outcome never varies"
        if not self.converged:
            note += ("; NOT CONVERGED: the maximum-likelihood fit did not converge (small or "
                     "separated cells?); do not read this estimate")
        rows = []
        params, bse, pvals = self.result.params, self.result.bse, self.result.pvalues
        for term in self.terms:
            key = quoted(term)
            b, s = float(params[key]), float(bse[key])
            rows.append(estimates.row(study=study, table=table, column=column, term=term,
                                      quantity="beta", source="frequentist", estimate=b, se=s,
                                      ci_low=b - z * s, ci_high=b + z * s,
                                      p_value=float(pvals[key]), n_obs=self.n_obs, note=note))
            m = self.margeff.loc[term]
            rows.append(estimates.row(study=study, table=table, column=column, term=term,
                                      quantity="ame", source="frequentist", estimate=m["ame"],
                                      se=m["se"], ci_low=m["ame"] - z * m["se"],
                                      ci_high=m["ame"] + z * m["se"], p_value=m["p_value"],
                                      n_obs=self.n_obs, note=note + "; delta method"))
        return estimates.frame(rows)


CovType = str
"""One of :data:`bayes_pool.freq.ols.VCOVS` (``"nonrobust"``: the older name of ``"iid"``)."""


def fit_did(prepared: PreparedDiD, *, cov_type: CovType = "cluster") -> FreqDiDResult:
    """Fit the TWFE DiD on a prepared design (logit for ``bernoulli``, OLS for ``gaussian``).

    For a logit, units whose outcome never varies are dropped first (their dummy would be
    infinite), as Stata does, and the drop is reported in the estimates' ``note``.
    ``cov_type="cluster"`` (the paper's choice) clusters by unit; ``"nonrobust"`` gives the
    model-based SEs, which stay valid when only a few units switch treatment and the unit
    effects absorb the within-unit correlation -- clustered SEs then are far too small;
    ``"hc1"`` the heteroskedasticity-robust ones (``"iid"`` and ``"hc1"`` as Stata's
    ``regress`` / ``logit``, see :func:`bayes_pool.freq.ols.fit_vcov`). Clusters are the
    design's ``cluster`` column (default the unit); the unit and time dummies nested in them
    are left out of K for a linear model.
    """
    cov_type = check_vcov(cov_type)
    # OpenBLAS threads on these small dense problems cost more than they save (3x here).
    with threadpool_limits(1):
        return _fit_did(prepared, cov_type)


def _fit_did(prepared: PreparedDiD, cov_type: CovType) -> FreqDiDResult:
    d = prepared.design
    frame = prepared.frame
    dropped: tuple[str, ...] = ()
    if d.family == "bernoulli":
        varies = frame.groupby(d.unit)[d.outcome].nunique() > 1
        dropped = tuple(sorted(varies.index[~varies]))
        frame = frame[frame[d.unit].isin(varies.index[varies])].reset_index(drop=True)
        if frame.groupby(d.unit)[d.treatment].nunique().max() < 2:
            raise InputError(f"after dropping {d.unit}s whose outcome never varies, "
                             f"{d.treatment!r} no longer changes within any {d.unit}")
    rhs = " + ".join([quoted(d.treatment), *map(quoted, d.covariates), f"C({quoted(d.unit)})",
                      f"C({quoted(d.time)})"])
    formula = f"{quoted(d.outcome)} ~ {rhs}"
    by = d.cluster or d.unit
    if d.family == "bernoulli":
        model = smf.logit(formula, data=frame)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", category=RuntimeWarning)
            result = fit_vcov(model, cov_type, linear=False, groups=frame[by], disp=0,
                              maxiter=200)
        margeff = _logit_margeff(result, d.terms)
    else:
        model = smf.ols(formula, data=frame)
        nested = (unit_dummies(model, d.unit) if by == d.unit else
                  nested_dummies(model, frame, [d.unit, d.time], by))
        result = fit_vcov(model, cov_type, linear=True, groups=frame[by], nested=nested)
        keys = [quoted(t) for t in d.terms]
        margeff = pd.DataFrame({"ame": result.params[keys].to_numpy(),
                                "se": result.bse[keys].to_numpy(),
                                "p_value": result.pvalues[keys].to_numpy()},
                               index=d.terms)
    return FreqDiDResult(prepared=prepared, result=result, margeff=margeff,
                         n_obs=int(result.nobs), dropped_units=dropped, cov_type=cov_type)


def unit_dummies(model, unit: str) -> int:
    """How many columns of the design are the unit's dummies (nested in the unit clusters)."""
    prefix = f"C({quoted(unit)})["
    return sum(name.startswith(prefix) for name in model.exog_names)


def _logit_margeff(result, terms: list[str]) -> pd.DataFrame:
    """Average marginal effects (discrete change for 0/1 regressors) with delta-method SEs."""
    me = result.get_margeff(at="overall", method="dydx", dummy=True)
    names = list(result.model.exog_names[1:])  # margeff omits the constant
    idx = [names.index(quoted(t)) for t in terms]
    return pd.DataFrame({"ame": np.asarray(me.margeff)[idx],
                         "se": np.asarray(me.margeff_se)[idx],
                         "p_value": np.asarray(me.pvalues)[idx]}, index=terms)
