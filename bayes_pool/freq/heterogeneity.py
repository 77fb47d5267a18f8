r"""Frequentist heterogeneity of a DiD effect: the TWFE fit on each subgroup (Table 6 of Zhang &
Chen 2024) and the difference of the two AMEs from one stacked model.

Both subgroups' AMEs are identified by the same few switching units, so they are not
independent: a unit x period shock moves both. The difference is therefore estimated as
Stata's ``suest`` does: the two subgroup designs are stacked block-diagonally into one model
(every coefficient, fixed effects included, specific to its subgroup, so the point estimates
equal the separate fits'), and the covariance is clustered by unit across both blocks. The
delta method then gives

.. math::

    \widehat{\operatorname{Var}}(\widehat{AME}_h - \widehat{AME}_l)
      = g^\top \hat V_{\text{joint}}\, g, \qquad g = (-\nabla AME_l,\ \nabla AME_h),

which keeps the covariance of the two AMEs that a difference of independent estimates
drops. Clustered SEs follow the DiD's convention (:data:`bayes_pool.freq.ols.SE_CONVENTIONS`).

What it was shown to do (``tests/test_heterogeneity.py``, slow tier: 200 worlds with equal
subgroup effects and unit x wave shocks shared by both subgroups): shared shocks make the two
AMEs' errors positively correlated, so the independent SE is too large (1.35 x the Monte Carlo
SD with 16 switchers, 1.21 with 6); the stacked SE matches it with 16 switchers (0.94) but,
like every clustered SE, is too small with few treated clusters (0.85 with 6, 0.74 with 3,
where the independent SE is 0.89: dropping the covariance offsets part of the shortfall).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import statsmodels.api as sm
from scipy import linalg, stats
from scipy.special import expit

from bayes_pool import estimates
from bayes_pool.design import DiDDesign
from bayes_pool.errors import InputError
from bayes_pool.freq import did as freq_did
from bayes_pool.freq.ols import SE_CONVENTIONS, fit_clustered, quoted
from bayes_pool.subgroups import Split


SHOWN = ("in simulated worlds with shared unit x period shocks this SE matched the Monte Carlo "
         "SD with 16 switching units (x0.94) but was too small with few (x0.85 with 6, x0.74 "
         "with 3 switchers); do not call it valid with few switchers")
"""What the difference's SE was shown to do, for the row's note (see the module docstring)."""


@dataclass(frozen=True)
class Difference:
    """AME(high) - AME(low) with its SE from the stacked model, and each AME from it."""

    estimate: float
    se: float
    df: float | None  # t degrees of freedom; None for the normal
    ame: dict[str, tuple[float, float]]
    n_obs: int
    convention: str
    converged: bool = True

    @property
    def critical_value(self) -> float:
        q = 0.5 + estimates.CI_PROB / 2
        return float(stats.norm.ppf(q) if self.df is None else stats.t.ppf(q, self.df))

    @property
    def p_value(self) -> float:
        z = abs(self.estimate / self.se)
        return float(2 * (stats.norm.sf(z) if self.df is None else stats.t.sf(z, self.df)))


@dataclass
class FreqSplit:
    """The TWFE fit of each subgroup of one split and the difference of their AMEs."""

    name: str
    split: Split
    fits: dict = field(default_factory=dict)
    difference: Difference | None = None

    def tidy(self, *, study: str, table: str) -> pd.DataFrame:
        """Rows: ``ame`` of the treatment per subgroup column, ``ame_difference`` in
        ``<name>_difference``."""
        parts = []
        for label, fit in self.fits.items():
            rows = fit.tidy(study=study, table=table, column=label)
            t = fit.prepared.design.treatment
            parts.append(rows[(rows["term"] == t) & (rows["quantity"] == "ame")])
        if self.difference is not None:
            parts.append(self._difference_row(study=study, table=table))
        return estimates.concat(*parts)

    def _difference_row(self, *, study: str, table: str) -> pd.DataFrame:
        d, s = self.difference, self.split
        term = next(iter(self.fits.values())).prepared.design.treatment
        half = d.critical_value * d.se
        return estimates.frame([estimates.row(
            study=study, table=table, column=f"{self.name}_difference", term=term,
            quantity="ame_difference", source="frequentist", estimate=d.estimate, se=d.se,
            ci_low=d.estimate - half, ci_high=d.estimate + half, p_value=d.p_value,
            n_obs=d.n_obs,
            note=(f"{s.high} minus {s.low}; both subgroup TWFE fits stacked in one model "
                  f"(Stata suest logic), delta method on their joint covariance clustered by "
                  f"unit, {SE_CONVENTIONS[d.convention]}; {SHOWN}"
                  + ("" if d.converged else "; NOT CONVERGED: a subgroup logit or the stacked "
                     "fit did not converge (small or separated cells?); do not read this")))])


def fit_split(frame: pd.DataFrame, design: DiDDesign, name: str, split: Split, *,
              cov_type: freq_did.CovType = "cluster") -> FreqSplit:
    """TWFE fit of each subgroup (rows labelled ``split.low`` / ``split.high``) and, with
    clustered SEs, the difference of their AMEs from the stacked model."""
    labels = split.labels(frame)
    out = FreqSplit(name=name, split=split)
    for label in (split.low, split.high):
        sub = frame[labels == label]
        if sub.empty:
            raise InputError(f"split {name!r}: no rows with label {label!r}")
        out.fits[label] = freq_did.fit_did(design.prepare(sub), cov_type=cov_type)
    if cov_type == "cluster":
        out.difference = stacked_difference(out.fits, split.low, split.high)
    return out


def stacked_difference(fits: dict, low: str, high: str) -> Difference:
    """AME(high) - AME(low) of the treatment from the subgroup fits ``fits[low]`` and
    ``fits[high]`` stacked in one model; ``ame`` holds each subgroup's (AME, SE) from it."""
    design = fits[low].prepared.design
    blocks = [_block(fits[label]) for label in (low, high)]
    exog = linalg.block_diag(*[b["exog"] for b in blocks])
    endog = np.concatenate([b["endog"] for b in blocks])
    units = np.concatenate([b["units"] for b in blocks])
    bernoulli = design.family == "bernoulli"
    if bernoulli:
        result = fit_clustered(sm.Logit(endog, exog), units, convention="logit", disp=0,
                               maxiter=200, start_params=np.concatenate(
                                   [b["params"] for b in blocks]))
    else:
        result = fit_clustered(sm.OLS(endog, exog), units, convention="crv1",
                               nested=sum(b["nested"] for b in blocks))
    params, cov = np.asarray(result.params), np.asarray(result.cov_params())
    grads, ames, start = [], {}, 0
    for label, b in zip((low, high), blocks):
        k = b["exog"].shape[1]
        ame, grad = _ame_and_gradient(b["exog"], params[start:start + k], b["treatment"],
                                      bernoulli)
        full = np.zeros(len(params))
        full[start:start + k] = grad
        grads.append(full)
        ames[label] = (ame, float(np.sqrt(full @ cov @ full)))
        start += k
    g = grads[1] - grads[0]
    return Difference(estimate=ames[high][0] - ames[low][0],
                      se=float(np.sqrt(g @ cov @ g)),
                      df=(len(np.unique(units)) - 1) if not bernoulli else None, ame=ames,
                      n_obs=len(endog), convention="logit" if bernoulli else "crv1",
                      converged=bool(fits[low].converged and fits[high].converged
                                     and getattr(result, "mle_retvals", {}).get("converged",
                                                                                True)))


