"""The two regressions the rho curves of :mod:`.mediation_sensitivity` (linear outcome) and
:mod:`.mediation_sensitivity_binary` (probit outcome) take, and their simulated draws.

Both steps share one regressor matrix ``x`` (treatment in column 0, then covariates, an
intercept or unit dummies, time dummies): OLS of the mediator on ``x``, then OLS or a probit
of the outcome on ``[x, mediator]`` over the outcome step's rows (a probit with unit dummies
drops the units whose outcome never varies, as :mod:`bayes_pool.freq.mediation` does).
Uncertainty follows ``medsens`` Step 1: coefficients drawn from a normal around the estimate
with the step's covariance (clustered by unit when ``groups`` is given, HC1 otherwise) and
the residual variance from its scaled inverse chi-squared distribution, independently for
the two steps.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
import statsmodels.api as sm
from statsmodels.tools.sm_exceptions import PerfectSeparationWarning

from ..errors import InputError

from .mediation_sensitivity import linear_effects
from .mediation_sensitivity_binary import probit_effects


@dataclass(frozen=True)
class StepDraws:
    """Parameters of the two steps, one entry per draw (S,); one draw = the point estimate.

    ``b2``: treatment -> mediator; ``b``: mediator -> outcome; ``b3``: treatment -> outcome
    (linear only); ``sigma_m``, ``sigma_y``: residual SDs (``sigma_y`` linear only; its point
    estimate on the mediator step's degrees-of-freedom divisor, as the closed form needs);
    ``index0``, ``index1`` (probit only): the outcome index per draw and outcome row (S, n)
    with treatment 0 / 1 and the mediator at its mean under that treatment."""

    b2: np.ndarray
    b: np.ndarray
    sigma_m: np.ndarray
    b3: np.ndarray | None = None
    sigma_y: np.ndarray | None = None
    index0: np.ndarray | None = None
    index1: np.ndarray | None = None

    @property
    def probit(self) -> bool:
        return self.index0 is not None

    def effects(self, rhos) -> dict[str, np.ndarray]:
        """ACME, ADE and total effect per draw and rho (S, R): the probit closed form of
        :mod:`.mediation_sensitivity_binary` or the linear one of :mod:`.mediation_sensitivity`
        (there ACME(0) = ACME(1) and ADE(0) = ADE(1)); ``rhos`` a grid or an (S, 1) column."""
        if self.probit:
            return probit_effects(rhos, self.index0, self.index1, self.b2, self.b, self.sigma_m)
        eff = linear_effects(rhos, self.b2, self.b, self.b3, self.sigma_m, self.sigma_y)
        return {**eff, "acme_control": eff["acme"], "ade_treated": eff["ade"]}

    def rho_at_zero(self) -> np.ndarray:
        """Per draw, the rho at which the ACME vanishes (the latent probit error has SD 1)."""
        sy = np.ones_like(self.b) if self.probit else self.sigma_y
        return self.b * self.sigma_m / np.hypot(self.b * self.sigma_m, sy)


@dataclass(frozen=True)
class Steps:
    """The fitted steps and what the draws need: outcome rows and the outcome columns kept."""

    mediator: object  # statsmodels results
    outcome: object
    rows: np.ndarray
    kept: np.ndarray  # columns of x kept in the outcome step (bool, len p)
    probit: bool

    def draws(self, x: np.ndarray, sims: int = 0,
              rng: np.random.Generator | None = None) -> StepDraws:
        """The point estimate (``sims=0``) or ``sims`` simulated draws."""
        med, out = self.mediator, self.outcome
        th2 = _simulate(med.params, med.cov_params(), sims, rng)
        tho = _simulate(out.params, out.cov_params(), sims, rng)
        sigma_m = _simulate_sigma(med, sims, rng)
        if not self.probit:
            # point estimate: SSR_y on the mediator step's divisor, so that rho~ is exactly
            # the residual correlation IKY's theorem names (the divisor cancels)
            sigma_y = _simulate_sigma(out, sims, rng, df_point=med.df_resid)
            return StepDraws(b2=th2[:, 0], b=tho[:, -1], b3=tho[:, 0], sigma_m=sigma_m,
                             sigma_y=sigma_y)
        full = np.zeros((len(tho), x.shape[1]))
        full[:, self.kept] = tho[:, :-1]
        b = tho[:, -1]
        index = []
        for t in (0.0, 1.0):
            z = x[self.rows].copy()
            z[:, 0] = t
            index.append(full @ z.T + b[:, None] * (th2 @ z.T))
        return StepDraws(b2=th2[:, 0], b=b, sigma_m=sigma_m, index0=index[0], index1=index[1])


def fit_steps(x: np.ndarray, m: np.ndarray, y: np.ndarray, *, probit: bool,
              groups: np.ndarray | None = None) -> Steps:
    """Fit the mediator step (OLS) and the outcome step (OLS, or a probit when ``probit``).

    ``groups``: integer unit codes (cluster-robust covariances, and with a probit the units
    whose outcome never varies are dropped from the outcome step); ``None``: HC1."""
    rows = np.arange(len(y))
    if probit and groups is not None:
        varies = np.zeros(groups.max() + 1, dtype=bool)
        for g in np.unique(groups):
            varies[g] = np.ptp(y[groups == g]) > 0
        rows = np.flatnonzero(varies[groups])
    kept = np.abs(x[rows]).sum(axis=0) > 0  # dummies of dropped units
    xo = np.column_stack([x[rows][:, kept], m[rows]])

    def cov(idx):
        if groups is None:
            return {"cov_type": "HC1"}
        return {"cov_type": "cluster", "cov_kwds": {"groups": groups[idx]}}
    med = sm.OLS(m, x).fit(**cov(np.arange(len(m))))
    if probit:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", category=RuntimeWarning)
            warnings.simplefilter("error", category=PerfectSeparationWarning)
            try:
                out = sm.Probit(y[rows], xo).fit(disp=0, maxiter=200, **cov(rows))
            except (np.linalg.LinAlgError, PerfectSeparationWarning) as exc:
                raise InputError(f"the outcome probit of the sensitivity analysis cannot be "
                                 f"fitted ({exc}): a covariate or effect predicts the outcome "
                                 "(perfectly or nearly); drop or merge it") from exc
        if not out.mle_retvals.get("converged", True):
            raise InputError("the outcome probit of the sensitivity analysis did not converge "
                             "in 200 iterations: look for a covariate or effect that nearly "
                             "predicts the outcome")
    else:
        out = sm.OLS(y[rows], xo).fit(**cov(rows))
    return Steps(mediator=med, outcome=out, rows=rows, kept=kept, probit=probit)


def _simulate(params, cov, sims: int, rng) -> np.ndarray:
    params = np.asarray(params, dtype=float)
    if not sims:
        return params[None, :]
    return rng.multivariate_normal(params, np.asarray(cov, dtype=float), size=sims,
                                   method="eigh", check_valid="ignore")


def _simulate_sigma(res, sims: int, rng, df_point: float | None = None) -> np.ndarray:
    """Residual SD ``sqrt(SSR / df)`` (``df_point`` instead of the fit's own degrees of
    freedom if given), or draws of it: ``SSR / chi2(df)``."""
    df = float(res.df_resid)
    ssr = float(res.scale) * df
    if not sims:
        return np.array([np.sqrt(ssr / (df if df_point is None else float(df_point)))])
    return np.sqrt(ssr / rng.chisquare(df, size=sims))


def shared_regressors(frame, treatment: str, covariates, unit: str | None, time: str | None
                      ) -> tuple[np.ndarray, np.ndarray | None]:
    """Regressors both steps share -- treatment, covariates, unit dummies (or an intercept),
    time dummies (first period dropped) -- and the unit codes for clustering."""
    import pandas as pd
    parts = [frame[[treatment, *covariates]].to_numpy(float)]
    parts.append(pd.get_dummies(frame[unit], dtype=float).to_numpy() if unit
                 else np.ones((len(frame), 1)))
    if time:
        parts.append(pd.get_dummies(frame[time], drop_first=True, dtype=float).to_numpy())
    groups = pd.factorize(frame[unit], sort=True)[0] if unit else None
    return np.column_stack(parts), groups


def band(values, level: float, size: int) -> tuple[np.ndarray, np.ndarray]:
    """Equal-tailed ``level`` quantiles over draws (axis 0) of (S, R) values; NaN without."""
    if values is None:
        return np.full(size, np.nan), np.full(size, np.nan)
    q = np.quantile(values, [(1 - level) / 2, (1 + level) / 2], axis=0)
    return q[0], q[1]
