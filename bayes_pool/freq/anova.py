r"""One-way analysis of variance of an outcome across the levels of a characteristic.

.. math::

    F = \frac{\sum_g n_g (\bar y_g - \bar y)^2 / (G - 1)}
             {\sum_g \sum_{i \in g} (y_i - \bar y_g)^2 / (N - G)}

computed by statsmodels' :func:`~statsmodels.stats.oneway.anova_oneway` (equal variances, the
classical F test), plus the descriptive line of each level: count, percentage, mean and SD of the
outcome. Levels with no respondents are reported with a count of 0 (no mean or SD) and left out
of the F test;
the mean and SD of a level with fewer than ``min_cell`` respondents are suppressed.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd
from statsmodels.stats.oneway import anova_oneway

from bayes_pool import estimates
from bayes_pool.errors import InputError

MIN_CELL = 10
"""Cells with fewer respondents than this have their outcome statistics suppressed."""


@dataclass
class AnovaResult:
    """The F test and the per-level description of one characteristic."""

    outcome: str
    factor: str
    F: float
    p_value: float
    df_between: float
    df_within: float
    levels: pd.DataFrame  # index: level label; columns code, n, pct, mean, sd, suppressed
    n_obs: int

    def tidy(self, *, study: str, table: str, overall: str = "all") -> pd.DataFrame:
        """Rows: ``F`` and ``p_value`` under column ``overall``; ``n``, ``pct``, ``mean``, ``sd``
        under each level's label. The term is the characteristic."""
        common = dict(study=study, table=table, term=self.factor, source="frequentist")
        note = f"one-way ANOVA of {self.outcome}; F({self.df_between:g}, {self.df_within:g})"
        rows = [
            estimates.row(**common, column=overall, quantity="F", estimate=self.F,
                          p_value=self.p_value, n_obs=self.n_obs, note=note),
            estimates.row(**common, column=overall, quantity="p_value", estimate=self.p_value,
                          p_value=self.p_value, n_obs=self.n_obs, note=note),
        ]
        for label, lv in self.levels.iterrows():
            n = int(lv["n"])
            rows.append(estimates.row(**common, column=str(label), quantity="n", estimate=n,
                                      n_obs=self.n_obs))
            rows.append(estimates.row(**common, column=str(label), quantity="pct",
                                      estimate=lv["pct"], n_obs=self.n_obs))
            if n == 0:  # no mean or SD of an empty level
                continue
            why = (f"suppressed: fewer than {MIN_CELL} respondents" if lv["suppressed"] else "")
            for q in ("mean", "sd"):
                rows.append(estimates.row(**common, column=str(label), quantity=q,
                                          estimate=lv[q], n_obs=n, note=why))
        return estimates.frame(rows)


def oneway_anova(frame: pd.DataFrame, outcome: str, factor: str, *,
                 levels: Mapping[object, str] | None = None,
                 min_cell: int = MIN_CELL) -> AnovaResult:
    """One-way ANOVA of ``outcome`` by ``factor`` on the rows where both are present.

    Parameters
    ----------
    levels : mapping, optional
        Code -> label of every level, in the order to report them (levels absent from the data
        are reported with n = 0). Default: the observed codes, sorted, labelled by their value.
    min_cell : int
        Levels with fewer respondents have their mean and SD suppressed (not their count).
    """
    for col in (outcome, factor):
        if col not in frame.columns:
            raise InputError(f"column {col!r} not in the frame; columns: {sorted(frame.columns)}")
    data = frame[[outcome, factor]].dropna()
    if not pd.api.types.is_numeric_dtype(data[outcome]):
        raise InputError(f"outcome {outcome!r} must be numeric")
    observed = sorted(data[factor].unique())
    if levels is None:
        levels = {code: str(code) for code in observed}
    unknown = sorted(set(observed) - set(levels))
    if unknown:
        counts = data[factor][data[factor].isin(unknown)].value_counts().to_dict()
        raise InputError(f"column {factor!r} has codes {unknown} (counts {counts}) that are not "
                         f"among the levels {list(levels)}")
    groups = [data.loc[data[factor] == code, outcome].to_numpy(float) for code in levels]
    nonempty = [g for g in groups if len(g)]
    if len(nonempty) < 2:
        raise InputError(f"column {factor!r} has fewer than 2 non-empty levels; no F test")
    res = anova_oneway(nonempty, use_var="equal")
    n_total = len(data)
    table = []
    for (code, label), g in zip(levels.items(), groups, strict=True):
        small = len(g) < min_cell
        table.append({"level": label, "code": code, "n": len(g),
                      "pct": 100 * len(g) / n_total,
                      "mean": np.nan if small else float(g.mean()),
                      "sd": np.nan if small or len(g) < 2 else float(g.std(ddof=1)),
                      "suppressed": small})
    return AnovaResult(outcome=outcome, factor=factor, F=float(res.statistic),
                       p_value=float(res.pvalue), df_between=float(res.df[0]),
                       df_within=float(res.df[1]),
                       levels=pd.DataFrame(table).set_index("level"), n_obs=n_total)


def anova_table(frame: pd.DataFrame, outcome: str, factors: Mapping[str, Mapping | None], *,
                study: str, table: str, min_cell: int = MIN_CELL) -> pd.DataFrame:
    """Estimates rows of one-way ANOVAs of ``outcome`` by each factor (factor -> its levels)."""
    return estimates.concat(*[
        oneway_anova(frame, outcome, f, levels=lv, min_cell=min_cell).tidy(study=study, table=table)
        for f, lv in factors.items()])
