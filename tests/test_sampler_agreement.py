"""Slow tier (issue 6): the toolkit's fast default path (its Bernoulli-logit likelihood, centred
province intercepts, nutpie with a low-rank mass matrix, 500 tuning steps) draws the same
posterior as Bambi's own model with PyMC's default NUTS (1000 tuning steps).

Benchmark model: Table 3 column (2) on the default SYNTHETIC data (n = 6,274 complete cases),
4 chains x 1000 draws for both, fixed seeds. The posterior mean and
SD of ``policy`` (and of its AME) must agree within Monte Carlo error: the difference of the
two estimates divided by the root sum of squares of their MCSEs (ArviZ ``mcse_mean`` /
``mcse_sd``) is below 3 in absolute value -- about a 0.3% chance per comparison of failing
when both samplers are right.
"""

from __future__ import annotations

import arviz_stats as azs
import bambi as bmb
import numpy as np
import pytest

from bayes_pool.bayes import did as bayes_did
from bayes_pool.specs import load_spec
from bayes_pool.studies.pooling_did import pipeline
from bayes_pool.studies.pooling_did.synthetic import simulate

pytestmark = pytest.mark.slow


def _summary(idata, names):
    summ = azs.summary(idata, var_names=names, kind="all")
    return {n: summ.loc[n] for n in names}


def test_nutpie_low_rank_and_pymc_default_agree_within_mc_error():
    frame = simulate().frame
    main = frame[frame["year"].isin(pipeline.MAIN_WAVES)].reset_index(drop=True)
    prepared = pipeline.table3_design("(2)").prepare(main)
    spec = load_spec("did_logit")
    assert spec.sampler.backend == "nutpie" and spec.sampler.adaptation == "auto"
    fast = bayes_did.fit_did(prepared, spec, seed=11)
    assert fast.idata["posterior"].attrs["mass_matrix"].startswith("low_rank (auto")
    bambi_model = bmb.Model(bayes_did.formula(prepared), prepared.frame, family="bernoulli",
                            priors=bayes_did.priors(prepared, spec))
    idata = bambi_model.fit(draws=1000, tune=1000, chains=4, cores=2, inference_method="pymc",
                            random_seed=12, progressbar=False)
    bayes_did.add_ame_draws(bambi_model, idata, prepared)
    reference = bayes_did.BayesDiDResult(prepared=prepared, spec=spec, model=bambi_model,
                                         idata=idata)
    names = ["policy", "ame_policy"]
    a, b = _summary(fast.idata, names), _summary(reference.idata, names)
    for name in names:
        for stat, mcse in (("mean", "mcse_mean"), ("sd", "mcse_sd")):
            z = (a[name][stat] - b[name][stat]) / np.hypot(a[name][mcse], b[name][mcse])
            print(f"{name} {stat}: nutpie {a[name][stat]:.5f} pymc {b[name][stat]:.5f} z={z:.2f}")
            assert abs(z) < 3, (name, stat, z)
    assert fast.divergences == 0 and reference.divergences == 0
