"""Correlated random effects in the Bayesian DiD (issue 14, section 1), the optional unit x time
effect (section 2), the Laplace refits that must move the treatment's unit mean with the
treatment, and the unit-intercept parameterization chosen from each unit's information (issue 18,
item 3). All data are SYNTHETIC (tests/worlds.py, or generated here)."""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from scipy.special import expit

from bayes_pool.bayes import did as bayes_did
from bayes_pool.bayes.parameterization import choose, noncentered
from bayes_pool.bayes.predictor import flat
from bayes_pool.design import DiDDesign
from bayes_pool.freq.did import fit_did as fe_did
from bayes_pool.specs import load_spec
from tests.worlds import confounded_panel

SEED = 14  # the confounded world's default seed (the number), fixed before looking
SLOW_SEEDS = range(100, 120)  # 20 seeds of the slow tier, fixed before looking
TOL_SD = 0.25  # the acceptance: within 0.25 posterior SD of the fixed-effects estimate
QUICK = dict(chains=2, draws=500, tune=500)


def _design(family: str) -> DiDDesign:
    return DiDDesign(outcome="y", treatment="d", unit="region", time="wave", covariates=("x",),
                     family=family)


def _spec(family: str, **model):
    spec = load_spec("did_logit" if family == "bernoulli" else "did_linear")
    return replace(spec, **model)


def _gap(frame: pd.DataFrame, family: str, spec, seed: int) -> dict:
    """Posterior mean and SD of beta and the AME, the FE estimates, and the gaps in SDs."""
    prepared = _design(family).prepare(frame)
    fe = fe_did(prepared)
    res = bayes_did.fit_did(prepared, spec, seed=seed)
    post = res.idata["posterior"]
    out = {"divergences": res.divergences, "structure": res.structure}
    for q, var, fe_value in (("beta", "d", float(fe.result.params["Q('d')"])),
                             ("ame", "ame_d", float(fe.margeff.loc["d", "ame"]))):
        draws = flat(post[var])
        mean, sd = float(draws.mean()), float(draws.std(ddof=1))
        lo, hi = np.quantile(draws, [0.025, 0.975])
        out[q] = dict(mean=mean, sd=sd, fe=fe_value, gap_sd=(mean - fe_value) / sd, lo=lo, hi=hi)
    return out


# ---------------------------------------------------------------------- structure ---

def test_default_formula_adds_unit_means_and_exchangeable_keeps_the_old_model():
    frame, _ = confounded_panel(SEED)
    prepared = _design("bernoulli").prepare(frame)
    model, st = bayes_did.build(prepared, _spec("bernoulli"))
    assert st.unit_effects == "correlated"
    # treatment, covariate and (repeated cross-sections: unbalanced waves) period-dummy means
    assert st.means.sources == {"mean_d": "d", "mean_x": "x", "mean_wave_2": "wave == 2",
                                "mean_wave_3": "wave == 3"}
    assert set(st.mean_columns) <= set(model.parameters["p"].common_terms)
    always = frame["region"].isin(["r00", "r01", "r02"])
    assert np.allclose(st.frame.loc[always, "mean_d"], 1.0)
    assert np.allclose(st.frame.loc[frame["region"] == "r29", "mean_d"], 0.0)
    exch, st_x = bayes_did.build(prepared, _spec("bernoulli", unit_effects="exchangeable"))
    assert st_x.means is None
    assert bayes_did.formula(prepared, st_x) == "y ~ d + x + C(wave) + (1|region)"
    assert not set(exch.parameters["p"].common_terms) & {"mean_d", "mean_x"}


def test_means_are_recomputed_from_the_frame_a_refit_is_given():
    """A placebo refit (another treatment column) gets the unit means of that column."""
    frame, truth = confounded_panel(SEED)
    placebo = frame.assign(d=((frame["region"] == "r20") & (frame["wave"] >= 2)).astype(int))
    st = bayes_did.unit_structure(_design("bernoulli").prepare(placebo), _spec("bernoulli"))
    expected = placebo.groupby("region")["d"].transform("mean")
    np.testing.assert_allclose(st.frame["mean_d"], expected)
    assert st.frame.loc[placebo["region"].isin(truth["always_treated"]), "mean_d"].max() == 0


