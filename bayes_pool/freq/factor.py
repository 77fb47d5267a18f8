r"""A composite index from a varimax-rotated factor analysis of indicators.

The recipe of Ma et al. (2023) and of many survey indices: standardise the indicators, extract
``k`` common factors, rotate them by varimax, and weight each factor's scores by its share of the
variance the factors explain.

.. math::

    z_{ik} = \sum_j \lambda_{kj} F_{ij} + e_{ik}, \qquad
    v_j = \frac{1}{K}\sum_k \lambda_{kj}^2, \qquad
    I_i = s \cdot \operatorname{std}\Big(\sum_j \frac{v_j}{\sum_l v_l} \hat F_{ij}\Big)

``v_j`` is the factor's *variance contribution* (SPSS's "% of variance" of the rotated solution,
divided by 100), ``\hat F`` the factor scores, and the index is standardised to mean 0 and SD ``s``.

Factor order and sign are arbitrary in a factor analysis. When an assignment of indicators to
named factors is given, each fitted factor takes the name of the group of indicators it loads
most on (a one-to-one assignment, :func:`scipy.optimize.linear_sum_assignment`), and its sign is
set so that its own indicators load positively, reverse-keyed indicators (where a higher value
means *less* of the construct) negatively. The index then grows with the construct.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.optimize import linear_sum_assignment
from sklearn.decomposition import FactorAnalysis

from bayes_pool import estimates
from bayes_pool.design.did import check_numeric_columns
from bayes_pool.errors import InputError

log = logging.getLogger(__name__)


@dataclass
class FactorIndexResult:
    """A fitted factor index.

    Attributes
    ----------
    loadings : pandas.DataFrame
        Indicator x factor (named, oriented) rotated loadings on the standardised indicators.
    variance_pct : pandas.Series
        Each factor's variance contribution in % (sum of squared loadings / number of indicators).
    weights : pandas.Series
        The index weights: variance contributions normalised to sum to 1.
    mapping : dict
        Factor name -> column of the unrotated-order sklearn solution it was matched to.
    scores : pandas.DataFrame
        Oriented factor scores (NaN for rows with a missing indicator).
    index : pandas.Series
        The composite index, mean 0 and SD ``scale_sd`` over the complete rows.
    """

    indicators: list[str]
    loadings: pd.DataFrame
    variance_pct: pd.Series
    weights: pd.Series
    mapping: dict[str, int]
    scores: pd.DataFrame
    index: pd.Series
    n_obs: int
    model: FactorAnalysis

    @property
    def highest_loading(self) -> pd.Series:
        """Indicator -> the factor it loads highest on (in absolute value)."""
        return self.loadings.abs().idxmax(axis=1)

    def tidy(self, *, study: str, table: str,
             columns: Mapping[str, str] | None = None) -> pd.DataFrame:
        """Rows ``variance_share`` (in %) per factor; ``columns`` maps factor -> column label."""
        columns = dict(columns or {})
        explained = self.variance_pct.sum()
        rows = []
        for factor, pct in self.variance_pct.items():
            top = self.loadings[factor].abs().sort_values(ascending=False).index[:3]
            rows.append(estimates.row(
                study=study, table=table, column=columns.get(factor, factor), term=factor,
                quantity="variance_share", source="frequentist", estimate=float(pct),
                n_obs=self.n_obs,
                note=(f"varimax factor analysis, sum of squared loadings / {len(self.indicators)} "
                      f"indicators; {100 * pct / explained:.2f}% of the variance the "
                      f"{len(self.variance_pct)} factors explain (the index weight); "
                      f"highest loadings: {', '.join(top)}")))
        return estimates.frame(rows)


def factor_index(frame: pd.DataFrame, indicators: Sequence[str], *, n_factors: int = 4,
                 assignment: Mapping[str, str] | None = None, reverse: Sequence[str] = (),
                 scale_sd: float = 1.0, seed: int = 0) -> FactorIndexResult:
    """Varimax factor analysis of ``indicators`` and the variance-weighted composite index.

    Parameters
    ----------
    frame : pandas.DataFrame
        One row per respondent; rows with a missing indicator get a missing index.
    indicators : sequence of str
        Numeric indicator columns.
    n_factors : int
        Number of common factors.
    assignment : mapping, optional
        Indicator -> factor name (e.g. ``"F1"``), naming ``n_factors`` groups. Fitted factors are
        matched to these names; without it they are named ``F1..Fk`` by decreasing contribution.
    reverse : sequence of str
        Reverse-keyed indicators (higher = less of the construct), used only to orient signs.
    scale_sd : float
        SD of the returned index.
    seed : int
        ``random_state`` of the factor analysis (its randomized SVD).
    """
    indicators = list(indicators)
    check_numeric_columns(frame, indicators, what="indicator column")
    unknown = sorted(set(reverse) - set(indicators))
    if unknown:
        raise InputError(f"reverse-keyed indicator(s) {unknown} are not among the indicators")
    if assignment is not None:
        groups = sorted(set(assignment[c] for c in indicators if c in assignment))
        unassigned = [c for c in indicators if c not in assignment]
        if unassigned or len(groups) != n_factors:
            raise InputError(f"assignment must give each indicator one of {n_factors} factors; "
                             f"unassigned: {unassigned}, factors named: {groups}")
    x = frame[indicators].astype(float)
    complete = x.notna().all(axis=1).to_numpy()
    n = int(complete.sum())
    if n <= len(indicators):
        raise InputError(f"only {n} rows have all {len(indicators)} indicators; too few")
    sd = x[complete].std(ddof=1)
    constant = sd.index[sd == 0].tolist()
    if constant:
        raise InputError(f"indicator(s) {constant} do not vary; drop them")
    z = ((x[complete] - x[complete].mean()) / sd).to_numpy()
    fa = FactorAnalysis(n_components=n_factors, rotation="varimax", random_state=seed).fit(z)
    raw_loadings = fa.components_.T  # (indicators, factors)
    raw_scores = fa.transform(z)

    if assignment is not None:
        names = groups
        own = {f: [i for i, c in enumerate(indicators) if assignment[c] == f] for f in names}
        # cost: mean squared loading of each named group on each fitted factor
        fit = np.array([[np.mean(raw_loadings[own[f], j] ** 2) for f in names]
                        for j in range(n_factors)])
        rows, cols = linear_sum_assignment(-fit)
        mapping = {names[c]: int(r) for r, c in zip(rows, cols, strict=True)}
    else:
        order = np.argsort(-(raw_loadings ** 2).sum(axis=0))
        names = [f"F{j + 1}" for j in range(n_factors)]
        mapping = {name: int(j) for name, j in zip(names, order, strict=True)}
        top = np.abs(raw_loadings).argmax(axis=1)
        own = {name: [i for i in range(len(indicators)) if top[i] == mapping[name]]
               for name in names}
    key = np.array([-1.0 if c in set(reverse) else 1.0 for c in indicators])
    loadings = np.empty_like(raw_loadings)
    scores = np.empty_like(raw_scores)
    for j, name in enumerate(names):
        col = mapping[name]
        sign = np.sign(np.sum(raw_loadings[own[name], col] * key[own[name]])) or 1.0
        loadings[:, j] = sign * raw_loadings[:, col]
        scores[:, j] = sign * raw_scores[:, col]

    variance = (loadings ** 2).sum(axis=0) / len(indicators)
    weights = variance / variance.sum()
    composite = scores @ weights
    composite = scale_sd * (composite - composite.mean()) / composite.std(ddof=1)
    index = pd.Series(np.nan, index=frame.index, name="factor_index")
    index[complete] = composite
    score_frame = pd.DataFrame(np.nan, index=frame.index, columns=names)
    score_frame.loc[complete, :] = scores
    log.debug("factor index: %d complete rows of %d; contributions %s", n, len(frame), variance)
    return FactorIndexResult(
        indicators=indicators,
        loadings=pd.DataFrame(loadings, index=indicators, columns=names),
        variance_pct=pd.Series(100 * variance, index=names, name="variance_pct"),
        weights=pd.Series(weights, index=names, name="weight"),
        mapping=mapping, scores=score_frame, index=index, n_obs=n, model=fa)
