r"""A test of the indirect effect that holds with few switching units: the treatment ->
mediator path by studentized randomization inference, joined with the mediator -> outcome
path's clustered test (joint significance).

Why. With unit fixed effects the path ``a`` is identified by the few units whose treatment
changes (three provinces in the pooling-did design). Clustered SEs, the Sobel test built on
them and a cluster bootstrap that resamples units then rest on three clusters, which the
literature shows fails (MacKinnon & Webb 2017, 2018; Conley & Taber 2011); in the bootstrap
most replicates duplicate a switcher. The path ``b`` is identified by within-unit variation of
the mediator in every unit, so its clustered test has all the clusters behind it.

How. ``a``'s statistic is its cluster-robust t (RI-t, MacKinnon & Webb 2020). Placebo
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
import statsmodels.api as sm
from threadpoolctl import threadpool_limits

from bayes_pool.errors import InputError
from bayes_pool.freq.mediation import PreparedMediation, _matrices


RI_NOTE = ("plug-in natural indirect effect; p of the joint-significance test max(p_a, p_b): "
           "p_a = RI-t of treatment -> mediator over {draws} placebo adoptions with the data's "
           "switcher count and adoption periods ({p_a:.3f}), p_b = clustered test of mediator "
           "-> outcome ({p_b:.3f}); no interval")
"""Row note of ``indirect_ri`` (formatted with ``draws``, ``p_a``, ``p_b``)."""


@dataclass(frozen=True)
class IndirectRI:
    """The joint-significance test of the indirect effect: ``p_a`` (RI-t of the treatment ->
    mediator path, ``draws`` placebo assignments), ``p_b`` (clustered test of the mediator ->
    outcome path) and ``p_value = max(p_a, p_b)``."""

    t_a: float
    p_a: float
    p_b: float
    draws: int

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


def placebo_treatment(prepared: PreparedMediation, rng: np.random.Generator) -> np.ndarray:
    """One placebo treatment column: units whose treatment never changes keep it; the data's
    adoption periods go to as many units drawn without replacement from the switchers and
    the never-treated units, every other unit of that pool is untreated."""
    d = prepared.design
    f = prepared.frame
    unit_treat = f.groupby(d.unit)[d.treatment]
    never = unit_treat.max().index[unit_treat.max() == 0]
    pool = np.array(sorted({*prepared.switchers, *never}))
    periods = list(adoption_periods(prepared).values())
    chosen = rng.choice(pool, size=len(periods), replace=False)
    adopt = dict(zip(chosen, periods))
    placebo = f[d.treatment].to_numpy().copy()
    in_pool = f[d.unit].isin(pool).to_numpy()
    start = f[d.unit].map(adopt)
    placebo[in_pool] = (start[in_pool].notna() & (f[d.time][in_pool] >= start[in_pool])).astype(int)
    return placebo


def _t_stat(m: np.ndarray, x: np.ndarray, groups: np.ndarray) -> float:
    fit = sm.OLS(m, x).fit(cov_type="cluster", cov_kwds={"groups": groups})
    return float(fit.params[0] / fit.bse[0])


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
    with threadpool_limits(limits=1, user_api="blas"):
        t_obs = _t_stat(m, x_med, groups)
        t_draws = np.empty(draws)
        for i in range(draws):
            x = x_med.copy()
            x[:, 0] = placebo_treatment(prepared, rng)
            t_draws[i] = _t_stat(m, x, groups)
    p_a = (1 + np.sum(np.abs(t_draws) >= abs(t_obs))) / (1 + draws)
    return IndirectRI(t_a=t_obs, p_a=float(p_a), p_b=float(p_b), draws=draws)
