r"""Correlated random effects: unit means of the time-varying regressors (Mundlak 1978).

Exchangeable unit intercepts :math:`u_k \sim N(0, \sigma_u^2)` assume that a unit's level is
unrelated to its regressors. In the studies' designs it is not: the always-treated provinces
(treatment mean 1) sit at a different level from the never-treated ones, and with only a few
switchers the shrunken intercepts leave part of that level difference to the treatment's
coefficient. Writing the intercepts around the unit means of the regressors,

.. math::

    u_k = \bar x_k \xi + e_k, \qquad e_k \sim N(0, \sigma_u^2),

removes it: in a linear model the coefficient of :math:`x` then equals the within (unit
fixed-effects) estimate exactly (Mundlak 1978); with unbalanced periods, as in repeated
cross-sections, the unit means of the time dummies are needed too (Wooldridge 2021, Sec. 6).
In a logit it is the correlated random effects model (Chamberlain 1980; Wooldridge 2023),
whose slope is close to the fixed-effects logit when units have many rows each.

The means are unit-level variables, so a mean that is constant across units or a linear
combination of other means (and the intercept) carries nothing and would only make the
posterior a ridge; :func:`unit_means` drops those and says why.

References
----------
Mundlak, Y. (1978). On the pooling of time series and cross section data. *Econometrica*
46(1), 69-85. Wooldridge, J. M. (2021). Two-way fixed effects, the two-way Mundlak regression,
and difference-in-differences estimators. SSRN 3906345.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Literal, get_args

import numpy as np
import pandas as pd

from bayes_pool.errors import SpecError

UnitEffects = Literal["correlated", "exchangeable", "fixed"]
UNIT_EFFECTS: tuple[str, ...] = get_args(UnitEffects)
"""``correlated``: unit intercepts partially pooled around the unit means of the regressors
(the default); ``exchangeable``: ``(1|unit)`` alone, which mixes between-unit level
differences into the effects wherever levels and regressors are related; ``fixed``: one
dummy per unit as a common term with the coefficients' prior, nothing pooled -- for designs
with a handful of units (a 2x2 has two groups), whose unit SD the data cannot inform."""

MIN_POOLED_UNITS = 5
"""Fewest units a partially pooled (``correlated``/``exchangeable``) model is fitted with:
below it the unit SD is its prior, and :func:`check_pooling` asks for ``fixed``."""


def check_pooling(unit_effects: str, n_units: int, unit: str) -> None:
    """Raise :class:`~bayes_pool.errors.SpecError` when units are to be partially pooled but
    there are fewer than :data:`MIN_POOLED_UNITS` of them (an error rather than a silent
    switch to ``fixed``: the two models answer different questions, the user chooses)."""
    if unit_effects != "fixed" and n_units < MIN_POOLED_UNITS:
        raise SpecError(
            f"column {unit!r} has only {n_units} units: {unit_effects} unit effects partially "
            f"pool them, and with fewer than {MIN_POOLED_UNITS} units the unit SD is its "
            "prior. What to do: use fixed unit effects (--unit-effects fixed, "
            "unit_effects=\"fixed\", or [model] unit_effects = \"fixed\" in the spec).")

PREFIX = "mean_"
"""Prefix of the unit-mean columns (``mean_policy``, ``mean_year_2016``)."""

RANK_TOL = 1e-8


@dataclass(frozen=True)
class UnitMeans:
    """Unit means of regressors, row-aligned with the frame they were computed from.

    ``frame`` holds one column per kept mean; ``sources`` maps each to the regressor (or
    ``time == level``) it averages; ``dropped`` maps each regressor without a mean to why.
    """

    frame: pd.DataFrame
    sources: dict[str, str] = field(default_factory=dict)
    dropped: dict[str, str] = field(default_factory=dict)

    @property
    def columns(self) -> list[str]:
        return list(self.frame.columns)

    def to_dict(self) -> dict:
        """What the manifest records: the kept means and the dropped regressors."""
        return {"means": dict(self.sources), "dropped": dict(self.dropped)}


def mean_name(column: str, taken) -> str:
    """A formula-safe, unused name for the unit mean of ``column``."""
    name = PREFIX + re.sub(r"\W", "_", str(column))
    while name in taken:
        name += "_"
    return name


def unit_means(frame: pd.DataFrame, unit: str, regressors, *, time: str | None = None
               ) -> UnitMeans:
    """Unit means of ``regressors`` (numeric columns) and, with ``time``, of the dummies of
    every period but the first (sorted as the model's ``C(time)`` sorts them).

    Means constant across units, or collinear with the intercept and the means kept before
    them, are dropped (recorded in :attr:`UnitMeans.dropped`); the regressors' order decides
    which of a collinear set is kept, so list the treatment first.
    """
    units = frame[unit]
    candidates: dict[str, pd.Series] = {}
    sources: dict[str, str] = {}
    taken = set(map(str, frame.columns))
    for col in regressors:
        name = mean_name(col, taken)
        taken.add(name)
        candidates[name] = frame[col].astype(float).groupby(units).transform("mean")
        sources[name] = str(col)
    if time is not None:
        levels = sorted(pd.unique(frame[time].astype(str)))
        as_text = frame[time].astype(str)
        for level in levels[1:]:
            name = mean_name(f"{time}_{level}", taken)
            taken.add(name)
            candidates[name] = (as_text == level).astype(float).groupby(units).transform("mean")
            sources[name] = f"{time} == {level}"
    keep, dropped = [], {}
    by_unit = pd.DataFrame(candidates).groupby(units.to_numpy()).first()
    basis = np.ones((len(by_unit), 1))
    for name, values in by_unit.items():
        v = values.to_numpy(dtype=float)
        if np.ptp(v) < RANK_TOL:
            dropped[sources[name]] = "constant across units"
            continue
        trial = np.column_stack([basis, v])
        if np.linalg.matrix_rank(trial, tol=RANK_TOL * max(1.0, np.abs(trial).max())) \
                <= basis.shape[1]:
            dropped[sources[name]] = "collinear with the intercept and the other unit means"
            continue
        basis = trial
        keep.append(name)
    out = pd.DataFrame({n: candidates[n].to_numpy() for n in keep}, index=frame.index)
    return UnitMeans(frame=out, sources={n: sources[n] for n in keep}, dropped=dropped)


def with_unit_means(frame: pd.DataFrame, unit: str, regressors, *, time: str | None = None
                    ) -> tuple[pd.DataFrame, UnitMeans]:
    """``frame`` with the unit-mean columns of :func:`unit_means` appended, and the record."""
    means = unit_means(frame, unit, regressors, time=time)
    return pd.concat([frame, means.frame], axis=1), means
