"""Hierarchically centred unit levels (bayes_pool.bayes.levels): the same model as Bambi's
correlated-random-effects formula, written so NUTS need not learn the ridge between the unit
intercepts and the unit means' coefficients. SYNTHETIC data (tests/worlds.py)."""

from __future__ import annotations

from dataclasses import replace

import bambi as bmb
import numpy as np
import pytest

from bayes_pool.bayes import did as bayes_did
from bayes_pool.bayes.families import bambi_family
from bayes_pool.bayes.levels import LEVEL_SUFFIX, can_centre, unit_level_terms
from bayes_pool.design import DiDDesign
from bayes_pool.specs import load_spec
from tests.worlds import confounded_panel


def _prepared(family: str, **world):
    frame, _ = confounded_panel(14, n=1500, family=family, **world)
    return DiDDesign(outcome="y", treatment="d", unit="region", time="wave", covariates=("x",),
                     family=family).prepare(frame)


def _spec(family: str, **model):
    spec = load_spec("did_logit" if family == "bernoulli" else "did_linear")
    return replace(spec, **model).with_sampler(parameterization="centered")


def _bambi(prepared, spec):
    """Bambi's own build of the same formula and priors (no centring of levels)."""
    st = bayes_did.unit_structure(prepared, spec)
    model = bmb.Model(bayes_did.formula(prepared, st), st.frame,
                      family=bambi_family(prepared.design.family),
                      priors=bayes_did.priors(prepared, spec, st), noncentered=False)
    model.build()
    return model


@pytest.mark.parametrize("family,unit_time", [("bernoulli", False), ("bernoulli", True),
                                              ("gaussian", False)])
def test_levels_have_bambis_log_density(family, unit_time):
    """The levels are a shift of Bambi's intercepts by the other parameters (unit Jacobian),
    so at corresponding points -- u = level - (alpha + mean columns x xi) -- both models have
    the same log density, to rounding. Any slip in the centring of the predictors, the level
    mean or the likelihood would show here."""
    prepared = _prepared(family)
    spec = _spec(family, unit_time=unit_time)
    model, st = bayes_did.build(prepared, spec)
    assert st.centred_levels == ["mean_d", "mean_x", "mean_wave_2", "mean_wave_3"]
    plain = _bambi(prepared, spec)
    levels, bambi_pm = model.backend.model, plain.backend.model
    unit = "1|region"
    u_of = levels.compile_fn(levels.replace_rvs_by_values([levels[unit]])[0],
                             inputs=levels.value_vars, on_unused_input="ignore")
    logp_levels, logp_bambi = levels.compile_logp(), bambi_pm.compile_logp()
    rng = np.random.default_rng(0)
    for _ in range(3):
        point = {v.name: rng.normal(0, 0.7, size=levels.initial_point()[v.name].shape)
                 for v in levels.value_vars}
        other = {k: v for k, v in point.items() if k != f"{unit}{LEVEL_SUFFIX}"}
        other[unit] = u_of(point)
        assert set(other) == {v.name for v in bambi_pm.value_vars}
        np.testing.assert_allclose(logp_levels(point), logp_bambi(other), rtol=1e-10)


def test_levels_apply_only_with_unit_level_terms():
    """Exchangeable intercepts have nothing to centre on: the model stays Bambi's."""
    prepared = _prepared("bernoulli")
    spec = _spec("bernoulli", unit_effects="exchangeable")
    model, st = bayes_did.build(prepared, spec)
    assert st.centred_levels is None and not can_centre(model, "1|region")
    assert unit_level_terms(model, "1|region") == []
    assert "1|region" in {v.name for v in model.backend.model.free_RVs}


def test_noncentred_units_keep_bambis_model():
    prepared = _prepared("bernoulli")
    spec = replace(_spec("bernoulli"), sampler=replace(_spec("bernoulli").sampler,
                                                       parameterization="noncentered"))
    model, st = bayes_did.build(prepared, spec)
    assert st.centred_levels is None
    assert "1|region_offset" in {v.name for v in model.backend.model.free_RVs}
