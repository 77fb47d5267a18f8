r"""Centred or non-centred unit intercepts: the same posterior, written two ways for NUTS.

Non-centred (``u_k = sigma * z_k``, Bambi's default) suits units whose data say little about
their own intercept: the posterior of ``u_k`` is then close to its prior and a centred
``u_k ~ N(0, sigma)`` makes a funnel. Centred suits units whose data pin ``u_k`` down: the
non-centred ``z_k`` then become tied to ``sigma`` instead. What decides is not a unit's row
count but the information its rows carry about its intercept relative to the spread of the
intercepts (Papaspiliopoulos, Roberts & Skold 2007; Betancourt & Girolami 2015):

.. math::

    I_k = \frac{\tau^2}{v_k}, \qquad v_k = \sigma^2 / n_k \ \text{(Gaussian)}, \quad
    v_k \approx 1 / (n_k\, p_k (1 - p_k)) \ \text{(logit)},

the ratio of the intercepts' variance :math:`\tau^2` to the sampling variance of a unit's
mean. With :math:`I_k > 1` the likelihood outweighs the prior (the posterior of ``u_k`` shrinks
by less than half) and the centred form is the better geometry. ``"auto"`` estimates
:math:`\tau^2` and :math:`v_k` before sampling by a one-way ANOVA of the outcome by unit (on
the empirical-logit scale for a 0/1 outcome; method of moments, :func:`unit_information`) and
centres when the median unit has :math:`I_k \ge` :data:`CENTRED_MIN_INFORMATION`. The one-way
residual also holds the period and treatment variation, so the estimate errs low (towards
non-centring, the safe side for weak units). A panel of 400 counties x 5 years whose county SD
(1.5) dwarfs the residual SD (0.1) has :math:`I_k = 1125` (estimated ~400) with 5 rows a unit:
row counts would call for non-centring and give divergences. The benchmark logit (29
provinces, median 165 rows, empirical-logit information 26) stays centred, as under the old
row rule (where centred gave 4x the smallest bulk ESS of non-centred, 2026-12-04). Without an
outcome (a caller that does not pass one) ``"auto"`` falls back to that row rule: centred when
the median unit has :data:`CENTRED_MIN_MEDIAN_ROWS` rows or more. The convergence gate still
checks every fit.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

CENTRED_MIN_MEDIAN_ROWS = 100
"""Row rule, used only when no outcome is given."""

CENTRED_MIN_INFORMATION = 1.0
"""Centre when the median unit's information ratio :math:`I_k` is at least this."""

MIN_TAU2 = 1e-6
"""Floor of the estimated intercept variance (a method-of-moments estimate can be <= 0)."""


@dataclass(frozen=True)
class Parameterization:
    """The choice for one fit and why (recorded in the run's manifest)."""

    noncentered: bool
    setting: str
    reason: str
    median_information: float | None = None

    def to_dict(self) -> dict:
        return {"unit_intercepts": "noncentered" if self.noncentered else "centered",
                "setting": self.setting, "reason": self.reason,
                "median_information": self.median_information}


def _levels(frame: pd.DataFrame, group, outcome: str, family: str
            ) -> tuple[np.ndarray, np.ndarray]:
    """Each group's outcome level and its sampling variance (a 0/1 outcome on the
    empirical-logit scale, whose sampling variance is :math:`1/(s + 1/2) + 1/(n - s + 1/2)`;
    a continuous one as its mean, with the pooled within-group variance over :math:`n`)."""
    y = frame[outcome].astype(float)
    g = y.groupby(np.asarray(group))
    n, total = g.size().to_numpy(dtype=float), g.sum().to_numpy(dtype=float)
    if family == "bernoulli":
        return np.log((total + 0.5) / (n - total + 0.5)), 1 / (total + 0.5) + 1 / (n - total + 0.5)
    resid = y - g.transform("mean")
    sigma2 = float((resid ** 2).sum()) / max(len(y) - len(n), 1)
    return total / n, max(sigma2, np.finfo(float).tiny) / n


def unit_information(frame: pd.DataFrame, unit: str, outcome: str, family: str) -> np.ndarray:
    """Per-unit information ratio :math:`I_k = \\hat\\tau^2 / \\hat v_k` from a one-way ANOVA
    of ``outcome`` by ``unit`` (method of moments)."""
    level, v = _levels(frame, frame[unit].to_numpy(), outcome, family)
    tau2 = max(float(np.var(level, ddof=1)) - float(np.mean(v)), MIN_TAU2) \
        if len(level) > 1 else MIN_TAU2
    return tau2 / v


def cell_information(frame: pd.DataFrame, unit: str, time: str, outcome: str, family: str
                     ) -> np.ndarray:
    """Information ratio of the unit x time cells, :math:`\\hat\\tau_w^2 / \\hat v_{kt}`:
    :math:`\\tau_w^2` is the spread of the cell levels around their unit's and their period's
    mean levels (so neither the unit intercepts nor the period effects count), less the
    sampling variance, by the method of moments (two-way residuals of an
    :math:`m \\times T` table have :math:`E[r^2] = (1 - 1/m)(1 - 1/T)(\\tau_w^2 + v)`)."""
    keys = frame[[unit, time]].astype(str).agg(":".join, axis=1).to_numpy()
    level, v = _levels(frame, keys, outcome, family)
    cells = frame.groupby(keys, sort=True)[[unit, time]].first()
    lv = pd.Series(level, index=cells.index)
    by_unit, by_time = lv.groupby(cells[unit].to_numpy()), lv.groupby(cells[time].to_numpy())
    resid = (lv - by_unit.transform("mean") - by_time.transform("mean") + lv.mean()).to_numpy()
    m = by_unit.transform("size").to_numpy(dtype=float)
    t = by_time.transform("size").to_numpy(dtype=float)
    keep = (m > 1) & (t > 1)
    if not keep.any():
        return np.full(len(level), MIN_TAU2) / v
    scale = (1 - 1 / m[keep]) * (1 - 1 / t[keep])
    tau2 = max(float(np.mean(resid[keep] ** 2 / scale)) - float(np.mean(v)), MIN_TAU2)
    return tau2 / v


