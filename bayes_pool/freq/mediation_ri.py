r"""A test of the indirect effect that holds with few switching units: the treatment ->
mediator path by studentized randomization inference, joined with the mediator -> outcome
path's clustered test (joint significance).

Why. With unit fixed effects the path ``a`` is identified by the few units whose treatment
changes (three provinces in the pooling-did design). Clustered SEs, the Sobel test built on
them and a cluster bootstrap that resamples units then rest on three clusters, which the
literature shows fails (MacKinnon & Webb 2017, 2018; Conley & Taber 2011); in the bootstrap
most replicates duplicate a switcher. The path ``b`` is identified by within-unit variation of
the mediator in every unit, so its clustered test has all the clusters behind it.

How. ``a``'s statistic is its t from the fixed-effects mediator regression studentized by
the heteroskedasticity-robust (HC1) SE. The cluster-robust t of RI-t (MacKinnon & Webb 2020)
was tried first: with three treated clusters its null distribution depends on how large
the treated clusters are, and where the switchers are smaller than the units a placebo
draw picks (as in the test world) the real assignment's t is wider than the placebo ones and
the test over-rejected (docs/inference_mediation.md); the HC1 t's spread does not depend on
a unit's size when rows are independent, so the assignments stay exchangeable. Placebo
assignments keep the units whose treatment never changes as they are and give the data's
adoption periods to as many units drawn at random from the rest (the switchers and the
never-treated), so each draw has the data's number of switchers and adoption periods; the
mediator step is refitted with the placebo treatment and
:math:`p_a = (1 + \#\{|t_b| \ge |t|\}) / (1 + B)`. The indirect effect :math:`ab` is zero when
either path is, so it is rejected only when both are (intersection-union, MacKinnon,
Lockwood, Hoffman, West & Sheets 2002): :math:`p = \max(p_a, p_b)`. The null of ``a``'s RI is
the sharp null of no treatment effect on the mediator in any row; treatment is assumed
absorbing (a unit stays treated from its first treated period on).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from threadpoolctl import threadpool_limits

from bayes_pool.design.mediation import PreparedMediation
from bayes_pool.errors import InputError
from bayes_pool.freq.mediation import _matrices


RI_SIZE = ("null-world size at 5% with 3 switchers (200 seeds per world, exact 95% CI): "
           "6.0% (3.1-10.2%) without and 3.5% (1.4-7.1%) with region x wave shocks, "
           "docs/inference_mediation.md")
"""What the null-world study (docs/inference_mediation.md) measured for this test."""
RI_NOTE = ("plug-in natural indirect effect; p of the joint-significance test max(p_a, p_b): "
           "p_a = randomization test of treatment -> mediator (HC1 t) over {draws} placebo "
           "adoptions with the data's switcher count and adoption periods ({p_a:.3f}), p_b = "
           "clustered test of mediator -> outcome ({p_b:.3f}); no interval; " + RI_SIZE)
"""Row note of ``indirect_ri`` (formatted with ``draws``, ``p_a``, ``p_b``)."""


@dataclass(frozen=True)
class IndirectRI:
    """The joint-significance test of the indirect effect: ``p_a`` (randomization test of the
    treatment -> mediator path's HC1 t over ``draws`` placebo assignments; ``p_a_cluster``
    the same with the cluster-robust t, for comparison), ``p_b`` (clustered test of the
    mediator -> outcome path) and ``p_value = max(p_a, p_b)``."""

    t_a: float
    p_a: float
    p_b: float
    draws: int
    p_a_cluster: float = float("nan")

    @property
    def p_value(self) -> float:
        return max(self.p_a, self.p_b)


def adoption_periods(prepared: PreparedMediation) -> dict[str, str]:
    """First treated period of each switching unit (periods in the model's sorted order)."""
    d = prepared.design
    f = prepared.frame
    treated = f[f[d.treatment] == 1]
    first = treated.groupby(d.unit)[d.time].min()
    return {u: first[u] for u in prepared.switchers}


class _Placebos:
    """Unit-level arrays for drawing placebo treatment columns quickly."""

    def __init__(self, prepared: PreparedMediation):
        d = prepared.design
        f = prepared.frame
        self.unit_code, units = pd.factorize(f[d.unit], sort=True)
        self.time_code, times = pd.factorize(f[d.time], sort=True)
        treat = f[d.treatment].to_numpy()
        self.observed = treat
        ever = np.bincount(self.unit_code, weights=treat, minlength=len(units)) > 0
        switch = np.isin(units, prepared.switchers)
        self.pool = np.flatnonzero(switch | ~ever)  # switchers and never-treated units
        self.in_pool = np.isin(self.unit_code, self.pool)
        position = {t: i for i, t in enumerate(times)}
        self.periods = np.array([position[t] for t in adoption_periods(prepared).values()])
        self.n_units = len(units)

    def draw(self, rng: np.random.Generator) -> np.ndarray:
        start = np.full(self.n_units, np.iinfo(np.int64).max)
        start[rng.choice(self.pool, size=len(self.periods), replace=False)] = self.periods
        placebo = self.observed.copy()
        placebo[self.in_pool] = (self.time_code >= start[self.unit_code])[self.in_pool]
        return placebo


def placebo_treatment(prepared: PreparedMediation, rng: np.random.Generator) -> np.ndarray:
    """One placebo treatment column: units whose treatment never changes keep it; the data's
    adoption periods go to as many units drawn without replacement from the switchers and
    the never-treated units, every other unit of that pool is untreated."""
    return _Placebos(prepared).draw(rng)


def t_statistics(m: np.ndarray, controls: np.ndarray, treatments: np.ndarray,
                 groups: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """OLS t of each treatment column (n, B) in ``m ~ treatment + controls``, studentized by
    the HC1 and by the cluster-robust SE (statsmodels' small-sample factors), for all B
    columns at once by partialling the controls out (Frisch-Waugh-Lovell; equal to B
    statsmodels fits, see the test)."""
    n, k = controls.shape[0], controls.shape[1] + 1
    q, _ = np.linalg.qr(controls)
    m_res = m - q @ (q.T @ m)
    d_res = treatments - q @ (q.T @ treatments)
    sxx = (d_res**2).sum(axis=0)
    coef = d_res.T @ m_res / sxx
    score = d_res * (m_res[:, None] - d_res * coef)
    var_hc1 = (score**2).sum(axis=0) / sxx**2 * n / (n - k)
    g = groups.max() + 1
    by_group = np.zeros((g, treatments.shape[1]))
    np.add.at(by_group, groups, score)
    var_cl = (by_group**2).sum(axis=0) / sxx**2 * g / (g - 1) * (n - 1) / (n - k)
    return coef / np.sqrt(var_hc1), coef / np.sqrt(var_cl)


def _ri_p(t_obs: float, t_draws: np.ndarray) -> float:
    return float((1 + np.sum(np.abs(t_draws) >= abs(t_obs))) / (1 + len(t_draws)))


def indirect_ri(prepared: PreparedMediation, p_b: float, *, draws: int = 199,
                seed: int | np.random.SeedSequence | None = None) -> IndirectRI:
    """Joint-significance test of the indirect effect with ``a`` by RI-t over ``draws``
    placebo assignments; ``p_b`` is the outcome step's clustered p-value of the mediator.
    Needs unit and time columns (fixed effects) and at least one never-treated unit."""
    d = prepared.design
    if not (d.unit and d.time):
        raise InputError("the randomization test of the indirect effect needs unit and time "
                         "columns (placebo adoptions are drawn over units and periods)")
    f = prepared.frame
    if len(prepared.switchers) >= f[d.unit].nunique():
        raise InputError(f"every {d.unit!r} switches treatment: no unit is left to receive a "
                         "placebo adoption")
    rng = np.random.default_rng(seed)
    x_med, _ = _matrices(prepared)
    m = f[d.mediator].to_numpy(float)
    groups = pd.factorize(f[d.unit])[0]
    placebos = _Placebos(prepared)
    chunk = max(1, int(4e6 // len(m)))  # placebo columns per batch: bounds the memory
    t = []
    with threadpool_limits(limits=1, user_api="blas"):
        observed = t_statistics(m, x_med[:, 1:], x_med[:, :1], groups)
        for start in range(0, draws, chunk):
            cols = [placebos.draw(rng) for _ in range(min(chunk, draws - start))]
            t.append(t_statistics(m, x_med[:, 1:], np.column_stack(cols).astype(float), groups))
    t_hc1, t_cl = (np.concatenate([part[i] for part in t]) for i in (0, 1))
    return IndirectRI(t_a=float(observed[0][0]), p_a=_ri_p(observed[0][0], t_hc1),
                      p_b=float(p_b), draws=draws, p_a_cluster=_ri_p(observed[1][0], t_cl))
