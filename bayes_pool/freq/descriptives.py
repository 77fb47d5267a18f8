"""Means and SDs of variables by a binary group, with the difference between the groups.

The descriptive table of most observational papers (Table 1 of Ma et al. 2023, Table 2 of Zhang
& Chen 2024): for each variable, mean and SD in the whole sample and in each group, and the
difference of the group means with a two-sample t test (pooled variance, as Stata's ``ttest``
and SPSS's default line). Disclosure control: a cell with fewer than ``min_cell`` respondents
has its statistics suppressed (NaN, with a note), so the output never describes a handful of
people.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd
from scipy import stats

from bayes_pool import estimates
from bayes_pool.errors import InputError

MIN_CELL = 10
"""Cells with fewer respondents than this are suppressed."""


def _suppressed(n: int, min_cell: int) -> str:
    return f"suppressed: {n} < {min_cell} respondents" if n < min_cell else ""


def group_descriptives(frame: pd.DataFrame, variables: Sequence[str], group: str, *,
                       study: str, table: str, columns: Mapping[object, str],
                       total: str | None = "total", difference: str | None = None,
                       equal_var: bool = True, min_cell: int = MIN_CELL) -> pd.DataFrame:
    """Estimates rows ``mean`` and ``sd`` of each variable, overall and by group.

    Parameters
    ----------
    variables : sequence of str
        Numeric columns to describe; each uses its own non-missing rows.
    group : str
        Column holding the two group codes.
    columns : mapping
        Group code -> column label, exactly two entries, the first being the group whose mean
        the difference starts from (e.g. ``{1: "treatment", 0: "control"}``).
    total : str or None
        Column label of the whole-sample statistics; None leaves them out.
    difference : str or None
        Column label of the ``diff`` rows (first group's mean minus the second's, with SE,
        95% CI and the t-test p-value); None leaves them out.
    equal_var : bool
        Pooled-variance t test (True) or Welch's (False).
    min_cell : int
        Minimum number of respondents of a reported cell.
    """
    if len(columns) != 2:
        raise InputError(f"columns must map exactly two group codes to labels; got {dict(columns)}")
    missing = [c for c in [group, *variables] if c not in frame.columns]
    if missing:
        raise InputError(f"column(s) {missing} not in the frame; columns: {sorted(frame.columns)}")
    codes = list(columns)
    present = frame[group].dropna()
    unknown = sorted(set(present.unique()) - set(codes), key=str)
    if unknown:
        raise InputError(f"group column {group!r} has values {unknown} "
                         f"({int(present.isin(unknown).sum())} rows) besides {codes}")
    rows = []
    for var in variables:
        if not pd.api.types.is_numeric_dtype(frame[var]):
            raise InputError(f"column {var!r} is not numeric; recode it before describing it")
        data = frame[[var, group]].dropna()
        cells = [(total, data[var].to_numpy(float))] if total else []
        if var != group:  # the group's own mean within a group is trivially its code
            cells += [(columns[c], data.loc[data[group] == c, var].to_numpy(float))
                      for c in codes]
        for label, x in cells:
            why = _suppressed(len(x), min_cell)
            for q, value in (("mean", x.mean() if len(x) else np.nan),
                             ("sd", x.std(ddof=1) if len(x) > 1 else np.nan)):
                rows.append(estimates.row(study=study, table=table, column=label, term=var,
                                          quantity=q, source="frequentist",
                                          estimate=np.nan if why else float(value),
                                          n_obs=len(x), note=why))
        if difference and var != group:
            a, b = (data.loc[data[group] == c, var].to_numpy(float) for c in codes)
            rows.append(_difference(a, b, var=var, study=study, table=table, column=difference,
                                    equal_var=equal_var, min_cell=min_cell))
    return estimates.frame(rows)


def _difference(a: np.ndarray, b: np.ndarray, *, var: str, study: str, table: str, column: str,
                equal_var: bool, min_cell: int) -> dict:
    """Row ``diff``: mean(a) - mean(b) with the two-sample t test's SE, CI and p."""
    why = _suppressed(min(len(a), len(b)), min_cell)
    if why or len(a) < 2 or len(b) < 2:
        return estimates.row(study=study, table=table, column=column, term=var, quantity="diff",
                             source="frequentist", estimate=np.nan, n_obs=len(a) + len(b),
                             note=why or "fewer than 2 respondents in a group")
    res = stats.ttest_ind(a, b, equal_var=equal_var)
    ci = res.confidence_interval(estimates.CI_PROB)
    diff = float(a.mean() - b.mean())
    va, vb = a.var(ddof=1), b.var(ddof=1)
    if equal_var:
        pooled = ((len(a) - 1) * va + (len(b) - 1) * vb) / (len(a) + len(b) - 2)
        se = np.sqrt(pooled * (1 / len(a) + 1 / len(b)))
    else:
        se = np.sqrt(va / len(a) + vb / len(b))
    return estimates.row(study=study, table=table, column=column, term=var, quantity="diff",
                         source="frequentist", estimate=diff, se=float(se), ci_low=float(ci.low),
                         ci_high=float(ci.high), p_value=float(res.pvalue),
                         n_obs=len(a) + len(b),
                         note="two-sample t test, " + ("pooled" if equal_var else "Welch")
                         + " variance")
