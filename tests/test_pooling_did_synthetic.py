"""Contract and calibrated synthetic generator of ``pooling-did`` (Zhang & Chen 2024).

The generator must reproduce the published descriptive table and sample sizes at its default
seed, carry a truth whose AME is the published one, and let a plain frequentist logit recover
that truth. Published numbers come from the study's ledger (``published.csv``).
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import statsmodels.formula.api as smf

from bayes_pool.errors import InputError
from bayes_pool.published import published_table, published_value
from bayes_pool.studies.pooling_did import contract, synthetic

STUDY = "pooling-did"
N_PUBLISHED = int(published_value(STUDY, "2", "treatment", "healthy", "mean", field="n_obs"))


@pytest.fixture(scope="module")
def table2() -> pd.DataFrame:
    """Table 2 treatment/control means and SDs, one row per variable (policy excluded)."""
    wide = pd.concat({q: published_table(STUDY, "2", q) for q in ("mean", "sd")}, axis=1)
    return wide.swaplevel(axis=1).drop(index="policy")


@pytest.fixture(scope="module")
def data():
    return synthetic.simulate()


@pytest.fixture(scope="module")
def null_data():
    return synthetic.simulate(policy_effect=0)


@pytest.fixture(scope="module")
def complete(data) -> pd.DataFrame:
    return data.frame.dropna(subset=contract.CONTROLS)


def test_size_waves_and_provinces(data):
    frame = data.frame
    assert data.study == "pooling-did" and data.seed == synthetic.DEFAULT_SEED
    assert frame.attrs["synthetic"] is True and data.synthetic
    assert len(frame) == N_PUBLISHED
    per_wave = N_PUBLISHED // len(contract.WAVES)
    assert frame["year"].value_counts().to_dict() == dict.fromkeys(contract.WAVES, per_wave)
    assert set(frame["province"]) == set(contract.PROVINCES) and len(contract.PROVINCES) == 29
    assert frame["respondent_id"].is_unique


def test_schema_accepts_the_synthetic_frame_unchanged(data):
    validated = contract.validate(data.frame)
    pd.testing.assert_frame_equal(validated, data.frame)
    assert list(data.frame.columns) == contract.COLUMNS


def test_contract_names_bad_treatment_and_codes(data):
    bad = data.frame.copy()
    bad.loc[(bad["province"] == "Ningxia") & (bad["year"] == 2014), "policy"] = 1
    bad.loc[bad.index[0], "trust"] = 5
    with pytest.raises(InputError, match=r"(?s)trust.*Ningxia 2014: policy=1, expected 0"):
        contract.validate(bad)


def test_policy_indicator_follows_table1():
    province = pd.Series(["Ningxia", "Ningxia", "Qinghai", "Shanghai", "Tianjin", "Tianjin",
                          "Beijing", "Hebei", "Hainan"])
    year = pd.Series([2014, 2016, 2014, 2016, 2012, 2014, 2012, 2018, 2018])
    expected = [0, 1, 0, 1, 1, 1, 1, 0, 0]
    assert contract.policy_indicator(province, year).tolist() == expected
    assert set(contract.ADOPTION_YEAR) <= set(contract.PROVINCES)
    assert {"Hainan", "Xizang"}.isdisjoint(contract.PROVINCES)


def test_treated_share_is_table2s(data):
    # Table 2 prints the full-sample share 0.037 under the treatment column (flagged row); the
    # text's full-sample 3.7% is the same number, and the generator targets it as a share
    published = published_value(STUDY, "2", "treatment", "policy", "mean")
    share = data.frame["policy"].mean()
    assert abs(share - published) <= 0.005
    assert share == pytest.approx(data.truth["share_treated"])
    treated = data.frame.loc[data.frame["policy"] == 1]
    assert treated.groupby("province")["year"].min().to_dict() == {
        "Beijing": 2014, "Chongqing": 2014, "Tianjin": 2014,
        "Ningxia": 2016, "Qinghai": 2016, "Shanghai": 2016}


def test_table2_group_means_within_015_sd(data, table2):
    frame = data.frame
    assert len(table2) == 18
    far = {}
    for term, pub in table2.iterrows():
        treated = frame["policy"] == 1
        for column, mask in (("treatment", treated), ("control", ~treated)):
            gap = (frame.loc[mask, term].mean() - pub[column, "mean"]) / pub[column, "sd"]
            if abs(gap) > 0.15:
                far[term, column] = round(gap, 3)
    assert not far, f"group means more than 0.15 published SD off: {far}"


def test_complete_cases_match_table3(data, complete):
    published = published_value(STUDY, "3", "(2)", "policy", "beta", field="n_obs")
    assert abs(len(complete) - published) <= 100
    assert len(complete) == data.truth["n_complete"]
    key = [contract.OUTCOME, contract.TREATMENT, contract.UNIT, contract.TIME]
    assert data.frame[key].notna().all().all()


def test_true_ame_is_calibrated_to_table3(data):
    # flagged only for its SE (0.038 here, 0.037 in Table 5); the estimate 0.096 is the same
    published = published_value(STUDY, "3", "(2)", "policy", "ame")
    assert abs(data.truth["ame_policy"] - published) <= 0.01
    assert abs(data.truth["ame_policy_all_rows"] - published) <= 0.01
    paths = data.truth["mediator_paths"]
    indirect = paths["objective"]["indirect"] + paths["subjective"]["indirect"]
    assert paths["direct"] + indirect == pytest.approx(data.truth["coefficients"]["policy"])


def test_null_world_has_no_effect_and_the_same_sample(data, null_data):
    assert null_data.truth["ame_policy"] == 0 and null_data.truth["ame_policy_all_rows"] == 0
    assert null_data.truth["mediator_paths"]["direct"] == 0
    same = ["province", "year", "policy", *contract.CONTROLS]
    pd.testing.assert_frame_equal(null_data.frame[same], data.frame[same])


def test_logit_recovers_the_truth(data, complete):
    """Regression pin on the default seed (within 2 SEs), not a coverage claim; the null
    world's rejection rate over 200 seeds is tests/test_slow_null_world.py."""
    formula = ("healthy ~ policy + " + " + ".join(contract.CONTROLS)
               + " + C(province) + C(year)")
    fit = smf.logit(formula, complete).fit(disp=0)
    target = data.truth["policy_coefficient_marginal"]
    assert abs(fit.params["policy"] - target) <= 2 * fit.bse["policy"]
    margeff = fit.get_margeff(at="overall", dummy=True).summary_frame()
    ame, se = margeff.loc["policy", "dy/dx"], margeff.loc["policy", "Std. Err."]
    assert abs(ame - data.truth["ame_policy"]) <= 2 * se


