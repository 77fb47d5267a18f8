"""Covariate balance before and after matching, as Stata's ``pstest`` reports it (Table 5 of
Ma et al. 2023)."""

from __future__ import annotations

import numpy as np
import pandas as pd
from statsmodels.stats.weightstats import ttest_ind

from bayes_pool.estimands.matching import Matching


def balance(prepared, m: Matching) -> pd.DataFrame:
    """Table-5-style balance, before and after matching, one row per covariate.

    ``prepared`` is a :class:`~bayes_pool.design.psm.PreparedPSM` (its ``frame`` and
    ``design.covariates`` are read; the design layer is a sibling, not imported).

    Standardized bias uses the *unmatched* treated and control variances (as ``pstest``);
    after matching, the treated are those on support and each control is weighted by its
    total matching weight; the t-test is a weighted two-sample t-test (pstest's
    ``regress x treat [iw=_weight]``).
    """
    f = prepared.frame
    tr, co = m.treated, m.controls
    tr_on = tr[m.on_support]
    wc = m.control_weights()
    used = wc > 0
    rows = []
    for c in prepared.design.covariates:
        x = f[c].to_numpy(dtype=float)
        xt, xc = x[tr], x[co]
        sd = np.sqrt((xt.var(ddof=1) + xc.var(ddof=1)) / 2)
        mt_b, mc_b = xt.mean(), xc.mean()
        t_b, p_b, _ = ttest_ind(xt, xc, usevar="pooled")
        mt_a = x[tr_on].mean() if len(tr_on) else np.nan
        mc_a = np.average(xc[used], weights=wc[used]) if used.any() else np.nan
        if len(tr_on) and used.any():
            t_a, p_a, _ = ttest_ind(x[tr_on], xc[used], usevar="pooled",
                                    weights=(np.ones(len(tr_on)), wc[used]))
        else:
            t_a = p_a = np.nan
        bias_b = 100 * (mt_b - mc_b) / sd if sd > 0 else np.nan
        bias_a = 100 * (mt_a - mc_a) / sd if sd > 0 else np.nan
        rows.append(dict(covariate=c, mean_treated_before=mt_b, mean_control_before=mc_b,
                         std_bias_pct_before=bias_b, t_before=t_b, p_before=p_b,
                         mean_treated_after=mt_a, mean_control_after=mc_a,
                         std_bias_pct_after=bias_a, t_after=t_a, p_after=p_a,
                         bias_reduction_pct=100 * (1 - abs(bias_a) / abs(bias_b))
                         if bias_b else np.nan))
    return pd.DataFrame(rows).set_index("covariate")
