"""Posterior summaries with their convergence diagnostics, as rows of the estimates table.

Every posterior estimate carries R-hat, bulk and tail ESS and the fit's divergences, and a
``converged`` flag against the spec's thresholds: an unconverged fit is never reported as fine.
"""

from __future__ import annotations

import arviz_stats as azs
import numpy as np
import pandas as pd

from bayes_pool import estimates
from bayes_pool.specs import Convergence


def divergences(idata) -> int:
    """Number of divergent transitions after tuning."""
    stats = idata["sample_stats"]
    return int(np.asarray(stats["diverging"]).sum()) if "diverging" in stats else 0


def summarize(idata, var_names: list[str], ci_prob: float = estimates.CI_PROB) -> pd.DataFrame:
    """ArviZ summary (mean, sd, equal-tailed interval, ESS, R-hat) of scalar posterior variables."""
    s = azs.summary(idata, var_names=var_names, kind="all", ci_prob=ci_prob, ci_kind="eti",
                    round_to="none")
    lo = [c for c in s.columns if c.endswith("_lb")][0]
    hi = [c for c in s.columns if c.endswith("_ub")][0]
    return s.rename(columns={lo: "ci_low", hi: "ci_high"})


def check(row: pd.Series, n_divergences: int, thresholds: Convergence) -> bool:
    """True when R-hat, both ESS and the divergence count meet the thresholds."""
    return bool(row["r_hat"] <= thresholds.max_r_hat and row["ess_bulk"] >= thresholds.min_ess_bulk
                and row["ess_tail"] >= thresholds.min_ess_tail
                and n_divergences <= thresholds.max_divergences)


def posterior_rows(idata, variables: dict[str, tuple[str, str]], *, thresholds: Convergence,
                   study: str, table: str, column: str, n_obs: int, note: str = "") -> pd.DataFrame:
    """Estimates rows for posterior variables.

    ``variables`` maps a posterior variable name to ``(term, quantity)``.
    """
    summ = summarize(idata, list(variables))
    n_div = divergences(idata)
    rows = []
    for var, (term, quantity) in variables.items():
        r = summ.loc[var]
        ok = check(r, n_div, thresholds)
        flag = "" if ok else "NOT CONVERGED (R-hat/ESS/divergences fail the thresholds)"
        rows.append(estimates.row(
            study=study, table=table, column=column, term=term, quantity=quantity,
            source="bayesian", estimate=r["mean"], se=r["sd"], ci_low=r["ci_low"],
            ci_high=r["ci_high"], n_obs=n_obs, note="; ".join(x for x in (note, flag) if x),
            r_hat=r["r_hat"], ess_bulk=r["ess_bulk"], ess_tail=r["ess_tail"],
            divergences=n_div, converged=ok))
    return estimates.frame(rows)
