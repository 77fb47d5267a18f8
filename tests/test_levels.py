"""Sampling correlated random effects through the unit levels (bayes_pool.bayes.levels): the
same posterior as Bambi's formula, written so NUTS need not learn the ridge between the unit
intercepts and the unit means' coefficients. SYNTHETIC data (tests/worlds.py)."""

from __future__ import annotations

from dataclasses import replace

import arviz as az
import numpy as np
import pytest
from scipy import stats

from bayes_pool.bayes import did as bayes_did
from bayes_pool.bayes.levels import LEVEL_SUFFIX, applies, level_vehicle, unit_level_terms
from bayes_pool.bayes.predictor import flat
from bayes_pool.bayes.sampling import sample_bambi
from bayes_pool.design import DiDDesign
from bayes_pool.specs import load_spec
from tests.worlds import confounded_panel

UNIT = "1|region"
MEANS = ["mean_d", "mean_x", "mean_wave_2", "mean_wave_3"]


def _prepared(family: str):
    frame, _ = confounded_panel(14, n=1500, family=family)
    return DiDDesign(outcome="y", treatment="d", unit="region", time="wave", covariates=("x",),
                     family=family).prepare(frame)


def _spec(family: str, **model):
    spec = load_spec("did_logit" if family == "bernoulli" else "did_linear")
    return replace(spec, **model).with_sampler(parameterization="centered")


def _student_t_means(spec):
    """A prior set whose unit-mean coefficients are not Normal: no closed-form collapse."""
    return replace(spec, priors={**spec.priors,
                                 "unit_means": {"dist": "StudentT", "nu": 4, "mu": 0.0,
                                                "sigma": 5.0}})


def _points(pm_model, n=3, seed=0):
    rng = np.random.default_rng(seed)
    start = pm_model.initial_point()
    return [{k: rng.normal(0, 0.7, size=np.shape(v)) for k, v in start.items()}
            for _ in range(n)]


def _deterministic(pm_model, name):
    return pm_model.compile_fn(pm_model.replace_rvs_by_values([pm_model[name]])[0],
                               inputs=pm_model.value_vars, on_unused_input="ignore")


@pytest.mark.parametrize("family,unit_time", [("bernoulli", False), ("bernoulli", True),
                                              ("gaussian", False)])
def test_collapsed_density_times_conditional_is_bambis_joint(family, unit_time):
    """p(a, theta, rest) = p(a, rest) p(theta | a, sigma): Bambi's log density at (theta,
    u = a - W theta) equals the collapsed model's at the levels a plus the log density of
    theta = (alpha, xi) under the conditional the completion draws from. Checks the marginal
    covariance, the prior means and SDs, the predictor centring and the conditional at once."""
    prepared = _prepared(family)
    model, _ = bayes_did.build(prepared, _spec(family, unit_time=unit_time))
    vehicle = level_vehicle(model, UNIT)
    assert vehicle.collapsed and vehicle.between == MEANS
    collapsed, bambi = vehicle.model, model.backend.model
    sigma_of = _deterministic(collapsed, f"{UNIT}_sigma")
    rng = np.random.default_rng(1)
    for point in _points(collapsed):
        a = point[f"{UNIT}{LEVEL_SUFFIX}"]
        sigma = np.atleast_1d(sigma_of(point))
        mean, prec = vehicle.conditional(a[None], sigma)
        theta = mean[0] + rng.normal(0, 0.3, size=mean.shape[1])
        other = {k: v for k, v in point.items() if k != f"{UNIT}{LEVEL_SUFFIX}"}
        other["Intercept"] = theta[:1].reshape(np.shape(bambi.initial_point()["Intercept"]))
        for j, name in enumerate(MEANS, start=1):
            other[name] = theta[j]
        other[UNIT] = a - vehicle.level_design @ theta
        assert set(other) == {v.name for v in bambi.value_vars}
        cond = stats.multivariate_normal(mean[0], np.linalg.inv(prec[0])).logpdf(theta)
        np.testing.assert_allclose(collapsed.compile_logp()(point) + cond,
                                   bambi.compile_logp()(other), rtol=1e-9)


