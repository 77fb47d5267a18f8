"""Slow tier: coverage of the Model 8 location coefficient (Ma et al. Table 4) over 100 seeds.

Each seed draws a SYNTHETIC smi-psm sample of the paper's size (n = 3,333) from the
calibrated generator; the truth is the generator's population least-squares projection
(``truth["ols_location_coefficient"]``, about 6.07, the same in every seed). Both twins target
it: the OLS 95% CI (model-based SE, as the paper) and the Bayesian linear regression's 95%
equal-tailed interval (2 chains x 1000 draws after 500 tuning steps). The number of seeds whose
interval covers the truth must not be surprising for a 95% rate (two-sided exact binomial
test at the 1% level). Seeds 1-100 were fixed before any result was seen.

The generator's effect is heterogeneous (selection on gains), so the residual variance differs
between groups; a model-based SE need not be right for the projection. What this test finds is
what the README may say about these intervals. Summaries (and one line per seed) go to
``$BAYES_POOL_SLOW_RESULTS`` (JSON lines) when set.
"""

from __future__ import annotations

import json
import os

import numpy as np
import pytest
from scipy import stats

from bayes_pool.bayes.linear import fit_linear
from bayes_pool.freq.ols import fit_ols
from bayes_pool.specs import load_spec
from bayes_pool.studies.smi_psm import simulate
from bayes_pool.studies.smi_psm.contract import MODEL8_TERMS, OUTCOME, TREATMENT

SEEDS = range(1, 101)


def _record(summary: dict) -> None:
    if out := os.environ.get("BAYES_POOL_SLOW_RESULTS"):
        with open(out, "a") as fh:
            fh.write(json.dumps(summary) + "\n")


@pytest.fixture(scope="module")
def ols_covered() -> np.ndarray:
    out = []
    for seed in SEEDS:
        data = simulate(seed=seed)
        truth = data.truth["ols_location_coefficient"]
        lo, hi = fit_ols(data.frame, OUTCOME, MODEL8_TERMS).result.conf_int().loc[TREATMENT]
        out.append(bool(lo <= truth <= hi))
    return np.array(out)


@pytest.fixture(scope="module")
def bayes_intervals() -> dict[str, np.ndarray]:
    # 2 x 1000 draws: at 2 x 300 (the first run, 2026-12-06) a seed's ESS could not reliably
    # reach the convergence gate's 400 and seed 25 was flagged, failing the test on its
    # sampler settings rather than on coverage
    spec = load_spec("linear_regression").with_sampler(chains=2, draws=1000, tune=500)
    out: dict[str, list] = {"covered": [], "converged": []}
    for seed in SEEDS:
        data = simulate(seed=seed)
        truth = data.truth["ols_location_coefficient"]
        res = fit_linear(data.frame, outcome=OUTCOME, treatment=TREATMENT,
                         covariates=MODEL8_TERMS[1:], spec=spec, seed=seed)
        rows = res.tidy(study="smi-psm", table="4", column="model_8")
        post = rows[(rows["term"] == TREATMENT) & (rows["quantity"] == "beta")].iloc[0]
        out["covered"].append(bool(post["ci_low"] <= truth <= post["ci_high"]))
        out["converged"].append(bool(post["converged"]))
        _record({"test": "smi_psm_model8_coverage_seed", "seed": seed, "truth": truth,
                 "bayesian": [float(post["estimate"]), float(post["ci_low"]),
                              float(post["ci_high"])], "r_hat": float(post["r_hat"]),
                 "converged": bool(post["converged"])})
    return {k: np.array(v) for k, v in out.items()}


def _coverage(covered: np.ndarray, label: str) -> dict:
    k = int(covered.sum())
    test = stats.binomtest(k, len(covered), 0.95)
    summary = {"test": f"smi_psm_model8_coverage_{label}", "seeds": len(covered),
               "covered": k, "rate": k / len(covered), "binomial_p": test.pvalue,
               "rate_ci95": list(test.proportion_ci())}
    _record(summary)
    return summary


@pytest.mark.slow
def test_bayesian_model8_interval_covers_at_95_percent(bayes_intervals):
    """About 4 minutes a seed on the shared 2-core machine at load 20-35 (one compile per
    fit): 100 seeds take hours there; see docs/testing.md for the measured time."""
    assert bayes_intervals["converged"].all(), np.flatnonzero(~bayes_intervals["converged"]) + 1
    summary = _coverage(bayes_intervals["covered"], "bayesian")
    assert summary["binomial_p"] > 0.01, summary


@pytest.mark.slow
def test_ols_model8_interval_covers_at_95_percent(ols_covered):
    summary = _coverage(ols_covered, "ols")
    assert summary["binomial_p"] > 0.01, summary