def _block(fit: freq_did.FreqDiDResult) -> dict:
    """One subgroup's design matrix, outcome, cluster labels and treatment column."""
    model = fit.result.model
    d = fit.prepared.design
    used = fit.prepared.frame[~fit.prepared.frame[d.unit].isin(fit.dropped_units)]
    if len(used) != model.exog.shape[0]:
        raise RuntimeError("subgroup rows and the fitted design disagree; cannot stack")
    names = list(model.exog_names)
    return {"exog": np.asarray(model.exog), "endog": np.asarray(model.endog),
            "units": used[d.unit].astype(str).to_numpy(), "params": np.asarray(fit.result.params),
            "treatment": names.index(quoted(d.treatment)),
            "nested": freq_did.unit_dummies(model, d.unit)}


def _ame_and_gradient(exog: np.ndarray, params: np.ndarray, col: int, bernoulli: bool):
    """Average discrete change of the 0/1 column ``col`` and its gradient in ``params``."""
    if not bernoulli:
        grad = np.zeros(len(params))
        grad[col] = 1.0
        return float(params[col]), grad
    x1, x0 = exog.copy(), exog.copy()
    x1[:, col], x0[:, col] = 1.0, 0.0
    p1, p0 = expit(x1 @ params), expit(x0 @ params)
    grad = ((p1 * (1 - p1))[:, None] * x1 - (p0 * (1 - p0))[:, None] * x0).mean(axis=0)
    return float((p1 - p0).mean()), grad
