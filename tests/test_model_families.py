"""The toolkit's faster ways of writing Bambi's models leave the posterior as it was (issue 6).

The Bernoulli-logit likelihood (``bayes_pool.bayes.families``) must give Bambi's log density and
gradient at any point, not just on average; the centred/non-centred choice
(``bayes_pool.bayes.parameterization``) follows its stated rule.
"""

from __future__ import annotations

import bambi as bmb
import numpy as np
import pandas as pd
import pytest
from scipy.special import expit

from bayes_pool.bayes import did as bayes_did
from bayes_pool.bayes.families import LogitBernoulli, bambi_family
from bayes_pool.bayes.parameterization import CENTRED_MIN_MEDIAN_ROWS, noncentered
from bayes_pool.design import DiDDesign
from bayes_pool.errors import SpecError
from bayes_pool.specs import SamplerSettings, load_spec


def _frame(n=600, units=6, seed=0):
    rng = np.random.default_rng(seed)
    f = pd.DataFrame({"unit": rng.integers(0, units, n).astype(str),
                      "year": rng.choice([2014, 2016, 2018], n), "x": rng.normal(size=n),
                      "d": rng.integers(0, 2, n)})
    eta = -0.3 + 0.8 * f["d"] + 1.5 * f["x"]
    f["y"] = (rng.random(n) < expit(eta)).astype(int)
    return f


def _logp_and_grad(model: bmb.Model, points):
    m = model.backend.model
    logp, dlogp = m.compile_logp(), m.compile_dlogp()
    return [(logp(p), dlogp(p)) for p in points]


@pytest.mark.parametrize("centred", [False, True])
def test_logit_likelihood_matches_bambis_bernoulli_in_value_and_gradient(centred):
    frame = _frame()
    models = []
    for family in ("bernoulli", LogitBernoulli()):
        model = bmb.Model("y ~ d + x + C(year) + (1|unit)", frame, family=family,
                          noncentered=not centred)
        model.build()
        models.append(model)
    m = models[0].backend.model
    rng = np.random.default_rng(1)
    start = m.initial_point()
    points = [{k: v + rng.normal(scale=scale, size=np.shape(v)) for k, v in start.items()}
              for scale in (0.0, 0.5, 1.0, 2.0)]
    for (lp_b, g_b), (lp_t, g_t) in zip(*(_logp_and_grad(mod, points) for mod in models)):
        np.testing.assert_allclose(lp_t, lp_b, rtol=1e-10, atol=1e-8)
        np.testing.assert_allclose(g_t, g_b, rtol=1e-8, atol=1e-8)


def test_logit_likelihood_is_exact_where_bambi_clips():
    # Bambi clips p to [eps, 1 - eps]: beyond |eta| ~ 36 its log density stops at log(eps) and
    # its gradient is 0. The logit form keeps y*eta - log(1 + e^eta) and its slope y - p.
    frame = pd.DataFrame({"y": [0, 1]})
    model = bmb.Model("y ~ 1", frame, family=LogitBernoulli(), priors={
        "Intercept": bmb.Prior("Normal", mu=0.0, sigma=100.0)})
    model.build()
    m = model.backend.model
    likelihood = m.compile_logp(vars=m.observed_RVs)
    for eta in (-60.0, -5.0, 0.3, 45.0):
        expected = (frame["y"] * eta - np.logaddexp(0.0, eta)).sum()
        np.testing.assert_allclose(likelihood({"Intercept": eta}), expected, rtol=1e-12)


def test_logit_family_keeps_bambis_names_and_post_processing():
    frame = _frame(n=300)
    model = bmb.Model("y ~ d + x", frame, family=bambi_family("bernoulli"))
    assert model.family.name == "bernoulli" and model.family.link["p"].name == "logit"
    idata = model.fit(draws=200, tune=200, chains=2, cores=1, inference_method="nutpie",
                      random_seed=3, progressbar=False)
    # Bambi's own pointwise log-likelihood and posterior predictive still work (they evaluate
    # the fitted model on probabilities) and agree with the logit form row by row.
    ll = model.compute_log_likelihood(idata, inplace=False)["log_likelihood"]["y"]
    post = idata["posterior"]
    eta = (post["Intercept"].values[..., None] + post["d"].values[..., None] * frame["d"].values
           + post["x"].values[..., None] * frame["x"].values)
    expected = frame["y"].values * eta - np.logaddexp(0.0, eta)
    np.testing.assert_allclose(np.asarray(ll), expected, rtol=1e-9, atol=1e-9)
    pp = model.predict(idata, kind="response", inplace=False)["posterior_predictive"]["y"]
    assert set(np.unique(pp.values)) <= {0, 1}
    assert bambi_family("gaussian") == "gaussian"


def test_auto_parameterization_centres_data_rich_units_only():
    rich = pd.DataFrame({"unit": np.repeat(list("abc"), CENTRED_MIN_MEDIAN_ROWS)})
    panel = pd.DataFrame({"unit": np.repeat(np.arange(500), 3)})
    assert noncentered(rich, "unit") is False
    assert noncentered(panel, "unit") is True
    assert noncentered(rich, "unit", "noncentered") is True
    assert noncentered(panel, "unit", "centered") is False
    with pytest.raises(SpecError, match="parameterization"):
        SamplerSettings(parameterization="centred-ish")


def test_did_model_uses_the_spec_parameterization():
    frame = _frame(n=1200, units=4)
    design = DiDDesign(outcome="y", treatment="d", unit="unit", time="year", covariates=("x",),
                       family="bernoulli")
    prepared = design.prepare(frame)
    spec = load_spec("did_logit")
    names = {s: {rv.name for rv in bayes_did.build_model(
        prepared, spec.with_sampler(parameterization=s)).backend.model.free_RVs}
        for s in ("auto", "noncentered", "centered")}
    # "auto" follows the unit-information rule (issue 18), not the 300 rows a unit
    auto_nc = bayes_did.unit_structure(prepared, spec).parameterization.noncentered
    assert ("1|unit_offset" in names["auto"]) is auto_nc
    assert "1|unit_offset" in names["noncentered"]
    assert "1|unit" in names["centered"] and "1|unit_offset" not in names["centered"]
    assert isinstance(bayes_did.build_model(prepared, spec).family, LogitBernoulli)
