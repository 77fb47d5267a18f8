"""Slow tier: recovery of Zhang & Chen's Tables 3-7 on SYNTHETIC data with fixed seeds (issue #3).

Truth. Most of the 50 published cells are estimands of misspecified models (a logit without
the mediators, a logit on a noisy index, a logit without controls), so the truth of every
cell is its population value in the generator's world: the same frequentist estimator on a
300,000-row draw (:func:`~bayes_pool.studies.pooling_did.population.population_values`),
whose own Monte Carlo error ``se_pop`` enters every tolerance. Where the generator has a
closed-form truth (the AME of policy, the ``a`` paths in index units, the mediated effect a*b
on the observed index), the population value is checked against it first, which guards the
truth definition itself.

Sample. ``simulate(seed=2024)`` (7,719 rows) and a 2012-wave frame ``simulate(seed=2025,
n=9816)`` as the pipeline's synthetic run builds it; all four parts with Bayesian fits at
2 chains x 500 draws (500 tuning). Seeds were fixed before looking at any result.

Criteria.
- Frequentist: |estimate - truth| <= 2 sqrt(se^2 + se_pop^2), with the SE the replication
  reports (province-clustered, as in the comparison), in >= 90% of the 50 cells.
- Bayesian: the 95% interval covers the truth, its half-width widened by the truth's MC error
  in quadrature (sqrt(h^2 + (1.96 se_pop)^2)), in >= 90% of the 50 cells. An absolute rate
  rather than "within 0.1 of the frequentist share": the acceptance item asks for recovery,
  and a frequentist share that is itself low (clustered SEs) must not excuse the Bayesian one.
- The natural indirect effect of each mediator (table ``mediation``, quantity ``indirect``;
  the acceptance item's "mediation indirect effect") has the truth's sign and its Bayesian
  interval covers the truth.
- Convergence is reported honestly: every Bayesian row's ``converged`` flag equals its spec's
  thresholds applied to the R-hat, ESS and divergences it reports; R-hat < 1.05 everywhere
  (a coverage claim from chains that did not mix would be empty).

Cells are correlated: policy's beta and AME in Table 3 (2), the Table 5 benchmark (the same
fit) and Table 5 (1)/(2) move together, so one unlucky policy estimate costs up to 8 of the
50 cells (16%). The province-clustered SE of policy rests on six treated provinces (three
switching) and is known to be too small (see tests/test_slow_null_world.py).

The report (printed with ``-s``; appended to ``$BAYES_POOL_SLOW_RESULTS`` as JSON lines when
set) lists the per-table shares, every missing cell and all policy cells.

Reference run (2 cores shared; 680 s: population 425 s, peak RSS 8.7 GB, sample run 246 s;
203 s with the population cached): frequentist within 2 SE 47/50 = 0.94, Bayesian 95%
covers 49/50 = 0.98. Misses: Table 3 (2) married beta and AME (z = 2.09, 2.06; ordinary
chance, 2 correlated cells of 50), Table 3 (2) social_status AME (Bayesian interval
[0.0277, 0.0392] just below the truth 0.0394), and Table 4 (2) ``a`` of the subjective index
(frequentist -0.036, clustered SE 0.108, truth 0.252, z = -2.63; the Bayesian 0.203 [0.037,
0.366] covers: its partially pooled province intercepts also use the always-treated
provinces, the fixed effects only the three switchers). That miss carries into the
frequentist natural indirect effect via the subjective index (-0.0016 [-0.0082, 0.0070],
truth 0.0101), while the Bayesian one (0.0091 [0.0017, 0.0168]) recovers it. No policy cell
missed with the clustered SEs in this draw (they were large here, e.g. Table 3 (2) 0.373).
Convergence at 2 x 500: 61 of 84 Bayesian rows meet R-hat <= 1.01, ESS >= 400 and no
divergences; the others are Table 7 (2) (2 divergences), Table 7 (1) policy (R-hat 1.0117)
and Table 5 (1) objective index AME (R-hat 1.0117); they are flagged NOT CONVERGED and counted
as they are.
"""

from __future__ import annotations

import json
import os
import time

import numpy as np
import pandas as pd
import pytest

