"""``unit_effects = "fixed"``: a design with a handful of units (a 2x2 has two groups) gets
one dummy per unit among the common terms, nothing pooled, and a partially pooled model with
fewer than 5 units is refused with a message that says what to do.

The 2x2 is Wooldridge's Example 13.4 shape (``y ~ after + group + after:group``, the DiD the
interaction): generated here with two groups, two periods and a known effect; under vague
priors the Bayesian posterior mean of the DiD must sit within 0.1 posterior SD of OLS.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import statsmodels.formula.api as smf

import bayes_pool as bp
from bayes_pool.design import DiDDesign
from bayes_pool.errors import SpecError
from bayes_pool.specs import load_spec

EFFECT = 0.19


def two_by_two(seed: int = 13, n: int = 1200) -> pd.DataFrame:
    """Two groups x two periods (synthetic): group 1 is treated after the change."""
    rng = np.random.default_rng(seed)
    group = rng.integers(0, 2, n)
    after = rng.integers(0, 2, n)
    y = 1.1 + 0.05 * group + 0.25 * after + EFFECT * group * after + rng.normal(0, 1.2, n)
    return pd.DataFrame({"group": np.where(group == 1, "high", "low"), "after": after,
                         "treated": group * after, "y": y})


def vague(frame: pd.DataFrame):
    """did_linear with Normal(0, 10 sd(y)) on every coefficient (the vague set's idea)."""
    wide = {"dist": "Normal", "mu": 0.0, "sigma": 10 * float(frame["y"].std())}
    spec = load_spec("did_linear").with_priors(
        {"intercept": wide, "treatment": wide, "covariates": wide, "time": wide})
    return spec.with_sampler(chains=2, draws=500, tune=500).with_unit_effects("fixed")


def test_two_by_two_posterior_mean_within_a_tenth_sd_of_ols():
    frame = two_by_two()
    ols = smf.ols("y ~ after + C(group) + treated", data=frame).fit()
    result = bp.did(frame, outcome="y", treatment="treated", unit="group", time="after",
                    family="gaussian", spec=vague(frame), seed=3, vcov="iid")
    rows = result.tidy()
    bayes = rows[(rows["source"] == "bayesian") & (rows["quantity"] == "beta")].iloc[0]
    freq = rows[(rows["source"] == "frequentist") & (rows["quantity"] == "beta")].iloc[0]
    assert freq["estimate"] == pytest.approx(ols.params["treated"], abs=1e-10)
    assert freq["se"] == pytest.approx(ols.bse["treated"], abs=1e-10)  # iid, as regress
    assert bayes["ess_bulk"] > 300 and bayes["r_hat"] < 1.02
    assert abs(bayes["estimate"] - ols.params["treated"]) < 0.1 * bayes["se"]
    assert bayes["se"] == pytest.approx(ols.bse["treated"], rel=0.1)
    assert "fixed unit effects" in bayes["note"] and "regression" in bayes["note"]
    facts = next(iter(result.analysis.facts.values()))
    assert facts["unit_structure"]["unit_effects"] == "fixed"
    assert "C(group)" in facts["formula"] and "|" not in facts["formula"]


def test_partial_pooling_with_two_units_is_refused():
    frame = two_by_two(n=200)
    with pytest.raises(SpecError, match="'group' has only 2 units.*--unit-effects fixed"):
        bp.did(frame, outcome="y", treatment="treated", unit="group", time="after",
               family="gaussian", draws=10, tune=10, chains=1)


def test_fixed_units_have_no_group_term_and_take_the_covariates_prior():
    from bayes_pool.bayes.did import build
    frame = two_by_two(n=200)
    design = DiDDesign(outcome="y", treatment="treated", unit="group", time="after",
                       family="gaussian")
    model, structure = build(design.prepare(frame), vague(frame))
    mu = model.components["mu"]
    assert not mu.group_specific_terms
    term = mu.common_terms["C(group)"]
    assert term.prior.args["sigma"] == pytest.approx(10 * frame["y"].std())
    assert structure.to_dict()["unit_effects"] == "fixed"


def test_unknown_unit_effects_names_the_choices():
    with pytest.raises(SpecError, match="unit_effects must be one of"):
        bp.did(two_by_two(n=50), outcome="y", treatment="treated", unit="group",
               time="after", family="gaussian", unit_effects="random")


def _cli_args(path):
    return ["did", "--data", str(path), "--outcome", "y", "--treatment", "treated",
            "--unit", "group", "--time", "after", "--family", "gaussian"]


def test_cli_refuses_pooling_two_groups_before_any_folder(tmp_path, outputs):
    from typer.testing import CliRunner

    from bayes_pool.cli import app
    path = tmp_path / "two_by_two.csv"
    two_by_two(n=200).to_csv(path, index=False)
    res = CliRunner().invoke(app, _cli_args(path) + ["--unit-effects", "exchangeable"])
    assert res.exit_code == 2
    assert "'group' has only 2 units" in res.output and "--unit-effects fixed" in res.output
    assert not outputs.exists()


def test_cli_vcov_iid_and_fixed_units_reach_the_rows_and_the_manifest(tmp_path, outputs):
    import json

    from typer.testing import CliRunner

    from bayes_pool.cli import app
    path = tmp_path / "two_by_two.csv"
    frame = two_by_two(n=400)
    frame.to_csv(path, index=False)
    res = CliRunner().invoke(app, _cli_args(path) + ["--vcov", "iid", "--unit-effects",
                                                     "fixed", "--frequentist-only"])
    assert res.exit_code == 0, res.output
    (run_dir,) = list((outputs / "did").iterdir())
    est = pd.read_csv(run_dir / "estimates.csv")
    beta = est[(est["term"] == "treated") & (est["quantity"] == "beta")].iloc[0]
    ols = smf.ols("y ~ after + C(group) + treated", data=frame).fit()
    assert beta["se"] == pytest.approx(ols.bse["treated"], rel=1e-8)
    assert "as Stata regress" in beta["note"]
    manifest = json.loads((run_dir / "manifest.json").read_text())
    assert manifest["spec"]["unit_effects"] == "fixed"
    (facts,) = manifest["facts"].values()
    assert facts["vcov"]["type"] == "iid" and facts["vcov"]["cluster"] == "group"


def test_models_without_a_fixed_form_refuse_it_instead_of_pooling_silently():
    """The extended TWFE / event study and the pooled heterogeneity model have no fixed-units
    form: asked for one, they stop naming the analysis rather than fit partial pooling."""
    from bayes_pool.bayes import etwfe, heterogeneity
    from bayes_pool.subgroups import Split
    fixed = load_spec("did_linear").with_unit_effects("fixed")
    frame = pd.DataFrame({"y": [0.1, 0.2, 0.4, 0.3], "d": [0, 0, 0, 1], "u": [1, 1, 2, 2],
                          "t": [1, 2, 1, 2], "first_treat": [0, 0, 2, 2], "x": [0, 1, 0, 1]})
    with pytest.raises(SpecError, match="extended TWFE"):
        etwfe.build_model(frame, outcome="y", effects=["d"], covariates=(), unit="u",
                          time="t", family="gaussian", spec=fixed)
    with pytest.raises(SpecError, match="heterogeneity"):
        heterogeneity.pooled_data(frame, DiDDesign("y", "d", "u", "t", family="gaussian"),
                                  Split(by="x", low="0", high="1"), fixed)