def test_centred_levels_have_bambis_log_density():
    """With a non-Normal prior on the means' coefficients the levels are sampled
    hierarchically centred, a shift of Bambi's intercepts (unit Jacobian): equal log density
    at u = a - (alpha + means x xi)."""
    prepared = _prepared("bernoulli")
    model, _ = bayes_did.build(prepared, _student_t_means(_spec("bernoulli")))
    vehicle = level_vehicle(model, UNIT)
    assert not vehicle.collapsed
    levels, bambi = vehicle.model, model.backend.model
    theta_of = [_deterministic(levels, n) for n in ["Intercept", *MEANS]]
    for point in _points(levels):
        theta = np.concatenate([np.atleast_1d(f(point)) for f in theta_of])
        other = {k: v for k, v in point.items() if k != f"{UNIT}{LEVEL_SUFFIX}"}
        other[UNIT] = point[f"{UNIT}{LEVEL_SUFFIX}"] - vehicle.level_design @ theta
        np.testing.assert_allclose(levels.compile_logp()(point), bambi.compile_logp()(other),
                                   rtol=1e-10)


def test_conditional_draws_have_the_conditional_moments():
    """The completion's draws of theta given fixed levels: mean within 4 Monte Carlo SEs of
    the conditional mean, variances within 4 SEs (20,000 draws)."""
    model, _ = bayes_did.build(_prepared("bernoulli"), _spec("bernoulli"))
    vehicle = level_vehicle(model, UNIT)
    k = vehicle.level_design.shape[0]
    a = np.random.default_rng(3).normal(0, 1, size=k)
    n = 20_000
    draws = vehicle._conditional_draws(np.tile(a, (n, 1)), np.full(n, 0.8),
                                       np.random.default_rng(4))
    mean, prec = vehicle.conditional(a[None], np.array([0.8]))
    sd = np.sqrt(np.diag(np.linalg.inv(prec[0])))
    assert np.all(np.abs(draws.mean(0) - mean[0]) < 4 * sd / np.sqrt(n))
    assert np.all(np.abs(draws.std(0) / sd - 1) < 4 / np.sqrt(2 * n))


@pytest.mark.slow  # two full fits; the density identities above are the fast-tier check
def test_fit_through_levels_matches_bambis_model():
    """Both ways of sampling the same model on the same data: posterior means of beta, the
    treatment mean's coefficient and the AME agree within 4 combined Monte Carlo SEs; the
    trace has Bambi's variables and no levels; the manifest says how it was sampled."""
    prepared = _prepared("bernoulli")
    spec = _spec("bernoulli").with_sampler(chains=2, draws=500, tune=500)
    res = bayes_did.fit_did(prepared, spec, seed=5)
    assert res.structure.to_dict()["sampled_as"].startswith("sampled through the unit levels")
    post = res.idata["posterior"]
    assert f"{UNIT}{LEVEL_SUFFIX}" not in post and {UNIT, "Intercept", *MEANS} <= set(post)
    plain, _ = bayes_did.build(prepared, spec)  # Bambi's model, sampled as written
    ref = sample_bambi(plain, spec.sampler, seed=5)
    bayes_did.add_ame_draws(plain, ref, prepared)
    for var in ("d", "mean_d", "ame_d", "Intercept"):
        a, b = flat(post[var]), flat(ref["posterior"][var])
        mcse = np.hypot(float(az.mcse(post[var])), float(az.mcse(ref["posterior"][var])))
        assert abs(a.mean() - b.mean()) < 4 * mcse, (var, a.mean(), b.mean(), mcse)


def test_levels_apply_only_to_centred_intercepts_with_unit_level_terms():
    prepared = _prepared("bernoulli")
    exch, _ = bayes_did.build(prepared, _spec("bernoulli", unit_effects="exchangeable"))
    assert not applies(exch, UNIT) and unit_level_terms(exch, UNIT) == []
    assert level_vehicle(exch, UNIT) is None
    nc, _ = bayes_did.build(prepared, _spec("bernoulli").with_sampler(
        parameterization="noncentered"))
    assert unit_level_terms(nc, UNIT) == MEANS and not applies(nc, UNIT)