def choose(frame: pd.DataFrame, unit: str, setting: str = "auto", *, outcome: str | None = None,
           family: str | None = None) -> Parameterization:
    """Centred or non-centred unit intercepts for a fit on ``frame``, with the reason."""
    if setting != "auto":
        return Parameterization(setting == "noncentered", setting, f"set in the spec ({setting})")
    if outcome is None or family is None:
        median_rows = float(frame[unit].value_counts().median())
        nc = median_rows < CENTRED_MIN_MEDIAN_ROWS
        return Parameterization(nc, setting, f"no outcome given: median unit has "
                                f"{median_rows:g} rows ({'<' if nc else '>='} "
                                f"{CENTRED_MIN_MEDIAN_ROWS})")
    info = float(np.median(unit_information(frame, unit, outcome, family)))
    nc = info < CENTRED_MIN_INFORMATION
    return Parameterization(
        nc, setting, f"median unit information tau^2/v_k = {info:.3g} "
        f"({'<' if nc else '>='} {CENTRED_MIN_INFORMATION:g}; one-way ANOVA of {outcome} by "
        f"{unit}{', empirical-logit scale' if family == 'bernoulli' else ''})", info)


def choose_after_unit_terms(frame: pd.DataFrame, unit: str, setting: str = "auto", *,
                            outcome: str, family: str, unit_terms: Sequence[str] = ()
                            ) -> Parameterization:
    """:func:`choose` for intercepts partially pooled around unit-level terms (correlated
    random effects): ``auto`` judges the intercepts' spread *left after* those terms, the
    information ratio with :math:`\\hat\\tau^2` the residual variance of a between regression
    of the unit levels (unit means of the outcome, empirical logits for 0/1) on
    ``unit_terms`` (columns of ``frame``, constant within units), dof-corrected, less the
    levels' mean sampling variance (method of moments).

    In the confounded-levels world (tests/worlds.py, seed 14) the unit means explain nearly
    all of the levels (posterior unit SD 0.07-0.10): judged on the one-way spread
    (information 27) the intercepts were centred, and the ETWFE gave R-hat 2.2 and 38
    divergences, the DiD sampled through its levels 103 divergences in 1,000 draws; after the
    terms the information is 0.22, non-centred, and neither diverges. The benchmark logit's
    provinces keep 41 (centred)."""
    choice = choose(frame, unit, setting, outcome=outcome, family=family)
    if setting != "auto" or not unit_terms:
        return choice
    level, v = _levels(frame, frame[unit].to_numpy(), outcome, family)
    by = frame.groupby(unit, sort=True)  # the order of _levels' groups
    X = np.column_stack([np.ones(len(level)), by[list(unit_terms)].first().to_numpy(float)])
    coef, *_ = np.linalg.lstsq(X, level, rcond=None)
    dof = len(level) - np.linalg.matrix_rank(X)
    resid = level - X @ coef
    tau2 = max(float(resid @ resid) / dof - float(np.mean(v)), MIN_TAU2) if dof > 0 \
        else MIN_TAU2
    info = float(np.median(tau2 / v))
    nc = info < CENTRED_MIN_INFORMATION
    return Parameterization(
        bool(nc), setting, f"median unit information tau^2/v_k = {info:.3g} with tau^2 the "
        f"spread of the unit levels left after the unit-level terms "
        f"({'<' if nc else '>='} {CENTRED_MIN_INFORMATION:g}; between regression of the "
        f"{'empirical logits' if family == 'bernoulli' else 'means'} of {outcome} by {unit} "
        f"on {len(unit_terms)} unit-level terms)", info)


def choose_with_cells(frame: pd.DataFrame, unit: str, time: str, setting: str = "auto", *,
                      outcome: str, family: str, unit_terms: Sequence[str] = ()
                      ) -> Parameterization:
    """:func:`choose` for a model with unit intercepts and unit x time effects. Bambi has one
    ``noncentered`` flag for every group term, so the group term with less information
    decides: non-centred if either median information ratio is below
    :data:`CENTRED_MIN_INFORMATION`. The cells almost always decide (a few dozen rows each
    and a small shock SD): on the benchmark null world (seed 1, 4000 rows, 87 cells) the
    centred form took 43 leapfrog steps a draw and the non-centred one 16, both without
    divergences."""
    units = choose_after_unit_terms(frame, unit, setting, outcome=outcome, family=family,
                                    unit_terms=unit_terms)
    if setting != "auto":
        return units
    cell = float(np.median(cell_information(frame, unit, time, outcome, family)))
    nc = units.noncentered or cell < CENTRED_MIN_INFORMATION
    return Parameterization(
        nc, setting, f"{units.reason}; median unit x time cell information tau_w^2/v_kt = "
        f"{cell:.3g} ({'<' if cell < CENTRED_MIN_INFORMATION else '>='} "
        f"{CENTRED_MIN_INFORMATION:g}); one flag for both terms, so "
        f"{'non-centred' if nc else 'centred'}", units.median_information)


def noncentered(frame: pd.DataFrame, unit: str, setting: str = "auto", *,
                outcome: str | None = None, family: str | None = None) -> bool:
    """Bambi's ``noncentered`` flag for the unit intercepts of a fit on ``frame``
    (:func:`choose`)."""
    return choose(frame, unit, setting, outcome=outcome, family=family).noncentered
