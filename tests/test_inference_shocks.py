"""The pooling-did generator's province x year shocks (SYNTHETIC data): the world without them
is unchanged, they have the stated SD, and each one moves its own cell's outcome its own way."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from bayes_pool.studies.pooling_did.synthetic import SHOCK_SD, simulate

SEED, N = 8, 4000


@pytest.fixture(scope="module")
def worlds():
    return simulate(seed=SEED, n=N), simulate(seed=SEED, n=N, shock_sd=SHOCK_SD)


def test_no_shock_world_is_reachable_and_shares_everything_but_the_outcome(worlds):
    plain, shocked = worlds
    pd.testing.assert_frame_equal(simulate(seed=SEED, n=N, shock_sd=0.0).frame, plain.frame)
    assert "province_year_shocks" not in plain.truth and plain.options.get("shock_sd") is None
    outcome = ["healthy", "self_rated_health"]
    pd.testing.assert_frame_equal(shocked.frame.drop(columns=outcome),
                                  plain.frame.drop(columns=outcome))
    assert shocked.options["shock_sd"] == SHOCK_SD and shocked.frame.attrs["synthetic"]


def test_shocks_have_the_stated_sd(worlds):
    """87 province-year shocks N(0, SHOCK_SD^2): sum of squares / SHOCK_SD^2 ~ chi2(87); the
    observed value must lie in its central 99% interval."""
    shocks = np.array(list(worlds[1].truth["province_year_shocks"].values()))
    assert len(shocks) == 29 * 3
    q = np.sum(shocks**2) / SHOCK_SD**2
    assert stats.chi2.ppf(0.005, 87) < q < stats.chi2.ppf(0.995, 87)


def test_each_shock_moves_its_own_cell_in_its_direction(worlds):
    """Same seed, same noise: a positive shock can only raise a respondent's latent health, so
    in its cell ``healthy`` only flips 0 -> 1 (and 1 -> 0 under a negative shock); and the
    flips happen (a shock of 0.2 on the logit moves about 5% of a cell's respondents)."""
    plain, shocked = worlds
    shock = pd.Series(shocked.truth["province_year_shocks"])
    key = plain.frame["province"].astype(str) + ":" + plain.frame["year"].astype(str)
    s = key.map(shock).to_numpy()
    change = shocked.frame["healthy"].to_numpy() - plain.frame["healthy"].to_numpy()
    assert np.all(change * np.sign(s) >= 0)
    # expected share flipped = E[density of the latent health at the cut x |shock|], about
    # 0.2 x 0.16 = 3%; the bound 1/16 x mean |shock| (~1%) is 7 binomial SDs (0.27 points at
    # n = 4000) below it, and 0 flips (shocks not reaching the outcome) fails it
    assert np.mean(change != 0) > np.mean(np.abs(s)) / 16
