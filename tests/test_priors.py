"""Prior sets: loading, errors, resolution of references, and the values reaching Bambi."""

from __future__ import annotations

import pytest

from bayes_pool.bayes import did as bayes_did
from bayes_pool.bayes import linear as bayes_linear
from bayes_pool.design import DiDDesign
from bayes_pool.errors import SpecError
from bayes_pool.priors import (PRIORS_DIR, apply_prior_set, available, load_prior_set, resolve,
                               select)
from bayes_pool.published import published_value
from bayes_pool.sensitivity import PublishedCell
from bayes_pool.specs import load_spec

DID_ROLES = ("intercept", "treatment", "covariates", "time", "unit_sd")
LINEAR_ROLES = ("intercept", "treatment", "covariates", "sigma")


@pytest.fixture(scope="module")
def prepared(panel):
    frame, _ = panel
    return DiDDesign(outcome="y", treatment="treated", unit="county", time="wave",
                     covariates=("x1", "x2"), family="bernoulli").prepare(frame)


def _term_prior(model, term):
    return model.parameters["p"].common_terms[term].prior


def test_shipped_sets_load_default_first():
    names = available()
    assert names[0] == "default"
    assert {"default", "vague", "sceptical", "optimistic", "halfnormal", "halfcauchy",
            "exponential"} <= set(names)
    assert [p.name for p in select("all")] == names
    assert load_prior_set("default").priors == {}


def test_unknown_set_and_bad_files_raise(tmp_path):
    with pytest.raises(SpecError, match="'nope' not found.*sceptical"):
        select("default,nope")
    with pytest.raises(SpecError, match="named twice"):
        select("vague,vague")
    (tmp_path / "bad_role.toml").write_text('[priors]\nslope = { dist = "Normal", mu = 0, sigma = 1 }\n')
    with pytest.raises(SpecError, match="unknown prior role.*slope"):
        load_prior_set("bad_role", folder=tmp_path)
    (tmp_path / "bad_ref.toml").write_text(
        '[priors]\ntreatment = { dist = "Normal", mu = { ref = "truth" }, sigma = 1 }\n')
    with pytest.raises(SpecError, match="unknown reference 'truth'"):
        load_prior_set("bad_ref", folder=tmp_path)


def test_user_set_is_a_file(tmp_path):
    (tmp_path / "mine.toml").write_text(
        '[set]\ndescription = "mine"\n[priors]\ntreatment = { dist = "StudentT", nu = 3, mu = 0, sigma = 0.5 }\n')
    (mine,) = select("mine", folder=tmp_path)
    spec = apply_prior_set(load_spec("did_logit"), mine, roles=DID_ROLES)
    assert spec.priors["treatment"] == {"dist": "StudentT", "nu": 3, "mu": 0, "sigma": 0.5}
    assert spec.priors["unit_sd"] == load_spec("did_logit").priors["unit_sd"]  # untouched


def test_values_land_in_the_bambi_model(prepared):
    spec = load_spec("did_logit")
    sceptical = apply_prior_set(spec, load_prior_set("sceptical"), roles=DID_ROLES)
    model = bayes_did.build_model(prepared, sceptical)
    prior = _term_prior(model, "treated")
    assert prior.name == "Normal" and prior.args["sigma"] == pytest.approx(0.1)

    vague = bayes_did.build_model(prepared, apply_prior_set(spec, load_prior_set("vague"),
                                                            roles=DID_ROLES))
    for term in ("treated", "x1", "x2", "C(wave)"):
        assert _term_prior(vague, term).args["sigma"] == pytest.approx(10.0)
    assert vague.parameters["p"].intercept_term.prior.args["sigma"] == pytest.approx(10.0)

    cauchy = bayes_did.build_model(prepared, apply_prior_set(spec, load_prior_set("halfcauchy"),
                                                             roles=DID_ROLES))
    sd_prior = cauchy.parameters["p"].group_specific_terms["1|county"].prior.args["sigma"]
    assert sd_prior.name == "HalfCauchy" and sd_prior.args["beta"] == pytest.approx(1.0)
    expo = bayes_did.build_model(prepared, apply_prior_set(spec, load_prior_set("exponential"),
                                                           roles=DID_ROLES))
    assert expo.parameters["p"].group_specific_terms["1|county"].prior.args["sigma"].name == \
        "Exponential"


def test_optimistic_reads_the_published_ledger(prepared):
    cell = PublishedCell("pooling-did", "3", "(2)", "policy", "beta")
    refs = {"published_estimate": cell.value(), "published_se": cell.value("se")}
    spec = apply_prior_set(load_spec("did_logit"), load_prior_set("optimistic"), roles=DID_ROLES,
                           refs=refs)
    assert spec.priors["treatment"]["mu"] == published_value("pooling-did", "3", "(2)", "policy",
                                                             "beta")
    assert spec.priors["treatment"]["sigma"] == pytest.approx(0.259)
    prior = _term_prior(bayes_did.build_model(prepared, spec), "treated")
    assert prior.args["mu"] == pytest.approx(0.653)
    with pytest.raises(SpecError, match="needs 'published_estimate'"):
        apply_prior_set(load_spec("did_logit"), load_prior_set("optimistic"), roles=DID_ROLES)


def test_linear_model_gets_the_gaussian_section_and_rejects_province_sets(panel):
    frame, _ = panel
    spec = load_spec("linear_regression")
    sd_y = float(frame["x1"].std())
    vague = apply_prior_set(spec, load_prior_set("vague"), roles=LINEAR_ROLES,
                            refs={"sd_y": sd_y})
    assert vague.priors["treatment"]["sigma"] == pytest.approx(10 * sd_y)
    assert "time" not in vague.priors
    model = bayes_linear.build_model(frame, outcome="x1", treatment="treated", covariates=["x2"],
                                     spec=vague)
    assert model.parameters["mu"].common_terms["treated"].prior.args["sigma"] == \
        pytest.approx(10 * sd_y)
    with pytest.raises(SpecError, match="none of which model 'linear_regression' has"):
        apply_prior_set(spec, load_prior_set("halfcauchy"), roles=LINEAR_ROLES)


def test_resolve_and_spec_checks():
    assert resolve({"treatment": {"dist": "Normal", "mu": 0, "sigma": {"ref": "sd_y", "times": 2}}},
                   {"sd_y": 3.0})["treatment"]["sigma"] == 6.0
    with pytest.raises(SpecError, match="unknown prior role"):
        load_spec("did_logit").with_priors({"slope": {"dist": "Normal"}})
    with pytest.raises(SpecError, match="non-numeric"):
        load_spec("did_logit").with_priors({"treatment": {"dist": "Normal", "mu": "x"}})
    assert PRIORS_DIR.name == "priors"