def test_unit_means_prior_role_reaches_the_model_and_prior_sets_cover_it():
    from bayes_pool.priors import apply_prior_set, load_prior_set
    from bayes_pool.sensitivity import Target

    frame, _ = confounded_panel(SEED)
    prepared = _design("bernoulli").prepare(frame)
    spec = _spec("bernoulli").with_priors({"unit_means": {"dist": "Normal", "mu": 0.0,
                                                          "sigma": 1.5}})
    model, st = bayes_did.build(prepared, spec)
    for name in st.mean_columns:
        assert model.parameters["p"].common_terms[name].prior.args["sigma"] == 1.5
    roles = Target(kind="did", study="s", table="t", column="c", outcome="y", treatment="d",
                   prepared=prepared).roles
    vague = apply_prior_set(_spec("bernoulli"), load_prior_set("vague"), roles=roles)
    assert vague.priors["unit_means"]["sigma"] == 10.0
    timed = apply_prior_set(_spec("bernoulli", unit_time=True), load_prior_set("halfcauchy"),
                            roles=roles)
    model, _ = bayes_did.build(prepared, timed)
    sd = model.parameters["p"].group_specific_terms["1|region:wave"].prior.args["sigma"]
    assert sd.name == "HalfCauchy"


def test_unit_time_effect_adds_one_intercept_per_cell_with_its_prior():
    frame, _ = confounded_panel(SEED)
    prepared = _design("bernoulli").prepare(frame)
    model, st = bayes_did.build(prepared, _spec("bernoulli", unit_time=True))
    term = model.parameters["p"].group_specific_terms["1|region:wave"]
    assert term.data.shape[1] == frame.groupby(["region", "wave"]).ngroups
    assert term.prior.args["sigma"].name == "HalfNormal"
    assert term.prior.args["sigma"].args["sigma"] == 1.0
    assert st.to_dict()["unit_time"] is True
    plain, _ = bayes_did.build(prepared, _spec("bernoulli"))
    assert "1|region:wave" not in plain.parameters["p"].group_specific_terms


def test_ame_holds_the_unit_means_at_their_data_values():
    """The AME draws equal Bambi's own predictions with d set to 1 and to 0 and the unit-mean
    columns at their data values; moving the treatment's unit mean with d would differ."""
    frame, _ = confounded_panel(SEED, n=800)
    prepared = _design("bernoulli").prepare(frame)
    res = bayes_did.fit_did(prepared, _spec("bernoulli").with_sampler(chains=1, draws=50,
                                                                      tune=100), seed=1)
    f = res.structure.frame

    def p(data):
        pred = res.model.predict(res.idata, data=data, kind="response_params", inplace=False)
        da = pred["posterior"]["p"].transpose("chain", "draw", ...)
        return np.asarray(da).reshape(-1, len(data))

    p1, p0 = p(f.assign(d=1)), p(f.assign(d=0))
    np.testing.assert_allclose(flat(res.idata["posterior"]["ame_d"]), (p1 - p0).mean(axis=1),
                               rtol=1e-6)
    moved = (p(f.assign(d=1, mean_d=1.0)) - p(f.assign(d=0, mean_d=0.0))).mean(axis=1)
    assert np.max(np.abs(moved - (p1 - p0).mean(axis=1))) > 1e-3


# ----------------------------------------------- identification: confounded levels ---

