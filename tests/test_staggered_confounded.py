"""Issue 14 for the staggered models: in the confounded-levels world (``tests/worlds.py``,
synthetic) the Bayesian event study and ETWFE, with correlated random effects (the default),
estimate what the fixed-effects fits estimate; ``unit_effects = "exchangeable"`` is measured
beside them (slow tier).

The world's switchers adopt in waves 2, 3 and 3 and sit above the never-treated units; the
always-treated units are left out of both models (never seen untreated). Truth: the treatment
moves the logit by ``truth["beta"]`` in every treated cell and not at all before adoption.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest

from bayes_pool.bayes.etwfe import fit_etwfe as bayes_etwfe
from bayes_pool.bayes.event_study import fit_event_study as bayes_es
from bayes_pool.errors import InputError
from bayes_pool.design.staggered import StaggeredDesign
from bayes_pool.freq.etwfe import fit_etwfe
from bayes_pool.freq.event_study import fit_event_study
from bayes_pool.specs import Convergence, load_spec
from worlds import confounded_panel

DEFAULT_SEED = 2024
SLOW_SEEDS = range(1, 26)
"""Seeds of the slow tier. A world whose fixed-effects logit is separated (seed 8: the 16 rows
of event time 1 all have outcome 1) has no finite estimate to compare with and is left out and
counted; at least 20 seeds must remain (set after seed 8 stopped the first run)."""
N_ROWS = 4000
"""Rows per world (the world's default): about 130 per never-treated unit and 65 per switcher,
so about 20-35 per switcher's cell. With half of that (tried first, for speed) the cells of
the one wave-2 adopter had 12-17 rows, their logit coefficients SEs near 1, and the
``treatment`` prior N(0, 2.5) alone pulled the posterior means 0.3 SD below the maximum
likelihood estimates (seed 4: cell 2.18 by ML, 1.88 posterior mean = 2.18 / (1 + 1/2.5^2))."""


def _prepared(frame: pd.DataFrame):
    """The world with its cohort column: each unit's first treated wave (0: never)."""
    treated = frame["wave"].where(frame["d"] == 1)
    cohort = treated.groupby(frame["region"]).transform("min").fillna(0)
    return StaggeredDesign("y", "d", "region", "wave", "cohort", covariates=("x",)).prepare(
        frame.assign(cohort=cohort))


def _spec(unit_effects: str = "correlated", draws: int = 300):
    spec = load_spec("did_logit").with_sampler(chains=2, draws=draws, tune=draws)
    return dataclasses.replace(spec, unit_effects=unit_effects, convergence=Convergence(
        max_r_hat=1.05, min_ess_bulk=100, min_ess_tail=100))


def _compare(seed: int, unit_effects: str = "correlated", draws: int = 300
             ) -> pd.DataFrame | None:
    """One row per Bayesian quantity: posterior mean, SD, interval and the frequentist
    estimate of the same quantity (event-study betas with never-treated controls, leads and
    lags; the ETWFE ATT with the default not-yet-treated controls). None when the
    fixed-effects logit is separated."""
    frame, truth = confounded_panel(seed, n=N_ROWS)
    prepared = _prepared(frame)
    try:
        es_freq = fit_event_study(prepared, control="never").tidy(study="toy")
        et_freq = fit_etwfe(prepared).tidy(study="toy")
    except InputError as err:
        if "separated" in str(err):
            return None
        raise
    spec = _spec(unit_effects, draws)
    es = bayes_es(prepared, spec, seed=seed, control="never").tidy(study="toy")
    et = bayes_etwfe(prepared, spec, seed=seed).tidy(study="toy")
    bay = pd.concat([es[es["quantity"] == "beta"], et[et["column"] == "etwfe"]])
    freq = pd.concat([es_freq[es_freq["quantity"] == "beta"],
                      et_freq[et_freq["column"] == "etwfe"]])
    out = bay.merge(freq[["column", "quantity", "estimate"]], on=["column", "quantity"],
                    suffixes=("", "_freq"))
    k = out["column"].str.extract(r"event_time_(-?\d+)$", expand=False).astype(float)
    out["truth"] = np.where(k < 0, 0.0, np.where(k >= 0, truth["beta"], np.nan))
    out["z"] = (out["estimate"] - out["estimate_freq"]) / out["se"]
    return out.assign(seed=seed, unit_effects=unit_effects)


def test_correlated_bayesian_matches_fixed_effects_at_the_default_seed():
    out = _compare(DEFAULT_SEED)
    assert set(out["column"]) == {"event_time_-2", "event_time_0", "event_time_1", "etwfe"}
    assert out["converged"].all() and (out["divergences"] == 0).all()
    assert (out["z"].abs() < 0.25).all(), out[["column", "estimate", "estimate_freq", "se"]]
    assert "correlated: (1|region) around cohort dummies" in out["note"].iloc[0]


@pytest.mark.slow
def test_correlated_bayesian_matches_fixed_effects_across_seeds():
    """20 seeds fixed in advance: on average the correlated posterior means are within 0.25
    posterior SD of the fixed-effects estimates for every quantity, and the event-study 95%
    intervals cover the true beta (lags) and 0 (lead) in >= 90% of the seeds. The exchangeable
    model's average gap is measured beside it: it documents the bias the correlated structure
    removes (it must be farther from the fixed-effects fit than the correlated one)."""
    corr = pd.concat([_compare(s) for s in SLOW_SEEDS])  # concat skips the Nones
    exch = pd.concat([_compare(s, "exchangeable") for s in SLOW_SEEDS])
    assert corr["seed"].nunique() >= 20 and exch["seed"].nunique() >= 20
    gap = corr.groupby("column")["z"].mean()
    assert (gap.abs() < 0.25).all(), gap
    es = corr[corr["truth"].notna()]
    cover = ((es["ci_low"] <= es["truth"]) & (es["truth"] <= es["ci_high"])).groupby(
        es["column"]).mean()
    assert (cover >= 0.9).all(), cover
    exch_gap = exch.groupby("column")["z"].mean()
    assert exch_gap.abs().mean() > gap.abs().mean(), (exch_gap, gap)


# Measured 2026-12-06 (run by seed in the background: seeds 1-19 before one deadline, 20-25
# after it with the same code and settings; seeds 1-7 before the parameterization rule's last
# change, which left them non-centred as now): correlated, all 24 usable seeds (1-7, 9-25; 8
# separated): mean (Bayes - FE) / posterior SD -0.04 (ETWFE ATT), -0.02, 0.00, +0.01 (event
# times -2, 0, 1), largest |z| 0.29 (seed 25, ETWFE); event-study intervals covered the truth
# in 22/24 (event time -2), 23/24 (0) and 23/24 (1) seeds; three of the 20-25 fits missed the
# test's lenient gate (seed 22 event study, seed 25 ETWFE), counted, not dropped.
# Exchangeable, 23 seeds: mean +0.32 (ETWFE), +0.42, +0.42, +0.19, largest 1.35; coverage at
# event time 1 19/23 (83%).
