"""Heterogeneity: subgroup fits and the partially pooled model recover a common effect.

The panel below has one policy effect for everyone and a subgroup label drawn independently of
everything, so each subgroup's true AME is known (computed from the generating linear
predictor) and the true difference between subgroups is only their composition.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy.special import expit

from bayes_pool.bayes.heterogeneity import (
    Split, heterogeneity, load_heterogeneity_spec, pooled_formula)
from bayes_pool.design import DiDDesign
from bayes_pool.errors import InputError, SpecError

DESIGN = DiDDesign(outcome="y", treatment="treated", unit="county", time="wave",
                   covariates=("x1",), family="bernoulli")
SPLIT = {"band": Split(lambda f: np.where(f["score"] <= 0, "low_band", "high_band"),
                       low="low_band", high="high_band")}


def panel(seed: int = 5, n: int = 2400, units: int = 12, effect: float = 0.8):
    """Staggered panel with a common effect; truth: AME of each subgroup."""
    rng = np.random.default_rng(seed)
    unit = rng.integers(0, units, n)
    wave = rng.choice([1, 2, 3], n)
    adopt = np.where(np.arange(units) < 4, 2, np.where(np.arange(units) < 7, 3, 99))
    treated = (wave >= adopt[unit]).astype(int)
    x1 = rng.normal(0, 1, n)
    score = rng.normal(0, 1, n)  # the split variable: unrelated to the outcome
    eta = -0.1 + rng.normal(0, 0.6, units)[unit] + 0.15 * (wave - 2) + 0.5 * x1
    y = rng.binomial(1, expit(eta + effect * treated))
    frame = pd.DataFrame({"county": [f"c{u:02d}" for u in unit], "wave": wave,
                          "treated": treated, "x1": x1, "score": score, "y": y})
    change = expit(eta + effect) - expit(eta)
    low = score <= 0
    truth = {"low_band": float(change[low].mean()), "high_band": float(change[~low].mean())}
    truth["difference"] = truth["high_band"] - truth["low_band"]
    return frame, truth


@pytest.fixture(scope="module")
def fitted():
    frame, truth = panel()
    spec = load_heterogeneity_spec()
    spec = type(spec)(spec=spec.spec.with_sampler(chains=2, draws=300, tune=300),
                      effect_sd=spec.effect_sd, baseline=spec.baseline)
    result = heterogeneity(frame, DESIGN, SPLIT, spec=spec, seed=11, separate=False)
    return result, result.tidy(study="test", table="6"), truth


def test_pooled_model_formula_has_partially_pooled_effect():
    assert pooled_formula(DESIGN) == ("y ~ treated + x1 + C(wave) + C(subgroup) + (1|county) "
                                      "+ (0 + treated|subgroup)")


def test_subgroup_ames_cover_common_truth(fitted):
    _, rows, truth = fitted
    for label in ("low_band", "high_band"):
        freq = rows[(rows["column"] == label) & (rows["source"] == "frequentist")].iloc[0]
        assert freq["quantity"] == "ame" and freq["term"] == "treated"
        assert abs(freq["estimate"] - truth[label]) < 3 * freq["se"]
        bay = rows[rows["column"] == f"{label}_pooled"].iloc[0]
        assert bay["source"] == "bayesian"
        assert bay["ci_low"] < truth[label] < bay["ci_high"]
        assert not np.isnan(bay["r_hat"]) and bay["ess_bulk"] > 0


def test_difference_is_not_declared_when_effects_are_equal(fitted):
    _, rows, truth = fitted
    diff = rows[rows["column"] == "band_difference"]
    prob = diff[(diff["quantity"] == "prob_positive")].iloc[0]
    assert 0.025 < prob["estimate"] < 0.975
    bay = diff[(diff["quantity"] == "ame_difference") & (diff["source"] == "bayesian")].iloc[0]
    assert bay["ci_low"] < truth["difference"] < bay["ci_high"]
    freq = diff[(diff["quantity"] == "ame_difference") & (diff["source"] == "frequentist")].iloc[0]
    assert abs(freq["estimate"] - truth["difference"]) < 3 * freq["se"]


def test_bad_split_labels_are_named():
    frame, _ = panel(n=300)
    bad = {"band": Split("county", low="low_band", high="high_band")}
    with pytest.raises(InputError, match="split labels must be"):
        heterogeneity(frame, DESIGN, bad, spec=load_heterogeneity_spec(), seed=1,
                      separate=False, pooled=False)


def test_spec_needs_subgroup_priors(tmp_path):
    path = tmp_path / "h.toml"
    path.write_text('[model]\nname = "h"\n[subgroup]\neffect_sd = "default"\n')
    with pytest.raises(SpecError, match="effect_sd"):
        load_heterogeneity_spec(path)


@pytest.mark.slow
def test_separate_bayesian_fits_cover_truth():
    frame, truth = panel(n=3000)
    spec = load_heterogeneity_spec()
    spec = type(spec)(spec=spec.spec.with_sampler(chains=2, draws=500, tune=500),
                      effect_sd=spec.effect_sd, baseline=spec.baseline)
    rows = heterogeneity(frame, DESIGN, SPLIT, spec=spec, seed=3, frequentist=False,
                         pooled=False).tidy(study="test")
    for label in ("low_band", "high_band"):
        r = rows[(rows["column"] == label) & (rows["source"] == "bayesian")].iloc[0]
        assert r["ci_low"] < truth[label] < r["ci_high"]
    prob = rows[(rows["column"] == "band_difference_separate")
                & (rows["quantity"] == "prob_positive")].iloc[0]
    assert 0.025 < prob["estimate"] < 0.975


def test_subgroup_forest_figure(fitted, tmp_path):
    from bayes_pool.figures.heterogeneity import subgroup_forest

    _, rows, _ = fitted
    path = subgroup_forest(rows, tmp_path / "forest.png", synthetic=True, term="treated")
    assert path.exists() and path.stat().st_size > 1000