@pytest.mark.parametrize("family", ["bernoulli", "gaussian"])
def test_correlated_effects_match_fixed_effects_and_exchangeable_ones_do_not(family):
    """Default seed: the posterior means of beta and the AME are within 0.25 posterior SD of
    the FE estimates; exchangeable intercepts (the old default) sit further away (printed)."""
    frame, truth = confounded_panel(SEED, family=family)
    cre = _gap(frame, family, _spec(family).with_sampler(**QUICK), seed=3)
    exch = _gap(frame, family, _spec(family, unit_effects="exchangeable").with_sampler(**QUICK),
                seed=3)
    print(f"{family}: gap in posterior SDs, correlated beta {cre['beta']['gap_sd']:+.3f} "
          f"ame {cre['ame']['gap_sd']:+.3f}; exchangeable beta {exch['beta']['gap_sd']:+.3f} "
          f"ame {exch['ame']['gap_sd']:+.3f}")
    assert cre["divergences"] == 0
    for q in ("beta", "ame"):
        assert abs(cre[q]["gap_sd"]) <= TOL_SD, (q, cre[q])
        assert abs(exch[q]["gap_sd"]) > abs(cre[q]["gap_sd"]), (q, exch[q], cre[q])


@pytest.mark.slow
@pytest.mark.parametrize("family", ["bernoulli", "gaussian"])
def test_correlated_effects_over_seeds(family):
    """20 seeds: the average gap to FE is within 0.25 posterior SD for beta and the AME, and
    the 95% interval covers the true beta in >= 90% of seeds (count and exact binomial
    interval printed)."""
    gaps = {"beta": [], "ame": []}
    covered = 0
    for seed in SLOW_SEEDS:
        frame, truth = confounded_panel(seed, family=family)
        res = _gap(frame, family, _spec(family), seed=seed)
        for q in gaps:
            gaps[q].append(res[q]["gap_sd"])
        covered += int(res["beta"]["lo"] <= truth["beta"] <= res["beta"]["hi"])
    n = len(SLOW_SEEDS)
    ci = stats.binomtest(covered, n).proportion_ci(method="exact")
    print(f"{family}: mean gap beta {np.mean(gaps['beta']):+.3f} SD, ame "
          f"{np.mean(gaps['ame']):+.3f} SD; coverage {covered}/{n} "
          f"(exact 95% CI {ci.low:.2f}-{ci.high:.2f})")
    for q in gaps:
        assert abs(np.mean(gaps[q])) <= TOL_SD, (q, gaps[q])
    assert covered >= 0.9 * n


# ------------------------------------------------------------------------ Laplace ---

def test_laplace_refit_moves_the_treatments_unit_mean_with_the_treatment():
    """A refit with a placebo treatment through pm.Data equals a model compiled afresh on the
    frame holding that treatment (same unit SD): the treatment's unit mean was swapped too."""
    from bayes_pool.bayes.fast import laplace_model

    frame, _ = confounded_panel(SEED, n=1500)
    prepared = _design("bernoulli").prepare(frame)
    # fixed prior scales: Bambi's default ones are scaled to each column's spread, which a
    # model compiled afresh would rescale to the placebo's unit means
    fixed = {"dist": "Normal", "mu": 0.0, "sigma": 2.5}
    spec = _spec("bernoulli").with_priors({"unit_means": fixed, "covariates": fixed,
                                           "intercept": fixed})
    fast = laplace_model(prepared, spec, unit_sd=0.6)
    placebo = ((frame["region"].isin(["r10", "r11", "r12"])) & (frame["wave"] >= 2)) \
        .astype(int).to_numpy()
    swapped = fast.fit(placebo)
    fresh = laplace_model(_design("bernoulli").prepare(frame.assign(d=placebo)), spec,
                          unit_sd=0.6).fit()
    assert swapped.converged and fresh.converged
    for field in ("beta_mean", "beta_sd", "ame_mean", "ame_sd"):
        assert getattr(swapped, field) == pytest.approx(getattr(fresh, field), rel=1e-5,
                                                        abs=1e-7), field
    # the actual treatment brings the actual unit means back
    fast.fit()
    np.testing.assert_allclose(fast.design, fast.base_design)
    j = fast.mean_index
    np.testing.assert_allclose(fast.design[:, j], frame.groupby("region")["d"]
                               .transform("mean").to_numpy())


