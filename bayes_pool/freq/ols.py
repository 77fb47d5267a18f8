r"""Linear regression by OLS (statsmodels), and SPSS-style stepwise selection of its terms.

.. math::

    y_i = \alpha + \sum_p \beta_p x_{ip} + \varepsilon_i, \qquad
    \beta^{std}_p = \beta_p \, \operatorname{sd}(x_p) / \operatorname{sd}(y)

Rows for each term: ``beta`` (with SE, 95% CI and p), ``beta_std`` (SPSS's standardised
coefficient) and ``t``; for the constant ``beta`` and ``t`` under the term ``intercept``.

:func:`stepwise` reproduces SPSS's *Stepwise* method: at each step the candidate with the
smallest p-value enters if p < ``entry`` (0.05), then any term in the model whose p-value exceeds
``removal`` (0.10) leaves, until nothing enters or leaves.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import pandas as pd
import statsmodels.api as sm

from bayes_pool import estimates
from bayes_pool.errors import InputError


def _complete(frame: pd.DataFrame, outcome: str, terms: Sequence[str]) -> pd.DataFrame:
    cols = [outcome, *terms]
    missing = [c for c in cols if c not in frame.columns]
    if missing:
        raise InputError(f"column(s) {missing} not in the frame; columns: {sorted(frame.columns)}")
    bad = [c for c in cols if not pd.api.types.is_numeric_dtype(frame[c])]
    if bad:
        raise InputError(f"column(s) {bad} must be numeric (codes enter the regression linearly)")
    data = frame[cols].dropna().astype(float)
    if len(data) <= len(terms) + 1:
        raise InputError(f"only {len(data)} complete rows for {len(terms)} terms")
    return data


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

