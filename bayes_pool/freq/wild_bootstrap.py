r"""Wild cluster restricted (WCR) bootstrap for the treatment coefficient of a TWFE DiD.

Clustered standard errors over-reject when few clusters are treated (in Zhang & Chen 2024
three provinces switch): the placebo test of :mod:`bayes_pool.freq.placebo` shows it. The wild
cluster bootstrap with the null imposed (Cameron, Gelbach & Miller 2008; MacKinnon & Webb
2017) is the standard fix. It is run on the linear-probability version of the model,

.. math::

    y_{it} = \beta D_{it} + X_{it}\gamma + \lambda_t + u_{k(i)} + e_{it},

OLS with unit and time dummies (a logit has no closed-form bootstrap refit). For each
bootstrap draw the restricted residuals :math:`\tilde e` (fit with :math:`\beta = \beta_0`)
are multiplied by one weight per cluster, :math:`y^* = \hat y_0 + v_g \tilde e`, the model is
refitted and the CRV1 t-statistic :math:`t^* = (\hat\beta^* - \beta_0)/\widehat{se}^*` is
compared with the sample's. Weights: Webb's six-point distribution
(:math:`\pm\sqrt{1/2}, \pm 1, \pm\sqrt{3/2}`, each 1/6) by default -- with few (treated)
clusters Rademacher weights give only :math:`2^G` distinct draws and a lumpy p-value -- or
Rademacher (:math:`\pm 1`).

What it can do with three treated clusters: little. MacKinnon & Webb (2017, 2018) show that
with very few treated clusters the restricted (null-imposed) wild cluster bootstrap
*under*-rejects severely -- with one to three treated clusters it may almost never reject --
while the unrestricted version over-rejects severely; the test is only reliable when the
number of treated clusters is not small. Zhang & Chen's design has three switching provinces,
so this p-value is reported as a cross-check, not as a valid test: its row note quotes the
rejection rate it showed in the toolkit's null worlds (``benchmarks/null_world.py``).

By Frisch-Waugh-Lovell everything reduces to per-cluster sums, so all bootstrap draws are a
few matrix products and the test can be inverted for a confidence interval cheaply (the
restricted residuals are linear in :math:`\beta_0`).

References
----------
Cameron, Gelbach & Miller (2008), Rev Econ Stat 90(3):414-427, doi:10.1162/rest.90.3.414.
MacKinnon & Webb (2017), J Appl Econometrics 32(2):233-254, doi:10.1002/jae.2508.
MacKinnon & Webb (2018), Econometrics J 21(2):114-135, doi:10.1111/ectj.12107.
Webb (2023), Can J Econ 56(3):986-1016, doi:10.1111/caje.12661.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, get_args

import numpy as np
import pandas as pd
import statsmodels.api as sm
from scipy import optimize, stats
from threadpoolctl import threadpool_limits

from bayes_pool import estimates
from bayes_pool.design import DiDDesign, PreparedDiD
from bayes_pool.errors import InputError
from bayes_pool.freq.ols import fit_clustered
from bayes_pool.freq.placebo import measured

Weights = Literal["webb", "rademacher"]
WEIGHTS: tuple[str, ...] = get_args(Weights)
_WEBB = np.array([-np.sqrt(1.5), -1.0, -np.sqrt(0.5), np.sqrt(0.5), 1.0, np.sqrt(1.5)])


def draw_weights(kind: Weights, n_clusters: int, n_boot: int,
                 rng: np.random.Generator) -> np.ndarray:
    """Cluster weights, shape ``(n_clusters, n_boot)``: Webb six-point or Rademacher."""
    if kind == "webb":
        return rng.choice(_WEBB, size=(n_clusters, n_boot))
    if kind == "rademacher":
        return rng.choice(np.array([-1.0, 1.0]), size=(n_clusters, n_boot))
    raise ValueError(f"weights must be one of {sorted(WEIGHTS)}, got {kind!r}")


@dataclass
class WildBootstrapResult:
    """The LPM coefficient, its clustered and iid SEs, and the WCR bootstrap p-value and CI."""

    design: DiDDesign
    coef: float
    se_clustered: float
    se_iid: float
    p_clustered: float
    p_value: float
    ci: tuple[float, float]
    n_boot: int
    weights: str
    n_clusters: int
    n_treated_clusters: int
    n_obs: int
    seed: int

    def tidy(self, *, study: str, table: str = "inference", column: str = "") -> pd.DataFrame:
        """Rows: ``beta_lpm`` (clustered SE), ``se_clustered``, ``se_iid`` and ``wcb_p_value``
        (whose ``ci_low``/``ci_high`` are the bootstrap CI of the coefficient)."""
        d = self.design
        z = stats.t.ppf(0.5 + estimates.CI_PROB / 2, self.n_clusters - 1)
        base = dict(study=study, table=table, column=column, term=d.treatment,
                    source="frequentist", n_obs=self.n_obs)
        lpm = (f"linear probability TWFE (OLS, {d.unit} and {d.time} dummies); "
               f"{self.n_clusters} clusters, {self.n_treated_clusters} with treatment variation")
        boot = (f"{lpm}; wild cluster restricted bootstrap, {self.weights} weights, "
                f"{self.n_boot} draws, seed {self.seed}; CI by test inversion; with "
                f"{self.n_treated_clusters} treated clusters MacKinnon & Webb (2017, 2018) find "
                f"this test can under-reject severely: a cross-check, not a valid test"
                + measured("wild"))
        b, s = self.coef, self.se_clustered
        rows = [
            estimates.row(**base, quantity="beta_lpm", estimate=b, se=s, ci_low=b - z * s,
                          ci_high=b + z * s, p_value=self.p_clustered,
                          note=lpm + f"; CRV1 SE clustered by {d.unit} (fixest/reghdfe "
                                     f"small-sample factor, t({self.n_clusters - 1}) p-value)"
                               + measured("clustered_lpm")),
            estimates.row(**base, quantity="se_clustered", estimate=s, note=lpm),
            estimates.row(**base, quantity="se_iid", estimate=self.se_iid, note=lpm),
            estimates.row(**base, quantity="wcb_p_value", estimate=self.p_value,
                          ci_low=self.ci[0], ci_high=self.ci[1], p_value=self.p_value,
                          note=boot),
        ]
        return estimates.frame(rows)


def wild_cluster_bootstrap(*args, **kwargs) -> WildBootstrapResult:
    """See :func:`_wild_cluster_bootstrap`; runs with one BLAS thread (small matrices)."""
    with threadpool_limits(limits=1):
        return _wild_cluster_bootstrap(*args, **kwargs)


def _wild_cluster_bootstrap(data: PreparedDiD | pd.DataFrame, design: DiDDesign | None = None, *,
                           seed: int, n_boot: int = 999, weights: Weights = "webb",
                           null: float = 0.0, ci: bool = True) -> WildBootstrapResult:
    """WCR bootstrap p-value (and CI) for the treatment coefficient of the LPM TWFE model.

    Parameters
    ----------
    data
        A :class:`~bayes_pool.design.PreparedDiD`, or a frame to prepare with ``design``.
    seed
        Seed of the cluster weights (one set of weights serves the p-value and the CI).
    n_boot
        Bootstrap draws (999 is the usual minimum for a p-value near 0.05).
    weights
        ``"webb"`` (default; use it with few treated clusters) or ``"rademacher"``.
    null
        The null value of the coefficient for the p-value.
    ci
        Also invert the test for a 95% (:data:`~bayes_pool.estimates.CI_PROB`) interval.
    """
    if weights not in WEIGHTS:
        raise ValueError(f"weights must be one of {sorted(WEIGHTS)}, got {weights!r}")
    if isinstance(data, PreparedDiD):
        prepared = data
    elif design is None:
        raise InputError("wild_cluster_bootstrap() got a DataFrame without a design")
    else:
        prepared = design.prepare(data)
    d = prepared.design
    frame = prepared.frame
    y = frame[d.outcome].to_numpy(dtype=float)
    codes, _ = pd.factorize(frame[d.unit], sort=True)
    G = int(codes.max()) + 1
    dummies = [pd.get_dummies(frame[c], prefix=c, drop_first=True, dtype=float)
               for c in (d.unit, d.time)]
    Z = pd.concat([pd.Series(1.0, index=frame.index, name="const"),
                   frame[list(d.covariates)].astype(float), *dummies], axis=1).to_numpy()
    D = frame[d.treatment].to_numpy(dtype=float)
    X = np.column_stack([D, Z])
    n, k = X.shape

    # CRV1 as fixest/reghdfe (the unit dummies, nested in the clusters, left out of K; t(G-1))
    nested = G - 1
    fit = fit_clustered(sm.OLS(y, X), codes, convention="crv1", nested=nested)
    se_iid = float(sm.OLS(y, X).fit().bse[0])
    coef, se_clu = float(fit.params[0]), float(fit.bse[0])

    # FWL: D residualised on everything else; restricted residuals are linear in beta0
    d_t = D - Z @ np.linalg.lstsq(Z, D, rcond=None)[0]
    e_0 = y - Z @ np.linalg.lstsq(Z, y, rcond=None)[0]       # restricted residuals at beta0 = 0
    dd = float(d_t @ d_t)
    small = G / (G - 1) * (n - 1) / (n - k + nested)
    XtX_inv = np.linalg.inv(X.T @ X)
    W = _cluster_sum(d_t[:, None] * X, codes, G)               # G x k: sum_i d~_i x_i'

    rng = np.random.default_rng(seed)
    V = draw_weights(weights, G, n_boot, rng)                  # G x B

    def parts(e):
        """Per-cluster pieces of t*(beta0) for restricted residuals ``e`` (linear in beta0)."""
        a = _cluster_sum(d_t * e, codes, G)                    # d~_g' e_g
        S = _cluster_sum(X * e[:, None], codes, G).T           # k x G: X_g' e_g
        num = a @ V                                            # B: sum_g v_g d~_g'e_g
        score = a[:, None] * V - W @ (XtX_inv @ (S @ V))       # G x B: d~_g' M_X(e v)_g
        return num, score

    num0, score0 = parts(e_0)
    num1, score1 = parts(d_t)  # e(beta0) = e_0 - beta0 * d~ (M_Z D = d~)

    def p_at(beta0: float) -> float:
        num = num0 - beta0 * num1
        score = score0 - beta0 * score1
        t_star = num / np.sqrt(small * (score ** 2).sum(axis=0))
        t = (coef - beta0) / se_clu
        return float(np.mean(np.abs(t_star) >= abs(t)))

    p = p_at(null)
    interval = (np.nan, np.nan)
    if ci:
        interval = _invert(p_at, coef, se_clu, 1 - estimates.CI_PROB)
    n_treated = int((frame.groupby(d.unit)[d.treatment].nunique() > 1).sum())
    return WildBootstrapResult(design=d, coef=coef, se_clustered=se_clu, se_iid=se_iid,
                               p_clustered=float(fit.pvalues[0]), p_value=p, ci=interval,
                               n_boot=n_boot, weights=weights, n_clusters=G,
                               n_treated_clusters=n_treated, n_obs=n, seed=seed)


def _cluster_sum(values: np.ndarray, codes: np.ndarray, G: int) -> np.ndarray:
    """Sum rows of ``values`` within clusters: shape ``(G,)`` or ``(G, k)``."""
    out = np.zeros((G,) + values.shape[1:])
    np.add.at(out, codes, values)
    return out


def _invert(p_at, coef: float, se: float, alpha: float) -> tuple[float, float]:
    """Bounds where the bootstrap p-value crosses ``alpha``, searched outward from ``coef``."""
    def f(b):
        return p_at(b) - alpha

    bounds = []
    for sign in (-1, 1):
        step = 2 * se
        far = coef + sign * step
        for _ in range(30):
            if f(far) < 0:
                break
            step *= 2
            far = coef + sign * step
        else:
            bounds.append(sign * np.inf)
            continue
        bounds.append(optimize.brentq(f, coef, far, xtol=se * 1e-4) if sign > 0
                      else optimize.brentq(f, far, coef, xtol=se * 1e-4))
    return float(bounds[0]), float(bounds[1])