from bayes_pool import compare
from bayes_pool.bayes.heterogeneity import load_heterogeneity_spec
from bayes_pool.bayes.mediation import load_mediation_spec
from bayes_pool.published import load_published
from bayes_pool.specs import load_spec
from bayes_pool.studies import pooling_did
from bayes_pool.studies.pooling_did.population import POPULATION_N, population_values
from bayes_pool.studies.pooling_did.synthetic import DEFAULT_SEED, N_PUBLISHED, simulate

pytestmark = pytest.mark.slow

TABLES = ["3", "4", "5", "6", "7"]
KEYS = ["table", "column", "term", "quantity"]
SEED = DEFAULT_SEED
N_2012 = 9816
"""Table 7 (1)'s N, as ``pooling_did.synthetic_extras`` sizes the 2012-wave frame."""
SHARE = 0.90
MEDIATORS = {"(1)": "objective", "(2)": "subjective"}


@pytest.fixture(scope="module")
def population(request):
    """Population values, kept in pytest's cache folder while the package source is unchanged."""
    start = time.perf_counter()
    values = population_values(cache_dir=request.config.cache.mkdir("pooling_did_population"))
    values.attrs["seconds"] = time.perf_counter() - start
    return values


@pytest.fixture(scope="module")
def sample_run():
    start = time.perf_counter()
    main = simulate(seed=SEED).frame
    wave_2012 = simulate(seed=SEED + 1, n=N_2012, waves=(2012, 2014, 2016, 2018)).frame
    spec = load_spec("did_logit").with_sampler(chains=2, draws=500, tune=500)
    analysis = pooling_did.run(main, spec=spec, seed=SEED, frame_2012=wave_2012,
                               parts=("table3", "mediation", "table6", "table7"),
                               refits_dir=False)
    analysis.facts["seconds"] = time.perf_counter() - start
    return analysis


@pytest.fixture(scope="module")
def recovery(population, sample_run):
    """The 50 published cells with sample estimates, truths and the two hit indicators."""
    published = load_published("pooling-did")
    published = published[published["table"].astype(str).isin(TABLES)][KEYS]
    comp = compare.comparison(sample_run.estimates, tables=TABLES)
    truth = population[KEYS + ["estimate", "se"]].rename(
        columns={"estimate": "truth", "se": "se_pop"})
    cells = published.merge(comp, on=KEYS, how="left").merge(truth, on=KEYS, how="left")
    assert len(cells) == 50 and cells[["frequentist", "bayesian", "truth"]].notna().all().all()
    cells["freq_z"] = (cells["frequentist"] - cells["truth"]) / np.hypot(
        cells["frequentist_se"], cells["se_pop"])
    cells["freq_hit"] = cells["freq_z"].abs() <= 2
    centre = (cells["bayes_ci_low"] + cells["bayes_ci_high"]) / 2
    half = (cells["bayes_ci_high"] - cells["bayes_ci_low"]) / 2
    cells["bayes_hit"] = (cells["truth"] - centre).abs() <= np.hypot(half, 1.96 * cells["se_pop"])
    _report(cells, population, sample_run)
    return cells


def _report(cells: pd.DataFrame, population: pd.DataFrame, sample_run) -> None:
    per_table = cells.groupby("table").agg(cells=("freq_hit", "size"),
                                           freq_within_2se=("freq_hit", "mean"),
                                           bayes_covers=("bayes_hit", "mean"))
    misses = cells[~(cells["freq_hit"] & cells["bayes_hit"])]
    cols = KEYS + ["truth", "se_pop", "frequentist", "frequentist_se", "freq_z", "bayesian",
                   "bayes_ci_low", "bayes_ci_high", "freq_hit", "bayes_hit", "r_hat", "ess_bulk"]
    with pd.option_context("display.width", 220, "display.max_columns", 30,
                           "display.float_format", "{:.4f}".format):
        print("\n[SYNTHETIC] recovery of Tables 3-7: population n =", population.attrs["n"],
              f"({population.attrs['seconds']:.0f} s), sample run "
              f"{sample_run.facts['seconds']:.0f} s")
        print(per_table.to_string())
        print(f"all 50: frequentist within 2 SE {cells['freq_hit'].mean():.2f}, "
              f"Bayesian 95% covers {cells['bayes_hit'].mean():.2f}")
        print("cells that miss (either criterion):")
        print(misses[cols].to_string(index=False) if len(misses) else "  none")
        print("policy cells (province-clustered SEs):")
        print(cells.loc[cells["term"] == "policy", cols].to_string(index=False))
    if out := os.environ.get("BAYES_POOL_SLOW_RESULTS"):
        with open(out, "a") as fh:
            fh.write(json.dumps({
                "test": "pooling_did_recovery", "seed": SEED, "population_n": POPULATION_N,
                "freq_share": float(cells["freq_hit"].mean()),
                "bayes_share": float(cells["bayes_hit"].mean()),
                "per_table": per_table.reset_index().to_dict(orient="records"),
                "misses": misses[KEYS].to_dict(orient="records")}) + "\n")