@pytest.mark.slow  # four Laplace compiles with 90 cell effects: ~40 s of CPU
def test_laplace_unit_time_effect_finds_the_shock_sd_and_widens_beta():
    """The Laplace model with ``unit_time = true``: the unit x time SD at its marginal mode is
    near the world's shock SD and near 0 without shocks, and with shocks the policy interval
    is wider than the model without the effect gives.

    Tolerance: 30 units x 3 waves = 90 cells of ~33 rows (logit sampling variance of a cell
    level v ~ 1/(33 x 0.2) ~ 0.15); a moment estimate of tau^2 from 90 cells has SE ~
    sqrt(2 / 90) (tau^2 + v), i.e. 0.08 at tau = 0.6 and 0.02 at tau = 0, so 3 SE bands give
    0.36-0.77 and < 0.26."""
    from bayes_pool.bayes.fast import laplace_model

    spec = _spec("bernoulli", unit_time=True)
    sds = {}
    for shock in (0.6, 0.0):
        frame, _ = confounded_panel(SEED, n=3000, shock_sd=shock)
        prepared = _design("bernoulli").prepare(frame)
        fast = laplace_model(prepared, spec, seed=0)
        sds[shock] = fast.unit_time_sd
        if shock:
            widened = fast.fit()
            plain = laplace_model(prepared, _spec("bernoulli"), seed=0).fit()
            assert widened.converged and plain.converged
            assert widened.beta_sd > 1.05 * plain.beta_sd, (widened, plain)
            assert "unit x time SD at" in fast.sd_note()
    assert 0.36 <= sds[0.6] <= 0.77, sds
    assert sds[0.0] < 0.26, sds


# ---------------------------------------------------------------- parameterization ---

def county_panel(seed: int = 18, units: int = 400, periods: int = 5, unit_sd: float = 1.5,
                 resid_sd: float = 0.1, effect: float = 0.2) -> pd.DataFrame:
    """SYNTHETIC Gaussian county panel (issue 18): half the counties adopt at period 3."""
    rng = np.random.default_rng(seed)
    unit = np.repeat(np.arange(units), periods)
    period = np.tile(np.arange(1, periods + 1), units)
    treated = ((unit % 2 == 0) & (period >= 3)).astype(int)
    level = rng.normal(0.0, unit_sd, units)
    y = level[unit] + 0.05 * period + effect * treated + rng.normal(0.0, resid_sd, len(unit))
    return pd.DataFrame({"county": [f"c{u:03d}" for u in unit], "year": period,
                         "treated": treated, "y": y})


def test_parameterization_follows_unit_information_not_row_counts():
    panel = county_panel()
    # 5 rows a unit: the row rule says non-centred; n tau^2 / sigma^2 = 1125 says centred (the
    # one-way ANOVA's residual also holds the period and treatment variation, so it finds less,
    # but far above 1)
    assert noncentered(panel, "county") is True
    rich = choose(panel, "county", outcome="y", family="gaussian")
    assert rich.noncentered is False and 100 < rich.median_information <= 1125 * 1.2
    # the same shape with unit SD 0.01 and residual SD 1: I_k ~ 5e-4, non-centred
    flat_panel = county_panel(unit_sd=0.01, resid_sd=1.0)
    assert choose(flat_panel, "county", outcome="y", family="gaussian").noncentered is True
    # logit: 200 rows a unit with logit-scale unit SD 1 is informative, 5 rows are not
    rng = np.random.default_rng(4)
    for rows, centred in ((200, True), (5, False)):
        u = np.repeat(np.arange(60), rows)
        y = rng.binomial(1, expit(rng.normal(0, 1.0, 60)[u]))
        f = pd.DataFrame({"g": u, "y": y})
        assert choose(f, "g", outcome="y", family="bernoulli").noncentered is (not centred)
    assert choose(panel, "county", "noncentered", outcome="y", family="gaussian").noncentered


