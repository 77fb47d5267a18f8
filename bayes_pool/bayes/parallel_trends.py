"""Bayesian sensitivity to parallel trends of a fitted event study: the posterior of the effect
adjusted for a violation tied to each draw's pre-period coefficients (Rambachan & Roth 2023's
restrictions as a prior), from the draws a ``did --event-study`` run already has.

No new MCMC: this module only lifts the event-time coefficients out of a posterior (a
:class:`~bayes_pool.bayes.event_study.BayesEventStudyResult`, an ArviZ ``InferenceData`` /
``DataTree`` or an xarray ``Dataset``) as a (draws x coefficients) array, pre periods first,
and hands it to :func:`bayes_pool.robustness.parallel_trends_posterior`.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from bayes_pool.design.staggered import event_term
from bayes_pool.errors import InputError
from bayes_pool.robustness import DEFAULT_MBARS, parallel_trends_posterior


def _posterior(source):
    idata = getattr(source, "idata", source)
    posterior = getattr(idata, "posterior", idata)
    return getattr(posterior, "dataset", posterior)  # a DataTree node holds its Dataset


def event_study_draws(source, times, reference: int = -1) -> tuple[np.ndarray, int]:
    """``(draws, n_pre)``: the posterior draws (chains stacked) of the event-time coefficients
    ``event_m<k>`` / ``event_p<k>`` for ``times``, in time order, the reference period left
    out; ``n_pre`` of them are before it."""
    posterior = _posterior(source)
    times = sorted(k for k in times if k != reference)
    missing = [event_term(k) for k in times if event_term(k) not in posterior]
    if missing:
        raise InputError(f"event times: no posterior variable {', '.join(missing)}; pass the "
                         "event times the event study estimated")
    columns = [np.asarray(posterior[event_term(k)]).reshape(-1) for k in times]
    n_pre = sum(k < reference for k in times)
    if n_pre == 0 or n_pre == len(times):
        raise InputError(f"event times: {times} need at least one period before and one after "
                         f"the reference period {reference}")
    return np.column_stack(columns), n_pre


def adjusted_posterior(source, times, m_grid=DEFAULT_MBARS, *, reference: int = -1,
                       restriction: str = "rm", l_vec=None, seed: int = 0) -> pd.DataFrame:
    """:func:`~bayes_pool.robustness.parallel_trends_posterior` on a fitted event study's
    posterior (``l_vec`` weights the post periods in time order; default: the first)."""
    draws, n_pre = event_study_draws(source, times, reference)
    return parallel_trends_posterior(draws, n_pre, None, m_grid, restriction=restriction,
                                     l_vec=l_vec, seed=seed)
