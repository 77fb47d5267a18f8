r"""Linear regression by OLS (statsmodels), and SPSS-style stepwise selection of its terms.

.. math::

    y_i = \alpha + \sum_p \beta_p x_{ip} + \varepsilon_i, \qquad
    \beta^{std}_p = \beta_p \, \operatorname{sd}(x_p) / \operatorname{sd}(y)

Rows for each term: ``beta`` (with SE, 95% CI and p), ``beta_std`` (SPSS's standardised
coefficient) and ``t``; for the constant ``beta`` and ``t`` under the term ``intercept``.

:func:`stepwise` reproduces SPSS's *Stepwise* method: at each step the candidate with the
smallest p-value enters if p < ``entry`` (0.05), then any term in the model whose p-value exceeds
``removal`` (0.10) leaves, until nothing enters or leaves.

:func:`fit_clustered` fits a statsmodels OLS or logit with standard errors clustered by a
group under a named small-sample convention (:data:`SE_CONVENTIONS`), so that the numbers sit
next to the tools users compare with: fixest / Stata ``reghdfe`` for linear models, Stata
``logit, vce(cluster)`` for logits. statsmodels' own default multiplies both by
(N - 1)/(N - K) with every dummy in K, which for a linear model with unit dummies and SEs
clustered by unit makes the SE too large by sqrt((N - K_nested)/(N - K)).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import pandas as pd
import statsmodels.api as sm
from scipy import stats

from bayes_pool import estimates
from bayes_pool.design.did import check_numeric_columns
from bayes_pool.errors import InputError


def quoted(name: str) -> str:
    """A column as a formula term, ``Q('name')``, whatever characters its name holds."""
    return f"Q('{name}')"


def _complete(frame: pd.DataFrame, outcome: str, terms: Sequence[str]) -> pd.DataFrame:
    cols = [outcome, *terms]
    check_numeric_columns(frame, cols, why="codes enter the regression linearly")
    data = frame[cols].dropna().astype(float)
    if len(data) <= len(terms) + 1:
        raise InputError(f"only {len(data)} complete rows for {len(terms)} terms")
    return data


Convention = Literal["crv1", "logit"]
SE_CONVENTIONS: dict[str, str] = {
    "crv1": ("CRV1 as fixest/reghdfe: G/(G-1)*(N-1)/(N-K), fixed effects nested in the "
             "clusters not counted in K; t(G-1) p-values and intervals"),
    "logit": "as Stata logit vce(cluster): G/(G-1) only; normal p-values and intervals",
}
"""What each clustered-SE convention of :func:`fit_clustered` is, for the rows' notes."""


def fit_clustered(model, groups, *, convention: Convention, nested: int = 0, **fit_kw):
    """Fit a statsmodels ``model`` (OLS or Logit) with SEs clustered by ``groups``.

    ``convention="crv1"`` (linear models): the covariance is scaled by G/(G - 1) (N - 1)/(N - K)
    with K the rank of the design less ``nested``, the number of its dummy columns that are
    constant within clusters (unit dummies when clustering by unit: fixest's
    ``ssc(k_fixef="nonnested")``, reghdfe's rule), and p-values and intervals use t(G - 1), as
    Stata and fixest do. ``convention="logit"``: G/(G - 1) only and the normal distribution,
    as Stata's ``logit ..., vce(cluster)``. ``fit_kw`` go to ``model.fit``.
    """
    if convention not in SE_CONVENTIONS:
        raise ValueError(f"convention must be one of {sorted(SE_CONVENTIONS)}, got {convention!r}")
    codes, levels = pd.factorize(pd.Series(np.asarray(groups)), sort=True)
    if (codes < 0).any():
        raise InputError(f"{int((codes < 0).sum())} rows have a missing cluster; drop them first")
    n_groups = len(levels)
    if n_groups < 2:
        raise InputError(f"clustered SEs need at least 2 clusters, got {n_groups}")
    linear = convention == "crv1"
    result = model.fit(cov_type="cluster", use_t=linear,
                       cov_kwds={"groups": codes, "use_correction": False}, **fit_kw)
    factor = n_groups / (n_groups - 1)
    if linear:
        n, k = result.nobs, result.df_model + result.k_constant - nested
        factor *= (n - 1) / (n - k)
    inner = getattr(result, "_results", result)  # past statsmodels' results wrapper
    inner.cov_params_default = inner.cov_params_default * factor
    inner._cache = {}  # bse, p-values and intervals were cached from the unscaled covariance
    return result


def inference_df(result) -> float | None:
    """Degrees of freedom of a statsmodels fit's t inference -- G - 1 after
    :func:`fit_clustered` with ``"crv1"``, N - K for a non-robust OLS -- or None where the fit
    uses the normal (logits)."""
    if not getattr(result, "use_t", False):
        return None
    return float(getattr(result, "df_resid_inference", None) or result.df_resid)


