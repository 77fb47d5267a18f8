"""Inference for the indirect effect with three switching units: the randomization test
(:mod:`bayes_pool.freq.mediation_ri`) against the Sobel test and the cluster bootstrap.

Fast tier: the placebo draws keep the data's switcher count and adoption periods. Slow tier:
the null-world size study of ``docs/inference_mediation.md`` (no treatment -> mediator path,
so no indirect effect; 200 seeds per world, with and without region x wave shocks in the
mediator); run ``python -m tests.test_mediation_inference`` to print the table. All data here
are synthetic (:func:`tests.test_mediation_worlds.confounded_mediation`).
"""

from __future__ import annotations

import sys

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from bayes_pool.freq import mediation as freq_mediation
from bayes_pool.freq.mediation_ri import adoption_periods, placebo_treatment
from tests.test_mediation_worlds import confounded_mediation, prepare

SIZE_SEEDS = range(200)
SIZE_WORLDS = {"no shocks": 0.0, "region x wave shocks (SD 0.3)": 0.3}
SIZE_ROWS, RI_DRAWS, BOOT = 1000, 199, 99


def test_placebo_draws_keep_switchers_and_adoption_periods():
    """Every placebo column has the data's always-treated units, exactly as many switchers,
    the same multiset of adoption periods and absorbing treatment; over draws every eligible
    unit gets picked (the draw is not stuck on the real switchers)."""
    frame, truth = confounded_mediation(2, n=1500)
    prepared = prepare(frame)
    f = prepared.frame
    real = sorted(adoption_periods(prepared).values())
    assert real == ["2", "3", "3"] and list(prepared.switchers) == truth["switchers"]
    always = set(f.loc[f["d"] == 1].groupby("region")["d"].size().index) - set(truth["switchers"])
    rng = np.random.default_rng(0)
    picked = set()
    for _ in range(50):
        placebo = pd.Series(placebo_treatment(prepared, rng), index=f.index)
        by_unit = placebo.groupby(f["region"])
        switching = by_unit.nunique()[lambda s: s > 1].index
        assert len(switching) == 3
        starts = sorted(f.loc[placebo.eq(1) & f["region"].isin(switching)]
                        .groupby("region")["wave"].min())
        assert starts == real
        assert set(by_unit.min()[lambda s: s == 1].index) == always
        for u in switching:  # absorbing: treated exactly from the first treated wave on
            rows = f["region"] == u
            start = f.loc[rows & placebo.eq(1), "wave"].min()
            assert (placebo[rows] == (f.loc[rows, "wave"] >= start)).all()
        picked |= set(switching)
    eligible = set(f["region"]) - always
    assert picked == eligible, sorted(eligible - picked)


def test_batched_t_statistics_equal_statsmodels():
    """The RI's batched t statistics (partialling out the controls) equal statsmodels' OLS
    fits with HC1 and cluster-robust SEs, column by column."""
    import statsmodels.api as sm

    from bayes_pool.freq.mediation import _matrices
    from bayes_pool.freq.mediation_ri import t_statistics

    frame, _ = confounded_mediation(3, n=800)
    prepared = prepare(frame)
    x, _ = _matrices(prepared)
    m = prepared.frame["m"].to_numpy(float)
    groups = pd.factorize(prepared.frame["region"])[0]
    rng = np.random.default_rng(1)
    treatments = np.column_stack([x[:, 0], *(placebo_treatment(prepared, rng) for _ in range(3))])
    t_hc1, t_cl = t_statistics(m, x[:, 1:], treatments.astype(float), groups)
    for j in range(treatments.shape[1]):
        fit = sm.OLS(m, np.column_stack([treatments[:, j], x[:, 1:]])).fit()
        hc1 = fit.get_robustcov_results(cov_type="HC1")
        cl = fit.get_robustcov_results(cov_type="cluster", groups=groups)
        assert t_hc1[j] == pytest.approx(hc1.tvalues[0], rel=1e-8)
        assert t_cl[j] == pytest.approx(cl.tvalues[0], rel=1e-8)


def test_ri_row_reports_joint_test():
    """With a strong a and b the joint test rejects; with a = 0 it does not on this seed
    (regression pins of one seed each; the size is the slow study)."""
    for a, rejects in ((0.8, True), (0.0, False)):
        frame, _ = confounded_mediation(4, n=1500, a=a)
        res = freq_mediation.fit_mediation(prepare(frame), bootstrap=0, seed=3, ri_draws=39)
        row = res.tidy(study="x").query("quantity == 'indirect_ri'").iloc[0]
        assert row["p_value"] == max(res.ri.p_a, res.ri.p_b)
        assert (row["p_value"] <= 0.05) == rejects, (a, res.ri)


def null_world_rejections(seed: int, shock_sd: float, bootstrap: int = BOOT) -> dict:
    """One null world (a = 0): does each method reject "no indirect effect" at 5%? (The
    bootstrap's entry is None with ``bootstrap=0``.)"""
    frame, truth = confounded_mediation(seed, n=SIZE_ROWS, a=0.0, shock_sd=shock_sd)
    res = freq_mediation.fit_mediation(prepare(frame), bootstrap=bootstrap, seed=seed,
                                       ri_draws=RI_DRAWS)
    out = {"ri_joint": bool(res.ri.p_value <= 0.05), "ri_a_only": bool(res.ri.p_a <= 0.05),
           "ri_cluster_t_joint": bool(max(res.ri.p_a_cluster, res.ri.p_b) <= 0.05),
           "sobel_clustered": bool(res.sobel["p_value"] <= 0.05), "bootstrap_percentile": None}
    if bootstrap:
        boot = res.tidy(study="size").set_index("quantity").loc["indirect"]
        out["bootstrap_percentile"] = bool(not boot["ci_low"] <= 0 <= boot["ci_high"])
    return out


def size_table(results: pd.DataFrame) -> pd.DataFrame:
    """Rejection rate per world and method with its exact (Clopper-Pearson) 95% interval."""
    rows = []
    for (world, method), hits in results.groupby(["world", "method"])["reject"]:
        k, n = int(hits.sum()), len(hits)
        ci = stats.binomtest(k, n).proportion_ci(0.95, method="exact")
        rows.append({"world": world, "method": method, "rejections": k, "seeds": n,
                     "rate": k / n, "ci_low": ci.low, "ci_high": ci.high})
    return pd.DataFrame(rows)


def run_size_study(seeds=SIZE_SEEDS, worlds=SIZE_WORLDS, bootstrap: int = BOOT
                   ) -> pd.DataFrame:
    out = [{"world": name, "seed": s, "method": m, "reject": r}
           for name, sd in worlds.items() for s in seeds
           for m, r in null_world_rejections(s, sd, bootstrap).items() if r is not None]
    return size_table(pd.DataFrame(out))


@pytest.mark.slow
def test_ri_joint_test_has_nominal_size_in_both_null_worlds():
    """The RI joint test's rejection rate at 5% over 200 null worlds is consistent with (or
    below) 5% in both worlds: the exact 95% binomial interval's lower end is <= 0.05 and
    its upper end is not above 0.05 by more than chance allows (the interval contains a
    rate <= 5%)."""
    table = run_size_study(bootstrap=0)
    ri = table[table["method"] == "ri_joint"]
    assert len(ri) == 2
    assert (ri["ci_low"] <= 0.05).all(), ri


if __name__ == "__main__":
    shock = float(sys.argv[1]) if len(sys.argv) > 1 else None
    worlds = SIZE_WORLDS if shock is None else \
        {k: v for k, v in SIZE_WORLDS.items() if v == shock}
    print(run_size_study(worlds=worlds).to_string(index=False))