def _cell(frame: pd.DataFrame, table, column, term, quantity) -> pd.Series:
    hit = frame[(frame["table"] == table) & (frame["column"] == column)
                & (frame["term"] == term) & (frame["quantity"] == quantity)]
    assert len(hit) == 1, (table, column, term, quantity)
    return hit.iloc[0]


def _logit_attenuation(paths: dict, dim: str) -> float:
    """1 / sqrt(1 + c^2 v): v is the variance the Table 5 logit of ``dim``'s index leaves out,
    b^2 kappa^2 var(F | index) of its own factor (linear projection: 1 - slope^2 / var(index))
    plus b^2 kappa^2 of every other mediator's factor."""
    own = paths[dim]
    v = own["b"] ** 2 * own["kappa"] ** 2 * (1 - own["slope_on_factor"] ** 2
                                             / own["index_sd"] ** 2)
    v += sum(p["b"] ** 2 * p["kappa"] ** 2 for d, p in paths.items() if d != dim)
    c = 16 * np.sqrt(3) / (15 * np.pi)
    return float(1 / np.sqrt(1 + c**2 * v))


# ------------------------------------------------------------- the truth definition ---

def test_population_agrees_with_the_generators_closed_form_truths(population):
    """Pseudo-true values where the generator knows the answer, within 3 MC SEs (plus the
    generator's stated approximation error where it has one)."""
    truth = population.attrs["truth"]["main"]
    paths = truth["mediator_paths"]
    # AME of policy over complete cases (quadrature over the mediators' noise: exact)
    ame = _cell(population, "3", "(2)", "policy", "ame")
    assert abs(ame["estimate"] - truth["ame_policy"]) <= 3 * ame["se"], ame
    for column, dim in MEDIATORS.items():
        # a: effect of policy on the index, index units (exact)
        a = _cell(population, "4", column, "policy", "beta")
        assert abs(a["estimate"] - paths[dim]["a"]) <= 3 * a["se"], (dim, a)
        # b on the observed index: the linear-projection value, attenuated by the logit's
        # omitted variance v (own factor given the index, the other mediator's factor):
        # factor 1 / sqrt(1 + c^2 v), c = 16 sqrt(3) / (15 pi) (Zeger, Liang & Albert 1988,
        # the logistic-normal approximation; about 0.957 here). The approximation (and F given
        # the index being neither linear nor normal with ordinal items) is allowed an error
        # of half the attenuation it predicts, on top of 3 MC SEs. Seen 2026-12-06: objective
        # 0.2727 (SE 0.0034) against 0.2806 predicted (0.2931 unattenuated).
        index = f"{dim}_integration"
        b = _cell(population, "5", column, index, "beta")
        unattenuated = paths[dim]["b_observed_index"]
        expected = unattenuated * _logit_attenuation(paths, dim)
        assert b["estimate"] <= unattenuated + 3 * b["se"], (dim, b)
        tolerance = 3 * b["se"] + (unattenuated - expected) / 2
        assert abs(b["estimate"] - expected) <= tolerance, (dim, b, expected)
        # and the structural b is out of reach of a logit on the noisy index
        assert b["estimate"] < paths[dim]["b"] - 3 * b["se"], (dim, b)
        ab = _cell(population, "mediation", index, "policy", "indirect_ab")
        assert ab["estimate"] == pytest.approx(a["estimate"] * b["estimate"], rel=1e-9)


# --------------------------------------------------------------------- the recovery ---

def test_frequentist_estimates_within_2_se_of_the_truth(recovery):
    share = recovery["freq_hit"].mean()
    assert share >= SHARE, recovery.loc[~recovery["freq_hit"], KEYS + ["freq_z"]].to_string()