def test_policy_moves_the_integration_indices():
    """The treated-control gap of each index equals Table 4's shift (0 in the null world)
    within 3 SEs of a difference of two means, sqrt(s1^2/n1 + s0^2/n0): the latent factors
    are drawn independently of province and year, so the raw gap is unbiased. The two worlds
    share their draws, so their errors are the same noise, not two chances."""
    big, null = synthetic.simulate(7, n=60_000), synthetic.simulate(7, n=60_000, policy_effect=0)
    for data, factor in ((big, 1.0), (null, 0.0)):
        frame, treated = data.frame, data.frame["policy"] == 1
        for dim, items in synthetic.ITEMS.items():
            control = frame.loc[~treated, items]
            index = ((frame[items] - control.mean()) / control.std()).sum(axis=1) / np.sqrt(2)
            shift = index[treated].mean() - index[~treated].mean()
            se = np.sqrt(index[treated].var() / treated.sum()
                         + index[~treated].var() / (~treated).sum())
            assert abs(shift - factor * synthetic.INDEX_SHIFT[dim]) < 3 * se, (dim, factor,
                                                                                shift, se)


def test_same_seed_same_frame(data):
    again = synthetic.simulate()
    pd.testing.assert_frame_equal(again.frame, data.frame)
    assert again.truth == data.truth
    assert not synthetic.simulate(seed=1).frame.equals(data.frame)


def test_truth_is_plain_json(data):
    truth = json.loads(json.dumps(data.truth))
    assert truth == data.truth
    for key in ("coefficients", "province_effects", "year_effects", "intercept",
                "mediator_paths", "ame_policy", "ame_policy_all_rows", "share_treated",
                "n_complete"):
        assert key in truth
    assert set(truth["province_effects"]) == set(contract.PROVINCES)


def test_2012_wave_lacks_three_controls():
    data = synthetic.simulate(n=4000, waves=(2012, 2014, 2016, 2018))
    frame = contract.validate(data.frame)
    wave = frame[frame["year"] == 2012]
    assert wave[["married", "exercise", "siblings"]].isna().all().all()
    assert set(wave.loc[wave["policy"] == 1, "province"]) == {"Beijing", "Chongqing", "Tianjin"}
    assert data.truth["complete_case_controls"] == contract.CONTROLS_2012


@pytest.mark.slow
def test_calibration_constants_reproduce():
    values = synthetic.calibrate()
    assert values["intercept"] == pytest.approx(synthetic.INTERCEPT, abs=0.01)
    assert values["province_spread"] == pytest.approx(synthetic.PROVINCE_SPREAD, abs=0.01)
    assert values["adopter_shift"] == pytest.approx(synthetic.ADOPTER_SHIFT, abs=0.01)


def test_effect_growth_changes_only_later_treated_health(data):
    """``effect_growth`` adds growth * periods since adoption to treated rows' health logit:
    every other column and every row still in its first treated period (or untreated) is
    unchanged, the default 0 changes nothing, and the truth's ATT cells grow with time."""
    assert "att_cells" not in data.truth
    pd.testing.assert_frame_equal(synthetic.simulate(effect_growth=0.0).frame, data.frame)
    grown = synthetic.simulate(effect_growth=1.0)
    frame = data.frame
    years_on = frame["year"] - frame["province"].map(contract.ADOPTION_YEAR)
    first_period = (frame["policy"] == 0) | (years_on < 2)
    pd.testing.assert_frame_equal(grown.frame.drop(columns=["healthy", "self_rated_health"]),
                                  frame.drop(columns=["healthy", "self_rated_health"]))
    assert (grown.frame.loc[first_period, "healthy"] == frame.loc[first_period, "healthy"]).all()
    assert (grown.frame.loc[~first_period, "healthy"] >= frame.loc[~first_period, "healthy"]).all()
    truth = grown.truth
    assert truth["att_cells"]["g2016_t2018"] > truth["att_cells"]["g2016_t2016"] > 0
    switchers = frame["province"].isin(synthetic.SWITCHERS) & (frame["policy"] == 1)
    complete = frame[contract.CONTROLS].notna().all(axis=1)
    assert sum(truth["n_cells"].values()) == int((switchers & complete).sum())
    assert truth["att_policy"] > truth["att_policy_switchers"]  # always-treated grew longer