@pytest.mark.slow  # 4 x 1000 draws with 400 unit intercepts: too long for the fast tier
def test_gaussian_county_panel_converges_with_the_default_spec(tmp_path, outputs):
    """Issue 18's acceptance: 400 units x 5 periods, unit SD 1.5, residual SD 0.1, default spec
    through `bayes-pool did --family gaussian`: 0 divergences, R-hat <= 1.01, ESS >= 400; the
    manifest records the unit structure and the parameterization with its reason."""
    from typer.testing import CliRunner

    from bayes_pool.cli import app

    path = tmp_path / "county.csv"
    county_panel().to_csv(path, index=False)
    res = CliRunner().invoke(app, ["did", "--data", str(path), "--outcome", "y", "--treatment",
                                   "treated", "--unit", "county", "--time", "year", "--family",
                                   "gaussian", "--seed", "3"])
    assert res.exit_code == 0, res.output
    (run,) = list((outputs / "did").iterdir())
    est = pd.read_csv(run / "estimates.csv")
    bayes = est[est["source"] == "bayesian"]
    assert (bayes["divergences"] == 0).all()
    assert (bayes["r_hat"] <= 1.01).all(), bayes[["quantity", "r_hat"]]
    assert (bayes[["ess_bulk", "ess_tail"]] >= 400).all().all(), bayes
    facts = json.loads((run / "manifest.json").read_text())["facts"]["tabledid_gaussian"]
    st = facts["unit_structure"]
    assert st["unit_effects"] == "correlated" and st["unit_time"] is False
    assert st["unit_means"] == {"mean_treated": "treated"}
    assert st["unit_means_dropped"] == {"year == 2": "constant across units",
                                        "year == 3": "constant across units",
                                        "year == 4": "constant across units",
                                        "year == 5": "constant across units"}
    assert st["parameterization"]["unit_intercepts"] == "centered"
    assert "tau^2/v_k" in st["parameterization"]["reason"]
    assert st["mass_matrix"].startswith("diag (auto; "), st["mass_matrix"]  # 400 unit levels


@pytest.mark.slow  # the extended TWFE with 400 unit intercepts, 4 x 1000 draws
def test_staggered_gaussian_county_panel_converges_with_the_default_spec(tmp_path, outputs):
    """Issue 18's acceptance, staggered variant: the same 400 x 5 county panel with adoption in
    periods 2, 3 and 4 (a quarter each) and a quarter never treated, through
    `bayes-pool did --family gaussian --cohort first_treat --staggered`: every Bayesian row
    converges with the default spec (0 divergences, R-hat <= 1.01, ESS >= 400)."""
    from typer.testing import CliRunner

    from bayes_pool.cli import app

    panel = county_panel()
    code = panel["county"].str[1:].astype(int)
    first = np.select([code % 4 == 0, code % 4 == 1, code % 4 == 2], [2, 3, 4], 0)
    panel = panel.assign(first_treat=first,
                         treated=((first > 0) & (panel["year"] >= first)).astype(int))
    path = tmp_path / "county_staggered.csv"
    panel.to_csv(path, index=False)
    res = CliRunner().invoke(app, ["did", "--data", str(path), "--outcome", "y", "--treatment",
                                   "treated", "--unit", "county", "--time", "year", "--family",
                                   "gaussian", "--cohort", "first_treat", "--staggered",
                                   "--seed", "3"])
    assert res.exit_code == 0, res.output
    (run,) = list((outputs / "did").iterdir())
    bayes = pd.read_csv(run / "estimates.csv").query("source == 'bayesian'")
    assert len(bayes) > 0
    assert (bayes["divergences"] == 0).all()
    assert (bayes["r_hat"] <= 1.01).all(), bayes[["column", "quantity", "r_hat"]]
    assert (bayes[["ess_bulk", "ess_tail"]] >= 400).all().all(), bayes
    # 413 parameters: above LOW_RANK_MAX_DIM, so the diagonal mass matrix (nutpie's low-rank
    # adaptation cost ~100x a step here and diverged: docs/unit_effects.md)
    facts = json.loads((run / "manifest.json").read_text())["facts"]
    used = [f["bayesian_unit_structure"]["mass_matrix"] for f in facts.values()
            if "bayesian_unit_structure" in f]
    assert used and all(u.startswith("diag (auto; ") for u in used), used
