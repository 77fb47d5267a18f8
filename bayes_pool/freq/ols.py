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

:func:`fit_vcov` is the one entry point for the three variance choices a fit offers
(``vcov`` = :data:`VCOVS`), each with Stata's small-sample convention (:func:`vcov_note`):
``iid`` as ``regress`` (s^2 (X'X)^-1, t(N - K)) or ``logit`` (inverse information, normal);
``hc1`` as ``regress, robust`` (N/(N - K), t(N - K)) or ``logit, vce(robust)`` (N/(N - 1),
normal); ``cluster`` as :func:`fit_clustered`. A 2x2 or few-unit design needs the first two:
with two clusters a clustered SE has one degree of freedom.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal, get_args

import numpy as np
import pandas as pd
import statsmodels.api as sm
from scipy import stats

from bayes_pool import estimates
from bayes_pool.design.did import check_numeric_columns
from bayes_pool.errors import InputError, SpecError


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
    if groups is None:
        raise InputError("clustered SEs need a cluster column (a unit, or --cluster COL)")
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


Vcov = Literal["iid", "hc1", "cluster"]
VCOVS: tuple[str, ...] = get_args(Vcov)
"""The variance choices of the frequentist fits (``--vcov``, ``vcov=``, spec key ``vcov``)."""

_VCOV_NOTES = {
    ("iid", True): "iid SE as Stata regress: s^2 (X'X)^-1; t(N-K) p-values and intervals",
    ("iid", False): ("model-based SE as Stata logit (inverse information); normal p-values "
                     "and intervals"),
    ("hc1", True): ("HC1 SE as Stata regress, robust: N/(N-K); t(N-K) p-values and "
                    "intervals"),
    ("hc1", False): ("robust SE as Stata logit, vce(robust): N/(N-1); normal p-values and "
                     "intervals"),
}


def check_vcov(vcov: str) -> Vcov:
    """``vcov`` if it is one of :data:`VCOVS` (``"nonrobust"``, the older name, is ``"iid"``);
    else :class:`SpecError` naming the option and its values."""
    vcov = "iid" if vcov == "nonrobust" else vcov
    if vcov not in VCOVS:
        raise SpecError(f"vcov must be one of {list(VCOVS)} (--vcov, vcov=), got {vcov!r}")
    return vcov


def vcov_note(vcov: str, *, linear: bool, cluster: str | None = None) -> str:
    """Which SE a fit under ``vcov`` carries and the convention it follows, for row notes."""
    vcov = check_vcov(vcov)
    if vcov == "cluster":
        return f"SE clustered by {cluster}, {SE_CONVENTIONS['crv1' if linear else 'logit']}"
    return _VCOV_NOTES[vcov, linear]


def fit_vcov(model, vcov: str, *, linear: bool, groups=None, nested: int = 0, **fit_kw):
    """Fit a statsmodels OLS (``linear``) or Logit under ``vcov`` with Stata's conventions.

    ``iid``: the model-based covariance (OLS: t(N - K) inference). ``hc1``: OLS as
    ``regress, robust`` (statsmodels' HC1, t(N - K)); a logit as ``logit, vce(robust)``, the
    sandwich times N/(N - 1) with normal inference (statsmodels' ``"HC1"`` for a logit is the
    uncorrected sandwich). ``cluster``: :func:`fit_clustered` by ``groups`` (CRV1 with
    ``nested`` dummies out of K for OLS, Stata's logit convention otherwise).
    """
    vcov = check_vcov(vcov)
    if vcov == "cluster":
        return fit_clustered(model, groups, convention="crv1" if linear else "logit",
                             nested=nested, **fit_kw)
    if vcov == "iid":
        return model.fit(**fit_kw)
    if linear:
        return model.fit(cov_type="HC1", use_t=True, **fit_kw)
    result = model.fit(cov_type="HC0", **fit_kw)
    n = result.nobs
    inner = getattr(result, "_results", result)
    inner.cov_params_default = inner.cov_params_default * n / (n - 1)
    inner._cache = {}
    return result


def nested_dummies(model, frame: pd.DataFrame, columns, cluster: str) -> int:
    """How many dummy columns ``C(Q('col'))[...]`` of the design, for each of ``columns``, are
    nested in the ``cluster`` groups (every level of ``col`` within one cluster): the fixed
    effects fixest and ``reghdfe`` leave out of K in CRV1."""
    out = 0
    for col in dict.fromkeys(columns):
        if col == cluster or frame.groupby(col)[cluster].nunique().max() == 1:
            prefix = f"C({quoted(col)})["
            out += sum(name.startswith(prefix) for name in model.exog_names)
    return out


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
    vcov: str = "iid"
    cluster: str | None = None

    def tidy(self, *, study: str, table: str, column: str) -> pd.DataFrame:
        """Rows ``beta``, ``beta_std``, ``t`` per term; ``beta`` and ``t`` of the intercept."""
        r = self.result
        ci = r.conf_int(alpha=1 - estimates.CI_PROB)
        note = f"OLS of {self.outcome}; " + ("classical SEs" if self.vcov == "iid" else
                                              vcov_note(self.vcov, linear=True,
                                                        cluster=self.cluster))
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


def fit_ols(frame: pd.DataFrame, outcome: str, terms: Sequence[str], *, vcov: str = "iid",
            cluster: str | None = None) -> OLSResult:
    """OLS of ``outcome`` on ``terms`` (entered linearly) and a constant, complete cases, with
    SEs under ``vcov`` (:func:`fit_vcov`; ``cluster`` names the column clustered by, required
    with ``vcov="cluster"``, and its rows must be complete too)."""
    terms, vcov = list(terms), check_vcov(vcov)
    if vcov == "cluster":
        if cluster is None or cluster not in frame.columns:
            raise InputError(f"vcov 'cluster' needs a cluster column present in the data, got "
                             f"{cluster!r}; name it with --cluster COL / cluster=")
        frame = frame[frame[cluster].notna()]
    data = _complete(frame, outcome, terms)
    x = sm.add_constant(data[terms], has_constant="add")
    groups = frame.loc[data.index, cluster] if vcov == "cluster" else None
    result = fit_vcov(sm.OLS(data[outcome], x), vcov, linear=True, groups=groups)
    sd = data.std(ddof=1)
    beta_std = result.params[terms] * sd[terms] / sd[outcome]
    return OLSResult(outcome=outcome, terms=terms, result=result, beta_std=beta_std,
                     n_obs=int(result.nobs), vcov=vcov, cluster=cluster)


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