def critical_value(result) -> float:
    """Quantile of the 95% interval of a statsmodels fit: t with :func:`inference_df`, else
    the normal."""
    q = 0.5 + estimates.CI_PROB / 2
    df = inference_df(result)
    return float(stats.norm.ppf(q) if df is None else stats.t.ppf(q, df))


@dataclass
class OLSResult:
    """A fitted OLS regression with standardised coefficients."""

    outcome: str
    terms: list[str]
    result: object
    beta_std: pd.Series
    n_obs: int

    def tidy(self, *, study: str, table: str, column: str) -> pd.DataFrame:
        """Rows ``beta``, ``beta_std``, ``t`` per term; ``beta`` and ``t`` of the intercept."""
        r = self.result
        ci = r.conf_int(alpha=1 - estimates.CI_PROB)
        note = f"OLS of {self.outcome}; classical SEs"
        rows = []
        for name, term in [("const", "intercept"), *[(t, t) for t in self.terms]]:
            common = dict(study=study, table=table, column=column, term=term,
                          source="frequentist", n_obs=self.n_obs, note=note)
            p = float(r.pvalues[name])
            rows.append(estimates.row(**common, quantity="beta", estimate=float(r.params[name]),
                                      se=float(r.bse[name]), ci_low=float(ci.loc[name, 0]),
                                      ci_high=float(ci.loc[name, 1]), p_value=p))
            if term != "intercept":
                rows.append(estimates.row(**common, quantity="beta_std",
                                          estimate=float(self.beta_std[name]), p_value=p))
            rows.append(estimates.row(**common, quantity="t", estimate=float(r.tvalues[name]),
                                      p_value=p))
        return estimates.frame(rows)


def fit_ols(frame: pd.DataFrame, outcome: str, terms: Sequence[str]) -> OLSResult:
    """OLS of ``outcome`` on ``terms`` (entered linearly) and a constant, complete cases."""
    terms = list(terms)
    data = _complete(frame, outcome, terms)
    x = sm.add_constant(data[terms], has_constant="add")
    result = sm.OLS(data[outcome], x).fit()
    sd = data.std(ddof=1)
    beta_std = result.params[terms] * sd[terms] / sd[outcome]
    return OLSResult(outcome=outcome, terms=terms, result=result, beta_std=beta_std,
                     n_obs=int(result.nobs))


@dataclass
class StepwiseResult:
    """The terms stepwise selection kept, in order of entry, and the log of its steps."""

    selected: list[str]
    steps: list[dict] = field(default_factory=list)
    n_obs: int = 0

    def to_dict(self) -> dict:
        """Plain dict for the manifest's facts."""
        return {"selected": list(self.selected), "steps": list(self.steps), "n_obs": self.n_obs}


def _pvalues(data: pd.DataFrame, outcome: str, terms: list[str]) -> pd.Series:
    x = sm.add_constant(data[terms], has_constant="add")
    return sm.OLS(data[outcome], x).fit().pvalues[terms]


def stepwise(frame: pd.DataFrame, outcome: str, candidates: Sequence[str], *,
             entry: float = 0.05, removal: float = 0.10, max_steps: int = 100) -> StepwiseResult:
    """SPSS-style stepwise OLS selection (entry p < ``entry``, removal p > ``removal``).

    Uses the rows complete on the outcome and every candidate (SPSS's listwise deletion).
    """
    if not entry < removal:
        raise InputError(f"entry ({entry}) must be below removal ({removal}), or terms cycle")
    candidates = list(candidates)
    data = _complete(frame, outcome, candidates)
    selected: list[str] = []
    steps: list[dict] = []
    for _ in range(max_steps):
        pool = [c for c in candidates if c not in selected]
        entered = None
        if pool:
            p_in = pd.Series({c: _pvalues(data, outcome, [*selected, c])[c] for c in pool})
            best = p_in.idxmin()
            if p_in[best] < entry:
                selected.append(best)
                entered = best
                steps.append({"step": len(steps) + 1, "entered": best, "p": float(p_in[best])})
        removed = False
        if selected:
            p_now = _pvalues(data, outcome, selected)
            worst = p_now.idxmax()
            if p_now[worst] > removal and worst != entered:
                selected.remove(worst)
                removed = True
                steps.append({"step": len(steps) + 1, "removed": worst,
                              "p": float(p_now[worst])})
        if entered is None and not removed:
            break
    else:
        raise RuntimeError(f"stepwise selection did not settle in {max_steps} steps")
    return StepwiseResult(selected=selected, steps=steps, n_obs=len(data))