def test_bayesian_95_intervals_cover_the_truth(recovery):
    share = recovery["bayes_hit"].mean()
    assert share >= SHARE, recovery.loc[~recovery["bayes_hit"], KEYS].to_string()


def test_indirect_effect_sign_and_size_recovered(population, sample_run):
    """Natural indirect effect (probability scale) of each index: Bayesian posterior mean has
    the truth's sign and its 95% interval covers the truth. The population value has no
    bootstrap SE; its MC error is the sample's bootstrap SE scaled by sqrt(n / n_pop)."""
    est = sample_run.estimates
    n_pop = population.attrs["n"]
    for dim in MEDIATORS.values():
        index = f"{dim}_integration"
        truth = _cell(population, "mediation", index, "policy", "indirect")["estimate"]
        bay = _cell(est[est["source"] == "bayesian"], "mediation", index, "policy", "indirect")
        freq = _cell(est[est["source"] == "frequentist"], "mediation", index, "policy",
                     "indirect")
        se_pop = freq["se"] * np.sqrt(freq["n_obs"] / n_pop)
        print(f"\n[SYNTHETIC] indirect effect via {index}: truth {truth:.4f} (MC SE "
              f"{se_pop:.4f}); Bayesian {bay['estimate']:.4f} [{bay['ci_low']:.4f}, "
              f"{bay['ci_high']:.4f}]; frequentist {freq['estimate']:.4f} "
              f"[{freq['ci_low']:.4f}, {freq['ci_high']:.4f}] (bootstrap)")
        assert np.sign(bay["estimate"]) == np.sign(truth) != 0, (dim, bay)
        centre, half = (bay["ci_low"] + bay["ci_high"]) / 2, (bay["ci_high"] - bay["ci_low"]) / 2
        assert abs(truth - centre) <= np.hypot(half, 1.96 * se_pop), (dim, truth, bay)


def test_convergence_is_reported_honestly(sample_run):
    """Each Bayesian row's ``converged`` is its spec's thresholds applied to what it reports."""
    est = sample_run.estimates
    bay = est[(est["source"] == "bayesian") & est["table"].isin([*TABLES, "mediation"])]
    specs = {"did": load_spec("did_logit").convergence,
             "mediation": load_mediation_spec().convergence,
             "heterogeneity": load_heterogeneity_spec().spec.convergence}
    mediation_rows = bay["table"].isin(["4", "mediation"]) | (
        (bay["table"] == "5") & (bay["column"] != "benchmark"))
    which = np.where(mediation_rows, "mediation",
                     np.where(bay["table"] == "6", "heterogeneity", "did"))
    expected = [bool(r.r_hat <= specs[w].max_r_hat and r.ess_bulk >= specs[w].min_ess_bulk
                     and r.ess_tail >= specs[w].min_ess_tail
                     and r.divergences <= specs[w].max_divergences)
                for r, w in zip(bay.itertuples(), which)]
    assert bay[["r_hat", "ess_bulk", "ess_tail", "divergences"]].notna().all().all()
    assert (bay["converged"].astype(bool).to_numpy() == np.array(expected)).all()
    flagged = bay["note"].str.contains("NOT CONVERGED")
    assert (flagged == ~bay["converged"].astype(bool)).all()
    failed = bay[~bay["converged"].astype(bool)]
    if len(failed):
        print("\n[SYNTHETIC] rows that fail the convergence thresholds:")
        print(failed[["table", "column", "term", "quantity", "r_hat", "ess_bulk", "ess_tail",
                      "divergences"]].to_string(index=False))
    print(f"\n[SYNTHETIC] Bayesian rows: {len(bay)}, converged {int(bay['converged'].sum())}, "
          f"max R-hat {bay['r_hat'].max():.4f}, min bulk ESS {bay['ess_bulk'].min():.0f}, "
          f"min tail ESS {bay['ess_tail'].min():.0f}, divergences "
          f"{int(bay['divergences'].max())} (max per fit)")
    assert bay["r_hat"].max() < 1.05


def test_sample_is_the_published_size(sample_run):
    n = sample_run.estimates.query("source == 'frequentist' and table == '3' and column == '(1)'")
    assert (n["n_obs"] == N_PUBLISHED).all()
